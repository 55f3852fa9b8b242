"""The :class:`Index` object: searching and ranking a question over its four channels, the passages and
documents it returns, saving, loading and updating. How an index is made is in :mod:`qa.index.build`, its
files in :mod:`qa.index.files`, its tables in :mod:`qa.index.tables`.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import check_context, check_doc_ids, check_k, check_path, check_questions, check_settings, check_sources
from ..config import Settings, get_settings
from ..documents import Document, load_sources
from ..errors import IndexCorruptError, QAError, QuestionError
from ..lexical import LexicalChannel, best
from ..limits import Limits
from ..ranking import first_unique, fuse, top_unique
from . import build as _build
from . import files as _files
from .location import MilvusLocation, is_location, parse_location
from .passages import _Documents
from .results import DocumentInfo, IndexUpdate, Passage, Ranking
from .storage import check_apart, check_target, fix_hint, new_temp_folder, swap_into_place, write_error, writing
from .storage import locked as _locked
from .stores.base import Hits, VectorStore
from .tables import _find, _Sorted, _sorted
from .threads import _workers

if TYPE_CHECKING:
    from ..scoring import Scorer

log = logging.getLogger("qa.index")

#: Candidates each channel contributes before fusion (at least; more when k is large).
POOL = 50
#: Channels that, past the exact-search size, only score the other channels' candidates and propose none.
#: Their own proposals cost more than they find there: the context vectors' FAISS search would take 8 ms a
#: question at 1M sentences, and the window BM25's posting lists (3x the sentences') ~10 ms to add up.
#: Without the proposals of both, SQuAD (5,696 questions) loses 0.0003 MRR@10 (0.8084 -> 0.8081) and 0.002
#: R@10; the article's dev questions rank as before.
SCORING_ONLY = frozenset({"dense_context", "bm25_context"})
_LOADS = threading.Lock()


class Index(_Documents):
    """A searchable set of documents: their sentences' vectors (a :class:`VectorStore` per dense channel), BM25
    and exact offsets.

    Build one with :meth:`build`, open a saved one with :meth:`load`.

    Example:
        >>> import qa
        >>> idx = qa.Index.build([qa.Document("cats", "Cats", "Cats sleep a lot. Dogs bark.")])
        >>> idx.search("Which animal barks?", k=1)[0].text
        'Dogs bark.'
    """

    #: Where the index lives when that is not a folder: a Milvus location (``path`` is then ``None``).
    location: MilvusLocation | None = None

    def __init__(
        self,
        *,
        manifest: dict[str, Any],
        dense: VectorStore,
        dense_context: VectorStore,
        bm25: LexicalChannel,
        bm25_context: LexicalChannel,
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
        # The dense channels' vectors, row i being sentence i: behind the VectorStore seam (FAISS files today).
        self._dense: dict[str, VectorStore] = {"dense": dense, "dense_context": dense_context}
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
        sizes = {len(self._spans), len(self._keys), dense.count(), dense_context.count(), bm25.size, bm25_context.size}
        if len(sizes) != 1:
            raise IndexCorruptError(
                f"index at {path} has channels of different sizes {sorted(sizes)}; " + fix_hint(path)
            )

    # ------------------------------------------------------------------ properties

    @property
    def model(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def dimension(self) -> int:
        return int(self.manifest["model"]["dimension"])

    def vector_store(self, channel: str = "dense") -> VectorStore:
        """The vectors of a dense channel (``dense``: the sentences', ``dense_context``: their contexts')."""
        return self._dense[channel]

    def __len__(self) -> int:
        """Number of sentences."""
        return len(self._spans)

    def __repr__(self) -> str:
        path, n_docs = str(self.path if self.location is None else self.location), len(self._doc_rows)
        return f"Index(path={path!r}, documents={n_docs}, sentences={len(self)}, model={self.model!r})"

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        sources: Iterable[str | Path | Document],
        path: str | Path | MilvusLocation | None = None,
        *,
        settings: Settings | None = None,
        progress: bool | None = None,
        spans: Mapping[str, Sequence[tuple[int, int]]] | None = None,
        ray: str | None = None,
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
            ray: run the model on Ray workers (``pip install 'qa[ray]'``): ``"local"`` starts a Ray instance on
                this machine for the build, anything else is the address of a running cluster (``host:port``,
                ``ray://host:port``, ``auto``); ``None``: the ``ray_address`` setting, by default no Ray; ``""``:
                no Ray whatever the setting (the web app's uploads and the bundled article's index). The
                documents are read and split here; the vectors are those of a build without Ray (see
                :mod:`qa.index.ray_build`).

        Raises:
            IndexWriteError: ``path`` is a file or a folder holding anything but a qa index, is one of the
                ``sources`` (or inside or around one), or the disk refused the write; nothing was lost.
            ArgumentError: an argument has the wrong type.
            RayUnavailableError: Ray is asked for but not installed.
            RayConnectError: the Ray address cannot be reached (checked in seconds), or a worker failed.

        Example:
            >>> import qa
            >>> docs = [qa.Document("pets", "Pets", "Cats purr. Dogs bark.")]
            >>> qa.Index.build(docs, ray="local").search("Which animal barks?", k=1)[0].text  # doctest: +SKIP
            'Dogs bark.'
        """
        s = check_settings(settings) or get_settings()
        sources = check_sources(sources)
        if is_location(path):
            _check_milvus(path)  # before the model runs: a bad location or a missing pymilvus costs nothing
        elif path is not None:
            target = check_path(path)
            check_apart(target, sources)
            check_target(target)  # before the model runs: a refused folder costs nothing
        # The settings' own limits (not the environment's): a caller's Settings decide what a document may cost.
        docs = load_sources(sources, max_bytes=int(s.max_file_mb * 1024 * 1024), limits=Limits().resolved(s))
        spans_per_doc = None if spans is None else [[(int(a), int(b)) for a, b in spans[d.doc_id]] for d in docs]
        address = ray if ray is not None else s.ray_address
        if address:
            from . import ray_build

            index, _ = ray_build.from_documents(cls, docs, settings=s, progress=progress,
                                                spans_per_doc=spans_per_doc, address=address,
                                                location=_check_milvus(path) if is_location(path) else None)
        else:
            index, _ = cls._from_documents(docs, settings=s, progress=progress, spans_per_doc=spans_per_doc)
        if spans is not None:
            index.manifest["segmenter"] = {"name": "given"}
        if path is not None and index.location is None:  # a Ray build into a Milvus server saved it already
            index.save(path)
        return index

    @classmethod
    def from_vectors(
        cls,
        documents: Iterable[Document],
        vectors: np.ndarray,
        *,
        spans: Mapping[str, Sequence[tuple[int, int]]] | None = None,
        title_vectors: np.ndarray | None = None,
        context_vectors: np.ndarray | None = None,
        settings: Settings | None = None,
    ) -> Index:
        """An index over ``documents`` with the sentence vectors given, not computed: what :meth:`build` makes
        when the model gives ``vectors`` (vectors made elsewhere, or synthetic ones for benchmarks).

        Args:
            documents: :class:`~qa.Document` objects, split into sentences as :meth:`build` splits them.
            vectors: one unit-length vector per sentence, document after document, in order (n x dimension of
                the settings' model, which still encodes the questions).
            spans: sentence spans by document id instead of the segmenter (as in :meth:`build`).
            title_vectors: one vector per document for its title (default: the model embeds the titles).
            context_vectors: one per sentence to use as is (default: derived as a build derives them, from the
                sentence, its neighbours and its title).
            settings: as in :meth:`build`.

        Raises:
            QAError: an array has the wrong shape (the message gives the one expected).

        Example:
            >>> import qa
            >>> from qa.embedding import get_encoder
            >>> docs = [qa.Document("pets", "Pets", "Cats purr. Dogs bark.")]
            >>> vectors = get_encoder().encode_documents(["Cats purr.", "Dogs bark."])
            >>> idx = qa.Index.from_vectors(docs, vectors)
            >>> idx.search("Which animal barks?", k=1)[0].text
            'Dogs bark.'
        """
        return _build.from_vectors(cls, documents, vectors, spans=spans, title_vectors=title_vectors,
                                   context_vectors=context_vectors, settings=check_settings(settings) or get_settings())

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
        return _build.from_documents(cls, docs, settings=settings, progress=progress, spans_per_doc=spans_per_doc,
                                     cache=cache)

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
                out[col * n + hit] = self._dense[channel].vectors(at[hit])
                filled[col * n + hit] = True
        return filled

    # ------------------------------------------------------------------ saving and loading

    def save(self, path: str | Path | MilvusLocation) -> None:
        """Write the index to ``path`` atomically: a complete new index, or the old one untouched.

        Files go to a temporary sibling directory first, are flushed to disk, and only then is the directory
        renamed into place. ``path`` must be missing, an empty folder or a qa index: a save never replaces
        anything qa did not write. The temporary folders of saves that were killed are removed by the next save
        once no other save of ``path`` is running.

        Raises:
            IndexWriteError: ``path`` holds something other than a qa index, or the disk refused a write (full,
                read-only, no permission): the message says which and what to do. The old index is unchanged.
        """
        if is_location(path):
            self._save_to_location(path)
            return
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

    def _save_to_location(self, location: str | Path | MilvusLocation) -> None:
        """:meth:`save` to a Milvus location: a new generation there, published at once when complete."""
        loc = _check_milvus(location)
        from . import milvus

        self.manifest = milvus.save(self, loc)
        self.location, self.path = loc, None

    def _write_files(self, tmp: Path) -> dict[str, Any]:
        """Write every file of the index into the folder ``tmp`` and flush them; returns the manifest written."""
        return _files.write_files(self, tmp)

    @classmethod
    def load(
        cls, path: str | Path | MilvusLocation, *, settings: Settings | None = None, check_model: bool = True
    ) -> Index:
        """Open the index saved at ``path`` and check it against the current settings.

        Raises:
            IndexNotFoundError: nothing is saved at ``path``.
            IndexMismatchError: it was built with another model, format version or segmenter.
            IndexCorruptError: a file is missing, truncated or altered.
        """
        s = check_settings(settings) or get_settings()
        if is_location(path):
            from . import milvus

            return milvus.load(cls, _check_milvus(path), s, check_model=check_model)
        target = check_path(path)
        # The lock file is shared with other processes' loads and exclusive of a save's swap, so the files checked
        # and opened are all one save's. In this process, one load at a time: numpy parses .npy headers with ast,
        # which CPython 3.11 does not do safely in parallel threads (spurious SystemError, gh-106905).
        with _LOADS, _locked(target, exclusive=not target.exists()):
            return cls._load_locked(target, s, check_model=check_model)

    @classmethod
    def _load_locked(cls, target: Path, s: Settings, *, check_model: bool) -> Index:
        return _files.read_files(cls, target, s, check_model=check_model)

    # ------------------------------------------------------------------ searching

    def search(
        self,
        question: str,
        *,
        k: int | None = None,
        docs: Sequence[str] | None = None,
        context: int | None = None,
        scorer: str | None = None,
    ) -> list[Passage]:
        """The ``k`` sentences closest to ``question``, best first (see :func:`qa.retrieve`).

        ``context`` is the number of neighbouring sentences on each side put into ``Passage.context``;
        ``scorer`` the ``scorer`` setting to rank with (``None``: this index's settings).

        Raises:
            QuestionError: ``question`` is not a string.
            ArgumentError: ``k``, ``docs`` or ``context`` has the wrong type.
        """
        if not isinstance(question, str):
            raise QuestionError(f"the question must be text, not {type(question).__name__}")
        return self.search_many([question], k=k, docs=docs, context=context, scorer=scorer)[0]

    def search_many(
        self,
        questions: Sequence[str],
        *,
        k: int | None = None,
        docs: Sequence[str] | None = None,
        context: int | None = None,
        scorer: str | None = None,
    ) -> list[list[Passage]]:
        """:meth:`search` for several questions at once (one batched forward pass).

        ``k`` may exceed the number of sentences: it is clipped to it first, so a huge ``k`` costs what
        ``k=len(index)`` does.
        """
        return [r.passages for r in self.rankings(questions, k=k, docs=docs, context=context, scorer=scorer)]

    def rankings(
        self,
        questions: Sequence[str],
        *,
        k: int | None = None,
        docs: Sequence[str] | None = None,
        context: int | None = None,
        scorer: str | None = None,
    ) -> list[Ranking]:
        """:meth:`search_many` with each question's :class:`Ranking`: its passages and, under a learned scorer,
        the confidence that the first one answers it (what :func:`qa.answer` decides on).

        Raises:
            ScorerError: ``scorer`` (or the setting) names no shipped scorer and no readable scorer file.

        Example:
            >>> import qa
            >>> r = qa.open_index().rankings(["When did the US withdraw from Afghanistan?"], k=2)[0]
            >>> len(r.passages), 0.0 <= r.confidence <= 1.0
            (2, True)
        """
        from ..embedding import get_encoder

        questions = check_questions(questions)
        checked = check_k(k)
        k = self.settings.k if checked is None else checked
        context = check_context(context)
        doc_ids = check_doc_ids(docs)
        k = min(k, max(len(self), 1))
        allowed = None if doc_ids is None else self.rows_of(doc_ids)
        if allowed is not None:
            k = min(k, max(len(allowed), 1))
        ranker = self._scorer(scorer)
        threshold = None if ranker is None else ranker.threshold
        learned = ranker is not None
        encoder = get_encoder(self.settings)
        lexical = None
        proposed = None
        if len(questions) == 1:
            # One question (the common case): BM25 runs while a worker encodes the question and searches the
            # vectors with it.
            def encode_and_search() -> tuple[np.ndarray, dict[str, np.ndarray]]:
                vectors = encoder.encode_queries(list(questions))
                return vectors, self._dense_proposals(vectors[0], k=k, allowed=allowed, learned=learned)

            pending = _workers().submit(encode_and_search)
            lexical = self._lexical_scores(questions[0], allowed, learned=learned, k=k)
            queries, proposed = pending.result()
        else:
            queries = encoder.encode_queries(list(questions))
        results = []
        for question, query in zip(questions, queries, strict=True):
            rows, scores, confidence = self._rank(question, query, k=k, allowed=allowed, lexical=lexical,
                                                  proposed=proposed, scorer=ranker)
            results.append(Ranking(self.passages(rows, scores, context=context), confidence, threshold))
        return results

    def _lexical_scores(
        self, question: str, allowed: np.ndarray | None, *, learned: bool, k: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Sparse scores of every proposing lexical channel: ``{channel: (rows, scores)}``, within ``allowed``.

        A :data:`SCORING_ONLY` channel past the exact size is left out: :meth:`rank` scores just its candidates.
        A channel that is not ``complete`` (Milvus sparse vectors) gives its best :meth:`_pool` rows for ``k``.
        """
        focus = self.settings.focus_weight

        def scores(name: str) -> tuple[np.ndarray, np.ndarray]:
            channel = self._lexical[name]
            if not channel.complete:  # its best rows only: _channel_scores scores the other candidates
                return channel.propose(question, self._pool(k), allowed=allowed, focus_weight=focus)
            rows, values = channel.sparse_scores(question, focus_weight=focus)
            if allowed is not None:
                keep = np.isin(rows, allowed)
                rows, values = rows[keep], values[keep]
            return rows, values

        names = [name for name in self._proposing(learned) if name in self._lexical]
        # Past the exact-search size a channel's posting lists take milliseconds to add up; numpy releases the
        # GIL while it does, so the channels after the first run on the worker threads meanwhile. So do a Milvus
        # channel's searches (waiting for Milvus's answer).
        side = {}
        if len(self) > self.settings.exact_limit or not all(self._lexical[name].complete for name in names):
            side = {name: _workers().submit(scores, name) for name in names[1:]}
        return {name: side[name].result() if name in side else scores(name) for name in names}

    def _pool(self, k: int) -> int:
        return min(len(self), max(POOL, 4 * k))

    def _active(self, learned: bool) -> list[str]:
        """The channels that rank: all four under a learned scorer (it reads every one), else those weighted > 0."""
        if learned:
            return list(self.settings.weights)
        return [name for name, w in self.settings.weights.items() if w > 0]

    def _proposing(self, learned: bool) -> list[str]:
        """Active channels that propose candidates (all but :data:`SCORING_ONLY` past the exact size)."""
        large = len(self) > self.settings.exact_limit
        return [name for name in self._active(learned) if not (large and name in SCORING_ONLY)]

    @property
    def scorer(self) -> Scorer | None:
        """The learned scorer that ranks this index's questions (setting ``scorer``), or ``None`` for fusion.

        Raises:
            ScorerError: the ``scorer`` setting names no shipped scorer and no readable scorer file.
        """
        return self._scorer(None)

    def _scorer(self, setting: str | None) -> Scorer | None:
        """The scorer a ``scorer`` setting selects for this index's model (``None``: this index's setting)."""
        from ..scoring.choice import scorer_for

        return scorer_for(self.settings.scorer if setting is None else setting, self.model)

    def _dense_proposals(
        self, query: np.ndarray, *, k: int, allowed: np.ndarray | None, learned: bool
    ) -> dict[str, np.ndarray]:
        """The best rows of each proposing dense channel for one ``query`` vector."""
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        # Runs on a worker thread (search_many): it must not wait for other workers' tasks, or two questions
        # at once could each hold a worker waiting for the other.
        pool = self._pool(k)
        return {name: self.search_vectors(query, k=pool, allowed=allowed, channel=name)[0].rows
                for name in self._proposing(learned) if name in self._dense}

    def rank(
        self,
        question: str,
        query: np.ndarray,
        *,
        k: int,
        allowed: np.ndarray | None = None,
        lexical: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        proposed: dict[str, np.ndarray] | None = None,
        scorer: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ranking of one question: ``(rows, scores)``, best first, at most ``k``, no duplicates.

        Each active channel proposes its best :data:`POOL` rows (but :data:`SCORING_ONLY` ones past the exact
        size); every candidate is then scored exactly by every active channel. A learned scorer (:attr:`scorer`)
        ranks the candidates by its features of them (scores are its log-odds; headings and labels come after
        every sentence); under fusion the channels' scores are fused by their weights
        (:func:`qa.ranking.fuse`). ``lexical`` (:meth:`_lexical_scores`) and ``proposed``
        (:meth:`_dense_proposals`) are the question's, if already computed (with the same ``scorer``: the
        channels that propose differ); ``scorer`` is the ``scorer`` setting (``None``: this index's).
        """
        rows, scores, _ = self._rank(question, query, k=k, allowed=allowed, lexical=lexical, proposed=proposed,
                                     scorer=self._scorer(scorer))
        return rows, scores

    def _rank(
        self,
        question: str,
        query: np.ndarray,
        *,
        k: int,
        allowed: np.ndarray | None,
        lexical: dict[str, tuple[np.ndarray, np.ndarray]] | None,
        proposed: dict[str, np.ndarray] | None,
        scorer: Scorer | None,
    ) -> tuple[np.ndarray, np.ndarray, float | None]:
        """:meth:`rank` with ``scorer`` (``None``: fusion), and its confidence that the first row answers."""
        candidates, lexical = self._candidates(question, query, k=k, allowed=allowed, lexical=lexical,
                                               proposed=proposed, learned=scorer is not None)
        if len(candidates) == 0:
            return candidates, np.zeros(0, dtype=np.float32), None if scorer is None else 0.0
        if scorer is None:
            weights = {name: w for name, w in self.settings.weights.items() if w > 0}
            fused = fuse(self._channel_scores(question, query, candidates, lexical, weights), weights)
            return (*top_unique(candidates, fused, self._dup_keys[candidates], k), None)
        from ..scoring import features, trigger_features

        channel_scores = self._channel_scores(question, query, candidates, lexical, self._active(True))
        x = features(question, channel_scores, self._sentence_texts(candidates))
        scores = scorer.rank_scores(x)
        order = scorer.order(x, scores)
        confidence = float(scorer.confidence(trigger_features(x, scores, order)))
        rows, ranked = first_unique(candidates, scores.astype(np.float32), self._dup_keys[candidates], k,
                                    order=order)
        return rows, ranked, confidence

    def _candidates(
        self,
        question: str,
        query: np.ndarray,
        *,
        k: int,
        allowed: np.ndarray | None,
        lexical: dict[str, tuple[np.ndarray, np.ndarray]] | None,
        proposed: dict[str, np.ndarray] | None,
        learned: bool,
    ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The question's candidate rows (sorted, unique): each proposing channel's best :meth:`_pool` rows; and
        its lexical scores (computed here unless given), which :meth:`_channel_scores` reads."""
        pool = self._pool(k)
        if lexical is None:
            lexical = self._lexical_scores(question, allowed, learned=learned, k=k)
        if proposed is None:
            proposed = self._dense_proposals(query, k=k, allowed=allowed, learned=learned)
        proposals = [np.asarray(rows, dtype=np.int64) for rows in proposed.values()]
        for name in self._proposing(learned):
            if name in lexical:
                rows, values = lexical[name]
                proposals.append(rows if len(rows) <= pool else rows[best(values, pool)])
        candidates = np.unique(np.concatenate(proposals)) if proposals else np.zeros(0, dtype=np.int64)
        return candidates, lexical

    def _channel_scores(
        self,
        question: str,
        query: np.ndarray,
        candidates: np.ndarray,
        lexical: dict[str, tuple[np.ndarray, np.ndarray]],
        names: Iterable[str],
    ) -> dict[str, np.ndarray]:
        """Each named channel's score of every candidate (a non-proposing lexical channel scores only them)."""
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores = {}
        for name in names:
            if name in self._dense:
                scores[name] = self._dense[name].score(query[0], candidates)
            elif name in lexical:
                scores[name] = _lookup(*lexical[name], candidates)
                if not self._lexical[name].complete:  # it gave its best rows: the others are scored exactly
                    missing = np.flatnonzero(~np.isin(candidates, lexical[name][0]))
                    if len(missing):
                        scores[name][missing] = self._lexical[name].scores_at(
                            question, candidates[missing], focus_weight=self.settings.focus_weight)
            else:  # scoring only: a binary search per word and candidate, not the word's whole posting list
                scores[name] = self._lexical[name].scores_at(
                    question, candidates, focus_weight=self.settings.focus_weight)
        return scores

    def search_vectors(
        self, queries: np.ndarray, *, k: int, allowed: np.ndarray | None = None, channel: str = "dense"
    ) -> list[Hits]:
        """Raw vector search of one dense channel: for each of ``queries``, its best ``k`` rows and their scores
        (fewer when fewer rows are held or ``allowed``; never padding)."""
        return self._dense[channel].search(queries, k, allowed=allowed)

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
        return _build.update(self, add=add, remove=remove, progress=progress, max_bytes=max_bytes)


# ---------------------------------------------------------------------- helpers


def _check_milvus(location: object) -> MilvusLocation:
    """The parsed Milvus ``location``, once pymilvus is known to be installed (else the ``pip install``)."""
    from . import milvus

    loc = parse_location(location)  # type: ignore[arg-type]
    milvus._pymilvus(loc)
    return loc


def _checked(table: np.ndarray, width: int, what: str, path: Path | None) -> np.ndarray:
    """``table`` if it has ``width`` columns; else the index is corrupt."""
    if table.ndim != 2 or table.shape[1] != width:
        raise IndexCorruptError(f"index at {path} has {what} rows of shape {table.shape}; "
                                + fix_hint(path))
    return table


def _lookup(rows: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values`` at ``wanted`` rows, 0 for rows not in the sorted ``rows`` (a sparse channel's score)."""
    if len(rows) == 0:
        return np.zeros(len(wanted), dtype=np.float32)
    at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
    return np.where(rows[at] == wanted, values[at], np.float32(0)).astype(np.float32)

