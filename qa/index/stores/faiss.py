"""The FAISS vector store: an inner-product index over unit vectors in one file of the index folder
(``vectors.faiss``, ``context.faiss``), of the kind that suits their number, and its search settings.

Rows are FAISS's own positions (0, 1, ... in the order added), so the files are plain FAISS indexes with no id
map: what every qa index so far has written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Hits

if TYPE_CHECKING:
    import faiss

__all__ = ["FaissStore", "default_nprobe", "describe", "ivf_lists", "set_nprobe", "vector_index"]


class FaissStore:
    """A :class:`~qa.index.stores.base.VectorStore` over one FAISS index, saved as ``folder / name``.

    Example:
        >>> import numpy as np
        >>> store = FaissStore.build(np.eye(4, dtype=np.float32), name="vectors.faiss")
        >>> store.describe(), store.count()
        ('IndexFlatIP', 4)
        >>> store.score(np.array([0, 0, 1, 0], dtype=np.float32), np.array([2, 3])).tolist()
        [1.0, 0.0]
    """

    def __init__(self, index: faiss.Index, *, name: str, nprobe: int = 0) -> None:
        self.index = index
        """The FAISS index itself (for FAISS-only tools; qa goes through the methods)."""
        self.name = name
        # Removed rows keep their place (FAISS's flat and code indexes would renumber the rows after them), and
        # are left out of every search; qa's own indexes never remove in place, so they have none.
        self._removed = np.zeros(0, dtype=np.int64)
        set_nprobe(index, nprobe)

    @classmethod
    def build(cls, vectors: np.ndarray, *, name: str, kind: str = "auto", exact_limit: int = 20_000, bits: int = 8,
              nprobe: int = 0, one_thread: bool = False) -> FaissStore:
        """A store over ``vectors`` (rows 0..n-1) of the kind :func:`vector_index` makes.

        ``one_thread``: let FAISS use only the calling thread (a build whose other threads still want a core).
        """
        import faiss

        if one_thread:
            # Per calling thread in OpenMP: FAISS's threads would only wait for a core that others are using.
            faiss.omp_set_num_threads(1)
        return cls(vector_index(vectors, kind=kind, exact_limit=exact_limit, bits=bits), name=name, nprobe=nprobe)

    @classmethod
    def open(cls, folder: Path, name: str, *, nprobe: int = 0) -> FaissStore:
        """The store saved as ``folder / name``; FAISS's ``RuntimeError`` if it cannot be read."""
        import faiss

        return cls(faiss.read_index(str(Path(folder) / name)), name=name, nprobe=nprobe)

    def persist(self, folder: Path) -> None:
        """Write ``folder / name`` (removed rows are not saved: persist a store with none)."""
        import faiss

        if len(self._removed):
            raise ValueError(f"{self.name} has {len(self._removed)} removed rows, which a FAISS file cannot mark; "
                             "build a new store from the vectors kept instead")
        file = Path(folder) / self.name
        try:
            faiss.write_index(self.index, str(file))
        except RuntimeError as exc:  # FAISS reports a failed write (disk full, ...) as a RuntimeError
            raise OSError(f"FAISS could not write {file}: {exc}") from exc

    def count(self) -> int:
        return int(self.index.ntotal) - len(self._removed)

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    @property
    def nprobe(self) -> int | None:
        """Lists an IVF index scans per query (``None`` for other kinds)."""
        ivf = _ivf(self.index)
        return None if ivf is None else int(ivf.nprobe)

    def describe(self) -> str:
        return describe(self.index)

    def add(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        """Append ``vectors``: ``rows`` must be the next positions (``count()`` onwards), as FAISS numbers them."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        start = int(self.index.ntotal)
        if not np.array_equal(rows, np.arange(start, start + len(rows))):
            raise ValueError(f"{self.name} numbers its rows in order: the next ones are "
                             f"{start}..{start + len(rows) - 1}")
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def remove(self, rows: np.ndarray) -> int:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        held = rows[(rows >= 0) & (rows < self.index.ntotal)]
        new = np.setdiff1d(held, self._removed)
        self._removed = np.union1d(self._removed, new)
        return len(new)

    def _check_held(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        outside = (rows < 0) | (rows >= self.index.ntotal)
        if outside.any() or (len(self._removed) and np.isin(rows, self._removed).any()):
            bad = rows[outside | np.isin(rows, self._removed)][0]
            raise KeyError(f"{self.name} holds no row {int(bad)}")
        return rows

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.index.reconstruct_batch(self._check_held(rows)), dtype=np.float32)

    def score(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        # The stored vectors (decoded codes, for SQ indexes) times the query: what a search of them would score.
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        return np.asarray(self.vectors(rows) @ query, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> list[Hits]:
        import faiss

        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.dimension))
        if len(self._removed):
            allowed = np.setdiff1d(np.arange(self.index.ntotal) if allowed is None else allowed, self._removed)
        params: Any = None
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            selector = faiss.IDSelectorBatch(allowed)
            ivf = _ivf(self.index)
            if ivf is not None:  # an IVF index needs its own parameter type, or it forgets its nprobe
                params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)  # type: ignore[call-arg]
            else:
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        if len(queries) > 1:
            scores, rows = self.index.search(queries, k, params=params)
        else:
            # One query gains nothing from OpenMP's threads (FAISS parallelises over queries) and pays for them:
            # measured 7.0 ms against 4.3 ms on one thread at 1M. The setting is per calling thread; restored after.
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                scores, rows = self.index.search(queries, k, params=params)
            finally:
                faiss.omp_set_num_threads(threads)
        # FAISS pads with -1 when fewer rows than k exist (or are allowed): callers get only real rows.
        return [Hits(r[r >= 0].astype(np.int64), s[r >= 0].astype(np.float32)) for r, s in zip(rows, scores,
                                                                                               strict=True)]


def vector_index(
    vectors: np.ndarray, *, kind: str = "auto", exact_limit: int = 20_000, bits: int = 8
) -> faiss.Index:
    """A FAISS inner-product index over unit ``vectors``, of the kind that suits their number.

    ``flat`` is exact brute force: the best up to ``exact_limit`` vectors (``auto``), where a scan still takes a
    few milliseconds. Beyond that ``ivf`` clusters the vectors (4·√n inverted lists, at most 1,024 up to a
    million vectors; k-means on a sample) and stores each as ``bits``-bit (8, 6 or 4) scalar-quantised codes: a
    query scans only the ``nprobe`` nearest lists, and a vector takes a quarter (8 bits) or an eighth (4 bits)
    of the memory. Reconstructed vectors (used to score candidates) are then approximate. ``codes`` stores the
    same codes without clusters: for a channel that only scores candidates by row (a search would scan every
    code).
    """
    import faiss

    n, dim = vectors.shape
    if kind == "auto":
        kind = "flat" if n <= exact_limit else "ivf"
    if kind == "flat":
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        return flat
    qtypes = {8: faiss.ScalarQuantizer.QT_8bit, 6: faiss.ScalarQuantizer.QT_6bit, 4: faiss.ScalarQuantizer.QT_4bit}
    if kind == "codes":
        codes = faiss.IndexScalarQuantizer(dim, qtypes[bits], faiss.METRIC_INNER_PRODUCT)
        # Training only finds each dimension's range, so a sample does.
        sample = vectors if n <= 100_000 else vectors[np.random.default_rng(0).choice(n, 100_000, replace=False)]
        codes.train(np.ascontiguousarray(sample))
        codes.add(vectors)
        return codes
    # 4·√n lists, but no more than 1,024 up to a million vectors (√n beyond): adding a vector compares it with
    # every centroid and k-means costs (lists)² x points per list, while a query scans the same share of the
    # vectors whatever the number of lists (nprobe = lists / 16). On 1M synthetic vectors 1,000 lists train
    # and add in 12 s for recall@10 0.973, 4,000 in 72 s for 0.980; on 100k real ones 316 lists (1.8 s) and
    # 1,264 (11.9 s) both give 0.976. Only near-uniform data needs the finer lists (tests/test_index.py).
    nlist = ivf_lists(n)
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qtypes[bits], faiss.METRIC_INNER_PRODUCT)
    # k-means needs a few dozen points a list to be stable; more points and iterations only slow the build.
    sample = vectors if n <= 32 * nlist else vectors[np.random.default_rng(0).choice(n, 32 * nlist, replace=False)]
    ivf.cp.niter = 10
    ivf.train(np.ascontiguousarray(sample))
    ivf.add(vectors)
    ivf.make_direct_map()  # lets reconstruct_batch find a vector by row, to score candidates
    ivf.nprobe = default_nprobe(nlist)
    return ivf


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: 4·√n, at least 16, at most 1,024 up to a million vectors (√n beyond).

    Example:
        >>> ivf_lists(10_000), ivf_lists(100_000), ivf_lists(4_000_000)
        (400, 1024, 2000)
    """
    root = np.sqrt(max(n, 1))
    return int(min(65536, max(16, min(4 * root, max(1024, root)))))


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: enough for recall@10 >= 0.95 against exact search (benchmarks/recall.py)."""
    return int(min(nlist, max(16, nlist // 16)))


def _ivf(index: faiss.Index) -> Any:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    """Apply the ``nprobe`` setting (0: the default for the index's size) to an IVF index; others ignore it."""
    ivf = _ivf(index)
    if ivf is not None:
        ivf.nprobe = nprobe if nprobe > 0 else default_nprobe(ivf.nlist)


def describe(index: faiss.Index) -> str:
    """The index in FAISS's factory notation: ``IndexFlatIP``, ``SQ4`` (codes only) or ``IVF4000,SQ8``."""
    import faiss

    ivf = _ivf(index)
    sq = faiss.ScalarQuantizer
    codes = getattr(faiss.downcast_index(index if ivf is None else ivf), "sq", None)
    bits = {sq.QT_8bit: 8, sq.QT_6bit: 6, sq.QT_4bit: 4}.get(codes.qtype, "?") if codes is not None else "?"
    if ivf is None:
        return "IndexFlatIP" if codes is None else f"SQ{bits}"
    return f"IVF{ivf.nlist},SQ{bits}"

