"""Encoding speed and retrieval quality of each embedding backend: torch, onnx and onnx-int8.

On the SQuAD evaluation set (``../shared/eval/squad``):

* throughput: sentences per second embedding the paragraphs' sentences (split by ``qa.sentences.split``) with
  ``Encoder.encode_documents``; the backends take turns within each of ``--runs`` rounds, median reported;
* query latency: one question at a time through ``Encoder.encode_queries``, the backends taking turns on each
  of ``--queries`` questions, median and p90;
* agreement: cosine similarity of each backend's sentence vectors with torch's;
* retrieval quality: ``qa.Index.build`` of ``docs.jsonl`` with each backend, then ``qa.evaluation.evaluate``
  on ``questions.jsonl`` (MRR@10 and recall over the full pipeline), with the build time; and abstention
  (``min_score`` was calibrated with torch): the share of SQuAD questions answered, and on the bundled article
  the dev questions (``../shared/eval/seed``) found or declined;
* the one-off ONNX export: into a fresh cache folder, cold (load + export) and warm (load from the cache).

Prints a summary and writes ``benchmarks/results/encoding.json``. The machine may be shared: the load average
at start and end is recorded, and only ratios measured in the same run should be compared.

    python benchmarks/encoding.py [--runs 3] [--queries 200] [--sentences 0] [--part all|speed|quality]

``--part speed`` and ``--part quality`` can run one after the other (or side by side, their timings then
share the machine): each replaces its own sections of an existing ``encoding.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, SHARED, machine, median, percentile, write

import qa
from qa.documents import default_document
from qa.embedding import Encoder, get_encoder, resolve_model
from qa.evaluation import evaluate, load_questions
from qa.sentences import split

BACKENDS = ("torch", "onnx", "onnx-int8")
SQUAD = SHARED / "squad"


def squad_sentences(limit: int) -> list[str]:
    """The sentences of the SQuAD paragraphs as qa splits them (``limit`` of them evenly spread; 0: all)."""
    out = []
    for line in (SQUAD / "docs.jsonl").read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        out.extend(text[a:b] for a, b in split(text))
    if not limit or limit >= len(out):
        return out
    return [out[i] for i in np.linspace(0, len(out) - 1, limit).round().astype(int)]


def throughput(encoders: dict[str, Encoder], sentences: list[str], runs: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {b: [] for b in encoders}
    vectors: dict[str, np.ndarray] = {}
    for r in range(runs):
        for backend, encoder in encoders.items():
            t0 = time.perf_counter()
            vectors[backend] = encoder.encode_documents(sentences, progress=False)
            times[backend].append(time.perf_counter() - t0)
            print(f"  run {r + 1}/{runs} {backend:<10} {len(sentences) / times[backend][-1]:7.1f} sentences/s")
    out: dict[str, Any] = {}
    for backend, ts in times.items():
        out[backend] = {
            "runs_s": [round(t, 3) for t in ts],
            "median_s": round(median(ts), 3),
            "sentences_per_s": round(len(sentences) / median(ts), 1),
            # Per-round ratios: both backends ran back to back, so the machine's load is shared alike.
            "speedup_vs_torch_per_run": [round(t / b, 3) for t, b in zip(times["torch"], ts, strict=True)],
            "speedup_vs_torch": round(median([t / b for t, b in zip(times["torch"], ts, strict=True)]), 3),
        }
        cos = (vectors[backend] * vectors["torch"]).sum(axis=1)
        out[backend]["cosine_to_torch"] = {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5)}
    return out


def query_latency(encoders: dict[str, Encoder], questions: list[str]) -> dict[str, Any]:
    for encoder in encoders.values():  # warm up (sessions, allocators)
        encoder.encode_queries(questions[:3])
    ms: dict[str, list[float]] = {b: [] for b in encoders}
    for q in questions:
        for backend, encoder in encoders.items():
            t0 = time.perf_counter()
            encoder.encode_queries([q])
            ms[backend].append((time.perf_counter() - t0) * 1000)
    return {
        b: {
            "p50_ms": round(median(v), 2),
            "p90_ms": round(percentile(v, 90), 2),
            "speedup_vs_torch": round(median(ms["torch"]) / median(v), 3),
        }
        for b, v in ms.items()
    }


def quality(backends: tuple[str, ...]) -> dict[str, Any]:
    questions = load_questions(SQUAD / "questions.jsonl")
    seed_questions = load_questions(SHARED / "seed" / "questions.jsonl")
    out: dict[str, Any] = {}
    for backend in backends:
        settings = qa.get_settings(backend=backend)
        t0 = time.perf_counter()
        index = qa.Index.build([SQUAD / "docs.jsonl"], settings=settings, progress=False)
        build_s = time.perf_counter() - t0
        report = evaluate(questions, index, settings=settings)
        article_index = qa.Index.build([default_document()], settings=settings, progress=False)
        seed = evaluate(seed_questions, article_index, settings=settings)
        out[backend] = {
            "mrr_at_10": round(report.mrr_at_10, 4),
            "recall": {k: round(v, 4) for k, v in report.recall.items()},
            "answerable": report.answerable,
            # Abstention (min_score was calibrated with torch): answers given on SQuAD, and on the bundled
            # article's dev questions the answerable ones found and the unanswerable ones declined.
            "found_rate": round(report.answerable_found / max(report.answerable, 1), 4),
            "article": {
                "mrr_at_10": round(seed.mrr_at_10, 4),
                "answerable_found": f"{seed.answerable_found}/{seed.answerable}",
                "unanswerable_declined": f"{seed.unanswerable_declined}/{seed.unanswerable}",
            },
            "sentences": len(index),
            "build_s": round(build_s, 1),
            "search_latency_ms_p50": round(report.latency_ms_p50, 2),
        }
        print(f"  {backend:<10} MRR@10 {report.mrr_at_10:.4f}  {report.recall}  build {build_s:.0f} s")
    return out


def add_deltas(quality: dict[str, Any]) -> None:
    """MRR@10 of each backend minus torch's."""
    if "torch" in quality:
        for figures in quality.values():
            figures["mrr_delta_vs_torch"] = round(figures["mrr_at_10"] - quality["torch"]["mrr_at_10"], 4)


def one_off_export() -> dict[str, Any]:
    """Time the first use of each ONNX backend with an empty cache, then a second, cached, load."""
    spec = resolve_model(qa.get_settings().model)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qa-onnx-bench-") as tmp:
        for backend in ("onnx", "onnx-int8"):
            cache = Path(tmp) / backend  # each backend from nothing: int8 includes the float export
            t0 = time.perf_counter()
            encoder = Encoder(spec, backend=backend, cache_dir=cache)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            Encoder(spec, backend=backend, cache_dir=cache)
            warm = time.perf_counter() - t0
            assert encoder.onnx_path is not None
            info = json.loads((encoder.onnx_path.parent / "export.json").read_text(encoding="utf-8"))
            out[backend] = {
                "first_load_s": round(cold, 1),
                "cached_load_s": round(warm, 1),
                "export_step_s": info["export_seconds"],
                "file_mb": round(encoder.onnx_path.stat().st_size / 1e6, 1),
            }
            step = info["export_seconds"]
            print(f"  {backend:<10} first load {cold:.1f} s (export step {step} s), cached {warm:.1f} s")
    t0 = time.perf_counter()
    Encoder(spec, backend="torch")
    out["torch"] = {"load_s": round(time.perf_counter() - t0, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="throughput rounds (median reported)")
    ap.add_argument("--queries", type=int, default=200, help="questions for single-query latency")
    ap.add_argument("--sentences", type=int, default=0, help="sentences for throughput (0: all)")
    ap.add_argument("--part", choices=("all", "speed", "quality"), default="all")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="for the quality part: comma-separated")
    args = ap.parse_args()

    load_start = os.getloadavg()
    result: dict[str, Any] = {"machine": {**machine(), "onnxruntime": __import__("onnxruntime").__version__}}
    loads = {args.part: {"start": [round(x, 2) for x in load_start]}}
    if args.part in ("all", "speed"):
        speed(result, args)
    if args.part in ("all", "quality"):
        print("retrieval quality: full pipeline on SQuAD, one index per backend")
        result["quality"] = quality(tuple(args.backends.split(",")))
    loads[args.part]["end"] = [round(x, 2) for x in os.getloadavg()]
    path = RESULTS / "encoding.json"
    if args.part != "all" and path.is_file():  # read only now: the other part may have finished meanwhile
        earlier = json.loads(path.read_text(encoding="utf-8"))
        loads = {**earlier.get("load_average", {}), **loads}
        if "quality" in result and "quality" in earlier:  # keep the backends this run did not evaluate
            result["quality"] = {**earlier["quality"], **result["quality"]}
        result = {**earlier, **result}
    result["load_average"] = loads
    add_deltas(result.get("quality", {}))

    print(f"\n{'backend':<10} {'sent/s':>8} {'x torch':>8} {'query p50':>10} {'x torch':>8} {'MRR@10':>8} {'delta':>8}")
    nan = float("nan")
    for b in BACKENDS:
        t = result.get("throughput", {}).get(b, {})
        q = result.get("query_latency", {}).get(b, {})
        m = result.get("quality", {}).get(b, {})
        print(f"{b:<10} {t.get('sentences_per_s', nan):>8.1f} {t.get('speedup_vs_torch', nan):>8.2f} "
              f"{q.get('p50_ms', nan):>8.1f}ms {q.get('speedup_vs_torch', nan):>8.2f} "
              f"{m.get('mrr_at_10', nan):>8.4f} {m.get('mrr_delta_vs_torch', nan):>+8.4f}")
    print(f"load average: {loads}")
    print(f"wrote {write('encoding.json', result)}")


def speed(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Throughput, single-query latency and the one-off export, into ``result``."""
    print("loading encoders (exports once per machine into the model cache)")
    encoders = {b: get_encoder(qa.get_settings(backend=b)) for b in BACKENDS}
    sentences = squad_sentences(args.sentences)
    lengths = [len(s) for s in sentences]
    result["sentences"] = {"count": len(sentences), "mean_chars": round(float(np.mean(lengths)), 1)}
    print(f"throughput on {len(sentences)} SQuAD sentences, {args.runs} interleaved rounds")
    result["throughput"] = throughput(encoders, sentences, args.runs)

    questions = [q.question for q in load_questions(SQUAD / "questions.jsonl")][: args.queries]
    print(f"single-query latency over {len(questions)} questions")
    result["query_latency"] = query_latency(encoders, questions)

    print("one-off export into an empty cache")
    result["export"] = one_off_export()


if __name__ == "__main__":
    main()
