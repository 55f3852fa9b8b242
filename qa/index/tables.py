"""What an index holds beside its vectors: the documents in SQLite, each sentence's offsets and duplicate key,
each document's rows, the embedding cache's keys (of a sentence's text and of its window), and the context
vectors made from sentence and title vectors. Pure functions over numpy arrays, but for the SQLite tables.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..documents import Document
from ..ranking import duplicate_keys, text_keys

#: Neighbouring sentences on each side that make up a sentence's window for the context channels.
WINDOW = 1
#: Weight of the document title's vector in a sentence's context vector (the sentence and each neighbour
#: weigh 1). Chosen on SQuAD and the article (benchmarks/context_vectors.py): 0.5 and 1.0 lose 0.001-0.002 MRR@10.
TITLE_WEIGHT = 1.5


def _tables(
    docs: Sequence[Document], spans_per_doc: Sequence[Sequence[tuple[int, int]]], sentences: Sequence[str]
) -> tuple[sqlite3.Connection, np.ndarray, np.ndarray, list[str]]:
    """The documents in SQLite (in memory); each sentence's offsets and duplicate key; each document's first
    row and sentence count; and the documents' SHA-256."""
    n = len(sentences)
    lengths = np.array([len(sp) for sp in spans_per_doc], dtype=np.int64)
    doc_rows = np.column_stack([np.cumsum(lengths) - lengths, lengths])
    bounds = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(spans_per_doc)),
                         dtype=np.int64, count=2 * n).reshape(n, 2)
    rows = np.column_stack([bounds, duplicate_keys(sentences)])
    shas = [doc.sha256 for doc in docs]
    db = sqlite3.connect(":memory:", check_same_thread=False)
    _create_schema(db)
    # One statement per table for all documents: per-document calls cost more than the inserts.
    db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   ((i, d.doc_id, d.title, d.source, sha, d.text, first, count)
                    for i, (d, sha, (first, count)) in enumerate(zip(docs, shas, doc_rows.tolist(), strict=True))))
    db.executemany("INSERT INTO pages VALUES (?, ?, ?)",
                   ((i, number, start) for i, d in enumerate(docs) for number, start in enumerate(d.pages, 1)))
    db.executemany("INSERT INTO headings VALUES (?, ?, ?)",
                   ((i, start, text) for i, d in enumerate(docs) for start, text in d.headings))
    db.commit()
    return db, rows, doc_rows, shas


def _create_schema(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE documents (
            idx INTEGER PRIMARY KEY, doc_id TEXT UNIQUE NOT NULL, title TEXT NOT NULL, source TEXT,
            sha256 TEXT NOT NULL, text TEXT NOT NULL, first_row INTEGER NOT NULL, n_sentences INTEGER NOT NULL
        );
        CREATE TABLE pages (doc_idx INTEGER NOT NULL, number INTEGER NOT NULL, start INTEGER NOT NULL);
        CREATE TABLE headings (doc_idx INTEGER NOT NULL, start INTEGER NOT NULL, text TEXT NOT NULL);
        CREATE INDEX pages_doc ON pages (doc_idx, start);
        CREATE INDEX headings_doc ON headings (doc_idx, start);
        """
    )

def _sentence_texts(docs: Sequence[Document], spans_per_doc: Sequence[Sequence[tuple[int, int]]]) -> list[str]:
    """Each sentence's text, document after document."""
    return [doc.text[a:b] for doc, spans in zip(docs, spans_per_doc, strict=True) for a, b in spans]


def window_texts(docs: Sequence[Document], spans_per_doc: Sequence[Sequence[tuple[int, int]]]) -> list[str]:
    """Each sentence's window written out: ``"<title>. <previous> <sentence> <next>"`` within its document.

    What the context channels stand for; the index derives them from the parts (:func:`qa.lexical.channels`,
    :func:`_context_vectors`) rather than from these texts.
    """
    windows: list[str] = []
    for doc, spans in zip(docs, spans_per_doc, strict=True):
        for j in range(len(spans)):
            lo, hi = spans[max(0, j - WINDOW)][0], spans[min(len(spans) - 1, j + WINDOW)][1]
            windows.append(f"{doc.title}. {' '.join(doc.text[lo:hi].split())}")
    return windows


def sentence_keys(sentences: Sequence[str], doc_of: np.ndarray, titles: Sequence[str]) -> np.ndarray:
    """Each sentence's two embedding-cache keys: of its text, and of its window (:func:`window_keys`), n x 2.

    ``doc_of[i]`` is the index in ``titles`` of sentence ``i``'s document.
    """
    text = text_keys(sentences)
    return np.column_stack([text, window_keys(text, doc_of, text_keys(titles))])


def window_keys(keys: np.ndarray, doc_of: np.ndarray, title_keys: np.ndarray) -> np.ndarray:
    """A key per sentence for what its context vector is made of: its document's title (``title_keys[doc_of]``),
    itself and its :data:`WINDOW` neighbours each side within its document, mixed from their text ``keys``.

    Example:
        >>> import numpy as np
        >>> from qa.index import window_keys
        >>> docs, titles = np.array([0, 0, 1]), np.array([7, 8])
        >>> k = window_keys(np.array([1, 2, 3]), docs, titles)
        >>> len(set(k.tolist())), (window_keys(np.array([1, 2, 4]), docs, titles) == k).tolist()
        (3, [True, True, False])
    """
    n = len(keys)
    h = _mix(title_keys[doc_of].astype(np.uint64))
    for offset in range(-WINDOW, WINDOW + 1):
        j, ok = _neighbours(doc_of, np.arange(n), offset)
        part = np.full(n, _NO_NEIGHBOUR, dtype=np.uint64)
        part[ok] = keys[j[ok]].astype(np.uint64)
        h = _mix(h * np.uint64(0x100000001B3) + part)  # in order: the same parts in another order differ
    return (h >> np.uint64(1)).astype(np.int64)


_NO_NEIGHBOUR = np.uint64(0x9E3779B97F4A7C15)


def _neighbours(doc_of: np.ndarray, rows: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``offset`` away from ``rows``, and where that row exists within the same document."""
    j = rows + offset
    ok = (j >= 0) & (j < len(doc_of))
    ok[ok] = doc_of[j[ok]] == doc_of[rows[ok]]
    return j, ok


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit affects every output bit (arithmetic wraps modulo 2**64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return np.asarray(x ^ (x >> np.uint64(31)))


class _Sorted(NamedTuple):
    keys: np.ndarray
    rows: np.ndarray


def _sorted(keys: np.ndarray) -> _Sorted:
    order = np.argsort(keys, kind="stable")
    return _Sorted(keys[order], order)


def _find(wanted: np.ndarray, table: _Sorted) -> np.ndarray:
    """For each wanted key, a row that holds it in ``table``, or -1."""
    if len(table.keys) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(table.keys, wanted), len(table.keys) - 1)
    return np.where(table.keys[at] == wanted, table.rows[at], -1)


def _context_vectors(sentence_vectors: np.ndarray, doc_of: np.ndarray, rows: np.ndarray,
                     title_vectors: np.ndarray) -> np.ndarray:
    """Context vectors of ``rows``: ``TITLE_WEIGHT`` x title + the sentence + its neighbours in its document,
    renormalised to unit length (so that inner product stays cosine).

    On SQuAD this scores 0.0048 MRR@10 below embedding each window's text as one passage (0.8077 against
    0.8125, benchmarks/context_vectors.py), and costs no model time instead of three times the sentences'.
    """
    out = title_vectors.astype(np.float32) * TITLE_WEIGHT
    for offset in range(-WINDOW, WINDOW + 1):
        j, ok = _neighbours(doc_of, rows, offset)
        out[ok] += sentence_vectors[j[ok]]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

