"""Ingestion end to end: index a folder of a few hundred mixed files, then re-add it unchanged.

Generates the folder with ``ingest_extract.make_folder`` (PDF, Word, HTML, Markdown, text, JSONL), then times
``qa.Index.build`` on it (reading, splitting, embedding, saving) and ``Index.update(add=[folder])`` with
nothing changed (reading and hashing only: no model time). Prints the figures and writes
``benchmarks/results/ingest.json``.

    python benchmarks/ingest.py [--files 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine, median, write
from ingest_extract import make_folder

import qa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    qa.open_index()  # load the model outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        make_folder(folder, args.files)
        builds, readds = [], []
        index = None
        for run in range(args.runs):
            out = Path(tmp) / f"idx{run}"
            t0 = time.perf_counter()
            read = qa.read_sources([folder], progress=False)
            index = qa.Index.build(read.documents, out, progress=False)
            builds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            up = qa.Index.load(out).update(add=[folder], progress=False)
            readds.append(time.perf_counter() - t0)
            assert not up.changed and up.embedded == 0
        assert index is not None
        build_s, readd_s = median(builds), median(readds)
        result = {
            "machine": machine(),
            "files": args.files,
            "documents": len(index.documents),
            "sentences": len(index),
            "failures": len(read.failures),
            "build_s_median": round(build_s, 2),
            "documents_per_s": round(len(index.documents) / build_s, 1),
            "sentences_per_s": round(len(index) / build_s, 1),
            "readd_unchanged_s_median": round(readd_s, 2),
            "readd_share_of_build": round(readd_s / build_s, 4),
            "runs": args.runs,
        }
    for key, value in result.items():
        if key != "machine":
            print(f"{key:>28}: {value}")
    print(f"wrote {write('ingest.json', result)}")


if __name__ == "__main__":
    main()
