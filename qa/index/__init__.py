"""The index: sentence vectors in a vector store (FAISS files) plus the documents and sentence offsets they point into.

On disk an index is one directory::

    manifest.json   what built it (format, model and weights hash, dimension, segmenter, documents, checksums)
    vectors.faiss   FAISS inner-product index over sentence vectors (unit length: inner product == cosine)
    context.faiss   the same over each sentence's window: document title and neighbouring sentences
    bm25/           BM25 (bm25s: numpy arrays saved without pickle, JSON vocabulary) over title + sentence
    bm25_context/   BM25 over the window text
    meta.sqlite     documents (id, title, full text, hash) and sentences (document, position, start, end)
    rows.npy        each sentence's start, end and duplicate key, as in meta.sqlite, read by memory map at load
    docs.npy        each document's first sentence row and number of sentences, as in meta.sqlite, likewise

A question is scored by four channels, fused by the weights in the settings (see ``qa/ranking.py``);
the context channels judge a sentence with its surroundings, but what is returned is always the single
sentence with its exact offsets.

Sentence text is never stored separately: it is always ``document.text[start:end]``, so a citation cannot
drift from the text it points into. Nothing is pickled.

The package, by what each part holds:

    index.py         the Index object: search, rank, save, load, update, from_vectors
    passages.py      the documents an index holds and the passages it returns
    results.py       Passage, DocumentInfo, IndexUpdate
    build.py         splitting, embedding (with the cache of an older index), given vectors, assembling
    tables.py        SQLite tables, offset and key arrays, sentence and window keys, context vectors
    manifest.py      the manifest's text and whether settings can use an index (format, model, segmenter)
    files.py         writing, checking (SHA-256 and size) and opening an index's files
    storage.py       the folder: what a save may replace, locks, the atomic swap, reading the manifest
    stores/base.py   the VectorStore protocol: where the dense channels' vectors live
    stores/faiss.py  its FAISS implementation (flat, IVF with scalar codes, codes alone) and nprobe

Every name below is importable from ``qa.index`` as before the split.
"""

from __future__ import annotations

from ..lexical import channels as channels
from .build import CHUNK_CHARS as CHUNK_CHARS
from .build import FIRST_CHUNK_CHARS as FIRST_CHUNK_CHARS
from .build import _Bar as _Bar
from .build import _chunks as _chunks
from .files import _check_files as _check_files
from .files import _fsync as _fsync
from .files import _sha256_file as _sha256_file
from .index import POOL as POOL
from .index import SCORING_ONLY as SCORING_ONLY
from .index import Index as Index
from .index import _checked as _checked
from .index import _lookup as _lookup
from .manifest import FORMAT_VERSION as FORMAT_VERSION
from .manifest import _checked_manifest as _checked_manifest
from .manifest import _manifest_text as _manifest_text
from .manifest import _now as _now
from .manifest import checked_manifest as checked_manifest
from .manifest import holds_unchanged as holds_unchanged
from .manifest import manifest_mismatch as manifest_mismatch
from .passages import _place_in as _place_in
from .results import DocumentInfo as DocumentInfo
from .results import IndexUpdate as IndexUpdate
from .results import Passage as Passage
from .results import Ranking as Ranking
from .storage import BM25 as BM25
from .storage import BM25_CONTEXT as BM25_CONTEXT
from .storage import CONTEXT_VECTORS as CONTEXT_VECTORS
from .storage import DOCS as DOCS
from .storage import KEYS as KEYS
from .storage import MANIFEST as MANIFEST
from .storage import META as META
from .storage import ROWS as ROWS
from .storage import VECTORS as VECTORS
from .storage import check_apart as check_apart
from .storage import check_target as check_target
from .storage import fix_hint as fix_hint
from .storage import locked as _locked  # noqa: F401  (tests/test_reliability.py looks for it)
from .storage import new_temp_folder as new_temp_folder
from .storage import read_manifest as read_manifest
from .storage import rebuild_hint as rebuild_hint
from .storage import recover_interrupted_swap as _recover_interrupted_swap  # noqa: F401
from .storage import swap_into_place as swap_into_place
from .storage import write_error as write_error
from .storage import writing as writing
from .stores.faiss import _ivf as _ivf
from .stores.faiss import default_nprobe as default_nprobe
from .stores.faiss import describe as describe
from .stores.faiss import set_nprobe as set_nprobe
from .stores.faiss import vector_index as vector_index
from .tables import TITLE_WEIGHT as TITLE_WEIGHT
from .tables import WINDOW as WINDOW
from .tables import _context_vectors as _context_vectors
from .tables import _create_schema as _create_schema
from .tables import _find as _find
from .tables import _mix as _mix
from .tables import _neighbours as _neighbours
from .tables import _sentence_texts as _sentence_texts
from .tables import _Sorted as _Sorted
from .tables import _sorted as _sorted
from .tables import _tables as _tables
from .tables import sentence_keys as sentence_keys
from .tables import window_keys as window_keys
from .tables import window_texts as window_texts
from .threads import _workers as _workers

__all__ = ["FORMAT_VERSION", "DocumentInfo", "Index", "IndexUpdate", "Passage", "Ranking"]
