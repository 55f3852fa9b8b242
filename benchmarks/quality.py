"""How good is it: answer quality of ``qa`` on every shared dev set, for each model, against its targets.

For each model (``minilm``: the default all-MiniLM-L6-v2; ``mpnet``: the accurate all-mpnet-base-v2 of
``qa[accurate]``, skipped with a note when not installed) it builds the indexes (default settings otherwise) and
ranks every question three ways: the learned scorer (``scorer=auto``), fixed fusion (``scorer=fusion``) and
dense cosine alone (fusion with only the sentence vectors), then prints and writes:

* WikiQA dev (real search-engine queries; open pool of all 2,708 sentences): MRR@10, R@1 over the 126
  answerable questions, and answer triggering over all 296 (precision, recall, F1);
* the bundled article: its dev questions (copying its words) R@1 and MRR@10, and its paraphrases (rewording
  them) R@1, MRR@10, near-topic unanswerables declined and answerable questions answered;
* SQuAD v1.1 dev articles 0-23 (ReQA setting, open pool): MRR@10, R@1.

Answer triggering (shared eval README): a question counts as answered correctly when an answer is given and
its first citation is a correct sentence; precision = correct / answered, recall = correct / questions with a
correct sentence. "Answered" is :func:`qa.answer`'s own decision (the scorer's confidence against its
threshold; under fusion, ``min_score``). WikiQA is research-only data: it is evaluated here, never trained on.

    python benchmarks/quality.py [--models minilm,mpnet] [--squad-questions N]

Writes ``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

from _common import SHARED, machine, write

import qa
from qa.answer import compose
from qa.config import DEFAULT_MODEL
from qa.evaluation import EvalQuestion, is_correct, load_questions

MODELS = {"minilm": DEFAULT_MODEL, "mpnet": "sentence-transformers/all-mpnet-base-v2"}
RANKERS = ("scorer", "fusion", "dense")

#: The issue's targets (issue 16), per model: (set, metric, ranker) -> least acceptable value.
TARGETS: dict[str, dict[tuple[str, str], float]] = {
    "minilm": {("wikiqa", "MRR@10"): 0.73, ("wikiqa", "F1"): 0.42, ("paraphrase", "R@1"): 0.75,
               ("paraphrase", "declined_share"): 2 / 3, ("paraphrase", "answered_share"): 0.90,
               ("squad", "MRR@10"): 0.80, ("seed", "R@1"): 0.90},
    "mpnet": {("wikiqa", "MRR@10"): 0.79, ("wikiqa", "F1"): 0.47, ("paraphrase", "R@1"): 0.75,
              ("paraphrase", "declined_share"): 2 / 3, ("paraphrase", "answered_share"): 0.90,
              ("squad", "MRR@10"): 0.80, ("seed", "R@1"): 0.90},
}


def ranker_settings(base: qa.Settings, ranker: str) -> qa.Settings:
    """The settings that make ``ranker`` rank: the scorer, fixed fusion, or fusion of the sentence vectors alone."""
    if ranker == "scorer":
        return base.replace(scorer="auto")
    if ranker == "fusion":
        return base.replace(scorer="fusion")
    return base.replace(scorer="fusion", weight_bm25=0.0, weight_bm25_context=0.0, weight_dense_context=0.0)


def evaluate(index: qa.Index, questions: Sequence[EvalQuestion], s: qa.Settings) -> dict[str, Any]:
    """Ranking and answer-triggering figures of ``questions`` on ``index`` under settings ``s``."""
    index.settings = s  # the fusion weights are read from the index's settings
    rankings: list[qa.Ranking] = []
    for at in range(0, len(questions), 256):
        chunk = questions[at:at + 256]
        rankings.extend(index.rankings([q.question for q in chunk], k=10, scorer=s.scorer))
    rr, first, answered, correct, declined = [], [], 0, 0, 0
    answerable = [q for q in questions if q.answerable]
    for q, ranking in zip(questions, rankings, strict=True):
        a = compose(q.question, ranking, s)
        if not q.answerable:
            declined += not a.found
            continue
        rank = next((i for i, p in enumerate(ranking.passages, 1) if is_correct(q, p)), None)
        rr.append(1.0 / rank if rank else 0.0)
        first.append(rank == 1)
        answered += a.found
        correct += a.found and bool(a.citations) and is_correct(q, a.citations[0])
    answered_all = answered + (len(questions) - len(answerable) - declined)
    n = max(len(answerable), 1)
    precision, recall = correct / max(answered_all, 1), correct / n
    return {
        "questions": len(questions), "answerable": len(answerable),
        "MRR@10": round(sum(rr) / n, 4), "R@1": round(sum(first) / n, 4),
        "answered": answered_all, "answerable_answered": answered,
        "answered_share": round(answered / n, 4),
        "unanswerable": len(questions) - len(answerable), "declined": declined,
        "declined_share": round(declined / max(len(questions) - len(answerable), 1), 4),
        "P": round(precision, 4), "R": round(recall, 4),
        "F1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
    }


def model_figures(model: str, squad_questions: int) -> dict[str, Any]:
    base = qa.get_settings(model=model)
    sets = {
        "wikiqa": ([SHARED / "wikiqa_dev" / "docs.jsonl"],
                   load_questions(SHARED / "wikiqa_dev" / "questions_all.jsonl")),
        # The bundled article as the app indexes it (with its title, which the lexical channels read).
        "seed": ([qa.default_document()], load_questions(SHARED / "seed" / "questions.jsonl")),
        "paraphrase": ([qa.default_document()], load_questions(SHARED / "seed" / "paraphrase.jsonl")),
        "squad": ([SHARED / "squad" / "docs.jsonl"],
                  load_questions(SHARED / "squad" / "questions.jsonl")[:squad_questions or None]),
    }
    out: dict[str, Any] = {"model": model, "sets": {}, "build_s": {}}
    built: dict[str, qa.Index] = {}
    for name, (sources, questions) in sets.items():
        key = str(sources[0]) if not isinstance(sources[0], qa.Document) else "article"
        if key not in built:
            t0 = time.perf_counter()
            built[key] = qa.Index.build(sources, settings=base, progress=False)
            out["build_s"][name] = round(time.perf_counter() - t0, 1)
        index = built[key]
        out["sets"][name] = {r: evaluate(index, questions, ranker_settings(base, r)) for r in RANKERS}
        index.settings = base
        if name == "squad":
            out["retrieve_ms"] = latency(index, questions[:200])
        print(f"{model}: {name} done ({len(questions)} questions, {len(index)} sentences)", flush=True)
    return out


def latency(index: qa.Index, questions: Sequence[EvalQuestion]) -> dict[str, float]:
    """``qa.retrieve`` latency (ms) with the learned scorer and with fusion, interleaved, after a warm-up."""
    times: dict[str, list[float]] = {"scorer": [], "fusion": []}
    for q in questions[:10]:
        qa.retrieve(q.question, index=index)
    for q in questions:
        for ranker, setting in (("scorer", "auto"), ("fusion", "fusion")):
            t0 = time.perf_counter()
            index.search(q.question, k=5, scorer=setting)
            times[ranker].append((time.perf_counter() - t0) * 1000)
    return {f"{r}_p50": round(statistics.median(v), 2) for r, v in times.items()} | {"questions": len(questions)}


def report(short: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print the figures of one model and check them against its targets (the scorer's figures)."""
    print(f"\n== {short}: {figures['model']}")
    print(f"{'set':<11} {'ranker':<7} {'MRR@10':>7} {'R@1':>6} {'answered':>9} {'declined':>9} "
          f"{'P':>6} {'R':>6} {'F1':>6}")
    for name, by_ranker in figures["sets"].items():
        for ranker, m in by_ranker.items():
            declined = f"{m['declined']}/{m['unanswerable']}" if m["unanswerable"] else "-"
            print(f"{name:<11} {ranker:<7} {m['MRR@10']:>7.3f} {m['R@1']:>6.3f} "
                  f"{m['answerable_answered']:>4}/{m['answerable']:<4} {declined:>9} "
                  f"{m['P']:>6.3f} {m['R']:>6.3f} {m['F1']:>6.3f}")
    print(f"build s: {figures['build_s']}; retrieve on SQuAD ({figures['sets']['squad']['scorer']['questions']} "
          f"questions' index) ms: {figures.get('retrieve_ms')}")
    checks = {}
    for (name, metric), least in TARGETS[short].items():
        got = figures["sets"][name]["scorer"][metric]
        checks[f"{name} {metric} >= {least:.3f}"] = {"got": got, "met": got >= least}
        print(f"target {name} {metric} >= {least:.3f}: {got:.3f} {'met' if got >= least else 'MISSED'}")
    return checks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="minilm,mpnet", help="comma-separated: minilm, mpnet")
    ap.add_argument("--squad-questions", type=int, default=0, help="first N SQuAD questions (0: all 5,696)")
    args = ap.parse_args()
    results: dict[str, Any] = {"machine": machine(), "models": {}}
    for short in args.models.split(","):
        model = MODELS[short]
        try:
            from qa.embedding import resolve_model

            resolve_model(model)
        except qa.QAError as exc:
            print(f"{short}: skipped ({exc})")
            results["models"][short] = {"skipped": str(exc)}
            continue
        figures = model_figures(model, args.squad_questions)
        figures["targets"] = report(short, figures)
        results["models"][short] = figures
    print(f"\nwrote {write('quality.json', results)}")


if __name__ == "__main__":
    main()
