from __future__ import annotations

import json
from pathlib import Path

import pytest

import qa
from qa.evaluation import EvalQuestion, is_correct
from qa.index import MANIFEST


def test_retrieve_uses_the_bundled_article_by_default(article_index: qa.Index) -> None:
    passages = qa.retrieve("Who led the delegation of US lawmakers that visited Pakistan?", k=3)
    assert len(passages) == 3
    assert "Gentry Beach" in passages[0].text
    assert passages[0].doc_id == "us-pakistan-relations"
    assert passages[0].title == "US-Pakistan relations under Trump's second term"
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_every_passage_is_an_exact_slice_of_the_article(article_index: qa.Index) -> None:
    text = qa.default_document().text
    for p in qa.retrieve("counter-terrorism cooperation", k=40):
        assert text[p.start : p.end] == p.text
        assert text[p.context_start : p.context_end] == p.context


def test_article_dev_questions_meet_the_bar(article_index: qa.Index, seed_questions: list[dict]) -> None:  # type: ignore[type-arg]
    """R@1 >= 0.90 and R@3 == 1.0 on the answerable dev questions of the article."""
    ranks = []
    for record in seed_questions:
        if not record["answerable"]:
            continue
        q = EvalQuestion(record["id"], record["question"], True, record["doc_id"], tuple(record["gold"]))
        passages = qa.retrieve(q.question, k=3)
        ranks.append(next((r for r, p in enumerate(passages, 1) if is_correct(q, p)), None))
    at1 = sum(r == 1 for r in ranks) / len(ranks)
    assert at1 >= 0.90, ranks
    assert all(r is not None for r in ranks), ranks


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_a_clear_error(question: str) -> None:
    with pytest.raises(qa.QuestionError, match="the question is empty"):
        qa.retrieve(question)


def test_overlong_question_is_refused() -> None:
    with pytest.raises(qa.QuestionError, match="the limit is 2,000"):
        qa.retrieve("why " * 1000)


def test_docs_restricts_and_unknown_doc_is_named(squad_index_dir: Path) -> None:
    got = qa.retrieve("Who won Super Bowl 50?", k=5, index=squad_index_dir, docs=["a00-p001"])
    assert {p.doc_id for p in got} == {"a00-p001"}
    with pytest.raises(qa.QAError, match="unknown document id 'nope'"):
        qa.retrieve("Who won?", index=squad_index_dir, docs=["nope"])


def test_default_index_is_rebuilt_when_it_goes_stale(article_index: qa.Index) -> None:
    path = qa.default_index_path()
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["documents"][0]["sha256"] = "0" * 64  # as if the article had changed since the build
    manifest["created"] = "stale"
    (path / MANIFEST).write_text(json.dumps(manifest))
    assert "Gentry Beach" in qa.retrieve("Who led the delegation of US lawmakers?", k=1)[0].text
    rebuilt = json.loads((path / MANIFEST).read_text())
    assert rebuilt["documents"][0]["sha256"] == qa.default_document().sha256
    assert rebuilt["created"] != "stale"


def test_an_index_path_is_loaded_once_and_again_after_each_new_save(tmp_path: Path) -> None:
    from qa.retrieval import open_index

    path = tmp_path / "idx"
    first = qa.Index.build([qa.Document("a", "A", "Cats purr when they are content.")])
    first.save(path)
    loaded = open_index(path)
    assert open_index(path) is loaded  # unchanged on disk: the loaded index is shared
    assert qa.retrieve("Which pet purrs?", index=path, k=1)[0].doc_id == "a"
    qa.Index.build([qa.Document("b", "B", "Dogs bark at strangers.")]).save(path)
    assert qa.retrieve("Which pet barks?", index=path, k=1)[0].doc_id == "b"  # a new save is picked up
    reloaded = open_index(path)
    first.save(path)  # the same built index saved again, within the same second: still a new save
    assert open_index(path) is not reloaded
    assert open_index(path).documents[0].doc_id == "a"
