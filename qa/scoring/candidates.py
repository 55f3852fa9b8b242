"""Candidates of one question and their four channel scores, gathered exactly as ``Index.rank`` gathers them.

This is the only module of :mod:`qa.scoring` that reaches into :class:`~qa.index.Index` internals
(``Index._candidates`` and ``Index._channel_scores``, the very steps ``Index.rank`` runs, so the two cannot
drift apart): keep it small, so that it alone needs re-pointing when the index module changes shape.
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
    candidates, lexical = index._candidates(question, query, k=k, allowed=allowed, lexical=lexical,
                                            proposed=proposed, learned=True)
    if len(candidates) == 0:
        return candidates, {name: np.zeros(0, dtype=np.float32) for name in CHANNELS}
    scores = index._channel_scores(question, query, candidates, lexical, CHANNELS)
    return candidates, {name: np.asarray(v, dtype=np.float32) for name, v in scores.items()}
