"""Follow-up questions: the pure rules of qa.conversation, and two-turn conversations on the real article index.

The conversations below are the follow-up test set quoted in the README: each pair is asked with the real model
and FAISS index, once as typed and once as :func:`qa.conversation.contextualize` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import qa
from qa.conversation import content_words, contextualize, is_followup, read_question

# ------------------------------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    "question",
    [
        "and when is their dialogue scheduled?",
        "who else?",
        "What about India?",
        "and how did he feel about his talks?",
        "What does it aim to combat?",
        "Why?",
        "Since when?",
        "what did they discuss?",
        "Who is he?",
    ],
)
def test_short_questions_that_point_back_are_followups(question: str) -> None:
    assert is_followup(question)


@pytest.mark.parametrize(
    "question",
    [
        "What plan has Pakistan devised to counter terrorism?",
        "Who led the delegation of US lawmakers that visited Pakistan?",
        "When did the US withdraw from Afghanistan?",
        "Who won the 2022 FIFA World Cup?",
        "who else met Trump administration officials?",
        "Is there a plan to counter terrorism?",
        "And what plan has Pakistan devised to counter terrorism?",
        "Hello",
        "",
        "   ",
    ],
)
def test_self_contained_questions_are_not_followups(question: str) -> None:
    assert not is_followup(question)


def test_a_self_contained_question_passes_unchanged() -> None:
    history = ["Who led the delegation of US lawmakers?"]
    question = "  What plan has Pakistan devised to counter terrorism?  "
    assert contextualize(question, history) == question.strip()


def test_without_history_nothing_is_added() -> None:
    assert contextualize("and when?", []) == "and when?"
    assert contextualize("and when?", ["", "   "]) == "and when?"
    assert not read_question("and when?", []).followup


def test_a_followup_carries_the_previous_key_terms() -> None:
    reading = read_question("and when is their dialogue scheduled?", ["Who did Interior Minister Mohsin Naqvi meet?"])
    assert reading.followup
    assert reading.question == "and when is their dialogue scheduled?"
    assert reading.query.startswith(reading.question)
    assert reading.query.endswith("Interior Minister Mohsin Naqvi meet")
    assert reading.previous == "Who did Interior Minister Mohsin Naqvi meet?"


def test_a_chain_of_followups_keeps_the_original_topic() -> None:
    history = ["Who is Tariq Fatmi?", "and what did he say?"]
    query = contextualize("why?", history)
    assert "Tariq" in query and "Fatmi" in query


def test_a_new_topic_resets_the_chain() -> None:
    history = ["Who is Tariq Fatmi?", "When did the US withdraw from Afghanistan?"]
    query = contextualize("and why?", history)
    assert "Afghanistan" in query and "Fatmi" not in query


def test_terms_already_in_the_question_are_not_repeated() -> None:
    query = contextualize("what about Naqvi?", ["Who did Mohsin Naqvi meet?"])
    assert query.lower().count("naqvi") == 1


def test_a_followup_never_exceeds_the_length_limit() -> None:
    previous = "Who did Interior Minister Mohsin Naqvi meet?"
    assert contextualize("and when?", [previous], max_chars=20) == "and when?"
    assert contextualize("and when?", [previous], max_chars=200) != "and when?"


def test_content_words_keep_acronyms_and_drop_function_words() -> None:
    assert content_words("What did the US and NAP do about it?") == ["US", "NAP"]


# ------------------------------------------------------------------------------------------ the test set


@dataclass(frozen=True)
class Conversation:
    """Two turns on the bundled article, and the sentence that should answer the second."""

    first: str
    second: str
    gold: str
    """A phrase of the sentence that answers the second question."""
    needs_context: bool = False
    """Asked alone, the second question is not answered by the gold sentence (checked)."""


FOLLOWUPS = [
    Conversation("Who did Interior Minister Mohsin Naqvi meet?", "and when is their dialogue scheduled?", "in June"),
    Conversation("Which agency implements the National Action Plan?", "What does it aim to combat?", "NACTA", True),
    Conversation("Who is Tariq Fatmi?", "what was his role?", "Special Assistant to the PM", True),
    Conversation("Who did Pak Interior Minister Mohsin Naqvi meet with?", "why did they meet?", "Natalie Baker"),
    Conversation("What is Pakistan's status as a US ally?", "since when?", "since 2002", True),
]

SELF_CONTAINED = [
    Conversation(
        "Who led the delegation of US lawmakers?",
        "What plan has Pakistan devised to counter terrorism?",
        "National Action Plan",
    ),
    Conversation(
        "Who did Interior Minister Mohsin Naqvi meet?",
        "Who led the delegation of US lawmakers that visited Pakistan?",
        "Gentry Beach",
    ),
    Conversation("Who is Tariq Fatmi?", "When did the US withdraw from Afghanistan?", "August 2021"),
]


def _ids(conversations: list[Conversation]) -> list[str]:
    return [c.second for c in conversations]


@pytest.mark.parametrize("conv", FOLLOWUPS, ids=_ids(FOLLOWUPS))
def test_a_followup_is_answered_in_the_context_of_the_previous_turn(
    conv: Conversation, article_index: qa.Index
) -> None:
    query = contextualize(conv.second, [conv.first])
    assert query != conv.second

    in_context = qa.answer(query, index=article_index)
    assert in_context.found
    assert conv.gold in in_context.citations[0].text

    if conv.needs_context:
        # As typed, the same words do not get there: the context is what answers them.
        alone = qa.answer(conv.second, index=article_index)
        assert not (alone.found and conv.gold in alone.citations[0].text)


@pytest.mark.parametrize("conv", SELF_CONTAINED, ids=_ids(SELF_CONTAINED))
def test_a_new_question_is_not_bent_toward_the_old_topic(conv: Conversation, article_index: qa.Index) -> None:
    query = contextualize(conv.second, [conv.first])
    assert query == conv.second

    ranked = qa.retrieve(query, k=3, index=article_index)
    assert any(conv.gold in p.text for p in ranked)
    assert [p.text for p in ranked] == [p.text for p in qa.retrieve(conv.second, k=3, index=article_index)]


def test_the_documented_examples_hold() -> None:
    import doctest

    import qa.conversation

    result = doctest.testmod(qa.conversation)
    assert result.attempted > 0 and result.failed == 0
