from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qa
from qa.embedding import get_encoder
from qa.index import MANIFEST, META, TITLE_WEIGHT, VECTORS, _sentence_texts, window_texts
from qa.lexical import Lexical
from qa.ranking import duplicate_key, fuse, top_unique

DOCS = [
    qa.Document("cats", "Cats", "Cats sleep for most of the day. A cat purrs when it is content."),
    qa.Document("dogs", "Dogs", "Dogs bark at strangers. Many dogs love to fetch sticks.\nPuppies need training."),
    qa.Document("space", "Space", "The Moon orbits the Earth every 27 days. Mars has two small moons."),
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> qa.Index:
    return qa.Index.build(DOCS, tmp_path_factory.mktemp("small") / "idx")


def test_dense_search_matches_numpy_brute_force(small: qa.Index) -> None:
    """Oracle: with only the sentence-embedding channel on, ranking is exact cosine similarity over all rows."""
    assert small.path is not None
    dense_only = qa.Index.load(small.path, settings=qa.get_settings(
        scorer="fusion", weight_bm25=0.0, weight_bm25_context=0.0, weight_dense=1.0, weight_dense_context=0.0))
    encoder = get_encoder()
    sentences = [d.text[a:b] for d in DOCS for a, b in qa.sentences.split(d.text)]
    matrix = encoder.encode_documents(sentences)
    for question in ["How many moons does Mars have?", "What do puppies need?", "Which pet purrs?"]:
        q = encoder.encode_queries([question])[0]
        expected = np.argsort(-(matrix @ q))[:4]
        got = dense_only.search(question, k=4)
        assert [p.text for p in got] == [sentences[i] for i in expected]
        assert [p.score for p in got] == pytest.approx([float(matrix[i] @ q) for i in expected], abs=1e-5)


def test_fused_search_matches_brute_force_over_every_channel(squad_index_dir: Path) -> None:
    """Oracle: candidate pooling loses nothing against scoring every sentence by all four channels (fusion)."""
    index = qa.Index.load(squad_index_dir, settings=qa.get_settings(scorer="fusion"))
    docs = qa.load_sources([Path(__file__).parent / "data" / "squad_docs.jsonl"])
    spans = [qa.sentences.split(d.text) for d in docs]
    sentences, windows = _sentence_texts(docs, spans), window_texts(docs, spans)
    titled = [f"{d.title} {d.text[a:b]}" for d, sp in zip(docs, spans, strict=True) for a, b in sp]
    encoder = get_encoder()
    s_vectors = encoder.encode_documents(sentences)
    # Context vector, written out plainly: TITLE_WEIGHT x title + the sentence and its neighbours, unit length.
    w_vectors = np.zeros_like(s_vectors)
    row = 0
    for doc, sp in zip(docs, spans, strict=True):
        title = encoder.encode_documents([doc.title])[0]
        for j in range(len(sp)):
            v = TITLE_WEIGHT * title + sum(s_vectors[row + i] for i in range(max(0, j - 1), min(len(sp), j + 2)))
            w_vectors[row + j] = v / np.linalg.norm(v)
        row += len(sp)
    bm25, bm25_context = Lexical.build(titled), Lexical.build(windows)
    keys = np.array([duplicate_key(t) for t in sentences])
    focus = qa.get_settings().focus_weight
    assert focus != 1.0  # "What color ..." below then exercises the focus weighting too
    for question in ["Who won Super Bowl 50?", "Where was the game played?", "What color was used for the 50th?"]:
        q = encoder.encode_queries([question])[0]
        fused = fuse(
            {"bm25": bm25.scores(question, focus_weight=focus),
             "bm25_context": bm25_context.scores(question, focus_weight=focus),
             "dense": s_vectors @ q, "dense_context": w_vectors @ q},
            qa.get_settings().weights,
        )
        rows, scores = top_unique(np.arange(len(sentences)), fused, keys, 5)
        got = index.search(question, k=5)
        assert [p.text for p in got] == [sentences[r] for r in rows]
        assert [p.score for p in got] == pytest.approx(scores.tolist(), abs=1e-5)


def test_passages_point_at_exact_offsets(small: qa.Index) -> None:
    for p in small.search("dogs and sticks", k=7):
        doc = next(d for d in DOCS if d.doc_id == p.doc_id)
        assert doc.text[p.start : p.end] == p.text
        assert doc.text[p.context_start : p.context_end] == p.context
        assert p.context_start <= p.start < p.end <= p.context_end
        assert p.title == doc.title


def test_context_holds_the_neighbouring_sentences(small: qa.Index) -> None:
    best = small.search("Many dogs love to fetch sticks.", k=1, context=1)[0]
    assert best.sentence == 1
    assert best.context == DOCS[1].text  # previous, itself and next sentence make the whole document
    assert small.search("Many dogs love to fetch sticks.", k=1, context=0)[0].context == best.text


def test_k_larger_than_the_index_returns_every_sentence_once(small: qa.Index) -> None:
    got = small.search("anything", k=100)
    assert len(got) == len(small) == 7
    assert len({(p.doc_id, p.sentence) for p in got}) == 7


def test_docs_filter_restricts_results(small: qa.Index) -> None:
    got = small.search("moons", k=10, docs=["cats", "dogs"])
    assert {p.doc_id for p in got} == {"cats", "dogs"}
    with pytest.raises(qa.QAError, match="unknown document id 'birds'"):
        small.search("moons", docs=["birds"])


def test_save_load_round_trip_gives_identical_results(small: qa.Index) -> None:
    assert small.path is not None
    loaded = qa.Index.load(small.path)
    assert loaded.documents == small.documents
    for question in ["Which pet purrs?", "orbit of the Moon"]:
        assert loaded.search(question, k=3) == small.search(question, k=3)


def test_manifest_describes_the_index(small: qa.Index) -> None:
    assert small.path is not None
    manifest = json.loads((small.path / MANIFEST).read_text())
    assert manifest["format_version"] == qa.index.FORMAT_VERSION
    assert manifest["model"] == {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "weights_sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "dimension": 384,
        "backend": "onnx-int8",
        "precision": "int8",
    }
    assert manifest["segmenter"]["name"] == "syntok"
    assert set(manifest["channels"]) == {"dense", "dense_context", "bm25", "bm25_context"}
    assert [d["doc_id"] for d in manifest["documents"]] == ["cats", "dogs", "space"]
    assert manifest["documents"][0]["sha256"] == DOCS[0].sha256
    assert manifest["counts"] == {"documents": 3, "sentences": 7}
    assert {VECTORS, META, "context.faiss", "bm25/vocab.index.json"} <= set(manifest["files"])
    assert oct((small.path / VECTORS).stat().st_mode & 0o777) == "0o600"


def _copy(index: qa.Index, dest: Path) -> Path:
    assert index.path is not None
    shutil.copytree(index.path, dest)
    return dest


def test_index_built_with_another_model_is_refused_with_rebuild_hint(small: qa.Index, tmp_path: Path) -> None:
    path = _copy(small, tmp_path / "idx")
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["model"]["name"] = "intfloat/e5-small-v2"
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(qa.IndexMismatchError, match=r"built with model intfloat/e5-small-v2 \(384-d\).*qa index build"):
        qa.Index.load(path)


def test_index_of_an_older_format_is_refused(small: qa.Index, tmp_path: Path) -> None:
    path = _copy(small, tmp_path / "idx")
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["format_version"] = 0
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(qa.IndexMismatchError, match="format version 0"):
        qa.Index.load(path)


def test_altered_or_truncated_file_is_detected(small: qa.Index, tmp_path: Path) -> None:
    path = _copy(small, tmp_path / "idx")
    data = (path / VECTORS).read_bytes()
    (path / VECTORS).write_bytes(data[: len(data) // 2])
    with pytest.raises(qa.IndexCorruptError, match="does not match its checksum"):
        qa.Index.load(path)


def test_missing_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(qa.IndexNotFoundError, match="qa index build --out"):
        qa.Index.load(tmp_path / "nothing")


def test_failed_save_leaves_the_previous_index_loadable(
    small: qa.Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(small, tmp_path / "idx")
    before = qa.Index.load(path).search("Which pet purrs?", k=2)
    replacement = qa.Index.build([qa.Document("x", "X", "Something else entirely.")])

    def disk_full(file: Path) -> None:
        raise OSError(28, "No space left on device", str(file))


    monkeypatch.setattr(qa.index, "_fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        replacement.save(path)
    monkeypatch.undo()
    assert qa.Index.load(path).search("Which pet purrs?", k=2) == before
    assert not list(tmp_path.glob(".idx.tmp-*")), "the temporary folder is cleaned up"


def test_interrupted_save_is_recovered_from_the_old_copy(small: qa.Index, tmp_path: Path) -> None:
    """A crash between moving the old index aside and moving the new one in: the old one comes back."""
    path = _copy(small, tmp_path / "idx")
    os.rename(path, tmp_path / ".idx.old-12345678")
    assert qa.Index.load(path).documents == small.documents


def test_killed_save_leaves_old_index_loadable(small: qa.Index, tmp_path: Path) -> None:
    """A real process killed while saving (SIGKILL after writing part of the new index)."""
    path = _copy(small, tmp_path / "idx")
    script = f"""
import os, signal, qa
import qa.index as qi
real = qi._fsync
def die(p):
    real(p)
    if p.name == {META!r}:
        os.kill(os.getpid(), signal.SIGKILL)
qi._fsync = die
qa.Index.build([qa.Document("new", "New", "A brand new document.")], {str(path)!r})
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()
    assert [d.doc_id for d in qa.Index.load(path).documents] == ["cats", "dogs", "space"]


# ---------------------------------------------------------------------- incremental updates

BASE = [
    qa.Document("a", "A", "Cats purr when content. They sleep a lot.\nCats hunt mice at night."),
    qa.Document("b", "B", "Dogs bark at strangers. Dogs fetch sticks."),
]
QUESTIONS = ["What do dogs fetch?", "When do cats hunt?", "Which birds sing at dawn?"]


def _same_results(one: qa.Index, other: qa.Index) -> None:
    assert [d.doc_id for d in one.documents] == [d.doc_id for d in other.documents]
    for question in QUESTIONS:
        got, want = one.search(question, k=4), other.search(question, k=4)
        def places(passages: list[qa.Passage]) -> list[tuple[str, int, int, int]]:
            return [(p.doc_id, p.sentence, p.start, p.end) for p in passages]

        assert places(got) == places(want)
        assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=1e-4)


def test_add_replace_remove_round_trip_equals_a_fresh_build(tmp_path: Path) -> None:
    index = qa.Index.build(BASE, tmp_path / "idx")
    changed_b = qa.Document("b", "B", "Dogs bark at strangers. Dogs fetch sticks and balls.")
    birds = qa.Document("c", "C", "Birds sing at dawn.")
    up = index.update(add=[changed_b, birds, BASE[0]])
    assert (up.added, up.replaced, up.unchanged, up.removed) == (["c"], ["b"], ["a"], [])
    # only the changed sentence, c's sentence and the titles of b and c (for their context vectors) went
    # through the model
    assert up.embedded == 4
    _same_results(up.index, qa.Index.build([BASE[0], changed_b, birds]))
    _same_results(qa.Index.load(tmp_path / "idx"), up.index)  # saved in place

    gone = up.index.update(remove=["a"])
    assert gone.removed == ["a"] and gone.embedded == 0
    _same_results(gone.index, qa.Index.build([changed_b, birds]))


def test_a_sentence_repeated_within_a_build_goes_to_the_model_once() -> None:
    header = "Acme Corp quarterly report."
    docs = [qa.Document("q1", "Report", f"{header} Sales rose in spring."),
            qa.Document("q2", "Report", f"{header} Costs fell in autumn.")]
    index, embedded = qa.Index._from_documents(docs, settings=qa.get_settings(), progress=False)
    assert len(index) == 4 and embedded == 3 + 1, "three distinct sentences and the one title"
    first, again = index._dense["dense"].vectors(np.array([0, 2], dtype=np.int64))
    np.testing.assert_array_equal(first, again)
    hits = index.search("Which company wrote the quarterly report?", k=2)
    assert hits[0].text == header and hits[1].text != header, "found, and returned once"


def test_window_key_changes_with_its_title_and_neighbours_only() -> None:
    from qa.index import window_keys

    docs, titles = np.array([0, 0, 0, 1]), np.array([10, 20])
    base = window_keys(np.array([1, 2, 3, 4]), docs, titles)
    assert len(set(base.tolist())) == 4
    first_changed = window_keys(np.array([9, 2, 3, 4]), docs, titles)
    assert (first_changed != base).tolist() == [True, True, False, False], "itself and its next neighbour"
    title_changed = window_keys(np.array([1, 2, 3, 4]), docs, np.array([11, 20]))
    assert (title_changed != base).tolist() == [True, True, True, False], "its document's sentences only"
    one_doc = window_keys(np.array([1, 2, 3, 4]), np.zeros(4, dtype=np.int64), np.array([10]))
    assert one_doc[2] != base[2], "a neighbour in another document does not count"
    swapped = window_keys(np.array([3, 2, 1]), np.zeros(3, dtype=np.int64), np.array([10]))
    assert swapped[1] != window_keys(np.array([1, 2, 3]), np.zeros(3, dtype=np.int64), np.array([10]))[1], "order"


def test_re_adding_unchanged_documents_costs_no_model_time(tmp_path: Path) -> None:
    index = qa.Index.build(BASE, tmp_path / "idx")
    created = json.loads((tmp_path / "idx" / MANIFEST).read_text())["created"]
    up = index.update(add=BASE)
    assert up.unchanged == ["a", "b"] and not up.changed and up.embedded == 0
    assert up.index is index
    assert json.loads((tmp_path / "idx" / MANIFEST).read_text())["created"] == created, "nothing was rewritten"


def test_update_reports_bad_sources_and_still_adds_the_rest(tmp_path: Path) -> None:
    index = qa.Index.build(BASE)
    (tmp_path / "good.txt").write_text("Owls hunt at night.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("   ", encoding="utf-8")
    up = index.update(add=[tmp_path / "good.txt", tmp_path / "empty.txt"], remove=["nope"])
    assert up.added == ["good"]
    reasons = {Path(f.source).name: f.reason for f in up.failures}
    assert "empty" in reasons["empty.txt"]
    assert "no document with id 'nope'" in reasons["nope"]


def test_updated_index_keeps_the_old_object_searchable(tmp_path: Path) -> None:
    index = qa.Index.build(BASE, tmp_path / "idx")
    before = index.search("What do dogs fetch?", k=2)
    index.update(remove=["b"])
    assert index.search("What do dogs fetch?", k=2) == before, "a running search keeps its consistent view"


def test_killed_add_leaves_the_previous_index_loadable(tmp_path: Path) -> None:
    """SIGKILL a real `qa index add` once it starts writing the new index: the old one stays whole."""
    path = tmp_path / "idx"
    qa.Index.build(BASE, path)
    (tmp_path / "new.txt").write_text("Parrots can talk.", encoding="utf-8")
    script = f"""
import os, signal, sys
import qa.index as qi
real = qi._fsync
def die(p):
    real(p)
    if p.name == {META!r}:
        os.kill(os.getpid(), signal.SIGKILL)
qi._fsync = die
from qa.cli import main
sys.exit(main(["index", "add", {str(path)!r}, {str(tmp_path / "new.txt")!r}]))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()
    assert [d.doc_id for d in qa.Index.load(path).documents] == ["a", "b"]


# ------------------------------------------------------------------------------- approximate (IVF) search


def _clustered_unit_vectors(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors in a few hundred gaussian clusters: shaped like sentence embeddings, not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(300, dim))
    vectors = centres[rng.integers(0, 300, n)] + 0.6 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(("bits", "min_recall"), [(8, 0.95), (4, 0.8)])
def test_ivf_is_chosen_past_the_exact_limit_and_keeps_recall_against_brute_force(bits: int, min_recall: float) -> None:
    """Oracle: the approximate index's top 10 against exact inner product over the same vectors."""
    from qa.index import describe, vector_index

    vectors = _clustered_unit_vectors(30_000)
    assert describe(vector_index(vectors[:1000], exact_limit=20_000)) == "IndexFlatIP"
    index = vector_index(vectors, exact_limit=20_000, bits=bits)
    assert describe(index) == f"IVF{int(4 * np.sqrt(30_000))},SQ{bits}"
    queries = _clustered_unit_vectors(200, seed=1)
    _, rows = index.search(queries, 10)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(r) & set(t)) / 10 for r, t in zip(rows.tolist(), truth.tolist(), strict=True)])
    assert recall >= min_recall, recall


def test_an_ivf_index_answers_like_the_exact_one(squad_index_dir: Path, tmp_path: Path) -> None:
    docs = [Path(__file__).parent / "data" / "squad_docs.jsonl"]
    ivf = qa.Index.build(docs, tmp_path / "ivf", settings=qa.get_settings(index_type="ivf"))
    channels = json.loads((tmp_path / "ivf" / MANIFEST).read_text())["channels"]
    assert channels["dense"]["faiss"].endswith(",SQ8") and channels["dense_context"]["faiss"].endswith(",SQ4")
    exact = qa.Index.load(squad_index_dir)
    for question in ["Who won Super Bowl 50?", "Where was the game played?", "Who was the MVP?"]:
        assert ivf.search(question, k=1)[0].text == exact.search(question, k=1)[0].text


def test_past_the_exact_size_the_context_channels_score_candidates_without_a_search(
    squad_index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    from qa.lexical import Lexical as Lex

    index = qa.Index.load(squad_index_dir)
    searched: list[str] = []
    search_vectors = qa.Index.search_vectors
    sparse_scores = Lex.sparse_scores

    def spy(self: qa.Index, queries: np.ndarray, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        searched.append(kwargs["channel"])
        return search_vectors(self, queries, **kwargs)

    def spy_sparse(self: Lex, question: str, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        searched.append("bm25_context" if self is index._lexical["bm25_context"] else "bm25")
        return sparse_scores(self, question, **kwargs)

    monkeypatch.setattr(qa.Index, "search_vectors", spy)
    monkeypatch.setattr(Lex, "sparse_scores", spy_sparse)
    threads = faiss.omp_get_max_threads()
    for question in ["Who won Super Bowl 50?", "Which NFL team represented the AFC?"]:
        searched.clear()
        index.settings = qa.get_settings()
        exact = index.search(question, k=3)
        assert sorted(searched) == ["bm25", "bm25_context", "dense", "dense_context"]
        searched.clear()
        index.settings = qa.get_settings(exact_limit=len(index) - 1)  # "large": channels also run side by side
        large = index.search(question, k=3)
        assert sorted(searched) == ["bm25", "dense"]
        # The context channels still score every candidate: the same passages with the same fused scores.
        assert [p.text for p in large] == [p.text for p in exact]
        assert [p.score for p in large] == pytest.approx([p.score for p in exact], abs=1e-6)
    assert faiss.omp_get_max_threads() == threads  # one-query searches restore FAISS's thread count


def test_past_the_exact_size_the_context_channel_is_stored_as_codes_without_clusters(
    squad_index_dir: Path, tmp_path: Path
) -> None:
    """A scoring-only channel needs no k-means: its vectors are 4-bit codes, read back by row."""
    docs = [Path(__file__).parent / "data" / "squad_docs.jsonl"]
    exact = qa.Index.load(squad_index_dir)
    large = qa.Index.build(docs, tmp_path / "large", settings=qa.get_settings(exact_limit=len(exact) - 1))
    channels = json.loads((tmp_path / "large" / MANIFEST).read_text())["channels"]
    assert channels["dense"]["faiss"].endswith(",SQ8") and channels["dense_context"]["faiss"] == "SQ4"
    rows = np.arange(len(exact))
    stored = qa.Index.load(tmp_path / "large")._dense["dense_context"].vectors(rows)
    truth = exact._dense["dense_context"].vectors(rows)
    # 4-bit codes: each vector within a small error of the exact one (cosine, both unit length)
    assert np.min(np.sum(stored * truth, axis=1) / np.linalg.norm(stored, axis=1)) > 0.97
    for question in ["Who won Super Bowl 50?", "Where was the game played?", "Who was the MVP?"]:
        assert large.search(question, k=1)[0].text == exact.search(question, k=1)[0].text


def test_a_build_split_into_many_chunks_equals_one_split_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks overlap the segmenter with the model; they must not change a vector, a score or an offset."""
    import qa.index.build as qindex

    docs = qa.load_sources([Path(__file__).parent / "data" / "squad_docs.jsonl", *DOCS])
    monkeypatch.setattr(qindex, "FIRST_CHUNK_CHARS", 10**9)
    whole = qa.Index.build(docs)
    monkeypatch.setattr(qindex, "FIRST_CHUNK_CHARS", 100)
    monkeypatch.setattr(qindex, "CHUNK_CHARS", 300)
    assert len(list(qindex._chunks(docs))) > 5
    chunked = qa.Index.build(docs)
    assert len(chunked) == len(whole)
    rows = np.arange(len(whole))
    for channel in ("dense", "dense_context"):
        np.testing.assert_array_equal(chunked._dense[channel].vectors(rows),
                                      whole._dense[channel].vectors(rows))
    def place(index: qa.Index, row: int) -> tuple[str, int, int]:
        p = index.passage(row, 0.0)
        return p.doc_id, p.start, p.end

    assert [place(chunked, int(r)) for r in rows] == [place(whole, int(r)) for r in rows]
    for question in ["Who won Super Bowl 50?", "Which pet purrs?"]:
        got, want = chunked.search(question), whole.search(question)
        assert [(p.text, p.score) for p in got] == [(p.text, p.score) for p in want]
