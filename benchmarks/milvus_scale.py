"""FAISS against Milvus Lite at 10k and 100k sentences: save, load and rank latency of the same index.

    python benchmarks/milvus_scale.py [--sizes 10k,100k] [--queries 200] [--lexical auto] [--cache /tmp/milvus-bench]

The corpora are ``benchmarks/corpus.py``'s synthetic ones (generated text, synthetic vectors shaped like the
model's: nothing to embed), cached under ``--cache``. Each is assembled once with ``qa.Index.from_vectors``,
saved to a FAISS folder and to a Milvus Lite file, and loaded back from each in this process; then ``--queries``
real SQuAD questions (encoded once) are ranked by both loaded indexes with ``Index.rank`` (the retrieval cost
without the model). Past 20,000 sentences qa's FAISS index is IVF with 8-bit codes while Milvus Lite holds FLAT
(the only exact type it has), so the 100k figures compare an approximate FAISS search with an exact Milvus one.
``--lexical milvus,local`` saves it once per ``milvus_lexical`` setting, each to its own Lite file: the BM25
channels as sparse-vector collections (``milvus``) or rebuilt from the text at load (``local``). Each row records
the file's bytes and, per collection, the bytes of the SQLite table Milvus Lite keeps it in (``dbstat``: pages,
and the payload in them); Lite builds its vector indexes in memory at load, so the file holds the rows only.
Writes ``benchmarks/results/milvus_scale.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
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


def _tables(db: Path) -> dict[str, dict[str, int]]:
    """Bytes of each table of a Lite file (one a collection, ``<c>_dense``; the rest Lite's own): the pages it
    takes and the payload in them (SQLite's ``dbstat``). Read with Lite stopped."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        found = con.execute("SELECT name, SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name").fetchall()
        free = con.execute("PRAGMA freelist_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
    out = {str(name): {"bytes": int(pages), "payload_bytes": int(payload)} for name, pages, payload in found}
    out["(free pages)"] = {"bytes": int(free), "payload_bytes": 0}
    return out


def _terms(index: qa.Index) -> dict[str, float]:
    """Terms per sentence in each BM25 channel (the sparse vectors' (term, weight) pairs)."""
    out = {}
    for name in ("bm25", "bm25_context"):
        data, _, _ = index._lexical[name].matrix()  # type: ignore[union-attr]
        out[name] = round(len(data) / max(len(index), 1), 1)
    return out


def _timed(call: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = call()
    return out, round(time.perf_counter() - t, 2)


def _one(size: int, args: argparse.Namespace, questions: list[str], vectors: np.ndarray) -> dict[str, Any]:
    corp = C.synthetic_corpus(size)
    built, assemble_s = _timed(lambda: _index(corp))
    folder = args.cache / f"faiss-{C.label(size)}"
    _, faiss_save_s = _timed(lambda: built.save(folder))
    modes = args.lexical.split(",")
    files = {mode: args.cache / f"scale-{C.label(size)}{'' if len(modes) == 1 else '-' + mode}.db" for mode in modes}
    saved: dict[str, dict[str, Any]] = {}
    for mode, db in files.items():  # the last one is loaded and ranked
        for stale in (db, db.parent / f".{db.name}.lock"):
            stale.unlink(missing_ok=True)  # a fresh file: no earlier generations or free pages
        location = f"milvus:{db}#s"
        built.settings = built.settings.replace(milvus_lexical=mode)
        _, milvus_save_s = _timed(lambda: built.save(location))  # noqa: B023 - called at once
        milvus.close(location)  # a fresh process's view: start Lite, read the generation
        saved[mode] = {"save_s": milvus_save_s, "db_bytes": db.stat().st_size, "tables": _tables(db)}
    saved[modes[-1]]["lexical_terms_per_sentence"] = _terms(built)
    faiss_index, faiss_load_s = _timed(lambda: qa.Index.load(folder))
    remote, milvus_load_s = _timed(lambda: qa.Index.load(location))
    row: dict[str, Any] = {"sentences": len(faiss_index), "assemble_from_vectors_s": assemble_s,
                           "faiss": {"store": faiss_index.vector_store().describe(), "save_s": faiss_save_s,
                                     "load_s": faiss_load_s},
                           "milvus": {"store": remote.vector_store().describe(), "save_s": milvus_save_s,
                                      "load_s": milvus_load_s, "lexical": modes[-1]}}
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
    row["milvus"] |= _lite_footprint(files[modes[-1]])
    n = row["sentences"]
    row["milvus"] |= {"db_bytes_per_sentence": round(row["milvus"]["db_bytes"] / n, 1),
                      "lite_rss_bytes_per_sentence": round(row["milvus"]["lite_rss_bytes"] / n, 1)}
    for entry in saved.values():
        entry["db_bytes_per_sentence"] = round(entry["db_bytes"] / n, 1)
        for table in entry["tables"].values():
            table["per_sentence"] = round(table["bytes"] / n, 1)
    row["milvus_lexical"] = saved
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
    ap.add_argument("--lexical", default="auto", help="milvus_lexical settings to save with, comma-separated "
                    "(auto, milvus, local); the last is loaded and ranked")
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
