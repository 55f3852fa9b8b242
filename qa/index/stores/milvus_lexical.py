"""The lexical channels in Milvus: each sentence's BM25 term weights as a sparse vector, qa's own BM25.

A channel (``bm25``, ``bm25_context``) is a collection ``<c>_<channel>`` of rows ``id = gen << 40 | row``, ``gen``,
``row`` and ``sp``, a ``SPARSE_FLOAT_VECTOR`` (index ``SPARSE_INVERTED_INDEX``, metric ``IP``) holding, for each
term of the row, the very float32 that :class:`qa.lexical.Lexical` keeps for it: ``idf * tf / (tf + k1 (1 - b +
b len / avg))`` (its CSC matrix, row by row). What weighing a question needs (vocabulary, document frequencies,
number of rows, ``k1`` and ``b``) is one JSON record in ``<c>_blobs`` (kind ``lexical``), read by every replica
at load. A question is the sparse vector ``{term id: weight}`` of :class:`qa.lexical.TermStats` (the code
:class:`Lexical` weighs it with), so the inner product Milvus computes is ``Lexical``'s raw score (to float32
rounding), and dividing by the same ceiling gives its normalised score.

A Milvus search returns only its best rows (``complete`` is False): :meth:`MilvusLexical.propose` gives the best
``k``, and :meth:`MilvusLexical.scores_at` the exact scores of given rows, as ``MilvusStore.score`` does for the
dense channels. Sparse vectors need Milvus 2.4 or later (Lite 2.5 has them): :func:`use_sparse` decides, from the
``milvus_lexical`` setting. pymilvus is never imported here: the client comes from :mod:`qa.index.milvus_client`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import IndexCorruptError, IndexUnavailableError
from ...lexical import K1, B, Lexical, LexicalChannel, TermStats, best
from ..milvus_client import _STRONG
from .milvus import GEN_SHIFT, MAX_TOPK, key, row_ranges

if TYPE_CHECKING:
    from ..location import MilvusLocation

__all__ = ["MODES", "SPARSE_MINIMUM", "SPARSE_PARTS", "MilvusLexical", "open_channels", "save_channels",
           "stats_record", "use_sparse", "write"]

log = logging.getLogger("qa.index")

#: The channels kept as sparse vectors, each in its collection ``<c>_<channel>``.
SPARSE_PARTS = ("bm25", "bm25_context")
#: Values of the ``milvus_lexical`` setting.
MODES = ("auto", "milvus", "local")
#: The oldest server with sparse vectors (2.3 creates the field, then fails at the first insert).
SPARSE_MINIMUM = (2, 4)
#: Rows per insert call (a window's vector holds ~50 terms: well under a MiB a call).
_INSERT_ROWS = 2_000
#: Rows scored in one search (the expression ``id in [...]`` Milvus parses grows with them).
_SCORE_BATCH = 1_000
_MASK = (1 << GEN_SHIFT) - 1
_warned: set[str] = set()


def use_sparse(loc: MilvusLocation, mode: str) -> bool:
    """Whether a save to ``loc`` keeps the lexical channels as Milvus sparse vectors, by the ``milvus_lexical``
    setting ``mode``: ``local`` never (a load rebuilds them from the text), ``milvus`` always (an error on a
    server older than 2.4), ``auto`` when the server has them (Milvus Lite does), else local with a warning.

    Raises:
        IndexUnavailableError: ``mode`` is ``milvus`` and the server is older than 2.4 (names its version).

    Example:
        >>> from qa.index.location import parse_location
        >>> use_sparse(parse_location("milvus:/tmp/never-opened.db#a"), "auto")
        True
    """
    from .. import milvus

    if mode == "local":
        return False
    if mode == "milvus":
        milvus.require(loc, "sparse vectors (the setting milvus_lexical=milvus; milvus_lexical=auto or local keeps "
                       "the lexical channels in each process instead)", SPARSE_MINIMUM)
        return True
    found = milvus.server_version(loc)
    if found is None or found[1] >= SPARSE_MINIMUM:
        return True
    if loc.uri not in _warned:
        _warned.add(loc.uri)
        log.warning("the Milvus server at %s is version %s, without sparse vectors (Milvus 2.4 or later): the BM25 "
                    "channels are rebuilt from the text by every process that opens the index", loc, found[0])
    return False


def stats_record(lex: Lexical) -> str:
    """``lex``'s term statistics as the JSON a replica weighs questions with: the vocabulary (tokens in term id
    order), each term's document frequency, the number of rows, ``k1`` and ``b``.

    Example:
        >>> from qa.lexical import Lexical
        >>> json.loads(stats_record(Lexical.build(["Cats purr.", "Dogs bark at cats."])))["vocab"]
        ['cat', 'purr', 'dog', 'bark']
    """
    vocab = lex.stats.vocab
    ids = sorted(vocab.values())
    terms: list[str] | dict[str, int] = vocab
    if ids == list(range(len(ids))):
        terms = [""] * len(ids)
        for token, i in vocab.items():
            terms[i] = token
    return json.dumps({"vocab": terms, "df": lex.stats.df.tolist(), "n": lex.stats.n, "k1": K1, "b": B},
                      ensure_ascii=True, separators=(",", ":"))


def read_stats(text: str) -> TermStats:
    """The :class:`TermStats` of a :func:`stats_record`."""
    record = json.loads(text)
    if record.get("k1") != K1 or record.get("b") != B:
        raise ValueError(f"BM25 parameters {record.get('k1')}/{record.get('b')} differ from {K1}/{B}")
    terms = record["vocab"]
    vocab = {t: i for i, t in enumerate(terms)} if isinstance(terms, list) else {str(t): int(i) for t, i in
                                                                                 terms.items()}
    return TermStats(vocab, np.asarray(record["df"], dtype=np.int64), int(record["n"]))


def _rows_of(lex: Lexical) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``lex``'s matrix row by row (CSR): each row's term ids ``terms[ptr[r]:ptr[r + 1]]`` and weights."""
    data, indices, indptr = lex.matrix()
    terms = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    order = np.argsort(indices, kind="stable")  # by row; within a row, by term (CSC order)
    ptr = np.zeros(lex.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(indices, minlength=lex.size)[: lex.size], out=ptr[1:])
    return terms[order], data[order], ptr


def write(client: Any, collection: str, lex: Lexical, gen: int, timeout: int) -> None:
    """Insert ``lex``'s rows into ``collection`` as generation ``gen``'s sparse vectors."""
    terms, weights, ptr = _rows_of(lex)
    for lo in range(0, lex.size, _INSERT_ROWS):
        hi = min(lex.size, lo + _INSERT_ROWS)
        a, b = int(ptr[lo]), int(ptr[hi])
        t, w, starts = terms[a:b].tolist(), weights[a:b].tolist(), (ptr[lo : hi + 1] - a).tolist()
        ids = key(gen, np.arange(lo, hi)).tolist()
        client.insert(collection, [
            {"id": ids[i], "gen": gen, "row": lo + i, "sp": dict(zip(t[starts[i] : starts[i + 1]],
                                                                     w[starts[i] : starts[i + 1]], strict=True))}
            for i in range(hi - lo)], timeout=timeout)


def save_channels(client: Any, names: Mapping[str, str], lexical: Mapping[str, LexicalChannel], gen: int,
                  timeout: int) -> dict[int, str]:
    """Write an index's two BM25 channels (``lexical``, by name) into their collections (``names``) as
    generation ``gen``; returns their :func:`stats_record` by position in :data:`SPARSE_PARTS` (blob owners)."""
    records = {}
    for i, part in enumerate(SPARSE_PARTS):
        found = lexical[part]
        local = found.to_lexical() if isinstance(found, MilvusLexical) else found  # read back from Milvus once
        if not isinstance(local, Lexical):
            raise TypeError(f"cannot save a {type(found).__name__} as a BM25 channel")
        records[i] = stats_record(local)
        write(client, names[part], local, gen, timeout)
    return records


def open_channels(client: Any, names: Mapping[str, str], gen: int, records: Mapping[int, str],
                  timeout: int, reads: dict[str, Any] | None = None) -> tuple[MilvusLexical, MilvusLexical]:
    """The two BM25 channels of generation ``gen``, weighing questions by their ``records`` (blob owners as in
    :func:`save_channels`)."""
    opened = []
    for i, part in enumerate(SPARSE_PARTS):
        count = client.query(names[part], filter=f"gen == {gen}", output_fields=["count(*)"], timeout=timeout,
                             consistency_level="Strong")[0]["count(*)"]
        opened.append(MilvusLexical(client, names[part], gen=gen, stats=read_stats(records[i]), count=int(count),
                                    name=part, timeout=timeout, reads=reads))
    return opened[0], opened[1]


class MilvusLexical:
    """A :class:`~qa.lexical.LexicalChannel` over ``collection``'s sparse vectors of generation ``gen``.

    ``stats`` weighs questions (read from the index's blobs); ``count`` is the rows the generation holds.
    """

    #: A Milvus search returns its best rows only: candidates it did not return are scored with :meth:`scores_at`.
    complete = False

    def __init__(self, client: Any, collection: str, *, gen: int, stats: TermStats, count: int, name: str,
                 timeout: int = 60, reads: dict[str, Any] | None = None) -> None:
        self.client = client
        self.collection = collection
        self.gen = int(gen)
        self.stats = stats
        self.size = int(count)
        self.name = name
        self.reads = {**(reads or _STRONG), "timeout": int(timeout)}  # as MilvusStore

    def _search(self, vector: dict[int, float], limit: int, expr: str) -> tuple[np.ndarray, np.ndarray]:
        found = self.client.search(self.collection, data=[vector], anns_field="sp", filter=expr, limit=int(limit),
                                   search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.0}},
                                   **self.reads)[0]
        rows = np.array([int(h["id"]) & _MASK for h in found], dtype=np.int64)
        return rows, np.array([h["distance"] for h in found], dtype=np.float32)

    def propose(self, question: str, k: int, *, allowed: np.ndarray | None = None,
                focus_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The best (at most) ``k`` rows within ``allowed`` and their normalised BM25, sorted by row."""
        known, ceiling = self.stats.query(question, focus_weight)
        if not known or k <= 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        expr = f"gen == {self.gen}" + ("" if allowed is None else f" and {row_ranges(allowed)}")
        vector = dict(known)
        # One row more than asked shows whether rows tie with the k-th; if they do, all the tied rows are fetched,
        # so that ties are broken by row as Lexical breaks them (qa.lexical.best), not by Milvus's search order.
        limit = min(k + 1, MAX_TOPK)
        while True:
            rows, raw = self._search(vector, limit, expr)
            if len(rows) < limit or limit == MAX_TOPK or len(rows) <= k or raw[-1] < raw[k - 1]:
                break
            limit = min(4 * limit, MAX_TOPK)
        if len(rows) == 0:
            self._check_present()
        keep = raw > 0
        order = np.argsort(rows[keep], kind="stable")
        rows, raw = rows[keep][order], raw[keep][order]
        at = best(raw, k)
        return rows[at], raw[at] / np.float32(ceiling)

    def _check_present(self) -> None:
        """Raise unless the generation is still there (no row matched: perhaps none is left)."""
        first = key(self.gen, np.zeros(1, dtype=np.int64)).tolist()
        if self.size and not self.client.get(self.collection, ids=first, output_fields=["row"], **self.reads):
            raise IndexUnavailableError(
                f"generation {self.gen} of {self.collection} is gone from Milvus: the index has been saved there "
                "twice since this copy was opened; open it again (qa.retrieve and qa.open_index reopen it by "
                "themselves)")

    def sparse_scores(self, question: str, *, focus_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """The best rows (at most the 16,384 a Milvus search returns), as :meth:`Lexical.sparse_scores` gives them."""
        return self.propose(question, MAX_TOPK, focus_weight=focus_weight)

    def scores_at(self, question: str, rows: np.ndarray, *, focus_weight: float = 1.0) -> np.ndarray:
        """Normalised BM25 of ``rows``: a search limited to their primary keys returns each row that shares a
        word with the question, with its exact inner product (the others score 0)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        known, ceiling = self.stats.query(question, focus_weight)
        unique = np.unique(rows)
        raw = np.zeros(len(unique), dtype=np.float32)
        if not known or not len(unique):
            return np.zeros(len(rows), dtype=np.float32)
        vector = dict(known)
        for lo in range(0, len(unique), _SCORE_BATCH):
            part = unique[lo : lo + _SCORE_BATCH]
            got, values = self._search(vector, len(part), f"id in {key(self.gen, part).tolist()}")
            raw[lo + np.searchsorted(part, got)] = values
        return (raw / np.float32(ceiling))[np.searchsorted(unique, rows)]

    def to_lexical(self) -> Lexical:
        """The channel as a local :class:`Lexical`: the same matrix, read back from Milvus (float32, bit for bit)."""
        terms, rows, weights = [], [], []
        for entry in self._iterate():
            vector = entry["sp"]
            terms.append(np.fromiter(vector.keys(), dtype=np.int64, count=len(vector)))
            weights.append(np.fromiter(vector.values(), dtype=np.float32, count=len(vector)))
            rows.append(np.full(len(vector), int(entry["row"]), dtype=np.int64))
        if len(rows) != self.size:
            raise IndexCorruptError(f"{self.collection} holds {len(rows)} rows of generation {self.gen}, not "
                                    f"{self.size}; build the index again")
        t = np.concatenate(terms) if terms else np.zeros(0, dtype=np.int64)
        r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        w = np.concatenate(weights) if weights else np.zeros(0, dtype=np.float32)
        order = np.lexsort((r, t))  # CSC: by term, each term's rows sorted
        indptr = np.zeros(len(self.stats.df) + 1, dtype=np.int64)
        np.cumsum(np.bincount(t, minlength=len(self.stats.df)), out=indptr[1:])
        return Lexical.from_matrix(w[order], r[order].astype(np.int32), indptr, self.size, self.stats.vocab)

    def save(self, folder: Path) -> None:
        """Write the channel into ``folder`` as a local BM25 channel's files (a Milvus index saved to a folder)."""
        self.to_lexical().save(folder)

    def _iterate(self) -> Iterator[dict[str, Any]]:
        it = self.client.query_iterator(self.collection, batch_size=2_000, filter=f"gen == {self.gen}",
                                        output_fields=["row", "sp"], **self.reads)
        try:
            while True:
                batch = it.next()
                if not batch:
                    return
                yield from batch
        finally:
            it.close()
