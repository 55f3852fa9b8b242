"""One peer's build and query figures, run with the bench venv's interpreter (not the project's).

The peers are installed only in a separate virtualenv (never in the project's, never as qa's dependencies)::

    python3 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install -c constraints.txt -e . txtai langchain-community langchain-huggingface

``benchmarks/run.py --parts peers`` runs this script once per peer and size with that venv's python; it can also
be run by hand::

    /work/bench-venv/bin/python benchmarks/peers.py --peer txtai --sentences S.jsonl --questions Q.json \
        --model MODEL_DIR --out result.json [--vectors V.npy] [--runs 1] [--queries 200]

Peers:

* ``txtai``: ``txtai.Embeddings`` with the FAISS backend, sentence-transformers method, the same local model,
  ``content=True`` (so a search returns the sentence text); txtai's own default FAISS index type.
* ``langchain``: ``langchain_community.vectorstores.FAISS`` over ``langchain_huggingface.HuggingFaceEmbeddings``
  pointing at the same local model (normalised embeddings, as qa's).

With ``--vectors`` (synthetic-vector sizes) the peer is built from the given vectors instead of the model:
txtai through an external transform that returns the stored vector of an indexed sentence, LangChain through
``FAISS.from_embeddings``; questions are still embedded by the real model. Nothing is downloaded:
``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` are set before any import.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def du_bytes(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (same definition as benchmarks/_common.py)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


class Txtai:
    """txtai Embeddings, FAISS backend, content stored (search returns the sentence text)."""

    name = "txtai"

    def __init__(self, model: str, vectors: np.ndarray | None, sentences: list[str]) -> None:
        from txtai import Embeddings

        self.embeddings_cls = Embeddings
        self.model = model
        self.vectors = vectors
        self.config: dict[str, Any] = {"path": model, "method": "sentence-transformers", "backend": "faiss",
                                       "content": True}
        if vectors is not None:
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(model, device="cpu", local_files_only=True)
            lookup = {s: i for i, s in enumerate(sentences)}

            def transform(data: list[Any]) -> np.ndarray:
                texts = [d[1] if isinstance(d, tuple) else d for d in data]
                rows = [lookup.get(t) for t in texts]
                if all(r is not None for r in rows):
                    return np.asarray(vectors[rows], dtype=np.float32)
                return np.asarray(st.encode(texts, normalize_embeddings=True), dtype=np.float32)

            self.config = {"method": "external", "transform": transform, "backend": "faiss", "content": True}
        self.index: Any = None

    def warm(self) -> None:
        """Load the model (outside the timed build), as qa's encoder is loaded before its timed build."""
        e = self.embeddings_cls(**self.config)
        e.index(["warm up sentence one.", "warm up sentence two."])
        e.search("warm up", 1)

    def build(self, sentences: list[str]) -> None:
        self.index = self.embeddings_cls(**self.config)
        self.index.index(sentences)

    def search(self, question: str, k: int) -> list[str]:
        return [r["text"] for r in self.index.search(question, k)]

    def save(self, folder: Path) -> None:
        self.index.save(str(folder))

    def describe(self) -> dict[str, Any]:
        cfg = {k: v for k, v in self.index.config.items() if k != "transform"} if self.index is not None else {}
        return {"config": json.loads(json.dumps(cfg, default=str))}


class LangChain:
    """LangChain community FAISS vector store with HuggingFaceEmbeddings on the local model."""

    name = "langchain"

    def __init__(self, model: str, vectors: np.ndarray | None, sentences: list[str]) -> None:
        from langchain_community.vectorstores import FAISS
        from langchain_huggingface import HuggingFaceEmbeddings

        self.faiss = FAISS
        self.vectors = vectors
        self.embeddings = HuggingFaceEmbeddings(
            model_name=model,
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True},
        )
        self.store: Any = None

    def warm(self) -> None:
        self.embeddings.embed_documents(["warm up sentence one.", "warm up sentence two."])
        self.embeddings.embed_query("warm up")

    def build(self, sentences: list[str]) -> None:
        if self.vectors is None:
            self.store = self.faiss.from_texts(sentences, self.embeddings)
        else:
            pairs = list(zip(sentences, self.vectors, strict=True))
            self.store = self.faiss.from_embeddings(pairs, self.embeddings)

    def search(self, question: str, k: int) -> list[str]:
        return [d.page_content for d in self.store.similarity_search(question, k=k)]

    def save(self, folder: Path) -> None:
        self.store.save_local(str(folder))

    def describe(self) -> dict[str, Any]:
        index = self.store.index if self.store is not None else None
        return {"config": {"faiss_index": type(index).__name__ if index is not None else None,
                           "distance": str(getattr(self.store, "distance_strategy", None)),
                           "encode_kwargs": {"normalize_embeddings": True}}}


PEERS = {"txtai": Txtai, "langchain": LangChain}


def main() -> int:
    """Build the peer ``--runs`` times, time ``--queries`` searches after a warm-up, write JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=sorted(PEERS), required=True)
    ap.add_argument("--sentences", type=Path, required=True, help="JSONL, one sentence (JSON string) a line")
    ap.add_argument("--questions", type=Path, required=True, help="JSON list of question strings")
    ap.add_argument("--model", required=True, help="local sentence-transformers model folder")
    ap.add_argument("--vectors", type=Path, help="precomputed sentence vectors (.npy): build without the model")
    ap.add_argument("--runs", type=int, default=1, help="build repetitions (median reported)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    with args.sentences.open(encoding="utf-8") as fh:
        sentences = [json.loads(line) for line in fh]
    qs = json.loads(args.questions.read_text(encoding="utf-8"))
    vectors = np.load(args.vectors, mmap_mode="r") if args.vectors else None
    if vectors is not None:
        vectors = vectors[: len(sentences)]
    rss_start = rss_bytes()
    peer = PEERS[args.peer](args.model, vectors, sentences)
    peer.warm()
    gc.collect()
    rss_before = rss_bytes()
    builds = []
    for _ in range(args.runs):
        peer.store = peer.index = None  # free the previous build before the next one
        gc.collect()
        t0 = time.perf_counter()
        peer.build(sentences)
        builds.append(time.perf_counter() - t0)
    rss_after = rss_bytes()
    def latency() -> tuple[dict[str, Any], list[str | None]]:
        for q in qs[: args.warmup]:
            peer.search(q, args.k)
        timings, hits_first = [], []
        for q in qs:
            t0 = time.perf_counter()
            hits = peer.search(q, args.k)
            timings.append((time.perf_counter() - t0) * 1000)
            hits_first.append(hits[0] if hits else None)
        return {"questions": len(timings), "warmup": args.warmup, "k": args.k, "torch_threads": torch.get_num_threads(),
                "p50_ms": round(statistics.median(timings), 2), "p99_ms": round(percentile(timings, 99), 2),
                "mean_ms": round(statistics.fmean(timings), 2)}, hits_first

    threads = torch.get_num_threads()
    query, first_hits = latency()
    # qa encodes a question on one torch thread (its encoder does so for <= 8 texts: on a busy machine torch's
    # threads wait on each other). The same policy for the peer, so the comparison is like for like.
    torch.set_num_threads(1)
    query_1, _ = latency()
    torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{args.peer}-"))
    try:
        # Timed too: qa's build time includes writing its index, so the peer's build + save is the like figure.
        t0 = time.perf_counter()
        peer.save(tmp / "index")
        save_s = time.perf_counter() - t0
        disk = du_bytes(tmp / "index")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    build_s = statistics.median(builds)
    result = {
        "peer": args.peer,
        "mode": "vectors given (synthetic)" if vectors is not None else "model encodes the sentences",
        "sentences": len(sentences),
        "build_s_runs": [round(b, 3) for b in builds],
        "build_s": round(build_s, 3),
        "save_s": round(save_s, 3),
        "build_and_save_s": round(build_s + save_s, 3),
        "sentences_per_s": round(len(sentences) / build_s, 1),
        "query": query,
        "query_1_thread": query_1,
        "disk_bytes": disk,
        "disk_bytes_per_sentence": round(disk / len(sentences), 1),
        "rss_build_delta_bytes": rss_after - rss_before,
        "rss_bytes_after_build": rss_after,
        "rss_bytes_at_start": rss_start,
        "versions": {n: version(n) for n in ("txtai", "langchain-community", "langchain-core",
                                             "langchain-huggingface", "sentence-transformers", "transformers",
                                             "faiss-cpu", "torch", "numpy")},
        "python": sys.version.split()[0],
        "torch_threads": torch.get_num_threads(),
        "sample_first_hit": first_hits[0],
        **peer.describe(),
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("peer", "sentences", "build_s", "sentences_per_s", "query",
                                             "query_1_thread")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
