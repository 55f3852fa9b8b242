"""How to make the context channel's vectors: embed each window's text, or combine vectors already at hand.

The context channel scores a sentence with its surroundings. Embedding the window ("title. previous sentence
next") as one text costs a second forward pass over texts about three times longer than the sentences, which
made a build 3.7x the time of embedding the sentences alone. The alternative costs no model time: a sentence's
context vector is ``title_weight * title + self_weight * sentence + previous + next`` (vectors of the sentences
and the title, which a build computes anyway), renormalised.

This script builds the SQuAD and article indexes once, then swaps the context channel's vectors for each
variant and reports the full pipeline's R@1/R@5/MRR@10 under a few fusion weights of that channel. Prints a
table and writes ``benchmarks/results/context_vectors.json``.

    python benchmarks/context_vectors.py
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
from _common import SHARED, gold_rows, machine, ranks, summary, write

import qa
from qa.embedding import get_encoder
from qa.evaluation import load_questions
from qa.index import window_texts


def parts(index: qa.Index, docs: list[qa.Document]) -> dict[str, np.ndarray]:
    """Sentence vectors, neighbours' sum, title vectors and window-text vectors of every row of ``index``."""
    encoder = get_encoder()
    n = len(index)
    sentences = index.vector_store("dense").vectors(np.arange(n))
    doc = np.repeat(np.arange(len(docs)), [d.sentences for d in index.documents])
    same = doc[1:] == doc[:-1]
    neighbours = np.zeros_like(sentences)
    neighbours[1:] += sentences[:-1] * same[:, None]
    neighbours[:-1] += sentences[1:] * same[:, None]
    titles = encoder.encode_documents([d.title for d in docs])[doc]
    spans = [qa.sentences.split(d.text) for d in docs]
    windows = window_texts(docs, spans)
    t0 = time.perf_counter()
    window_vectors = encoder.encode_documents(windows)
    print(f"embedded {len(windows):,} windows in {time.perf_counter() - t0:.1f} s")
    return {"sentences": sentences, "neighbours": neighbours, "titles": titles, "windows": window_vectors}


def variants(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {"window text embedded": p["windows"]}
    for title_w, self_w in itertools.product((0.5, 1.0, 1.5), (1.0, 2.0)):
        v = title_w * p["titles"] + self_w * p["sentences"] + p["neighbours"]
        out[f"{title_w} title + {self_w} sentence + neighbours"] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def main() -> None:
    encoder = get_encoder()
    sets = []
    for name, docs_path, questions_path in (
        ("squad", SHARED / "squad" / "docs.jsonl", SHARED / "squad" / "questions.jsonl"),
        ("article", None, SHARED / "seed" / "questions.jsonl"),
    ):
        docs = qa.load_sources([docs_path]) if docs_path else [qa.documents.default_document()]
        index = qa.Index.build(docs, progress=False)
        questions = [q for q in load_questions(questions_path) if q.answerable]
        vectors = encoder.encode_queries([q.question for q in questions])
        made = parts(index, docs)
        sets.append((name, docs, made["sentences"], questions, vectors, gold_rows(index, questions), variants(made)))
    base = qa.get_settings()
    results: dict[str, Any] = {}
    for variant in sets[0][6]:
        for weight in (0.25, 0.5):
            row = {}
            for name, docs, sentences, questions, vectors, gold, made in sets:
                # The same sentences and vectors, with this variant's context vectors in place of qa's own.
                index = qa.Index.from_vectors(docs, sentences, context_vectors=made[variant],
                                              settings=base.replace(weight_dense_context=weight))
                row[name] = summary(ranks(index, questions, vectors, gold))
            key = f"{variant}, weight {weight}"
            results[key] = row
            print(f"{key:<52} SQuAD R@1 {row['squad']['R@1']:.3f} R@5 {row['squad']['R@5']:.3f} "
                  f"MRR@10 {row['squad']['MRR@10']:.4f} | article R@1 {row['article']['R@1']:.3f}", flush=True)
    write("context_vectors.json", {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
