"""Recall@10 of qa's approximate FAISS index against exact search, on a built index and its source vectors.

    python benchmarks/recall.py index/bench-qa-1m index/bench-corpus/synthetic-1m/vectors.npy [--queries 200]

Queries are real SQuAD questions encoded by qa's encoder; "exact" is brute-force inner product over the
float32 source vectors; the approximate result is the index's own FAISS search of the sentence channel with
the nprobe qa chose. Prints the figure and writes ``benchmarks/results/recall.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np
from _common import SHARED, machine, write

import qa
from qa.embedding import get_encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("vectors", type=Path)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    index = qa.Index.load(args.index)
    source = np.load(args.vectors, mmap_mode="r")
    questions = [json.loads(line)["question"]
                 for line in (SHARED / "squad" / "questions.jsonl").read_text().splitlines()[: args.queries]]
    queries = get_encoder(index.settings).encode_queries(questions)
    exact = faiss.IndexFlatIP(source.shape[1])
    for start in range(0, len(source), 100_000):  # in slices: the float32 matrix is 1.5 GB at 1M
        exact.add(np.ascontiguousarray(source[start:start + 100_000], dtype=np.float32))
    _, truth = exact.search(queries, 10)
    t0 = time.perf_counter()
    approx = index.search_vectors(queries, k=10, channel="dense")
    seconds = time.perf_counter() - t0
    recall = float(np.mean([len(set(a.rows.tolist()) & set(t)) / 10
                            for a, t in zip(approx, truth.tolist(), strict=True)]))
    store = index.vector_store("dense")
    result = {"index": str(args.index), "sentences": len(index), "queries": len(questions),
              "faiss": store.describe(), "nprobe": getattr(store, "nprobe", None),
              "recall_at_10": round(recall, 4), "search_ms_per_query": round(1000 * seconds / len(questions), 2)}
    print(result)
    write("recall.json", {"machine": machine(), "results": result})


if __name__ == "__main__":
    main()
