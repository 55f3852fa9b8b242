"""Retrieval: the question in, ranked sentences out; and which index answers when none is named.

With no index given, :func:`retrieve` uses the bundled article's index under the settings' index folder.
It is built on first use and rebuilt by itself when the article, the model or the index format changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from .checks import check_doc_ids, check_k, check_path, check_settings
from .config import Settings, get_settings
from .documents import default_document
from .errors import ArgumentError, IndexNotFoundError, QAError, QuestionError
from .index import Index, Passage, manifest_mismatch
from .index.location import is_location, parse_location
from .store import MANIFEST, read_manifest

__all__ = ["check_k", "check_question", "default_index_path", "open_index", "retrieve"]

log = logging.getLogger(__name__)

#: The loaded index of each (path, model, backend), with the stamp of the manifest it was loaded from: one per
#: path, so a long-running process that sees many rebuilds keeps only the newest in memory.
_open: dict[tuple[str, str, str], tuple[str, Index]] = {}
_open_lock = threading.Lock()


def default_index_path(settings: Settings | None = None) -> Path:
    """Where the bundled article's index lives: ``<index root>/default``."""
    return (check_settings(settings) or get_settings()).index_root / "default"


def _manifest_stamp(path: Path) -> str:
    """A fingerprint of the saved index at ``path``: its manifest file's identity and modification time.

    A save never edits an index in place: it writes a new directory and renames it into place, so a new save
    means a new manifest file (another inode, a new nanosecond mtime). A stat costs microseconds, where parsing
    the manifest of a million-sentence index (30 MB of JSON) would cost a second on every call.
    """
    try:
        st = (path / MANIFEST).stat()
    except OSError:
        return ""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _cached(key: tuple[str, str, str], stamp: str) -> Index | None:
    entry = _open.get(key)
    return entry[1] if entry is not None and entry[0] == stamp else None


def _remember(key: tuple[str, str, str], stamp: str, index: Index) -> Index:
    # ``stamp`` is taken before loading: if a save lands in between, the newer index is filed under the older
    # stamp, and the next call, seeing the newer stamp, loads it again (never the reverse: a stale index kept).
    _open[key] = (stamp, index)
    return index


def open_index(index: str | Path | Index | None = None, *, settings: Settings | None = None) -> Index:
    """Resolve ``index`` to a loaded :class:`Index`, sharing loaded indexes within the process.

    ``None`` means the ``index`` setting, or failing that the bundled article's index (built or refreshed
    as needed). A path is loaded (and reloaded when a newer save replaced it); so is a Milvus location
    (``milvus:URI#NAME``, reloaded when a newer generation is committed there).

    Raises:
        ArgumentError: ``index`` is neither a path nor an :class:`Index`, or ``settings`` not a Settings.

    Example:
        >>> import qa
        >>> len(qa.open_index()) > 0
        True
    """
    s = check_settings(settings) or get_settings()
    if isinstance(index, Index):
        return index
    if index is None and s.index is not None:
        index = s.index
    if index is None:
        return _default_index(s)
    if not isinstance(index, (str, os.PathLike)):
        raise ArgumentError(
            f"index must be an index folder (str or pathlib.Path), a Milvus location (milvus:URI#NAME) or a "
            f"qa.Index, not {type(index).__name__}"
        )
    if is_location(index):
        return _open_location(index, s)
    path = check_path(index, "index")
    key = (str(path.resolve()), s.model, s.effective_backend)
    stamp = _manifest_stamp(path)
    with _open_lock:
        cached = _cached(key, stamp)
        return cached if cached is not None else _remember(key, stamp, Index.load(path, settings=s))


def _open_location(index: str | os.PathLike[str], s: Settings) -> Index:
    """The index at a Milvus location, reloaded when a newer generation has been committed there.

    Asked on every call at bounded staleness (a Strong read would wait ~0.4 s for the server's time ticks): a
    generation another process committed in the last seconds may be seen a call or two late, never a half-written
    one, and never an older one than already loaded (the generation before last stays readable).
    """
    from .index import milvus

    loc = parse_location(index)
    key = (str(loc), s.model, s.effective_backend)
    with _open_lock:
        committed = milvus.current_generation(loc, bounded=True)  # one small read: which generation is committed
        entry = _open.get(key)
        if entry is not None and committed != 0 and int(entry[0]) >= committed:
            return entry[1]
        loaded = Index.load(loc, settings=s)  # at Strong: this generation or a newer one
        return _remember(key, str(loaded.manifest.get("generation", committed)), loaded)


def _default_index(s: Settings) -> Index:
    path = default_index_path(s)
    doc = default_document()
    key = (str(path.resolve()), s.model, s.effective_backend)
    with _open_lock:
        cached = _cached(key, _manifest_stamp(path))
        if cached is not None:
            return cached
        reason = _stale_reason(path, s, doc.sha256)
        if reason:
            log.warning("building the default index at %s (%s)", path, reason)
            Index.build([doc], path, settings=s, ray="")  # one article: never worth starting Ray
        stamp = _manifest_stamp(path)
        return _remember(key, stamp, Index.load(path, settings=s))


def _stale_reason(path: Path, s: Settings, article_sha: str) -> str | None:
    try:
        manifest = read_manifest(path)
    except IndexNotFoundError:
        return "first use"
    except QAError as exc:
        return f"unreadable: {exc}"
    problem = manifest_mismatch(manifest, s)
    if problem:
        return problem
    docs = manifest.get("documents", [])  # read_manifest checked: a list of objects
    if [d.get("sha256") for d in docs] != [article_sha]:
        return "the article changed"
    return None


def check_question(question: object, settings: Settings) -> str:
    """The question, stripped, or a :class:`QuestionError` saying what is wrong with it."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    text = question.strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Lone surrogates (a JSON "\ud800" escape, say) are not text: the model's tokenizer cannot take them.
        raise QuestionError(
            f"the question holds a character that is not valid Unicode text ({exc.object[exc.start]!r} at "
            f"position {exc.start}); retype the question"
        ) from None
    if not text:
        raise QuestionError("the question is empty; type a question about the documents")
    if len(text) > settings.max_question_chars:
        raise QuestionError(
            f"the question is {len(text):,} characters long; the limit is {settings.max_question_chars:,} "
            "(setting QA_MAX_QUESTION_CHARS). Ask something shorter"
        )
    return text


def retrieve(
    question: str,
    *,
    k: int | None = None,
    index: str | Path | Index | None = None,
    docs: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> list[Passage]:
    """The ``k`` sentences that best answer ``question``, best first.

    Args:
        question: a natural-language question.
        k: how many passages (default: the ``k`` setting, 5).
        index: a saved index directory, a Milvus location (``milvus:URI#NAME``) or an :class:`Index` (default:
            the bundled article).
        docs: only search these document ids.
        settings: settings to use instead of the environment's.

    Raises:
        QuestionError: the question is empty or too long.
        QAError: ``k`` is not a whole number of at least 1.
        ArgumentError: ``index``, ``docs``, ``k`` or ``settings`` has the wrong type (says what is expected).
        IndexMismatchError: the index was built with another model; the message says how to rebuild.

    Example:
        >>> import qa
        >>> best = qa.retrieve("Who led the delegation of US lawmakers?", k=3)[0]
        >>> "Gentry Beach" in best.text
        True
    """
    s = check_settings(settings) or get_settings()
    text = check_question(question, s)
    k = check_k(k)
    doc_ids = check_doc_ids(docs)
    idx = open_index(index, settings=s)
    # The index embeds the question with the model it was built with (checked against settings on load).
    return idx.search(text, k=k if k is not None else s.k, docs=doc_ids, context=s.context, scorer=s.scorer)
