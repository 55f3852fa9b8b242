"""Building an index with the embedding spread over Ray workers (``qa index build --ray ADDRESS``).

What runs where: the driver (the process that calls :meth:`qa.Index.build`) reads the documents, splits them
into sentences and plans the model calls exactly as a local build makes them (:func:`plan`); the Ray workers
run the model, one encoder per actor, loaded once with qa's own :func:`qa.embedding.get_encoder` (so the
backend, int8 weights and the ONNX export behave as in a local build), a whole planned call at a time
(:func:`embed_batches`); the driver then derives the context vectors, builds the BM25 channels and the FAISS
indexes and saves the index as any build does (:meth:`qa.Index.from_vectors`, :meth:`qa.Index.save`).

The vectors are those of a local build: every model call a worker makes is one a local build makes (the same
texts, in the same order, so the same batches), and with the default ``onnx-int8`` backend every text runs
alone anyway. Embedding is kept apart from where the vectors go: :func:`encoded_dataset` is the lazy Ray
Dataset of ``(row, vector)`` rows, to which a store written by the workers can add a stage, and
:func:`embed_batches` reads it here, yielding ``(first_row, vectors)`` for consecutive rows of the planned
texts, in order, for the caller to store.

``ray`` is imported only here and only when a Ray build is asked for: ``pip install 'qa[ray]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from .. import sentences as _sentences
from ..config import Settings
from ..documents import Document
from ..errors import ArgumentError, QAError
from ..ranking import text_keys
from .build import _Bar, _chunks
from .tables import _sentence_texts

if TYPE_CHECKING:
    from .index import Index
    from .location import MilvusLocation

__all__ = [
    "RayConnectError", "RayUnavailableError", "TextPlan", "embed_batches", "encoded_dataset", "from_documents", "plan",
    "ray_session",
]

log = logging.getLogger("qa.index")

#: The Ray release this module is written and tested against (see the ``ray`` extra in pyproject.toml).
RAY_VERSION = "2.60.0"
#: Seconds given to a TCP connection to a cluster's address before it counts as unreachable.
CONNECT_TIMEOUT_S = 5.0
#: Environment a local instance starts with: no token file written to ~/.ray, and every listener (driver, GCS,
#: raylets) on 127.0.0.1, not on the machine's network address (checked with Ray 2.60.0:
#: docs/notes/milvus-ray.md section 8; ``_node_ip_address="127.0.0.1"`` alone is ignored).
LOCAL_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class RayUnavailableError(QAError, ImportError):
    """A Ray build was asked for, but Ray is not installed."""


class RayConnectError(QAError, ConnectionError):
    """The Ray cluster at the given address cannot be reached, or Ray failed to start or to run the build."""


@dataclass(frozen=True)
class TextPlan:
    """What goes to the model in a build, and where each vector goes back.

    Attributes:
        texts: the texts to embed: each distinct sentence once, then each chunk's new titles, chunk by chunk.
        calls: ``(start, end)`` ranges of ``texts``: the model calls of a local build, one each.
        sentence_rows: for each sentence of the documents (in order), the row of ``texts`` holding its text.
        title_rows: for each document, the row of ``texts`` holding its title (-1 for a document without
            sentences, whose title a build never embeds).
    """

    texts: list[str]
    calls: list[tuple[int, int]]
    sentence_rows: np.ndarray
    title_rows: np.ndarray


def plan(docs: Sequence[Document], spans_per_doc: Sequence[Sequence[tuple[int, int]]] | None = None) -> TextPlan:
    """The model calls a local build of ``docs`` makes (:func:`qa.index.build.from_documents` without a cache).

    The same chunks of documents, the same texts sent (a text repeated in the build goes once, where it first
    appears), the same titles after each chunk's sentences: so a worker running a call gets the vectors a
    local build gets, whatever the backend.

    Example:
        >>> import qa
        >>> p = plan([qa.Document("a", "Pets", "Cats purr. Dogs bark. Cats purr.")])
        >>> p.texts, p.calls, p.sentence_rows.tolist(), p.title_rows.tolist()
        (['Cats purr.', 'Dogs bark.', 'Pets'], [(0, 3)], [0, 1, 0], [2])
    """
    texts: list[str] = []
    calls: list[tuple[int, int]] = []
    sentence_rows: list[int] = []
    title_rows = np.full(len(docs), -1, dtype=np.int64)
    first_row: dict[int, int] = {}  # text key -> row of texts
    title_row: dict[str, int] = {}
    done = 0  # documents planned so far
    for chunk in _chunks(docs):
        spans = [_sentences.split(d.text) for d in chunk] if spans_per_doc is None else \
            list(spans_per_doc[done : done + len(chunk)])
        start = len(texts)
        s_chunk = _sentence_texts(chunk, spans)
        for text, key in zip(s_chunk, text_keys(s_chunk).tolist(), strict=True):
            row = first_row.setdefault(key, len(texts))
            if row == len(texts):
                texts.append(text)
            sentence_rows.append(row)
        for j, (doc, doc_spans) in enumerate(zip(chunk, spans, strict=True)):
            if doc_spans:  # a build embeds the titles of documents with sentences, each distinct title once
                title_rows[done + j] = title_row.setdefault(doc.title, len(texts))
                if title_rows[done + j] == len(texts):
                    texts.append(doc.title)
        if len(texts) > start:
            calls.append((start, len(texts)))
        done += len(chunk)
    return TextPlan(texts, calls, np.asarray(sentence_rows, dtype=np.int64), title_rows)


def _ray() -> Any:
    """The ``ray`` module, or a clear error naming the extra that installs it."""
    try:
        import ray
        import ray.data  # ray without the [data] extra has no Ray Data
    except ImportError as exc:
        raise RayUnavailableError(
            f"building with Ray needs Ray Data, which is not installed ({exc}); install it with: "
            f"pip install 'qa[ray]'  (ray[data]=={RAY_VERSION})"
        ) from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """The host and port ``address`` names (``host:port`` or ``ray://host:port``), if it names one."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or port is None:
        return None
    return parts.hostname, port


def _check_reachable(address: str) -> None:
    """Fail in seconds on an address nothing listens on (``ray.init`` itself waits for a minute or more)."""
    if address == "auto":  # the cluster started on this machine by `ray start`; Ray finds its address itself
        return
    where = _host_port(address)
    if where is None:
        raise RayConnectError(
            f"ray address {address!r} is not host:port or ray://host:port; give the address of a running Ray "
            "cluster's head node (e.g. 10.0.0.5:6379 from `ray start --head`), 'auto', or 'local' to start Ray here"
        )
    try:
        with socket.create_connection(where, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RayConnectError(
            f"cannot reach the Ray cluster at {address!r} ({exc}); start it (`ray start --head` on the head "
            "node), check the address and port, or use --ray local to start Ray on this machine"
        ) from None


@contextlib.contextmanager
def ray_session(address: str, *, num_cpus: int | None = None) -> Iterator[None]:
    """Ray connected for the duration of the block: ``"local"`` starts an instance on this machine (loopback
    only, its files in a new temporary folder, shut down and removed after), anything else is the address of
    a running cluster (disconnected after). If Ray is already initialised in this process, that instance is
    used as it is and left running.

    Args:
        address: ``"local"``, ``"auto"``, ``host:port`` of a cluster's head (``ray start --head``) or
            ``ray://host:port`` (Ray Client).
        num_cpus: CPUs a local instance may use (default: the cores this process may run on).

    Raises:
        RayUnavailableError: Ray is not installed.
        RayConnectError: the address cannot be reached, or Ray failed to start.

    Example:
        >>> import ray  # doctest: +SKIP
        >>> with ray_session("local"):  # doctest: +SKIP
        ...     print(ray.cluster_resources()["CPU"])
        2.0
    """
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    from ray._private import ray_constants as constants

    cluster_flag = constants.ENABLE_RAY_CLUSTER
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    temp_dir = None
    saved = {name: os.environ.get(name) for name in LOCAL_ENV}
    if address == "local":
        # A short path: Ray's Unix sockets live under it, and a socket path may not exceed 107 bytes.
        temp_dir = tempfile.mkdtemp(prefix="qa-ray-")
        os.environ.update(LOCAL_ENV)  # read by ray.init and inherited by the processes it starts
        # Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when it is imported (it was imported above): without
        # this, the node address is the machine's network address and GCS and raylets listen on every interface.
        constants.ENABLE_RAY_CLUSTER = False
        kwargs |= {"num_cpus": num_cpus or len(os.sched_getaffinity(0)), "_temp_dir": temp_dir}
    else:
        _check_reachable(address)
        kwargs["address"] = address
    started = time.perf_counter()
    try:
        try:
            ray.init(**kwargs)
        except Exception as exc:
            where = "start Ray on this machine" if temp_dir else f"connect to the Ray cluster at {address!r}"
            raise RayConnectError(f"could not {where}: {type(exc).__name__}: {exc}; check that the cluster "
                                  f"runs ray {RAY_VERSION} with qa installed, or build without --ray") from exc
        log.info("ray %s up in %.1f s", address, time.perf_counter() - started)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        if temp_dir is not None:
            constants.ENABLE_RAY_CLUSTER = cluster_flag
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            shutil.rmtree(temp_dir, ignore_errors=True)


class _Embed:
    """A Ray Data callable class: one encoder per actor, loaded once; each input row is one planned model call."""

    def __init__(self, settings: Settings) -> None:
        from ..embedding import get_encoder

        self._encoder = get_encoder(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..embedding import _SMALL_BATCH

        rows, vectors = [], []
        for start, texts in zip(batch["start"].tolist(), batch["texts"], strict=True):
            call = [str(t) for t in texts]
            if self._encoder.precision == "int8":
                # Each text runs alone with int8 weights, so the call may be cut up without changing a vector:
                # calls of a few texts run on one thread (the actor holds one CPU), not one per core.
                out = np.concatenate([self._encoder.encode_documents(call[i : i + _SMALL_BATCH], progress=False)
                                      for i in range(0, len(call), _SMALL_BATCH)])
            else:  # float batches are longest-first runs of the whole call: the very call of a local build
                out = self._encoder.encode_documents(call, progress=False)
            rows.append(np.arange(start, start + len(call), dtype=np.int64))
            vectors.append(out)
        return {"row": np.concatenate(rows), "vector": np.concatenate(vectors)}


def encoded_dataset(
    texts: Sequence[str],
    calls: Sequence[tuple[int, int]],
    *,
    settings: Settings,
    actors: int | None = None,
    actor: type | None = None,
    actor_args: tuple[Any, ...] | None = None,
) -> Any:
    """The lazy Ray Dataset of ``texts`` embedded one model call per range of ``calls`` on an actor pool.

    ``actor`` and ``actor_args``: another callable class to run on the pool and its constructor's arguments
    (one that embeds and also writes, :mod:`qa.index.milvus_write`); by default the encoder alone.

    Its rows are ``{"row": int64, "vector": float32[dimension]}`` (``row`` indexes ``texts``), in order of
    ``calls``. Nothing runs until it is read (:func:`embed_batches` reads it on the driver); a store that
    workers write to directly can add its own stage (``.map_batches(Writer, ...)``) before it is read.

    Args:
        texts: the texts, e.g. :attr:`TextPlan.texts`.
        calls: ``(start, end)`` ranges of ``texts``, each run by one ``encode_documents`` call.
        settings: the model, backend and batch size the workers load (the web login is not sent).
        actors: encoders run at once, one per actor and CPU (default: the cluster's CPUs, at most one per call).
    """
    ray = _ray()
    if not log.isEnabledFor(logging.INFO):  # Ray Data logs each run's plan on stderr itself; with -v it may
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # else a progress block is logged every 10 s
    ctx.execution_options.preserve_order = True  # before the Dataset is made, or it has no effect
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = max(1, min(size, len(calls)))
    items = [{"start": a, "texts": list(texts[a:b])} for a, b in calls]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))  # a block per call: all actors work
    return dataset.map_batches(
        actor or _Embed,
        fn_constructor_args=actor_args or (replace(settings, auth=None),),
        batch_size=1,
        batch_format="numpy",
        num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=size),
    )


def embed_batches(
    texts: Sequence[str],
    calls: Sequence[tuple[int, int]],
    *,
    settings: Settings,
    actors: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Embed ``texts`` on the connected Ray cluster (:func:`encoded_dataset`) and bring the vectors back here.

    Yields ``(first_row, vectors)``: the vectors of ``texts[first_row : first_row + len(vectors)]``, in order
    of rows, covering every call once. What to do with them (fill an array, write them to a store) is the
    caller's. Arguments as in :func:`encoded_dataset`.

    Raises:
        RayConnectError: a worker failed (the message carries its error).

    Example:
        >>> import qa
        >>> p = plan([qa.Document("a", "Pets", "Cats purr. Dogs bark.")])
        >>> with ray_session("local"):  # doctest: +SKIP
        ...     for first, vectors in embed_batches(p.texts, p.calls, settings=qa.get_settings()):
        ...         print(first, vectors.shape)
        0 (3, 384)
    """
    ray = _ray()
    if not calls:
        return
    encoded = encoded_dataset(texts, calls, settings=settings, actors=actors)
    pending: dict[int, np.ndarray] = {}  # batches that came early (order is kept, but not trusted blindly)
    expected = calls[0][0]
    try:
        for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
            rows = np.asarray(batch["row"], dtype=np.int64)
            if len(rows) == 0:
                continue
            if not np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
                order = np.argsort(rows, kind="stable")
                rows, vectors = rows[order], np.asarray(batch["vector"])[order]
                for row, vector in zip(rows.tolist(), vectors, strict=True):
                    pending[row] = vector[None]
            else:
                pending[int(rows[0])] = np.asarray(batch["vector"], dtype=np.float32)
            while expected in pending:
                vectors = pending.pop(expected)
                yield expected, vectors
                expected += len(vectors)
    except ray.exceptions.RayError as exc:
        raise RayConnectError(f"the Ray build failed on a worker: {exc}") from exc
    if expected != calls[-1][1] or pending:
        raise RayConnectError(f"the Ray build returned {expected} of {calls[-1][1]} vectors; run it again")


def from_documents(
    cls: type[Index],
    docs: Sequence[Document],
    *,
    settings: Settings,
    progress: bool | None,
    spans_per_doc: Sequence[Sequence[tuple[int, int]]] | None,
    address: str,
    actors: int | None = None,
    location: MilvusLocation | None = None,
) -> tuple[Index, int]:
    """:func:`qa.index.build.from_documents` (without a cache) with the model run on Ray; returns
    (index, texts embedded).

    ``location``: the Milvus location the index goes to. On a server the workers write the vectors there
    themselves and the index comes back saved (its ``location`` set, :mod:`qa.index.milvus_write`); a Milvus
    Lite file opens in one process only, so there the vectors come back to this process, which saves them."""
    from ..embedding import get_encoder, show_progress

    if not isinstance(address, str) or not address.strip():
        raise ArgumentError(f"ray must be 'local' or a Ray cluster's address (a string), not {address!r}")
    address = address.strip()
    _ray()  # before any work: a missing Ray, or a cluster nothing answers at, fails first
    if address != "local":
        _check_reachable(address)
    encoder = get_encoder(settings)  # a missing model or export fails before Ray starts
    if location is not None:
        from . import milvus_write

        if milvus_write.writes_directly(location):
            started = time.perf_counter()
            with ray_session(address):
                index = milvus_write.build(cls, docs, location, settings=replace(settings, auth=None),
                                           spans_per_doc=spans_per_doc, actors=actors)
            log.info("built %d sentences on Ray (%s) into %s in %.1f s", len(index), address, location,
                     time.perf_counter() - started)
            return index, len(plan(docs, spans_per_doc).texts)
        log.info("%s is a Milvus Lite file, which one process opens at a time: the Ray workers send their "
                 "vectors back and this process writes them (a Milvus server lets the workers write)", location)
    the_plan = plan(docs, spans_per_doc)
    vectors = np.zeros((len(the_plan.texts), encoder.dimension), dtype=np.float32)
    show = settings.progress if progress is None else progress
    bar = _Bar(show_progress(show, len(the_plan.texts)))
    bar.grow(len(the_plan.texts))
    started = time.perf_counter()
    try:
        with ray_session(address):
            for first, batch in embed_batches(the_plan.texts, the_plan.calls, settings=settings, actors=actors):
                vectors[first : first + len(batch)] = batch
                bar.done(len(batch))
    finally:
        bar.close()
    log.info("embedded %d texts on Ray (%s) in %.1f s", len(the_plan.texts), address, time.perf_counter() - started)
    titles = np.zeros((len(docs), encoder.dimension), dtype=np.float32)
    has_title = the_plan.title_rows >= 0
    titles[has_title] = vectors[the_plan.title_rows[has_title]]
    spans: Mapping[str, Sequence[tuple[int, int]]] | None = None
    if spans_per_doc is not None:
        spans = {d.doc_id: sp for d, sp in zip(docs, spans_per_doc, strict=True)}
    index = cls.from_vectors(docs, vectors[the_plan.sentence_rows], spans=spans, title_vectors=titles,
                             settings=settings)
    return index, len(the_plan.texts)

