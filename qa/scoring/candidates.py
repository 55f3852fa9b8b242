"""Candidates of one question and their four channel scores, gathered exactly as ``Index.rank`` gathers them.

This is the only module of :mod:`qa.scoring` that reaches into :class:`~qa.index.Index` internals
(``_lexical_scores``, ``_dense_proposals``, ``_proposing``, ``_pool``, ``_dense`` (its vector stores),
``_lexical``): keep it small, so that it alone needs re-pointing when the index module changes shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .features import CHANNELS

if TYPE_CHECKING:
    from ..index import Index

__all__ = ["gather"]


def gather(
    index: Index,
    question: str,
    query: np.ndarray,
    *,
    k: int = 10,
    allowed: np.ndarray | None = None,
    lexical: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    proposed: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Candidate rows of ``question`` (sorted, unique) and each of :data:`CHANNELS`' scores of them.

    Every proposing channel contributes its best ``max(POOL, 4k)`` rows, as in ``Index.rank``; unlike it,
    all four channels score every candidate whatever their fusion weights (the scorer was trained on all four).

    Args:
        index: the index to search.
        question: the question text (for the lexical channels).
        query: the question's query vector (``encoder.encode_queries([question])[0]``).
        k: how many results the caller wants (sets the pool size, as in ``Index.rank``).
        allowed: only these rows (``Index.rows_of``), or ``None`` for all.
        lexical: the question's ``Index._lexical_scores``, if already computed.
        proposed: the question's ``Index._dense_proposals``, if already computed.

    Example:
        >>> import qa
        >>> from qa.embedding import get_encoder
        >>> from qa.scoring.candidates import gather
        >>> index = qa.open_index()
        >>> q = "Who led the delegation?"
        >>> rows, scores = gather(index, q, get_encoder(index.settings).encode_queries([q])[0])
        >>> sorted(scores) == sorted(["bm25", "bm25_context", "dense", "dense_context"]), len(rows) > 0
        (True, True)
    """
    pool = index._pool(k)
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if lexical is None:
        lexical = index._lexical_scores(question, allowed)
    if proposed is None:
        proposed = index._dense_proposals(query, k=k, allowed=allowed)
    proposals = [np.asarray(rows, dtype=np.int64) for rows in proposed.values()]
    for name in index._proposing():
        if name in lexical:
            rows, values = lexical[name]
            proposals.append(rows if len(rows) <= pool else rows[np.argpartition(-values, pool - 1)[:pool]])
    candidates = np.unique(np.concatenate(proposals)) if proposals else np.zeros(0, dtype=np.int64)
    scores: dict[str, np.ndarray] = {}
    for name in CHANNELS:
        if len(candidates) == 0:
            scores[name] = np.zeros(0, dtype=np.float32)
        elif name in index._dense:
            scores[name] = index._dense[name].score(query[0], candidates)
        elif name in lexical:
            scores[name] = _lookup(*lexical[name], candidates)
        else:  # a channel that did not propose (zero weight, or scoring-only past the exact size)
            scores[name] = index._lexical[name].scores_at(
                question, candidates, focus_weight=index.settings.focus_weight).astype(np.float32)
    return candidates.astype(np.int64), scores


def _lookup(rows: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values`` at ``wanted`` rows, 0 for rows not in the sorted ``rows`` (a sparse channel's score)."""
    if len(rows) == 0:
        return np.zeros(len(wanted), dtype=np.float32)
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    return np.where(rows[at] == wanted, values[at], np.float32(0)).astype(np.float32)
