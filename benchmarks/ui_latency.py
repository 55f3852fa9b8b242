"""End-to-end latency of a question through the web app: the median of 20 ``/ask`` calls made with gradio_client.

Starts the real app (bundled article, real model and FAISS index) on 127.0.0.1 on a free port, warms it up
with one call, then times each call from ``Client.predict`` to its returned JSON (HTTP, queue, retrieval,
answer composition and JSON round trip included). Prints a summary and writes
``benchmarks/results/ui_latency.json``.

Usage: ``python benchmarks/ui_latency.py [--runs 20] [--out PATH]``
"""

from __future__ import annotations

import os

# No telemetry or hub look-ups: gradio_client builds Hugging Face headers, which may otherwise go online.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from _common import free_port

QUESTIONS = [
    "Who led the delegation of US lawmakers that visited Pakistan?",
    "What plan has Pakistan devised to counter terrorism?",
    "Who did Interior Minister Mohsin Naqvi meet?",
    "When did the US withdraw from Afghanistan?",
    "How did Tariq Fatmi feel about his talks in Washington?",
    "Who won the 2022 FIFA World Cup?",
    "Which agency implements the National Action Plan?",
    "What does Pakistan seek in its relationship with the US?",
    "Since when has Pakistan been a major non-NATO ally?",
    "Which provinces saw a surge in terrorism?",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="timed calls (default 20)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "ui_latency.json", help="result file"
    )
    args = parser.parse_args()

    import gradio
    import gradio_client
    from gradio_client import Client

    import qa
    from qa import web as ui

    settings = qa.get_settings()
    started = time.perf_counter()
    app = ui.build_app(settings=settings)
    url = ui.launch(app, port=free_port(), settings=settings, block=False, quiet=True)
    startup = time.perf_counter() - started
    try:
        client = Client(url, verbose=False, analytics_enabled=False)
        client.predict(QUESTIONS[0], api_name="/ask")  # warm-up, not timed
        timings, found = [], 0
        for i in range(args.runs):
            question = QUESTIONS[i % len(QUESTIONS)]
            t0 = time.perf_counter()
            result = client.predict(question, api_name="/ask")
            timings.append(time.perf_counter() - t0)
            found += bool(result["found"])
    finally:
        app.close()

    ms = sorted(t * 1000 for t in timings)
    summary = {
        "what": "end-to-end /ask latency through the Gradio app with gradio_client (one client, sequential calls)",
        "runs": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "answers_found": found,
        "startup_s": round(startup, 2),
        "questions": QUESTIONS,
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "gradio": gradio.__version__,
            "gradio_client": gradio_client.__version__,
            "qa": qa.__version__,
            "model": settings.model,
            "device": settings.device,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"/ask end to end over {summary['runs']} calls: median {summary['median_ms']} ms, "
        f"p90 {summary['p90_ms']} ms (min {summary['min_ms']}, max {summary['max_ms']}); "
        f"app start-up {summary['startup_s']} s; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
