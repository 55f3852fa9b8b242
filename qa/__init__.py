"""qa: ask questions about documents and get answers with exact, checkable citations.

Example:
    >>> import qa
    >>> result = qa.answer("Who led the delegation of US lawmakers that visited Pakistan?")
    >>> result.found, "Gentry Beach" in result.citations[0].text
    (True, True)
"""

from __future__ import annotations

from .answer import Answer, answer
from .config import Settings, get_settings
from .documents import Document, default_document, load_sources
from .errors import (
    ConfigError,
    DocumentError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    ModelError,
    QAError,
    QuestionError,
)
from .index import DocumentInfo, Index, Passage
from .retrieval import default_index_path, open_index, retrieve

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "ConfigError",
    "Document",
    "DocumentError",
    "DocumentInfo",
    "Index",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "ModelError",
    "Passage",
    "QAError",
    "QuestionError",
    "Settings",
    "__version__",
    "answer",
    "default_document",
    "default_index_path",
    "get_settings",
    "load_sources",
    "open_index",
    "retrieve",
]
