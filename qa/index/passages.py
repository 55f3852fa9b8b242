"""The documents an index holds and the passages it gives back, read from its SQLite tables and its offset
arrays (:class:`qa.index.Index` inherits these)."""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections.abc import Sequence

import numpy as np

from ..checks import check_doc_ids
from ..config import Settings
from ..documents import Document
from ..errors import QAError
from .results import DocumentInfo, Passage

_SLICES_PER_QUERY = 5000


class _Documents:
    """Documents and passages of an index: its ``documents`` table, each document's first row and length
    (``_doc_rows``) and each sentence's offsets (``_spans``)."""

    settings: Settings
    _db: sqlite3.Connection
    _db_lock: threading.Lock
    _doc_rows: np.ndarray
    _first_rows: np.ndarray
    _spans: np.ndarray
    _doc_infos: dict[int, DocumentInfo]

    @property
    def documents(self) -> list[DocumentInfo]:
        """The documents in this index, in build order."""
        with self._db_lock:
            table = self._db.execute("SELECT doc_id, title, sha256, n_sentences, source FROM documents ORDER BY idx")
            return [DocumentInfo(*entry) for entry in table]

    def _doc(self, i: int) -> DocumentInfo:
        """The description of document number ``i`` (cached: a question's passages ask again and again)."""
        info = self._doc_infos.get(i)
        if info is None:
            with self._db_lock:
                entry = self._db.execute(
                    "SELECT doc_id, title, sha256, n_sentences, source FROM documents WHERE idx = ?", (i,)
                ).fetchone()
            info = self._doc_infos[i] = DocumentInfo(*entry)
        return info

    def _doc_number(self, doc_id: str) -> int | None:
        """The number of the document with id ``doc_id``, or None."""
        with self._db_lock:
            found = self._db.execute("SELECT idx FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if found is None else int(found[0])

    def rows_of(self, docs: Sequence[str]) -> np.ndarray:
        """Sentence rows of the given document ids (raises on an unknown id)."""
        parts = []
        for doc_id in check_doc_ids(docs) or []:
            i = self._doc_number(doc_id)
            if i is None:
                with self._db_lock:
                    some = self._db.execute("SELECT doc_id FROM documents ORDER BY idx LIMIT 10").fetchall()
                known = ", ".join(repr(d) for (d,) in some)
                raise QAError(f"unknown document id {doc_id!r}; this index holds {known}")
            first, count = (int(x) for x in self._doc_rows[i])
            parts.append(np.arange(first, first + count, dtype=np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def passage(self, row: int, score: float, *, context: int | None = None) -> Passage:
        """The sentence at ``row`` as a :class:`Passage` with ``context`` neighbours each side."""
        return self.passages([row], [score], context=context)[0]

    def passages(
        self, rows: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, *, context: int | None = None
    ) -> list[Passage]:
        """:meth:`passage` of each of ``rows`` (with its score), made together.

        The offsets of all of them are looked up at once: one element at a time, a memory-mapped array costs
        microseconds a lookup, which at a large ``k`` (every sentence) took most of a search. The pages and
        headings of a document with several of the rows are read once.

        Example:
            >>> import qa
            >>> idx = qa.Index.build([qa.Document("a", "A", "Cats purr. Dogs bark.")])
            >>> [p.text for p in idx.passages([1, 0], [0.5, 0.25], context=0)]
            ['Dogs bark.', 'Cats purr.']
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) == 0:
            return []
        c = self.settings.context if context is None else context
        docs = np.searchsorted(self._first_rows, rows, side="right") - 1
        first = np.asarray(self._first_rows[docs], dtype=np.int64)
        last = first + np.asarray(self._doc_rows[docs, 1], dtype=np.int64) - 1
        spans = np.asarray(self._spans[rows], dtype=np.int64)
        context_starts = np.asarray(self._spans[np.maximum(first, rows - c), 0], dtype=np.int64)
        context_ends = np.asarray(self._spans[np.minimum(last, rows + c), 1], dtype=np.int64)
        shared, counts = np.unique(docs, return_counts=True)
        places = {int(d): self._places(int(d)) for d in shared[counts >= 3].tolist()}
        out = []
        for row, d, (start, end), context_start, context_end, head, score in zip(
            rows.tolist(), docs.tolist(), spans.tolist(), context_starts.tolist(), context_ends.tolist(),
            first.tolist(), np.asarray(scores, dtype=np.float64).reshape(-1).tolist(), strict=True,
        ):
            info = self._doc(d)
            window = self._text_slice(d, context_start, context_end)
            page, heading = _place_in(places[d], start) if d in places else self._place(d, start)
            a, b = start - context_start, end - context_start
            out.append(Passage(
                text=window[a:b],
                score=score,
                doc_id=info.doc_id,
                title=info.title,
                sentence=row - head,
                start=start,
                end=end,
                context=window,
                context_start=context_start,
                context_end=context_end,
                page=page,
                heading=heading,
            ))
        return out

    def _places(self, doc: int) -> tuple[list[int], list[int], list[int], list[str]]:
        """Every page (start, number) and heading (start, text) of document ``doc``, in the order that
        :func:`_place_in` expects: by start, and among equal starts as :meth:`_place` ranks them (last wins)."""
        with self._db_lock:
            pages = self._db.execute(
                "SELECT start, number FROM pages WHERE doc_idx = ? ORDER BY start, rowid", (doc,)).fetchall()
            heads = self._db.execute(
                "SELECT start, text FROM headings WHERE doc_idx = ? ORDER BY start, rowid", (doc,)).fetchall()
        return ([int(a) for a, _ in pages], [int(n) for _, n in pages],
                [int(a) for a, _ in heads], [str(t) for _, t in heads])

    def _place(self, doc: int, offset: int) -> tuple[int | None, str | None]:
        """Page number and heading at ``offset`` of document ``doc``."""
        with self._db_lock:
            page = self._db.execute(
                "SELECT number FROM pages WHERE doc_idx = ? AND start <= ? ORDER BY start DESC LIMIT 1", (doc, offset)
            ).fetchone()
            heading = self._db.execute(
                "SELECT text FROM headings WHERE doc_idx = ? AND start <= ? ORDER BY start DESC LIMIT 1", (doc, offset)
            ).fetchone()
        return (int(page[0]) if page else None), (str(heading[0]) if heading else None)

    def document(self, doc_id: str) -> Document:
        """The full stored document (text, pages, headings) as it was indexed."""
        i = self._doc_number(doc_id)
        if i is None:
            raise QAError(f"unknown document id {doc_id!r}")
        info = self._doc(i)
        with self._db_lock:
            (text,) = self._db.execute("SELECT text FROM documents WHERE idx = ?", (i,)).fetchone()
            pages = self._db.execute("SELECT start FROM pages WHERE doc_idx = ? ORDER BY number", (i,)).fetchall()
            heads = self._db.execute(
                "SELECT start, text FROM headings WHERE doc_idx = ? ORDER BY start", (i,)
            ).fetchall()
        return Document(info.doc_id, info.title, str(text), info.source,
                        pages=tuple(int(p) for (p,) in pages), headings=tuple((int(a), str(t)) for a, t in heads))

    def document_text(self, doc_id: str) -> str:
        """The full stored text of a document (what offsets refer to)."""
        i = self._doc_number(doc_id)
        if i is None:
            raise QAError(f"unknown document id {doc_id!r}")
        with self._db_lock:
            (text,) = self._db.execute("SELECT text FROM documents WHERE idx = ?", (i,)).fetchone()
        return str(text)

    def _sentence_texts(self, rows: np.ndarray) -> list[str]:
        """The text of each sentence row (what a learned scorer reads), in one query for all of them.

        Each document's candidates are cut from one slice of it, from the first one's start to the last one's
        end: a question's candidates number a hundred or more, and one ``substr`` per sentence would walk a long
        document's text once each.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) == 0:
            return []
        docs = np.searchsorted(self._first_rows, rows, side="right") - 1
        spans = np.asarray(self._spans[rows], dtype=np.int64)
        wanted: dict[int, tuple[int, int]] = {}
        for d, (start, end) in zip(docs.tolist(), spans.tolist(), strict=True):
            lo, hi = wanted.get(d, (start, end))
            wanted[d] = (min(lo, start), max(hi, end))
        # SQLite's substr counts characters (code points) from 1, like Python's str indexing from 0. At most
        # _SLICES_PER_QUERY documents a query keeps the placeholders under SQLite's limit (32,766).
        items = list(wanted.items())
        sliced: dict[int, str] = {}
        with self._db_lock:
            for at in range(0, len(items), _SLICES_PER_QUERY):
                part = items[at:at + _SLICES_PER_QUERY]
                values = ", ".join("(?, ?, ?)" for _ in part)
                params = [v for d, (lo, hi) in part for v in (d, lo + 1, hi - lo)]
                sliced.update(self._db.execute(
                    f"WITH w(idx, a, n) AS (VALUES {values}) "
                    "SELECT w.idx, substr(d.text, w.a, w.n) FROM w JOIN documents d ON d.idx = w.idx", params
                ).fetchall())
        out = []
        for d, (start, end) in zip(docs.tolist(), spans.tolist(), strict=True):
            lo = wanted[d][0]
            out.append(str(sliced[d])[start - lo:end - lo])
        return out

    def _text_slice(self, doc: int, start: int, end: int) -> str:
        # SQLite's substr counts characters (code points) from 1, like Python's str indexing from 0.
        with self._db_lock:
            (text,) = self._db.execute(
                "SELECT substr(text, ?, ?) FROM documents WHERE idx = ?", (start + 1, end - start, doc)
            ).fetchone()
        return str(text)


def _place_in(places: tuple[list[int], list[int], list[int], list[str]], offset: int) -> tuple[int | None, str | None]:
    """The page number and heading at ``offset``, from a document's :meth:`Index._places`."""
    page_starts, numbers, heading_starts, headings = places
    p = bisect.bisect_right(page_starts, offset) - 1
    h = bisect.bisect_right(heading_starts, offset) - 1
    return (numbers[p] if p >= 0 else None), (headings[h] if h >= 0 else None)
