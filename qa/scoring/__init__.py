"""The learned answer scorer: features of a question's candidates, and the linear models that rank them and
decide whether the top one answers (see ``benchmarks/train_scorer.py`` for how the shipped one is trained).

Runtime needs numpy only; :mod:`qa.scoring.candidates` is the one module that reads an index's internals.
"""

from __future__ import annotations

from .features import (
    CHANNELS,
    FEATURES,
    QuestionProfile,
    answer_cues,
    features,
    is_label,
    question_profile,
    question_type,
)
from .model import TRIGGER_FEATURES, Scorer, ScorerError, load_scorer, trigger_features

__all__ = [
    "CHANNELS",
    "FEATURES",
    "TRIGGER_FEATURES",
    "QuestionProfile",
    "Scorer",
    "ScorerError",
    "answer_cues",
    "features",
    "is_label",
    "load_scorer",
    "question_profile",
    "question_type",
    "trigger_features",
]
