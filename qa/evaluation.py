"""Evaluation: recall, MRR, abstention and latency of retrieval on a question file.

Two question formats are accepted, one JSON object a line:

* gold substrings: ``{"question", "gold": [str, ...], "answerable": bool, "doc_id"?}`` — a passage is correct
  when it contains one of the substrings (after collapsing white space);
* answer offsets (SQuAD): ``{"question", "doc_id", "answer_start": [int, ...]}`` — a passage is correct when
  it comes from ``doc_id`` and its ``[start, end)`` contains one of the offsets.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .answer import compose
from .config import Settings, get_settings
from .errors import DocumentError
from .index import Index, Passage, Ranking

__all__ = ["EvalQuestion", "EvalReport", "evaluate", "is_correct", "load_questions"]

_SPACE = re.compile(r"\s+")
RECALL_AT = (1, 3, 5, 10)


@dataclass(frozen=True)
class EvalQuestion:
    """One evaluation question with what counts as a right passage."""

    qid: str
    question: str
    answerable: bool
    doc_id: str | None = None
    gold: tuple[str, ...] = ()
    answer_starts: tuple[int, ...] = ()


@dataclass(frozen=True)
class EvalReport:
    """Figures of one evaluation run (recall and MRR over answerable questions)."""

    questions: int
    answerable: int
    recall: dict[str, float]
    mrr_at_10: float
    answerable_found: int
    unanswerable: int
    unanswerable_declined: int
    latency_ms_p50: float
    latency_ms_p99: float
    misses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def load_questions(path: str | Path) -> list[EvalQuestion]:
    """Read a question file in either format (see the module docstring)."""
    out = []
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DocumentError(f"cannot read questions file {file}: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            gold = tuple(str(g) for g in r.get("gold", []))
            starts = tuple(int(a) for a in r.get("answer_start", []))
            answerable = bool(r.get("answerable", bool(gold or starts)))
            out.append(
                EvalQuestion(str(r.get("id", number)), str(r["question"]), answerable, r.get("doc_id"), gold, starts)
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DocumentError(
                f"{file}:{number}: not a question record ({exc}); expected 'question' with 'gold' or 'answer_start'"
            ) from None
    return out


def is_correct(q: EvalQuestion, p: Passage) -> bool:
    """Whether passage ``p`` answers question ``q``."""
    if q.answer_starts:
        return p.doc_id == q.doc_id and any(p.start <= a < p.end for a in q.answer_starts)
    text = _collapse(p.text)
    return any(_collapse(g) in text for g in q.gold)


def evaluate(
    questions: Sequence[EvalQuestion],
    index: Index,
    *,
    settings: Settings | None = None,
    latency_sample: int = 100,
    batch_size: int = 256,
) -> EvalReport:
    """Rank the top 10 passages for each question and score them.

    Recall and MRR@10 count answerable questions; "found" uses the same abstention rule as :func:`qa.answer`.
    Latency is measured per question through single searches on the first ``latency_sample`` questions.
    """
    s = settings or get_settings()
    rankings: list[Ranking] = []
    for i in range(0, len(questions), batch_size):
        chunk = questions[i : i + batch_size]
        rankings.extend(index.rankings([q.question for q in chunk], k=10, scorer=s.scorer))
    hits = {n: 0 for n in RECALL_AT}
    reciprocal = 0.0
    found = declined = 0
    misses = []
    answerable = [q for q in questions if q.answerable]
    for q, ranking in zip(questions, rankings, strict=True):
        passages = ranking.passages
        is_found = compose(q.question, ranking, s).found
        if not q.answerable:
            declined += not is_found
            continue
        found += is_found
        rank = next((r for r, p in enumerate(passages, start=1) if is_correct(q, p)), None)
        if rank is None:
            misses.append(q.qid)
            continue
        reciprocal += 1.0 / rank
        for n in RECALL_AT:
            hits[n] += rank <= n
    timings = []
    for q in questions[:latency_sample]:
        t0 = time.perf_counter()
        index.search(q.question, k=s.k, scorer=s.scorer)
        timings.append((time.perf_counter() - t0) * 1000)
    n = max(len(answerable), 1)
    return EvalReport(
        questions=len(questions),
        answerable=len(answerable),
        recall={f"R@{k}": hits[k] / n for k in RECALL_AT},
        mrr_at_10=reciprocal / n,
        answerable_found=found,
        unanswerable=len(questions) - len(answerable),
        unanswerable_declined=declined,
        latency_ms_p50=statistics.median(timings) if timings else 0.0,
        latency_ms_p99=_percentile(timings, 99),
        misses=misses,
    )


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]
