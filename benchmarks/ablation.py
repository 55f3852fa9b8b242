"""Fixed-weight fusion: channel ablation, build time and query latency on the shared evaluation data.

Everything here ranks with ``scorer=fusion`` (set below, before qa reads its settings): the fusion weights are
what is ablated. The learned scorer, which reads all four channels, is measured by ``benchmarks/quality.py``.

Builds the indexes, then reports R@1/5/10 and MRR@10 for BM25 alone, dense alone, the full pipeline and every
other subset of the four channels (ablation), on:

* SQuAD v1.1 dev (articles 0-23, ReQA setting: every sentence of every paragraph in one pool), split by
  qa's segmenter, and split by ReQA's own spans (``sentences_reqa.jsonl``) to compare with published figures;
* the bundled article's dev questions, with precision and recall of "found" (abstention).

Also: index build time against embedding the sentences alone (same run, same model), and query latency
through ``qa.retrieve``. Prints tables and writes ``benchmarks/results/ablation.json``.

    python benchmarks/ablation.py [--latency-questions 300]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from typing import Any

os.environ["QA_SCORER"] = "fusion"  # before qa reads its settings: this script measures fixed fusion

from _common import SHARED, gold_rows, machine, median, percentile, ranks, summary, write

import qa
from qa.answer import compose
from qa.embedding import get_encoder
from qa.evaluation import load_questions

CHANNELS = ("bm25", "bm25_context", "dense", "dense_context")


def subsets() -> list[tuple[str, ...]]:
    return [c for n in range(1, 5) for c in itertools.combinations(CHANNELS, n)]


def with_channels(base: qa.Settings, channels: tuple[str, ...]) -> qa.Settings:
    """Default weights, with the channels not named switched off."""
    return base.replace(**{f"weight_{c}": (base.weights[c] if c in channels else 0.0) for c in CHANNELS})


def ablation(index: qa.Index, questions: list[Any], vectors: Any) -> dict[str, dict[str, float]]:
    base = qa.get_settings()
    gold = gold_rows(index, questions)
    out = {}
    for channels in subsets():
        index.settings = with_channels(base, channels)
        out["+".join(channels)] = summary(ranks(index, questions, vectors, gold))
    index.settings = base
    return out


def table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'channels':<42} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7}")
    for name, m in rows.items():
        print(f"{name:<42} {m['R@1']:>6.3f} {m['R@5']:>6.3f} {m['R@10']:>6.3f} {m['MRR@10']:>7.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-questions", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3, help="build-time repetitions (median reported)")
    args = ap.parse_args()

    encoder = get_encoder()
    docs = qa.load_sources([SHARED / "squad" / "docs.jsonl"])
    squad = load_questions(SHARED / "squad" / "questions.jsonl")
    vectors = encoder.encode_queries([q.question for q in squad])

    # Build time against the model alone, interleaved in the same run so both see the same machine state.
    builds, embeds = [], []
    index = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        index = qa.Index.build(docs, progress=False)
        builds.append(time.perf_counter() - t0)
        sentences = [d.text[a:b] for d in docs for a, b in qa.sentences.split(d.text)]
        t0 = time.perf_counter()
        encoder.encode_documents(sentences, progress=False)
        embeds.append(time.perf_counter() - t0)
    assert index is not None
    build = {
        "sentences": len(index),
        "build_s_median": round(median(builds), 2),
        "embed_sentences_only_s_median": round(median(embeds), 2),
        "ratio_build_to_embed": round(median(builds) / median(embeds), 2),
        "runs": args.runs,
    }
    print(f"SQuAD: {len(docs)} paragraphs, {len(index)} sentences; build {build['build_s_median']} s, "
          f"embedding the sentences alone {build['embed_sentences_only_s_median']} s "
          f"(ratio {build['ratio_build_to_embed']})")

    squad_ours = ablation(index, squad, vectors)
    table("SQuAD dev, ReQA setting, qa's segmenter", squad_ours)

    reqa = {json.loads(line)["doc_id"]: json.loads(line)["spans"]
            for line in (SHARED / "squad" / "sentences_reqa.jsonl").read_text().splitlines()}
    reqa_index = qa.Index.build(docs, progress=False, spans=reqa)
    squad_reqa = ablation(reqa_index, squad, vectors)
    table(f"SQuAD dev, ReQA's own sentence spans ({len(reqa_index)} sentences)", squad_reqa)

    s = qa.get_settings()
    found = sum(compose(q.question, index.search(q.question, k=s.k), s).found for q in squad[:1000])

    # Latency through the public API, after a warm-up; the index is passed as an object (already loaded).
    for q in squad[:10]:
        qa.retrieve(q.question, index=index)
    timings = []
    for q in squad[: args.latency_questions]:
        t0 = time.perf_counter()
        qa.retrieve(q.question, index=index)
        timings.append((time.perf_counter() - t0) * 1000)
    latency = {"questions": len(timings), "p50_ms": round(median(timings), 1),
               "p99_ms": round(percentile(timings, 99), 1)}
    print(f"\nqa.retrieve latency on SQuAD ({len(index)} sentences): "
          f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")

    article_index = qa.open_index()
    seed = load_questions(SHARED / "seed" / "questions.jsonl")
    answerable = [q for q in seed if q.answerable]
    article = ablation(article_index, answerable, encoder.encode_queries([q.question for q in answerable]))
    table("Bundled article, dev questions (answerable)", article)
    verdicts = [(q.answerable, qa.answer(q.question).found) for q in seed]
    tp = sum(a and f for a, f in verdicts)
    predicted, actual = sum(f for _, f in verdicts), sum(a for a, _ in verdicts)
    abstention = {
        "answerable": actual,
        "unanswerable": len(seed) - actual,
        "found_precision": round(tp / max(predicted, 1), 4),
        "found_recall": round(tp / max(actual, 1), 4),
        "unanswerable_declined": sum((not a) and (not f) for a, f in verdicts),
        "squad_found_rate_first_1000": round(found / 1000, 4),
        "min_score": s.min_score,
    }
    print(f"\nabstention on the article: {abstention}")

    full = "+".join(CHANNELS)
    out = write("ablation.json", {
        "machine": machine(),
        "weights": s.weights,
        "squad_qa_segmenter": {"bm25": squad_ours["bm25"], "dense": squad_ours["dense"], "full": squad_ours[full],
                               "ablation": squad_ours},
        "squad_reqa_spans": {"bm25": squad_reqa["bm25"], "dense": squad_reqa["dense"], "full": squad_reqa[full],
                             "ablation": squad_reqa},
        "article": {"full": article[full], "ablation": article, "abstention": abstention},
        "build": build,
        "latency": latency,
    })
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
