"""The lexical channel: BM25 (via ``bm25s``) over stemmed words, with scores on an absolute scale.

Raw BM25 grows with the number and rarity of query words, so it cannot be mixed with cosine similarities
or compared with a threshold. Each score is divided by the most a sentence could score for that query,
``(k1 + 1) * sum(idf of the query's words)``, where a word the corpus never uses counts with the highest
idf: the result is in [0, 1] and says how much of the question's (weighted) vocabulary a sentence covers.
A question about things the documents never mention ("population") therefore scores low everywhere.

Words of a question's focus, the phrase after its wh-word ("which *economic sectors* were discussed"),
name what the answer is about; they may count more than the question's other words (``focus_weight``).
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

__all__ = ["TOKENIZER", "Lexical", "focus_words", "query_weights", "tokenize"]

K1 = 1.2
#: Length normalisation, lower than the usual 0.75: a sentence is short, and a long one is no less likely to
#: answer. Full pipeline on SQuAD dev (MRR@10, all / the 732 questions with little word overlap): b=0.75
#: 0.8033 / 0.350, 0.5 0.8076 / 0.346, 0.3 0.8093 / 0.339. Lower b favours long sentences that share a word
#: or two with the question, which hurts exactly where words do not overlap: 0.5 is the compromise.
B = 0.5
_WORD = re.compile(r"\w+")
_ISE = re.compile(r"^(\w{3,})is(e|ed|es|ing|ation|ations|er|ers)$")
_OUR = re.compile(r"^(\w{3,})our(s|ed|ing|ite|ites|able)?$")
_WH = re.compile(r"\b(?:what|which|whose|how\s+many|how\s+much)\b", re.IGNORECASE)
#: Words that end a question's focus phrase besides the stop words: auxiliaries ("which sectors *were*").
_FOCUS_END = frozenset(
    ["is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "has", "have", "had", "can",
     "could", "will", "would", "shall", "should", "may", "might", "must"]
)
#: The focus is the first words of the phrase: "what unresolved dispute between ..." -> unresolved, dispute.
FOCUS_WORDS = 2
#: Recorded in manifests: a change of tokenisation means a rebuild.
TOKENIZER = {"words": r"\w+ lower-cased", "stopwords": "bm25s en", "spelling": "american -ize -or",
             "stemmer": "snowball english", "k1": K1, "b": B}


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


def american(word: str) -> str:
    """``word`` with British -ise/-isation and -our endings spelled the American way, as the stemmer needs.

    Snowball stems "recognised" and "recognized" differently; spelled alike, they match. Words that merely
    end that way ("promise", "four") change the same way in questions and documents, so they still match.

    Example:
        >>> from qa.lexical import american
        >>> american("recognised"), american("organisations"), american("behaviour"), american("four")
        ('recognized', 'organizations', 'behavior', 'four')
    """
    return _OUR.sub(r"\1or\2", _ISE.sub(r"\1iz\2", word))


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, Snowball-stemmed words of ``text``, British spellings made American.

    Example:
        >>> from qa.lexical import tokenize
        >>> tokenize("The relations were improving"), tokenize("recognised") == tokenize("recognized")
        (['relat', 'were', 'improv'], True)
    """
    stop = _stopwords()
    return [_term(w) for w in _WORD.findall(text.lower()) if w not in stop]


@lru_cache(maxsize=1 << 18)
def _term(word: str) -> str:
    # Cached: a corpus repeats its words, and spelling and stemming cost far more than the lookup.
    return str(_stemmer().stemWord(american(word)))


def focus_words(question: str) -> list[str]:
    """The words of ``question``'s focus: up to two words after its first what/which/whose/how many/how much.

    The phrase ends at the first stop word or auxiliary verb; a question without such a phrase has no focus.

    Example:
        >>> from qa.lexical import focus_words
        >>> focus_words("Which economic sectors were discussed?"), focus_words("What is the capital?")
        (['economic', 'sectors'], [])
    """
    found = _WH.search(question)
    if found is None:
        return []
    stop = _stopwords()
    out: list[str] = []
    for word in _WORD.findall(question[found.end():].lower()):
        if word in stop or word in _FOCUS_END or len(out) == FOCUS_WORDS:
            break
        out.append(word)
    return out


def query_weights(question: str, focus_weight: float = 1.0) -> dict[str, float]:
    """Each token of ``question`` with its weight: how often it occurs, times ``focus_weight`` if in the focus.

    Example:
        >>> from qa.lexical import query_weights
        >>> query_weights("Which sectors were hit, and which sectors grew?", focus_weight=1.5)
        {'which': 2.0, 'sector': 3.0, 'were': 1.0, 'hit': 1.0, 'grew': 1.0}
    """
    focus = {_term(word) for word in focus_words(question)} if focus_weight != 1.0 else set()
    weights: dict[str, float] = {}
    for token in tokenize(question):
        if token:
            weights[token] = weights.get(token, 0.0) + (focus_weight if token in focus else 1.0)
    return weights


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

    def scores(self, question: str, *, focus_weight: float = 1.0) -> np.ndarray:
        """Normalised BM25 of every row for ``question``: float32 array in [0, 1]."""
        rows, values = self.sparse_scores(question, focus_weight=focus_weight)
        full = np.zeros(self.size, dtype=np.float32)
        full[rows] = values
        return full

    def sparse_scores(self, question: str, *, focus_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The rows ``question`` scores above zero (sorted) and their normalised BM25, as :meth:`scores` gives.

        Each query word's BM25 term counts with its :func:`query_weights` weight (a word asked twice counts
        twice, as in bm25s' own scoring). Reads only the posting lists of the question's words, and returns
        only the rows they hold, so that the caller never sorts a full-length array.
        """
        weights = query_weights(question, focus_weight)
        known = [(self._vocab[t], w) for t, w in weights.items() if t in self._vocab]
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ceiling = (K1 + 1) * sum(w * (float(self._idf[self._vocab[t]]) if t in self._vocab else self._idf_unseen)
                                 for t, w in weights.items())
        matrix = self._bm25.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        spans = [(int(indptr[i]), int(indptr[i + 1]), np.float32(w)) for i, w in known]
        summed: np.ndarray
        if sum(b - a for a, b, _ in spans) * 8 > self.size:
            # Common words: add each posting list into a dense array (a row occurs once per list, so plain
            # fancy-index addition is exact), cheaper than sorting this many postings.
            dense = np.zeros(self.size, dtype=np.float32)
            for a, b, w in spans:
                dense[indices[a:b]] += data[a:b] if w == 1 else w * data[a:b]
            unique = np.flatnonzero(dense > 0)  # on a bool mask: several times faster than on the floats
            summed = dense[unique]
        else:
            rows = np.concatenate([indices[a:b] for a, b, _ in spans])
            values = np.concatenate([data[a:b] if w == 1 else w * data[a:b] for a, b, w in spans])
            unique, inverse = np.unique(rows, return_inverse=True)
            summed = np.bincount(inverse, weights=values, minlength=len(unique))
        return unique.astype(np.int64), (summed / ceiling).astype(np.float32)
