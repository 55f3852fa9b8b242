"""An index in Milvus (``milvus:<uri>#<collection>``), on real Milvus Lite files in temporary folders.

The oracle is the FAISS index of the same documents: loaded from Milvus, an index must give the very passages
(text, offsets, document, page, heading, context) and scores. Each test closes the Milvus Lite servers it opened
(``qa.index.milvus.close``); the kill test stops its child and the child's Lite server by PID.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.errors import ArgumentError, IndexNotFoundError, MissingDependencyError
from qa.index.location import MilvusLocation, is_location, parse_location

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules (None)
        return False


HAVE_MILVUS = _installed("pymilvus") and _installed("milvus_lite")
_skip = pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus and milvus-lite are not installed: "
                           "pip install 'qa[milvus]' to run the Milvus tests")


def needs_milvus(test):  # type: ignore[no-untyped-def]
    """Marks a test ``milvus`` and skips it, saying why, when pymilvus or milvus-lite is missing."""
    return pytest.mark.milvus(_skip(test))


@pytest.fixture(scope="module", autouse=True)
def _milvus_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Milvus Lite's server writes glog files into /tmp on every start: into a test folder instead (children
    started by the tests inherit it)."""
    name = "GLOG_log_dir"  # glog's own spelling of the variable
    old = os.environ.get(name)
    os.environ[name] = str(tmp_path_factory.mktemp("milvus-logs"))
    yield
    if old is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = old


def _lines(name: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _same(a: list[qa.Passage], b: list[qa.Passage]) -> None:
    """The same passages in the same order, scores equal to float32 rounding."""
    fields = ("text", "doc_id", "title", "sentence", "start", "end", "context", "context_start", "context_end",
              "page", "heading")
    assert [[getattr(p, f) for f in fields] for p in a] == [[getattr(p, f) for f in fields] for p in b]
    assert max((abs(x.score - y.score) for x, y in zip(a, b, strict=True)), default=0.0) < 1e-5


@pytest.fixture
def location(tmp_path: Path) -> Iterator[str]:
    """A Milvus Lite location in this test's folder; its server is stopped when the test ends."""
    loc = f"milvus:{tmp_path}/qa.db#articles"
    yield loc
    if HAVE_MILVUS:
        from qa.index import milvus

        milvus.close(loc)


# ---------------------------------------------------------------------- locations (no Milvus needed)


def test_locations_parse() -> None:
    lite = parse_location("milvus:./corpus.db#articles")
    assert lite == MilvusLocation(str(Path("corpus.db").absolute()), "articles") and lite.lite
    server = parse_location("milvus:http://127.0.0.1:19530/#docs_2")
    assert (server.uri, server.collection, server.lite) == ("http://127.0.0.1:19530", "docs_2", False)
    assert parse_location(str(server)) == server
    assert parse_location(Path(str(server))) == server  # pathlib made "http://" into "http:/"
    assert is_location("milvus:x") and is_location(lite) and not is_location(Path("index")) and not is_location(3)


@pytest.mark.parametrize(("text", "says"), [
    ("milvus:./corpus.db", "names no collection: add #NAME"),
    ("milvus:#articles", "names no Milvus URI"),
    ("milvus:./corpus.db#2nd", "collection name '2nd'"),
    ("milvus:./corpus.db#a-b", "collection name 'a-b'"),
    ("milvus:ftp://host#a", "unknown scheme ftp://"),
    ("milvus:./corpus.sqlite#a", "must end in .db"),
    ("milvus:./my corpus.db#a", "at most 36 letters"),
    ("milvus:./" + "x" * 40 + ".db#a", "at most 36 letters"),
])
def test_bad_locations_say_how_to_write_one(text: str, says: str) -> None:
    with pytest.raises(ArgumentError, match="index location") as info:
        parse_location(text)
    assert says in str(info.value)


def test_missing_pymilvus_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus now raises ImportError
    for call in (lambda: qa.Index.load(f"milvus:{tmp_path}/x.db#a"),
                 lambda: qa.Index.build([qa.Document("a", "A", "Cats purr.")], f"milvus:{tmp_path}/x.db#a")):
        with pytest.raises(MissingDependencyError, match=r"pip install 'qa\[milvus\]'"):
            call()
    assert not (tmp_path / "x.db").exists()


def test_the_faiss_path_never_imports_pymilvus(squad_index_dir: Path) -> None:
    code = (f"import sys, qa; idx = qa.Index.load({str(squad_index_dir)!r}); idx.passages([0], [1.0]); "
            "print(sorted(m for m in sys.modules if m.startswith(('pymilvus', 'milvus_lite'))))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- round trips


@needs_milvus
def test_squad_from_milvus_answers_as_faiss_does(squad_index_dir: Path, location: str) -> None:
    faiss = qa.Index.load(squad_index_dir)
    faiss.save(location)  # moving an index to Milvus: load it, save it to the location
    remote = qa.Index.load(location)
    assert remote.path is None and str(remote.location) == location and len(remote) == len(faiss)
    assert remote.documents == faiss.documents
    assert remote.document(faiss.documents[3].doc_id) == faiss.document(faiss.documents[3].doc_id)
    questions = [q["question"] for q in _lines("squad_questions.jsonl")]
    for a, b in zip(faiss.search_many(questions, k=10), remote.search_many(questions, k=10), strict=True):
        _same(a, b)
    one = faiss.documents[2].doc_id  # a document filter is the same filter
    _same(faiss.search(questions[0], k=5, docs=[one]), remote.search(questions[0], k=5, docs=[one]))
    with pytest.raises(qa.QAError, match="unknown document id 'nope'"):
        remote.search(questions[0], docs=["nope"])
    # qa.retrieve and qa.answer take the location where they take a folder
    _same(qa.retrieve(questions[0], k=3, index=location), faiss.search(questions[0], k=3))
    _same(list(qa.answer(questions[0], index=location).citations), list(qa.answer(questions[0], index=faiss).citations))
    _lexical_channels_are_milvus_sparse_vectors_scoring_as_faiss(faiss, remote, questions)
    _a_replica_in_another_process_ranks_alike(faiss, location, questions[:6])


def _lexical_channels_are_milvus_sparse_vectors_scoring_as_faiss(
    faiss: qa.Index, remote: qa.Index, questions: list[str]
) -> None:
    """The BM25 channels live in Milvus as sparse vectors (Lite has them; the setting is auto): proposing and
    scoring give qa's own BM25 to float32 rounding, the question weighed (focus words too) as Lexical does."""
    from qa.index.stores.milvus_lexical import MilvusLexical

    assert remote.manifest["channels"]["bm25"]["lexical"] == "milvus"
    rows = np.arange(len(faiss))
    for name in ("bm25", "bm25_context"):
        oracle, stored = faiss._lexical[name], remote._lexical[name]
        assert isinstance(stored, MilvusLexical) and not stored.complete and stored.size == len(faiss)
        for question in questions[::5]:
            want = oracle.scores(question, focus_weight=1.5)
            np.testing.assert_allclose(stored.scores_at(question, rows, focus_weight=1.5), want, rtol=0, atol=1e-6)
            top, values = stored.propose(question, 20, focus_weight=1.5)
            assert list(top) == sorted(top) and len(top) == min(20, int((want > 0).sum()))
            np.testing.assert_allclose(values, want[top], rtol=0, atol=1e-6)
            assert values.min() >= np.sort(want)[-len(top)] - 1e-6  # they are the best 20
            one = faiss.rows_of([faiss.documents[1].doc_id])
            within, _ = stored.propose(question, 5, allowed=one)
            assert set(within.tolist()) <= set(one.tolist())


def _a_replica_in_another_process_ranks_alike(faiss: qa.Index, location: str, questions: list[str]) -> None:
    """A fresh process given only the location (no index folder, the Lite file released by this one) ranks as
    FAISS does, its BM25 read from Milvus."""
    from qa.index import milvus

    milvus.close(location)  # a Lite file is opened by one process at a time
    code = ("import json, sys, qa; idx = qa.Index.load(sys.argv[1]); "
            "print(type(idx._lexical['bm25']).__name__); "
            "print(json.dumps([[(p.doc_id, p.start) for p in ps] for ps in idx.search_many(json.loads(sys.argv[2]), "
            "k=10)]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "QA_INDEX_DIR": "/nonexistent"}
    out = subprocess.run([sys.executable, "-c", code, location, json.dumps(questions)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    kind, ranked = out.stdout.strip().splitlines()[-2:]
    assert kind == "MilvusLexical"
    assert json.loads(ranked) == [[[p.doc_id, p.start] for p in ps] for ps in faiss.search_many(questions, k=10)]


@needs_milvus
def test_build_into_milvus_and_back_to_a_folder(article_index: qa.Index, location: str, tmp_path: Path) -> None:
    from qa.documents import default_document

    built = qa.Index.build([default_document()], location)
    assert str(built.location) == location
    remote = qa.Index.load(location)
    questions = [q["question"] for q in _lines("seed_questions.jsonl")]
    for a, b in zip(article_index.search_many(questions, k=5), remote.search_many(questions, k=5), strict=True):
        _same(a, b)
    remote.save(tmp_path / "copy")  # and out of Milvus again, into a plain FAISS folder
    copy = qa.Index.load(tmp_path / "copy")
    for a, b in zip(article_index.search_many(questions, k=5), copy.search_many(questions, k=5), strict=True):
        _same(a, b)
    for name in ("bm25", "bm25_context"):  # the BM25 read back from its sparse vectors: the same arrays, bit for bit
        for got, want in zip(copy._lexical[name].matrix(), article_index._lexical[name].matrix(), strict=True):
            assert np.array_equal(got, want)


@needs_milvus
def test_long_unicode_text_pages_and_headings_round_trip(location: str) -> None:
    # ~27k characters, ~33k UTF-8 bytes: two pieces of text. Every sentence differs (equal scores would let
    # FAISS and Milvus break ties among their candidates differently).
    text = "".join(f"Ünïcödé façade naïveté — 東京 ward {i} is large. The Zürich office {i} opened in {1000 + i}. "
                   f"Prices rose by {i}%. " for i in range(250))
    pages = tuple(range(0, len(text), 6_000))
    headings = ((0, "Intro"), (12_000, "Zürich"), (12_000, "Zürich, again"), (20_000, "東京"))
    docs = [qa.Document("long", "Lông", text, "long.txt", pages=pages, headings=headings),
            qa.Document("short", "Short", "Cats purr. Dogs bark.")]
    local = qa.Index.build(docs, location)
    remote = qa.Index.load(location)
    assert remote.document("long") == docs[0] and remote.document("short").text == docs[1].text
    for question in ("When did the Zürich office 150 open?", "How much did prices rise?", "Which animal barks?"):
        _same(local.search(question, k=8), remote.search(question, k=8))
    rows = remote.rows_of(["long"])
    _same(local.passages(rows[-3:], [0.1, 0.2, 0.3]), remote.passages(rows[-3:], [0.1, 0.2, 0.3]))


@needs_milvus
def test_lexical_channels_kept_local_when_asked_and_such_indexes_still_load(location: str) -> None:
    """milvus_lexical=local saves no sparse vectors (as qa did before them, and does on a server older than
    2.4): every load rebuilds BM25 from the text. A later save under auto adds them; local at load ignores them."""
    from qa.index import milvus
    from qa.index.stores.milvus_lexical import MilvusLexical

    docs = _docs(3)
    faiss = qa.Index.build(docs)
    qa.Index.build(docs, location, settings=qa.get_settings().replace(milvus_lexical="local"))
    loc = parse_location(location)
    assert not milvus.client(loc).has_collection(f"{loc.collection}_bm25")
    old = qa.Index.load(location)
    assert old.manifest["channels"]["bm25"]["lexical"] == "local"
    assert type(old._lexical["bm25"]) is type(faiss._lexical["bm25"])  # rebuilt locally
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    _same(faiss.search(question, k=10), old.search(question, k=10))
    old.update(add=[qa.Document("more", "More", "The Broncos won the game.")])  # saved under auto: sparse now
    new = qa.Index.load(location)
    assert isinstance(new._lexical["bm25"], MilvusLexical)
    local = qa.Index.load(location, settings=qa.get_settings().replace(milvus_lexical="local"))
    assert not isinstance(local._lexical["bm25"], MilvusLexical)
    _same(new.search(question, k=10), local.search(question, k=10))
    with pytest.raises(qa.ConfigError, match="milvus_lexical='remote' must be auto, milvus or local"):
        qa.get_settings().replace(milvus_lexical="remote")


@needs_milvus
def test_nothing_there_says_how_to_build(location: str) -> None:
    with pytest.raises(IndexNotFoundError, match=r"no index at milvus:.*qa index build --out milvus:"):
        qa.Index.load(location)


# ---------------------------------------------------------------------- add and remove: generations


def _docs(n: int) -> list[qa.Document]:
    return [qa.Document(d["id"], d["title"], d["text"]) for d in _lines("squad_docs.jsonl")[:n]]


def _rows_by_generation(location: str) -> dict[int, int]:
    from qa.index import milvus

    loc = parse_location(location)
    c = milvus.client(loc)
    counts = {}
    for gen in range(0, 10):
        found = c.query(f"{loc.collection}_dense", filter=f"gen == {gen}", output_fields=["count(*)"],
                        consistency_level="Strong")[0]["count(*)"]
        if found:
            counts[gen] = int(found)
    return counts


@needs_milvus
def test_add_and_remove_publish_a_new_generation(location: str) -> None:
    from qa.index import milvus

    docs = _docs(4)
    qa.Index.build(docs[:2], location)
    first = qa.Index.load(location)
    up = first.update(add=[docs[2], docs[3]])
    assert up.added == [docs[2].doc_id, docs[3].doc_id] and up.embedded < sum(len(d.text) for d in docs[2:])
    second = qa.Index.load(location)
    assert [d.doc_id for d in second.documents] == [d.doc_id for d in docs]
    gone = second.update(remove=[docs[0].doc_id])
    assert gone.removed == [docs[0].doc_id]
    third = qa.Index.load(location)
    assert [d.doc_id for d in third.documents] == [d.doc_id for d in docs[1:]]
    assert milvus.current_generation(parse_location(location)) == 3
    # the committed generation and the one before it (for readers that opened it) are kept; older ones go
    assert sorted(_rows_by_generation(location)) == [2, 3]
    # a reader that opened generation 2 still answers while 3 is committed
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    assert second.search(question, k=3)
    # one opened two saves ago has lost its rows: it says so, and qa.retrieve reopens by itself
    with pytest.raises(qa.IndexUnavailableError, match="open it again"):
        first.search(question, k=3)
    _same(qa.retrieve(question, k=3, index=location), third.search(question, k=3))
    # the same documents built afresh into FAISS rank alike
    _same(qa.Index.build(docs[1:]).search(question, k=10), third.search(question, k=10))


_CHILD = """
import sys, time
import qa
from qa.index import milvus

written = milvus._write_blobs

def write_then_hang(*args, **kwargs):
    written(*args, **kwargs)  # every row of the new generation is in Milvus; it is not published yet
    print("WRITTEN", flush=True)
    time.sleep(600)

milvus._write_blobs = write_then_hang
qa.Index.load(sys.argv[1]).update(add=[qa.Document("added", "Added", sys.argv[2])])
"""


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(") ")[-1].startswith("Z"))


@needs_milvus
@pytest.mark.slow
def test_an_add_killed_half_way_is_never_seen_and_can_be_rerun(location: str, tmp_path: Path) -> None:
    from qa.index import milvus

    docs = _docs(3)
    qa.Index.build(docs, location)
    before = qa.Index.load(location).documents
    milvus.close(location)  # a Lite file is opened by one process at a time
    text = "The added document tells of a harbour. Its lighthouse was built in 1871."
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, location, text], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    lite: list[int] = []
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the child has written generation 2 (or died)
        assert line.strip() == "WRITTEN", child.stderr.read() if child.stderr else ""
        lite = _children(child.pid)  # the Milvus Lite server the child started
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        child.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in lite) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in lite:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    reopened = qa.Index.load(location)
    assert reopened.documents == before  # the half-done add is invisible
    assert milvus.current_generation(parse_location(location)) == 1
    assert 2 in _rows_by_generation(location)  # its rows are there, unpublished
    up = reopened.update(add=[qa.Document("added", "Added", text)])  # the rerun cleans up and succeeds
    assert up.added == ["added"]
    after = qa.Index.load(location)
    assert [d.doc_id for d in after.documents] == [*(d.doc_id for d in before), "added"]
    assert sorted(_rows_by_generation(location)) == [1, 2]
    assert "1871" in after.search("When was the lighthouse built?", k=1)[0].text


# ---------------------------------------------------------------------- the command line and the app


@needs_milvus
def test_the_cli_takes_a_location_wherever_it_takes_an_index_folder(
    location: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qa.cli import main

    folder = tmp_path / "docs"
    folder.mkdir()
    for d in _docs(3):
        (folder / f"{d.doc_id}.txt").write_text(d.text, encoding="utf-8")
    assert main(["index", "build", "--no-progress", "--out", location, str(folder / "a00-p000.txt"),
                 str(folder / "a00-p001.txt")]) == 0
    assert f"into {location}" in capsys.readouterr().out
    assert main(["index", "add", "--no-progress", location, str(folder / "a00-p002.txt")]) == 0
    assert capsys.readouterr().out.startswith("added 1, replaced 0, unchanged 0")
    assert main(["index", "add", "--no-progress", location, str(folder / "a00-p002.txt")]) == 0
    assert capsys.readouterr().out.startswith("added 0, replaced 0, unchanged 1")
    assert main(["index", "remove", "--no-progress", location, "a00-p000"]) == 0
    assert capsys.readouterr().out.startswith("removed 1; 2 documents")
    assert main(["index", "list", "--json", location]) == 0
    assert [d["doc_id"] for d in json.loads(capsys.readouterr().out)] == ["a00-p001", "a00-p002"]
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    assert main(["retrieve", "--json", "--index", location, question, "-k", "3"]) == 0
    got = json.loads(capsys.readouterr().out)
    same = qa.Index.build([folder / "a00-p001.txt", folder / "a00-p002.txt"])  # the same documents, in FAISS
    want = [p.to_dict() for p in same.search(question, k=3)]
    assert [(p["doc_id"], p["start"], p["end"]) for p in got] == [(p["doc_id"], p["start"], p["end"]) for p in want]
    assert main(["ask", "--json", "--index", location, question]) == 0
    assert [(c["doc_id"], c["start"]) for c in json.loads(capsys.readouterr().out)["citations"]][:1] == \
        [(want[0]["doc_id"], want[0]["start"])]
    assert main(["index", "build", "--out", "milvus:./corpus.db", str(folder)]) == 2
    assert "names no collection" in capsys.readouterr().err


@needs_milvus
@pytest.mark.slow
def test_the_app_answers_from_a_milvus_location_alone(location: str, serve_app, _offline_hub: None) -> None:  # type: ignore[no-untyped-def]
    from gradio_client import Client

    from qa.index import milvus

    docs = _docs(3)
    local = qa.Index.build(docs, location)
    milvus.close(location)  # the app's process opens the Lite file: one process at a time
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    want = qa.answer(question, index=local)
    app = serve_app(location)
    lite: list[int] = []
    try:
        client = Client(app.url, verbose=False, analytics_enabled=False)
        lite = _children(app.pid or 0)
        got = client.predict(question, api_name="/ask")
        assert got["found"] == want.found and want.citations
        assert [(c["doc_id"], c["start"], c["end"]) for c in got["citations"]] == \
            [(c.doc_id, c.start, c.end) for c in want.citations]
        listed = client.predict(api_name="/documents")
        assert [row["doc_id"] for row in listed["documents"]] == [d.doc_id for d in docs]
    finally:
        app.stop()
        for pid in lite:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@needs_milvus
def test_a_lite_file_another_process_holds_is_unavailable_and_says_why(location: str) -> None:
    from qa.index import milvus

    qa.Index.build([qa.Document("a", "A", "Cats purr. Dogs bark.")], location)
    milvus.close(location)
    code = ("import sys, qa; qa.Index.load(sys.argv[1]); print('OPEN', flush=True); sys.stdin.read()")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-c", code, location], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    lite: list[int] = []
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "OPEN"
        lite = _children(child.pid)
        with pytest.raises(qa.IndexUnavailableError, match="one process at a time"):
            qa.Index.load(location)
    finally:
        child.communicate(timeout=60)  # end of its stdin: it exits, and its Lite server with it
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in lite) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in lite:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert qa.Index.load(location).search("Which animal barks?", k=1)[0].text == "Dogs bark."


@needs_milvus
def test_vectors_of_another_dimension_are_refused_before_anything_is_written(location: str) -> None:
    from qa.index import milvus

    qa.Index.build([qa.Document("a", "A", "Cats purr. Dogs bark.")], location)
    loc = parse_location(location)
    c = milvus.client(loc)
    c.drop_collection(f"{loc.collection}_dense_context")
    milvus._create(c, milvus._pymilvus(loc), f"{loc.collection}_dense_context", "dense_context", 8)
    with pytest.raises(qa.IndexWriteError, match=r"holds 8-d vectors .* under another collection name"):
        qa.Index.build([qa.Document("b", "B", "Birds sing.")], location)
    assert milvus.current_generation(loc) == 1


# ---------------------------------------------------------------------- the index fitted to the size


def ivf_corpus(n_docs: int = 20, per_doc: int = 150) -> tuple[list[qa.Document], np.ndarray, np.ndarray]:
    """Documents of ``n_docs * per_doc`` sentences and random unit vectors for them and their titles (an IVF
    index needs thousands of rows; the model would take minutes to embed them)."""
    docs = [qa.Document(f"d{d}", f"Topic {d}", " ".join(f"Sentence {i} of part {d} is here." for i in range(per_doc)))
            for d in range(n_docs)]
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n_docs * per_doc + n_docs, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return docs, vectors[: n_docs * per_doc], vectors[n_docs * per_doc :]


def check_ivf_index(location: str, *, proves_clusters: bool) -> None:
    """Past a (small) ``exact_limit`` the sentence collection is IVF_FLAT with FAISS's lists, the manifest says so,
    the index's vectors are stored bit for bit, and scoring given candidates returns every one with numpy's inner
    product even when a search probes one list. ``proves_clusters``: also require that a one-list search misses some of
    the true top 10 (the server builds the index; Milvus Lite 2.5 scans everything at these sizes)."""
    from qa.config import get_settings
    from qa.index import milvus
    from qa.index.stores.faiss import default_nprobe, ivf_lists

    docs, vectors, titles = ivf_corpus()
    n = len(vectors)
    settings = get_settings(exact_limit=500)
    built = qa.Index.from_vectors(docs, vectors, title_vectors=titles, settings=settings)
    # what is saved: the in-memory index's vectors (its FAISS IVF index holds them as 8-bit codes)
    vectors = built.vector_store("dense").vectors(np.arange(n))
    built.save(location)
    loaded = qa.Index.load(location, settings=settings)
    loc = parse_location(location)
    described = milvus.client(loc).describe_index(f"{loc.collection}_dense", "vec")
    nlist = ivf_lists(n)
    assert (described["index_type"], int(described["nlist"])) == ("IVF_FLAT", nlist)
    assert loaded.manifest["channels"]["dense"]["milvus_index"] == {"type": "IVF_FLAT", "metric": "IP",
                                                                    "nlist": nlist, "nprobe": default_nprobe(nlist)}
    assert loaded.manifest["channels"]["dense_context"]["milvus_index"]["type"] == "FLAT"  # it only scores
    assert loaded.vector_store("dense").describe() == f"Milvus IVF_FLAT nlist={nlist} nprobe={default_nprobe(nlist)} IP"
    stored = loaded.vector_store("dense").vectors(np.arange(n))
    assert np.array_equal(stored, vectors)
    one_list = qa.Index.load(location, settings=get_settings(exact_limit=500, nprobe=1))
    store = one_list.vector_store("dense")
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((8, 384)).astype(np.float32)
    missed = 0
    deadline = time.monotonic() + (90 if proves_clusters else 0)
    for q in queries:
        rows = rng.choice(n, 300, replace=False)
        got = store.score(q, rows)
        assert np.abs(got - vectors[rows] @ q).max() < 1e-5  # every candidate, exactly, under nprobe=1
        truth = np.argsort(-(vectors @ q))[:10]
        all_lists = loaded.vector_store("dense").search(q[None], 10)[0].rows  # the default nprobe
        assert len(all_lists) == 10
        while True:  # the server builds the index after the flush, in the background
            found = store.search(q[None], 10)[0].rows
            missed += 10 - len(np.intersect1d(found, truth))
            if missed or time.monotonic() > deadline:
                break
            time.sleep(2)
    assert (missed > 0) == proves_clusters
    context = loaded.vector_store("dense_context")
    rows = np.arange(0, n, 7)
    assert np.abs(context.score(queries[0], rows) - context.vectors(rows) @ queries[0]).max() < 1e-5
    # a save at a size within the exact limit goes back to FLAT (the collection's index is rebuilt)
    small = get_settings(exact_limit=100_000)
    qa.Index.from_vectors(docs, vectors, title_vectors=titles, settings=small).save(location)  # FAISS flat: as given
    assert milvus.client(loc).describe_index(f"{loc.collection}_dense", "vec")["index_type"] == "FLAT"
    again = qa.Index.load(location, settings=small)
    assert again.vector_store("dense").describe() == "Milvus FLAT IP"
    assert np.array_equal(again.vector_store("dense").vectors(np.arange(n)), vectors)


@needs_milvus
def test_past_the_exact_limit_the_index_is_ivf_and_scores_stay_exact(location: str) -> None:
    check_ivf_index(location, proves_clusters=False)
