"""An index in Milvus: saving one there as a new generation, and the names the rest of qa uses.

A save writes generation ``g + 1`` beside the committed ``g``, then publishes it with one upsert of
``current``; what a killed save left (``gen > g``) is deleted by the next save before it writes. See
``docs/notes/milvus-design.md``. The other roles have their own modules, re-exported here:

- :mod:`qa.index.milvus_client`: the connections (pymilvus imported only there, and only when a location is
  used), the server's version and :func:`require`, :func:`close`;
- :mod:`qa.index.milvus_schema`: the collections (their layout, names and schemas) and
  :func:`current_generation`;
- :mod:`qa.index.milvus_load`: :func:`load`, the read side;
- :mod:`qa.index.milvus_kinds`: the dense collections' index (FLAT or IVF_FLAT) fitted to the size;
- :mod:`qa.index.milvus_write`: a Ray build whose workers write the vectors themselves;
- :mod:`qa.index.stores.milvus` and :mod:`qa.index.stores.milvus_lexical`: the vector stores searching them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..errors import IndexWriteError
from .location import MilvusLocation
from .milvus_client import READ_TIMEOUT, WRITE_TIMEOUT, client, close, last_write, require, server_version
from .milvus_client import _clients as _clients  # the names tests and qa.index.index use, re-exported
from .milvus_client import _pymilvus as _pymilvus
from .milvus_kinds import VectorIndex, fitted, refit
from .milvus_load import load
from .milvus_schema import PARTS, _vector_dimension, current_generation
from .milvus_schema import _create as _create
from .milvus_schema import _names as _names
from .stores import milvus_lexical
from .stores.milvus import GEN_SHIFT, key
from .stores.milvus_lexical import SPARSE_PARTS

if TYPE_CHECKING:
    from .index import Index

__all__ = ["READ_TIMEOUT", "WRITE_TIMEOUT", "client", "close", "current_generation", "load", "prepare", "require",
           "save", "server_version"]

log = logging.getLogger("qa.index")

#: Characters of text per blob: at most 4 UTF-8 bytes each, so a piece fits a 65,535-byte VARCHAR.
TEXT_PIECE = 16_000
#: Characters of ASCII JSON per blob.
JSON_PIECE = 60_000
#: Rows per insert call: Milvus Lite slows sharply past ~7 MiB a call (2,000 x 384 floats is ~3 MiB).
_INSERT_BYTES = 3 * 2**20
#: The blob id (within a generation) of the save's timestamp: past any count of blobs.
_STAMP_ID = (1 << GEN_SHIFT) - 1


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _fitted(n: int, settings: Settings) -> dict[str, VectorIndex]:
    return {part: fitted(n, settings, context=part == "dense_context") for part in ("dense", "dense_context")}


def _refused(loc: MilvusLocation, exc: Exception) -> IndexWriteError:
    return IndexWriteError(f"could not save the index to {loc}: Milvus refused a write "
                           f"({' '.join(str(exc).split())[:300]}); the index committed there is unchanged. "
                           "Check the server and run the command again")


def prepare(
    loc: MilvusLocation, *, n: int, dim: int, settings: Settings, model: str
) -> tuple[int, dict[str, VectorIndex]]:
    """Make ``loc`` ready for generation ``g + 1`` of ``n`` ``dim``-d sentences: the collections created (or
    checked, and their index fitted to ``n``), and what a killed save left (``gen > g``) deleted. Returns ``g``
    (the committed generation) and each dense collection's :class:`~qa.index.milvus_kinds.VectorIndex`."""
    pymilvus = _pymilvus(loc)
    c = client(loc)
    names = _names(loc)
    vector = _fitted(n, settings)
    sparse = milvus_lexical.use_sparse(loc, settings.milvus_lexical)  # refuses before anything is written
    try:
        for part, name in names.items():
            if part in SPARSE_PARTS and not sparse:
                continue
            if not c.has_collection(name, timeout=READ_TIMEOUT):
                _create(c, pymilvus, name, part, dim, vector.get(part))
            elif part in vector and _vector_dimension(c, name) != dim:
                raise IndexWriteError(
                    f"{loc} holds {_vector_dimension(c, name)}-d vectors in {name}; this index has {dim}-d ones "
                    f"({model}). Save it under another collection name (#NAME), or drop that collection"
                )
            elif part in vector:
                refit(c, name, vector[part], timeout=WRITE_TIMEOUT)
        old = current_generation(loc)
        parts = [*PARTS, *(p for p in SPARSE_PARTS if sparse or c.has_collection(names[p], timeout=READ_TIMEOUT))]
        for part in parts:  # what a killed save left: never published, never read
            c.delete(names[part], filter=f"gen > {old}", timeout=WRITE_TIMEOUT)
    except pymilvus.MilvusException as exc:
        raise _refused(loc, exc) from exc
    return old, vector


def save(index: Index, loc: MilvusLocation, *, written: int | None = None) -> dict[str, Any]:
    """Write ``index`` to ``loc`` as a new generation and publish it; returns the manifest written.

    ``written``: the generation whose sentence and context rows are already in place (written by Ray workers
    after :func:`prepare`, :mod:`qa.index.milvus_write`): only the blobs are written here before publishing.

    Raises:
        IndexWriteError: the collections at ``loc`` hold vectors of another dimension, or Milvus refused a
            write; the committed index (if any) is unchanged.
    """
    pymilvus = _pymilvus(loc)
    c = client(loc)
    names = _names(loc)
    n, dim = len(index), index.dimension
    sparse = milvus_lexical.use_sparse(loc, index.settings.milvus_lexical)  # before anything is written
    started = time.time()
    try:
        if written is None:
            old, vector = prepare(loc, n=n, dim=dim, settings=index.settings, model=index.model)
            _write_sentences(index, c, names, old + 1, n, dim)
        else:
            old, vector = written - 1, _fitted(n, index.settings)
        new = old + 1
        parts = [*PARTS, *(p for p in SPARSE_PARTS if sparse or c.has_collection(names[p], timeout=READ_TIMEOUT))]
        lexical = milvus_lexical.save_channels(c, names, index._lexical, new, WRITE_TIMEOUT) if sparse else {}
        manifest = _manifest(index, loc, new, vector, sparse=sparse)
        _write_blobs(index, c, names["blobs"], new, manifest, lexical=lexical)
        # The timestamp of the last row written (Ray workers' rows came earlier: Milvus' timestamps only grow),
        # for readers to read the generation at, not at Strong (qa.index.milvus_client.reads_at). Not part of
        # the manifest, which is written before it.
        stamp = last_write([names[p] for p in parts], started)
        if stamp:
            c.insert(names["blobs"], [_blob(new, _STAMP_ID, "stamp", 0, 0, str(stamp))], timeout=WRITE_TIMEOUT)
        for part in parts:
            c.flush(names[part], timeout=WRITE_TIMEOUT)
        c.upsert(names["meta"], [{"key": "current", "gen": new, "v": [0.0, 0.0]}], timeout=WRITE_TIMEOUT)
        c.flush(names["meta"], timeout=WRITE_TIMEOUT)
    except IndexWriteError:
        raise
    except pymilvus.MilvusException as exc:
        raise _refused(loc, exc) from exc
    # The generation before last goes; the last one stays for readers that opened it a moment ago.
    try:
        for part in parts:
            c.delete(names[part], filter=f"gen < {old}", timeout=WRITE_TIMEOUT)
    except pymilvus.MilvusException as exc:  # harmless: the next save deletes them
        log.warning("could not delete generation %d from %s yet (%s)", old - 1, loc, exc)
    log.info("saved index to %s (generation %d)", loc, new)
    return manifest


def _write_sentences(index: Index, c: Any, names: dict[str, str], gen: int, n: int, dim: int) -> None:
    step = max(1, _INSERT_BYTES // (4 * dim + 128))
    rows_table = np.asarray(index._rows, dtype=np.int64)
    keys = np.asarray(index._keys, dtype=np.int64)
    for lo in range(0, n, step):
        rows = np.arange(lo, min(n, lo + step), dtype=np.int64)
        ids = key(gen, rows).tolist()
        vectors = index.vector_store("dense").vectors(rows)
        context = index.vector_store("dense_context").vectors(rows)
        spans, ks = rows_table[rows].tolist(), keys[rows].tolist()
        c.insert(names["dense"], [
            {"id": i, "gen": gen, "row": r, "start": s[0], "end": s[1], "dup": s[2], "key_text": k[0],
             "key_window": k[1], "vec": v}
            for i, r, s, k, v in zip(ids, rows.tolist(), spans, ks, vectors, strict=True)], timeout=WRITE_TIMEOUT)
        c.insert(names["dense_context"], [
            {"id": i, "gen": gen, "row": r, "vec": v} for i, r, v in zip(ids, rows.tolist(), context, strict=True)],
            timeout=WRITE_TIMEOUT)


def _manifest(
    index: Index, loc: MilvusLocation, gen: int, vector: dict[str, VectorIndex], *, sparse: bool
) -> dict[str, Any]:
    manifest = {k: v for k, v in index.manifest.items() if k != "files"}
    manifest["channels"] = {name: dict(entry) for name, entry in manifest.get("channels", {}).items()}
    for name in ("dense", "dense_context"):
        entry = manifest["channels"].setdefault(name, {})
        entry.pop("faiss", None)
        entry.pop("file", None)
        entry["milvus"] = f"{loc.collection}_{name}: {vector[name].describe()}"
        entry["milvus_index"] = vector[name].manifest_entry()
    for name in SPARSE_PARTS:
        entry = manifest["channels"].setdefault(name, {})
        entry.pop("file", None)
        entry["milvus"] = (f"{loc.collection}_{name}: SPARSE_INVERTED_INDEX IP (qa's BM25 term weights)" if sparse
                           else "rebuilt at load from the documents' text")
        entry["lexical"] = "milvus" if sparse else "local"
    manifest["location"] = str(loc)
    manifest["generation"] = gen
    return manifest


def _blob(gen: int, number: int, kind: str, owner: int, part: int, data: str) -> dict[str, Any]:
    """One row of the blobs collection: piece ``part`` of ``owner``'s ``kind``, the ``number``-th of ``gen``."""
    return {"id": (gen << GEN_SHIFT) | number, "gen": gen, "kind": kind, "owner": owner, "part": part, "data": data,
            "v": [0.0, 0.0]}


def _write_blobs(index: Index, c: Any, name: str, gen: int, manifest: dict[str, Any], *,
                lexical: dict[int, str] | None = None) -> None:
    pending: list[dict[str, Any]] = []
    written = 0

    def put(kind: str, owner: int, pieces: list[str]) -> None:
        nonlocal pending, written
        for part, data in enumerate(pieces):
            pending.append(_blob(gen, written + len(pending), kind, owner, part, data))
        if len(pending) >= 32:  # at most ~2 MiB a call
            c.insert(name, pending, timeout=WRITE_TIMEOUT)
            written += len(pending)
            pending = []

    # ASCII JSON: one character is one byte, so JSON_PIECE characters fit a VARCHAR's 65,535 bytes.
    put("manifest", 0, _pieces(json.dumps(manifest, ensure_ascii=True), JSON_PIECE))
    for owner, stats in (lexical or {}).items():  # ASCII JSON, as the manifest
        put("lexical", owner, _pieces(stats, JSON_PIECE))
    with index._db_lock:
        docs = index._db.execute("SELECT idx, doc_id, title, source, sha256, text, first_row, n_sentences "
                                 "FROM documents ORDER BY idx").fetchall()
        pages = index._db.execute("SELECT doc_idx, number, start FROM pages ORDER BY rowid").fetchall()
        heads = index._db.execute("SELECT doc_idx, start, text FROM headings ORDER BY rowid").fetchall()
    by_doc: dict[int, dict[str, list[Any]]] = {}
    for d, number, start in pages:
        by_doc.setdefault(int(d), {"pages": [], "headings": []})["pages"].append([int(number), int(start)])
    for d, start, text in heads:
        by_doc.setdefault(int(d), {"pages": [], "headings": []})["headings"].append([int(start), str(text)])
    for idx, doc_id, title, source, sha, text, first, count in docs:
        record = {"doc_id": doc_id, "title": title, "source": source, "sha256": sha, "first_row": int(first),
                  "n_sentences": int(count), **by_doc.get(int(idx), {"pages": [], "headings": []})}
        put("doc", int(idx), _pieces(json.dumps(record, ensure_ascii=True), JSON_PIECE))
        put("text", int(idx), _pieces(str(text), TEXT_PIECE))
    if pending:
        c.insert(name, pending, timeout=WRITE_TIMEOUT)
