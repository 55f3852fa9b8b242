"""The vector-store seam (qa/index/stores): FAISS behind the VectorStore protocol, checked against numpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.index import CONTEXT_VECTORS, MANIFEST, VECTORS
from qa.index.stores.base import Hits, VectorStore
from qa.index.stores.faiss import FaissStore

DATA = Path(__file__).parent / "data"
#: An index saved by qa before the store seam (format 6, commit 159d0bd): two documents, five sentences.
FORMAT6 = DATA / "index_format6"
FORMAT6_DOCS = [
    qa.Document("cats", "Cats", "Cats sleep for most of the day. A cat purrs when it is content."),
    qa.Document("dogs", "Dogs", "Dogs bark at strangers. Many dogs love to fetch sticks.\nPuppies need training."),
]


def _unit(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, dim))
    v = centres[rng.integers(0, 200, n)] + 0.6 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_the_faiss_store_is_a_vector_store() -> None:
    assert isinstance(FaissStore.build(_unit(4), name=VECTORS), VectorStore)


def test_flat_search_equals_numpy_brute_force() -> None:
    """Oracle: exact top-k rows and inner products, best first."""
    vectors, queries = _unit(500), _unit(20, seed=1)
    store = FaissStore.build(vectors, name=VECTORS)
    assert store.describe() == "IndexFlatIP" and store.count() == 500
    truth = queries @ vectors.T
    for hits, row in zip(store.search(queries, 10), truth, strict=True):
        expected = np.argsort(-row, kind="stable")[:10]
        assert hits.rows.tolist() == expected.tolist()
        np.testing.assert_allclose(hits.scores, row[expected], atol=1e-5)
        assert hits.rows.dtype == np.int64 and hits.scores.dtype == np.float32


def test_score_by_rows_equals_numpy_and_the_search_scores() -> None:
    vectors, query = _unit(300), _unit(1, seed=2)[0]
    store = FaissStore.build(vectors, name=VECTORS)
    rows = np.array([299, 0, 17, 17, 150])
    np.testing.assert_allclose(store.score(query, rows), vectors[rows] @ query, atol=1e-6)
    np.testing.assert_array_equal(store.vectors(rows), vectors[rows])
    hits = store.search(query[None, :], 5)[0]
    np.testing.assert_allclose(store.score(query, hits.rows), hits.scores, atol=1e-6)


def test_ivf_store_keeps_recall_against_brute_force_and_scores_its_own_codes() -> None:
    vectors, queries = _clustered(30_000), _clustered(100, seed=1)
    store = FaissStore.build(vectors, name=VECTORS, exact_limit=20_000)
    assert store.describe() == f"IVF{int(4 * np.sqrt(30_000))},SQ8"
    assert store.nprobe == max(16, int(4 * np.sqrt(30_000)) // 16)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    found = store.search(queries, 10)
    recall = np.mean([len(set(h.rows.tolist()) & set(t.tolist())) / 10 for h, t in zip(found, truth, strict=True)])
    assert recall >= 0.95, recall
    # score() reads the stored 8-bit codes: close to the exact inner product, and what the search ranked by
    rows = found[0].rows
    np.testing.assert_allclose(store.score(queries[0], rows), vectors[rows] @ queries[0], atol=0.02)
    np.testing.assert_allclose(store.score(queries[0], rows), found[0].scores, atol=1e-4)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_an_allowed_filter_never_returns_a_row_outside_it_nor_padding(kind: str) -> None:
    vectors = _clustered(3_000)
    store = FaissStore.build(vectors, name=VECTORS, kind=kind)
    queries = _clustered(10, seed=3)
    allowed = np.array([5, 77, 1234, 2999])
    for hits in store.search(queries, 10, allowed=allowed):
        assert set(hits.rows.tolist()) <= set(allowed.tolist())
        assert len(hits.rows) == len(hits.scores) <= 4 and -1 not in hits.rows.tolist()
    # exact over the allowed rows: the flat store finds all four, in numpy's order
    if kind == "flat":
        hits = store.search(queries[:1], 10, allowed=allowed)[0]
        assert hits.rows.tolist() == allowed[np.argsort(-(vectors[allowed] @ queries[0]))].tolist()


def test_k_beyond_the_store_returns_each_row_once_without_padding() -> None:
    store = FaissStore.build(_unit(3), name=VECTORS)
    (hits,) = store.search(_unit(1, seed=4), 10)
    assert sorted(hits.rows.tolist()) == [0, 1, 2]


def test_removed_rows_are_neither_found_nor_scored_nor_counted() -> None:
    vectors = _unit(50)
    store = FaissStore.build(vectors, name=VECTORS)
    assert store.remove(np.array([3, 3, 7, 999])) == 2, "each held row once; rows not held are ignored"
    assert store.count() == 48
    for query in (vectors[3], vectors[7]):
        rows = store.search(query[None, :], 50)[0].rows.tolist()
        assert 3 not in rows and 7 not in rows and len(rows) == 48
    assert store.search(vectors[3][None, :], 5, allowed=np.array([3, 4]))[0].rows.tolist() == [4]
    with pytest.raises(KeyError, match="no row 7"):
        store.score(vectors[0], np.array([0, 7]))
    with pytest.raises(ValueError, match="removed rows"):
        store.persist(Path("unused"))


def test_add_appends_rows_in_order_and_refuses_others() -> None:
    vectors = _unit(20)
    store = FaissStore.build(vectors[:10], name=VECTORS)
    store.add(vectors[10:], np.arange(10, 20))
    assert store.count() == 20
    assert store.search(vectors[15][None, :], 1)[0].rows.tolist() == [15]
    with pytest.raises(ValueError, match="in order"):
        store.add(vectors[:2], np.array([40, 41]))


@pytest.mark.parametrize(("kind", "bits"), [("flat", 8), ("ivf", 8), ("codes", 4)])
def test_persist_and_open_round_trip(tmp_path: Path, kind: str, bits: int) -> None:
    vectors, queries = _clustered(3_000), _clustered(5, seed=5)
    store = FaissStore.build(vectors, name=CONTEXT_VECTORS, kind=kind, bits=bits, nprobe=7)
    store.persist(tmp_path)
    assert (tmp_path / CONTEXT_VECTORS).is_file()
    opened = FaissStore.open(tmp_path, CONTEXT_VECTORS, nprobe=7)
    assert opened.describe() == store.describe() and opened.count() == store.count()
    assert opened.nprobe == store.nprobe == (7 if kind == "ivf" else None)
    rows = np.arange(0, 3_000, 97)
    np.testing.assert_array_equal(opened.vectors(rows), store.vectors(rows))
    for a, b in zip(opened.search(queries, 5), store.search(queries, 5), strict=True):
        assert isinstance(a, Hits) and a.rows.tolist() == b.rows.tolist()
        np.testing.assert_array_equal(a.scores, b.scores)


def test_a_failed_write_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="FAISS could not write"):
        FaissStore.build(_unit(3), name=VECTORS).persist(tmp_path / "missing" / "folder")


# ------------------------------------------------------------------ indexes saved before the seam


def test_an_index_saved_before_the_store_seam_loads_and_answers_as_a_new_build(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    shutil.copytree(FORMAT6, path)  # a copy: a load puts its lock file beside the folder
    old = qa.Index.load(path)
    new = qa.Index.build(FORMAT6_DOCS, tmp_path / "new")
    assert old.documents == new.documents
    for question in ["Which pet purrs?", "What do puppies need?", "Who barks at strangers?"]:
        got, want = old.search(question, k=5), new.search(question, k=5)
        assert [(p.doc_id, p.start, p.end) for p in got] == [(p.doc_id, p.start, p.end) for p in want]
        assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=1e-5)
    # the same files, manifest keys and FAISS descriptions as the index saved before the seam
    before, after = (json.loads((p / MANIFEST).read_text()) for p in (path, tmp_path / "new"))
    assert list(after) == list(before) and after["format_version"] == before["format_version"] == 6
    assert after["channels"] == before["channels"]
    assert sorted(after["files"]) == sorted(before["files"])
    assert {VECTORS, CONTEXT_VECTORS} <= set(after["files"])
    # and saving the loaded old index writes those FAISS files byte for byte
    old.save(tmp_path / "again")
    for name in (VECTORS, CONTEXT_VECTORS):
        assert (tmp_path / "again" / name).read_bytes() == (path / name).read_bytes()


# ------------------------------------------------------------------ Index.from_vectors

FROM_VECTORS_DOCS = [
    *FORMAT6_DOCS,
    qa.Document("birds", "Birds", "Birds sing at dawn. Many birds fly south in winter."),
    qa.Document("more-cats", "Cats", "Kittens play with string. Cats sleep for most of the day."),  # same title
]
QUESTIONS = ["Which pet purrs?", "When do birds sing?", "What do kittens play with?", "Who barks at strangers?"]


def _model_vectors(docs: list[qa.Document]) -> np.ndarray:
    from qa.embedding import get_encoder

    return get_encoder().encode_documents([d.text[a:b] for d in docs for a, b in qa.sentences.split(d.text)])


def test_from_vectors_with_the_models_own_vectors_answers_as_build() -> None:
    built = qa.Index.build(FROM_VECTORS_DOCS)
    given = qa.Index.from_vectors(FROM_VECTORS_DOCS, _model_vectors(FROM_VECTORS_DOCS))
    rows = np.arange(len(built))
    assert len(given) == len(built) == 9
    for channel in ("dense", "dense_context"):
        np.testing.assert_array_equal(given.vector_store(channel).vectors(rows),
                                      built.vector_store(channel).vectors(rows))
    for question in QUESTIONS:
        got, want = given.search(question, k=5), built.search(question, k=5)
        assert [(p.doc_id, p.start, p.end, p.text) for p in got] == [(p.doc_id, p.start, p.end, p.text) for p in want]
        assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=1e-6)
    same = {key for key in built.manifest if key != "created"}
    assert {key: given.manifest[key] for key in same} == {key: built.manifest[key] for key in same}


def test_from_vectors_takes_given_context_and_title_vectors() -> None:
    docs = FORMAT6_DOCS
    vectors = _model_vectors(docs)
    context = _unit(len(vectors), dim=vectors.shape[1], seed=9)
    index = qa.Index.from_vectors(docs, vectors, context_vectors=context)
    np.testing.assert_array_equal(index.vector_store("dense_context").vectors(np.arange(len(vectors))), context)
    titles = _unit(len(docs), dim=vectors.shape[1], seed=10)
    by_titles = qa.Index.from_vectors(docs, vectors, title_vectors=titles)
    # the first sentence of "cats": 1.5 x its title + itself + its next neighbour, unit length
    expected = 1.5 * titles[0] + vectors[0] + vectors[1]
    np.testing.assert_allclose(by_titles.vector_store("dense_context").vectors(np.array([0]))[0],
                               expected / np.linalg.norm(expected), atol=1e-6)


def test_from_vectors_with_given_spans_records_them_and_is_refused_at_load(tmp_path: Path) -> None:
    doc = qa.Document("a", "A", "One two. Three four.")
    vectors = _unit(1, dim=384)
    index = qa.Index.from_vectors([doc], vectors, spans={"a": [(0, len(doc.text))]})
    assert len(index) == 1 and index.passage(0, 0.0).text == doc.text
    assert index.manifest["segmenter"] == {"name": "given"}
    index.save(tmp_path / "idx")
    with pytest.raises(qa.IndexMismatchError, match="given"):
        qa.Index.load(tmp_path / "idx")


def test_from_vectors_refuses_vectors_of_the_wrong_shape_saying_what_it_needs() -> None:
    with pytest.raises(qa.QAError, match=r"vectors has shape \(2, 384\); give 5 x 384: one per sentence"):
        qa.Index.from_vectors(FORMAT6_DOCS, _unit(2, dim=384))
    with pytest.raises(qa.QAError, match=r"title_vectors has shape \(1, 384\); give 2 x 384: one per document"):
        qa.Index.from_vectors(FORMAT6_DOCS, _unit(5, dim=384), title_vectors=_unit(1, dim=384))
    with pytest.raises(qa.ArgumentError, match="numeric array"):
        qa.Index.from_vectors(FORMAT6_DOCS, "not vectors")  # type: ignore[arg-type]
