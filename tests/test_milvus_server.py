"""The dense path against a real Milvus standalone server (``pip install milvus==2.3.5``: ``milvus-server``).

One server for the module, started on free ports in a temporary folder and stopped by PID at the end (no
process of it may be left). The oracle is the FAISS index of the same documents. What this server cannot do:
its listeners (gRPC, HTTP, the coordinators, metrics) bind every interface whatever the options; the
``--extra-config <component>.ip=127.0.0.1`` flags make its components advertise and dial 127.0.0.1 only, and
the test reaches it on 127.0.0.1 (docs/notes/milvus-ray.md section 6).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_milvus import HAVE_MILVUS, _docs, _lines, _same

import qa
from qa.index.location import parse_location

ROOT = Path(__file__).resolve().parents[1]


def _server_command() -> str | None:
    """``milvus-server``: $QA_MILVUS_SERVER, beside this Python, or on PATH (CI may keep it in its own venv)."""
    named = os.environ.get("QA_MILVUS_SERVER")
    if named:
        return named if os.access(named, os.X_OK) else None
    beside = Path(sys.executable).parent / "milvus-server"
    return str(beside) if beside.exists() else shutil.which("milvus-server")


SERVER = _server_command()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.milvus,
    pytest.mark.skipif(SERVER is None, reason="the milvus-server command is missing: pip install milvus==2.3.5 "
                       "(or set QA_MILVUS_SERVER to its path) to run the Milvus server tests"),
    pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus is not installed: pip install 'qa[milvus]'"),
]

_PORT_FLAGS = ("--etcd-port", "--root-coord-port", "--proxy-port", "--proxy-internal-port", "--query-coord-port",
               "--query-node-port", "--index-coord-port", "--index-node-port", "--data-coord-port",
               "--data-node-port")
_COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
#: The proxy's time tick every 20 ms, not 200: a read at Strong consistency (every read qa makes) waits for the
#: query node to pass the request's timestamp, two ticks (~400 ms a call at 200 ms; ~30 ms at 20). The test of
#: 250 questions makes ~1,000 such searches: 372 s of its 443 at the default, the suite's long pole in CI.
_SETTINGS = ("proxy.timeTickInterval=20",)


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _group_alive(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            alive.append(int(stat.parent.name))
    return alive


class Server:
    """A running ``milvus-server``: its wrapper's PID (its own process group), URI and data folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        ports = _free_ports(len(_PORT_FLAGS))
        args = [SERVER, "--data", str(folder / "data")]
        for flag, port in zip(_PORT_FLAGS, ports, strict=True):
            args += [flag, str(port)]
        for component in _COMPONENTS:  # advertise and dial 127.0.0.1, not the machine's address
            args += ["--extra-config", f"{component}.ip=127.0.0.1"]
        for setting in _SETTINGS:
            args += ["--extra-config", setting]
        self.log = folder / "server.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
        self.pid = self.proc.pid
        # a port given on the command line is used as given (the wrapper fails rather than move it)
        self.port = ports[_PORT_FLAGS.index("--proxy-port")]
        self.uri = f"http://127.0.0.1:{self.port}"
        started = time.monotonic()
        try:
            self._wait(started)
        except BaseException:
            self.stop()
            raise

    def _wait(self, started: float) -> None:
        while "Ctrl+C to exit" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError(f"milvus-server did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        self.start_seconds = time.monotonic() - started

    def stop(self) -> None:
        """SIGINT to the wrapper (its handler stops the binary; SIGTERM makes the binary hang), then the group."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _group_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(self.pid):
            os.killpg(self.pid, signal.SIGKILL)
            time.sleep(1)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = Server(tmp_path_factory.mktemp("milvus-server"))
    try:
        yield started
    finally:
        from qa.index import milvus

        for uri in list(milvus._clients):
            if uri == started.uri:
                milvus.close(f"milvus:{uri}#x")
        started.stop()
        assert not _group_alive(started.pid), f"milvus-server processes left: {_group_alive(started.pid)}"



# ---------------------------------------------------------------------- the tests


def test_the_server_reports_its_version_and_a_newer_feature_is_refused_by_name(server: Server) -> None:
    from qa.index import milvus

    loc = parse_location(f"milvus:{server.uri}#versions")
    text, version = milvus.server_version(loc)  # type: ignore[misc]
    assert text == "v2.3.5-lite" and version == (2, 3)
    milvus.require(loc, "query iterators", (2, 3))  # what qa uses today: this server has it
    with pytest.raises(qa.IndexUnavailableError,
                       match=r"server at milvus:http://127\.0\.0\.1:\d+#versions is version v2\.3\.5-lite; "
                             r"sparse vectors need Milvus 2\.4 or later"):
        milvus.require(loc, "sparse vectors", (2, 4))
    # it runs with the test's settings (_SETTINGS: the 20 ms tick that keeps Strong reads at tens of ms)
    assert "timeTickInterval: 20 " in (server.folder / "data" / "configs" / "milvus.yaml").read_text()
    # its health endpoint answers on 127.0.0.1
    assert "Ctrl+C" in server.log.read_text()
    with urllib.request.urlopen(f"{server.uri}/v1/vector/collections", timeout=10) as resp:
        assert resp.status == 200


def test_sparse_vectors_asked_of_a_2_3_server_are_refused_before_anything_is_written(server: Server) -> None:
    from qa.index import milvus

    location = f"milvus:{server.uri}#sparse"
    strict = qa.get_settings().replace(milvus_lexical="milvus")
    with pytest.raises(qa.IndexUnavailableError,
                       match=r"server at milvus:http://127\.0\.0\.1:\d+#sparse is version v2\.3\.5-lite; "
                             r"sparse vectors \(the setting milvus_lexical=milvus.*\) need Milvus 2\.4 or later\. "
                             r"Upgrade the server"):
        qa.Index.build([qa.Document("a", "A", "Cats purr. Dogs bark.")], location, settings=strict)
    c = milvus.client(parse_location(location))
    assert not [name for name in c.list_collections() if name.startswith("sparse_")]


def test_an_index_on_the_server_answers_from_a_replica_as_faiss_does(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    location = f"milvus:{server.uri}#squad"
    docs = _docs(4)
    faiss = qa.Index.build(docs[:3])
    with caplog.at_level("WARNING", logger="qa.index"):
        built = qa.Index.build(docs[:3], location)  # milvus_lexical=auto: BM25 stays local on a 2.3 server
    assert str(built.location) == location
    assert "without sparse vectors (Milvus 2.4 or later)" in caplog.text
    assert built.manifest["channels"]["bm25"]["lexical"] == "local"
    questions = [q["question"] for q in _lines("squad_questions.jsonl")]
    replica = qa.Index.load(location)  # a fresh load: everything read from the server
    assert replica.path is None and replica.documents == faiss.documents
    # it reads the generation at the timestamp of its save, not at Strong (which waits for the time ticks)
    for store in (replica.vector_store("dense"), replica.vector_store("dense_context")):
        assert store.reads["consistency_level"] == "Customized" and store.reads["guarantee_timestamp"] > 0
    for a, b in zip(faiss.search_many(questions, k=10), replica.search_many(questions, k=10), strict=True):
        _same(a, b)
    one = docs[1].doc_id
    _same(faiss.search(questions[0], k=5, docs=[one]), replica.search(questions[0], k=5, docs=[one]))
    assert {p.doc_id for p in replica.search(questions[0], k=5, docs=[one])} == {one}
    # a second replica in another process, given only the location (no index folder anywhere)
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "QA_INDEX_DIR": str(tmp_path / "none")}
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    out = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "--json", "--index", location, question],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    got = [(c["doc_id"], c["start"], c["end"]) for c in json.loads(out.stdout)["citations"]]
    want = [(c.doc_id, c.start, c.end) for c in qa.answer(question, index=faiss).citations]
    assert got == want

    # add and remove: every replica that opens the location afterwards sees the change
    replica.update(add=[docs[3]])
    after_add = qa.Index.load(location)
    assert [d.doc_id for d in after_add.documents] == [d.doc_id for d in docs]
    replica_faiss = qa.Index.build(docs)
    for q in questions[:8]:
        _same(replica_faiss.search(q, k=10), after_add.search(q, k=10))
    after_add.update(remove=[docs[0].doc_id])
    after_remove = qa.Index.load(location)
    assert [d.doc_id for d in after_remove.documents] == [d.doc_id for d in docs[1:]]
    fresh = qa.Index.build(docs[1:])
    for q in questions[:8]:
        _same(fresh.search(q, k=10), after_remove.search(q, k=10))
    with pytest.raises(qa.QAError, match=f"unknown document id '{docs[0].doc_id}'"):
        after_remove.search(questions[0], docs=[docs[0].doc_id])


def test_past_the_exact_limit_the_server_clusters_and_scores_stay_exact(server: Server) -> None:
    from test_milvus import check_ivf_index

    check_ivf_index(f"milvus:{server.uri}#ivf", proves_clusters=True)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed: pip install 'qa[ray]'")
def test_ray_workers_write_the_vectors_to_the_server_as_a_local_build_makes_them(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_ray_build import SOURCES, assert_same, started_with, wait_gone

    from qa.index import milvus

    location = f"milvus:{server.uri}#ray"
    reference = qa.Index.build(SOURCES)  # FAISS, flat: the vectors exactly as the model made them
    short = Path(tempfile.mkdtemp(prefix="qa-t-", dir="/tmp"))  # Ray's sockets live under it: a short path
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(short))
        monkeypatch.setenv("TMPDIR", str(short))  # marks the processes Ray starts

        def driver_writes(*args: object) -> None:
            raise AssertionError("the driver wrote the sentence rows: the workers should have")

        monkeypatch.setattr(milvus, "_write_sentences", driver_writes)  # the workers are other processes
        # what a killed build left: rows of the generation never published, which the build must delete first
        loc = parse_location(location)
        milvus.prepare(loc, n=1, dim=reference.dimension, settings=reference.settings, model=reference.model)
        milvus.client(loc).insert("ray_dense", [{"id": (1 << 40) | 999, "gen": 1, "row": 999, "start": 0, "end": 1,
                                                 "dup": 0, "key_text": 0, "key_window": 0,
                                                 "vec": [0.0] * reference.dimension}])
        built = qa.Index.build(SOURCES, location, ray="local")
        assert wait_gone(short) == [] and not started_with(short)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert str(built.location) == location and built.manifest["generation"] == 1
    assert_same(built, reference, score_tolerance=1e-5)  # the index returned reads the vectors the workers wrote
    assert_same(qa.Index.load(location), reference, score_tolerance=1e-5)
