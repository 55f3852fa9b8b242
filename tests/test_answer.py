from __future__ import annotations

import re

import pytest

import qa
from qa.answer import NOT_FOUND, compose
from qa.config import Settings
from qa.index import Passage


def _p(text: str, score: float, n: int = 0) -> Passage:
    return Passage(text, score, "d", "D", n, 0, len(text), text, 0, len(text))


def test_markers_point_at_citations_in_order() -> None:
    s = Settings(min_score=0.3, answer_sentences=3, answer_margin=0.2)
    a = compose("q", [_p("First.", 0.8, 0), _p("Second.", 0.7, 1), _p("Far.", 0.4, 2)], s)
    assert a.found
    assert a.text == "First. [1] Second. [2]"
    assert [c.text for c in a.citations] == ["First.", "Second."]


def test_below_threshold_cites_nothing_and_says_so() -> None:
    a = compose("q", [_p("Close but no.", 0.2)], Settings(min_score=0.3))
    assert not a.found
    assert a.text == NOT_FOUND
    assert a.citations == []
    assert [p.text for p in a.closest] == ["Close but no."]


def test_answer_cites_the_sentence_that_answers(article_index: qa.Index) -> None:
    a = qa.answer("Who did Interior Minister Mohsin Naqvi meet?")
    assert a.found
    assert "Natalie Baker" in a.citations[0].text
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", a.text)]
    assert markers == list(range(1, len(a.citations) + 1))
    for n, cited in enumerate(a.citations, start=1):
        assert f"{cited.text} [{n}]" in a.text  # each marker follows the very sentence it cites


def test_dev_questions_found_and_unanswerable_declined(article_index: qa.Index, seed_questions: list[dict]) -> None:  # type: ignore[type-arg]
    for record in seed_questions:
        a = qa.answer(record["question"])
        assert a.found == record["answerable"], (record["question"], a.text, [p.score for p in a.closest])


@pytest.mark.parametrize("question", ["What is the population of Pakistan?", "Who won the 2022 FIFA World Cup?"])
def test_unanswerable_question_is_declined_plainly(article_index: qa.Index, question: str) -> None:
    a = qa.answer(question)
    assert not a.found
    assert a.text == NOT_FOUND and a.citations == []
    assert a.closest, "the nearest passages are offered, separately from citations"


def test_to_dict_has_the_cli_json_shape(article_index: qa.Index) -> None:
    d = qa.answer("When did the US withdraw from Afghanistan?").to_dict()
    assert set(d) >= {"answer", "found", "citations"}
    assert d["found"] is True
    assert {"text", "score", "doc_id", "title", "sentence", "start", "end", "context"} <= set(d["citations"][0])
