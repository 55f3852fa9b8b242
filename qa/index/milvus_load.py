"""Loading the index committed in Milvus: its documents, offsets and BM25 channels read into memory, its dense
vectors left in Milvus (read by :class:`~qa.index.stores.milvus.MilvusStore` as the searches need them).

A load reads one generation: the committed one when it starts. A reader keeps answering from it while the next
save commits (a save deletes only the generation before last); see ``docs/notes/milvus-design.md``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from ..lexical import LexicalChannel, channels
from .location import MilvusLocation
from .manifest import manifest_mismatch
from .milvus_client import _STRONG, READ_TIMEOUT, _pymilvus, client, reads_at
from .milvus_kinds import from_manifest
from .milvus_schema import _names, current_generation
from .storage import CONTEXT_VECTORS, VECTORS
from .stores import milvus_lexical
from .stores.milvus import MilvusStore
from .stores.milvus_lexical import SPARSE_PARTS
from .tables import WINDOW, _create_schema

if TYPE_CHECKING:
    from .index import Index

__all__ = ["load"]


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
    # Written before the generation was published, its rows are all there at the save's timestamp (absent from an
    # index saved by an older qa: Strong).
    reads = reads_at(int(joined.get(("stamp", 0), "0") or 0))
    bm25: LexicalChannel
    bm25_context: LexicalChannel
    if s.milvus_lexical != "local" and manifest["channels"]["bm25"].get("lexical") == "milvus":
        try:
            bm25, bm25_context = milvus_lexical.open_channels(
                c, names, gen, {i: joined[("lexical", i)] for i in range(len(SPARSE_PARTS))}, READ_TIMEOUT,
                reads=reads)
        except (KeyError, ValueError, pymilvus.MilvusException) as exc:
            raise IndexCorruptError(f"index at {loc} (generation {gen}) has unreadable BM25 channels ({exc!r}); "
                                    f"{hint}") from None
    else:  # saved without sparse vectors (an older qa, a server before 2.4), or the setting asks for local
        bm25, bm25_context = channels(sentences, doc_of, [r["title"] for r in records], WINDOW)
    # Named as FAISS names their files: saved to a folder, a Milvus store becomes that FAISS file.
    stores = {name: MilvusStore(c, names[name], gen=gen, dimension=dim, count=n, name=file, timeout=READ_TIMEOUT,
                                index=from_manifest(manifest["channels"].get(name, {}).get("milvus_index"), s),
                                reads=reads)
              for name, file in (("dense", VECTORS), ("dense_context", CONTEXT_VECTORS))}
    index = cls(manifest=manifest, dense=stores["dense"], dense_context=stores["dense_context"], bm25=bm25,
                bm25_context=bm25_context, db=db, path=None, settings=s, rows=table[:, 1:4].copy(),
                doc_rows=doc_rows, keys=table[:, 4:6].copy())
    index.location = loc
    return index
