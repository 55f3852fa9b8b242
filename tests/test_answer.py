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
    """The learned scorer declines every unanswerable one and answers at least 90% of the rest (the issue's goal;
    today 21 of 22: "What unresolved dispute ..." scores 0.18 against the threshold 0.30)."""
    answered = []
    for record in seed_questions:
        a = qa.answer(record["question"])
        if not record["answerable"]:
            assert not a.found, (record["question"], a.text, a.confidence)
        else:
            answered.append(a.found)
    assert sum(answered) >= 0.9 * len(answered), f"{sum(answered)} of {len(answered)} answered"


def test_dev_questions_under_fusion_are_all_decided_right(article_index: qa.Index, seed_questions: list[dict]) -> None:  # type: ignore[type-arg]
    s = qa.get_settings(scorer="fusion")
    for record in seed_questions:
        a = qa.answer(record["question"], settings=s)
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


# ---------------------------------------------------------------- the learned scorer's answers (real model, index)

LICENSE = qa.Document(
    "license",
    "Software licence",
    "SOFTWARE LICENCE AGREEMENT\n\n"
    "4. OWNERSHIP.\n\n"
    "The software is licensed, not sold. Acme Corporation keeps ownership of every copy of the software.\n\n"
    "5. DISCLAIMER OF WARRANTY.\n\n"
    "The software is provided as is, without any warranty of any kind.\n",
)
HEADINGS = qa.Document("headings", "Contents", "1. INTRODUCTION.\n\n2. OWNERSHIP.\n\nDISCLAIMER OF WARRANTY.\n")


@pytest.fixture(scope="module")
def license_index() -> qa.Index:
    return qa.Index.build([LICENSE, HEADINGS])


@pytest.mark.parametrize("scorer", ["auto", "fusion"])
@pytest.mark.parametrize("question", ["Who keeps ownership of the software?", "What does the OWNERSHIP section say?",
                                      "Is there a disclaimer of warranty?"])
def test_a_heading_is_never_the_cited_answer(license_index: qa.Index, scorer: str, question: str) -> None:
    from qa.scoring import is_label

    a = qa.answer(question, index=license_index, settings=qa.get_settings(scorer=scorer, answer_threshold=0.0,
                                                                          min_score=-1.0))
    assert a.found and a.citations
    assert not any(is_label(c.text) for c in a.citations), [c.text for c in a.citations]


def test_the_heading_of_a_cited_sentence_still_ranks_but_after_it(license_index: qa.Index) -> None:
    from qa.scoring import is_label

    passages = qa.retrieve("What does the OWNERSHIP section say?", index=license_index, k=10)
    texts = [p.text for p in passages]
    assert "4. OWNERSHIP." in texts or "2. OWNERSHIP." in texts, texts  # a heading informs the ranking...
    first_label = min(i for i, t in enumerate(texts) if t.endswith("OWNERSHIP."))
    assert all(not t.endswith("OWNERSHIP.") for t in texts[:first_label])
    assert passages[0].doc_id == "license" and not is_label(texts[0])  # ...but a sentence comes first


def test_a_ranking_of_only_headings_is_declined(license_index: qa.Index) -> None:
    a = qa.answer("What is in the ownership section?", index=license_index, docs=["headings"],
                  settings=qa.get_settings(answer_threshold=0.0))
    assert not a.found and a.citations == [] and a.text == NOT_FOUND
    assert a.closest and all(p.doc_id == "headings" for p in a.closest)


def test_a_declined_answer_has_no_citations_and_lists_the_closest(article_index: qa.Index) -> None:
    a = qa.answer("What is the boiling point of ethanol?")
    assert a.found is False and a.citations == [] and a.text == NOT_FOUND
    assert a.closest, "the closest sentences are listed, as not evidence"
    assert a.confidence is not None and a.threshold is not None and a.confidence < a.threshold
    d = a.to_dict()
    assert d["found"] is False and d["citations"] == [] and d["closest"] and d["confidence"] == a.confidence


def test_confidence_is_a_probability_and_found_follows_the_threshold(article_index: qa.Index) -> None:
    q = "When did the US withdraw from Afghanistan?"
    a = qa.answer(q)
    assert a.confidence is not None and 0.0 <= a.confidence <= 1.0 and a.found
    assert a.threshold == qa.open_index().scorer.threshold  # type: ignore[union-attr]
    assert not qa.answer(q, settings=qa.get_settings(answer_threshold=1.0)).found
    assert qa.answer("What is the boiling point of ethanol?", settings=qa.get_settings(answer_threshold=0.0)).found


def test_fusion_setting_ranks_without_a_scorer(article_index: qa.Index) -> None:
    a = qa.answer("When did the US withdraw from Afghanistan?", settings=qa.get_settings(scorer="fusion"))
    assert a.found and a.confidence is None and a.threshold is None
    assert "August 2021" in a.text


def test_an_unknown_scorer_setting_is_refused_with_the_fix(article_index: qa.Index) -> None:
    with pytest.raises(qa.QAError, match=r"no shipped scorer named 'nope'.*\.json"):
        qa.answer("When did the US withdraw from Afghanistan?", settings=qa.get_settings(scorer="nope"))
