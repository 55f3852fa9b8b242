"""The accurate model against the default one, per backend: dense-alone MRR@10 on WikiQA dev, and encode speed.

For each model (MiniLM, the default; MPNet, the accurate extra) and backend (torch, onnx, onnx-int8):

* quality: every sentence of WikiQA dev (its own sentence spans, 2,708 sentences) in one open pool, each of the
  126 answerable questions ranked against all of them by the cosine of the sentence embedding alone (no BM25,
  no windows); a sentence is correct when it is from the question's page and holds one of its answers.
  MRR@10, R@1, R@5, R@10, and the int8 cost (float MRR@10 minus int8 MRR@10);
* speed: sentences per second of ``encode_documents`` over those 2,708 sentences (after a warm-up), and the
  median time of one question (``encode_queries`` of one text).

Exports and the reassembled accurate model go to the usual model cache (made once). WikiQA is research-only:
this measures, nothing trained or shipped. Prints a table and writes ``benchmarks/results/accurate.json``.

    python benchmarks/accurate.py [--models minilm mpnet] [--backends torch onnx onnx-int8] [--merge] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
from _common import RESULTS, SHARED, machine, median, write

import qa
from qa.embedding import get_encoder
from qa.models import ACCURATE_MODEL

MODELS = {"minilm": qa.config.DEFAULT_MODEL, "mpnet": ACCURATE_MODEL}
BACKENDS = ("torch", "onnx", "onnx-int8")


def wikiqa(limit: int | None) -> tuple[list[str], list[tuple[str, int, int]], list[dict[str, Any]]]:
    """The pool's sentences, each one's (doc id, start, end), and the answerable questions."""
    folder = next((p for p in (SHARED, *[a / "shared" / "eval" for a in SHARED.parents]) if p.is_dir()), SHARED)
    folder = folder / "wikiqa_dev"  # the checkout's sibling shared/, or the nearest one above (a git worktree)
    texts, where = [], []
    for line in (folder / "docs.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        for start, end in doc["sentences"]:
            texts.append(doc["text"][start:end])
            where.append((doc["id"], start, end))
    questions = [json.loads(line) for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    if limit:
        questions = questions[:limit]
        keep = {q["doc_id"] for q in questions}
        rows = [i for i, w in enumerate(where) if w[0] in keep]
        texts, where = [texts[i] for i in rows], [where[i] for i in rows]
    return texts, where, questions


def quality(doc_vectors: np.ndarray, query_vectors: np.ndarray, where: list[tuple[str, int, int]],
            questions: list[dict[str, Any]]) -> dict[str, float]:
    ranks = []
    for q, v in zip(questions, query_vectors, strict=True):
        top = np.argsort(-(doc_vectors @ v), kind="stable")[:10]
        correct = [where[i][0] == q["doc_id"] and any(where[i][1] <= a < where[i][2] for a in q["answer_start"])
                   for i in top]
        ranks.append(next((r for r, ok in enumerate(correct, 1) if ok), None))
    n = len(ranks)
    return {
        "MRR@10": round(sum(1 / r for r in ranks if r) / n, 4),
        "R@1": round(sum(r == 1 for r in ranks if r) / n, 4),
        "R@5": round(sum(r <= 5 for r in ranks if r) / n, 4),
        "R@10": round(sum(r <= 10 for r in ranks if r) / n, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["minilm", "mpnet"])
    ap.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    ap.add_argument("--merge", action="store_true", help="keep the other runs already in accurate.json")
    ap.add_argument("--limit", type=int, default=None, help="only the first N questions and their pages (smoke)")
    args = ap.parse_args()

    texts, where, questions = wikiqa(args.limit)
    print(f"WikiQA dev: {len(texts)} sentences in the pool, {len(questions)} answerable questions")
    runs: dict[str, dict[str, Any]] = {}
    for model_key in args.models:
        for backend in args.backends:
            try:
                settings = qa.get_settings(model=MODELS[model_key], backend=backend)
            except qa.QAError as exc:  # onnx-int8 with MPNet: refused since it was measured here (0.0013 MRR@10)
                print(f"{model_key:<7} {backend:<10} refused: {exc}")
                continue
            t0 = time.perf_counter()
            encoder = get_encoder(settings)
            ready_s = time.perf_counter() - t0
            encoder.encode_documents(texts[:64], progress=False)  # warm-up (sessions, allocator)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            docs = encoder.encode_documents(texts, progress=False)
            encode_s = time.perf_counter() - t0
            queries = encoder.encode_queries([q["question"] for q in questions], progress=False)
            one = []
            for q in questions[:30]:
                t1 = time.perf_counter()
                encoder.encode_queries([q["question"]], progress=False)
                one.append((time.perf_counter() - t1) * 1000)
            row = {
                "model": settings.model, "backend": backend, "dimension": encoder.dimension,
                **quality(docs, queries, where, questions),
                "sentences_per_s": round(len(texts) / encode_s, 1),
                "encode_s": round(encode_s, 1),
                "question_ms_p50": round(median(one), 1),
                "load_or_export_s": round(ready_s, 1),
                "loadavg_1min_before": round(load, 2),
            }
            runs[f"{model_key}/{backend}"] = row
            print(f"{model_key:<7} {backend:<10} MRR@10 {row['MRR@10']:.4f}  R@1 {row['R@1']:.3f}  "
                  f"R@10 {row['R@10']:.3f}  {row['sentences_per_s']:>7.1f} sentences/s  "
                  f"question {row['question_ms_p50']:.1f} ms  (ready in {ready_s:.0f} s, load {load:.1f})",
                  flush=True)
    previous = RESULTS / "accurate.json"  # runs of other models/backends measured earlier are kept
    if args.merge and previous.is_file() and not args.limit:
        runs = {**json.loads(previous.read_text(encoding="utf-8")).get("runs", {}), **runs}
    int8_cost = {
        m: round(runs[f"{m}/torch"]["MRR@10"] - runs[f"{m}/onnx-int8"]["MRR@10"], 4)
        for m in MODELS if f"{m}/torch" in runs and f"{m}/onnx-int8" in runs
    }
    if int8_cost:
        print(f"int8 cost in MRR@10 (torch minus onnx-int8): {int8_cost}")
    out = write("accurate.json", {
        "what": "dense-alone MRR@10 on WikiQA dev (open pool of its 2,708 sentences, 126 answerable questions) "
                "and encode speed, per model and backend",
        "sentences": len(texts), "questions": len(questions), "limit": args.limit,
        "note": "one process per invocation; the machine is shared (see loadavg_1min_before of each run)",
        "runs": runs, "int8_cost_mrr10": int8_cost, "machine": machine(),
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
