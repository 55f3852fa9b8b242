"""FAISS inner-product indexes over unit vectors: which kind suits how many vectors, and their search settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import faiss

__all__ = ["default_nprobe", "describe", "set_nprobe", "vector_index"]


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
    root = np.sqrt(max(n, 1))
    nlist = int(min(65536, max(16, min(4 * root, max(1024, root)))))
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

