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
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["TOKENIZER", "Lexical", "LexicalChannel", "TermStats", "best", "channels", "focus_words",
           "query_weights", "token_ids", "tokenize"]

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


def token_ids(texts: Sequence[str], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`tokenize` tokens of every text as term ids (``vocab`` grows to hold new ones), flat, with
    each text's start: text ``i`` is ``flat[ptr[i]:ptr[i + 1]]``. Term ids are given in order of first use.

    Example:
        >>> from qa.lexical import token_ids
        >>> vocab = {}
        >>> flat, ptr = token_ids(["Relations improved", "the relations"], vocab)
        >>> flat.tolist(), ptr.tolist(), vocab
        ([0, 1, 0], [0, 2, 3], {'relat': 0, 'improv': 1})
    """
    ids = _TermIds(vocab)
    flats, counts = [], []
    for lo in range(0, len(texts), _TEXTS_AT_ONCE):
        part = texts[lo : lo + _TEXTS_AT_ONCE]
        words = _words(part)
        # One lookup per word in C (map); only a word not seen yet calls back into Python, to be spelled and
        # stemmed, so term ids follow first use.
        row = np.fromiter(map(ids.__getitem__, words), dtype=np.int64, count=len(words))
        owner = np.cumsum(row == _END_ID)  # the text (in ``part``) each word is in
        keep = row >= 0
        flats.append(row[keep])
        counts.append(np.bincount(owner[keep], minlength=len(part))[: len(part)])
    flat = np.concatenate(flats) if flats else np.zeros(0, dtype=np.int64)
    ptr = np.zeros(len(texts) + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=ptr[1:])
    return flat, ptr


class _TermIds(dict[bytes, int]):
    """Lower-cased words (UTF-8) to term ids, -1 for a stop word; :data:`_END` (a text's end) to ``_END_ID``."""

    def __init__(self, vocab: dict[str, int]) -> None:
        super().__init__({_END: _END_ID})
        self._vocab = vocab
        self._stop = _stopwords()

    def __missing__(self, word: bytes) -> int:
        w = word.decode("utf-8")
        term = self[word] = -1 if w in self._stop else self._vocab.setdefault(_term(w), len(self._vocab))
        return term


#: Texts tokenized as one string: large enough that per-text Python work vanishes, small enough to stay in cache.
_TEXTS_AT_ONCE = 20_000
_END = b"\x00"
_END_ID = -3
#: Bytes that are not ASCII word characters become spaces; bytes of non-ASCII characters stay.
_ASCII_WORDS = bytes(c if c >= 0x80 or c == 0 or re.fullmatch(r"\w", chr(c)) else 0x20 for c in range(256))


def _words(texts: Sequence[str]) -> list[bytes]:
    """``_WORD.findall(text.lower())`` of each text, UTF-8 encoded, end to end, each text followed by ``_END``.

    One string for all the texts, and a byte translation with a split instead of a regex: the same words
    (``\\w+`` is every maximal run of word characters), several times faster.
    """
    # Text by text, an ASCII text takes Python's fast paths for lower-casing.
    lows = [t.lower() for t in texts]
    joined = " \x00 ".join(lows) + " \x00"
    if joined.count("\x00") != len(texts):  # a text holds NUL, which is no word character: make it a space
        joined = " \x00 ".join(t.replace("\x00", " ") for t in lows) + " \x00"
    blank = {c for c in set("".join([t for t in lows if not t.isascii()])) if c >= "\x80" and not _WORD.match(c)}
    for char in blank:  # non-ASCII characters that are no word characters: a few distinct ones
        joined = joined.replace(char, " ")
    return joined.encode("utf-8").translate(_ASCII_WORDS).split()


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


def _gather(flat: np.ndarray, ptr: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids of texts ``which`` (CSR ``flat``/``ptr``) end to end, and for each id its position in ``which``."""
    starts, lengths = ptr[which], ptr[which + 1] - ptr[which]
    owner = np.repeat(np.arange(len(which)), lengths)
    first = np.cumsum(lengths) - lengths
    return flat[np.repeat(starts, lengths) + np.arange(int(lengths.sum())) - first[owner]], owner


def channels(
    sentences: Sequence[str], doc_of: np.ndarray, titles: Sequence[str], window: int
) -> tuple[Lexical, Lexical]:
    """An index's two BM25 channels: each sentence with its document's title, and its window.

    A window is the title, the sentence and ``window`` neighbours on each side within its document; its tokens
    are those of its parts, so each sentence and title is tokenized once, not once per window it is in. Scores
    equal :meth:`Lexical.build` of the texts ``f"{title} {sentence}"`` and ``f"{title}. {previous} {sentence}
    {next}"`` (a word that a sentence break cuts in two counts as two, here and in the sentences).
    """
    n = len(sentences)
    vocab: dict[str, int] = {}
    s_flat, s_ptr = token_ids(sentences, vocab)
    t_flat, t_ptr = token_ids(titles, vocab)
    rows = np.arange(n)
    title_terms, title_rows = _gather(t_flat, t_ptr, doc_of)
    own_terms, own_rows = _gather(s_flat, s_ptr, rows)
    titled = Lexical.from_postings(np.concatenate([title_terms, own_terms]), np.concatenate([title_rows, own_rows]),
                                   n, vocab)
    terms, owners = [title_terms, own_terms], [title_rows, own_rows]
    for offset in (o for o in range(-window, window + 1) if o):
        near = rows + offset
        ok = (near >= 0) & (near < n)
        ok[ok] = doc_of[near[ok]] == doc_of[rows[ok]]
        t, r = _gather(s_flat, s_ptr, near[ok])
        terms.append(t)
        owners.append(rows[ok][r])
    return titled, Lexical.from_postings(np.concatenate(terms), np.concatenate(owners), n, vocab)


def best(values: np.ndarray, k: int) -> np.ndarray:
    """The positions (ascending) of the ``k`` largest ``values``; of values tied at the boundary, the first ones.

    BM25 ties often (sentences with the same words and length): breaking them by position (rows come sorted) makes
    a channel's proposals the same wherever its scores are computed (locally, or by a Milvus search).

    Example:
        >>> from qa.lexical import best
        >>> best(np.array([0.2, 0.5, 0.2, 0.9, 0.2]), 3).tolist()
        [0, 1, 3]
    """
    if len(values) <= k:
        return np.arange(len(values))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-values, k - 1)[:k]
    chosen = values[top]
    threshold = chosen.min()
    tied = values == threshold
    if np.count_nonzero(tied) == np.count_nonzero(chosen == threshold):  # no tied row left out: argpartition's
        return np.sort(top)
    above = values > threshold
    return np.flatnonzero(above | (tied & (np.cumsum(tied) <= k - int(np.count_nonzero(above)))))


class TermStats:
    """What weighing a question needs from a corpus: its vocabulary (token to term id), each term's idf (from its
    document frequency ``df`` among ``n`` rows) and the idf of a word the corpus never uses.

    Shared by :class:`Lexical` and the channels whose term weights live elsewhere (Milvus sparse vectors), so
    that a question is weighed, and its scores made a share of its ceiling, by one piece of code.

    Example:
        >>> from qa.lexical import TermStats
        >>> stats = TermStats({"cat": 0, "dog": 1}, np.array([1, 2]), 2)
        >>> known, ceiling = stats.query("cats and dogs")
        >>> known, round(ceiling, 3)
        ([(0, 1.0), (1, 1.0)], 1.926)
    """

    def __init__(self, vocab: dict[str, int], df: np.ndarray, n: int) -> None:
        self.vocab = vocab
        self.df = np.asarray(df, dtype=np.int64)
        self.n = int(n)
        self.idf = np.log1p((n - self.df + 0.5) / (self.df + 0.5))
        self.idf_unseen = float(np.log1p((n + 0.5) / 0.5))

    def query(self, question: str, focus_weight: float = 1.0) -> tuple[list[tuple[int, float]], float]:
        """The term ids of ``question``'s words that the corpus holds, each with its :func:`query_weights` weight,
        and the ceiling its scores are a share of (0.0 for a question without words)."""
        weights = query_weights(question, focus_weight)
        return [(self.vocab[t], w) for t, w in weights.items() if t in self.vocab], self.ceiling(weights)

    def ceiling(self, weights: dict[str, float]) -> float:
        """The most a row could score for a question of these word weights (what scores are a share of)."""
        return (K1 + 1) * sum(w * (float(self.idf[self.vocab[t]]) if t in self.vocab else self.idf_unseen)
                              for t, w in weights.items())


class LexicalChannel(Protocol):
    """What an index asks of a lexical channel: :class:`Lexical`, or its term weights held elsewhere.

    A ``complete`` channel's :meth:`sparse_scores` gives every row a question scores above zero; another one
    (a Milvus sparse search returns only its best rows) is asked for its best rows with :meth:`propose`, and
    the other candidates are scored with :meth:`scores_at`.
    """

    size: int
    complete: bool

    def sparse_scores(self, question: str, *, focus_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]: ...

    def propose(self, question: str, k: int, *, allowed: np.ndarray | None = None,
                focus_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]: ...

    def scores_at(self, question: str, rows: np.ndarray, *, focus_weight: float = 1.0) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...


class Lexical:
    """A BM25 index over a list of texts (one per sentence row)."""

    #: :meth:`sparse_scores` returns every row scored above zero.
    complete = True

    def __init__(self, retriever: Any) -> None:
        self._bm25 = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict
        # Document frequency of each term is the length of its column in the sparse score matrix.
        n = int(retriever.scores["num_docs"])
        self.stats = TermStats(self._vocab, np.diff(np.asarray(retriever.scores["indptr"])), n)
        self._idf = self.stats.idf
        self._idf_unseen = self.stats.idf_unseen
        self.size = n

    @classmethod
    def build(cls, texts: Sequence[str]) -> Lexical:
        """BM25 over ``texts``, one row each, scored as ``bm25s.BM25(k1=K1, b=B).index`` of their tokens."""
        vocab: dict[str, int] = {}
        flat, ptr = token_ids(texts, vocab)
        rows = np.repeat(np.arange(len(texts)), np.diff(ptr))
        return cls.from_postings(flat, rows, len(texts), vocab)

    @classmethod
    def from_postings(cls, terms: np.ndarray, rows: np.ndarray, n_rows: int, vocab: dict[str, int]) -> Lexical:
        """BM25 of ``n_rows`` texts given as one (term id, row) pair per token occurrence, in any order.

        Builds the arrays ``bm25s`` would (Lucene BM25: same scores to the bit, same CSC layout, saved and
        loaded by bm25s), with numpy over all pairs at once instead of a Python loop per text: the arrays
        of a million sentences take seconds. ``vocab`` maps tokens to the term ids used (it may grow).
        """
        lengths = np.bincount(rows, minlength=n_rows)
        empty = np.flatnonzero(lengths == 0)
        if len(empty):
            # bm25s needs at least one token per text; an empty string token matches no query word.
            vocab = dict(vocab)
            blank = vocab.setdefault("", len(vocab))
            terms = np.concatenate([terms, np.full(len(empty), blank, dtype=terms.dtype)])
            rows = np.concatenate([rows, empty])
            lengths[empty] = 1
        n_vocab = len(vocab)
        # One key per (term, row), sorted by term then row: the CSC order, each posting list by row.
        stride = max(n_rows, 1)
        keys, tf = np.unique(terms.astype(np.int64) * stride + rows, return_counts=True)
        term = keys // stride
        row = keys - term * stride
        df = np.bincount(term, minlength=n_vocab)
        # bm25s' own arithmetic: idf in double (math.log) stored as float32; the length term in double.
        levels, which = np.unique(df, return_inverse=True)
        idf = np.array([math.log(1 + (n_rows - d + 0.5) / (d + 0.5)) if d else 0.0 for d in levels.tolist()],
                       dtype=np.float32)[which]
        avg = lengths.mean() if n_rows else 0.0
        norm = K1 * ((1 - B) + B * lengths / avg) if n_rows else lengths.astype(np.float64)
        tf64 = tf.astype(np.float64)
        data = (idf[term].astype(np.float64) * (tf64 / (norm[row] + tf64))).astype(np.float32)
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        return cls.from_matrix(data, row.astype(np.int32), indptr, n_rows, vocab)

    @classmethod
    def from_matrix(cls, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_rows: int,
                    vocab: dict[str, int]) -> Lexical:
        """BM25 from its term-by-row matrix as bm25s keeps it (CSC: term ``i``'s rows ``indices[indptr[i]:
        indptr[i + 1]]``, sorted, and their BM25 term weights ``data``), e.g. read back from Milvus."""
        bm25s = _bm25s()

        retriever = bm25s.BM25(k1=K1, b=B)
        retriever.scores = {"data": np.asarray(data, dtype=np.float32), "indices": np.asarray(indices, dtype=np.int32),
                            "indptr": np.asarray(indptr, dtype=np.int64), "num_docs": int(n_rows)}
        retriever.vocab_dict = dict(vocab)
        retriever.unique_token_ids_set = set(vocab.values())
        retriever.nonoccurrence_array = None  # Lucene BM25 has no score for absent words
        retriever.corpus = None
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

    def scores_at(self, question: str, rows: np.ndarray, *, focus_weight: float = 1.0) -> np.ndarray:
        """Normalised BM25 of the given ``rows`` only, as :meth:`scores` gives them.

        Each query word's posting list is sorted by row, so a binary search finds each row in it: the cost
        grows with the number of rows asked for, not with the length of the lists (long at a million rows).
        """
        known, ceiling = self.stats.query(question, focus_weight)
        out = np.zeros(len(rows), dtype=np.float32)
        if not known or not len(rows):
            return out
        matrix = self._bm25.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        for i, w in known:
            a, b = int(indptr[i]), int(indptr[i + 1])
            if a == b:  # a word of the vocabulary that no row holds (a title of a document with no sentence)
                continue
            postings = indices[a:b]
            at = np.minimum(np.searchsorted(postings, rows), b - a - 1)
            hit = postings[at] == rows
            out[hit] += np.float32(w) * data[a:b][at[hit]]
        return out / np.float32(ceiling)

    def sparse_scores(self, question: str, *, focus_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The rows ``question`` scores above zero (sorted) and their normalised BM25, as :meth:`scores` gives.

        Each query word's BM25 term counts with its :func:`query_weights` weight (a word asked twice counts
        twice, as in bm25s' own scoring). Reads only the posting lists of the question's words, and returns
        only the rows they hold, so that the caller never sorts a full-length array.
        """
        known, ceiling = self.stats.query(question, focus_weight)
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
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

    def propose(self, question: str, k: int, *, allowed: np.ndarray | None = None,
                focus_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The (at most) ``k`` best of :meth:`sparse_scores`' rows within ``allowed`` (:func:`best`), sorted by row."""
        rows, values = self.sparse_scores(question, focus_weight=focus_weight)
        if allowed is not None:
            keep = np.isin(rows, allowed)
            rows, values = rows[keep], values[keep]
        if len(rows) > k:
            at = best(values, k)
            rows, values = rows[at], values[at]
        return rows, values

    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The term-by-row BM25 matrix (CSC ``data``, ``indices``, ``indptr``: see :meth:`from_matrix`)."""
        m = self._bm25.scores
        return np.asarray(m["data"]), np.asarray(m["indices"]), np.asarray(m["indptr"])
