"""Milvus Lite against FAISS on SQuAD dev (shared): the same index, ranked by each store.

    python benchmarks/milvus.py [--cache /tmp/milvus-bench] [--questions 5696] [--squad ../shared/eval/squad]
    QA_MILVUS_LEXICAL=local python benchmarks/milvus.py --out milvus_local_bm25.json   # BM25 rebuilt locally

Builds (or reuses, from ``--cache``) qa's FAISS index of the 1,048 SQuAD paragraphs, saves it to a Milvus Lite
file (``milvus:<cache>/bench.db#squad``) and loads it back; then ranks every question with both (``Index.rank``
on the same question vectors: the retrieval cost without the model) and reports how often they agree on the
top sentence, each one's MRR@10 and R@k, the time to save into Milvus and to load from it, and rank latency
p50/p99. Writes ``benchmarks/results/milvus.json`` (``--out``). The BM25 channels are Milvus sparse vectors
unless ``QA_MILVUS_LEXICAL=local`` (the setting ``milvus_lexical``): the result's ``lexical`` says which. The
issue asks: same top-1 for >= 97% of questions, MRR@10 within 0.01.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import SHARED, gold_rows, machine, percentile, summary, write

import qa
from qa.embedding import get_encoder
from qa.evaluation import load_questions
from qa.index import milvus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/milvus-bench"))
    ap.add_argument("--questions", type=int, default=0, help="only the first N questions (0: all)")
    ap.add_argument("--squad", type=Path, default=SHARED / "squad", help="the shared SQuAD folder")
    ap.add_argument("--out", default="milvus.json", help="result file name under benchmarks/results/")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    folder = args.cache / "squad-faiss"
    t = time.perf_counter()
    faiss_index = qa.Index.load(folder) if folder.is_dir() else qa.Index.build([args.squad / "docs.jsonl"],
                                                                              folder)
    faiss_s = time.perf_counter() - t
    location = f"milvus:{args.cache}/bench.db#squad"
    t = time.perf_counter()
    faiss_index.save(location)
    save_s = time.perf_counter() - t
    milvus.close(location)  # a fresh process's view: start Lite, read the generation
    t = time.perf_counter()
    remote = qa.Index.load(location)
    load_s = time.perf_counter() - t
    questions = load_questions(args.squad / "questions.jsonl")
    if args.questions:
        questions = questions[: args.questions]
    vectors = get_encoder(faiss_index.settings).encode_queries([q.question for q in questions])
    gold = gold_rows(faiss_index, questions)
    ranks: dict[str, list[int | None]] = {"faiss": [], "milvus": []}
    times: dict[str, list[float]] = {"faiss": [], "milvus": []}
    same_top1 = 0
    for q, v, g in zip(questions, vectors, gold, strict=True):
        tops = {}
        for name, index in (("faiss", faiss_index), ("milvus", remote)):
            t = time.perf_counter()
            rows, _ = index.rank(q.question, v, k=10)
            times[name].append(1000 * (time.perf_counter() - t))
            ranks[name].append(next((i for i, r in enumerate(rows.tolist(), 1) if r in g), None))
            tops[name] = int(rows[0]) if len(rows) else -1
        same_top1 += tops["faiss"] == tops["milvus"]
    result = {
        "what": "qa's SQuAD dev index (1,048 paragraphs) ranked by FAISS and by Milvus Lite 2.5.1 (FLAT IP)",
        "lexical": remote.manifest["channels"]["bm25"].get("lexical", "local"),
        "sentences": len(faiss_index),
        "questions": len(questions),
        "same_top1": round(same_top1 / len(questions), 4),
        "faiss": {**summary(ranks["faiss"]), "rank_ms_p50": round(percentile(times["faiss"], 50), 2),
                  "rank_ms_p99": round(percentile(times["faiss"], 99), 2)},
        "milvus": {**summary(ranks["milvus"]), "rank_ms_p50": round(percentile(times["milvus"], 50), 2),
                   "rank_ms_p99": round(percentile(times["milvus"], 99), 2)},
        "faiss_build_or_load_s": round(faiss_s, 2),
        "milvus_save_s": round(save_s, 2),
        "milvus_load_s": round(load_s, 2),
        "machine": machine(),
    }
    milvus.close(location)
    print(f"{result['sentences']} sentences, {result['questions']} questions: same top-1 {result['same_top1']:.2%}")
    for name in ("faiss", "milvus"):
        r = result[name]
        print(f"{name:7s} MRR@10 {r['MRR@10']:.4f} R@1 {r['R@1']:.4f} R@10 {r['R@10']:.4f}  "
              f"rank p50 {r['rank_ms_p50']} ms p99 {r['rank_ms_p99']} ms")
    print(f"milvus save {save_s:.1f} s, load {load_s:.1f} s")
    write(args.out, result)


if __name__ == "__main__":
    main()
