"""The lexical channel: BM25 (via ``bm25s``) over stemmed words, with scores on an absolute scale.

Raw BM25 grows with the number and rarity of query words, so it cannot be mixed with cosine similarities
or compared with a threshold. Each score is divided by the most a sentence could score for that query,
``(k1 + 1) * sum(idf of the query's words)``, where a word the corpus never uses counts with the highest
idf: the result is in [0, 1] and says how much of the question's (weighted) vocabulary a sentence covers.
A question about things the documents never mention ("population") therefore scores low everywhere.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TOKENIZER", "Lexical", "tokenize"]

K1 = 1.2
B = 0.75
_WORD = re.compile(r"\w+")
#: Recorded in manifests: a change of tokenisation means a rebuild.
TOKENIZER = {"words": r"\w+ lower-cased", "stopwords": "bm25s en", "stemmer": "snowball english", "k1": K1, "b": B}


def _bm25s() -> Any:
    import bm25s

    # bm25s sets its logger to DEBUG at import, which would print on every build.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, Snowball-stemmed words of ``text``.

    Example:
        >>> from qa.lexical import tokenize
        >>> tokenize("The relations were improving")
        ['relat', 'were', 'improv']
    """
    stop = _stopwords()
    words = [w for w in _WORD.findall(text.lower()) if w not in stop]
    return list(_stemmer().stemWords(words))


class Lexical:
    """A BM25 index over a list of texts (one per sentence row)."""

    def __init__(self, retriever: Any) -> None:
        self._bm25 = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict
        # Document frequency of each term is the length of its column in the sparse score matrix.
        df = np.diff(np.asarray(retriever.scores["indptr"]))
        n = int(retriever.scores["num_docs"])
        self._idf = np.log1p((n - df + 0.5) / (df + 0.5))
        self._idf_unseen = float(np.log1p((n + 0.5) / 0.5))
        self.size = n

    @classmethod
    def build(cls, texts: Sequence[str]) -> Lexical:
        bm25s = _bm25s()

        retriever = bm25s.BM25(k1=K1, b=B)
        # bm25s needs at least one token per text; an empty string token matches no query word.
        retriever.index([tokenize(t) or [""] for t in texts], show_progress=False)
        return cls(retriever)

    def save(self, folder: Path) -> None:
        # bm25s writes numpy arrays with allow_pickle=False and the vocabulary as JSON.
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> Lexical:
        bm25s = _bm25s()

        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        if params.get("k1") != K1 or params.get("b") != B:
            raise ValueError(f"BM25 parameters {params.get('k1')}/{params.get('b')} differ from {K1}/{B}")
        # Memory-mapped: a question reads only its words' posting lists, so a large index costs page cache that
        # the OS can reclaim rather than resident memory, and loading does not read the arrays at all.
        return cls(bm25s.BM25.load(str(folder), allow_pickle=False, mmap=True, show_progress=False))

    def scores(self, question: str) -> np.ndarray:
        """Normalised BM25 of every row for ``question``: float32 array in [0, 1]."""
        rows, values = self.sparse_scores(question)
        full = np.zeros(self.size, dtype=np.float32)
        full[rows] = values
        return full

    def sparse_scores(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows ``question`` scores above zero (sorted) and their normalised BM25, as :meth:`scores` gives.

        Reads only the posting lists of the question's words, and returns only the rows they hold, so that
        the caller never sorts a full-length array.
        """
        tokens = [t for t in tokenize(question) if t]
        ids = [self._vocab[t] for t in tokens if t in self._vocab]
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ceiling = (K1 + 1) * sum(float(self._idf[self._vocab[t]]) if t in self._vocab else self._idf_unseen
                                 for t in tokens)
        matrix = self._bm25.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        # A word asked twice counts twice, as in bm25s' own scoring.
        spans = [(int(indptr[i]), int(indptr[i + 1])) for i in ids]
        summed: np.ndarray
        if sum(b - a for a, b in spans) * 8 > self.size:
            # Common words: add each posting list into a dense array (a row occurs once per list, so plain
            # fancy-index addition is exact), cheaper than sorting this many postings.
            dense = np.zeros(self.size, dtype=np.float32)
            for a, b in spans:
                dense[indices[a:b]] += data[a:b]
            unique = np.flatnonzero(dense)
            summed = dense[unique]
        else:
            rows = np.concatenate([indices[a:b] for a, b in spans])
            values = np.concatenate([data[a:b] for a, b in spans])
            unique, inverse = np.unique(rows, return_inverse=True)
            summed = np.bincount(inverse, weights=values, minlength=len(unique))
        return unique.astype(np.int64), (summed / ceiling).astype(np.float32)
