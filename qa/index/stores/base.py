"""The seam between an index and where its vectors live: a small protocol that FAISS in a folder
(:mod:`qa.index.stores.faiss`) implements today, and that a vector database (Milvus) can implement next.

A store holds unit-length float32 vectors, each under a row: an ``int64`` id the index gives it (the
sentence's row in the index's tables). Scores are inner products, which for unit vectors is cosine similarity.
Cut as txtai's ``ann/`` backends and Haystack's document stores are: what qa asks of it and nothing more.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["Hits", "VectorStore"]


class Hits(NamedTuple):
    """One query's results, best first: the rows found and their scores (equal lengths, at most ``k``).

    Never padded: a store that finds fewer than ``k`` rows (a small store, a narrow ``allowed`` filter) returns
    fewer, and never a row outside ``allowed`` or one it no longer holds.
    """

    rows: np.ndarray
    """``int64`` rows."""
    scores: np.ndarray
    """``float32`` inner products with the query."""


@runtime_checkable
class VectorStore(Protocol):
    """Vectors under rows: add, remove, search, score and read back; saved into and opened from a folder.

    Example (any implementation; FAISS here):
        >>> import numpy as np
        >>> from qa.index.stores.faiss import FaissStore
        >>> store = FaissStore.build(np.eye(3, dtype=np.float32), name="vectors.faiss")
        >>> isinstance(store, VectorStore), store.count()
        (True, 3)
        >>> hits = store.search(np.array([[0, 1, 0]], dtype=np.float32), k=2, allowed=np.array([0, 1]))[0]
        >>> hits.rows.tolist(), hits.scores.tolist()
        ([1, 0], [1.0, 0.0])
    """

    def count(self) -> int:
        """Number of vectors held."""
        ...

    def add(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        """Hold ``vectors`` (n x dimension, float32) under ``rows`` (n int64 ids not held yet)."""
        ...

    def remove(self, rows: np.ndarray) -> int:
        """Stop holding ``rows`` (rows not held are ignored); returns how many were removed."""
        ...

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> list[Hits]:
        """For each of ``queries`` (m x dimension), its ``k`` best rows among ``allowed`` (all when ``None``)."""
        ...

    def score(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The inner product of one ``query`` vector with the stored vector of each of ``rows`` (float32)."""
        ...

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rows`` (len(rows) x dimension, float32), as a search scores them."""
        ...

    def persist(self, folder: Path) -> None:
        """Write the store into ``folder`` (an index's new folder); raises ``OSError`` when the write fails."""
        ...

    @classmethod
    def open(cls, folder: Path, name: str) -> VectorStore:
        """The store that :meth:`persist` wrote into ``folder`` under ``name``."""
        ...

    def describe(self) -> str:
        """What kind of store this is, for the manifest (e.g. ``IndexFlatIP``, ``IVF1024,SQ8``)."""
        ...
