"""Huge ``k`` on a 100k-sentence index: what one hostile request costs, through the Python API and the app.

On main before the limits, one ``/retrieve`` with ``k = 10**9`` on a 1M-sentence index took 19 s, and eight at
once filled every answering slot. Now the app refuses a ``k`` over ``max_k`` (``QA_MAX_K``, default 100) before
any retrieval, and the Python API clips ``k`` to the index size. This script measures, on a 100k-sentence index
(generated text with synthetic vectors, as ``benchmarks/run.py`` makes it: embedding 100k sentences takes ~10
minutes here):

* ``qa.retrieve`` in process with ``k`` = 5, 100, 10**9 (clipped to the index size: every sentence, once);
* the real app in a child process (127.0.0.1, stopped by PID): ``/retrieve`` with ``k`` = 100 and 10**9
  (refused), timed from the client, and ``/ask`` right after, to show the slots are free.

Prints a table and writes ``benchmarks/results/hostile_queries.json``.

    python benchmarks/hostile_queries.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, free_port, machine, median, write

import qa

SIZE = 100_000
QUESTION = "Which economic sectors were discussed during the visit?"


def index_100k() -> Path:
    """The 100k synthetic index of ``benchmarks/run.py`` (made on first use, ~1 minute)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import corpus as C
    import run as R

    path = R.index_path(SIZE)
    if not (path / "manifest.json").is_file():
        R.synthetic_index(C.synthetic_corpus(SIZE, log=print), path)
    return path


def timed(fn: Any, runs: int) -> tuple[float, Any]:
    """Median wall time of ``runs`` calls (ms) and the last result."""
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(median(times), 1), out


def in_process(path: Path, runs: int) -> dict[str, Any]:
    index = qa.Index.load(path)
    qa.retrieve("warm up", index=index, k=5)
    out: dict[str, Any] = {"sentences": len(index)}
    for k in (5, 100, 10**9):
        ms, passages = timed(lambda k=k: qa.retrieve(QUESTION, index=index, k=k), runs)
        out[f"k={k}"] = {"median_ms": ms, "passages": len(passages)}
        print(f"qa.retrieve k={k:<12} {ms:>9.1f} ms  ({len(passages):,} passages)")
    return out


def through_app(path: Path, runs: int) -> dict[str, Any]:
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    child = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--index", str(path), "--port", str(port)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        assert child.stdout is not None
        for line in child.stdout:  # the app prints its address once it is listening
            if "answering at" in line:
                break
        else:
            raise RuntimeError(f"the app exited with code {child.wait()} before it listened")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        out: dict[str, Any] = {"max_k": qa.get_settings().max_k}
        ms, result = timed(lambda: client.predict(QUESTION, 100, api_name="/retrieve"), runs)
        out["retrieve k=100"] = {"median_ms": ms, "passages": len(result["passages"])}
        print(f"app /retrieve k=100       {ms:>9.1f} ms  ({len(result['passages'])} passages)")

        def huge() -> str:
            try:
                client.predict(QUESTION, 10**9, api_name="/retrieve")
            except Exception as exc:  # noqa: BLE001 - the refusal is what is measured
                return f"{type(exc).__name__}: {exc}"
            return "answered"

        ms, message = timed(huge, runs)
        out["retrieve k=10**9"] = {"median_ms": ms, "outcome": message}
        print(f"app /retrieve k=10**9     {ms:>9.1f} ms  ({message[:100]})")
        ms, answer = timed(lambda: client.predict(QUESTION, api_name="/ask"), runs)
        out["ask after"] = {"median_ms": ms, "found": answer["found"]}
        print(f"app /ask right after      {ms:>9.1f} ms")
        return out
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="calls per figure (median reported)")
    args = ap.parse_args()
    path = index_100k()
    result = {"machine": machine(), "load_start": list(os.getloadavg()), "index": str(path),
              "in_process": in_process(path, args.runs), "app": through_app(path, args.runs),
              "load_end": list(os.getloadavg())}
    print(f"wrote {write('hostile_queries.json', result)}")


if __name__ == "__main__":
    main()
