"""A Ray build into a Milvus server: the workers write the vectors straight into the dense collections.

What runs where (``qa index build --ray ADDRESS --out milvus:http://HOST:PORT#NAME``):

1. the driver plans the model calls as any Ray build does (:func:`qa.index.ray_build.plan`), makes the sentence
   tables (offsets, keys), and prepares generation ``g + 1`` at the location (:func:`qa.index.milvus.prepare`:
   collections made or checked, what a killed build left deleted);
2. each encoder actor embeds its call and inserts the ``<c>_dense`` rows of every sentence whose text the call
   embedded (generation ``g + 1``, their row numbers and keys), sending back only the vectors of titles;
3. Ray tasks, one per range of whole documents, read those rows back from Milvus (bit for bit), derive the
   context vectors exactly as a local build does (:func:`qa.index.tables._context_vectors`) and insert the
   ``<c>_dense_context`` rows;
4. the driver builds the lexical channels and writes the blobs, then publishes ``current = g + 1``
   (:func:`qa.index.milvus.save` with ``written``): as with any save, a killed build published nothing, and
   the next one deletes what it left.

So the driver never holds the sentence vectors (only a title vector per document). The vectors are those of a
local build: the model calls are the local build's (:mod:`qa.index.ray_build`), and Milvus returns a float32
vector as it was inserted.

A Milvus Lite file (``milvus:./corpus.db#NAME``) can be opened by one process only, so workers cannot write to
it: :func:`writes_directly` is false there and the build gathers the vectors in the driver, which saves them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..documents import Document
from ..errors import IndexWriteError
from ..lexical import channels
from .location import MilvusLocation
from .storage import CONTEXT_VECTORS, VECTORS
from .tables import WINDOW, _context_vectors, _sentence_texts, _tables, sentence_keys

if TYPE_CHECKING:
    from .index import Index

__all__ = ["build", "writes_directly"]

log = logging.getLogger("qa.index")

#: Sentences per context task (and per insert of their rows: 2,000 x 384 floats is about 3 MiB).
CONTEXT_ROWS = 2_000


def writes_directly(loc: MilvusLocation) -> bool:
    """Whether Ray workers write a build's vectors into ``loc`` themselves (a server: yes; a Lite file: no).

    Example:
        >>> from qa.index.location import parse_location
        >>> writes_directly(parse_location("milvus:http://10.0.0.7:19530#a")), writes_directly(
        ...     parse_location("milvus:/tmp/corpus.db#a"))
        (True, False)
    """
    return not loc.lite


def _insert(c: Any, name: str, rows: list[dict[str, Any]], timeout: int) -> None:
    for lo in range(0, len(rows), CONTEXT_ROWS):
        c.insert(name, rows[lo : lo + CONTEXT_ROWS], timeout=timeout)


class _EmbedAndWrite:
    """An encoder actor (:class:`qa.index.ray_build._Embed`) that inserts the dense rows of the texts it embeds and
    returns only the title vectors."""

    def __init__(self, settings: Settings, loc: MilvusLocation, gen: int, by_text: np.ndarray,
                 table: np.ndarray, titles: np.ndarray) -> None:
        from .ray_build import _Embed

        self._embed = _Embed(settings)
        self._loc, self._gen = loc, gen
        # Sentences ordered by the text row holding their text: a call's texts are one slice of it.
        self._order = np.argsort(by_text, kind="stable")
        self._by_text = by_text[self._order]
        self._table = table  # per sentence: start, end, dup, key_text, key_window
        self._titles = titles  # text rows that are titles, sorted

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from . import milvus
        from .stores.milvus import key

        out = self._embed(batch)
        rows, vectors = out["row"], out["vector"]
        if len(rows):
            held = np.argsort(rows, kind="stable")
            ordered = rows[held]
            lo, hi = np.searchsorted(self._by_text, [ordered[0], ordered[-1] + 1])
            at = np.minimum(np.searchsorted(ordered, self._by_text[lo:hi]), len(ordered) - 1)
            mine = ordered[at] == self._by_text[lo:hi]  # the sentences whose text this batch embedded
            sentences = self._order[lo:hi][mine]
            texts = held[at[mine]]  # where each one's vector is in the batch
            spans = self._table[sentences].tolist()
            data = [{"id": i, "gen": self._gen, "row": r, "start": t[0], "end": t[1], "dup": t[2],
                     "key_text": t[3], "key_window": t[4], "vec": vectors[j]}
                    for i, r, t, j in zip(key(self._gen, sentences).tolist(), sentences.tolist(), spans,
                                          texts.tolist(), strict=True)]
            _insert(milvus.client(self._loc), milvus._names(self._loc)["dense"], data, milvus.WRITE_TIMEOUT)
        keep = np.isin(rows, self._titles)
        return {"row": rows[keep], "vector": vectors[keep]}


def _write_context(loc: MilvusLocation, gen: int, lo: int, doc_of: np.ndarray, titles: np.ndarray) -> int:
    """Read the dense rows ``lo .. lo + len(doc_of)`` (whole documents) of generation ``gen`` back, and insert their
    context rows; ``titles``: the title vector of each of those sentences. Returns the rows written."""
    from . import milvus
    from .stores.milvus import MilvusStore, key

    c = milvus.client(loc)
    names = milvus._names(loc)
    rows = np.arange(lo, lo + len(doc_of), dtype=np.int64)
    dense = MilvusStore(c, names["dense"], gen=gen, dimension=titles.shape[1], count=lo + len(rows),
                        name="dense", timeout=milvus.READ_TIMEOUT)
    vectors = dense.vectors(rows)
    context = _context_vectors(vectors, doc_of, np.arange(len(rows)), titles)
    _insert(c, names["dense_context"], [{"id": i, "gen": gen, "row": r, "vec": v} for i, r, v in zip(
        key(gen, rows).tolist(), rows.tolist(), context, strict=True)], milvus.WRITE_TIMEOUT)
    return len(rows)


def _ranges(doc_rows: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Consecutive sentence ranges of whole documents, each about ``size`` sentences or one document.

    Example:
        >>> _ranges(np.array([[0, 3], [3, 0], [3, 4], [7, 1]]), 4)
        [(0, 7), (7, 8)]
    """
    out: list[tuple[int, int]] = []
    start = 0
    for first, count in doc_rows.tolist():
        end = first + count
        if end - start >= size:
            out.append((start, end))
            start = end
    total = int(doc_rows[:, 1].sum()) if len(doc_rows) else 0
    if total > start:
        out.append((start, total))
    return out


def build(
    cls: type[Index],
    docs: Sequence[Document],
    loc: MilvusLocation,
    *,
    settings: Settings,
    spans_per_doc: Sequence[Sequence[tuple[int, int]]] | None,
    actors: int | None = None,
) -> Index:
    """:func:`qa.index.ray_build.from_documents` into the Milvus server at ``loc``, its vectors written by the
    workers, then published; on a connected Ray cluster (``ray_build.ray_session``). Returns the index, which
    reads its vectors from ``loc``.

    Raises:
        RayConnectError: a worker failed (nothing is published; the next build deletes what it wrote).
        IndexWriteError: Milvus refused a write, or the rows written are not all there.
    """
    from .. import sentences as _sentences
    from ..embedding import get_encoder
    from . import milvus
    from .build import assemble
    from .ray_build import RayConnectError, _ray, encoded_dataset, plan
    from .stores.milvus import MilvusStore

    ray = _ray()
    encoder = get_encoder(settings)
    dim = encoder.dimension
    spans = [_sentences.split(d.text) for d in docs] if spans_per_doc is None else list(spans_per_doc)
    the_plan = plan(docs, spans)
    sentences = _sentence_texts(docs, spans)
    n = len(sentences)
    doc_of = np.repeat(np.arange(len(docs)), [len(sp) for sp in spans])
    titles = [d.title for d in docs]
    keys = sentence_keys(sentences, doc_of, titles)
    tables = _tables(docs, spans, sentences)
    old, vector = milvus.prepare(loc, n=n, dim=dim, settings=settings, model=encoder.spec.name)
    gen = old + 1
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-bm25") as helper:
        lexical = helper.submit(channels, sentences, doc_of, titles, WINDOW)
        title_rows = np.unique(the_plan.title_rows[the_plan.title_rows >= 0])
        args = (settings, loc, gen, the_plan.sentence_rows, np.column_stack([tables[1], keys]), title_rows)
        dataset = encoded_dataset(the_plan.texts, the_plan.calls, settings=settings, actors=actors,
                                  actor=_EmbedAndWrite, actor_args=args)
        title_vectors: dict[int, np.ndarray] = {}
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for row, vec in zip(np.asarray(batch["row"]).tolist(), np.asarray(batch["vector"]), strict=True):
                    title_vectors[int(row)] = np.asarray(vec, dtype=np.float32)
            c = milvus.client(loc)
            names = milvus._names(loc)
            c.flush(names["dense"], timeout=milvus.WRITE_TIMEOUT)
            title_of_doc = np.zeros((len(docs), dim), dtype=np.float32)  # a document without sentences: none
            for d, r in enumerate(the_plan.title_rows.tolist()):
                if r >= 0:
                    title_of_doc[d] = title_vectors[r]
            task = ray.remote(num_cpus=1)(_write_context)
            waiting = [task.remote(loc, gen, a, doc_of[a:b] - doc_of[a], title_of_doc[doc_of[a:b]])
                       for a, b in _ranges(tables[2], CONTEXT_ROWS)]
            written = sum(ray.get(waiting))
        except ray.exceptions.RayError as exc:
            raise RayConnectError(f"the Ray build failed on a worker: {exc}; nothing was published at {loc}, and "
                                  "the next build deletes what it wrote") from exc
        c.flush(names["dense_context"], timeout=milvus.WRITE_TIMEOUT)
        counts = [c.query(names[part], filter=f"gen == {gen}", output_fields=["count(*)"],
                          timeout=milvus.READ_TIMEOUT, consistency_level="Strong")[0]["count(*)"]
                  for part in ("dense", "dense_context")]
        if counts != [n, n] or written != n:
            raise IndexWriteError(f"the Ray workers wrote {counts[0]} sentence rows and {counts[1]} context rows of "
                                  f"{n} to {loc}; nothing was published. Run the build again")
        log.info("Ray workers wrote %d sentence and context rows to %s in %.1f s", n, loc,
                 time.perf_counter() - started)
        dense, context = (MilvusStore(c, names[part], gen=gen, dimension=dim, count=n, name=file,
                                      timeout=milvus.READ_TIMEOUT, index=vector[part])
                          for part, file in (("dense", VECTORS), ("dense_context", CONTEXT_VECTORS)))
        index = assemble(cls, docs, spans, sentences, np.zeros((0, dim), dtype=np.float32), encoder, settings,
                         keys, lexical, stores=(dense, context), tables=tables)
    if spans_per_doc is not None:
        index.manifest["segmenter"] = {"name": "given"}
    index.manifest = milvus.save(index, loc, written=gen)
    index.location, index.path = loc, None
    return index
