"""Choose the fusion weights: a grid over the four channels, scored on the data we have.

For each weight setting it reports MRR@10 and R@5 on SQuAD (ReQA setting, our segmenter), the same on the
SQuAD questions whose words barely overlap the answer sentence (a stand-in for search-engine queries, where
too much keyword weight hurts), and R@1 on the bundled article's dev questions. Weights apply at query time,
so each index is built once.

    python benchmarks/weights.py [--grid full|reference] [--squad-index DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Iterable
from pathlib import Path

from _common import ROOT, SHARED, gold_rows, ranks, summary

import qa
from qa.embedding import get_encoder
from qa.evaluation import load_questions
from qa.lexical import tokenize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad-index", type=Path, default=ROOT / "index" / "bench-squad")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/weights[_reference].json")
    ap.add_argument("--grid", choices=["full", "reference"], default="full",
                    help="full: the 81-point grid; reference: the defaults, each channel alone, and dense-heavier "
                         "mixes (a few minutes)")
    args = ap.parse_args()
    if args.out is None:
        name = "weights.json" if args.grid == "full" else "weights_reference.json"
        args.out = ROOT / "benchmarks" / "results" / name
    if not (args.squad_index / "manifest.json").is_file():
        t0 = time.perf_counter()
        qa.Index.build([SHARED / "squad" / "docs.jsonl"], args.squad_index)
        print(f"built {args.squad_index} in {time.perf_counter() - t0:.0f} s")
    squad_index, article_index = qa.Index.load(args.squad_index), qa.open_index()
    squad = load_questions(SHARED / "squad" / "questions.jsonl")
    article = [q for q in load_questions(SHARED / "seed" / "questions.jsonl") if q.answerable]
    encoder = get_encoder()
    squad_vectors = encoder.encode_queries([q.question for q in squad])
    article_vectors = encoder.encode_queries([q.question for q in article])

    squad_gold, article_gold = gold_rows(squad_index, squad), gold_rows(article_index, article)
    # Low-overlap subset: at most a quarter of the question's stemmed words occur in its answer sentence.
    # None: no stemmed question word occurs in the answer sentence at all.
    low, none = [], []
    for i, (q, g) in enumerate(zip(squad, squad_gold, strict=True)):
        words = set(tokenize(q.question))
        answer_words = {w for r in g for w in tokenize(squad_index.passage(r, 0.0, context=0).text)}
        if g and words and len(words & answer_words) / len(words) <= 0.25:
            low.append(i)
        if g and words and not words & answer_words:
            none.append(i)
    print(f"{len(squad)} SQuAD questions, {len(low)} with low word overlap ({len(none)} with none); "
          f"{len(article)} article questions")

    d = qa.get_settings()
    defaults = (d.weight_bm25, d.weight_bm25_context, d.weight_dense, d.weight_dense_context)
    grid: Iterable[tuple[float, ...]]
    if args.grid == "full":
        grid = itertools.product([0.5, 1.0, 1.5], [0.0, 0.25, 0.5], [0.25, 0.5, 1.0], [0.25, 0.5, 1.0])
    else:
        grid = [defaults, (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1), (0, 0, 1, 0.25),
                (1, 0.5, 0.5, 0.5), (0.5, 0.25, 0.5, 0.5), (1, 0.5, 1, 0.5), (0.5, 0.25, 1, 0.5)]
    results = []
    for wb, wbc, wd, wdc in grid:
        if wb + wbc + wd + wdc == 0:
            continue
        s = qa.get_settings(weight_bm25=wb, weight_bm25_context=wbc, weight_dense=wd, weight_dense_context=wdc)
        squad_index.settings = article_index.settings = s
        rk = ranks(squad_index, squad, squad_vectors, squad_gold)
        row = {
            "weights": {"bm25": wb, "bm25_context": wbc, "dense": wd, "dense_context": wdc},
            "squad": summary(rk),
            "squad_low_overlap": summary([rk[i] for i in low]),
            "squad_no_overlap": summary([rk[i] for i in none]),
            "article": summary(ranks(article_index, article, article_vectors, article_gold)),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    results.sort(key=lambda r: -(r["squad"]["MRR@10"] + r["squad_low_overlap"]["MRR@10"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"grid_kind": args.grid, "defaults": defaults, "squad_questions": len(squad),
                                    "low_overlap_questions": len(low), "no_overlap_questions": len(none),
                                    "grid": results}, indent=1) + "\n")
    print("best by SQuAD MRR + low-overlap MRR:")
    for r in results[:10]:
        print(r)


if __name__ == "__main__":
    main()
