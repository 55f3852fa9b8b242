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
from .documents import (
    Document,
    ReadReport,
    SourceFailure,
    default_document,
    heading_at,
    load_sources,
    page_at,
    read_sources,
    safe_filename,
)
from .errors import (
    ArgumentError,
    ConfigError,
    DocumentError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexUnavailableError,
    IndexWriteError,
    ModelError,
    QAError,
    QuestionError,
)
from .index import DocumentInfo, Index, IndexUpdate, Passage, Ranking
from .limits import Limits
from .retrieval import check_question, default_index_path, open_index, retrieve

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "ArgumentError",
    "ConfigError",
    "Document",
    "DocumentError",
    "DocumentInfo",
    "Index",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexUnavailableError",
    "IndexUpdate",
    "IndexWriteError",
    "Limits",
    "ModelError",
    "Passage",
    "QAError",
    "QuestionError",
    "Ranking",
    "ReadReport",
    "Settings",
    "SourceFailure",
    "__version__",
    "answer",
    "check_question",
    "default_document",
    "default_index_path",
    "get_settings",
    "heading_at",
    "load_sources",
    "open_index",
    "page_at",
    "read_sources",
    "retrieve",
    "safe_filename",
]
