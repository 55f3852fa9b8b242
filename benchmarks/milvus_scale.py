"""FAISS against Milvus Lite at 10k and 100k sentences: save, load and rank latency of the same index.

    python benchmarks/milvus_scale.py [--sizes 10k,100k] [--queries 200] [--cache /tmp/milvus-bench]

The corpora are ``benchmarks/corpus.py``'s synthetic ones (generated text, synthetic vectors shaped like the
model's: nothing to embed), cached under ``--cache``. Each is assembled once with ``qa.Index.from_vectors``,
saved to a FAISS folder and to a Milvus Lite file, and loaded back from each in this process; then ``--queries``
real SQuAD questions (encoded once) are ranked by both loaded indexes with ``Index.rank`` (the retrieval cost
without the model). Past 20,000 sentences qa's FAISS index is IVF with 8-bit codes while Milvus Lite holds FLAT
(the only exact type it has), so the 100k figures compare an approximate FAISS search with an exact Milvus one.
Writes ``benchmarks/results/milvus_scale.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import corpus as C
import numpy as np
from _common import SHARED, machine, percentile, write

import qa
from qa.embedding import get_encoder
from qa.index import milvus


def _index(corp: C.Corpus) -> qa.Index:
    spans = np.load(corp.folder / "spans.npy")
    groups = np.split(spans, np.flatnonzero(np.diff(spans[:, 0])) + 1)
    docs, given = [], {}
    for rec, grp in zip(C.synthetic_documents(corp), groups, strict=True):
        docs.append(qa.Document(rec["id"], rec["title"], rec["text"]))
        given[rec["id"]] = [(int(a), int(b)) for _, a, b in grp]
    index = qa.Index.from_vectors(docs, np.load(corp.folder / "vectors.npy"), spans=given,
                                  context_vectors=np.load(corp.folder / "window_vectors.npy"),
                                  settings=qa.get_settings(progress=False))
    index.manifest["segmenter"] = qa.sentences.SEGMENTER  # loadable, as benchmarks/run.py does
    return index


def _lite_footprint(db: Path) -> dict[str, Any]:
    """Disk of the Lite file and RSS of the Lite server processes this process started (its children)."""
    disk = db.stat().st_size if db.is_file() else sum(f.stat().st_size for f in db.rglob("*") if f.is_file())
    rss = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            if int(fields[1]) == os.getpid() and b"milvus" in (stat.parent / "cmdline").read_bytes():
                rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return {"db_bytes": disk, "lite_rss_bytes": rss}


def _timed(call: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = call()
    return out, round(time.perf_counter() - t, 2)


def _one(size: int, args: argparse.Namespace, questions: list[str], vectors: np.ndarray) -> dict[str, Any]:
    corp = C.synthetic_corpus(size)
    built, assemble_s = _timed(lambda: _index(corp))
    folder, location = args.cache / f"faiss-{C.label(size)}", f"milvus:{args.cache}/scale-{C.label(size)}.db#s"
    _, faiss_save_s = _timed(lambda: built.save(folder))
    _, milvus_save_s = _timed(lambda: built.save(location))
    milvus.close(location)  # a fresh process's view: start Lite, read the generation
    faiss_index, faiss_load_s = _timed(lambda: qa.Index.load(folder))
    remote, milvus_load_s = _timed(lambda: qa.Index.load(location))
    row: dict[str, Any] = {"sentences": len(faiss_index), "assemble_from_vectors_s": assemble_s,
                           "faiss": {"store": faiss_index.vector_store().describe(), "save_s": faiss_save_s,
                                     "load_s": faiss_load_s},
                           "milvus": {"store": remote.vector_store().describe(), "save_s": milvus_save_s,
                                      "load_s": milvus_load_s}}
    tops: dict[str, list[int]] = {}
    for name, index in (("faiss", faiss_index), ("milvus", remote)):
        index.rank(questions[0], vectors[0], k=10)  # warm-up
        times, tops[name] = [], []
        for q, v in zip(questions, vectors, strict=True):
            t = time.perf_counter()
            rows, _ = index.rank(q, v, k=10)
            times.append(1000 * (time.perf_counter() - t))
            tops[name].append(int(rows[0]) if len(rows) else -1)
        row[name] |= {"rank_ms_p50": round(percentile(times, 50), 2), "rank_ms_p99": round(percentile(times, 99), 2)}
    row["milvus"] |= _lite_footprint(args.cache / f"scale-{C.label(size)}.db")
    n = row["sentences"]
    row["milvus"] |= {"db_bytes_per_sentence": round(row["milvus"]["db_bytes"] / n, 1),
                      "lite_rss_bytes_per_sentence": round(row["milvus"]["lite_rss_bytes"] / n, 1)}
    row["same_top1"] = round(sum(a == b for a, b in zip(tops["faiss"], tops["milvus"], strict=True)) / len(questions),
                             4)
    milvus.close(location)
    print(f"{row['sentences']:,} sentences: FAISS {row['faiss']}; Milvus Lite {row['milvus']}; "
          f"same top-1 {row['same_top1']:.1%}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10k,100k")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default="milvus_scale.json", help="file name under benchmarks/results")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/milvus-bench"))
    ap.add_argument("--squad", type=Path, default=SHARED / "squad", help="the shared SQuAD folder")
    args = ap.parse_args()
    C.CORPUS_DIR = args.cache / "corpus"
    C.SQUAD_DOCS, C.SQUAD_QUESTIONS = args.squad / "docs.jsonl", args.squad / "questions.jsonl"
    questions = C.questions(args.queries)
    vectors = get_encoder(qa.get_settings()).encode_queries(questions)
    results = [_one(C.parse_size(size), args, questions, vectors) for size in args.sizes.split(",")]
    write(args.out, {"what": __doc__.split("\n")[0], "queries": len(questions),
                                "corpus": "benchmarks/corpus.py synthetic (generated text, synthetic vectors)",
                                "sizes": results, "machine": machine()})


if __name__ == "__main__":
    main()
