"""An index in Milvus: saving one there as a new generation, loading the committed one, and the connections.

Collections (prefix ``<c>`` from the location ``milvus:<uri>#<c>``), every row carrying its generation ``gen``
and keyed ``gen << 40 | n``:

    <c>_meta           key "current": the committed generation
    <c>_dense          a sentence per row: row, start, end, duplicate key, cache keys, and its vector
    <c>_dense_context  a sentence per row: row, and its context vector
    <c>_blobs          pieces of at most 65,535 bytes: the manifest, each document's record, text, pages, headings,
                       and the BM25 channels' term statistics
    <c>_bm25           a sentence per row: row, and its BM25 term weights as a sparse vector (Milvus >= 2.4, Lite)
    <c>_bm25_context   the same for its window (see qa/index/stores/milvus_lexical.py and the milvus_lexical setting)

A save writes generation ``g + 1`` beside the committed ``g``, then publishes it with one upsert of
``current``; what a killed save left (``gen > g``) is deleted by the next save before it writes. See
``docs/notes/milvus-design.md``. pymilvus is imported only here, and only when a location is used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexUnavailableError,
    IndexWriteError,
    MissingDependencyError,
)
from ..lexical import LexicalChannel, channels
from .location import MilvusLocation
from .manifest import manifest_mismatch
from .milvus_kinds import VectorIndex, fitted, from_manifest, refit
from .storage import CONTEXT_VECTORS, VECTORS
from .stores import milvus_lexical
from .stores.milvus import GEN_SHIFT, MilvusStore, key
from .stores.milvus_lexical import SPARSE_PARTS
from .tables import WINDOW, _create_schema

if TYPE_CHECKING:
    from .index import Index

__all__ = ["close", "current_generation", "load", "require", "save", "server_version"]

log = logging.getLogger("qa.index")

#: Seconds any one call may take (an int: pymilvus ignores a float timeout when it bounds its retries).
READ_TIMEOUT = 60
WRITE_TIMEOUT = 300
#: Characters of text per blob: at most 4 UTF-8 bytes each, so a piece fits a 65,535-byte VARCHAR.
TEXT_PIECE = 16_000
#: Characters of ASCII JSON per blob.
JSON_PIECE = 60_000
#: Rows per insert call: Milvus Lite slows sharply past ~7 MiB a call (2,000 x 384 floats is ~3 MiB).
_INSERT_BYTES = 3 * 2**20
_PARTS = ("dense", "dense_context", "blobs")
_STRONG = {"consistency_level": "Strong"}
#: The oldest server qa's calls work on: query iterators (every load reads its rows through one) came in 2.3.
MINIMUM_SERVER = (2, 3)
_clients: dict[str, Any] = {}
_versions: dict[str, tuple[str, tuple[int, int]]] = {}
_clients_lock = threading.Lock()
_VERSION = re.compile(r"v?(\d+)\.(\d+)")


# ---------------------------------------------------------------------- connections


def _pymilvus(loc: MilvusLocation) -> Any:
    """The pymilvus module, or a :class:`MissingDependencyError` naming the extra to install."""
    try:
        with warnings.catch_warnings():
            # milvus-lite 2.5.1 imports pkg_resources, which warns that it is deprecated.
            warnings.simplefilter("ignore")
            import pymilvus

            if loc.lite:
                import milvus_lite  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"the index location {loc} needs pymilvus{' and milvus-lite' if loc.lite else ''} ({exc.name} is not "
            "installed); install them with: pip install 'qa[milvus]'"
        ) from None
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("pymilvus")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # it logs every failed call, which qa reports itself
    return pymilvus


def client(loc: MilvusLocation) -> Any:
    """The process's ``MilvusClient`` for ``loc``'s URI (opened on first use; a Lite file starts its server)."""
    with _clients_lock:
        found = _clients.get(loc.uri)
        if found is not None:
            return found
        pymilvus = _pymilvus(loc)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made = pymilvus.MilvusClient(loc.uri, alias=f"qa-{len(_clients)}-{id(loc)}", timeout=READ_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - pymilvus raises its own types, and RuntimeError from Lite
            hint = ("another process may have the file open: Milvus Lite opens a file in one process at a time "
                    "(use a Milvus server to share an index)") if loc.lite else "check that the server is running"
            raise IndexUnavailableError(f"cannot open {loc}: {' '.join(str(exc).split())[:300]}; {hint}") from None
        if not loc.lite:
            _versions[loc.uri] = _read_version(made, loc)
        _clients[loc.uri] = made
    if not loc.lite:
        require(loc, "query iterators (every load reads its rows with one)", MINIMUM_SERVER)
    return made


def _read_version(c: Any, loc: MilvusLocation) -> tuple[str, tuple[int, int]]:
    """A server's version, as it reports it and as (major, minor). (Milvus Lite answers UNIMPLEMENTED: never asked.)"""
    try:
        text = str(c.get_server_version(timeout=READ_TIMEOUT))
    except Exception as exc:  # noqa: BLE001 - pymilvus and grpc raise their own types
        raise IndexUnavailableError(f"cannot read the version of the Milvus server at {loc}: "
                                    f"{' '.join(str(exc).split())[:300]}; check that the server is running") from None
    found = _VERSION.match(text.strip())
    if found is None:
        raise IndexUnavailableError(f"the Milvus server at {loc} reports the version {text!r}, which qa cannot read; "
                                    f"qa needs Milvus {'.'.join(map(str, MINIMUM_SERVER))} or later")
    return text, (int(found.group(1)), int(found.group(2)))


def server_version(loc: MilvusLocation) -> tuple[str, tuple[int, int]] | None:
    """The version the Milvus server at ``loc`` reported when the process connected (``None`` for a Lite file).

    Example:
        >>> from qa.index.location import parse_location
        >>> server_version(parse_location("milvus:/tmp/never-opened.db#articles")) is None
        True
    """
    if loc.lite:
        return None
    if loc.uri not in _versions:
        client(loc)
    return _versions[loc.uri]


def require(loc: MilvusLocation, feature: str, minimum: tuple[int, int]) -> None:
    """Raise a clear error unless the server at ``loc`` is at least ``minimum`` (Milvus Lite 2.5 always passes).

    A 2.3 server creates a sparse-vector field without complaint and fails only at the first insert, so a
    feature newer than the server must be checked here, before anything is written.

    Raises:
        IndexUnavailableError: the server is older than ``minimum``; names its version and the one needed.

    Example:
        >>> from qa.index.location import parse_location
        >>> require(parse_location("milvus:/tmp/never-opened.db#articles"), "sparse vectors", (2, 4))
    """
    found = server_version(loc)
    if found is None or found[1] >= minimum:
        return
    need = ".".join(map(str, minimum))
    raise IndexUnavailableError(
        f"the Milvus server at {loc} is version {found[0]}; {feature} need Milvus {need} or later. Upgrade the "
        f"server to {need} or later, or use a Milvus Lite file (milvus:./corpus.db#{loc.collection})"
    )


def close(loc: MilvusLocation | str) -> None:
    """Close the process's connection to ``loc`` and, for a Milvus Lite file, stop its server (releasing the file
    for other processes). Indexes opened from it stop working."""
    from .location import parse_location

    loc = parse_location(loc)
    with _clients_lock:
        found = _clients.pop(loc.uri, None)
        _versions.pop(loc.uri, None)
    if found is not None:
        with contextlib.suppress(Exception):  # a connection already gone
            found.close()
    if loc.lite:
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:
            return
        if str(loc.uri) in getattr(server_manager_instance, "_servers", {}):
            server_manager_instance.release_server(loc.uri)


def _names(loc: MilvusLocation) -> dict[str, str]:
    return {part: f"{loc.collection}_{part}" for part in ("meta", *_PARTS, *SPARSE_PARTS)}


# ---------------------------------------------------------------------- schemas


def _create(c: Any, pymilvus: Any, name: str, part: str, dimension: int, vector: VectorIndex | None = None) -> None:
    dt = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    params = c.prepare_index_params()
    if part == "meta":
        schema.add_field("key", dt.VARCHAR, max_length=64, is_primary=True)
    else:
        schema.add_field("id", dt.INT64, is_primary=True)
    schema.add_field("gen", dt.INT64)
    if part in ("dense", "dense_context"):
        schema.add_field("row", dt.INT64)
        if part == "dense":
            for field in ("start", "end", "dup", "key_text", "key_window"):
                schema.add_field(field, dt.INT64)
        schema.add_field("vec", dt.FLOAT_VECTOR, dim=dimension)
        vector = vector or VectorIndex()
        params.add_index(field_name="vec", index_type=vector.kind, metric_type="IP", params=vector.build_params())
    elif part in SPARSE_PARTS:
        schema.add_field("row", dt.INT64)
        schema.add_field("sp", dt.SPARSE_FLOAT_VECTOR)
        params.add_index(field_name="sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    else:
        if part == "blobs":
            schema.add_field("kind", dt.VARCHAR, max_length=16)
            schema.add_field("owner", dt.INT64)
            schema.add_field("part", dt.INT64)
            schema.add_field("data", dt.VARCHAR, max_length=65_535)
        schema.add_field("v", dt.FLOAT_VECTOR, dim=2)  # every collection needs a vector field
        params.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=params, consistency_level="Strong", timeout=WRITE_TIMEOUT)


def _vector_dimension(c: Any, name: str) -> int | None:
    for field in c.describe_collection(name, timeout=READ_TIMEOUT).get("fields", []):
        if field.get("name") == "vec":
            return int(field.get("params", {}).get("dim", 0))
    return None


def current_generation(loc: MilvusLocation) -> int:
    """The committed generation at ``loc`` (0: nothing committed yet)."""
    c = client(loc)
    meta = _names(loc)["meta"]
    if not c.has_collection(meta, timeout=READ_TIMEOUT):
        return 0
    found = c.get(meta, ids=["current"], output_fields=["gen"], timeout=READ_TIMEOUT, **_STRONG)
    return int(found[0]["gen"]) if found else 0


# ---------------------------------------------------------------------- saving


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
        parts = [*_PARTS, *(p for p in SPARSE_PARTS if sparse or c.has_collection(names[p], timeout=READ_TIMEOUT))]
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
    try:
        if written is None:
            old, vector = prepare(loc, n=n, dim=dim, settings=index.settings, model=index.model)
            _write_sentences(index, c, names, old + 1, n, dim)
        else:
            old, vector = written - 1, _fitted(n, index.settings)
        new = old + 1
        parts = [*_PARTS, *(p for p in SPARSE_PARTS if sparse or c.has_collection(names[p], timeout=READ_TIMEOUT))]
        lexical = milvus_lexical.save_channels(c, names, index._lexical, new, WRITE_TIMEOUT) if sparse else {}
        manifest = _manifest(index, loc, new, vector, sparse=sparse)
        _write_blobs(index, c, names["blobs"], new, manifest, lexical=lexical)
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


def _write_blobs(index: Index, c: Any, name: str, gen: int, manifest: dict[str, Any], *,
                lexical: dict[int, str] | None = None) -> None:
    pending: list[dict[str, Any]] = []
    written = 0

    def put(kind: str, owner: int, pieces: list[str]) -> None:
        nonlocal pending, written
        for part, data in enumerate(pieces):
            pending.append({"id": (gen << GEN_SHIFT) | (written + len(pending)), "gen": gen, "kind": kind,
                            "owner": owner, "part": part, "data": data, "v": [0.0, 0.0]})
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


# ---------------------------------------------------------------------- loading


def _iterate(c: Any, name: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    """Every row of ``name`` matching ``expr`` (a plain query stops at 16,383 rows on Lite; an iterator does not)."""
    it = c.query_iterator(name, batch_size=2_000, filter=expr, output_fields=fields, timeout=READ_TIMEOUT, **_STRONG)
    try:
        while True:
            batch = it.next()
            if not batch:
                return
            yield from batch
    finally:
        it.close()


def load(cls: type[Index], loc: MilvusLocation, s: Settings, *, check_model: bool) -> Index:
    """The index committed at ``loc``, its documents and offsets read into memory, its vectors left in Milvus.

    Raises:
        IndexNotFoundError: nothing is committed at ``loc``.
        IndexMismatchError: it was built with another model, format version or segmenter.
        IndexCorruptError: its rows are incomplete.
    """
    for attempt in range(3):
        gen = current_generation(loc)
        if gen == 0:
            raise IndexNotFoundError(f"no index at {loc}; build one with: qa index build --out {loc} PATH...")
        try:
            return _load_generation(cls, loc, s, gen, check_model=check_model)
        except IndexCorruptError:
            # Two saves committed while this load read (the second deletes the generation being read): again.
            if attempt == 2 or current_generation(loc) == gen:
                raise
    raise AssertionError("unreachable")


def _load_generation(cls: type[Index], loc: MilvusLocation, s: Settings, gen: int, *, check_model: bool) -> Index:
    pymilvus = _pymilvus(loc)
    c = client(loc)
    names = _names(loc)
    hint = f"rebuild it with: qa index build --out {loc} PATH..."
    try:
        blobs: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for b in _iterate(c, names["blobs"], f"gen == {gen}", ["kind", "owner", "part", "data"]):
            blobs.setdefault((str(b["kind"]), int(b["owner"])), []).append((int(b["part"]), str(b["data"])))
        joined = {k: "".join(data for _, data in sorted(parts)) for k, parts in blobs.items()}
        manifest = json.loads(joined[("manifest", 0)])
        problem = manifest_mismatch(manifest, s, check_model=check_model)
        if problem:
            raise IndexMismatchError(f"index at {loc} {problem}; {hint}")
        n_docs = sum(1 for kind, _ in joined if kind == "doc")
        records = [json.loads(joined[("doc", i)]) for i in range(n_docs)]
        texts = [joined[("text", i)] for i in range(n_docs)]
        fields = ["row", "start", "end", "dup", "key_text", "key_window"]
        table = np.array([[r[f] for f in fields] for r in _iterate(c, names["dense"], f"gen == {gen}", fields)],
                         dtype=np.int64).reshape(-1, len(fields))
        table = table[np.argsort(table[:, 0], kind="stable")]
        n = len(table)
        context_count = c.query(names["dense_context"], filter=f"gen == {gen}", output_fields=["count(*)"],
                                timeout=READ_TIMEOUT, **_STRONG)[0]["count(*)"]
    except KeyError as exc:
        raise IndexCorruptError(f"index at {loc} (generation {gen}) is missing {exc}; {hint}") from None
    except pymilvus.MilvusException as exc:
        raise IndexCorruptError(f"index at {loc} cannot be read ({' '.join(str(exc).split())[:300]}); "
                                f"{hint}") from None
    doc_rows = np.array([[r["first_row"], r["n_sentences"]] for r in records], dtype=np.int64).reshape(-1, 2)
    if not np.array_equal(table[:, 0], np.arange(n)) or int(doc_rows[:, 1].sum()) != n or context_count != n:
        raise IndexCorruptError(f"index at {loc} (generation {gen}) holds {n} sentence rows and {context_count} "
                                f"context rows for {int(doc_rows[:, 1].sum())} sentences; {hint}")
    db = sqlite3.connect(":memory:", check_same_thread=False)
    _create_schema(db)
    db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   ((i, r["doc_id"], r["title"], r["source"], r["sha256"], texts[i], r["first_row"],
                     r["n_sentences"]) for i, r in enumerate(records)))
    db.executemany("INSERT INTO pages VALUES (?, ?, ?)",
                   ((i, number, start) for i, r in enumerate(records) for number, start in r["pages"]))
    db.executemany("INSERT INTO headings VALUES (?, ?, ?)",
                   ((i, start, text) for i, r in enumerate(records) for start, text in r["headings"]))
    db.commit()
    doc_of = np.repeat(np.arange(n_docs), doc_rows[:, 1])
    sentences = [texts[d][a:b] for d, a, b in zip(doc_of.tolist(), table[:, 1].tolist(), table[:, 2].tolist(),
                                                   strict=True)]
    dim = int(manifest["model"]["dimension"])
    bm25: LexicalChannel
    bm25_context: LexicalChannel
    if s.milvus_lexical != "local" and manifest["channels"]["bm25"].get("lexical") == "milvus":
        try:
            bm25, bm25_context = milvus_lexical.open_channels(
                c, names, gen, {i: joined[("lexical", i)] for i in range(len(SPARSE_PARTS))}, READ_TIMEOUT)
        except (KeyError, ValueError, pymilvus.MilvusException) as exc:
            raise IndexCorruptError(f"index at {loc} (generation {gen}) has unreadable BM25 channels ({exc!r}); "
                                    f"{hint}") from None
    else:  # saved without sparse vectors (an older qa, a server before 2.4), or the setting asks for local
        bm25, bm25_context = channels(sentences, doc_of, [r["title"] for r in records], WINDOW)
    # Named as FAISS names their files: saved to a folder, a Milvus store becomes that FAISS file.
    stores = {name: MilvusStore(c, names[name], gen=gen, dimension=dim, count=n, name=file, timeout=READ_TIMEOUT,
                                index=from_manifest(manifest["channels"].get(name, {}).get("milvus_index"), s))
              for name, file in (("dense", VECTORS), ("dense_context", CONTEXT_VECTORS))}
    index = cls(manifest=manifest, dense=stores["dense"], dense_context=stores["dense_context"], bm25=bm25,
                bm25_context=bm25_context, db=db, path=None, settings=s, rows=table[:, 1:4].copy(),
                doc_rows=doc_rows, keys=table[:, 4:6].copy())
    index.location = loc
    return index

