"""Which scorer ranks an index's questions: the ``scorer`` setting, resolved against the index's model.

``scorer="auto"`` (the default) is the shipped scorer trained for the index's model (``minilm`` for
all-MiniLM-L6-v2, ``mpnet`` for all-mpnet-base-v2, when shipped), and plain fixed-weight fusion for any other
model: a scorer reads raw cosine similarities, whose scale differs from one model to the next, so one trained
for MiniLM is not trusted on a model it has never seen (train one with ``benchmarks/train_scorer.py``).
``scorer="fusion"`` always selects fusion; any other value is a shipped scorer's name or a ``.json`` path.
"""

from __future__ import annotations

import functools
from importlib import resources

from ..config import DEFAULT_MODEL
from .model import Scorer, load_scorer

__all__ = ["AUTO", "FUSION", "scorer_for", "shipped_scorer_of"]

AUTO = "auto"
FUSION = "fusion"

#: Model names (as given in settings) each shipped scorer was trained for.
_SHIPPED_FOR = {
    "minilm": {DEFAULT_MODEL, "all-MiniLM-L6-v2"},
    "mpnet": {"sentence-transformers/all-mpnet-base-v2", "all-mpnet-base-v2"},
}


def shipped_scorer_of(model: str) -> str | None:
    """The name of the shipped scorer trained for ``model``, or ``None`` (no such scorer is shipped).

    Example:
        >>> from qa.scoring.choice import shipped_scorer_of
        >>> shipped_scorer_of("sentence-transformers/all-MiniLM-L6-v2"), shipped_scorer_of("my/own-model")
        ('minilm', None)
    """
    for name, models in _SHIPPED_FOR.items():
        if model in models and (resources.files("qa") / "data" / f"scorer-{name}.json").is_file():
            return name
    return None


@functools.lru_cache(maxsize=16)
def scorer_for(setting: str, model: str) -> Scorer | None:
    """The scorer the ``scorer`` setting selects for an index built with ``model``; ``None`` means fusion.

    Loaded once per (setting, model) in a process: a scorer is a few hundred numbers, read on the first question.

    Raises:
        ScorerError: the setting names no shipped scorer and no readable scorer file.

    Example:
        >>> from qa.scoring.choice import scorer_for
        >>> scorer_for("auto", "sentence-transformers/all-MiniLM-L6-v2").name, scorer_for("fusion", "x")
        ('minilm', None)
    """
    if setting == FUSION:
        return None
    if setting == AUTO:
        name = shipped_scorer_of(model)
        return None if name is None else load_scorer(name)
    return load_scorer(setting)
