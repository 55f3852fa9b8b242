"""Choose the fusion weights: a grid over the four channels, scored on the data we have.

For each weight setting it reports MRR@10 and R@5 on SQuAD (ReQA setting, our segmenter), the same on the
SQuAD questions whose words barely overlap the answer sentence (a stand-in for search-engine queries, where
too much keyword weight hurts), and R@1 on the bundled article's dev questions. Weights apply at query time,
so each index is built once.

    python benchmarks/weights.py [--squad-index DIR] [--out benchmarks/results/weights.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from _common import ROOT, SHARED, gold_rows, ranks, summary

import qa
from qa.embedding import get_encoder
from qa.evaluation import load_questions
from qa.lexical import tokenize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad-index", type=Path, default=ROOT / "index" / "bench-squad")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "weights.json")
    args = ap.parse_args()
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
    low = []
    for i, (q, g) in enumerate(zip(squad, squad_gold, strict=True)):
        words = set(tokenize(q.question))
        answer_words = {w for r in g for w in tokenize(squad_index.passage(r, 0.0, context=0).text)}
        if g and words and len(words & answer_words) / len(words) <= 0.25:
            low.append(i)
    print(f"{len(squad)} SQuAD questions, {len(low)} with low word overlap; {len(article)} article questions")

    grid = itertools.product([0.5, 1.0, 1.5], [0.0, 0.25, 0.5], [0.25, 0.5, 1.0], [0.25, 0.5, 1.0])
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
            "article": summary(ranks(article_index, article, article_vectors, article_gold)),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    results.sort(key=lambda r: -(r["squad"]["MRR@10"] + r["squad_low_overlap"]["MRR@10"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"low_overlap_questions": len(low), "grid": results}, indent=1) + "\n")
    print("best by SQuAD MRR + low-overlap MRR:")
    for r in results[:10]:
        print(r)


if __name__ == "__main__":
    main()
