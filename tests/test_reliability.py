"""Reliability: load, documents changing under queries, crashes while indexing, damaged files; nothing lost.

Everything is real: the model, FAISS, the Gradio server (``benchmarks/load.py`` starts it on 127.0.0.1), and
separate processes that write indexes or are killed with SIGKILL while they do. No assertion is about time:
the figures come from ``benchmarks/load.py``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import qa
from qa.index import MANIFEST, rebuild_hint

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated")

# Two guarantees need a change to qa/index.py that its owner is to make (the patch is in the issue 7 report):
# a lock file that keeps a load from seeing a save half swapped in, and a check that the manifest lists every
# file. Until it lands, the tests that need it are expected to fail; afterwards they run as ordinary tests.
needs_save_lock = pytest.mark.xfail(
    not hasattr(qa.index, "_locked"),
    reason="qa/index.py: Index.load can mix the files of two saves made while it runs (needs the save lock)",
    strict=False,  # the race shows up on most runs, not all
)
needs_file_list_check = pytest.mark.xfail(
    not hasattr(qa.index, "_check_files"),
    reason="qa/index.py: Index.load trusts a manifest whose file list is missing, malformed or incomplete",
    strict=True,
)

OLD = [
    qa.Document("cats", "Cats", "Cats sleep for most of the day. A cat purrs when it is content."),
    qa.Document("dogs", "Dogs", "Dogs bark at strangers. Many dogs love to fetch sticks.\nPuppies need training."),
    qa.Document("space", "Space", "The Moon orbits the Earth every 27 days. Mars has two small moons."),
]
#: Documents added to OLD to make the new state.
ADDED = [
    qa.Document("volcanoes", "Volcanoes", "Mount Etna is an active volcano in Sicily. Volcanoes erupt molten lava."),
    qa.Document("oceans", "Oceans", "The Pacific is the largest ocean on Earth. Coral reefs grow in warm water."),
]
QUESTIONS = [
    "Which volcano is in Sicily?",
    "What is the largest ocean?",
    "Which pet purrs?",
    "How many moons has Mars?",
]
K = 3

Result = list[tuple[str, int]]


def _result(passages: list[qa.Passage]) -> Result:
    return [(p.doc_id, p.sentence) for p in passages]


@pytest.fixture(scope="module")
def built() -> dict[str, qa.Index]:
    """The old document set and the new one (the old plus two added documents), built in memory."""
    return {"old": qa.Index.build(OLD), "new": qa.Index.build(OLD + ADDED)}


@pytest.fixture(scope="module")
def states(built: dict[str, qa.Index]) -> dict[str, dict[str, Result]]:
    """The search results every question must give on the old and on the new document set."""
    expected = {name: {q: _result(index.search(q, k=K)) for q in QUESTIONS} for name, index in built.items()}
    assert any(expected["old"][q] != expected["new"][q] for q in QUESTIONS), "the two states must be told apart"
    return expected


def _state_of(question: str, result: Result, states: dict[str, dict[str, Result]]) -> str:
    """``"old"``, ``"new"``, ``"either"`` (both states give this result) or ``"neither"`` (a partial state)."""
    matches = [name for name in ("old", "new") if states[name][question] == result]
    return "either" if len(matches) == 2 else matches[0] if matches else "neither"


def _qa_command(*args: str) -> list[str]:
    """The ``qa`` command line of this environment (the console script next to the interpreter)."""
    script = Path(sys.executable).with_name("qa")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from qa.cli import main; sys.exit(main())", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "QA_PROGRESS": "0"}


# ------------------------------------------------------------------------------------------ load


@pytest.mark.slow
def test_eight_users_for_ten_seconds_get_every_answer_right(article_index: qa.Index, tmp_path: Path) -> None:
    """The short version of ``benchmarks/load.py``: 8 concurrent gradio_client users, 10 s, zero errors."""
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--users", "8", "--seconds", "10", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(),
    )
    assert out.is_file(), proc.stdout + proc.stderr
    run = json.loads(out.read_text(encoding="utf-8"))["run"]
    assert run["errors"] == 0, run["error_kinds"]
    assert run["wrong_replies"] == 0
    assert run["users"] == 8 and run["answered"] >= 8
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------ queries during updates

_WRITER = """
import sys
import qa
path, rounds = sys.argv[1], int(sys.argv[2])
old, new = qa.Index.load(sys.argv[3]), qa.Index.load(sys.argv[4])
print("ready", flush=True)
for _ in range(rounds):
    new.save(path)  # the documents added
    old.save(path)  # and gone again
print("saves", 2 * rounds, flush=True)
"""


@needs_save_lock
def test_queries_while_documents_are_added_see_the_old_or_the_new_state(
    built: dict[str, qa.Index], states: dict[str, dict[str, Result]], tmp_path: Path
) -> None:
    """Another process saves the new set, then the old one, over and over at the path, while threads here query it.

    Every result must be exactly the old set's or exactly the new set's (same documents, same sentences, same
    order), and no query may fail: ``qa.retrieve`` (which reloads a path when a save replaced it) and fresh
    ``Index.load`` calls alike.
    """
    path = tmp_path / "idx"
    built["old"].save(tmp_path / "old")
    built["new"].save(tmp_path / "new")
    built["old"].save(path)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), "40", str(tmp_path / "old"), str(tmp_path / "new")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready", writer.communicate(timeout=60)[1]

    seen: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    done = threading.Event()

    def reader(ask: Callable[[str], list[qa.Passage]]) -> None:
        for n in range(100_000):  # bounded; normally ends when the writer does
            if done.is_set():
                return
            question = QUESTIONS[n % len(QUESTIONS)]
            try:
                state = _state_of(question, _result(ask(question)), states)
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                with lock:
                    failures[f"{type(exc).__name__}: {exc}"[:200]] += 1
                continue
            with lock:
                seen[state] += 1

    def by_retrieve(question: str) -> list[qa.Passage]:
        return qa.retrieve(question, k=K, index=path)

    def by_fresh_load(question: str) -> list[qa.Passage]:
        return qa.Index.load(path).search(question, k=K)

    readers = [threading.Thread(target=reader, args=(f,)) for f in (by_retrieve, by_retrieve, by_fresh_load)]
    for t in readers:
        t.start()
    try:
        out, err = writer.communicate(timeout=300)
    finally:
        done.set()
        for t in readers:
            t.join(120)
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert out.split()[-2:] == ["saves", "80"], out
    assert not failures, failures
    assert seen["neither"] == 0, seen
    assert seen["old"] > 0 and seen["new"] > 0, f"both states should have been queried: {seen}"
    # Once the writer is done, the path holds the old set again, and a query sees it.
    assert all(_result(qa.retrieve(q, k=K, index=path)) == states["old"][q] for q in QUESTIONS)


# ------------------------------------------------------------------------------------------ killed while indexing


def _on_disk(path: Path, states: dict[str, dict[str, Result]]) -> str:
    """Which state the index at ``path`` holds, loaded afresh; fails on anything else."""
    index = qa.Index.load(path)
    ids = [d.doc_id for d in index.documents]
    state = {tuple(d.doc_id for d in OLD): "old", tuple(d.doc_id for d in OLD + ADDED): "new"}.get(tuple(ids))
    assert state is not None, f"documents {ids} are neither the old nor the new set"
    for q in QUESTIONS:
        assert _result(index.search(q, k=K)) == states[state][q], f"{q!r} on the {state} documents"
    return state


@pytest.mark.slow
def test_indexing_killed_at_random_moments_leaves_the_old_or_the_new_index(
    states: dict[str, dict[str, Result]], tmp_path: Path
) -> None:
    """``qa index build --out DIR`` over an existing index, SIGKILLed at seeded random moments.

    The build is timed once; then 20 kills are spread over its whole duration (one random moment in each
    twentieth of 1.1 times it), and 4 more land while the new index is being written (once its temporary folder
    appears). After each kill the index must load and be exactly the old or the new one. The model load makes
    one build take 10-20 s here, so the test takes about 15 builds' time: it is marked slow.
    """
    sources = tmp_path / "docs.jsonl"  # the new set, ids, titles and texts exactly as in OLD + ADDED
    lines = [json.dumps({"id": d.doc_id, "title": d.title, "text": d.text}) for d in OLD + ADDED]
    sources.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = tmp_path / "idx"
    old = qa.Index.build(OLD, path)
    command = _qa_command("index", "build", "--no-progress", "--out", str(path), str(sources))

    started = time.monotonic()
    full = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env())
    assert full.returncode == 0, full.stderr[-3000:]
    duration = time.monotonic() - started
    assert _on_disk(path, states) == "new"

    rng = random.Random(20240607)
    outcomes: Counter[str] = Counter()
    trials = [("spread", (i + rng.random()) / 20 * 1.1 * duration) for i in range(20)]  # the last ones may finish
    trials += [("writing", rng.uniform(0.0, 0.15)) for _ in range(4)]
    for kind, delay in trials:
        old.save(path)
        assert _on_disk(path, states) == "old"
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
        if kind == "writing":
            # Wait (bounded) for the save's temporary folder, then kill a moment later.
            for _ in range(60_000):
                if proc.poll() is not None or any(path.parent.glob(f".{path.name}.tmp-*")):
                    break
                time.sleep(0.002)
        try:
            proc.wait(timeout=delay)
            outcomes["finished before the kill"] += 1
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        outcomes[f"{kind}: {_on_disk(path, states)}"] += 1
    print(f"build {duration:.1f} s; outcomes {dict(outcomes)}")
    assert sum(n for k, n in outcomes.items() if ":" in k) == 24
    assert outcomes["spread: old"] > 0  # kills before the end of the build changed nothing


# ------------------------------------------------------------------------------------------ damaged files


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "idx"
    qa.Index.build(OLD, path)
    return path


def _damaged(saved: Path, tmp_path: Path, damage: Callable[[Path], None]) -> Path:
    path = tmp_path / "idx"
    shutil.copytree(saved, path)
    damage(path)
    return path


def _assert_refused(path: Path) -> None:
    """Loading, and asking through ``qa.retrieve``, both fail with a QAError that says how to rebuild."""
    hint = rebuild_hint(path)
    with pytest.raises((qa.IndexCorruptError, qa.IndexMismatchError)) as loaded:
        qa.Index.load(path)
    assert hint in str(loaded.value)
    with pytest.raises((qa.IndexCorruptError, qa.IndexMismatchError)) as asked:
        qa.retrieve(QUESTIONS[0], index=path)
    assert hint in str(asked.value)


def _index_files(saved: Path) -> list[str]:
    return sorted(json.loads((saved / MANIFEST).read_text(encoding="utf-8"))["files"])


def test_every_kind_of_index_file_is_covered_by_a_checksum(saved: Path) -> None:
    files = _index_files(saved)
    on_disk = sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert files == on_disk
    for expected in ("vectors.faiss", "context.faiss", "meta.sqlite", "bm25/vocab.index.json"):
        assert expected in files
    assert any(f.startswith("bm25/") and f.endswith(".npy") for f in files)
    assert any(f.startswith("bm25_context/") for f in files)


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[: len(data) // 2])

    return damage


def _flip_byte(name: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = bytearray((path / name).read_bytes())
        data[len(data) // 2] ^= 0x01  # same size, one bit changed
        (path / name).write_bytes(bytes(data))

    return damage


def _delete(name: str) -> Callable[[Path], None]:
    return lambda path: (path / name).unlink()


@pytest.mark.parametrize("how", [_truncate, _flip_byte, _delete], ids=["truncated", "one-bit-altered", "deleted"])
def test_a_damaged_index_file_is_detected_with_the_rebuild_command(
    saved: Path, tmp_path_factory: pytest.TempPathFactory, how: Callable[[str], Callable[[Path], None]]
) -> None:
    for name in _index_files(saved):
        _assert_refused(_damaged(saved, tmp_path_factory.mktemp("damaged"), how(name)))


def _edit_manifest(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        result = edit(manifest)
        (path / MANIFEST).write_text(json.dumps(manifest if result is None else result), encoding="utf-8")

    return damage


def _set(keys: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        target = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def _drop_entry_and_alter(name: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        _edit_manifest(lambda m: m["files"].pop(name) and None)(path)
        _flip_byte(name)(path)

    return damage


MANIFEST_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated JSON": _truncate(MANIFEST),
    "empty": lambda path: (path / MANIFEST).write_bytes(b""),
    "not UTF-8": lambda path: (path / MANIFEST).write_bytes(b"\xff\xfe{\x00"),
    "a list, not an object": _edit_manifest(lambda m: [m]),
    "deleted": _delete(MANIFEST),
    "a checksum edited": _edit_manifest(_set(("files", "vectors.faiss", "sha256"), "0" * 64)),
    "a size edited": _edit_manifest(_set(("files", "meta.sqlite", "bytes"), 1)),
    "an unknown file listed": _edit_manifest(_set(("files", "extra.bin"), {"sha256": "0" * 64, "bytes": 1})),
    "format version edited": _edit_manifest(_set(("format_version",), 999)),
    "model edited": _edit_manifest(_set(("model", "name"), "intfloat/e5-small-v2")),
    "model not an object": _edit_manifest(_set(("model",), "all-MiniLM-L6-v2")),
    "file list removed": _edit_manifest(lambda m: m.pop("files") and None),
    "file list emptied": _edit_manifest(_set(("files",), {})),
    "file list not an object": _edit_manifest(_set(("files",), ["vectors.faiss"])),
    "a file entry not an object": _edit_manifest(_set(("files", "vectors.faiss"), "sha256")),
    "vectors.faiss unlisted and altered": _drop_entry_and_alter("vectors.faiss"),
    "meta.sqlite unlisted and altered": _drop_entry_and_alter("meta.sqlite"),
}


_NEEDS_FILE_LIST_CHECK = {
    "model not an object",
    "file list removed",
    "file list emptied",
    "file list not an object",
    "a file entry not an object",
    "vectors.faiss unlisted and altered",
    "meta.sqlite unlisted and altered",
}


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=[needs_file_list_check] if c in _NEEDS_FILE_LIST_CHECK else []) for c in MANIFEST_DAMAGE],
)
def test_a_damaged_or_edited_manifest_is_detected_with_the_rebuild_command(
    saved: Path, tmp_path: Path, case: str
) -> None:
    _assert_refused(_damaged(saved, tmp_path, MANIFEST_DAMAGE[case]))


def test_the_undamaged_copy_still_loads(saved: Path, tmp_path: Path, states: dict[str, dict[str, Result]]) -> None:
    """The damage above is what is refused: an exact copy of the same index loads and answers as before."""
    assert _on_disk(_damaged(saved, tmp_path, lambda path: None), states) == "old"
