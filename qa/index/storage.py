"""An index's folder on disk: what a save may replace, the locks that keep saves, loads and cleanups apart,
the atomic swap, reading the manifest within limits, and errors that say what to do.

A save replaces a whole folder, so it never writes over anything qa did not create: the target must be
missing, empty, or a qa index (:func:`replace_problem`). Every saver holds ``.NAME.write.lock`` shared for
its whole save; a saver that can take it exclusively at once knows no other save of that index is running,
and only then removes the ``.NAME.tmp-*`` folders that killed saves left behind (:func:`writing`). Swapping the
new folder in holds ``.NAME.lock`` exclusively, which loads hold shared (:func:`locked`).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: saves and loads then go unlocked, and nothing is cleaned
    fcntl = None  # type: ignore[assignment]

from ..errors import IndexCorruptError, IndexNotFoundError, IndexWriteError

__all__ = ["MAX_MANIFEST_BYTES", "check_apart", "check_target", "fix_hint", "locked", "read_manifest",
           "rebuild_hint", "replace_problem", "write_error", "writing"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
CONTEXT_VECTORS = "context.faiss"
BM25 = "bm25"
BM25_CONTEXT = "bm25_context"
META = "meta.sqlite"
ROWS = "rows.npy"
DOCS = "docs.npy"
KEYS = "keys.npy"
#: The files and folders of an index (every format version so far has used only these names).
INDEX_FILES = frozenset({MANIFEST, VECTORS, CONTEXT_VECTORS, META, ROWS, DOCS, KEYS})
INDEX_FOLDERS = frozenset({BM25, BM25_CONTEXT})
#: What bm25s writes into a BM25 folder (qa saves no corpus with it).
BM25_FILES = frozenset({"params.index.json", "vocab.index.json", "data.csc.index.npy", "indices.csc.index.npy",
                        "indptr.csc.index.npy", "nonoccurrence_array.index.npy"})
#: The largest manifest read. A million-sentence index's manifest is ~30 MB (200k documents listed); anything
#: far beyond is not one, and reading it whole would only cost memory.
MAX_MANIFEST_BYTES = 256 * 2**20


def rebuild_hint(path: Path | str) -> str:
    return f"rebuild it with: qa index build --out {path} PATH..."


def fix_hint(path: Path | str | None) -> str:
    """What to do about an index at ``path`` that cannot be used: rebuild it there only when a build may
    replace that folder (:func:`replace_problem`); otherwise never suggest it, since it would be refused."""
    if path is None:
        return "build it again with qa.Index.build"
    found = _replace_problem(Path(path))
    if found is None:
        return rebuild_hint(path)
    problem, advice = found
    return f"{problem}; {advice}, or build one into a new folder: qa index build --out NEW_FOLDER PATH..."


# ---------------------------------------------------------------------- what a save may replace


def replace_problem(target: Path) -> str | None:
    """Why a save must not replace ``target``, or ``None`` when it may: ``target`` is missing, an empty
    folder, or a qa index (every entry has an index file's name, and a qa manifest, a ``.faiss`` file or a
    BM25 folder marks it as one: a damaged index whose manifest cannot be read is still replaceable)."""
    found = _replace_problem(target)
    return None if found is None else found[0]


def _replace_problem(target: Path) -> tuple[str, str] | None:
    """:func:`replace_problem`, with what to do about it."""
    elsewhere = "pass the folder of a qa index"
    if target.is_symlink():
        return f"{target} is a symbolic link (to {os.readlink(target)}), not a folder qa wrote", elsewhere
    if not target.exists():
        return None
    if not target.is_dir():
        return f"{target} is a file, not an index folder", elsewhere
    try:
        entries = sorted(os.scandir(target), key=lambda e: e.name)
    except OSError as exc:
        return f"{target} cannot be listed ({exc.strerror})", elsewhere
    if not entries:
        return None
    ours = [e for e in entries if _is_index_entry(e)]
    foreign = [e.name + ("/" if e.is_dir() else "") for e in entries if not _is_index_entry(e)]
    if foreign and ours and _marked_as_index(target, ours):
        return (f"{target} holds {_names(foreign)} besides the index's files, which qa did not write",
                "move that out of it first (a rebuild replaces the whole folder)")
    if foreign:
        return f"{target} is not a qa index: it holds {_names(foreign)}, which qa did not write", elsewhere
    if not _marked_as_index(target, entries):
        names = [e.name + ("/" if e.is_dir() else "") for e in entries]
        return f"{target} is not a qa index: nothing in it ({_names(names)}) shows that qa wrote it", elsewhere
    return None


def _is_index_entry(entry: os.DirEntry[str]) -> bool:
    if entry.name in INDEX_FILES:
        return not entry.is_dir(follow_symlinks=False)
    if entry.name in INDEX_FOLDERS and entry.is_dir(follow_symlinks=False):
        try:
            inside = list(os.scandir(entry.path))
        except OSError:
            return False
        return all(e.name in BM25_FILES and not e.is_dir(follow_symlinks=False) for e in inside)
    return False


def _marked_as_index(target: Path, entries: list[os.DirEntry[str]]) -> bool:
    """Whether something only qa writes is there; generic names (``docs.npy``, ``manifest.json``) alone are not
    enough, unless the manifest is qa's (read only then: a large index's manifest takes a while to parse)."""
    for e in entries:
        if e.name in (VECTORS, CONTEXT_VECTORS) or (e.name in INDEX_FOLDERS and (Path(e.path) / "params.index.json")
                                                    .is_file()):
            return True
    try:
        return is_qa_manifest(_parse(target / MANIFEST))
    except (OSError, ValueError, RecursionError, _TooLarge):
        return False


def is_qa_manifest(value: Any) -> bool:
    """A JSON object with qa's format version and at least one of the other keys qa writes."""
    return isinstance(value, dict) and "format_version" in value and any(
        key in value for key in ("model", "segmenter", "files", "documents", "counts"))


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_target(target: Path) -> None:
    """Refuse to save to ``target`` unless it is missing, empty, or a qa index.

    Raises:
        IndexWriteError: ``target`` is a file, a link, or a folder holding anything else; nothing was written.
    """
    problem = replace_problem(target)
    if problem is not None:
        raise IndexWriteError(
            f"{problem}; a save replaces the whole index folder, so qa saves only to a new or empty folder or over "
            "a qa index. Choose a new or empty folder for the index (nothing was written)"
        )


def check_apart(target: Path, sources: Iterable[object]) -> None:
    """Refuse an index folder that is, holds, or sits inside one of the paths being indexed.

    Raises:
        IndexWriteError: the index would replace or mix with the documents; nothing was written.
    """
    out = target.resolve()
    for source in sources:
        if not isinstance(source, (str, os.PathLike)):
            continue
        src = Path(source).resolve()
        if src == out:
            problem = f"the index folder {target} is also a path being indexed"
        elif src in out.parents:
            problem = f"the index folder {target} is inside {source}, which is being indexed"
        elif out in src.parents:
            problem = f"{source}, which is being indexed, is inside the index folder {target}"
        else:
            continue
        raise IndexWriteError(
            f"{problem}; saving would replace or mix with the documents. Choose an index folder outside the "
            "documents (nothing was written)"
        )


# ---------------------------------------------------------------------- the manifest


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _parse(file: Path) -> Any:
    """The JSON in ``file``, read only up to :data:`MAX_MANIFEST_BYTES`."""
    with file.open("rb") as fh:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise _TooLarge(len(data))
    return json.loads(data.decode("utf-8"))


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the index folder ``path`` as a dict.

    Raises:
        IndexNotFoundError: nothing is at ``path``.
        IndexCorruptError: ``path`` has no manifest, or it is not valid JSON (too large, too deeply nested, a
            number too long to read, not UTF-8) or not an object; the message says what to do.
    """
    file = path / MANIFEST
    if not path.exists() and not path.is_symlink():
        raise IndexNotFoundError(f"no index at {path}; build one with: qa index build --out {path} PATH...")
    if not path.is_dir():
        raise IndexCorruptError(f"{path} is a file, not an index folder; pass the folder of a qa index")
    if not file.is_file():
        if not any(path.iterdir()):
            raise IndexNotFoundError(f"{path} is an empty folder, not an index yet; build one in it with: "
                                     f"qa index build --out {path} PATH...")
        hint = fix_hint(path)
        # A folder of index files without its manifest is a damaged index; anything else is not one at all.
        raise IndexCorruptError(f"{path} has no {MANIFEST}: a damaged index; {hint}" if hint == rebuild_hint(path)
                                else hint)
    try:
        manifest = _parse(file)
    except _TooLarge:
        raise IndexCorruptError(f"{file} is larger than a manifest can be ({MAX_MANIFEST_BYTES // 2**20} MB): "
                                f"damaged, or not a qa index's; {fix_hint(path)}") from None
    except UnicodeDecodeError:
        raise IndexCorruptError(f"{file} is not UTF-8 text: damaged; {fix_hint(path)}") from None
    except RecursionError:
        raise IndexCorruptError(f"{file} nests lists or objects too deeply to be a manifest: damaged; "
                                f"{fix_hint(path)}") from None
    except ValueError as exc:  # json.JSONDecodeError, or a number with more digits than Python converts
        detail = " ".join(str(exc).split())[:200]
        raise IndexCorruptError(f"{file} is not valid JSON ({detail}); {fix_hint(path)}") from None
    except OSError as exc:
        raise IndexCorruptError(f"{file} cannot be read ({exc.strerror or exc}); {fix_hint(path)}") from None
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{file} is not a manifest object; {fix_hint(path)}")
    documents, counts = manifest.get("documents", []), manifest.get("counts", {})
    if not isinstance(documents, list) or not all(isinstance(d, dict) for d in documents) \
            or not isinstance(counts, dict):
        raise IndexCorruptError(f"{file} has a malformed document list or counts; {fix_hint(path)}")
    return manifest


# ---------------------------------------------------------------------- locks, swaps and leftovers


@contextlib.contextmanager
def locked(target: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the lock file ``.NAME.lock`` beside the index ``target``: exclusive to swap a save in, shared to load.

    A load then never sees a half-swapped index (no directory, or files of two different saves), and a load's
    recovery of an interrupted save cannot race a live save. The lock is released when its holder exits, even
    on SIGKILL. Where file locks are unavailable (Windows, a read-only folder) this does nothing.
    """
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a folder we cannot write to: nobody saves into it through us either
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def writing(target: Path) -> Iterator[None]:
    """Hold ``.NAME.write.lock`` shared for a whole save of ``target``; first, when no other save of it is
    running, remove the temporary folders of saves that were killed (:func:`clean_leftovers`).

    Every save holds this lock from before it creates its temporary folder until it is done, so a save that can
    take it exclusively at once knows every ``.NAME.tmp-*`` folder is stale. One that cannot leaves them alone.
    The lock dies with its holder (even on SIGKILL): a killed save's folder is cleaned by the next save.
    """
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(target.parent / f".{target.name}.write.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a folder we cannot write to: the save fails on its own, and says why
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another save is running: its temporary folder is not stale
            pass
        else:
            clean_leftovers(target)
        # Converting to shared may let another saver's cleanup run first: harmless, as this save's
        # temporary folder does not exist yet (it is made only once this lock is held).
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def clean_leftovers(target: Path) -> list[Path]:
    """Remove what interrupted saves of ``target`` left beside it; call only holding the write lock exclusively.

    An interrupted swap is first completed backwards (the old index put back, as a load would); then every
    ``.NAME.tmp-*`` folder goes, and the ``.NAME.old-*`` ones too once ``target`` is a complete index (else an
    old copy may be all that is left). Returns what was removed.
    """
    with locked(target, exclusive=True):
        recover_interrupted_swap(target)
    prefix = f".{glob.escape(target.name)}"
    stale = sorted(target.parent.glob(f"{prefix}.tmp-*"))
    if target.is_dir() and (target / MANIFEST).is_file() and replace_problem(target) is None:
        stale += sorted(target.parent.glob(f"{prefix}.old-*"))
    removed = []
    for folder in stale:
        if folder.is_dir() and not folder.is_symlink():
            log.warning("removing %s, left by an interrupted save of %s", folder.name, target)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def new_temp_folder(target: Path) -> Path:
    """A new private folder beside ``target`` for a save to write into."""
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(mode=0o700)
    return tmp


def swap_into_place(new: Path, target: Path) -> Path | None:
    """Rename ``new`` to ``target``, moving an existing ``target`` aside first; returns where it went (for the
    caller to delete once the swap lock is released), or ``None``.

    A crash between the two renames leaves ``target`` missing and the old index in ``.NAME.old-*``;
    :func:`recover_interrupted_swap` puts it back on the next load or save.
    """
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old is not None:  # the old index goes back where it was
            os.rename(old, target)
        raise
    fsync_dir(target.parent)
    return old


def recover_interrupted_swap(target: Path) -> None:
    if target.exists():
        return
    for old in sorted(target.parent.glob(f".{glob.escape(target.name)}.old-*")):
        if (old / MANIFEST).is_file():
            log.warning("restoring %s from an interrupted save (%s)", target, old.name)
            os.rename(old, target)
            return


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- write failures


_CAUSES = {
    "space": ("the disk is full", "free some space on the disk that holds {parent}, or save the index on another disk"),
    "read-only": ("the file system is read-only", "save the index in a folder on a writable disk"),
    "permission": ("permission denied", "save the index in a folder you may write to, or get write permission on "
                                        "{parent}"),
    "too large": ("a file grew past the largest size allowed (by the file system, or by a limit such as ulimit -f)",
                  "raise the file size limit, or save the index on a file system that takes larger files"),
    "not a folder": ("a part of that path is a file, not a folder", "choose a path whose parent folders are folders"),
    "name": ("the path is too long", "choose a shorter path"),
    "other": ("the write failed", "check the folder and its disk, then try again"),
}
_ERRNOS = {errno.ENOSPC: "space", errno.EROFS: "read-only", errno.EACCES: "permission", errno.EPERM: "permission",
           errno.EFBIG: "too large", errno.ENOTDIR: "not a folder", errno.EEXIST: "not a folder",
           errno.ENAMETOOLONG: "name", getattr(errno, "EDQUOT", errno.ENOSPC): "space"}
_TEXTS = {"no space left": "space", "disk is full": "space", "quota exceeded": "space", "read-only": "read-only",
          "permission denied": "permission", "file too large": "too large", "not a directory": "not a folder"}


def _cause(target: Path, exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code in _ERRNOS:
        return _ERRNOS[code]
    text = str(exc).lower()  # FAISS and SQLite report a failed write in words (numpy without an errno)
    for words, cause in _TEXTS.items():
        if words in text:
            return cause
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if shutil.disk_usage(folder).free < 16 * 2**20:
            return "space"
    except OSError:
        pass
    try:
        import resource

        if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
            return "too large"
    except (ImportError, OSError, ValueError):  # pragma: no cover - no resource module (Windows)
        pass
    return "other"


def write_error(target: Path, exc: BaseException, *, existed: bool) -> IndexWriteError:
    """The :class:`IndexWriteError` for a save to ``target`` that failed with ``exc``: the path, the cause (disk
    full, read-only, permission, file size limit) and the fix, and that nothing was lost."""
    cause, fix = _CAUSES[_cause(target, exc)]
    detail = " ".join(str(exc).split())
    if "failed: " in detail:  # FAISS prefixes its own source location
        detail = detail.rsplit("failed: ", 1)[1]
    kept = "the index already there is unchanged" if existed else "nothing was saved there"
    return IndexWriteError(
        f"could not save the index to {target}: {cause} ({detail[:300]}); {fix.format(parent=target.parent)}. "
        f"No data was lost: {kept}, and no partial copy was left behind"
    )
