"""The index: sentence vectors in FAISS plus the documents and sentence offsets they point into.

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
"""

from __future__ import annotations

import bisect
import datetime as _dt
import functools
import itertools
import json
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import sentences as _sentences
from .checks import check_context, check_doc_ids, check_k, check_path, check_questions, check_settings, check_sources
from .config import Settings, get_settings
from .documents import Document, SourceFailure, content_hash, load_sources, read_sources
from .errors import IndexCorruptError, IndexMismatchError, QAError, QuestionError
from .lexical import TOKENIZER, Lexical, channels
from .limits import Limits
from .ranking import duplicate_keys, fuse, text_keys, top_unique
from .store import (
    BM25,
    BM25_CONTEXT,
    CONTEXT_VECTORS,
    DOCS,
    KEYS,
    META,
    ROWS,
    VECTORS,
    check_apart,
    check_target,
    fix_hint,
    new_temp_folder,
    read_manifest,
    swap_into_place,
    write_error,
    writing,
)
from .store import MANIFEST as MANIFEST  # re-exported, as the other names here: callers import them from qa.index
from .store import locked as _locked
from .store import rebuild_hint as rebuild_hint
from .store import recover_interrupted_swap as _recover_interrupted_swap

if TYPE_CHECKING:
    import faiss

    from .embedding import Encoder, OnnxEncoder

__all__ = ["FORMAT_VERSION", "DocumentInfo", "Index", "Passage"]

log = logging.getLogger(__name__)

#: Bump when the on-disk layout or the meaning of stored vectors changes; older indexes are then rebuilt.
FORMAT_VERSION = 6
#: Neighbouring sentences on each side that make up a sentence's window for the context channels.
WINDOW = 1
#: Weight of the document title's vector in a sentence's context vector (the sentence and each neighbour
#: weigh 1). Chosen on SQuAD and the article (benchmarks/context_vectors.py): 0.5 and 1.0 lose 0.001-0.002 MRR@10.
TITLE_WEIGHT = 1.5
#: Candidates each channel contributes before fusion (at least; more when k is large).
POOL = 50
#: Channels that, past the exact-search size, only score the other channels' candidates and propose none.
#: Their own proposals cost more than they find there: the context vectors' FAISS search would take 8 ms a
#: question at 1M sentences, and the window BM25's posting lists (3x the sentences') ~10 ms to add up.
#: Without the proposals of both, SQuAD (5,696 questions) loses 0.0003 MRR@10 (0.8084 -> 0.8081) and 0.002
#: R@10; the article's dev questions rank as before.
SCORING_ONLY = frozenset({"dense_context", "bm25_context"})
_LOADS = threading.Lock()
_WORKERS: ThreadPoolExecutor | None = None
_WORKERS_LOCK = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    """Threads that overlap one question's steps: ONNX Runtime, FAISS and numpy release the GIL while they work."""
    global _WORKERS
    with _WORKERS_LOCK:
        if _WORKERS is None:
            _WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qa-search")
        return _WORKERS


@dataclass(frozen=True)
class Passage:
    """One retrieved sentence with its exact place in its document.

    ``document.text[start:end] == text`` always holds, and ``context`` is
    ``document.text[context_start:context_end]`` (the sentence with its neighbours).
    """

    text: str
    score: float
    """Higher is better; cosine similarity for dense retrieval."""
    doc_id: str
    title: str
    sentence: int
    """0-based position of the sentence in its document."""
    start: int
    end: int
    context: str
    context_start: int
    context_end: int
    page: int | None = None
    """1-based page the sentence starts on (documents with pages, such as PDFs)."""
    heading: str | None = None
    """The heading the sentence sits under (Markdown, HTML, Word), if any."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class IndexUpdate:
    """What :meth:`Index.update` did. ``index`` is the updated index (saved, when the old one had a path)."""

    index: Index
    added: list[str]
    replaced: list[str]
    unchanged: list[str]
    removed: list[str]
    failures: list[SourceFailure]
    embedded: int
    """Texts (sentences and titles) that went through the model; the rest came from the cache."""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.removed)


@dataclass(frozen=True)
class DocumentInfo:
    """A document held by an index (without its text)."""

    doc_id: str
    title: str
    sha256: str
    sentences: int
    source: str | None = None


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Index:
    """A searchable set of documents: FAISS vectors over their sentences, with exact offsets.

    Build one with :meth:`build`, open a saved one with :meth:`load`.

    Example:
        >>> import qa
        >>> idx = qa.Index.build([qa.Document("cats", "Cats", "Cats sleep a lot. Dogs bark.")])
        >>> idx.search("Which animal barks?", k=1)[0].text
        'Dogs bark.'
    """

    def __init__(
        self,
        *,
        manifest: dict[str, Any],
        dense: faiss.Index,
        dense_context: faiss.Index,
        bm25: Lexical,
        bm25_context: Lexical,
        db: sqlite3.Connection,
        path: Path | None,
        settings: Settings,
        rows: np.ndarray,
        doc_rows: np.ndarray,
        keys: np.ndarray,
    ) -> None:
        self.manifest = manifest
        self.path = path
        self.settings = settings
        self._dense = {"dense": dense, "dense_context": dense_context}
        for vectors in self._dense.values():
            set_nprobe(vectors, settings.nprobe)
        self._lexical = {"bm25": bm25, "bm25_context": bm25_context}
        self._db = db
        self._db_lock = threading.Lock()
        # Documents are described in SQLite and read when needed (a million-sentence index holds 200k): only
        # each one's first row and length are kept at hand, to place a row in its document; and each sentence's
        # offsets and duplicate key (``rows``), and the keys of its text and window (``keys``, the embedding
        # cache's lookup, read only when the index is updated).
        self._doc_rows = _checked(doc_rows, 2, "document", path)
        self._first_rows = self._doc_rows[:, 0]
        self._doc_infos: dict[int, DocumentInfo] = {}
        self._rows = _checked(rows, 3, "sentence", path)
        self._spans = self._rows[:, :2]
        self._dup_keys = self._rows[:, 2]
        self._keys = _checked(keys, 2, "sentence key", path)
        sizes = {len(self._spans), len(self._keys), dense.ntotal, dense_context.ntotal, bm25.size, bm25_context.size}
        if len(sizes) != 1:
            raise IndexCorruptError(
                f"index at {path} has channels of different sizes {sorted(sizes)}; " + fix_hint(path)
            )

    # ------------------------------------------------------------------ properties

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

    @property
    def model(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def dimension(self) -> int:
        return int(self.manifest["model"]["dimension"])

    def __len__(self) -> int:
        """Number of sentences."""
        return len(self._spans)

    def __repr__(self) -> str:
        path, n_docs = str(self.path), len(self._doc_rows)
        return f"Index(path={path!r}, documents={n_docs}, sentences={len(self)}, model={self.model!r})"

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        sources: Iterable[str | Path | Document],
        path: str | Path | None = None,
        *,
        settings: Settings | None = None,
        progress: bool | None = None,
        spans: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    ) -> Index:
        """Read, split and embed ``sources``; save atomically to ``path`` when given.

        Args:
            sources: files (.txt, .md, .jsonl), folders, or :class:`~qa.Document` objects.
            path: directory to save to: a new or empty folder, or an existing index, which is replaced only once
                the new one is complete. Anything else there is refused before any work is done.
            settings: model and batch settings (default: from the environment).
            progress: show a progress bar (``None``: only on a terminal for long runs).
            spans: sentence spans to use instead of the segmenter, by document id (to evaluate under a fixed
                segmentation such as ReQA's); such an index records segmenter ``given`` and is for in-memory
                use: loading it back is refused.

        Raises:
            IndexWriteError: ``path`` is a file or a folder holding anything but a qa index, is one of the
                ``sources`` (or inside or around one), or the disk refused the write; nothing was lost.
            ArgumentError: an argument has the wrong type.
        """
        s = check_settings(settings) or get_settings()
        sources = check_sources(sources)
        if path is not None:
            target = check_path(path)
            check_apart(target, sources)
            check_target(target)  # before the model runs: a refused folder costs nothing
        # The settings' own limits (not the environment's): a caller's Settings decide what a document may cost.
        docs = load_sources(sources, max_bytes=int(s.max_file_mb * 1024 * 1024), limits=Limits().resolved(s))
        spans_per_doc = None if spans is None else [[(int(a), int(b)) for a, b in spans[d.doc_id]] for d in docs]
        index, _ = cls._from_documents(docs, settings=s, progress=progress, spans_per_doc=spans_per_doc)
        if spans is not None:
            index.manifest["segmenter"] = {"name": "given"}
        if path is not None:
            index.save(path)
        return index

    @classmethod
    def _from_documents(
        cls,
        docs: Sequence[Document],
        *,
        settings: Settings,
        progress: bool | None,
        spans_per_doc: Sequence[Sequence[tuple[int, int]]] | None = None,
        cache: Index | None = None,
    ) -> tuple[Index, int]:
        """Split, embed (reusing ``cache``'s vectors for identical texts) and assemble; returns (index, embedded)."""
        from .embedding import get_encoder

        encoder = get_encoder(settings)
        # Their own threads, not the query workers': an index being built must not hold up questions. One
        # runs the model on each chunk of new sentences in turn, the other builds the BM25 channels.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-model") as model, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-bm25") as helper:
            return cls._embed_and_assemble(docs, settings, progress, spans_per_doc, cache, encoder, model, helper)

    @classmethod
    def _embed_and_assemble(
        cls,
        docs: Sequence[Document],
        settings: Settings,
        progress: bool | None,
        spans_per_doc: Sequence[Sequence[tuple[int, int]]] | None,
        cache: Index | None,
        encoder: Encoder | OnnxEncoder,
        model: ThreadPoolExecutor,
        helper: ThreadPoolExecutor,
    ) -> tuple[Index, int]:
        from .embedding import show_progress

        show = settings.progress if progress is None else progress
        held = cache._key_tables() if cache is not None else None
        all_spans: list[Sequence[tuple[int, int]]] = []
        sentences: list[str] = []
        key_chunks: list[np.ndarray] = []
        jobs: list[tuple[np.ndarray, list[str], Future[np.ndarray]]] = []
        titles: set[str] = set()
        first_row: dict[int, int] = {}  # text key -> the row whose text goes to the model in this build
        repeats: list[tuple[int, int]] = []  # (row, the row of the same text that goes to the model)
        bar = _Bar(show_progress(show, sum(len(d.text) for d in docs) // 100))
        # The documents go through the segmenter a chunk at a time, and each chunk's new sentences go to the
        # model at once: the model (ONNX Runtime releases the GIL) works on one chunk while the next is split,
        # instead of waiting for every document to be split first. A sentence's vector depends on its text
        # alone, so chunking changes no vector.
        for chunk in _chunks(docs):
            row0 = len(sentences)
            spans = [_sentences.split(d.text) for d in chunk] if spans_per_doc is None else \
                [spans_per_doc[i] for i in range(len(all_spans), len(all_spans) + len(chunk))]
            s_chunk = _sentence_texts(chunk, spans)
            local_doc = np.repeat(np.arange(len(chunk)), [len(sp) for sp in spans])
            keys_chunk = sentence_keys(s_chunk, local_doc, [d.title for d in chunk])
            key_chunks.append(keys_chunk)
            sk = keys_chunk[:, 0]
            if held is None:
                missing, window_missing = np.arange(len(sk)), np.ones(len(sk), dtype=bool)
            else:
                missing = np.flatnonzero(_find(sk, held[0]) < 0)
                window_missing = _find(keys_chunk[:, 1], held[1]) < 0
            # Only sentences go through the model. A sentence's context vector is made from vectors at hand
            # (its own, its neighbours' and its title's), so the context channel costs no second, longer
            # forward pass; a missing context vector needs only its title's vector besides.
            new_titles = []
            for j in np.unique(local_doc[window_missing]).tolist():
                if chunk[j].title not in titles:
                    titles.add(chunk[j].title)
                    new_titles.append(chunk[j].title)
            # A text repeated within the build (a page header, a boilerplate line) goes to the model once.
            send = []
            for i, key in zip(missing.tolist(), sk[missing].tolist(), strict=True):
                first = first_row.setdefault(key, row0 + i)
                if first == row0 + i:
                    send.append(i)
                else:
                    repeats.append((row0 + i, first))
            texts = [s_chunk[i] for i in send] + new_titles
            if texts:
                bar.grow(len(texts))
                job = model.submit(encoder.encode_documents, texts, progress=False)
                job.add_done_callback(functools.partial(bar.done, len(texts)))
                jobs.append((row0 + np.asarray(send, dtype=np.int64), new_titles, job))
            all_spans.extend(spans)
            sentences.extend(s_chunk)
        n = len(sentences)
        doc_of = np.repeat(np.arange(len(docs)), [len(sp) for sp in all_spans])
        # The BM25 channels need only the texts: a thread builds them while the model embeds (ONNX Runtime
        # releases the GIL), so they add little to the build's time.
        lexical = helper.submit(channels, sentences, doc_of, [d.title for d in docs], WINDOW)
        keys = np.concatenate(key_chunks) if key_chunks else np.zeros((0, 2), dtype=np.int64)
        vectors = np.zeros((2 * n, encoder.dimension), dtype=np.float32)
        filled = np.zeros(2 * n, dtype=bool) if cache is None or held is None else \
            cache._fill_from_cache(keys, held, vectors)
        title_vectors: dict[str, np.ndarray] = {}
        embedded = 0
        try:
            for missing, new_titles, job in jobs:
                out = job.result()
                vectors[missing] = out[: len(missing)]
                title_vectors.update(zip(new_titles, out[len(missing):], strict=True))
                embedded += len(missing)
        finally:
            bar.close()
        if repeats:
            to, src = np.asarray(repeats, dtype=np.int64).T
            vectors[to] = vectors[src]
        log.info("embedded %d sentences and %d titles (%d sentence vectors reused) from %d documents",
                 embedded, len(title_vectors), n - embedded, len(docs))
        need_context = np.flatnonzero(~filled[n:])
        if len(need_context):
            title_row = {title: i for i, title in enumerate(title_vectors)}
            doc_title = np.array([title_row.get(d.title, -1) for d in docs], dtype=np.int64)
            titles_at = np.stack(list(title_vectors.values()))[doc_title[doc_of[need_context]]]
            vectors[n + need_context] = _context_vectors(vectors[:n], doc_of, need_context, titles_at)
        index = cls._assemble(docs, all_spans, sentences, vectors, encoder, settings, keys, lexical)
        return index, embedded + len(title_vectors)

    def _key_tables(self) -> tuple[_Sorted, _Sorted]:
        """This index's rows sorted by the key of their sentence's text, and by the key of their window."""
        return _sorted(np.asarray(self._keys[:, 0])), _sorted(np.asarray(self._keys[:, 1]))

    def _fill_from_cache(self, keys: np.ndarray, held: tuple[_Sorted, _Sorted], out: np.ndarray) -> np.ndarray:
        """Copy into ``out`` (sentence vectors, then context vectors) the vectors this index holds for ``keys``
        (a text key and a window key per sentence), found in its :meth:`_key_tables` ``held``; returns which
        rows of ``out`` it filled."""
        n = len(keys)
        filled = np.zeros(2 * n, dtype=bool)
        for col, (channel, table) in enumerate(zip(("dense", "dense_context"), held, strict=True)):
            at = _find(keys[:, col], table)
            hit = np.flatnonzero(at >= 0)
            if len(hit):
                out[col * n + hit] = self._dense[channel].reconstruct_batch(at[hit])
                filled[col * n + hit] = True
        return filled

    @classmethod
    def _assemble(
        cls,
        docs: Sequence[Document],
        spans_per_doc: Sequence[Sequence[tuple[int, int]]],
        sentences: Sequence[str],
        vectors: np.ndarray,
        encoder: Encoder | OnnxEncoder,
        settings: Settings,
        keys: np.ndarray,
        lexical: Future[tuple[Lexical, Lexical]],
    ) -> Index:
        """The index over given sentence and context ``vectors`` (2n rows), ``keys`` (n x 2) and the BM25
        channels being built (waited for last, so that building them overlaps with the rest)."""
        n = len(sentences)
        # The context channel weighs a quarter of the sentence channel: 4-bit codes halve its memory at large
        # sizes for a score error of about 0.006 (x0.25 in the fused score). Past the exact size it only scores
        # candidates (SCORING_ONLY) and is never searched, so it needs no clusters: plain codes, no k-means.
        context_kind = "codes" if settings.index_type != "flat" and n > settings.exact_limit else settings.index_type

        def vector_indexes() -> tuple[faiss.Index, faiss.Index]:
            import faiss

            if not lexical.done():
                # Two Python threads (BM25, tables) still want a core: FAISS's OpenMP threads would only wait
                # for one (at 1M, 33 s against 39 s with two threads). Per calling thread in OpenMP.
                faiss.omp_set_num_threads(1)
            return (vector_index(vectors[:n], kind=settings.index_type, exact_limit=settings.exact_limit),
                    vector_index(vectors[n:], kind=context_kind, exact_limit=settings.exact_limit, bits=4))

        # FAISS releases the GIL: its k-means and codes are made while this thread fills the tables.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-faiss") as faiss_thread:
            made = faiss_thread.submit(vector_indexes)
            db, rows, doc_rows, shas = _tables(docs, spans_per_doc, sentences)
            dense, dense_context = made.result()
        bm25, bm25_context = lexical.result()
        doc_entries = [{"doc_id": d.doc_id, "sha256": sha, "sentences": int(count)}
                       for d, sha, count in zip(docs, shas, doc_rows[:, 1].tolist(), strict=True)]
        window_text = f"title. sentences -{WINDOW}..+{WINDOW}"
        context_vector = f"{TITLE_WEIGHT} title + sentences -{WINDOW}..+{WINDOW}, sum of their vectors, unit length"
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": {
                "name": encoder.spec.name,
                "weights_sha256": encoder.spec.weights_sha256,
                "dimension": encoder.dimension,
                "backend": encoder.backend,
                "precision": encoder.precision,
            },
            "segmenter": _sentences.SEGMENTER,
            "lexical": TOKENIZER,
            "channels": {
                "dense": {"file": VECTORS, "text": "sentence", "faiss": describe(dense)},
                "dense_context": {"file": CONTEXT_VECTORS, "text": context_vector, "faiss": describe(dense_context)},
                "bm25": {"file": BM25, "text": "title sentence"},
                "bm25_context": {"file": BM25_CONTEXT, "text": window_text},
            },
            "corpus_sha256": content_hash("".join(shas)),
            "documents": doc_entries,
            "counts": {"documents": len(docs), "sentences": n},
            "created": _now(),
        }
        return cls(
            manifest=manifest,
            dense=dense,
            dense_context=dense_context,
            bm25=bm25,
            bm25_context=bm25_context,
            db=db,
            path=None,
            settings=settings,
            rows=rows,
            doc_rows=doc_rows,
            keys=keys,
        )

    # ------------------------------------------------------------------ saving and loading

    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` atomically: a complete new index, or the old one untouched.

        Files go to a temporary sibling directory first, are flushed to disk, and only then is the directory
        renamed into place. ``path`` must be missing, an empty folder or a qa index: a save never replaces
        anything qa did not write. The temporary folders of saves that were killed are removed by the next save
        once no other save of ``path`` is running.

        Raises:
            IndexWriteError: ``path`` holds something other than a qa index, or the disk refused a write (full,
                read-only, no permission): the message says which and what to do. The old index is unchanged.
        """
        target = check_path(path)
        check_target(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(target, exc, existed=False) from exc
        with writing(target):
            check_target(target)  # again: an interrupted swap may have been put back meanwhile
            existed = target.is_dir() and any(target.iterdir())  # an index (check_target): "unchanged" in errors
            try:
                tmp = new_temp_folder(target)
            except OSError as exc:
                raise write_error(target, exc, existed=existed) from exc
            try:
                manifest = self._write_files(tmp)
                with _locked(target, exclusive=True):
                    check_target(target)  # nothing may have been put there since the first check
                    old = swap_into_place(tmp, target)
            except BaseException as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                if isinstance(exc, (OSError, sqlite3.Error)) and not isinstance(exc, QAError):
                    raise write_error(target, exc, existed=existed) from exc
                raise
            if old is not None:  # outside the swap lock: loads need not wait for the old files to go
                shutil.rmtree(old, ignore_errors=True)
        self.manifest = manifest
        self.path = target
        log.info("saved index to %s", target)

    def _write_files(self, tmp: Path) -> dict[str, Any]:
        """Write every file of the index into the folder ``tmp`` and flush them; returns the manifest written."""
        import faiss

        for channel, name in (("dense", VECTORS), ("dense_context", CONTEXT_VECTORS)):
            try:
                faiss.write_index(self._dense[channel], str(tmp / name))
            except RuntimeError as exc:  # FAISS reports a failed write (disk full, ...) as a RuntimeError
                raise OSError(f"FAISS could not write {tmp / name}: {exc}") from exc
        self._lexical["bm25"].save(tmp / BM25)
        self._lexical["bm25_context"].save(tmp / BM25_CONTEXT)
        with self._db_lock:
            disk = sqlite3.connect(tmp / META)
            try:
                self._db.backup(disk)
            finally:
                disk.close()
        np.save(tmp / ROWS, np.ascontiguousarray(self._rows, dtype=np.int64), allow_pickle=False)
        np.save(tmp / DOCS, np.ascontiguousarray(self._doc_rows, dtype=np.int64), allow_pickle=False)
        np.save(tmp / KEYS, np.ascontiguousarray(self._keys, dtype=np.int64), allow_pickle=False)
        manifest = dict(self.manifest)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest["files"] = {
            f.relative_to(tmp).as_posix(): {"sha256": _sha256_file(f), "bytes": f.stat().st_size} for f in files
        }
        (tmp / MANIFEST).write_text(_manifest_text(manifest), encoding="utf-8")
        for f in [*files, tmp / MANIFEST]:
            os.chmod(f, 0o600)
            _fsync(f)
        for folder in (tmp / BM25, tmp / BM25_CONTEXT):
            os.chmod(folder, 0o700)
        return manifest

    @classmethod
    def load(cls, path: str | Path, *, settings: Settings | None = None, check_model: bool = True) -> Index:
        """Open the index saved at ``path`` and check it against the current settings.

        Raises:
            IndexNotFoundError: nothing is saved at ``path``.
            IndexMismatchError: it was built with another model, format version or segmenter.
            IndexCorruptError: a file is missing, truncated or altered.
        """
        s = check_settings(settings) or get_settings()
        target = check_path(path)
        # The lock file is shared with other processes' loads and exclusive of a save's swap, so the files checked
        # and opened are all one save's. In this process, one load at a time: numpy parses .npy headers with ast,
        # which CPython 3.11 does not do safely in parallel threads (spurious SystemError, gh-106905).
        with _LOADS, _locked(target, exclusive=not target.exists()):
            return cls._load_locked(target, s, check_model=check_model)

    @classmethod
    def _load_locked(cls, target: Path, s: Settings, *, check_model: bool) -> Index:
        import faiss

        manifest = _checked_manifest(target, s, check_model=check_model)
        _check_files(target, manifest)
        try:
            # immutable=1: the files are never modified in place (saves replace the whole directory).
            db = sqlite3.connect(f"file:{target / META}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            return cls(
                manifest=manifest,
                dense=faiss.read_index(str(target / VECTORS)),
                dense_context=faiss.read_index(str(target / CONTEXT_VECTORS)),
                bm25=Lexical.load(target / BM25),
                bm25_context=Lexical.load(target / BM25_CONTEXT),
                db=db,
                path=target,
                settings=s,
                # Memory-mapped: a million sentences' offsets are read only where a question looks.
                rows=np.load(target / ROWS, mmap_mode="r", allow_pickle=False),
                doc_rows=np.load(target / DOCS, mmap_mode="r", allow_pickle=False),
                keys=np.load(target / KEYS, mmap_mode="r", allow_pickle=False),
            )
        except (RuntimeError, OSError, ValueError, KeyError, sqlite3.Error) as exc:
            raise IndexCorruptError(f"index at {target} cannot be read ({exc}); {fix_hint(target)}") from exc

    # ------------------------------------------------------------------ searching

    def search(
        self,
        question: str,
        *,
        k: int | None = None,
        docs: Sequence[str] | None = None,
        context: int | None = None,
    ) -> list[Passage]:
        """The ``k`` sentences closest to ``question``, best first (see :func:`qa.retrieve`).

        ``context`` is the number of neighbouring sentences on each side put into ``Passage.context``.

        Raises:
            QuestionError: ``question`` is not a string.
            ArgumentError: ``k``, ``docs`` or ``context`` has the wrong type.
        """
        if not isinstance(question, str):
            raise QuestionError(f"the question must be text, not {type(question).__name__}")
        return self.search_many([question], k=k, docs=docs, context=context)[0]

    def search_many(
        self,
        questions: Sequence[str],
        *,
        k: int | None = None,
        docs: Sequence[str] | None = None,
        context: int | None = None,
    ) -> list[list[Passage]]:
        """:meth:`search` for several questions at once (one batched forward pass).

        ``k`` may exceed the number of sentences: it is clipped to it first, so a huge ``k`` costs what
        ``k=len(index)`` does.
        """
        from .embedding import get_encoder

        questions = check_questions(questions)
        checked = check_k(k)
        k = self.settings.k if checked is None else checked
        context = check_context(context)
        doc_ids = check_doc_ids(docs)
        k = min(k, max(len(self), 1))
        allowed = None if doc_ids is None else self.rows_of(doc_ids)
        if allowed is not None:
            k = min(k, max(len(allowed), 1))
        encoder = get_encoder(self.settings)
        lexical = None
        proposed = None
        if len(questions) == 1:
            # One question (the common case): BM25 runs while a worker encodes the question and searches the
            # vectors with it.
            def encode_and_search() -> tuple[np.ndarray, dict[str, np.ndarray]]:
                vectors = encoder.encode_queries(list(questions))
                return vectors, self._dense_proposals(vectors[0], k=k, allowed=allowed)

            pending = _workers().submit(encode_and_search)
            lexical = self._lexical_scores(questions[0], allowed)
            queries, proposed = pending.result()
        else:
            queries = encoder.encode_queries(list(questions))
        results = []
        for question, query in zip(questions, queries, strict=True):
            rows, scores = self.rank(question, query, k=k, allowed=allowed, lexical=lexical, proposed=proposed)
            results.append(self.passages(rows, scores, context=context))
        return results

    def _lexical_scores(
        self, question: str, allowed: np.ndarray | None
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Sparse scores of every proposing lexical channel: ``{channel: (rows, scores)}``, within ``allowed``.

        A :data:`SCORING_ONLY` channel past the exact size is left out: :meth:`rank` scores just its candidates.
        """
        focus = self.settings.focus_weight

        def scores(name: str) -> tuple[np.ndarray, np.ndarray]:
            rows, values = self._lexical[name].sparse_scores(question, focus_weight=focus)
            if allowed is not None:
                keep = np.isin(rows, allowed)
                rows, values = rows[keep], values[keep]
            return rows, values

        names = [name for name in self._proposing() if name in self._lexical]
        # Past the exact-search size a channel's posting lists take milliseconds to add up; numpy releases the
        # GIL while it does, so the channels after the first run on the worker threads meanwhile.
        side = {}
        if len(self) > self.settings.exact_limit:
            side = {name: _workers().submit(scores, name) for name in names[1:]}
        return {name: side[name].result() if name in side else scores(name) for name in names}

    def _pool(self, k: int) -> int:
        return min(len(self), max(POOL, 4 * k))

    def _proposing(self) -> list[str]:
        """Active channels that propose candidates (all but :data:`SCORING_ONLY` past the exact size)."""
        large = len(self) > self.settings.exact_limit
        return [name for name, w in self.settings.weights.items() if w > 0 and not (large and name in SCORING_ONLY)]

    def _dense_proposals(self, query: np.ndarray, *, k: int, allowed: np.ndarray | None) -> dict[str, np.ndarray]:
        """The best rows of each proposing dense channel for one ``query`` vector (may hold -1 padding)."""
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        # Runs on a worker thread (search_many): it must not wait for other workers' tasks, or two questions
        # at once could each hold a worker waiting for the other.
        pool = self._pool(k)
        return {name: self.search_vectors(query, k=pool, allowed=allowed, channel=name)[1][0]
                for name in self._proposing() if name in self._dense}

    def rank(
        self,
        question: str,
        query: np.ndarray,
        *,
        k: int,
        allowed: np.ndarray | None = None,
        lexical: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        proposed: dict[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fused ranking of one question: ``(rows, scores)``, best first, at most ``k``, no duplicates.

        Each active channel (weight > 0) proposes its best :data:`POOL` rows (but :data:`SCORING_ONLY` ones
        past the exact size); every candidate is then scored exactly by every active channel, and the scores
        are fused (:func:`qa.ranking.fuse`). ``lexical`` (:meth:`_lexical_scores`) and ``proposed``
        (:meth:`_dense_proposals`) are the question's, if already computed.
        """
        weights = {name: w for name, w in self.settings.weights.items() if w > 0}
        pool = self._pool(k)
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if lexical is None:
            lexical = self._lexical_scores(question, allowed)
        if proposed is None:
            proposed = self._dense_proposals(query, k=k, allowed=allowed)
        proposals = list(proposed.values())
        for name in self._proposing():
            if name in lexical:
                rows, values = lexical[name]
                proposals.append(rows if len(rows) <= pool else rows[np.argpartition(-values, pool - 1)[:pool]])
        candidates = np.unique(np.concatenate(proposals))
        candidates = candidates[candidates >= 0]  # faiss pads with -1 when fewer rows than asked exist
        if len(candidates) == 0:
            return candidates, np.zeros(0, dtype=np.float32)
        channel_scores = {}
        for name in weights:
            if name in self._dense:
                channel_scores[name] = self._dense[name].reconstruct_batch(candidates) @ query[0]
            elif name in lexical:
                channel_scores[name] = _lookup(*lexical[name], candidates)
            else:  # scoring only: a binary search per word and candidate, not the word's whole posting list
                channel_scores[name] = self._lexical[name].scores_at(
                    question, candidates, focus_weight=self.settings.focus_weight)
        fused = fuse(channel_scores, weights)
        return top_unique(candidates, fused, self._dup_keys[candidates], k)

    def search_vectors(
        self, queries: np.ndarray, *, k: int, allowed: np.ndarray | None = None, channel: str = "dense"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS search of one dense channel: ``(scores, rows)`` of shape ``(len(queries), k)``.

        Rows are -1 past the end: faiss pads when k exceeds the number of (allowed) vectors.
        """
        import faiss

        params: Any = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed)
            ivf = _ivf(self._dense[channel])
            if ivf is not None:  # an IVF index needs its own parameter type, or it forgets its nprobe
                params = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)  # type: ignore[call-arg]
            else:
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(queries) > 1:
            return self._dense[channel].search(queries, k, params=params)
        # One query gains nothing from OpenMP's threads (FAISS parallelises over queries) and pays for them:
        # measured 7.0 ms against 4.3 ms on one thread at 1M. The setting is per calling thread; restored after.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._dense[channel].search(queries, k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)

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

    # ------------------------------------------------------------------ updating

    def update(
        self,
        *,
        add: Iterable[str | Path | Document] = (),
        remove: Iterable[str] = (),
        progress: bool | None = None,
        max_bytes: int | None = None,
    ) -> IndexUpdate:
        """Add, replace and remove documents; returns the new index and what changed.

        A document whose id is already indexed replaces it when its content changed and is skipped when it did
        not (same SHA-256: no model time). Sentences whose text the index already holds reuse their vectors.
        Files that cannot be read are reported in ``failures``; the others are still indexed. When this index
        was loaded from (or saved to) a path, the new one is saved there atomically; this object is unchanged,
        so searches already running keep a consistent view.

        Example:
            >>> import qa
            >>> idx = qa.Index.build([qa.Document("a", "A", "Cats purr.")])
            >>> up = idx.update(add=[qa.Document("b", "B", "Dogs bark.")])
            >>> up.added, [d.doc_id for d in up.index.documents]
            (['b'], ['a', 'b'])
        """
        remove = check_doc_ids(remove, "remove") or []
        read = read_sources(check_sources(add), max_bytes=max_bytes, progress=progress,
                            limits=Limits().resolved(self.settings))
        failures = list(read.failures)
        incoming = {d.doc_id: d for d in read.documents}
        removing = set()
        held = self.documents
        known = {info.doc_id for info in held}
        for doc_id in remove:
            if doc_id in known:
                removing.add(doc_id)
            else:
                failures.append(SourceFailure(doc_id, f"no document with id {doc_id!r} in this index"))
        added, replaced, unchanged, removed = [], [], [], []
        docs: list[Document] = []
        for info in held:
            if info.doc_id in removing:
                removed.append(info.doc_id)
            elif info.doc_id in incoming and incoming[info.doc_id].sha256 != info.sha256:
                replaced.append(info.doc_id)
                docs.append(incoming.pop(info.doc_id))
            else:
                if incoming.pop(info.doc_id, None) is not None:
                    unchanged.append(info.doc_id)
                docs.append(self.document(info.doc_id))
        for doc_id, doc in incoming.items():
            added.append(doc_id)
            docs.append(doc)
        if not (added or replaced or removed):
            return IndexUpdate(self, added, replaced, unchanged, removed, failures, 0)
        if not docs:
            raise QAError("removing these documents would leave the index empty; delete the index folder instead")
        index, embedded = Index._from_documents(docs, settings=self.settings, progress=progress, cache=self)
        if self.path is not None:
            index.save(self.path)
        return IndexUpdate(index, added, replaced, unchanged, removed, failures, embedded)

    def document_text(self, doc_id: str) -> str:
        """The full stored text of a document (what offsets refer to)."""
        i = self._doc_number(doc_id)
        if i is None:
            raise QAError(f"unknown document id {doc_id!r}")
        with self._db_lock:
            (text,) = self._db.execute("SELECT text FROM documents WHERE idx = ?", (i,)).fetchone()
        return str(text)

    def _text_slice(self, doc: int, start: int, end: int) -> str:
        # SQLite's substr counts characters (code points) from 1, like Python's str indexing from 0.
        with self._db_lock:
            (text,) = self._db.execute(
                "SELECT substr(text, ?, ?) FROM documents WHERE idx = ?", (start + 1, end - start, doc)
            ).fetchone()
        return str(text)


# ---------------------------------------------------------------------- helpers


def _place_in(places: tuple[list[int], list[int], list[int], list[str]], offset: int) -> tuple[int | None, str | None]:
    """The page number and heading at ``offset``, from a document's :meth:`Index._places`."""
    page_starts, numbers, heading_starts, headings = places
    p = bisect.bisect_right(page_starts, offset) - 1
    h = bisect.bisect_right(heading_starts, offset) - 1
    return (numbers[p] if p >= 0 else None), (headings[h] if h >= 0 else None)


def _checked(table: np.ndarray, width: int, what: str, path: Path | None) -> np.ndarray:
    """``table`` if it has ``width`` columns; else the index is corrupt."""
    if table.ndim != 2 or table.shape[1] != width:
        raise IndexCorruptError(f"index at {path} has {what} rows of shape {table.shape}; "
                                + fix_hint(path))
    return table


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


#: Characters of document text split before its sentences go to the model: a small first chunk, so that the
#: model starts at once, then larger ones (about 2,000 sentences), so that batches stay full.
FIRST_CHUNK_CHARS = 50_000
CHUNK_CHARS = 250_000


def _chunks(docs: Sequence[Document]) -> Iterator[Sequence[Document]]:
    """Consecutive runs of whole documents, about :data:`CHUNK_CHARS` of text each (the first one smaller)."""
    start, size, limit = 0, 0, FIRST_CHUNK_CHARS
    for i, doc in enumerate(docs):
        size += len(doc.text)
        if size >= limit:
            yield docs[start : i + 1]
            start, size, limit = i + 1, 0, CHUNK_CHARS
    if start < len(docs):
        yield docs[start:]


class _Bar:
    """A progress bar whose total grows as work is found (or nothing, when not shown)."""

    def __init__(self, show: bool) -> None:
        self._bar: Any = None
        if show:
            from tqdm import tqdm

            self._bar = tqdm(total=0, desc="Embedding", unit="text")

    def grow(self, n: int) -> None:
        if self._bar is not None:
            self._bar.total += n
            self._bar.refresh()

    def done(self, n: int, _: object = None) -> None:
        """Count ``n`` texts done (also usable as a future's done-callback)."""
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def vector_index(
    vectors: np.ndarray, *, kind: str = "auto", exact_limit: int = 20_000, bits: int = 8
) -> faiss.Index:
    """A FAISS inner-product index over unit ``vectors``, of the kind that suits their number.

    ``flat`` is exact brute force: the best up to ``exact_limit`` vectors (``auto``), where a scan still takes a
    few milliseconds. Beyond that ``ivf`` clusters the vectors (4·√n inverted lists, at most 1,024 up to a
    million vectors; k-means on a sample) and stores each as ``bits``-bit (8, 6 or 4) scalar-quantised codes: a
    query scans only the ``nprobe`` nearest lists, and a vector takes a quarter (8 bits) or an eighth (4 bits)
    of the memory. Reconstructed vectors (used to score candidates) are then approximate. ``codes`` stores the
    same codes without clusters: for a channel that only scores candidates by row (a search would scan every
    code).
    """
    import faiss

    n, dim = vectors.shape
    if kind == "auto":
        kind = "flat" if n <= exact_limit else "ivf"
    if kind == "flat":
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        return flat
    qtypes = {8: faiss.ScalarQuantizer.QT_8bit, 6: faiss.ScalarQuantizer.QT_6bit, 4: faiss.ScalarQuantizer.QT_4bit}
    if kind == "codes":
        codes = faiss.IndexScalarQuantizer(dim, qtypes[bits], faiss.METRIC_INNER_PRODUCT)
        # Training only finds each dimension's range, so a sample does.
        sample = vectors if n <= 100_000 else vectors[np.random.default_rng(0).choice(n, 100_000, replace=False)]
        codes.train(np.ascontiguousarray(sample))
        codes.add(vectors)
        return codes
    # 4·√n lists, but no more than 1,024 up to a million vectors (√n beyond): adding a vector compares it with
    # every centroid and k-means costs (lists)² x points per list, while a query scans the same share of the
    # vectors whatever the number of lists (nprobe = lists / 16). On 1M synthetic vectors 1,000 lists train
    # and add in 12 s for recall@10 0.973, 4,000 in 72 s for 0.980; on 100k real ones 316 lists (1.8 s) and
    # 1,264 (11.9 s) both give 0.976. Only near-uniform data needs the finer lists (tests/test_index.py).
    root = np.sqrt(max(n, 1))
    nlist = int(min(65536, max(16, min(4 * root, max(1024, root)))))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, qtypes[bits], faiss.METRIC_INNER_PRODUCT)
    # k-means needs a few dozen points a list to be stable; more points and iterations only slow the build.
    sample = vectors if n <= 32 * nlist else vectors[np.random.default_rng(0).choice(n, 32 * nlist, replace=False)]
    ivf.cp.niter = 10
    ivf.train(np.ascontiguousarray(sample))
    ivf.add(vectors)
    ivf.make_direct_map()  # lets reconstruct_batch find a vector by row, to score candidates
    ivf.nprobe = default_nprobe(nlist)
    return ivf


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: enough for recall@10 >= 0.95 against exact search (benchmarks/recall.py)."""
    return int(min(nlist, max(16, nlist // 16)))


def _ivf(index: faiss.Index) -> Any:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    """Apply the ``nprobe`` setting (0: the default for the index's size) to an IVF index; others ignore it."""
    ivf = _ivf(index)
    if ivf is not None:
        ivf.nprobe = nprobe if nprobe > 0 else default_nprobe(ivf.nlist)


def describe(index: faiss.Index) -> str:
    """The index in FAISS's factory notation: ``IndexFlatIP``, ``SQ4`` (codes only) or ``IVF4000,SQ8``."""
    import faiss

    ivf = _ivf(index)
    sq = faiss.ScalarQuantizer
    codes = getattr(faiss.downcast_index(index if ivf is None else ivf), "sq", None)
    bits = {sq.QT_8bit: 8, sq.QT_6bit: 6, sq.QT_4bit: 4}.get(codes.qtype, "?") if codes is not None else "?"
    if ivf is None:
        return "IndexFlatIP" if codes is None else f"SQ{bits}"
    return f"IVF{ivf.nlist},SQ{bits}"


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


def _lookup(rows: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values`` at ``wanted`` rows, 0 for rows not in the sorted ``rows`` (a sparse channel's score)."""
    if len(rows) == 0:
        return np.zeros(len(wanted), dtype=np.float32)
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    return np.where(rows[at] == wanted, values[at], np.float32(0)).astype(np.float32)


def _manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as indented JSON, each entry of a list (a document each) on one line.

    ``json`` indents only with its pure-Python encoder, and each entry costs microseconds even with the C one:
    past :data:`_LINE_PER_ENTRY` entries (a million-sentence index lists 200k documents, 1-2 s) the list is
    written compactly in one call.
    """
    encode = json.JSONEncoder(ensure_ascii=False).encode
    parts = []
    for key, value in manifest.items():
        if isinstance(value, list) and value and len(value) <= _LINE_PER_ENTRY:
            text = "[\n    " + ",\n    ".join(map(encode, value)) + "\n  ]"
        elif isinstance(value, list):
            text = encode(value)
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


_LINE_PER_ENTRY = 10_000


def checked_manifest(path: str | Path, settings: Settings, *, check_model: bool = True) -> dict[str, Any]:
    """The manifest of the index saved at ``path``, if these settings can use that index.

    Raises:
        IndexNotFoundError: nothing is saved at ``path``.
        IndexMismatchError: it was built with another model, format version or segmenter.
        IndexCorruptError: the manifest cannot be read.
    """
    target = check_path(path)
    with _locked(target, exclusive=not target.exists()):  # as Index.load: never a half-swapped save
        return _checked_manifest(target, settings, check_model=check_model)


def _checked_manifest(target: Path, settings: Settings, *, check_model: bool) -> dict[str, Any]:
    _recover_interrupted_swap(target)
    manifest = read_manifest(target)
    problem = manifest_mismatch(manifest, settings, check_model=check_model)
    if problem:
        raise IndexMismatchError(f"index at {target} {problem}; {fix_hint(target)}")
    return manifest


def holds_unchanged(manifest: dict[str, Any], documents: Sequence[Document]) -> bool:
    """Whether the index with ``manifest`` holds each of ``documents`` (by id) with the same content: adding
    them would change nothing, which the manifest alone tells (a no-op ``qa index add`` then opens no index:
    0.7 s of its 1.1 s on a 2k index)."""
    held = {d.get("doc_id"): d.get("sha256") for d in manifest.get("documents", []) if isinstance(d, dict)}
    return bool(documents) and all(held.get(d.doc_id) == d.sha256 for d in documents)


def manifest_mismatch(manifest: dict[str, Any], settings: Settings, *, check_model: bool = True) -> str | None:
    """Why an index with ``manifest`` cannot serve ``settings``, or ``None`` if it can."""
    from .embedding import resolve_model, vector_precision

    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        return f"has format version {version}; this qa reads version {FORMAT_VERSION}"
    seg = manifest.get("segmenter")
    if seg != _sentences.SEGMENTER:
        return f"was split into sentences by {seg}; this qa uses {_sentences.SEGMENTER}"
    if manifest.get("lexical") != TOKENIZER:
        return f"was built with BM25 tokenisation {manifest.get('lexical')}; this qa uses {TOKENIZER}"
    if not check_model:
        return None
    model = manifest.get("model")
    if not isinstance(model, dict):
        return "has no valid model entry in its manifest"
    spec = resolve_model(settings.model, verify=settings.verify_model)
    if model.get("name") != spec.name:
        return (
            f"was built with model {model.get('name')} ({model.get('dimension')}-d); settings ask for {spec.name}"
        )
    built_hash, current_hash = model.get("weights_sha256"), spec.weights_sha256
    if built_hash and current_hash and built_hash != current_hash:
        return f"was built with other weights of {spec.name} ({str(built_hash)[:12]}…, now {current_hash[:12]}…)"
    # torch and onnx compute the same float32 vectors, so either may query the other's index; int8 ones differ.
    built, wanted = model.get("precision", "float32"), vector_precision(settings.backend)
    if built != wanted:
        return (
            f"holds {built} vectors (backend {model.get('backend')}); backend={settings.backend} makes {wanted} "
            f"ones. Set QA_BACKEND={model.get('backend')}, or rebuild with the backend you want"
        )
    return None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_files(target: Path, manifest: dict[str, Any]) -> None:
    """Every file of the index is listed in the manifest, present, and matches its size and SHA-256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) and isinstance(e.get("bytes"), int)
        for e in files.values()
    ):
        raise IndexCorruptError(f"{target / MANIFEST} has no valid list of file checksums; {fix_hint(target)}")
    outside = [n for n in files if PurePosixPath(n).is_absolute() or ".." in PurePosixPath(n).parts]
    if outside:  # an edited manifest must not make a load read (hash) files outside the index
        raise IndexCorruptError(f"{target / MANIFEST} lists files outside the index ({outside[0]!r}); "
                                + fix_hint(target))
    present = {
        p.relative_to(target).as_posix()
        for p in target.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }
    unlisted = sorted((present | {VECTORS, CONTEXT_VECTORS, META, ROWS, DOCS, KEYS}) - set(files))
    if unlisted:
        raise IndexCorruptError(
            f"index at {target} has files its manifest does not vouch for ({', '.join(unlisted)}); "
            + fix_hint(target)
        )
    for name, expected in files.items():
        file = target / name
        if not file.is_file():
            raise IndexCorruptError(f"index at {target} is missing {name}; {fix_hint(target)}")
        if file.stat().st_size != expected["bytes"]:
            raise IndexCorruptError(f"index file {file} does not match its checksum (its size differs: truncated "
                                    f"or altered); {fix_hint(target)}")
    # hashlib releases the GIL on large reads: the files are checked side by side (a 1M index holds ~1.3 GB).
    names = sorted(files, key=lambda n: -files[n]["bytes"])
    digests = dict(zip(names, _workers().map(lambda n: _sha256_file(target / n), names), strict=True))
    for name in names:
        if digests[name] != files[name]["sha256"]:
            raise IndexCorruptError(
                f"index file {target / name} does not match its checksum (truncated or altered); "
                + fix_hint(target)
            )
