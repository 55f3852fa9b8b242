"""Answers: a short extractive answer built from the best sentences, each with its citation marker.

The answer text is made only of retrieved sentences, verbatim, each followed by ``[n]`` where
``citations[n-1]`` is that sentence: every claim is a citation by construction. A sentence that is only a
heading, a number or a label ("4. OWNERSHIP.") is never cited: it may rank, and its heading shows beside the
sentences under it, but it answers nothing. The answer is declined (the documents do not answer the question;
nothing is cited, and the nearest sentences are offered separately in ``closest``, as not evidence) when:

* under a learned scorer, its ``confidence`` that the best sentence answers is below the threshold
  (the scorer's own, chosen on dev data to maximise answer-triggering F1, or the ``answer_threshold`` setting);
* under fixed fusion (``scorer=fusion``), the best sentence scores below ``min_score``.

What is not done: no sentence is rewritten or summarised, and the answer never joins sentences of different
documents' wording into new text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import check_doc_ids, check_k, check_settings
from .config import Settings, get_settings
from .index import Index, Passage, Ranking
from .retrieval import check_question, open_index
from .scoring import is_label

__all__ = ["NOT_FOUND", "Answer", "answer"]

NOT_FOUND = "The documents do not answer this question."


#: The default ``answer_margin`` on each kind of score: fused channel scores, and a learned scorer's log-odds.
#: 1.5 log-odds gives answers of two sentences as often as fusion's 0.02 does (article questions and
#: paraphrases: 42% both; WikiQA dev: 48% against 44%), and the second sentence holds the answer when the
#: first does not about as often (6 against 4, 11 against 10 questions); 1.0 gave a third fewer.
FUSION_MARGIN = 0.02
SCORER_MARGIN = 1.5


@dataclass(frozen=True)
class Answer:
    """The reply to a question.

    ``text`` carries markers ``[1]``, ``[2]``, ... and marker ``[n]`` is ``citations[n-1]``. When ``found``
    is false, ``citations`` is empty and ``closest`` lists the nearest sentences, which are not evidence.
    ``confidence`` is the learned scorer's probability that the best sentence answers the question (``None``
    under fixed fusion); ``found`` is ``confidence >= threshold``.
    """

    question: str
    text: str
    found: bool
    citations: list[Passage] = field(default_factory=list)
    closest: list[Passage] = field(default_factory=list)
    confidence: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the CLI's ``qa ask --json``."""
        return {
            "question": self.question,
            "answer": self.text,
            "found": self.found,
            "confidence": self.confidence,
            "threshold": self.threshold,
            "citations": [p.to_dict() for p in self.citations],
            "closest": [p.to_dict() for p in self.closest],
        }


def compose(question: str, ranking: Ranking | Sequence[Passage], settings: Settings) -> Answer:
    """Turn a question's ranking into an :class:`Answer` (pure: no model, no index).

    Sentences that are not labels join the answer best first while they score within ``answer_margin`` of
    the best one, up to ``answer_sentences`` of them. The answer is declined, citing nothing, when the ranking
    has a ``confidence`` below its ``threshold``, when it has none (fusion, or bare passages) and the best
    sentence scores below ``min_score``, or when every passage is a label.

    Example:
        >>> from qa import Passage, Ranking, Settings
        >>> from qa.answer import compose
        >>> def p(text, score): return Passage(text, score, "d", "D", 0, 0, len(text), text, 0, len(text))
        >>> a = compose("q?", Ranking([p("4. OWNERSHIP.", 2.0), p("It is yours.", 1.5)], 0.9, 0.3), Settings())
        >>> a.found, a.text, a.confidence
        (True, 'It is yours. [1]', 0.9)
        >>> compose("q?", Ranking([p("It is yours.", 1.5)], 0.1, 0.3), Settings()).found
        False
    """
    if isinstance(ranking, Ranking):
        passages, confidence, threshold = ranking.passages, ranking.confidence, ranking.threshold
    else:
        passages, confidence, threshold = list(ranking), None, None
    sentences = [p for p in passages if not is_label(p.text)]
    if threshold is not None and settings.answer_threshold is not None:
        threshold = settings.answer_threshold
    learned = confidence is not None and threshold is not None
    if learned:
        declined = not sentences or confidence < threshold  # type: ignore[operator]
        margin = SCORER_MARGIN if settings.answer_margin is None else settings.answer_margin
        floor = -float("inf")
    else:
        declined = not sentences or sentences[0].score < settings.min_score
        margin = FUSION_MARGIN if settings.answer_margin is None else settings.answer_margin
        floor = settings.min_score
    if declined:
        return Answer(question, NOT_FOUND, False, [], list(passages[:3]), confidence, threshold)
    floor = max(floor, sentences[0].score - margin)
    cited = [p for p in sentences[: settings.answer_sentences] if p.score >= floor]
    text = " ".join(f"{p.text} [{n}]" for n, p in enumerate(cited, start=1))
    return Answer(question, text, True, cited, [], confidence, threshold)


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
    text = check_question(question, s)
    k = check_k(k)
    doc_ids = check_doc_ids(docs)
    idx = open_index(index, settings=s)
    ranking = idx.rankings([text], k=max(k or s.k, s.answer_sentences), docs=doc_ids, context=s.context,
                           scorer=s.scorer)[0]
    return compose(text, ranking, s)
