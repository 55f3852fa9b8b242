"""Helpers shared by the benchmark scripts: ranking with cached query vectors, metric summaries, a free port."""

from __future__ import annotations

import json
import platform
import socket
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "eval"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa.evaluation import EvalQuestion, is_correct  # noqa: E402


def gold_rows(index: qa.Index, questions: list[EvalQuestion]) -> list[set[int]]:
    """For each question, the index rows whose sentence is a correct answer (by qa.evaluation.is_correct)."""
    out = []
    for q in questions:
        candidates = index.rows_of([q.doc_id]) if q.doc_id else range(len(index))
        out.append({int(r) for r in candidates if is_correct(q, index.passage(int(r), 0.0, context=0))})
    return out


def ranks(index: qa.Index, questions: list[EvalQuestion], vectors: np.ndarray, gold: list[set[int]],
          k: int = 10) -> list[int | None]:
    """1-based rank of the first correct row in the top ``k`` for each question (None: not found)."""
    out = []
    for q, v, g in zip(questions, vectors, gold, strict=True):
        rows, _ = index.rank(q.question, v, k=k)
        out.append(next((i for i, r in enumerate(rows.tolist(), 1) if r in g), None))
    return out


def summary(rk: list[int | None]) -> dict[str, float]:
    n = max(len(rk), 1)
    return {
        "R@1": round(sum(r == 1 for r in rk if r) / n, 4),
        "R@5": round(sum(r <= 5 for r in rk if r) / n, 4),
        "R@10": round(sum(r <= 10 for r in rk if r) / n, 4),
        "MRR@10": round(sum(1 / r for r in rk if r) / n, 4),
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def machine() -> dict[str, Any]:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the benchmarks' servers bind only that address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
