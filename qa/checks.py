"""Checks of the public functions' arguments: a wrong type is an :class:`~qa.errors.ArgumentError` (a
``QAError`` and a ``TypeError``) that names the argument, what it got and what it expects.

Pure functions; each returns the argument in the form the caller works with.
"""

from __future__ import annotations

import os
import reprlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import Settings
from .documents import Document
from .errors import ArgumentError, QAError, QuestionError

__all__ = ["check_context", "check_doc_ids", "check_k", "check_path", "check_questions", "check_settings",
           "check_sources"]


def _kind(value: object) -> str:
    return type(value).__name__


def check_k(k: object) -> int | None:
    """``k`` as a whole number of passages (``None`` stays ``None``), or a :class:`QAError` saying what is wrong.

    A float with no fractional part (as JSON clients send numbers) is accepted.

    Example:
        >>> check_k(3.0)
        3
    """
    if k is None:
        return None
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    message = f"k={k!r} is not a number of passages; give a whole number, 1 or more"
    if isinstance(k, bool) or not isinstance(k, int):
        raise ArgumentError(message)
    if k < 1:
        raise QAError(message)
    return k


def check_settings(settings: object) -> Settings | None:
    """``settings`` if it is a :class:`~qa.Settings` or ``None``.

    Example:
        >>> check_settings(None) is None
        True
    """
    if settings is None or isinstance(settings, Settings):
        return settings
    raise ArgumentError(f"settings must be a qa.Settings (from qa.get_settings(...)) or None, not {_kind(settings)}")


def check_path(path: object, what: str = "path") -> Path:
    """``path`` (a ``str`` or ``os.PathLike``) as a :class:`~pathlib.Path`.

    Example:
        >>> check_path("index/pets").name
        'pets'
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise ArgumentError(f"{what} must be a folder path (str or pathlib.Path), not {_kind(path)}")
    if not path.strip():
        raise ArgumentError(f"{what} is an empty path; give the folder of an index")
    return Path(path)


def check_doc_ids(docs: object, what: str = "docs") -> list[str] | None:
    """Document ids as a list: ``None`` stays ``None``, one id (a ``str``) becomes a list of it.

    Example:
        >>> check_doc_ids("cats"), check_doc_ids(("cats", "dogs"))
        (['cats'], ['cats', 'dogs'])
    """
    if docs is None:
        return None
    if isinstance(docs, str):
        return [docs]
    expected = f"{what} must be a list of document ids (strings)"
    if isinstance(docs, (bytes, Mapping)) or not isinstance(docs, Iterable):
        raise ArgumentError(f"{expected}, not {_kind(docs)}")
    ids = list(docs)
    wrong = next((d for d in ids if not isinstance(d, str)), None)
    if wrong is not None:
        raise ArgumentError(f"{expected}; it holds {reprlib.repr(wrong)} ({_kind(wrong)})")
    return ids


def check_questions(questions: object) -> list[str]:
    """Several questions as a list of strings (one bare string is refused: it is not a list of questions).

    Example:
        >>> check_questions(("Who?", "Why?"))
        ['Who?', 'Why?']
    """
    if isinstance(questions, str):
        raise ArgumentError("questions must be a list of questions, not one str; use Index.search for one question")
    if isinstance(questions, (bytes, Mapping)) or not isinstance(questions, Iterable):
        raise ArgumentError(f"questions must be a list of questions (strings), not {_kind(questions)}")
    listed = list(questions)
    for question in listed:
        if not isinstance(question, str):
            raise QuestionError(f"the question must be text, not {_kind(question)}")
    return listed


def check_context(context: object) -> int | None:
    """The number of neighbouring sentences each side (``None``: the setting).

    Example:
        >>> check_context(2)
        2
    """
    if context is None:
        return None
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise ArgumentError(f"context={context!r} is not a number of sentences; give a whole number, 0 or more")
    return context


def check_sources(sources: object) -> list[Any]:
    """Sources to index as a list of paths and :class:`~qa.Document` objects (one given bare becomes a list).

    Example:
        >>> [d.doc_id for d in check_sources(Document("a", "A", "Text."))]
        ['a']
    """
    if isinstance(sources, (str, os.PathLike, Document)):
        return [sources]
    expected = "sources must be a list of files, folders (str or pathlib.Path) or qa.Document objects"
    if isinstance(sources, (bytes, Mapping)) or not isinstance(sources, Iterable):
        raise ArgumentError(f"{expected}, not {_kind(sources)}")
    listed = list(sources)
    wrong = next((s for s in listed if not isinstance(s, (str, os.PathLike, Document))), None)
    if wrong is not None:
        raise ArgumentError(f"{expected}; it holds {reprlib.repr(wrong)} ({_kind(wrong)})")
    return listed
