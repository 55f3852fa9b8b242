"""What a question costs a replica reading a Milvus server: every read at Strong, against reads at the save's timestamp.

A Strong read waits until the server's query nodes have passed the moment it was sent: about two of the proxy's
time ticks (``proxy.timeTickInterval``, 200 ms by default), on every call, and ``qa.retrieve`` makes several a
question (which generation is committed, the dense searches, the context scores). Since a committed generation
never changes, qa reads its rows at the timestamp of the save that wrote them (stored beside them) and asks
which generation is committed at bounded staleness: neither waits for a tick. This measures both on a running
server (``--uri``; e.g. ``milvus-server`` of ``pip install milvus==2.3.5`` with its default settings):

* the index of ``--docs`` SQuAD paragraphs is built into the server by this process, as the collections
  ``reads_bench_*`` (a new generation of them if a previous run left them);
* a second process, a replica given only the location, answers ``--questions`` SQuAD questions with
  ``qa.retrieve(..., index=LOC)`` twice: ``strong`` (every read at Strong, as qa did before) and ``stamped``
  (the default now); p50/p90 per question and whether the two give the same passages.

    python benchmarks/milvus_reads.py --uri http://127.0.0.1:19530 [--docs 200] [--questions 100]

Writes ``benchmarks/results/milvus_reads.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SHARED, machine, percentile, write

import qa


def _replica(loc: str, questions: list[str], rounds: int) -> dict[str, Any]:
    """In a process that never wrote to the server: each question through qa.retrieve, per mode."""
    from qa.index import milvus_schema

    strong = {"consistency_level": "Strong"}
    bounded = dict(milvus_schema._BOUNDED)
    qa.retrieve(questions[0], index=loc, k=5)  # load once, outside the timings
    index = qa.open_index(loc)
    stamped_reads = {n: dict(index.vector_store(n).reads) for n in ("dense", "dense_context")}  # type: ignore[attr-defined]
    out: dict[str, Any] = {"reads": {n: {k: v for k, v in r.items() if k != "timeout"}
                                     for n, r in stamped_reads.items()}}
    got: dict[str, list[list[tuple[str, int]]]] = {}
    for mode in ("strong", "stamped") * rounds:
        milvus_schema._BOUNDED.clear()
        milvus_schema._BOUNDED.update(strong if mode == "strong" else bounded)
        for n in ("dense", "dense_context"):
            store = index.vector_store(n)
            store.reads = {**(strong if mode == "strong" else stamped_reads[n]), "timeout": store.reads["timeout"]}  # type: ignore[attr-defined]
        times, answers = [], []
        for q in questions:
            t0 = time.perf_counter()
            passages = qa.retrieve(q, index=loc, k=5)
            times.append((time.perf_counter() - t0) * 1000)
            answers.append([(p.doc_id, p.start) for p in passages])
        got[mode] = answers
        out.setdefault(mode, []).append({"p50_ms": round(statistics.median(times), 1),
                                         "p90_ms": round(percentile(times, 90), 1)})
    out["same_passages"] = sum(a == b for a, b in zip(got["strong"], got["stamped"], strict=True)) / len(questions)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uri", required=True, help="a running Milvus server, e.g. http://127.0.0.1:19530")
    ap.add_argument("--docs", type=int, default=200, help="SQuAD paragraphs to index (default 200)")
    ap.add_argument("--questions", type=int, default=100, help="SQuAD questions to ask (default 100)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both modes, alternating (default 3)")
    ap.add_argument("--replica", default=None, help=argparse.SUPPRESS)  # the measuring process: its input file
    args = ap.parse_args()
    if args.replica:
        job = json.loads(Path(args.replica).read_text(encoding="utf-8"))
        print(json.dumps(_replica(job["loc"], job["questions"], job["rounds"])))
        return
    loc = f"milvus:{args.uri}#reads_bench"
    lines = (SHARED / "squad" / "docs.jsonl").read_text(encoding="utf-8").splitlines()[: args.docs]
    docs = [json.loads(line) for line in lines]
    ids = {d["id"] for d in docs}
    questions = [q["question"] for q in map(json.loads, (SHARED / "squad" / "questions.jsonl").read_text(
        encoding="utf-8").splitlines()) if q["doc_id"] in ids][: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        t0 = time.perf_counter()
        index = qa.Index.build([path], loc, progress=False)
        build_s = time.perf_counter() - t0
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"loc": loc, "questions": questions, "rounds": args.rounds}), encoding="utf-8")
        run = subprocess.run([sys.executable, __file__, "--uri", args.uri, "--replica", str(job)],
                             capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise SystemExit(run.stderr[-3000:])
        replica = json.loads(run.stdout.strip().splitlines()[-1])
    result = {
        "machine": machine(), "uri": args.uri, "sentences": len(index), "docs": len(docs),
        "questions": len(questions), "build_s": round(build_s, 1), **replica,
        "p50_ms": {m: statistics.median(r["p50_ms"] for r in replica[m]) for m in ("strong", "stamped")},
    }
    print(json.dumps(result, indent=1))
    write("milvus_reads.json", result)


if __name__ == "__main__":
    main()
