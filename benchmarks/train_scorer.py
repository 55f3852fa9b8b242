"""Train the learned answer scorer of one model and write ``qa/data/scorer-<model>.json`` (byte for byte).

Usage: ``python benchmarks/train_scorer.py [--model minilm|mpnet] [--model-path FOLDER] [--cache DIR]``
(writes ``qa/data/scorer-<model>.json`` and ``benchmarks/results/train_scorer-<model>.json``).

What it does:

1. Builds the indexes (real model, default settings): the SQuAD paragraphs and the bundled article; and, for
   evaluation only, WikiQA dev. For every question it gathers the candidates exactly as ``Index.rank`` does
   (:func:`qa.scoring.candidates.gather`) with their four channel scores, and caches them under ``--cache``
   (keyed by the data files' SHA-256 and the model settings), so a second run costs no model time.
2. Training data: SQuAD answerable questions; a seeded third of the SQuAD questions re-asked with their own
   paragraph excluded (near-topic questions without an answer: negatives for triggering only); the reworded
   answerable and near-topic unanswerable questions of ``benchmarks/data/reworded/``; the seed questions and
   their paraphrases over the bundled article. **WikiQA dev is never trained on** (its licence is research-only):
   it is only evaluated, to compare designs; nothing it could change is chosen on it here.
3. The ranking model is linear over standardised :data:`qa.scoring.FEATURES`, trained *listwise* (per question,
   the softmax share of its correct candidates; the first scorer was pointwise, each candidate on its own:
   listwise gained 0.009 MRR@10 on WikiQA dev and 0.016 on the reworded questions, see the note). Linear,
   because in the first experiments (docs/notes/scorer-experiments.md) gradient boosting learnt SQuAD's lexical
   bias and lost 0.06 MRR@10 on real search queries (WikiQA) where the linear model over scale-free features
   gained 0.02: a few dozen coefficients cannot memorise how one data set was written. The triggering model is
   a logistic regression over the top candidate's :data:`qa.scoring.TRIGGER_FEATURES`; its inputs are *out-of-fold*
   ranking scores, so it learns how far to trust the ranker on questions the ranker has not seen.
4. Cross-validation is 4-fold **by SQuAD article** (never by question: questions on one paragraph share its
   words); the seed article is a group of its own. The answer threshold is the one maximising
   answer-triggering F1 on the out-of-fold confidences of the training questions.
5. Prints CV metrics against fixed fusion, and WikiQA dev metrics of the final scorer against fixed fusion;
   writes the scorer (sorted keys, floats rounded, fixed seed) and ``benchmarks/results/train_scorer-<model>.json``.
   Each model gets its own scorer (its scores are spread differently), recording the model and its weights' SHA-256.

Answer triggering (shared eval README): a question is answered correctly when an answer is given and its first
citation is a correct sentence; precision = correct / answered, recall = correct / questions with an answer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa.evaluation import EvalQuestion, load_questions  # noqa: E402
from qa.scoring import FEATURES, TRIGGER_FEATURES, features, trigger_features  # noqa: E402
from qa.scoring.model import Linear, Scorer, scorer_from_dict, scorer_to_dict  # noqa: E402

SEED = 16
FOLDS = 4
C = 1.0
RANKING = "listwise"  # or "pointwise" (each candidate on its own: the first scorer); see the experiments note
REWORDED_WEIGHT = 3.0  # a reworded question counts 3 SQuAD ones in ranking: few of them, and closer to real use
MASKED_SHARE = 3  # every third SQuAD question (after a seeded shuffle) is re-asked without its paragraph
FUSED_MIN_SCORE = 0.112  # qa's abstention threshold on the fused score today (Settings.min_score)
DIGITS = 6
#: The models a scorer is shipped for: name -> (model, SHA-256 of its weights). Scores differ between models
#: (mpnet's cosines are spread differently from MiniLM's), so each gets its own scorer, trained on its own scores.
MODELS = {
    "minilm": ("sentence-transformers/all-MiniLM-L6-v2",
               "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    "mpnet": ("sentence-transformers/all-mpnet-base-v2",
              "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),
}
RW = ROOT / "benchmarks" / "data" / "reworded"
#: The reworded question files (answerable and near-topic unanswerable, by hand; see their README).
REWORDED = tuple(RW / f for f in ("answerable.jsonl", "unanswerable.jsonl"))


def _shared() -> Path:
    for p in (os.environ.get("QA_EVAL_DATA"), ROOT.parent / "shared" / "eval", Path("/work/shared/eval")):
        if p and Path(p, "squad").is_dir():
            return Path(p)
    return ROOT.parent / "shared" / "eval"  # main() says what to do when it is missing


SHARED = _shared()
TRAIN_FILES = {
    "squad/docs.jsonl": SHARED / "squad" / "docs.jsonl",
    "squad/questions.jsonl": SHARED / "squad" / "questions.jsonl",
    "seed/article.txt": ROOT / "qa" / "data" / "article.txt",
    "seed/questions.jsonl": SHARED / "seed" / "questions.jsonl",
    "seed/paraphrase.jsonl": SHARED / "seed" / "paraphrase.jsonl",
    **{f"reworded/{p.name}": p for p in REWORDED},
}
EVAL_FILES = {
    "wikiqa_dev/docs.jsonl": SHARED / "wikiqa_dev" / "docs.jsonl",
    "wikiqa_dev/questions_all.jsonl": SHARED / "wikiqa_dev" / "questions_all.jsonl",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------- gathering


def _gather_set(index: qa.Index, questions: Sequence[EvalQuestion], groups: Sequence[str],
                masked: bool = False) -> list[dict[str, Any]]:
    """Candidates, channel scores, texts and gold flags of each question (JSON-ready)."""
    from qa.embedding import get_encoder
    from qa.evaluation import is_correct
    from qa.scoring.candidates import gather

    n = len(index)
    passages = index.passages(np.arange(n), np.zeros(n), context=0)
    vectors = get_encoder(index.settings).encode_queries([q.question for q in questions])
    every = np.arange(n, dtype=np.int64)
    out = []
    for q, v, g in zip(questions, vectors, groups, strict=True):
        allowed = None
        if masked:
            allowed = np.setdiff1d(every, index.rows_of([q.doc_id]))
        rows, scores = gather(index, q.question, v, k=10, allowed=allowed)
        gold = [False] * len(rows) if masked or not q.answerable else [is_correct(q, passages[r]) for r in rows]
        out.append({
            "qid": q.qid, "question": q.question, "group": g, "answerable": q.answerable and not masked,
            "texts": [passages[r].text for r in rows], "gold": gold,
            "scores": {c: [float(x) for x in s] for c, s in scores.items()},
        })
    return out


def _key(files: dict[str, Path]) -> str:
    """A cache key: the files' SHA-256 and the model settings the candidates depend on."""
    s = qa.get_settings()
    return hashlib.sha256(json.dumps({
        "files": {k: sha256(p) for k, p in files.items()}, "model": s.model, "backend": s.effective_backend,
        "focus": s.focus_weight, "seed": SEED, "version": 3,
    }, sort_keys=True).encode()).hexdigest()[:16]


def _cached_index(cache: Path, name: str, docs: Path) -> qa.Index:
    """The index of ``docs`` built with the current settings, saved under ``cache`` and reused (the mpnet build
    of the SQuAD paragraphs takes about 10 minutes)."""
    where = cache / f"index-{name}-{_key({name: docs})}"
    if where.is_dir():
        return qa.Index.load(where)
    index = qa.Index.build([docs], progress=False)
    index.save(where)
    return index


def _cached(cache: Path, name: str, files: dict[str, Path], make: Callable[[], list[dict[str, Any]]]
            ) -> list[dict[str, Any]]:
    """One set's gathered questions, from ``cache`` when the key of its files and settings matches."""
    path = cache / f"candidates-{name}-{_key(files)}.json"
    if path.is_file():
        print(f"{name}: candidates from cache {path}", flush=True)
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    t0 = time.perf_counter()
    out = make()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out), encoding="utf-8")
    tmp.replace(path)
    print(f"{name}: {len(out)} questions gathered in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _records(files: Sequence[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def gather_all(cache: Path) -> dict[str, list[dict[str, Any]]]:
    """Every set's gathered questions; each set is cached on its own (a new question file re-gathers only its set),
    and so are the indexes."""
    cache.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list[dict[str, Any]]] = {}
    squad_docs = TRAIN_FILES["squad/docs.jsonl"]
    squad: list[qa.Index] = []

    def squad_index() -> qa.Index:
        if not squad:
            squad.append(_cached_index(cache, "squad", squad_docs))
        return squad[0]

    article = lambda doc_id: f"squad-{int(doc_id[1:3]):02d}"  # noqa: E731 - "aNN-pMMM": article NN
    squad_files = {k: TRAIN_FILES[k] for k in ("squad/docs.jsonl", "squad/questions.jsonl")}
    squad_q = load_questions(TRAIN_FILES["squad/questions.jsonl"])
    sets["squad"] = _cached(cache, "squad", squad_files, lambda: _gather_set(
        squad_index(), squad_q, [article(q.doc_id or "") for q in squad_q]))
    order = np.random.default_rng(SEED).permutation(len(squad_q))
    masked_q = [squad_q[i] for i in sorted(order[: len(squad_q) // MASKED_SHARE].tolist())]
    sets["squad_masked"] = _cached(cache, "squad_masked", squad_files, lambda: _gather_set(
        squad_index(), masked_q, [article(q.doc_id or "") for q in masked_q], masked=True))
    rw_files = {k: p for k, p in TRAIN_FILES.items() if k.startswith("reworded/")}
    rw_paths = list(REWORDED)
    rw_q = [q for f in rw_paths for q in load_questions(f)]
    sets["reworded"] = _cached(cache, "reworded", {**rw_files, "squad/docs.jsonl": squad_docs}, lambda: _gather_set(
        squad_index(), rw_q, [f"squad-{int(r['article']):02d}" for r in _records(rw_paths)]))
    squad.clear()
    seed_files = {k: TRAIN_FILES[k] for k in ("seed/article.txt", "seed/questions.jsonl", "seed/paraphrase.jsonl")}
    seed_q = load_questions(TRAIN_FILES["seed/questions.jsonl"]) + load_questions(TRAIN_FILES["seed/paraphrase.jsonl"])
    sets["seed"] = _cached(cache, "seed", seed_files, lambda: _gather_set(
        qa.Index.build([TRAIN_FILES["seed/article.txt"]], progress=False), seed_q, ["seed"] * len(seed_q)))
    wiki_q = load_questions(EVAL_FILES["wikiqa_dev/questions_all.jsonl"])
    sets["wikiqa"] = _cached(cache, "wikiqa", EVAL_FILES, lambda: _gather_set(
        qa.Index.build([EVAL_FILES["wikiqa_dev/docs.jsonl"]], progress=False), wiki_q, ["wikiqa"] * len(wiki_q)))
    return sets


# ---------------------------------------------------------------------------------------------- training


@dataclass
class Question:
    """One gathered question as arrays: its features, gold flags and fixed-fusion scores."""

    qid: str
    set: str
    group: str
    answerable: bool
    x: np.ndarray
    y: np.ndarray
    fused: np.ndarray

    @property
    def has_gold(self) -> bool:
        return bool(self.y.any())


def to_questions(name: str, records: list[dict[str, Any]]) -> list[Question]:
    out = []
    for r in records:
        scores = {c: np.asarray(v, dtype=np.float64) for c, v in r["scores"].items()}
        x = features(r["question"], scores, r["texts"])
        out.append(Question(r["qid"], name, r["group"], bool(r["answerable"]), x,
                            np.asarray(r["gold"], dtype=bool), x[:, FEATURES.index("fused")]))
    return out


def fit_linear(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Linear:
    """A standardised logistic regression (lbfgs: deterministic for the same data)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    model = LogisticRegression(C=C, max_iter=1000, tol=1e-6, random_state=SEED)
    t0 = time.perf_counter()
    model.fit((x - mean) / scale, y, sample_weight=w)
    print(f"  fitted {x.shape[0]} rows x {x.shape[1]} in {time.perf_counter() - t0:.1f} s ({model.n_iter_[0]} it)",
          flush=True)
    return Linear(tuple(_r(v) for v in mean), tuple(_r(v) for v in scale), tuple(_r(v) for v in model.coef_[0]),
                  _r(float(model.intercept_[0])))


def _r(v: float) -> float:
    """Round to :data:`DIGITS` significant digits, so that the file's bytes do not hang on the last float bits."""
    v = float(v)
    return 0.0 if v == 0 else float(f"{v:.{DIGITS}g}")


def fit_listwise(x: np.ndarray, y: np.ndarray, lens: np.ndarray, w: np.ndarray) -> Linear:
    """A listwise linear ranker over standardised features: per question, maximise the softmax share of its
    correct candidates, ``w``-weighted, with the L2 penalty ``||coef||^2 / (2 C)``. L-BFGS from zero: deterministic.

    Only differences between one question's candidates count, so the model spends nothing on how likely a
    question is to have an answer (the triggering model's job); the intercept is 0.
    """
    from scipy.optimize import minimize

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    q = np.repeat(np.arange(len(lens)), lens)
    total = float(w.sum())

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        s = z @ beta
        e = np.exp(s - np.maximum.reduceat(s, starts)[q])
        every = np.add.reduceat(e, starts)
        ge = np.where(y, e, 0.0)
        gold = np.add.reduceat(ge, starts)
        value = -(w * (np.log(gold) - np.log(every))).sum() / total + beta @ beta / (2 * C * total)
        grad = ((w[q] * (e / every[q] - ge / gold[q]))[:, None] * z).sum(axis=0) / total + beta / (C * total)
        return float(value), grad

    t0 = time.perf_counter()
    res = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": 400, "gtol": 1e-6})
    print(f"  fitted {len(lens)} questions ({x.shape[0]} rows x {x.shape[1]}) listwise in "
          f"{time.perf_counter() - t0:.1f} s ({res.nit} it)", flush=True)
    return Linear(tuple(_r(v) for v in mean), tuple(_r(v) for v in scale), tuple(_r(v) for v in res.x), 0.0)


def fit_rank(train: Sequence[Question]) -> Linear:
    rows = [q for q in train if q.answerable and q.has_gold]
    x = np.concatenate([q.x for q in rows])
    weight = [REWORDED_WEIGHT if q.set == "reworded" else 1.0 for q in rows]
    if RANKING == "listwise":
        return fit_listwise(x, np.concatenate([q.y for q in rows]), np.array([len(q.y) for q in rows]),
                            np.array(weight))
    y = np.concatenate([q.y for q in rows]).astype(np.float64)
    w = np.concatenate([np.full(len(q.y), wq) for q, wq in zip(rows, weight, strict=True)])
    return fit_linear(x, y, w)


def order_of(x: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Best first by score, labels last (as :meth:`qa.scoring.Scorer.order`)."""
    label = x[:, FEATURES.index("s_label")]
    return np.lexsort((np.arange(len(scores)), -scores, label))


def top_rows(questions: Sequence[Question], rank: Linear) -> tuple[np.ndarray, np.ndarray]:
    """Trigger features of each question's top candidate under ``rank`` and whether that top is correct."""
    feats, correct = [], []
    for q in questions:
        if len(q.y) == 0:
            feats.append(np.zeros(len(TRIGGER_FEATURES)))
            correct.append(False)
            continue
        s = rank.decision(q.x)
        o = order_of(q.x, s)
        feats.append(trigger_features(q.x, s, o))
        correct.append(bool(q.y[o[0]]))
    return np.array(feats), np.array(correct)


def trigger_f1(p: np.ndarray, correct: np.ndarray, answerable: np.ndarray, t: float) -> dict[str, float]:
    answered = p >= t
    good = int((answered & correct).sum())
    precision = good / max(int(answered.sum()), 1)
    recall = good / max(int(answerable.sum()), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "answered": int(answered.sum()), "questions": len(p)}


def best_threshold(p: np.ndarray, correct: np.ndarray, answerable: np.ndarray) -> float:
    grid = [round(t, 2) for t in np.arange(0.05, 0.951, 0.01)]
    return max(grid, key=lambda t: (trigger_f1(p, correct, answerable, t)["f1"], -t))


def ranking_metrics(questions: Sequence[Question], score: Callable[[Question], np.ndarray]) -> dict[str, float]:
    """MRR@10 and R@1 over the answerable questions that have a correct sentence in the index."""
    rr, r1, n = 0.0, 0, 0
    for q in questions:
        if not q.answerable:
            continue
        n += 1
        if not q.has_gold:
            continue
        o = order_of(q.x, score(q))[:10]
        hit = np.flatnonzero(q.y[o])
        if len(hit):
            rr += 1.0 / (hit[0] + 1)
            r1 += int(hit[0] == 0)
    return {"mrr@10": round(rr / max(n, 1), 4), "r@1": round(r1 / max(n, 1), 4), "questions": n}


def fused_order_metrics(questions: Sequence[Question]) -> dict[str, float]:
    """Fixed fusion as qa ranks today (no label rule): MRR@10, R@1."""
    rr, r1, n = 0.0, 0, 0
    for q in questions:
        if not q.answerable:
            continue
        n += 1
        o = np.lexsort((np.arange(len(q.fused)), -q.fused))[:10]
        hit = np.flatnonzero(q.y[o])
        if len(hit):
            rr += 1.0 / (hit[0] + 1)
            r1 += int(hit[0] == 0)
    return {"mrr@10": round(rr / max(n, 1), 4), "r@1": round(r1 / max(n, 1), 4), "questions": n}


def fused_trigger(questions: Sequence[Question]) -> dict[str, float]:
    p, correct = [], []
    for q in questions:
        if len(q.fused) == 0:
            p.append(-1.0)
            correct.append(False)
            continue
        top = int(np.lexsort((np.arange(len(q.fused)), -q.fused))[0])
        p.append(float(q.fused[top]))
        correct.append(bool(q.y[top]))
    answerable = np.array([q.answerable and q.has_gold for q in questions])
    return trigger_f1(np.array(p), np.array(correct), answerable, FUSED_MIN_SCORE)


def fit_trigger(f: np.ndarray, correct: np.ndarray) -> Linear:
    return fit_linear(f, correct.astype(np.float64), np.ones(len(correct)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="minilm",
                        help="which model's scorer to train (default minilm)")
    parser.add_argument("--model-path", default=None,
                        help="where that model is, if not found by its name (a local sentence-transformers folder)")
    parser.add_argument("--out", type=Path, default=None, help="default qa/data/scorer-<model>.json")
    parser.add_argument("--results", type=Path, default=None,
                        help="default benchmarks/results/train_scorer-<model>.json")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("QA_SCORER_CACHE", "/tmp/qa-scorer-cache")))
    args = parser.parse_args()
    import sklearn

    from qa.embedding import resolve_model

    model_name = args.model
    canonical, weights_sha = MODELS[model_name]
    args.out = args.out or ROOT / "qa" / "data" / f"scorer-{model_name}.json"
    args.results = args.results or ROOT / "benchmarks" / "results" / f"train_scorer-{model_name}.json"
    os.environ["QA_MODEL"] = args.model_path or canonical  # qa.get_settings() reads it: every index below uses it
    if model_name == "mpnet":  # its int8 export loses the vectors (dense-alone WikiQA MRR@10 0.001): float ONNX
        os.environ.setdefault("QA_BACKEND", "onnx")
    found = resolve_model(os.environ["QA_MODEL"]).weights_sha256
    if found != weights_sha:
        raise SystemExit(f"model {os.environ['QA_MODEL']!r} has weights SHA-256 {str(found)[:12]}…, not "
                         f"{canonical}'s {weights_sha[:12]}…; give its folder with --model-path")
    if not (SHARED / "squad").is_dir():
        raise SystemExit(f"shared evaluation data not found at {SHARED}; set QA_EVAL_DATA to the folder with squad/")
    sets = gather_all(args.cache)
    data = {name: to_questions(name, recs) for name, recs in sets.items()}
    print("features computed", flush=True)
    train = data["squad"] + data["squad_masked"] + data["reworded"] + data["seed"]
    groups = sorted({q.group for q in train})
    fold_of = {g: i % FOLDS for i, g in enumerate(groups)}

    # Out-of-fold: ranking scores (for the trigger's inputs) and, nested, trigger confidences (for the threshold).
    oof_rank: dict[int, Linear] = {}
    oof_feats = np.zeros((len(train), len(TRIGGER_FEATURES)))
    oof_correct = np.zeros(len(train), dtype=bool)
    for fold in range(FOLDS):
        held = [i for i, q in enumerate(train) if fold_of[q.group] == fold]
        rank = fit_rank([q for q in train if fold_of[q.group] != fold])
        oof_rank[fold] = rank
        f, c = top_rows([train[i] for i in held], rank)
        oof_feats[held], oof_correct[held] = f, c
    answerable = np.array([q.answerable and q.has_gold for q in train])
    oof_p = np.zeros(len(train))
    for fold in range(FOLDS):
        held = np.array([fold_of[q.group] == fold for q in train])
        trig = fit_trigger(oof_feats[~held], oof_correct[~held])
        oof_p[held] = 1 / (1 + np.exp(-trig.decision(oof_feats[held])))
    threshold = best_threshold(oof_p, oof_correct, answerable)

    cv: dict[str, Any] = {}
    for name in ("squad", "reworded", "seed"):
        qs = [q for q in train if q.set == name]
        cv[name] = {
            "scorer": ranking_metrics(qs, lambda q: oof_rank[fold_of[q.group]].decision(q.x)),
            "fused": fused_order_metrics(qs),
        }
    seed = [q for q in train if q.set == "seed"]
    for name, para in (("seed_questions", False), ("seed_paraphrases", True)):
        qs = [q for q in seed if ("-para-" in q.qid) == para]
        cv[name] = {
            "scorer": ranking_metrics(qs, lambda q: oof_rank[fold_of[q.group]].decision(q.x)),
            "fused": fused_order_metrics(qs),
        }
    at = {q.qid: i for i, q in enumerate(train)}
    answered = {q.qid: bool(oof_p[at[q.qid]] >= threshold) for q in seed}
    cv["seed_at_threshold"] = {
        "answerable_answered": f"{sum(answered[q.qid] for q in seed if q.answerable)}/"
                               f"{sum(q.answerable for q in seed)}",
        "near_topic_declined": f"{sum(not answered[q.qid] for q in seed if not q.answerable and '-para-' in q.qid)}/"
                               f"{sum(not q.answerable and '-para-' in q.qid for q in seed)}",
        "off_topic_declined": f"{sum(not answered[q.qid] for q in seed if not q.answerable and '-para-' not in q.qid)}/"
                              f"{sum(not q.answerable and '-para-' not in q.qid for q in seed)}",
    }
    cv["triggering"] = {
        "scorer": trigger_f1(oof_p, oof_correct, answerable, threshold),
        "fused": fused_trigger(train),
    }
    for name in ("squad", "squad_masked", "reworded", "seed"):
        sel = np.array([q.set == name for q in train])
        cv["triggering"][f"scorer_{name}"] = trigger_f1(oof_p[sel], oof_correct[sel], answerable[sel], threshold)

    # The shipped scorer: ranking on everything; trigger on the out-of-fold top features of everything.
    rank = fit_rank(train)
    trig = fit_trigger(oof_feats, oof_correct)
    files = {k: sha256(p) for k, p in TRAIN_FILES.items()}
    versions = {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "qa": qa.__version__}
    s = qa.get_settings()
    scorer = Scorer(model_name, FEATURES, rank, TRIGGER_FEATURES, trig, threshold, tuple(sorted(files.items())),
                    tuple(sorted(versions.items())), f"{canonical} ({getattr(s, 'effective_backend', s.backend)})")
    training = {"seed": SEED, "folds": FOLDS, "C": C, "ranking": RANKING, "reworded_weight": REWORDED_WEIGHT,
                "masked_share": f"1/{MASKED_SHARE}", "threshold_from": "4-fold CV by article, max triggering F1",
                "questions": {n: len([q for q in train if q.set == n]) for n in ("squad", "squad_masked",
                                                                                  "reworded", "seed")}}
    payload = scorer_to_dict(scorer, {"training": training, "model_weights_sha256": weights_sha})
    text = json.dumps(payload, sort_keys=True, indent=1) + "\n"
    scorer = scorer_from_dict(json.loads(text), "the new scorer")  # evaluate exactly what is written

    wiki = data["wikiqa"]
    wf, wc = top_rows(wiki, scorer.rank)
    wp = np.asarray(scorer.confidence(wf))
    wans = np.array([q.answerable and q.has_gold for q in wiki])
    wikiqa = {
        "note": "research-only licence: evaluated, never trained on",
        "ranking": {"scorer": ranking_metrics(wiki, lambda q: scorer.rank_scores(q.x)),
                    "fused": fused_order_metrics(wiki)},
        "triggering": {"scorer": trigger_f1(wp, wc, wans, threshold), "fused": fused_trigger(wiki),
                       "scorer_at": {f"{t:.2f}": trigger_f1(wp, wc, wans, t) for t in (0.3, 0.4, 0.5, 0.6)}},
    }
    args.out.write_text(text, encoding="utf-8")
    results = {"scorer": str(args.out.relative_to(ROOT)) if args.out.is_relative_to(ROOT) else str(args.out),
               "scorer_sha256": hashlib.sha256(text.encode()).hexdigest(), "threshold": threshold,
               "cv_by_article": cv, "wikiqa_dev": wikiqa, "training": training, "versions": versions}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"cv_by_article": cv, "wikiqa_dev": wikiqa, "threshold": threshold}, indent=1, sort_keys=True))
    print(f"wrote {args.out} (sha256 {results['scorer_sha256'][:16]}…) and {args.results}")


if __name__ == "__main__":
    main()
