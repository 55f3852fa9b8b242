"""The learned answer scorer: a frozen, JSON-loaded pair of linear models, evaluated with numpy alone.

A scorer file (``qa/data/scorer-<name>.json``, written by ``benchmarks/train_scorer.py``) holds two logistic
regressions over standardised features: the ranking model over :data:`~qa.scoring.features.FEATURES` of each
candidate, and the triggering model over :data:`TRIGGER_FEATURES` of the top candidate, whose probability is
the answer's ``confidence``; ``threshold`` is the confidence below which the documents are said not to answer.
It also records the SHA-256 of every file it was trained on and the library versions used. It is plain JSON
(never pickle), so loading it runs no code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .features import FEATURES

__all__ = ["FORMAT", "TRIGGER_FEATURES", "Linear", "Scorer", "ScorerError", "load_scorer", "trigger_features"]

#: The ``format`` field every scorer file carries.
FORMAT = "qa-scorer/1"

#: Features of the top candidate read by the triggering model, in order.
TRIGGER_FEATURES: tuple[str, ...] = (
    "top_score",
    "top_gap",
    "dense",
    "bm25",
    "dense_context",
    "q_maxdense",
    "q_maxbm25",
    "s_label",
    "q_len",
    # How far the top stands out among the question's candidates: scale-free against how well the index as a whole
    # matches the question (a small document's tenth-best sentence sits lower than a large collection's).
    "top_share",
    "dense_over10",
    "q_maxdense_over10",
    "bm25_context",
)

_GAP_ALONE = 5.0  # the gap given to a lone candidate: it has no runner-up, so it stands well clear
_TENTH = 10  # the background a top sentence is measured against: the tenth best dense score (the last if fewer)


class ScorerError(ConfigError):
    """A scorer file cannot be used: missing, not a scorer, or made for other features than this code's."""


@dataclass(frozen=True)
class Linear:
    """A logistic regression over standardised features: ``((x - mean) / scale) @ coef + intercept``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        """The linear score (log-odds) of each row of ``x``.

        Example:
            >>> import numpy as np
            >>> from qa.scoring.model import Linear
            >>> Linear((1.0,), (2.0,), (4.0,), 0.5).decision(np.array([[3.0], [1.0]])).tolist()
            [4.5, 0.5]
        """
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z @ np.asarray(self.coef) + self.intercept, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "scale": list(self.scale), "coef": list(self.coef),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], width: int, what: str) -> Linear:
        parts = {key: tuple(float(v) for v in d[key]) for key in ("mean", "scale", "coef")}
        bad = {key: len(v) for key, v in parts.items() if len(v) != width}
        if bad:
            raise ScorerError(f"{what}: {bad} values where {width} features are listed; retrain the scorer")
        if any(v <= 0 for v in parts["scale"]):
            raise ScorerError(f"{what}: a standardisation scale is not positive; retrain the scorer")
        return cls(parts["mean"], parts["scale"], parts["coef"], float(d["intercept"]))


@dataclass(frozen=True)
class Scorer:
    """A trained answer scorer (see the module docstring); load one with :func:`load_scorer`."""

    name: str
    features: tuple[str, ...]
    rank: Linear
    trigger_features: tuple[str, ...]
    trigger: Linear
    threshold: float
    trained_on: tuple[tuple[str, str], ...] = ()
    versions: tuple[tuple[str, str], ...] = ()
    model: str = ""

    def rank_scores(self, features: np.ndarray) -> np.ndarray:
        """The ranking score of each candidate (a row of :func:`~qa.scoring.features.features`); higher is better.

        Example:
            >>> import numpy as np
            >>> from qa.scoring import CHANNELS, features, load_scorer
            >>> s = load_scorer("minilm")
            >>> good = {"dense": 0.8, "dense_context": 0.7, "bm25": 0.9, "bm25_context": 0.6}
            >>> x = features("Who led it?", {c: np.array([good[c], 0.1]) for c in CHANNELS},
            ...              ["It was led by Senator Graham.", "The weather was fine."])
            >>> int(np.argmax(s.rank_scores(x)))
            0
        """
        return self.rank.decision(features)

    def order(self, features: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Candidate indices best first: by score, but labels (``s_label``) after every sentence, ties by index."""
        scores = self.rank_scores(features) if scores is None else scores
        label = features[:, FEATURES.index("s_label")] if len(features) else np.zeros(0)
        return np.lexsort((np.arange(len(scores)), -scores, label))

    def confidence(self, top_features: np.ndarray) -> float | np.ndarray:
        """Probability that the top candidate answers, from its :func:`trigger_features` (one row or many)."""
        z = self.trigger.decision(np.atleast_2d(top_features))
        p = 1.0 / (1.0 + np.exp(-z))
        return float(p[0]) if np.ndim(top_features) == 1 else p

    def found(self, confidence: float) -> bool:
        """Whether an answer with this ``confidence`` is given (at or above :attr:`threshold`)."""
        return confidence >= self.threshold


def trigger_features(features: np.ndarray, scores: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The :data:`TRIGGER_FEATURES` of the top candidate ``order[0]`` (``scores``: its rank scores).

    Example:
        >>> import numpy as np
        >>> from qa.scoring.features import FEATURES
        >>> from qa.scoring.model import TRIGGER_FEATURES, trigger_features
        >>> x = np.zeros((2, len(FEATURES)))
        >>> t = trigger_features(x, np.array([2.0, 0.5]), np.array([0, 1]))
        >>> float(t[TRIGGER_FEATURES.index("top_gap")])
        1.5
    """
    top = int(order[0])
    scores = np.asarray(scores, dtype=np.float64)
    gap = float(scores[top] - scores[int(order[1])]) if len(order) > 1 else _GAP_ALONE
    row = {name: float(features[top, FEATURES.index(name)]) for name in TRIGGER_FEATURES if name in FEATURES}
    row["top_score"] = float(scores[top])
    row["top_gap"] = gap
    e = np.exp(scores - scores.max())
    row["top_share"] = float(e[top] / e.sum())
    dense = features[:, FEATURES.index("dense")]
    tenth = float(np.sort(dense)[::-1][min(_TENTH, len(dense)) - 1])
    row["dense_over10"] = row["dense"] - tenth
    row["q_maxdense_over10"] = float(dense.max()) - tenth
    return np.array([row[name] for name in TRIGGER_FEATURES], dtype=np.float64)


def scorer_to_dict(scorer: Scorer, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object of ``scorer`` (what :func:`load_scorer` reads back)."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "name": scorer.name,
        "features": list(scorer.features),
        "rank": scorer.rank.to_dict(),
        "trigger_features": list(scorer.trigger_features),
        "trigger": scorer.trigger.to_dict(),
        "threshold": scorer.threshold,
        "trained_on": dict(scorer.trained_on),
        "versions": dict(scorer.versions),
        "model": scorer.model,
    }
    out.update(extra or {})
    return out


def scorer_from_dict(d: Mapping[str, Any], where: str) -> Scorer:
    """The :class:`Scorer` of a JSON object, checked against this code's feature names."""
    if not isinstance(d, Mapping) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, Mapping) else type(d).__name__
        raise ScorerError(f"{where} is not a qa scorer file (format {got!r}, expected {FORMAT!r})")
    for key, expected in (("features", FEATURES), ("trigger_features", TRIGGER_FEATURES)):
        names = tuple(d.get(key, ()))
        if names != expected:
            extra = sorted(set(names) - set(expected))
            lacking = sorted(set(expected) - set(names))
            raise ScorerError(
                f"{where} was trained on other {key} than this version of qa computes (extra {extra}, missing "
                f"{lacking}, or another order); retrain it with benchmarks/train_scorer.py or use the shipped one"
            )
    try:
        threshold = float(d["threshold"])
        if not math.isfinite(threshold):
            raise ValueError("threshold is not finite")
        return Scorer(
            name=str(d["name"]),
            features=FEATURES,
            rank=Linear.from_dict(d["rank"], len(FEATURES), f"{where} rank"),
            trigger_features=TRIGGER_FEATURES,
            trigger=Linear.from_dict(d["trigger"], len(TRIGGER_FEATURES), f"{where} trigger"),
            threshold=threshold,
            trained_on=tuple(sorted((str(k), str(v)) for k, v in d.get("trained_on", {}).items())),
            versions=tuple(sorted((str(k), str(v)) for k, v in d.get("versions", {}).items())),
            model=str(d.get("model", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScorerError(f"{where} is damaged ({exc!r}); retrain it with benchmarks/train_scorer.py") from None


def load_scorer(path_or_name: str | Path) -> Scorer:
    """Load a scorer: a shipped one by name (``"minilm"`` is ``qa/data/scorer-minilm.json``) or a JSON file.

    Raises:
        ScorerError: no such scorer, not a scorer file, or trained on other features than this code computes.

    Example:
        >>> from qa.scoring import load_scorer
        >>> s = load_scorer("minilm")
        >>> s.name, 0.0 < s.threshold < 1.0
        ('minilm', True)
    """
    text_path = Path(path_or_name)
    if isinstance(path_or_name, str) and text_path.suffix != ".json" and "/" not in path_or_name:
        shipped = resources.files("qa") / "data" / f"scorer-{path_or_name}.json"
        if not shipped.is_file():
            known = sorted(p.name[len("scorer-"):-len(".json")] for p in (resources.files("qa") / "data").iterdir()
                           if p.name.startswith("scorer-") and p.name.endswith(".json"))
            raise ScorerError(f"no shipped scorer named {path_or_name!r}; known: {known}, or give a .json path")
        text, where = shipped.read_text(encoding="utf-8"), f"shipped scorer {path_or_name!r}"
    else:
        try:
            text, where = text_path.read_text(encoding="utf-8"), f"scorer file {text_path}"
        except OSError as exc:
            raise ScorerError(f"cannot read scorer file {text_path}: {exc.strerror}; give a scorer .json") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScorerError(f"{where} is not JSON ({exc}); give a file written by benchmarks/train_scorer.py") from None
    return scorer_from_dict(data, where)
