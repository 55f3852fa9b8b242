"""Building on Ray (``qa index build --ray``, ``Index.build(ray=...)``) against a real local Ray instance.

Each Ray start takes 10-30 s on the shared 2-core machine, so there are two: one for the command line (a
subprocess, as a user runs it) and one shared by the API builds. Every process a Ray start makes is found
afterwards by the temporary folder it was given (``TMPDIR`` in its environment), and must be gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

import qa
import qa.sentences
from qa import embedding
from qa.config import get_settings
from qa.index import build as build_module
from qa.index import ray_build

DATA = Path(__file__).parent / "data"
ARTICLE = Path(qa.__file__).parent / "data" / "article.txt"
SOURCES = [ARTICLE, DATA / "squad_docs.jsonl"]  # 13 documents, 77 sentences
QUESTIONS = ["Who won Super Bowl 50?", "Where was the game played?", "What did the ambassador discuss?"]

needs_ray = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed: pip install 'qa[ray]'")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path: Ray keeps Unix sockets under it (at most 107 bytes a path)."""
    path = Path(tempfile.mkdtemp(prefix="qa-t-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def started_with(marker: Path) -> list[int]:
    """PIDs of the processes (other than this one) whose command line or environment names ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if str(marker).encode() in text:
            found.append(int(entry.name))
    return found


def wait_gone(marker: Path, timeout: float = 30.0) -> list[int]:
    """The processes named by ``marker`` still alive after ``timeout`` seconds (Ray's exit is asynchronous)."""
    deadline = time.monotonic() + timeout
    while (left := started_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def listening(pids: list[int]) -> set[str]:
    """The addresses the TCP sockets of ``pids`` listen on (``ss -ltnp``)."""
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is needed to see which addresses Ray listens on")
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout.splitlines()
    mine = [line.split()[3] for line in lines if any(f"pid={pid}," in line for pid in pids)]
    assert mine, "Ray's processes listen on no TCP port?"
    return {address.rsplit(":", 1)[0].strip("[]") for address in mine}


def vectors(index: qa.Index, channel: str) -> np.ndarray:
    return index.vector_store(channel).vectors(np.arange(len(index)))


def assert_same(built: qa.Index, reference: qa.Index, *, score_tolerance: float = 0.0) -> None:
    """Bit-identical vectors in both dense channels, and the same passages with the same citations and scores
    (within ``score_tolerance``: Milvus takes the inner products itself, a float32 rounding apart from FAISS's)."""
    assert len(built) == len(reference)
    for channel in ("dense", "dense_context"):
        assert np.array_equal(vectors(built, channel), vectors(reference, channel)), channel
    for question in QUESTIONS:
        got, want = built.search(question, k=5), reference.search(question, k=5)
        assert [(p.doc_id, p.start, p.end) for p in got] == [(p.doc_id, p.start, p.end) for p in want]
        assert max(abs(a.score - b.score) for a, b in zip(got, want, strict=True)) <= score_tolerance


@pytest.fixture(scope="module")
def reference() -> qa.Index:
    """A build without Ray, with the default (int8) backend."""
    return qa.Index.build(SOURCES, settings=get_settings())


@pytest.mark.slow
@needs_ray
def test_cli_build_on_local_ray(tmp_path: Path, short_tmp: Path, reference: qa.Index) -> None:
    out = tmp_path / "idx"
    env = {**os.environ, "TMPDIR": str(short_tmp)}
    cmd = [str(Path(sys.executable).with_name("qa")), "index", "build", "--ray", "local", "--no-progress",
           "--out", str(out), *map(str, SOURCES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"sentences into {out}" in proc.stdout
    assert_same(qa.Index.load(out), reference)
    assert wait_gone(short_tmp) == []  # every Ray process the command started has ended
    assert list(short_tmp.glob("qa-ray-*")) == []  # and its temporary folder is removed


@pytest.mark.slow
@needs_ray
def test_api_builds_on_ray_match_local_builds(
    tmp_path: Path, short_tmp: Path, reference: qa.Index, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import ray

    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    monkeypatch.setenv("TMPDIR", str(short_tmp))  # marks the processes Ray starts
    # Small chunks: many model calls of a few sentences each, spread over the two actors. With float weights
    # a sentence's vector depends on its batch, so this checks that each call is the local build's call.
    monkeypatch.setattr(build_module, "FIRST_CHUNK_CHARS", 1)  # a chunk, so a model call, per document
    monkeypatch.setattr(build_module, "CHUNK_CHARS", 1)
    float_settings = get_settings(backend="onnx")
    float_reference = qa.Index.build(SOURCES, settings=float_settings)
    assert len(ray_build.plan(qa.load_sources(SOURCES)).calls) == 13
    with ray_build.ray_session("local"):
        assert ray.cluster_resources()["CPU"] == len(os.sched_getaffinity(0))
        assert listening([*started_with(short_tmp), os.getpid()]) <= {"127.0.0.1", "::ffff:127.0.0.1"}
        saved = qa.Index.build(SOURCES, tmp_path / "idx", ray="local")  # uses the running instance
        floats = qa.Index.build(SOURCES, settings=float_settings, ray="local")
        lite = None
        if find_spec("pymilvus") and find_spec("milvus_lite"):  # a Lite file: one process, so the driver writes
            monkeypatch.setenv("GLOG_log_dir", str(tmp_path))  # Lite's server logs there, not into /tmp
            lite = f"milvus:{tmp_path}/ray.db#ray"
            with caplog.at_level(logging.INFO, logger="qa.index"):
                qa.Index.build(SOURCES, lite, ray="local")
            assert "is a Milvus Lite file, which one process opens at a time" in caplog.text
    assert not ray.is_initialized()
    if lite is not None:
        from qa.index import milvus

        assert_same(qa.Index.load(lite), reference, score_tolerance=1e-5)
        milvus.close(lite)
    assert_same(qa.Index.load(tmp_path / "idx"), reference)
    assert_same(saved, reference)
    assert_same(floats, float_reference)
    assert not np.array_equal(vectors(floats, "dense"), vectors(reference, "dense"))  # two backends indeed
    assert wait_gone(short_tmp) == []
    assert list(short_tmp.glob("qa-ray-*")) == []


@needs_ray
def test_unreachable_address_fails_fast_and_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(ray_build.RayConnectError, match=f"cannot reach the Ray cluster at '{address}'"):
        qa.Index.build([qa.Document("a", "A", "Cats purr.")], tmp_path / "idx", ray=address)
    assert time.monotonic() - started < 30  # ray.init alone would wait a minute or more
    assert not (tmp_path / "idx").exists()
    with pytest.raises(ray_build.RayConnectError, match="not host:port"):
        qa.Index.build([qa.Document("a", "A", "Cats purr.")], ray="no-port-here")
    with pytest.raises(qa.ArgumentError, match="not True"):
        qa.Index.build([qa.Document("a", "A", "Cats purr.")], ray=True)  # type: ignore[arg-type]


@needs_ray
def test_cli_reports_an_unreachable_address_in_one_line(tmp_path: Path) -> None:
    cmd = [str(Path(sys.executable).with_name("qa")), "index", "build", "--ray", "127.0.0.1:1",
           "--out", str(tmp_path / "idx"), str(ARTICLE)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 2
    assert "cannot reach the Ray cluster at '127.0.0.1:1'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ray_build.RayUnavailableError, match=r"pip install 'qa\[ray\]'"):
        qa.Index.build([qa.Document("a", "A", "Cats purr.")], ray="local")


def test_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_RAY_ADDRESS", "10.0.0.5:6379")
    assert get_settings().ray_address == "10.0.0.5:6379"
    monkeypatch.delenv("QA_RAY_ADDRESS")
    assert get_settings().ray_address is None


def test_plan_is_the_local_builds_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planned calls are the texts a local build sends to the model, call by call."""
    monkeypatch.setattr(build_module, "FIRST_CHUNK_CHARS", 1)  # a chunk, so a model call, per document
    monkeypatch.setattr(build_module, "CHUNK_CHARS", 1)
    sent: list[list[str]] = []

    class Recording:
        def __init__(self, encoder: object) -> None:
            self._encoder = encoder

        def __getattr__(self, name: str) -> object:
            return getattr(self._encoder, name)

        def encode_documents(self, texts: list[str], **kwargs: object) -> np.ndarray:
            sent.append(list(texts))
            return self._encoder.encode_documents(texts, **kwargs)  # type: ignore[attr-defined]

    real = embedding.get_encoder
    monkeypatch.setattr(embedding, "get_encoder", lambda settings=None: Recording(real(settings)))
    docs = qa.load_sources(SOURCES)
    qa.Index.build(docs)
    p = ray_build.plan(docs)
    assert [p.texts[a:b] for a, b in p.calls] == sent
    spans = [qa.sentences.split(d.text) for d in docs]
    sentences = [d.text[a:b] for d, sp in zip(docs, spans, strict=True) for a, b in sp]
    assert [p.texts[r] for r in p.sentence_rows] == sentences
    assert [p.texts[r] for r in p.title_rows] == [d.title for d in docs]
