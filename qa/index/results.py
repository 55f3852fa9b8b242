"""What an index gives back: passages, the documents it holds, and what an update did."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..documents import SourceFailure

if TYPE_CHECKING:
    from .index import Index


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
class Ranking:
    """The passages of one question, best first, and how sure the ranker is that the first one answers it."""

    passages: list[Passage]
    confidence: float | None = None
    """Probability that ``passages[0]`` answers the question, from a learned scorer (``None`` under fusion)."""
    threshold: float | None = None
    """The confidence at or above which an answer is given (the scorer's, or the ``answer_threshold`` setting)."""


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
