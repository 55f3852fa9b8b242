"""Building on Ray (a local instance, one encoder actor per core) against the direct build, at 10k sentences.

Both builds are in memory (no save), of the same real + generated corpus (``benchmarks/corpus.py``), with the
settings of the environment (default: int8 ONNX). The direct build is ``qa.Index.build(docs)``; the Ray build
is ``qa.Index.build(docs, ray="local")`` inside one running local instance, so its time counts the actors'
start and model load, the embedding and the assembly, but not ``ray.init`` (timed apart, with the shutdown).
Runs alternate (direct, Ray, direct, ...) so that changes in the machine's load hit both alike; the medians are
reported, with the load average around each run: this machine is shared with other jobs, so its load moves.
The vectors of the two builds are compared bit for bit.

    python benchmarks/ray_build.py [--size 10k] [--runs 3]

Writes ``benchmarks/results/ray_build.json``.
"""

from __future__ import annotations

import argparse
import os
import time

import corpus as C
import numpy as np
from _common import machine, median, write

import qa
from qa.index import ray_build


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="10k", help="corpus size in sentences (10k, 100k, ...)")
    parser.add_argument("--runs", type=int, default=3, help="builds of each kind")
    args = parser.parse_args()
    import ray

    if not C.SQUAD_DOCS.is_file():  # from a git worktree, deeper than the checkout beside ../shared
        found = [up / "shared" / "eval" / "squad" / "docs.jsonl" for up in C.ROOT.parents]
        C.SQUAD_DOCS = next((f for f in found if f.is_file()), C.SQUAD_DOCS)
    corp = C.text_corpus(C.parse_size(args.size))
    docs = qa.load_sources([corp.docs])
    settings = qa.get_settings(progress=False)
    plan = ray_build.plan(docs)
    from qa.embedding import get_encoder

    get_encoder(settings).encode_documents(["warm up"], progress=False)  # loaded before timing, as Ray's actors
    print(f"{corp.sentences:,} sentences, {len(docs):,} documents, {len(plan.texts):,} texts to embed in "
          f"{len(plan.calls)} model calls; backend {settings.backend}; load {load()}")
    direct_s: list[float] = []
    ray_s: list[float] = []
    runs: list[dict[str, object]] = []
    load_at_start = load()
    started = time.perf_counter()
    with ray_build.ray_session("local"):
        init_s = time.perf_counter() - started
        cpus = ray.cluster_resources().get("CPU")
        print(f"ray.init {init_s:.1f} s ({cpus} CPUs, {cpus} encoder actors)")
        direct = via_ray = None
        for r in range(args.runs):
            for kind in ("direct", "ray"):
                before = load()
                t = time.perf_counter()
                built = qa.Index.build(docs, settings=settings, ray="local" if kind == "ray" else None)
                took = time.perf_counter() - t
                (ray_s if kind == "ray" else direct_s).append(took)
                runs.append({"run": r, "kind": kind, "seconds": round(took, 2), "load_before": before,
                             "load_after": load()})
                print(f"run {r} {kind:6s} {took:6.1f} s  ({len(built) / took:,.0f} sentences/s)  load {load()}")
                if kind == "ray":
                    via_ray = built
                else:
                    direct = built
        t = time.perf_counter()
    shutdown_s = time.perf_counter() - t
    assert direct is not None and via_ray is not None
    identical = all(np.array_equal(direct.vector_store(ch).vectors(np.arange(len(direct))),
                                   via_ray.vector_store(ch).vectors(np.arange(len(via_ray))))
                    for ch in ("dense", "dense_context"))
    d, r_ = median(direct_s), median(ray_s)
    print(f"median build: direct {d:.1f} s, Ray {r_:.1f} s ({r_ / d:.2f}x the direct time); ray.init {init_s:.1f} s, "
          f"shutdown {shutdown_s:.1f} s; vectors bit-identical: {identical}")
    result = {
        "what": "qa.Index.build in memory, direct vs on a local Ray instance (one encoder actor per CPU); "
                "ray.init and shutdown timed apart",
        "corpus": corp.info(),
        "documents": len(docs),
        "texts_embedded": len(plan.texts),
        "model_calls": len(plan.calls),
        "backend": settings.backend,
        "ray": ray.__version__,
        "ray_cpus": cpus,
        "runs_each": args.runs,
        "direct_build_s": {"median": round(d, 2), "runs": [round(x, 2) for x in direct_s]},
        "ray_build_s": {"median": round(r_, 2), "runs": [round(x, 2) for x in ray_s]},
        "ray_over_direct": round(r_ / d, 3),
        "direct_sentences_per_s": round(len(direct) / d, 1),
        "ray_sentences_per_s": round(len(via_ray) / r_, 1),
        "ray_init_s": round(init_s, 2),
        "ray_shutdown_s": round(shutdown_s, 2),
        "vectors_bit_identical": identical,
        "load_average": {"start": load_at_start, "end": load(), "runs": runs},
        "load_note": "os.getloadavg() (1, 5, 15 min) on a 2-core machine shared with other jobs running at the "
                     "same time: absolute times move with their load; compare direct and Ray within this run",
        "machine": machine(),
    }
    print(f"wrote {write('ray_build.json', result)}")


if __name__ == "__main__":
    main()
