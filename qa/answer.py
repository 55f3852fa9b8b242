"""Answers: a short extractive answer built from the best sentences, each with its citation marker.

The answer text is made only of retrieved sentences, verbatim, each followed by ``[n]`` where
``citations[n-1]`` is that sentence: every claim is a citation by construction. When the best sentence
scores below the abstention threshold (``min_score``), the answer says the documents do not answer the
question and cites nothing; the nearest sentences are offered separately in ``closest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import check_k, check_settings
from .config import Settings, get_settings
from .index import Index, Passage
from .retrieval import retrieve

__all__ = ["NOT_FOUND", "Answer", "answer"]

NOT_FOUND = "The documents do not answer this question."


@dataclass(frozen=True)
class Answer:
    """The reply to a question.

    ``text`` carries markers ``[1]``, ``[2]``, ... and marker ``[n]`` is ``citations[n-1]``. When ``found``
    is false, ``citations`` is empty and ``closest`` lists the nearest sentences, which are not evidence.
    """

    question: str
    text: str
    found: bool
    citations: list[Passage] = field(default_factory=list)
    closest: list[Passage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the CLI's ``qa ask --json``."""
        return {
            "question": self.question,
            "answer": self.text,
            "found": self.found,
            "citations": [p.to_dict() for p in self.citations],
            "closest": [p.to_dict() for p in self.closest],
        }


def compose(question: str, passages: Sequence[Passage], settings: Settings) -> Answer:
    """Turn ranked passages into an :class:`Answer` (pure: no model, no index).

    Sentences join the answer best first while they score at least ``min_score`` and within
    ``answer_margin`` of the best one, up to ``answer_sentences`` of them.
    """
    if not passages or passages[0].score < settings.min_score:
        return Answer(question, NOT_FOUND, False, [], list(passages[:3]))
    floor = max(settings.min_score, passages[0].score - settings.answer_margin)
    cited = [p for p in passages[: settings.answer_sentences] if p.score >= floor]
    text = " ".join(f"{p.text} [{n}]" for n, p in enumerate(cited, start=1))
    return Answer(question, text, True, cited, [])


def answer(
    question: str,
    *,
    k: int | None = None,
    index: str | Path | Index | None = None,
    docs: Sequence[str] | None = None,
    settings: Settings | None = None,
) -> Answer:
    """Answer ``question`` from the documents with cited sentences, or say that they do not answer it.

    Args:
        question: a natural-language question.
        k: how many passages to consider (default: the ``k`` setting).
        index: a saved index directory or an :class:`Index` (default: the bundled article).
        docs: only use these document ids.
        settings: settings to use instead of the environment's.

    Example:
        >>> import qa
        >>> a = qa.answer("When did the US withdraw from Afghanistan?")
        >>> a.found, "August 2021" in a.text, a.text.endswith("[1]") or "[2]" in a.text
        (True, True, True)
    """
    s = check_settings(settings) or get_settings()
    k = check_k(k)
    passages = retrieve(question, k=max(k or s.k, s.answer_sentences), index=index, docs=docs, settings=s)
    return compose(question.strip(), passages, s)
