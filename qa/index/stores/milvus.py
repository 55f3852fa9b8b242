"""The Milvus vector store: one dense channel's vectors in a Milvus collection, one generation of them.

Rows are the index's sentence rows; each is stored under the primary key ``gen << 40 | row`` with a ``gen`` and
a ``row`` field and the vector in ``vec`` (inner product; FLAT, or IVF_FLAT past the exact size:
:mod:`qa.index.milvus_kinds`). Every search and read filters on
the generation the index was opened at (``docs/notes/milvus-design.md``). pymilvus is imported by the caller
(:mod:`qa.index.milvus_client`), never at qa's import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..milvus_client import _STRONG
from ..milvus_kinds import VectorIndex
from .base import Hits

__all__ = ["GEN_SHIFT", "MAX_TOPK", "MilvusStore", "key", "row_ranges"]

#: Primary keys are ``gen << GEN_SHIFT | row``: rows up to 2**40, two generations never collide.
GEN_SHIFT = 40
#: The largest ``limit`` a Milvus search takes.
MAX_TOPK = 16_384
#: Primary keys asked for in one ``get`` (the expression Milvus parses grows with them).
_GET_BATCH = 1_000
#: The largest nprobe Milvus takes: scoring given candidates probes every list (Milvus caps it at the lists), so
#: an IVF_FLAT index returns each with its exact inner product. With the index's own nprobe a search of 300 given
#: rows of 20k (64 lists) missed 98% of them on the 2.3.5 server.
_EVERY_LIST = 65_536


def key(gen: int, rows: np.ndarray) -> np.ndarray:
    """The primary keys of ``rows`` in generation ``gen``.

    Example:
        >>> key(2, np.array([0, 5])).tolist()
        [2199023255552, 2199023255557]
    """
    return (np.int64(gen) << np.int64(GEN_SHIFT)) | np.asarray(rows, dtype=np.int64)


def row_ranges(rows: np.ndarray) -> str:
    """A Milvus filter expression that holds exactly ``rows``: one range per run of consecutive rows, so that a
    document's (consecutive) sentences cost one short clause however many there are.

    Example:
        >>> row_ranges(np.array([7, 3, 4, 5, 9]))
        '((row >= 3 and row <= 5) or row == 7 or row == 9)'
    """
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        return "row < 0"
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate([[rows[0]], rows[breaks + 1]]).tolist()
    ends = np.concatenate([rows[breaks], [rows[-1]]]).tolist()
    parts = [f"row == {a}" if a == b else f"(row >= {a} and row <= {b})" for a, b in zip(starts, ends, strict=True)]
    return "(" + " or ".join(parts) + ")"


class MilvusStore:
    """A :class:`~qa.index.stores.base.VectorStore` over ``collection``'s rows of generation ``gen``.

    ``client`` is a ``pymilvus.MilvusClient``; ``count`` the rows the generation holds (read when it was opened);
    ``reads`` the consistency its reads ask for (default Strong; :func:`qa.index.milvus_client.reads_at`).
    ``add`` and ``remove`` change that generation in place: qa's own writes build a new generation instead
    (:func:`qa.index.milvus.save`), and use them not at all.
    """

    def __init__(self, client: Any, collection: str, *, gen: int, dimension: int, count: int, name: str,
                 timeout: int = 60, index: VectorIndex | None = None, reads: dict[str, Any] | None = None) -> None:
        self.client = client
        self.index = index or VectorIndex()
        """The collection's Milvus index (as the manifest of generation ``gen`` records it) and search nprobe."""
        self.collection = collection
        self.gen = int(gen)
        self.dimension = int(dimension)
        self.name = name
        self._count = int(count)
        self._timeout = int(timeout)  # an int: pymilvus ignores a float timeout when it bounds its retries
        # How its reads see the rows: at Strong, or at the timestamp of the save that wrote them (reads_at).
        self.reads: dict[str, Any] = {**(reads or _STRONG), "timeout": self._timeout}

    # ------------------------------------------------------------------ the protocol

    def count(self) -> int:
        return self._count

    def describe(self) -> str:
        return f"Milvus {self.index.describe()}"

    def add(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        data = [{"id": int(k), "gen": self.gen, "row": int(r), "vec": v}
                for k, r, v in zip(key(self.gen, rows).tolist(), rows.tolist(), vectors, strict=True)]
        for lo in range(0, len(data), 2_000):  # Milvus Lite slows sharply past ~7 MiB a call
            self.client.insert(self.collection, data[lo : lo + 2_000], timeout=self._timeout)
        self._count += len(data)

    def remove(self, rows: np.ndarray) -> int:
        rows = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        held = self._held(rows)
        if len(held):
            self.client.delete(self.collection, ids=key(self.gen, held).tolist(), timeout=self._timeout)
        self._count -= len(held)
        return len(held)

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> list[Hits]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return [Hits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)) for _ in queries]
        if k > MAX_TOPK:  # beyond what Milvus searches: score the rows themselves, as exactly as FLAT would
            rows = np.arange(self._count, dtype=np.int64) if allowed is None else np.unique(allowed)
            vectors = self.vectors(rows)
            out = []
            for q in queries:
                scores = vectors @ q
                order = np.argsort(-scores, kind="stable")[:k]
                out.append(Hits(rows[order], scores[order].astype(np.float32)))
            return out
        expr = f"gen == {self.gen}" + ("" if allowed is None else f" and {row_ranges(allowed)}")
        found = self.client.search(self.collection, data=[q.tolist() for q in queries], anns_field="vec",
                                   filter=expr, limit=int(k),
                                   search_params={"metric_type": "IP", "params": self.index.search_params()},
                                   **self.reads)
        mask = np.int64((1 << GEN_SHIFT) - 1)
        return [Hits(np.array([h["id"] for h in hits], dtype=np.int64) & mask,
                     np.array([h["distance"] for h in hits], dtype=np.float32)) for hits in found]

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        unique = np.unique(rows)
        got = np.zeros((len(unique), self.dimension), dtype=np.float32)
        seen = np.zeros(len(unique), dtype=bool)
        for lo in range(0, len(unique), _GET_BATCH):
            part = unique[lo : lo + _GET_BATCH]
            for entry in self.client.get(self.collection, ids=key(self.gen, part).tolist(), output_fields=["vec"],
                                         **self.reads):
                at = lo + int(np.searchsorted(part, int(entry["id"]) & ((1 << GEN_SHIFT) - 1)))
                got[at] = np.asarray(entry["vec"], dtype=np.float32)
                seen[at] = True
        if not seen.all():
            raise self._gone(int(unique[~seen][0]))
        return got[np.searchsorted(unique, rows)]

    def score(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The inner products, computed by Milvus: a search limited to exactly ``rows`` (by primary key) that
        probes every list (FLAT ignores the nprobe) returns each of them with its exact score, and moves no vectors
        (fetching them and taking the products here took several times as long)."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        unique = np.unique(rows)
        if len(unique) == 0:
            return np.zeros(0, dtype=np.float32)
        if len(unique) > min(MAX_TOPK, _GET_BATCH):
            return np.asarray(self.vectors(rows) @ query, dtype=np.float32)
        ids = key(self.gen, unique).tolist()
        found = self.client.search(self.collection, data=[query.tolist()], anns_field="vec",
                                   filter=f"id in {ids}", limit=len(ids),
                                   search_params={"metric_type": "IP", "params": {"nprobe": _EVERY_LIST}},
                                   **self.reads)[0]
        scores = np.full(len(unique), np.nan, dtype=np.float32)
        mask = (1 << GEN_SHIFT) - 1
        for hit in found:
            scores[np.searchsorted(unique, int(hit["id"]) & mask)] = hit["distance"]
        if np.isnan(scores).any():
            raise self._gone(int(unique[np.isnan(scores)][0]))
        return scores[np.searchsorted(unique, rows)]

    def persist(self, folder: Path) -> None:
        """Write the vectors into ``folder`` as a FAISS store of the same name: a Milvus index saved to a folder
        becomes a plain FAISS index (exact, flat)."""
        from .faiss import FaissStore

        FaissStore.build(self.vectors(np.arange(self._count)), name=self.name, kind="flat").persist(folder)

    @classmethod
    def open(cls, folder: Path, name: str) -> MilvusStore:
        raise ValueError("a Milvus store is opened from its location (qa.Index.load('milvus:URI#NAME')), "
                         f"not from a folder ({folder / name})")

    # ------------------------------------------------------------------ helpers

    def _gone(self, row: int) -> Exception:
        """What a read of a missing ``row`` raises: rows are never removed from a generation but when it is
        deleted, two saves after the one this index was opened at."""
        if row < 0 or row >= self._count:
            return KeyError(f"{self.name} holds no row {row}")
        from ...errors import IndexUnavailableError

        return IndexUnavailableError(
            f"generation {self.gen} of {self.collection} is gone from Milvus: the index has been saved there twice "
            "since this copy was opened; open it again (qa.retrieve and qa.open_index reopen it by themselves)")

    def _held(self, rows: np.ndarray) -> np.ndarray:
        found = []
        for lo in range(0, len(rows), _GET_BATCH):
            part = rows[lo : lo + _GET_BATCH]
            found += [int(e["id"]) & ((1 << GEN_SHIFT) - 1) for e in self.client.get(
                self.collection, ids=key(self.gen, part).tolist(), output_fields=["row"], **self.reads)]
        return np.asarray(sorted(found), dtype=np.int64)
