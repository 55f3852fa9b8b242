"""The learned answer scorer: features, the shipped JSON model, and training reproducibility."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from qa.errors import QAError
from qa.scoring import FEATURES, features, is_label, load_scorer, trigger_features

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "qa" / "data" / "scorer-minilm.json"


def _ranked(index, question: str):  # type: ignore[no-untyped-def]
    """The shipped scorer's ordering of a question's candidates on ``index``: (texts best first, confidence)."""
    from qa.embedding import get_encoder
    from qa.scoring.candidates import gather

    scorer = load_scorer("minilm")
    rows, scores = gather(index, question, get_encoder(index.settings).encode_queries([question])[0])
    texts = [p.text for p in index.passages(rows, np.zeros(len(rows)), context=0)]
    x = features(question, scores, texts)
    s = scorer.rank_scores(x)
    order = scorer.order(x, s)
    return [texts[i] for i in order], scorer.confidence(trigger_features(x, s, order)), scorer


def test_shipped_scorer_ranks_the_gold_sentence_first_on_the_bundled_article(article_index) -> None:  # type: ignore[no-untyped-def]
    texts, confidence, scorer = _ranked(article_index, "Who led the delegation of US lawmakers that visited Pakistan?")
    assert "Gentry Beach" in texts[0]
    assert scorer.found(confidence)


@pytest.mark.parametrize("question", ["Who led the delegation of US lawmakers that visited Pakistan?",
                                      "When did the US withdraw from Afghanistan?", "What is the GDP of Pakistan?"])
def test_index_ranks_as_the_scorer_over_its_gathered_candidates(article_index, question: str) -> None:  # type: ignore[no-untyped-def]
    """Oracle: Index.rankings is the shipped scorer's order of the gathered candidates, and its confidence."""
    texts, confidence, _ = _ranked(article_index, question)
    ranking = article_index.rankings([question], k=5, scorer="minilm")[0]
    assert [p.text for p in ranking.passages] == texts[:5]
    assert ranking.confidence == pytest.approx(confidence)


def test_shipped_scorer_is_less_confident_off_topic_than_on_topic(article_index) -> None:  # type: ignore[no-untyped-def]
    _, on_topic, _ = _ranked(article_index, "Who led the delegation of US lawmakers that visited Pakistan?")
    _, off_topic, _ = _ranked(article_index, "Who won the 2022 FIFA World Cup?")
    assert off_topic < on_topic


def test_shipped_scorer_records_what_it_was_trained_on() -> None:
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES)
    assert set(data["trained_on"]) >= {"squad/questions.jsonl", "reworded/answerable.jsonl", "seed/questions.jsonl"}
    assert not any("wikiqa" in name for name in data["trained_on"])
    assert all(len(h) == 64 for h in data["trained_on"].values())


@pytest.mark.parametrize("text", ["4. OWNERSHIP.", "DISCLAIMER OF WARRANTY.", "Table of contents", "2,500 (2021)"])
def test_label_shape_detector_calls_headings_and_numbers_labels(text: str) -> None:
    assert is_label(text)


@pytest.mark.parametrize("text", ["The delegation was led by Gentry Beach, a businessman.", "He resigned."])
def test_label_shape_detector_calls_ordinary_sentences_sentences(text: str) -> None:
    assert not is_label(text)


def test_a_scorer_file_with_other_feature_names_is_refused(tmp_path: Path) -> None:
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    data["features"][0] = "position_in_document"
    bad = tmp_path / "scorer.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(QAError, match=r"position_in_document.*retrain"):
        load_scorer(bad)


def test_an_unknown_scorer_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(QAError, match=r"'nosuch'.*minilm"):
        load_scorer("nosuch")


def test_a_file_that_is_not_a_scorer_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "other.json"
    bad.write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(QAError, match="not a qa scorer file"):
        load_scorer(bad)


def _train_script() -> ModuleType:
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("train_scorer", ROOT / "benchmarks" / "train_scorer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("train_scorer", module)  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_training_on_a_tiny_set_gives_the_same_coefficients_twice(article_index, seed_questions) -> None:  # type: ignore[no-untyped-def]
    from qa.embedding import get_encoder
    from qa.evaluation import EvalQuestion
    from qa.scoring.candidates import gather

    train = _train_script()
    encoder = get_encoder(article_index.settings)
    questions = []
    for r in seed_questions[:8]:
        rows, scores = gather(article_index, r["question"], encoder.encode_queries([r["question"]])[0])
        passages = article_index.passages(rows, np.zeros(len(rows)), context=0)
        q = EvalQuestion(r["id"], r["question"], r["answerable"], gold=tuple(r["gold"]))
        texts = [p.text for p in passages]
        gold = [any(" ".join(g.split()) in " ".join(t.split()) for g in q.gold) for t in texts]
        x = features(q.question, scores, texts)
        questions.append(train.Question(q.qid, "seed", "seed", q.answerable, x, np.array(gold), x[:, 0]))
    assert sum(q.has_gold for q in questions) >= 4
    first, second = train.fit_rank(questions), train.fit_rank(questions)
    assert first == second
    assert any(c != 0 for c in first.coef)


def test_trigger_features_measure_the_top_against_the_tenth_best_candidate() -> None:
    from qa.scoring import TRIGGER_FEATURES

    x = np.zeros((12, len(FEATURES)))
    x[:, FEATURES.index("dense")] = np.linspace(0.9, 0.35, 12)  # tenth best: 0.45
    scores = np.linspace(3.0, 0.0, 12)
    row = dict(zip(TRIGGER_FEATURES, trigger_features(x, scores, np.arange(12)), strict=True))
    assert row["dense_over10"] == pytest.approx(0.45)
    assert row["q_maxdense_over10"] == pytest.approx(0.45)
    assert 0.0 < row["top_share"] < 1.0
    lone = dict(zip(TRIGGER_FEATURES, trigger_features(x[:1], scores[:1], np.arange(1)), strict=True))
    assert lone["top_share"] == 1.0 and lone["dense_over10"] == 0.0


def test_a_question_profile_gives_the_same_features_as_the_question_text() -> None:
    """The profile is worked out once per question; the features must not change with it (pure speed-up)."""
    from qa.scoring import CHANNELS, answer_cues, question_profile

    texts = ["About 2,500 troops stayed in 2021.", "The senator from Ohio visited.", "OWNERSHIP", "It rained."]
    scores = {c: np.array([0.9, 0.4, 0.2, 0.1]) for c in CHANNELS}
    for question in ("How many troops stayed?", "When did it end?", "Who visited?", "Where is it?", "Why?", "x"):
        profile = question_profile(question)
        assert np.array_equal(features(profile, scores, texts), features(question, scores, texts))
        assert [answer_cues(profile, t) for t in texts] == [answer_cues(question, t) for t in texts]


@pytest.mark.parametrize(("question", "text", "expected"), [
    ("How many troops stayed?", "About 2,500 troops stayed.", (1.0, 1.0)),
    ("How many troops stayed in 2021?", "In 2021 the troops stayed.", (0.0, 0.0)),  # its only number is the question's
    ("When did the talks start?", "The talks started in March 2019.", (1.0, 0.0)),
    ("When did the 2019 talks start?", "The 2019 talks started.", (0.0, 0.0)),
    ("Who met Trump?", "The envoy, Gentry Beach, met Trump.", (1.0, 0.0)),
    ("Who met Trump?", "Officials met Trump.", (0.0, 0.0)),  # the only name is the question's
    ("Why did it end?", "It ended in 2021 with Trump.", (0.0, 0.0)),  # no cue for why
])
def test_the_thing_asked_for_counts_only_when_the_sentence_adds_it(question: str, text: str,
                                                                   expected: tuple[float, float]) -> None:
    from qa.scoring import CHANNELS

    x = features(question, {c: np.array([0.5]) for c in CHANNELS}, [text])
    assert (x[0, FEATURES.index("cue_new")], x[0, FEATURES.index("num_noun")]) == expected
