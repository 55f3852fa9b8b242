"""Writing indexes safely: a save never deletes what qa did not create, leftovers of killed saves are cleaned
only when no other save runs, failed writes are clear errors with the old index intact, hostile manifests and
wrong argument types are refused clearly, and a huge ``k`` costs no more than the index holds.

Real model, real FAISS, real processes (killed, or paused mid-save, or under a file size limit or a read-only
or full file system in a private mount namespace); a fake only where a failure cannot be made for real.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qa
import qa.index
import qa.store
from qa.cli import main
from qa.index import MANIFEST, META, VECTORS, checked_manifest, rebuild_hint
from qa.retrieval import _stale_reason

DOCS = [
    qa.Document("cats", "Cats", "Cats sleep for most of the day. A cat purrs when it is content."),
    qa.Document("dogs", "Dogs", "Dogs bark at strangers. Many dogs love to fetch sticks.\nPuppies need training."),
    qa.Document("space", "Space", "The Moon orbits the Earth every 27 days. Mars has two small moons."),
]
IDS = ["cats", "dogs", "space"]
QA_BIN = Path(sys.executable).with_name("qa")


def run_qa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user would run it."""
    return subprocess.run([str(QA_BIN), *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=os.environ.copy())


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("writes") / "idx"
    qa.Index.build(DOCS, path)
    return path


@pytest.fixture(scope="module")
def small(saved: Path) -> qa.Index:
    return qa.Index.load(saved)


def _copy(saved: Path, dest: Path) -> Path:
    shutil.copytree(saved, dest)
    return dest


def _ids(path: Path) -> list[str]:
    return [d.doc_id for d in qa.Index.load(path).documents]


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*-*"))


# ------------------------------------------------------------------------------------------ never delete others' files


def test_build_into_a_folder_of_other_files_is_refused_and_the_files_survive(tmp_path: Path) -> None:
    """The reported data loss, as a user typed it: ``qa index build --out mydata docs/ok.txt``."""
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "thesis.txt").write_text("precious\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ok.txt").write_text("Cats purr. Dogs bark.", encoding="utf-8")
    proc = run_qa("index", "build", "--out", "mydata", "docs/ok.txt", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert (tmp_path / "mydata" / "thesis.txt").read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in (tmp_path / "mydata").iterdir()) == ["thesis.txt"]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qa: error: mydata is not a qa index")
    assert "thesis.txt" in lines[0] and "new or empty folder" in lines[0]
    assert "--out mydata" not in proc.stderr, "the error must not suggest the command that would destroy it"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(("out", "sources"), [
    ("srcdocs", ["srcdocs"]),
    ("srcdocs/idx", ["srcdocs"]),
    ("srcdocs", ["srcdocs/a.txt"]),
    ("./srcdocs/../srcdocs", ["srcdocs/b.md"]),
], ids=["out-is-the-source", "out-inside-a-source", "source-inside-out", "same-path-spelt-differently"])
def test_an_index_folder_that_is_holds_or_sits_in_a_source_is_refused_with_sources_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str, sources: list[str]
) -> None:
    src = tmp_path / "srcdocs"
    src.mkdir()
    (src / "a.txt").write_text("Apples are red.", encoding="utf-8")
    (src / "b.md").write_text("# Pears\n\nPears are green.", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert main(["index", "build", "--out", out, *sources, "--no-progress"]) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "being indexed" in err and str(Path(out)) in err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_the_api_refuses_to_save_or_build_over_other_files(small: qa.Index, tmp_path: Path) -> None:
    mydata = tmp_path / "mydata"
    mydata.mkdir()
    (mydata / "thesis.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(qa.IndexWriteError, match=r"mydata is not a qa index: it holds thesis\.txt"):
        small.save(mydata)
    with pytest.raises(qa.IndexWriteError, match="new or empty folder"):
        qa.Index.build(DOCS, mydata)
    with pytest.raises(qa.IndexWriteError, match="being indexed"):
        qa.Index.build([mydata], mydata)
    assert (mydata / "thesis.txt").read_text(encoding="utf-8") == "precious"
    assert sorted(p.name for p in mydata.iterdir()) == ["thesis.txt"]
    assert not _leftovers(mydata)


def test_an_index_folder_that_also_holds_a_user_file_is_not_replaced(saved: Path, tmp_path: Path) -> None:
    """A qa manifest does not make everything beside it qa's: the user's file would go with the old index."""
    path = _copy(saved, tmp_path / "idx")
    (path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(qa.IndexWriteError, match=r"holds notes\.txt besides the index's files"):
        qa.Index.build([qa.Document("x", "X", "Something else.")], path)
    assert (path / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(qa.IndexCorruptError) as refused:  # nor is it loaded: the manifest does not vouch for it
        qa.Index.load(path)
    assert "move that out of it first" in str(refused.value) and rebuild_hint(path) not in str(refused.value)
    (path / "notes.txt").unlink()
    assert _ids(path) == IDS


def test_a_folder_of_generic_index_file_names_that_qa_did_not_write_is_not_replaced(
    small: qa.Index, tmp_path: Path
) -> None:
    """``docs.npy`` and a ``manifest.json`` of another program are not a qa index."""
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "docs.npy", np.arange(3))
    (data / MANIFEST).write_text('{"name": "my web app", "version": 2}', encoding="utf-8")
    with pytest.raises(qa.IndexWriteError, match=r"nothing in it .* shows that qa wrote it"):
        small.save(data)
    assert sorted(p.name for p in data.iterdir()) == ["docs.npy", MANIFEST]


def test_a_file_or_a_link_as_the_index_path_is_refused(small: qa.Index, tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("mine", encoding="utf-8")
    with pytest.raises(qa.IndexWriteError, match="is a file, not an index folder"):
        small.save(file)
    assert file.read_text(encoding="utf-8") == "mine"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(qa.IndexWriteError, match="symbolic link"):
        small.save(link)
    assert link.is_symlink()


def test_rebuilding_over_an_existing_index_replaces_it(saved: Path, tmp_path: Path) -> None:
    path = _copy(saved, tmp_path / "idx")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "moon.txt").write_text("The Moon is 384,400 km away from the Earth.", encoding="utf-8")
    assert main(["index", "build", "--out", str(path), str(docs), "--no-progress"]) == 0
    assert _ids(path) == ["moon"]
    assert not _leftovers(path)


@pytest.mark.parametrize("damage", ["truncated manifest", "deleted manifest", "100k-digit number"])
def test_rebuilding_over_a_damaged_index_works(saved: Path, tmp_path: Path, damage: str) -> None:
    path = _copy(saved, tmp_path / "idx")
    if damage == "truncated manifest":
        (path / MANIFEST).write_bytes((path / MANIFEST).read_bytes()[:50])
    elif damage == "deleted manifest":
        (path / MANIFEST).unlink()
    else:
        (path / MANIFEST).write_text('{"format_version": ' + "1" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(qa.IndexCorruptError) as refused:
        qa.Index.load(path)
    assert rebuild_hint(path) in str(refused.value), "a damaged index may be rebuilt in place, and is told so"
    qa.Index.build([qa.Document("new", "New", "A brand new document.")], path)
    assert _ids(path) == ["new"]


def test_errors_about_a_folder_that_is_not_an_index_never_suggest_building_over_it(tmp_path: Path) -> None:
    mydata = tmp_path / "mydata"
    mydata.mkdir()
    (mydata / "thesis.txt").write_text("precious", encoding="utf-8")
    for call in (lambda: qa.Index.load(mydata), lambda: qa.retrieve("Who?", index=mydata),
                 lambda: checked_manifest(mydata, qa.get_settings())):
        with pytest.raises(qa.QAError) as refused:
            call()
        message = str(refused.value)
        assert "not a qa index" in message and "thesis.txt" in message
        assert f"--out {mydata}" not in message
        assert "--out NEW_FOLDER" in message


def test_an_update_never_replaces_an_index_folder_that_gained_other_files(saved: Path, tmp_path: Path) -> None:
    path = _copy(saved, tmp_path / "idx")
    index = qa.Index.load(path)
    (path / "thesis.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(qa.IndexWriteError, match=r"thesis\.txt"):
        index.update(add=[qa.Document("new", "New", "A brand new document.")])
    assert (path / "thesis.txt").read_text(encoding="utf-8") == "precious"
    assert not _leftovers(path)


# ------------------------------------------------------------------------------------------ leftovers of killed saves

_KILLED = """
import os, signal, sys, qa
import qa.index as qi
real = qi._fsync
def die(p):
    real(p)
    if p.name == {meta!r}:
        os.kill(os.getpid(), signal.SIGKILL)
qi._fsync = die
qa.Index.build([qa.Document("new", "New", "A brand new document.")], sys.argv[1])
"""


def test_a_killed_save_leaves_a_temporary_folder_that_the_next_save_removes(
    small: qa.Index, saved: Path, tmp_path: Path
) -> None:
    path = _copy(saved, tmp_path / "idx")
    proc = subprocess.run([sys.executable, "-c", _KILLED.format(meta=META), str(path)], capture_output=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()
    stale = [n for n in _leftovers(path) if ".tmp-" in n]
    assert len(stale) == 1, _leftovers(path)
    shutil.copytree(path, tmp_path / ".idx.old-0badc0de")  # as a save killed before deleting the old copy leaves
    assert _ids(path) == IDS
    small.save(path)
    assert _leftovers(path) == [], "the next save removes the stale temporary folder and the old copy"
    assert _ids(path) == IDS


_PAUSED = """
import sys, qa
import qa.index as qi
index = qa.Index.build([qa.Document("new", "New", "A brand new document.")])
real = qi._fsync
def pause(p):
    real(p)
    if p.name == {meta!r}:
        print("writing", flush=True)
        sys.stdin.readline()
qi._fsync = pause
index.save(sys.argv[1])
print("saved", flush=True)
"""


def test_a_save_running_in_another_process_keeps_its_temporary_folder(
    small: qa.Index, saved: Path, tmp_path: Path
) -> None:
    """Cleaning needs the write lock exclusively: while another process is mid-save (holding it shared), a save
    here cleans nothing, neither that save's folder nor a stale one; once it is done, the next save cleans."""
    path = _copy(saved, tmp_path / "idx")
    stale = tmp_path / ".idx.tmp-deadbeef"
    writer = subprocess.Popen([sys.executable, "-c", _PAUSED.format(meta=META), str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "writing", writer.communicate(timeout=60)[1]
        live = [n for n in _leftovers(path) if ".tmp-" in n]
        assert len(live) == 1
        stale.mkdir()  # as a killed save leaves it (planted now: the other save cleaned up before it began)
        (stale / VECTORS).write_bytes(b"\0" * 1000)
        small.save(path)  # a save while the other one runs
        assert _leftovers(path) == sorted([stale.name, *live]), "nothing is cleaned while another save runs"
        assert _ids(path) == IDS
        out, err = writer.communicate("\n", timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0 and out.split() == ["saved"], err
    assert _ids(path) == ["new"], "the other process's save went through with its temporary folder"
    assert _leftovers(path) == [stale.name]
    small.save(path)
    assert _leftovers(path) == []
    assert _ids(path) == IDS


# ------------------------------------------------------------------------------------------ failed writes


def test_disk_full_during_index_add_is_an_index_write_error_and_the_old_index_still_loads(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Focused: numpy's writes fail as on a full disk (part of a file written, then ENOSPC)."""
    path = _copy(saved, tmp_path / "idx")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "moon.txt").write_text("The Moon is 384,400 km away from the Earth.", encoding="utf-8")

    def full(file: object, *args: object, **kwargs: object) -> None:
        Path(str(file)).write_bytes(b"\x93NUMPY")
        raise OSError(errno.ENOSPC, "No space left on device", str(file))

    monkeypatch.setattr(np, "save", full)
    assert main(["index", "add", str(path), str(docs), "--no-progress"]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"qa: error: could not save the index to {path}: the disk is full")
    assert "No space left on device" in err and "free some space" in err and "unchanged" in err
    assert _ids(path) == IDS
    assert _leftovers(path) == [], "the partly written temporary folder is removed"


_TOO_LARGE = """
import resource, signal, sys, qa
text = " ".join(f"Sentence {i} is about topic number {i}." for i in range(200))
new = qa.Index.build([qa.Document("big", "Big", text)])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    new.save(sys.argv[1])
except qa.IndexWriteError as exc:
    print(exc)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_real_write_failure_under_a_file_size_limit_is_an_index_write_error(saved: Path, tmp_path: Path) -> None:
    path = _copy(saved, tmp_path / "idx")
    proc = subprocess.run([sys.executable, "-c", _TOO_LARGE, str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"could not save the index to {path}: a file grew past the largest size"), \
        proc.stdout
    assert "ulimit" in proc.stdout
    assert _ids(path) == IDS
    assert _leftovers(path) == []


def test_saving_below_a_file_instead_of_a_folder_is_an_index_write_error(small: qa.Index, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(qa.IndexWriteError, match="a part of that path is a file, not a folder"):
        small.save(tmp_path / "notes.txt" / "idx")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def _private_mount_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


def _in_private_mount(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``script`` (sh) in a mount namespace of its own: its mounts vanish with it and nothing else sees them."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())


def test_index_add_into_a_read_only_folder_is_an_index_write_error(saved: Path, tmp_path: Path) -> None:
    """A real read-only folder: as a user, by permissions; as root (whom permissions do not stop), a read-only
    bind mount in a private mount namespace."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = _copy(saved, folder / "idx")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "moon.txt").write_text("The Moon is 384,400 km away from the Earth.", encoding="utf-8")
    if os.geteuid() != 0:
        os.chmod(folder, 0o500)
        try:
            proc = run_qa("index", "add", str(path), str(docs), "--no-progress")
        finally:
            os.chmod(folder, 0o700)
        cause = "permission denied"
    elif _private_mount_works():
        proc = _in_private_mount('mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && '
                                 'exec "$2" index add "$3" "$4" --no-progress', str(folder), str(QA_BIN),
                                 str(path), str(docs))
        cause = "the file system is read-only"
    else:
        pytest.skip("running as root without mount namespaces: no way to make a folder read-only")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"qa: error: could not save the index to {path}: {cause}")
    assert "unchanged" in lines[0]
    assert _ids(path) == IDS
    assert _leftovers(path) == []


@pytest.mark.skipif(not _private_mount_works(), reason="needs root and mount namespaces for a small tmpfs")
def test_index_add_onto_a_really_full_disk_is_an_index_write_error(saved: Path, tmp_path: Path) -> None:
    """A 512 KB tmpfs holding the index: adding a 300-sentence document runs out of space for real."""
    docs = tmp_path / "docs"
    docs.mkdir()
    text = " ".join(f"Sentence {i} is about topic number {i}." for i in range(300))
    (docs / "big.txt").write_text(text, encoding="utf-8")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = ('mount -t tmpfs -o size=512k tmpfs "$1" && cp -r "$2" "$1/idx" && '
              '"$3" index add "$1/idx" "$4" --no-progress; echo "add exit $?"; '
              '"$3" index list "$1/idx" --json; ls -a "$1"')
    proc = _in_private_mount(script, str(disk), str(saved), str(QA_BIN), str(docs))
    out = proc.stdout.splitlines()
    assert "add exit 2" in out, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("qa: error:")]
    assert len(errors) == 1 and f"could not save the index to {disk}/idx: the disk is full" in errors[0], proc.stderr
    listed = json.loads("\n".join(out[out.index("add exit 2") + 1 : out.index(".")]))
    assert [d["doc_id"] for d in listed] == IDS, "the old index is intact and loads"
    assert sorted(out[out.index(".") :]) == sorted([".", "..", ".idx.lock", ".idx.write.lock", "idx"])


# ------------------------------------------------------------------------------------------ hostile manifests

HOSTILE_MANIFESTS = {
    "100k-digit number": '{"format_version": ' + "1" * 100_000 + "}",
    "100k-deep nesting": "[" * 100_000 + "]" * 100_000,
    "100k-deep nesting in an object": '{"format_version": 6, "model": ' + "[" * 100_000 + "]" * 100_000 + "}",
}


@pytest.mark.parametrize("case", list(HOSTILE_MANIFESTS))
def test_a_hostile_manifest_is_an_index_corrupt_error_everywhere_it_is_read(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path = _copy(saved, tmp_path / "idx")
    (path / MANIFEST).write_text(HOSTILE_MANIFESTS[case], encoding="utf-8")
    note = tmp_path / "note.txt"
    note.write_text("Parrots talk.", encoding="utf-8")
    for call in (lambda: qa.Index.load(path), lambda: qa.retrieve("Which pet purrs?", index=path),
                 lambda: checked_manifest(path, qa.get_settings())):
        with pytest.raises(qa.IndexCorruptError, match=f"{MANIFEST} (is not valid JSON|nests .* too deeply)"):
            call()
    reason = _stale_reason(path, qa.get_settings(), "0" * 64)
    assert reason is not None and reason.startswith("unreadable:")
    for argv in (["retrieve", "Which pet purrs?", "--index", str(path)], ["index", "add", str(path), str(note)],
                 ["index", "list", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and rebuild_hint(path) in err


def test_a_manifest_larger_than_the_cap_is_refused_without_parsing(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(saved, tmp_path / "idx")
    monkeypatch.setattr(qa.store, "MAX_MANIFEST_BYTES", 1000)
    with pytest.raises(qa.IndexCorruptError, match="larger than a manifest can be"):
        qa.Index.load(path)
    monkeypatch.undo()
    assert _ids(path) == IDS
    assert qa.store.MAX_MANIFEST_BYTES >= 256 * 2**20, "a million-sentence index's manifest (~30 MB) must load"


# ------------------------------------------------------------------------------------------ wrong argument types


def _calls(index: qa.Index, path: Path) -> dict[str, tuple[object, str]]:
    """Each call with a wrong argument type, and words its error must hold (what is expected)."""
    return {
        "retrieve index=123": (lambda: qa.retrieve("Who?", index=123), "index must be an index folder"),
        "answer index=123": (lambda: qa.answer("Who?", index=123), "index must be an index folder"),
        "open_index 123": (lambda: qa.open_index(123), "index must be an index folder"),
        "retrieve docs=123": (lambda: qa.retrieve("Who?", index=index, docs=123), "list of document ids"),
        "retrieve docs=[1]": (lambda: qa.retrieve("Who?", index=index, docs=[1]), "list of document ids"),
        "retrieve settings": (lambda: qa.retrieve("Who?", index=index, settings="fast"), "qa.Settings"),
        "answer settings": (lambda: qa.answer("Who?", index=index, settings={"k": 3}), "qa.Settings"),
        "retrieve k='5'": (lambda: qa.retrieve("Who?", index=index, k="5"), "whole number"),
        "load 123": (lambda: qa.Index.load(123), "folder path"),
        "load settings": (lambda: qa.Index.load(path, settings=object()), "qa.Settings"),
        "build 123": (lambda: qa.Index.build(123), "list of files, folders"),
        "build [123]": (lambda: qa.Index.build([123]), "list of files, folders"),
        "build path=123": (lambda: qa.Index.build(DOCS, 123), "folder path"),
        "save 123": (lambda: index.save(123), "folder path"),
        "search 123": (lambda: index.search(123), "question must be text"),
        "search k='5'": (lambda: index.search("Who?", k="5"), "whole number"),
        "search docs=5": (lambda: index.search("Who?", docs=5), "list of document ids"),
        "search context='2'": (lambda: index.search("Who?", context="2"), "number of sentences"),
        "search_many 'one'": (lambda: index.search_many("Who?"), "list of questions"),
        "search_many [1]": (lambda: index.search_many([1]), "question must be text"),
        "rows_of [1]": (lambda: index.rows_of([1]), "list of document ids"),
        "update add=123": (lambda: index.update(add=123), "list of files, folders"),
        "update remove=[1]": (lambda: index.update(remove=[1]), "list of document ids"),
    }


def test_every_public_function_turns_a_wrong_argument_type_into_a_qa_error(small: qa.Index, saved: Path) -> None:
    for name, (call, expected) in _calls(small, saved).items():
        with pytest.raises(qa.QAError) as refused:
            call()  # type: ignore[operator]
        assert expected in str(refused.value), f"{name}: {refused.value}"
    with pytest.raises(TypeError):  # still a TypeError for code that catches one
        qa.retrieve("Who?", index=123)  # type: ignore[arg-type]


def test_valid_arguments_of_every_accepted_form_still_work(small: qa.Index, saved: Path) -> None:
    one = qa.retrieve("Which pet purrs?", index=small, docs="cats", k=2)
    assert [p.doc_id for p in one] == ["cats", "cats"]
    assert qa.retrieve("Which pet purrs?", index=str(saved), docs=("cats",), k=2.0) == one
    assert small.search("Which pet purrs?", k=2, docs=["cats"]) == one
    assert qa.answer("Which pet purrs?", index=saved, settings=qa.get_settings()).found


# ------------------------------------------------------------------------------------------ huge k


def test_a_huge_k_returns_each_sentence_once_as_k_equal_to_the_size_does(small: qa.Index) -> None:
    question = "Which pet purrs?"
    everything = small.search(question, k=10**9)
    assert everything == small.search(question, k=len(small))
    assert len(everything) == len(small) == len({(p.doc_id, p.sentence) for p in everything})
    assert qa.retrieve(question, index=small, k=10**9) == everything
    cats = small.search(question, k=10**9, docs=["cats"])
    assert [p.sentence for p in sorted(cats, key=lambda p: p.sentence)] == [0, 1]


def test_a_huge_k_asks_faiss_for_no_more_rows_than_the_index_holds(
    small: qa.Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real = qa.Index.search_vectors

    def spy(self: qa.Index, queries: np.ndarray, *, k: int, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        asked.append(k)
        return real(self, queries, k=k, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(qa.Index, "search_vectors", spy)
    small.search("Which pet purrs?", k=10**9)
    assert asked and max(asked) <= len(small)
