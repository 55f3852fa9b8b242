"""An index's files in its folder: writing them (flushed, owner-only, each listed with its SHA-256 and size in
the manifest), checking them against the manifest, and opening them.

Saves call :func:`_fsync` through ``qa.index`` (tests replace ``qa.index._fsync`` to stop a save at a chosen file).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..errors import IndexCorruptError
from ..lexical import Lexical
from .manifest import _checked_manifest, _manifest_text
from .storage import BM25, BM25_CONTEXT, CONTEXT_VECTORS, DOCS, KEYS, MANIFEST, META, ROWS, VECTORS, fix_hint
from .stores.faiss import FaissStore
from .threads import _workers

if TYPE_CHECKING:
    from .index import Index


def _sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_files(index: Index, tmp: Path) -> dict[str, Any]:
    """Write every file of ``index`` into the folder ``tmp`` and flush them; returns the manifest written."""
    import qa.index as package  # its _fsync, which tests may have replaced

    index._dense["dense"].persist(tmp)  # as VECTORS
    index._dense["dense_context"].persist(tmp)  # as CONTEXT_VECTORS
    index._lexical["bm25"].save(tmp / BM25)
    index._lexical["bm25_context"].save(tmp / BM25_CONTEXT)
    with index._db_lock:
        disk = sqlite3.connect(tmp / META)
        try:
            index._db.backup(disk)
        finally:
            disk.close()
    np.save(tmp / ROWS, np.ascontiguousarray(index._rows, dtype=np.int64), allow_pickle=False)
    np.save(tmp / DOCS, np.ascontiguousarray(index._doc_rows, dtype=np.int64), allow_pickle=False)
    np.save(tmp / KEYS, np.ascontiguousarray(index._keys, dtype=np.int64), allow_pickle=False)
    manifest = dict(index.manifest)
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest["files"] = {
        f.relative_to(tmp).as_posix(): {"sha256": _sha256_file(f), "bytes": f.stat().st_size} for f in files
    }
    (tmp / MANIFEST).write_text(_manifest_text(manifest), encoding="utf-8")
    for f in [*files, tmp / MANIFEST]:
        os.chmod(f, 0o600)
        package._fsync(f)
    for folder in (tmp / BM25, tmp / BM25_CONTEXT):
        os.chmod(folder, 0o700)
    return manifest


def read_files(cls: type[Index], target: Path, s: Settings, *, check_model: bool) -> Index:
    """The index saved at ``target`` once its manifest suits ``s`` and every file matches its checksum; call
    holding the index's lock (:meth:`Index.load`)."""
    manifest = _checked_manifest(target, s, check_model=check_model)
    _check_files(target, manifest)
    try:
        # immutable=1: the files are never modified in place (saves replace the whole directory).
        db = sqlite3.connect(f"file:{target / META}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        return cls(
            manifest=manifest,
            dense=FaissStore.open(target, VECTORS, nprobe=s.nprobe),
            dense_context=FaissStore.open(target, CONTEXT_VECTORS, nprobe=s.nprobe),
            bm25=Lexical.load(target / BM25),
            bm25_context=Lexical.load(target / BM25_CONTEXT),
            db=db,
            path=target,
            settings=s,
            # Memory-mapped: a million sentences' offsets are read only where a question looks.
            rows=np.load(target / ROWS, mmap_mode="r", allow_pickle=False),
            doc_rows=np.load(target / DOCS, mmap_mode="r", allow_pickle=False),
            keys=np.load(target / KEYS, mmap_mode="r", allow_pickle=False),
        )
    except (RuntimeError, OSError, ValueError, KeyError, sqlite3.Error) as exc:
        raise IndexCorruptError(f"index at {target} cannot be read ({exc}); {fix_hint(target)}") from exc


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_files(target: Path, manifest: dict[str, Any]) -> None:
    """Every file of the index is listed in the manifest, present, and matches its size and SHA-256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) and isinstance(e.get("bytes"), int)
        for e in files.values()
    ):
        raise IndexCorruptError(f"{target / MANIFEST} has no valid list of file checksums; {fix_hint(target)}")
    outside = [n for n in files if PurePosixPath(n).is_absolute() or ".." in PurePosixPath(n).parts]
    if outside:  # an edited manifest must not make a load read (hash) files outside the index
        raise IndexCorruptError(f"{target / MANIFEST} lists files outside the index ({outside[0]!r}); "
                                + fix_hint(target))
    present = {
        p.relative_to(target).as_posix()
        for p in target.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }
    unlisted = sorted((present | {VECTORS, CONTEXT_VECTORS, META, ROWS, DOCS, KEYS}) - set(files))
    if unlisted:
        raise IndexCorruptError(
            f"index at {target} has files its manifest does not vouch for ({', '.join(unlisted)}); "
            + fix_hint(target)
        )
    for name, expected in files.items():
        file = target / name
        if not file.is_file():
            raise IndexCorruptError(f"index at {target} is missing {name}; {fix_hint(target)}")
        if file.stat().st_size != expected["bytes"]:
            raise IndexCorruptError(f"index file {file} does not match its checksum (its size differs: truncated "
                                    f"or altered); {fix_hint(target)}")
    # hashlib releases the GIL on large reads: the files are checked side by side (a 1M index holds ~1.3 GB).
    names = sorted(files, key=lambda n: -files[n]["bytes"])
    digests = dict(zip(names, _workers().map(lambda n: _sha256_file(target / n), names), strict=True))
    for name in names:
        if digests[name] != files[name]["sha256"]:
            raise IndexCorruptError(
                f"index file {target / name} does not match its checksum (truncated or altered); "
                + fix_hint(target)
            )
