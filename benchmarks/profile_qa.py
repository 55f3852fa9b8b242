"""Where qa spends its CPU: cProfile (CPU-time clock) of a build, of queries, and of a cold start.

The machine is shared, so the profiles use ``time.process_time`` as the clock: they show the CPU each function
needs, not how long it waited for a core. Writes ``benchmarks/results/profile_<what>.txt`` (top functions by
cumulative and by own time) and prints a short summary::

    python benchmarks/profile_qa.py [--build-sentences 300] [--index index/bench-qa-100k] [--queries 50]
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import cProfile
import io
import pstats
import time
from pathlib import Path

import corpus as C
from _common import RESULTS, ROOT

import qa


def dump(profile: cProfile.Profile, name: str, title: str, top: int = 30) -> Path:
    """Write the profile's top functions by cumulative and by own CPU time."""
    out = io.StringIO()
    out.write(f"{title}\nclock: time.process_time (CPU seconds of this process, all threads)\n\n")
    for key in ("cumulative", "tottime"):
        out.write(f"--- top {top} by {key} ---\n")
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(top)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"profile_{name}.txt"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def main() -> int:
    """Profile a build, queries on a saved index, and a cold start (import, model, load, first question)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-sentences", type=int, default=300, help="real sentences to build (0: skip)")
    ap.add_argument("--index", type=Path, help="saved index to profile queries on")
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()

    cold = cProfile.Profile(time.process_time)
    cold.enable()
    from qa.embedding import get_encoder

    get_encoder(qa.get_settings()).encode_queries(["warm up"])
    cold.disable()
    print("cold start (model resolve + load + first encode):", dump(cold, "coldstart", "loading the model once"))

    if args.build_sentences:
        corp = C.text_corpus(args.build_sentences)
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        qa.Index.build([corp.docs], ROOT / "index" / f"bench-profile-{C.label(args.build_sentences)}",
                       progress=False)
        prof.disable()
        print("build:", dump(prof, "build", f"qa.Index.build of {corp.sentences} real sentences"))
    if args.index:
        index = qa.Index.load(args.index)
        qs = C.questions(args.queries + 5)
        for q in qs[:5]:
            qa.retrieve(q, index=index)
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for q in qs[5:]:
            qa.retrieve(q, index=index)
        prof.disable()
        print("query:", dump(prof, "query", f"{args.queries} x qa.retrieve on {args.index} ({len(index)} sentences)"))
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        qa.Index.load(args.index)
        prof.disable()
        print("load:", dump(prof, "load", f"qa.Index.load({args.index})"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
