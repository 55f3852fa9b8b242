"""Per-candidate features of the learned answer scorer (pure numpy, no model, no index).

A question's candidates come with the four channels' scores (:data:`CHANNELS`, each on its absolute scale:
cosine similarity, or BM25 as a share of the most a sentence could score for the question) and their
sentence texts. :func:`features` turns them into one row of :data:`FEATURES` per candidate: each channel's
score, its distance to the best candidate's and its log rank; the question's profile (how well anything
matches at all); answer-type cues (and whether the thing asked for is in the sentence and new to the question);
sentence length and label shape. Nothing about a sentence's position in
its document or the document's length is used: those say more about how a data set was made than about
whether a sentence answers.

Example:
    >>> import numpy as np
    >>> from qa.scoring.features import CHANNELS, FEATURES, features
    >>> scores = {c: np.array([0.9, 0.2]) for c in CHANNELS}
    >>> x = features("When did it end?", scores, ["It ended in 2021.", "OWNERSHIP"])
    >>> x.shape == (2, len(FEATURES)), x[:, FEATURES.index("when_date")].tolist()
    (True, [1.0, 0.0])
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CHANNELS",
    "FEATURES",
    "FUSION_WEIGHTS",
    "QuestionProfile",
    "answer_cues",
    "features",
    "is_label",
    "new_cue",
    "question_profile",
    "question_type",
]

#: The retrieval channels whose scores the scorer reads, in feature order.
CHANNELS = ("bm25", "bm25_context", "dense", "dense_context")

#: The default fixed fusion weights (qa.config): their fused score is one feature among the others.
FUSION_WEIGHTS = {"bm25": 1.0, "bm25_context": 0.5, "dense": 0.25, "dense_context": 0.25}

#: Question types recognised by :func:`question_type`, most specific first.
QUESTION_TYPES = ("how many", "how much", "who", "when", "where", "what", "which", "why", "how")

_CUES = ("when_date", "howmany_num", "who_name", "where_name")

#: Names of the feature columns :func:`features` returns, in order (a shipped scorer must list the same).
FEATURES: tuple[str, ...] = (
    *(f"{c}{suffix}" for c in CHANNELS for suffix in ("", "_rel", "_lrank")),
    "fused",
    "fused_rel",
    "q_maxdense",
    "q_maxbm25",
    "q_len",
    "s_loglen",
    "s_label",
    *_CUES,
    # The thing asked for is in the sentence and not already in the question: a date/number/name the question
    # lacks ("cue_new"); for how many/much, a number followed by a word of the question's focus ("2,500 troops").
    "cue_new",
    "num_noun",
    # Interactions that let a linear model trust meaning more when the question shares few words with anything.
    "dense_x_lexgap",
    "bm25_x_lex",
    "dense_context_x_lexgap",
    "dense_rel_x_lexgap",
)

_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December|century|decade)\b"
)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion)\b", re.I
)
# A capitalised word that does not start the text or a sentence: a name, roughly.
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+")
# Number words for "cue_new" (a few more than _NUMBER) and a number with up to three words after it.
_NUMBER_WORDS = re.compile(
    r"\b\d[\d,.]*\b|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundred|thousand|million|billion"
    r"|dozen)\b", re.I
)
_NUMBER_NOUN = re.compile(
    r"\b(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred"
    r"|thousand|million|billion|dozens?)((?:\s+[\w-]+){1,3})", re.I
)
#: Words of a question that say what kind of thing it asks, not what about: never its focus or new content.
_ASKING = ("who", "what", "when", "where", "which", "why", "how", "whose", "whom", "many", "much", "is", "are", "was",
           "were", "be", "been", "being", "am", "do", "does", "did", "has", "have", "had", "can", "could", "will",
           "would", "shall", "should", "may", "might", "must")
_FINAL = re.compile(r"[.!?][\'\")\]]*$")
_NUMBERED_HEADING = re.compile(r"^(\d+(\.\d+)*\.?|[IVXLC]+\.|[A-Z]\.)\s+[A-Z][A-Z\s&,'-]*\.?$")
_LOWER = re.compile(r"[a-z]")
_WORD = re.compile(r"\w+")


def is_label(text: str) -> bool:
    """Whether ``text`` is shaped like a heading or label rather than a sentence that can answer.

    A label is short (at most 6 words) with no final punctuation, or all capitals (at most 10 words), or a
    numbered capitalised heading, or has no lower-case letter at all (numbers, codes). Such text is never the
    cited answer.

    Example:
        >>> from qa.scoring.features import is_label
        >>> is_label("4. OWNERSHIP."), is_label("DISCLAIMER OF WARRANTY."), is_label("Table 3")
        (True, True, True)
        >>> is_label("12,400 (2019)"), is_label("The delegation was led by Senator Graham.")
        (True, False)
    """
    s = text.strip()
    words = s.split()
    if len(words) <= 6 and not _FINAL.search(s):
        return True
    if s.isupper() and len(words) <= 10:
        return True
    if _NUMBERED_HEADING.match(s):
        return True
    return not _LOWER.search(s)


_TYPE_PATTERNS = tuple((t, re.compile(r"\b" + t + r"\b")) for t in QUESTION_TYPES)

#: The answer-type cue each question type switches on, and the test of a sentence for it.
_CUE_OF_TYPE = {"when": "when_date", "how many": "howmany_num", "how much": "howmany_num", "who": "who_name",
                "where": "where_name"}


def _has_date(text: str) -> bool:
    return bool(_YEAR.search(text) or _MONTH.search(text))


_CUE_TESTS: dict[str, Callable[[str], bool]] = {
    "when_date": _has_date,
    "howmany_num": lambda text: bool(_NUMBER.search(text)),
    "who_name": lambda text: bool(_NAME.search(text)),
    "where_name": lambda text: bool(_NAME.search(text)),
}


@dataclass(frozen=True)
class QuestionProfile:
    """What the features need to know of a question, worked out once per question (not once per candidate).

    Attributes:
        text: the question.
        type: its :func:`question_type`.
        n_words: how many words (``\\w+`` runs) it has.
        cue: the one answer-type cue (of ``when_date``, ``howmany_num``, ``who_name``, ``where_name``) its type
            switches on, or ``None``.
        words: its words (``\\w+`` runs), lower-cased: what a sentence's date, number or name must not be to
            count as new (``cue_new``).
        focus: the stems of its focus words (:func:`qa.lexical.focus_words`, without question words).
    """

    text: str
    type: str
    n_words: int
    cue: str | None
    words: frozenset[str] = frozenset()
    focus: frozenset[str] = frozenset()


def question_profile(question: str) -> QuestionProfile:
    """The :class:`QuestionProfile` of ``question``.

    Example:
        >>> from qa.scoring.features import question_profile
        >>> p = question_profile("How many troops stayed?")
        >>> p.type, p.n_words, p.cue
        ('how many', 4, 'howmany_num')
    """
    from ..lexical import _term, focus_words

    t = question_type(question)
    asking = {_term(w) for w in _ASKING}
    focus = frozenset(_term(w) for w in focus_words(question)) - asking
    return QuestionProfile(question, t, len(_WORD.findall(question)), _CUE_OF_TYPE.get(t),
                           frozenset(_WORD.findall(question.lower())), focus)


def new_cue(profile: QuestionProfile, text: str) -> tuple[float, float]:
    """``(cue_new, num_noun)`` of ``text`` for the question of ``profile``.

    ``cue_new``: the sentence holds the kind of thing asked for that the question does not already hold (a year or
    month for when, a number for how many/much, a capitalised name for who/where). ``num_noun``: for how many/much
    with a focus, a number (not in the question) followed within three words by a focus word.

    Example:
        >>> from qa.scoring.features import new_cue, question_profile
        >>> q = question_profile("How many troops stayed in 2021?")
        >>> new_cue(q, "About 2,500 troops stayed."), new_cue(q, "In 2021 they stayed.")
        ((1.0, 1.0), (0.0, 0.0))
        >>> who = question_profile("Who met Trump?")
        >>> new_cue(who, "He met Trump."), new_cue(who, "The envoy, Mr Beach, met Trump.")
        ((0.0, 0.0), (1.0, 0.0))
    """
    from ..lexical import _term

    cue, asked = profile.cue, profile.words
    if cue == "when_date":
        found = {m.group(0).lower() for m in _YEAR.finditer(text)} | {m.group(0).lower() for m in _MONTH.finditer(text)}
        return float(bool(found - asked)), 0.0
    if cue == "howmany_num":
        found = {m.group(0).lower() for m in _NUMBER_WORDS.finditer(text)}
        noun = 0.0
        if profile.focus:
            for m in _NUMBER_NOUN.finditer(text):
                if m.group(0).split()[0].lower() not in asked and {
                        _term(w.lower()) for w in m.group(1).split()} & profile.focus:
                    noun = 1.0
                    break
        return float(bool(found - asked)), noun
    if cue in ("who_name", "where_name"):
        return float(bool({m.group(0).lower() for m in _NAME.finditer(text)} - asked)), 0.0
    return 0.0, 0.0


def question_type(question: str) -> str:
    """The first :data:`QUESTION_TYPES` word in ``question`` (lower-cased), or ``"other"``.

    Example:
        >>> from qa.scoring.features import question_type
        >>> question_type("How many people live there?"), question_type("Who led it?"), question_type("Paris?")
        ('how many', 'who', 'other')
    """
    q = question.lower()
    for t, pattern in _TYPE_PATTERNS:
        if pattern.search(q):
            return t
    return "other"


def answer_cues(question: QuestionProfile | str, text: str) -> dict[str, float]:
    """Answer-type cues: whether ``text`` holds the kind of thing ``question`` asks for.

    ``when_date`` (a when-question and a year or month), ``howmany_num`` (how many/much and a number),
    ``who_name`` and ``where_name`` (who/where and a capitalised word inside the sentence). ``question`` is the
    question's :func:`question_profile` (work it out once when testing many sentences) or its text.

    Example:
        >>> from qa.scoring.features import answer_cues, question_profile
        >>> answer_cues("How many troops stayed?", "About 2,500 troops stayed.")["howmany_num"]
        1.0
        >>> who = question_profile("Who visited?")
        >>> answer_cues(who, "the senator from Ohio visited.")["who_name"], answer_cues(who, "It rained.")["who_name"]
        (1.0, 0.0)
        >>> answer_cues("When did it end?", "It ended.")["when_date"]
        0.0
    """
    profile = question if isinstance(question, QuestionProfile) else question_profile(question)
    cues = dict.fromkeys(_CUES, 0.0)
    if profile.cue is not None:
        cues[profile.cue] = float(_CUE_TESTS[profile.cue](text))
    return cues


def features(
    question: QuestionProfile | str, scores: Mapping[str, np.ndarray], texts: Sequence[str]
) -> np.ndarray:
    """The feature matrix of a question's candidates: shape ``(len(texts), len(FEATURES))``, float64.

    Everything that depends on the question alone (its type, length, which cue it switches on) is worked out once
    (:func:`question_profile`), not once per candidate.

    Args:
        question: the question text, or its :func:`question_profile`.
        scores: each of :data:`CHANNELS`' scores of the candidates (arrays of ``len(texts)``).
        texts: the candidates' sentence texts.

    Raises:
        ValueError: a channel is missing or its scores do not match the number of texts.

    Example:
        >>> import numpy as np
        >>> from qa.scoring.features import CHANNELS, FEATURES, features
        >>> x = features("Who?", {c: np.array([0.5, 0.1]) for c in CHANNELS}, ["Ann came.", "Bob left."])
        >>> x[:, FEATURES.index("dense_rel")].tolist(), x[:, FEATURES.index("dense_lrank")].round(3).tolist()
        ([0.0, -0.4], [0.0, 0.693])
    """
    n = len(texts)
    missing = [c for c in CHANNELS if c not in scores]
    if missing:
        raise ValueError(f"channel scores {missing} are missing; give all of {list(CHANNELS)}")
    s = {c: np.asarray(scores[c], dtype=np.float64).reshape(-1) for c in CHANNELS}
    wrong = {c: len(v) for c, v in s.items() if len(v) != n}
    if wrong:
        raise ValueError(f"channel scores of lengths {wrong} do not match the {n} candidate texts")
    if n == 0:
        return np.zeros((0, len(FEATURES)), dtype=np.float64)
    cols: dict[str, np.ndarray] = {}
    for c in CHANNELS:
        cols[c] = s[c]
        cols[f"{c}_rel"] = s[c] - s[c].max()
        cols[f"{c}_lrank"] = np.log1p(_ranks(s[c]))
    fused = np.zeros(n, dtype=np.float64)
    for c in CHANNELS:
        fused += FUSION_WEIGHTS[c] * s[c]
    fused /= sum(FUSION_WEIGHTS.values())
    cols["fused"] = fused
    cols["fused_rel"] = fused - fused.max()
    max_bm25 = float(s["bm25"].max())
    cols["q_maxdense"] = np.full(n, s["dense"].max())
    cols["q_maxbm25"] = np.full(n, max_bm25)
    profile = question if isinstance(question, QuestionProfile) else question_profile(question)
    cols["q_len"] = np.full(n, math.log1p(profile.n_words))
    cols["s_loglen"] = np.log1p(np.array([len(t) for t in texts], dtype=np.float64))
    cols["s_label"] = np.array([float(is_label(t)) for t in texts])
    for name in _CUES:
        cols[name] = np.zeros(n)
    if profile.cue is not None:
        test = _CUE_TESTS[profile.cue]
        cols[profile.cue] = np.array([float(test(t)) for t in texts])
        new = np.array([new_cue(profile, t) for t in texts], dtype=np.float64)
        cols["cue_new"], cols["num_noun"] = new[:, 0], new[:, 1]
    else:
        cols["cue_new"] = cols["num_noun"] = np.zeros(n)
    gap = 1.0 - max_bm25
    cols["dense_x_lexgap"] = s["dense"] * gap
    cols["bm25_x_lex"] = s["bm25"] * max_bm25
    cols["dense_context_x_lexgap"] = s["dense_context"] * gap
    cols["dense_rel_x_lexgap"] = cols["dense_rel"] * gap
    return np.column_stack([cols[name] for name in FEATURES])


def _ranks(values: np.ndarray) -> np.ndarray:
    """0-based rank of each value, best (highest) first; ties keep the earlier candidate first."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    return ranks
