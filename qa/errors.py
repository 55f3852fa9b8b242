"""The error hierarchy of ``qa``.

Every error a user can cause or fix is a :class:`QAError`. Messages name the offending value and say what to
do about it; the CLI prints them as one line (exit code 2) and the UI shows them as a ``gr.Error``.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ConfigError",
    "DocumentError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexUnavailableError",
    "IndexWriteError",
    "MissingDependencyError",
    "ModelError",
    "QAError",
    "QuestionError",
]


class QAError(Exception):
    """Base class of every error ``qa`` raises on purpose."""


class QuestionError(QAError, ValueError):
    """The question cannot be answered as given (empty, too long, ...)."""


class DocumentError(QAError, ValueError):
    """A document could not be read or is not usable (empty, wrong format, duplicate id, ...)."""


class IndexNotFoundError(QAError, FileNotFoundError):
    """No index exists at the given path."""


class IndexMismatchError(QAError):
    """A saved index does not match the current settings (model, format version, segmenter)."""


class IndexCorruptError(QAError):
    """A saved index is damaged: a file is missing, truncated or altered."""


class IndexUnavailableError(QAError, ConnectionError):
    """An index's store cannot be reached: a Milvus server that does not answer, or a Milvus Lite file that
    another process has open (Lite opens a file in one process at a time)."""


class IndexWriteError(QAError, OSError):
    """An index cannot be saved where asked: the folder holds files qa did not write (or is one of the
    documents being indexed), or the disk refused a write (full, read-only, no permission). Nothing is lost:
    whatever was there before is left as it was."""


class ArgumentError(QAError, TypeError):
    """A function was called with an argument of the wrong type (an index that is neither a path nor an
    :class:`~qa.Index`, document ids that are not strings, ...)."""


class ModelError(QAError):
    """The embedding model cannot be found, loaded or verified."""


class ConfigError(QAError, ValueError):
    """A setting has an invalid value."""


class MissingDependencyError(QAError, ImportError):
    """A feature needs an optional package that is not installed (the message names the ``pip install``)."""
