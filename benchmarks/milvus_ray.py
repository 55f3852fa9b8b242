"""A Ray build into a Milvus server: the workers writing the vectors against the driver gathering and saving them.

Both builds run on one local Ray instance (one encoder actor per core), of the same real + generated corpus
(``benchmarks/corpus.py``), into two collections of a running Milvus server (``--uri``; e.g. the 2.3.5 server
of ``pip install milvus==2.3.5``). ``workers``: ``qa.Index.build(docs, "milvus:URI#a", ray="local")`` (the
actors insert the rows, ``qa/index/milvus_write.py``); ``driver``: the Ray build of the vectors into this process
(``ray_build.from_documents`` without a location) then ``Index.save("milvus:URI#b")``. For each: wall time, and
the driver's peak of Python and numpy allocations (``tracemalloc``) during the build. The stored vectors of the
two are compared bit for bit.

    python benchmarks/milvus_ray.py --uri http://127.0.0.1:19530 [--size 5k]

Writes ``benchmarks/results/milvus_ray.json``.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import corpus as C
import numpy as np
from _common import machine, write

import qa
from qa.index import milvus, ray_build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", required=True, help="a running Milvus server, e.g. http://127.0.0.1:19530")
    parser.add_argument("--size", default="5k", help="corpus size in sentences (5k, 10k, ...)")
    args = parser.parse_args()
    if not C.SQUAD_DOCS.is_file():  # from a git worktree, deeper than the checkout beside ../shared
        found = [up / "shared" / "eval" / "squad" / "docs.jsonl" for up in C.ROOT.parents]
        C.SQUAD_DOCS = next((f for f in found if f.is_file()), C.SQUAD_DOCS)
    corp = C.text_corpus(C.parse_size(args.size))
    docs = qa.load_sources([corp.docs])
    settings = qa.get_settings(progress=False)
    suffix = str(int(time.time()))
    where = {"workers": f"milvus:{args.uri}#bench_w{suffix}", "driver": f"milvus:{args.uri}#bench_d{suffix}"}
    results: dict[str, dict[str, float]] = {}
    with ray_build.ray_session("local"):
        for kind in ("workers", "driver"):
            load_before = os.getloadavg()[0]
            tracemalloc.start()
            t = time.perf_counter()
            if kind == "workers":
                built = qa.Index.build(docs, where[kind], settings=settings, ray="local")
            else:
                built, _ = ray_build.from_documents(qa.Index, docs, settings=settings, progress=False,
                                                    spans_per_doc=None, address="local")
                built.save(where[kind])
            took = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            results[kind] = {"seconds": round(took, 2), "driver_peak_mib": round(peak / 2**20, 1),
                             "load_before": round(load_before, 2), "sentences": len(built)}
            print(f"{kind:8s} {took:6.1f} s, driver peak {peak / 2**20:7.1f} MiB, {len(built):,} sentences, "
                  f"load {load_before:.1f}")
    a, b = (qa.Index.load(where[k], settings=settings) for k in ("workers", "driver"))
    identical = all(np.array_equal(a.vector_store(ch).vectors(np.arange(len(a))),
                                   b.vector_store(ch).vectors(np.arange(len(b)))) for ch in ("dense", "dense_context"))
    print(f"stored vectors bit-identical: {identical}")
    c = milvus.client(qa.index.location.parse_location(where["workers"]))
    for loc in where.values():  # leave the server as it was
        prefix = qa.index.location.parse_location(loc).collection
        for name in c.list_collections():
            if name.startswith(prefix + "_"):
                c.drop_collection(name)
    result = {
        "what": "Ray build into a Milvus server: actors insert the rows (workers) vs vectors gathered in the driver "
                "and saved (driver); one local Ray instance; tracemalloc peak in the driver during each build",
        "corpus": corp.info(),
        "documents": len(docs),
        "backend": settings.backend,
        "server": milvus.server_version(qa.index.location.parse_location(where["workers"])),
        "builds": results,
        "vectors_bit_identical": identical,
        "load_note": "2-core machine shared with other jobs: times move with their load",
        "machine": machine(),
    }
    print(f"wrote {write('milvus_ray.json', result)}")


if __name__ == "__main__":
    main()
