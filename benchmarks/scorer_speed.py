"""What the learned scorer's features cost a question, against another revision's features, in the same run.

Builds (once, cached under ``--cache``) an index of the SQuAD dev paragraphs, encodes its first ``--questions``
questions once, then per round, interleaved so that machine load falls on both alike:

* ``features`` alone: :func:`qa.scoring.features` of each question's gathered candidates, with this checkout's
  features and with the features module of ``--against`` (loaded from ``git show REV:qa/scoring/features.py``);
* ``Index.rank`` end to end (query vector given: gathering, channel scores, features, ranking, confidence), with
  ``qa.scoring.features`` swapped between the two.

It first checks that both give the same values, bit for bit (``np.array_equal``), of the features they share and,
when their feature lists are the same, the same rows, scores and confidences under the shipped scorer; it stops if
not. With features added since ``--against``, ``Index.rank`` is timed with this checkout's features only (the
shipped scorer reads this checkout's feature list). Prints ms/question (median over rounds, whose
order alternates, of the mean over questions) and writes ``benchmarks/results/scorer_speed.json``.

    python benchmarks/scorer_speed.py [--against REV] [--questions N] [--rounds R] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, SHARED, machine, write

import qa
import qa.scoring
from qa.embedding import get_encoder
from qa.evaluation import load_questions
from qa.scoring.candidates import gather

BEFORE = "8428836"  # main before the question profile (features recomputed the question type per candidate)


def features_of(rev: str) -> tuple[Callable[..., np.ndarray], tuple[str, ...]]:
    """The ``features`` function of ``qa/scoring/features.py`` at git revision ``rev``, and its ``FEATURES``."""
    code = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:qa/scoring/features.py"], check=True,
                          capture_output=True, text=True).stdout
    module = types.ModuleType(f"features_at_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up while being defined
    exec(compile(code, f"{rev}:qa/scoring/features.py", "exec"), module.__dict__)  # our own history, from git
    return module.features, tuple(module.FEATURES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default=BEFORE, help=f"git revision to compare with (default {BEFORE})")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qa-scorer-speed"))
    args = parser.parse_args()

    shared = next((p for p in (SHARED, Path("/work/shared/eval")) if (p / "squad").is_dir()), SHARED)
    path = args.cache / "squad-index"
    if path.is_dir():
        index = qa.Index.load(path)
    else:
        args.cache.mkdir(parents=True, exist_ok=True)
        index = qa.Index.build([shared / "squad" / "docs.jsonl"], path, progress=False)
    questions = [q.question for q in load_questions(shared / "squad" / "questions.jsonl")[: args.questions]]
    vectors = get_encoder(index.settings).encode_queries(questions)
    scorer = index.scorer
    if scorer is None:
        raise SystemExit("this index ranks by fusion (no shipped scorer for its model): nothing to measure")
    gathered = []
    for q, v in zip(questions, vectors, strict=True):
        rows, scores = gather(index, q, v, k=10)
        texts = [p.text for p in index.passages(rows, np.zeros(len(rows)), context=0)]
        gathered.append((q, {c: np.asarray(s) for c, s in scores.items()}, texts))
    ours, ours_names = qa.scoring.features, qa.scoring.FEATURES
    theirs, theirs_names = features_of(args.against)
    common = [n for n in ours_names if n in theirs_names]
    mine, other = [ours_names.index(n) for n in common], [theirs_names.index(n) for n in common]

    def rank_with(fn: Callable[..., np.ndarray]) -> list[tuple[Any, ...]]:
        qa.scoring.features = fn  # type: ignore[assignment]  # Index._rank imports it from the package per call
        try:
            return [index._rank(q, v, k=10, allowed=None, lexical=None, proposed=None, scorer=scorer)
                    for q, v in zip(questions, vectors, strict=True)]
        finally:
            qa.scoring.features = ours  # type: ignore[assignment]

    same_x = all(np.array_equal(ours(*g)[:, mine], theirs(*g)[:, other]) for g in gathered)
    added = [n for n in ours_names if n not in theirs_names]
    same_rank: bool | None = None
    if ours_names == theirs_names:  # the same features: the shipped scorer must rank exactly alike
        a = rank_with(ours)
        b = rank_with(theirs)
        same_rank = all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) and x[2] == y[2]
                        for x, y in zip(a, b, strict=True))
    print(f"{len(questions)} questions, {np.mean([len(g[2]) for g in gathered]):.0f} candidates each on average; "
          f"same values of the {len(common)} common features: {same_x}; features added since: {added}; "
          f"same rows/scores/confidences: {'n/a (other features)' if same_rank is None else same_rank}", flush=True)
    if not same_x or same_rank is False:
        raise SystemExit("the two revisions' common features differ: not a pure speed-up")

    times: dict[str, list[float]] = {k: [] for k in ("features_before", "features_after", "rank_before",
                                                     "rank_after")}
    for r in range(args.rounds):  # the order alternates, so neither side always runs first
        for name, fn in (("before", theirs), ("after", ours))[:: 1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            for g in gathered:
                fn(*g)
            times[f"features_{name}"].append((time.perf_counter() - t0) * 1000 / len(gathered))
            if name == "after" or same_rank is not None:  # the shipped scorer cannot read other features
                t0 = time.perf_counter()
                rank_with(fn)
                times[f"rank_{name}"].append((time.perf_counter() - t0) * 1000 / len(questions))
    ms = {k: round(statistics.median(v), 3) for k, v in times.items() if v}
    for part in ("features", "rank"):
        if f"{part}_before" not in ms:
            print(f"{part:>8}: {ms[f'{part}_after']:.3f} ms/question now ({args.against}'s features cannot be ranked "
                  "by the shipped scorer)")
            continue
        print(f"{part:>8}: {ms[f'{part}_before']:.3f} ms/question at {args.against}, {ms[f'{part}_after']:.3f} "
              f"now ({ms[f'{part}_before'] - ms[f'{part}_after']:.3f} ms saved)")
    out = write("scorer_speed.json", {
        "what": "ms/question: median over rounds of the mean over questions; Index.rank with the query vector given",
        "against": args.against, "questions": len(questions), "rounds": args.rounds, "index_sentences": len(index),
        "mean_candidates": round(float(np.mean([len(g[2]) for g in gathered])), 1),
        "common_features_identical": same_x, "features_added": added, "rankings_identical": same_rank,
        "ms_per_question": ms,
        "rounds_ms": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "load_average_after": [round(x, 2) for x in os.getloadavg()], "machine": machine(),
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
