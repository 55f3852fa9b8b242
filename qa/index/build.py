"""Making an index: documents split a chunk at a time, new sentences embedded while the next chunk is split
(vectors of texts an older index holds reused), context vectors derived, then the vector indexes, tables and
manifest assembled.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import sentences as _sentences
from ..checks import check_doc_ids, check_sources
from ..config import Settings
from ..documents import Document, SourceFailure, content_hash, load_sources, read_sources
from ..errors import ArgumentError, QAError
from ..lexical import TOKENIZER, Lexical, channels
from ..limits import Limits
from .manifest import FORMAT_VERSION, _now
from .results import IndexUpdate
from .storage import BM25, BM25_CONTEXT, CONTEXT_VECTORS, VECTORS
from .stores.faiss import FaissStore
from .tables import TITLE_WEIGHT, WINDOW, _context_vectors, _find, _sentence_texts, _tables, sentence_keys

if TYPE_CHECKING:
    from ..embedding import Encoder, OnnxEncoder
    from .index import Index

log = logging.getLogger("qa.index")

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


def from_documents(
    cls: type[Index],
    docs: Sequence[Document],
    *,
    settings: Settings,
    progress: bool | None,
    spans_per_doc: Sequence[Sequence[tuple[int, int]]] | None = None,
    cache: Index | None = None,
) -> tuple[Index, int]:
    """Split, embed (reusing ``cache``'s vectors for identical texts) and assemble; returns (index, embedded)."""
    from ..embedding import get_encoder

    encoder = get_encoder(settings)
    # Their own threads, not the query workers': an index being built must not hold up questions. One
    # runs the model on each chunk of new sentences in turn, the other builds the BM25 channels.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-model") as model, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-bm25") as helper:
        return _embed_and_assemble(cls, docs, settings, progress, spans_per_doc, cache, encoder, model, helper)


def _embed_and_assemble(
    cls: type[Index],
    docs: Sequence[Document],
    settings: Settings,
    progress: bool | None,
    spans_per_doc: Sequence[Sequence[tuple[int, int]]] | None,
    cache: Index | None,
    encoder: Encoder | OnnxEncoder,
    model: ThreadPoolExecutor,
    helper: ThreadPoolExecutor,
) -> tuple[Index, int]:
    from ..embedding import show_progress

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
    index = assemble(cls, docs, all_spans, sentences, vectors, encoder, settings, keys, lexical)
    return index, embedded + len(title_vectors)


def assemble(
    cls: type[Index],
    docs: Sequence[Document],
    spans_per_doc: Sequence[Sequence[tuple[int, int]]],
    sentences: Sequence[str],
    vectors: np.ndarray,
    encoder: Encoder | OnnxEncoder,
    settings: Settings,
    keys: np.ndarray,
    lexical: Future[tuple[Lexical, Lexical]],
    *,
    stores: tuple[Any, Any] | None = None,
    tables: tuple[Any, np.ndarray, np.ndarray, list[str]] | None = None,
) -> Index:
    """The index over given sentence and context ``vectors`` (2n rows), ``keys`` (n x 2) and the BM25
    channels being built (waited for last, so that building them overlaps with the rest).

    ``stores``: the two dense stores, already holding the vectors (``vectors`` is then unused: a Ray build that
    wrote them to Milvus, :mod:`qa.index.milvus_write`); ``tables``: :func:`~qa.index.tables._tables` of the
    documents, already made."""
    n = len(sentences)
    # The context channel weighs a quarter of the sentence channel: 4-bit codes halve its memory at large
    # sizes for a score error of about 0.006 (x0.25 in the fused score). Past the exact size it only scores
    # candidates (SCORING_ONLY) and is never searched, so it needs no clusters: plain codes, no k-means.
    context_kind = "codes" if settings.index_type != "flat" and n > settings.exact_limit else settings.index_type

    def vector_indexes() -> tuple[FaissStore, FaissStore]:
        # While the BM25 thread still runs, two Python threads (BM25, tables) want a core: FAISS's OpenMP
        # threads would only wait for one (at 1M, 33 s against 39 s with two threads).
        one = not lexical.done()
        limit, nprobe = settings.exact_limit, settings.nprobe
        return (FaissStore.build(vectors[:n], name=VECTORS, kind=settings.index_type, exact_limit=limit,
                                 nprobe=nprobe, one_thread=one),
                FaissStore.build(vectors[n:], name=CONTEXT_VECTORS, kind=context_kind, exact_limit=limit, bits=4,
                                 nprobe=nprobe, one_thread=one))

    # FAISS releases the GIL: its k-means and codes are made while this thread fills the tables.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-faiss") as faiss_thread:
        made = faiss_thread.submit(vector_indexes) if stores is None else None
        db, rows, doc_rows, shas = tables or _tables(docs, spans_per_doc, sentences)
        dense, dense_context = made.result() if made is not None else stores  # type: ignore[misc]
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
            "dense": {"file": VECTORS, "text": "sentence", "faiss": dense.describe()},
            "dense_context": {"file": CONTEXT_VECTORS, "text": context_vector, "faiss": dense_context.describe()},
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


def update(
    index: Index,
    *,
    add: Iterable[str | Path | Document],
    remove: Iterable[str],
    progress: bool | None,
    max_bytes: int | None,
) -> IndexUpdate:
    """:meth:`Index.update`: the documents kept (read back from ``index``), replaced, added and removed, made
    into a new index that reuses ``index``'s vectors for texts it holds, and saved where ``index`` is."""
    remove = check_doc_ids(remove, "remove") or []
    read = read_sources(check_sources(add), max_bytes=max_bytes, progress=progress,
                        limits=Limits().resolved(index.settings))
    failures = list(read.failures)
    incoming = {d.doc_id: d for d in read.documents}
    removing = set()
    held = index.documents
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
            docs.append(index.document(info.doc_id))
    for doc_id, doc in incoming.items():
        added.append(doc_id)
        docs.append(doc)
    if not (added or replaced or removed):
        return IndexUpdate(index, added, replaced, unchanged, removed, failures, 0)
    if not docs:
        raise QAError("removing these documents would leave the index empty; delete the index folder instead")
    new, embedded = from_documents(type(index), docs, settings=index.settings, progress=progress, cache=index)
    where = index.location if index.location is not None else index.path
    if where is not None:
        new.save(where)
    return IndexUpdate(new, added, replaced, unchanged, removed, failures, embedded)


def from_vectors(
    cls: type[Index],
    documents: Iterable[Document],
    vectors: np.ndarray,
    *,
    spans: Mapping[str, Sequence[tuple[int, int]]] | None,
    title_vectors: np.ndarray | None,
    context_vectors: np.ndarray | None,
    settings: Settings,
) -> Index:
    """:meth:`Index.from_vectors`: split as a build does (or by ``spans``), take the given vectors, assemble."""
    from ..embedding import get_encoder

    docs = load_sources(check_sources(documents), max_bytes=int(settings.max_file_mb * 1024 * 1024),
                        limits=Limits().resolved(settings))  # as Index.build reads them
    spans_per_doc = [_sentences.split(d.text) for d in docs] if spans is None else \
        [[(int(a), int(b)) for a, b in spans[d.doc_id]] for d in docs]
    sentences = _sentence_texts(docs, spans_per_doc)
    n = len(sentences)
    encoder = get_encoder(settings)
    dim = encoder.dimension
    vectors = _given(vectors, (n, dim), "vectors", f"one per sentence of the documents ({n}), {dim}-d as "
                     f"{encoder.spec.name} makes them")
    doc_of = np.repeat(np.arange(len(docs)), [len(sp) for sp in spans_per_doc])
    titles = [d.title for d in docs]
    keys = sentence_keys(sentences, doc_of, titles)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-bm25") as helper:
        lexical = helper.submit(channels, sentences, doc_of, titles, WINDOW)
        if context_vectors is not None:
            context = _given(context_vectors, (n, dim), "context_vectors", f"one per sentence ({n}), {dim}-d")
        else:
            if title_vectors is None:  # one model call per distinct title, as a build makes
                where = {t: i for i, t in enumerate(dict.fromkeys(titles))}
                made = encoder.encode_documents(list(where), progress=False)
                title_vectors = made[np.array([where[t] for t in titles], dtype=np.int64)]
            title_vectors = _given(title_vectors, (len(docs), dim), "title_vectors",
                                   f"one per document ({len(docs)}), {dim}-d")
            context = _context_vectors(vectors, doc_of, np.arange(n), title_vectors[doc_of])
        both = np.concatenate([vectors, context])
        del context
        index = assemble(cls, docs, spans_per_doc, sentences, both, encoder, settings, keys, lexical)
    if spans is not None:
        index.manifest["segmenter"] = {"name": "given"}
    return index


def _given(values: object, shape: tuple[int, int], what: str, expected: str) -> np.ndarray:
    """``values`` as a float32 array of ``shape``, or a :class:`QAError` saying what was expected."""
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} must be a numeric array ({expected}), not {type(values).__name__}") from None
    if array.shape != shape:
        raise QAError(f"{what} has shape {array.shape}; give {shape[0]} x {shape[1]}: {expected}")
    return array
