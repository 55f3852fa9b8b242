"""Follow-up questions: read a short question in the context of the conversation before it.

A chat turn such as "and when is their dialogue scheduled?" cannot be answered on its own: "their" points back
to the previous question. :func:`contextualize` turns it into a search query that carries the previous turn's
key terms, while a new, self-contained question ("What plan has Pakistan devised to counter terrorism?") passes
through unchanged, so it is never bent toward the old topic.

Everything here is pure text processing (no model, no index), so it is cheap and easy to test. The heuristics:

* A question is a **follow-up** when it opens with a continuation cue ("and ...", "what about ...",
  "who else ...") and has at most three content words of its own, or when it leans on a pronoun or other
  back-reference ("he", "their", "that", "else", ...) and has at most two content words, or when it has no
  content words at all ("Why?", "Since when?").
* A follow-up is searched as the question followed by the key terms (content words) of the previous turn's
  query, which is itself already resolved, so chains of follow-ups keep their topic. Appending only key terms,
  rather than the whole previous question, keeps the new question's own words in charge of the ranking.

Example:
    >>> from qa.conversation import contextualize
    >>> contextualize("and when is their dialogue scheduled?", ["Who did Interior Minister Mohsin Naqvi meet?"])
    'and when is their dialogue scheduled? Interior Minister Mohsin Naqvi meet'
    >>> contextualize("What plan has Pakistan devised to counter terrorism?", ["Who led the US delegation?"])
    'What plan has Pakistan devised to counter terrorism?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Reading", "content_words", "contextualize", "is_followup", "read_question"]

#: Openings that continue the previous turn ("and when?", "what about India?").
_CUE_FIRST = frozenset({"and", "also", "but", "so", "then", "plus"})
_CUE_PAIRS = frozenset(
    {
        ("what", "about"),
        ("how", "about"),
        ("what", "else"),
        ("who", "else"),
        ("where", "else"),
        ("when", "else"),
        ("anything", "else"),
        ("anyone", "else"),
        ("since", "when"),
        ("how", "so"),
        ("why", "so"),
        ("what", "of"),
        ("same", "for"),
    }
)

#: Words that point back to something said before.
_BACK_REFERENCES = frozenset(
    {
        "he", "she", "it", "they", "them", "their", "theirs", "his", "her", "hers", "him", "its",
        "this", "that", "these", "those", "there", "then", "such", "same", "else", "former", "latter",
        "himself", "herself", "itself", "themselves",
    }
)  # fmt: skip

#: Function words and question words: never content words. Lower case; all-caps acronyms (US, NAP) are kept.
_STOPWORD_TEXT = """
    a an the of to in on at for by with from into onto upon about as than and or nor but so if not no yes
    is are was were be been being am do does did done doing has have had having will would shall should can
    could may might must what who whom whose which when where why how whether i me my mine we us our ours you
    your yours one ones some any all each every both either neither other another more most much many few
    also too very just only even still yet again ever here now please tell say said know explain describe
    since until till before after during while because via per within without through
    give show happen happened anything anyone something someone thing things way ways kind sort plus really
    """
_STOPWORDS = _BACK_REFERENCES | frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")

#: At most this many key terms of the previous turn are added to a follow-up.
MAX_CARRIED_TERMS = 12


@dataclass(frozen=True)
class Reading:
    """How a question was read in its conversation.

    Attributes:
        question: the question as typed, stripped.
        query: what to search for: ``question`` itself, or for a follow-up, the question with the previous
            turn's key terms added.
        followup: whether the previous turn's terms were added.
        previous: the resolved query of the previous turn (``None`` when there was none).
    """

    question: str
    query: str
    followup: bool
    previous: str | None


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _is_content(word: str) -> bool:
    if len(word) >= 2 and word.isupper() and word.isalpha():
        return True  # an acronym such as US or NAP, even when its lower case is a function word ("us")
    lowered = word.lower()
    return lowered not in _STOPWORDS and (len(lowered) > 2 or lowered.isdigit())


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry its topic, in order, without repeats (case-insensitive).

    Example:
        >>> content_words("Who led the delegation of US lawmakers that visited Pakistan?")
        ['led', 'delegation', 'US', 'lawmakers', 'visited', 'Pakistan']
    """
    seen: set[str] = set()
    out: list[str] = []
    for word in _words(text):
        key = word.lower()
        if _is_content(word) and key not in seen:
            seen.add(key)
            out.append(word)
    return out


def is_followup(question: str) -> bool:
    """Whether ``question`` depends on the previous turn (a short continuation or back-reference).

    Example:
        >>> is_followup("and when is their dialogue scheduled?"), is_followup("who else?")
        (True, True)
        >>> is_followup("What plan has Pakistan devised to counter terrorism?")
        False
    """
    words = [w.lower() for w in _words(question)]
    if not words:
        return False
    n_content = len(content_words(question))
    if n_content == 0:
        return True
    cue = words[0] in _CUE_FIRST or tuple(words[:2]) in _CUE_PAIRS
    if cue and n_content <= 3:
        return True
    refers_back = any(w in _BACK_REFERENCES for w in words)
    return refers_back and n_content <= 2


def _resolve(question: str, previous: str | None, max_chars: int | None) -> Reading:
    text = question.strip()
    if previous is None or not is_followup(text):
        return Reading(text, text, False, previous)
    own = {w.lower() for w in _words(text)}
    carried = [w for w in content_words(previous) if w.lower() not in own][:MAX_CARRIED_TERMS]
    if not carried:
        return Reading(text, text, False, previous)
    query = f"{text} {' '.join(carried)}"
    if max_chars is not None and len(query) > max_chars:
        # Never turn an acceptable question into one that the length limit refuses.
        return Reading(text, text, False, previous)
    return Reading(text, query, True, previous)


def read_question(question: str, history: Sequence[str], *, max_chars: int | None = None) -> Reading:
    """Read ``question`` in the context of the earlier questions ``history`` (oldest first).

    Earlier turns are resolved the same way, so a follow-up to a follow-up still carries the original topic.

    Args:
        question: the new question, as typed.
        history: the conversation's earlier questions as typed, oldest first (may be empty).
        max_chars: if a follow-up query would be longer than this, the question is searched as typed.

    Returns:
        A :class:`Reading` with the query to search for.

    Example:
        >>> r = read_question("who else?", ["Who met the US ambassador?"])
        >>> r.followup, r.query
        (True, 'who else? met US ambassador')
    """
    previous: str | None = None
    for earlier in history:
        if earlier and earlier.strip():
            previous = _resolve(earlier, previous, max_chars).query
    return _resolve(question, previous, max_chars)


def contextualize(question: str, history: Sequence[str], *, max_chars: int | None = None) -> str:
    """The search query for ``question`` given the earlier questions ``history`` (oldest first).

    A follow-up gets the previous turn's key terms appended; any other question comes back unchanged (stripped).
    See :func:`read_question` for the arguments.

    Example:
        >>> contextualize("Who won the 2022 FIFA World Cup?", ["Who met the US ambassador?"])
        'Who won the 2022 FIFA World Cup?'
    """
    return read_question(question, history, max_chars=max_chars).query
