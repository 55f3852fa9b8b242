"""Build throughput of two git revisions of qa, interleaved in one run: "is the build as fast as it was?".

Each run builds the same corpus folder (``benchmarks/corpus.py``'s real+generated text, default 10k sentences)
into a fresh temporary folder, in a fresh process whose ``qa`` is the revision's (a ``git worktree`` of it,
first on ``PYTHONPATH``), alternating the two revisions so that both see the same load on a shared machine.
The figure is the ratio of the medians::

    python benchmarks/revisions.py --old f8102d6 --new HEAD --size 10k --runs 3

Writes ``benchmarks/results/revisions.json``. What it does not do: query latency (the index format may differ
between revisions; ``benchmarks/run.py --parts query`` measures that for one revision at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import corpus as C  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

#: What each child process runs: build the folder, print seconds and sentences as JSON.
CHILD = """
import json, sys, time
import qa
settings = qa.get_settings(progress=False)
t0 = time.perf_counter()
index = qa.Index.build([sys.argv[1]], sys.argv[2], settings=settings, progress=False)
print(json.dumps({"seconds": time.perf_counter() - t0, "sentences": len(index), "qa": qa.__file__}))
"""


def worktree(rev: str, scratch: Path) -> tuple[str, Path]:
    """The full commit of ``rev`` and a worktree of it under ``scratch`` (HEAD's own tree when it is clean)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], check=True, capture_output=True,
                            text=True).stdout.strip()
    folder = scratch / commit[:12]
    if not folder.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(folder), commit],
                       check=True)
    return commit, folder


def build_once(tree: Path, docs: Path, out: Path) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "QA_INDEX_DIR": str(out.parent)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(docs), str(out)], check=True, capture_output=True,
                          text=True, env=env, cwd=tree)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if not str(result["qa"]).startswith(str(tree)):
        raise SystemExit(f"the child imported {result['qa']}, not the revision's qa under {tree}")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="the revision to compare against (e.g. the commit an issue names)")
    ap.add_argument("--new", default="HEAD")
    ap.add_argument("--size", default="10k")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="revisions.json")
    args = ap.parse_args()
    corp = C.text_corpus(C.parse_size(args.size))
    times: dict[str, list[float]] = {"old": [], "new": []}
    sentences: dict[str, float] = {}
    loads = []
    with tempfile.TemporaryDirectory(prefix="qa-revisions-") as tmp:
        scratch = Path(tmp)
        commits = {}
        trees = {}
        for which, rev in (("old", args.old), ("new", args.new)):
            commits[which], trees[which] = worktree(rev, scratch)
        try:
            for run in range(args.runs):
                for which in ("old", "new") if run % 2 == 0 else ("new", "old"):
                    before = os.getloadavg()
                    got = build_once(trees[which], corp.docs, scratch / f"index-{which}-{run}")
                    times[which].append(round(got["seconds"], 2))
                    sentences[which] = got["sentences"]
                    loads.append({"run": run, "which": which, "seconds": round(got["seconds"], 2),
                                  "load_before": [round(x, 2) for x in before]})
                    print(f"run {run} {which} ({commits[which][:9]}): {got['seconds']:.1f} s, "
                          f"{got['sentences']} sentences, load {before[0]:.1f}", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "what": "qa.Index.build of one corpus folder by two revisions, fresh process each, interleaved",
        "corpus": {"size": corp.size, "folder": str(corp.docs.relative_to(ROOT))},
        "old": {"rev": args.old, "commit": commits["old"], "build_s_runs": times["old"], "build_s": med["old"],
                "sentences": sentences["old"], "sentences_per_s": round(sentences["old"] / med["old"], 1)},
        "new": {"rev": args.new, "commit": commits["new"], "build_s_runs": times["new"], "build_s": med["new"],
                "sentences": sentences["new"], "sentences_per_s": round(sentences["new"] / med["new"], 1)},
        "new_over_old_time": round(med["new"] / med["old"], 3),
        "runs": loads,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_note": "os.getloadavg() on a 2-core machine that may be shared: compare the two within this run",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"median build: old {med['old']:.1f} s, new {med['new']:.1f} s, new/old {result['new_over_old_time']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
