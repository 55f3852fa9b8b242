"""Ranking: fusing the channels' scores into one, and keeping repeated sentences from crowding the top.

Pure functions over arrays; the index supplies the candidates and per-channel scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["duplicate_key", "duplicate_keys", "first_unique", "fuse", "text_key", "text_keys", "top_unique"]


def fuse(channel_scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean of the channels' scores (weights are normalised to sum to 1).

    Each channel scores on an absolute scale (cosine similarity, or BM25 as a share of the most a sentence
    could score), so the fused score can be compared with a fixed abstention threshold.

    Example:
        >>> import numpy as np
        >>> from qa.ranking import fuse
        >>> fuse({"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}, {"a": 3, "b": 1}).tolist()
        [0.75, 0.25]
    """
    total = sum(weights[name] for name in channel_scores)
    if total <= 0:
        raise ValueError(f"the weights of channels {sorted(channel_scores)} add up to {total}; give one a weight")
    fused = np.zeros_like(next(iter(channel_scores.values())), dtype=np.float32)
    for name, scores in channel_scores.items():
        fused += np.float32(weights[name] / total) * scores.astype(np.float32, copy=False)
    return fused


def duplicate_key(text: str) -> int:
    """A 63-bit key equal for sentences that differ only in case and white space."""
    return int(duplicate_keys([text])[0])


def duplicate_keys(texts: Sequence[str]) -> np.ndarray:
    """:func:`duplicate_key` of each text, as int64.

    Example:
        >>> from qa.ranking import duplicate_keys
        >>> a, b, c = duplicate_keys(["The  Moon\\n", "the moon", "The Sun"]).tolist()
        >>> a == b, a == c
        (True, False)
    """
    # str.split() and str.strip() know the same white space as the regex \s (str.isspace); text by text, an
    # ASCII text takes Python's fast paths, which a string joining a million texts would not.
    return _keys([" ".join(t.split()).casefold() for t in texts])


def text_key(text: str) -> int:
    """A 63-bit key of the exact text (the embedding cache's key: any change of a character changes it)."""
    return int(text_keys([text])[0])


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """:func:`text_key` of each text, as int64."""
    return _keys(texts)


def _keys(texts: Sequence[str]) -> np.ndarray:
    # The first 8 bytes of BLAKE2b, big-endian, less one bit so that they fit a signed 64-bit integer.
    blake = hashlib.blake2b
    digests = b"".join([blake(t.encode("utf-8"), digest_size=8).digest() for t in texts])
    return (np.frombuffer(digests, dtype=">u8") >> np.uint64(1)).astype(np.int64)


def top_unique(rows: np.ndarray, scores: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``rows`` by ``scores``, keeping only the best-scoring row of each duplicate ``key``.

    Ties keep the lower row first, so results are deterministic.

    Example:
        >>> import numpy as np
        >>> from qa.ranking import top_unique
        >>> rows, scores = top_unique(np.array([0, 1, 2]), np.array([0.9, 0.9, 0.5]), np.array([7, 7, 8]), 2)
        >>> rows.tolist(), scores.tolist()
        ([0, 2], [0.9, 0.5])
    """
    return first_unique(rows, scores, keys, k, order=np.lexsort((rows, -scores)))


def first_unique(
    rows: np.ndarray, scores: np.ndarray, keys: np.ndarray, k: int, *, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` of ``rows`` taken in ``order``, skipping any whose ``key`` an earlier one had.

    Example:
        >>> import numpy as np
        >>> from qa.ranking import first_unique
        >>> rows, _ = first_unique(np.array([0, 1, 2]), np.array([0.9, 0.8, 0.1]), np.array([7, 7, 8]), 2,
        ...                        order=np.array([1, 0, 2]))
        >>> rows.tolist()
        [1, 2]
    """
    seen: set[int] = set()
    keep: list[int] = []
    for i in order:
        key = int(keys[i])
        if key in seen:
            continue
        seen.add(key)
        keep.append(int(i))
        if len(keep) == k:
            break
    picked = np.asarray(keep, dtype=np.int64)
    return rows[picked], scores[picked]
