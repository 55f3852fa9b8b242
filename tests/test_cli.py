from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.cli import main

DATA = Path(__file__).parent / "data"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user would run it."""
    qa_bin = Path(sys.executable).with_name("qa")
    return subprocess.run([str(qa_bin), *args], capture_output=True, text=True, timeout=600, env=os.environ.copy())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "notes").mkdir()
    (root / "notes" / "cats.md").write_text("# Cats\n\nCats sleep sixteen hours a day. They purr.", encoding="utf-8")
    (root / "notes" / "moon.txt").write_text("The Moon is 384,400 km away from the Earth.", encoding="utf-8")
    out = root / "idx"
    proc = run("index", "build", "--out", str(out), str(root / "notes"), str(DATA / "squad_docs.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "indexed 14 documents" in proc.stdout
    return out


def test_retrieve_json_lists_passages_with_citation_fields(built: Path) -> None:
    proc = run("retrieve", "How far away is the Moon?", "--index", str(built), "-k", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    passages = json.loads(proc.stdout)
    assert len(passages) == 2
    assert passages[0]["doc_id"] == "moon"
    assert passages[0]["text"] == "The Moon is 384,400 km away from the Earth."
    assert (passages[0]["start"], passages[0]["end"]) == (0, 43)


def test_ask_json_has_answer_found_and_citations(built: Path) -> None:
    proc = run("ask", "How long do cats sleep?", "--index", str(built), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["found"] is True
    assert "[1]" in result["answer"]
    assert result["citations"][0]["doc_id"] == "cats"
    assert 0.0 <= result["confidence"] <= 1.0 and result["confidence"] >= result["threshold"]


def test_ask_fusion_scorer_and_threshold_flags_decide_the_answer(built: Path) -> None:
    fused = json.loads(run("ask", "How long do cats sleep?", "--index", str(built), "--json", "--scorer", "fusion")
                       .stdout)
    assert fused["found"] is True and fused["confidence"] is None
    strict = run("ask", "How long do cats sleep?", "--index", str(built), "--threshold", "1")
    assert strict.returncode == 0 and "do not answer" in strict.stdout and "declined at threshold 1.00" in strict.stdout


def test_ask_on_the_bundled_article_prints_answer_and_sources() -> None:
    proc = run("ask", "Who led the delegation of US lawmakers that visited Pakistan?")
    assert proc.returncode == 0, proc.stderr
    assert "Gentry Beach" in proc.stdout
    assert "[1] US-Pakistan relations under Trump's second term, sentence" in proc.stdout


def test_list_shows_documents(built: Path) -> None:
    proc = run("index", "list", str(built))
    assert proc.returncode == 0
    assert "cats\t3 sentences\tCats" in proc.stdout


def test_eval_reports_recall_mrr_and_latency(built: Path) -> None:
    proc = run("eval", str(DATA / "squad_questions.jsonl"), "--index", str(built), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["questions"] == 250
    assert report["recall"]["R@10"] >= report["recall"]["R@1"] > 0.3
    assert 0 < report["mrr_at_10"] <= 1
    assert report["latency_ms_p50"] > 0


def test_eval_on_seed_questions_counts_abstention() -> None:
    proc = run("eval", str(DATA / "seed_questions.jsonl"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["answerable"], report["unanswerable"]) == (22, 2)
    assert report["unanswerable_declined"] == 2
    assert report["answerable_found"] >= 20  # the scorer's goal: >= 90% answered (fusion answers all 22)


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    proc = run("retrieve", "   ")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "qa: error: the question is empty; type a question about the documents"
    proc = run("retrieve", "hello", "--index", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "qa index build --out" in proc.stderr


def test_bad_setting_in_environment_is_exit_code_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_K", "lots")
    assert main(["retrieve", "hello"]) == 2
    assert "QA_K='lots' is not a valid int" in capsys.readouterr().err


def test_help_is_instant_and_lists_commands() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("index", "retrieve", "ask", "eval", "serve"):
        assert command in proc.stdout
    heavy = "('torch', 'gradio', 'sentence_transformers')"
    code = f"import sys, qa.cli; qa.cli._parser(); print(sorted(m for m in {heavy} if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_index_add_remove_list_round_trip(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one.txt").write_text("The first note is about apples.", encoding="utf-8")
    out = tmp_path / "idx"
    assert run("index", "build", "--out", str(out), str(docs)).returncode == 0
    (docs / "two.md").write_text("# Pears\n\nPears ripen after picking.", encoding="utf-8")
    proc = run("index", "add", str(out), str(docs))
    assert proc.returncode == 0, proc.stderr
    assert "added 1, replaced 0, unchanged 1" in proc.stdout
    listed = json.loads(run("index", "list", str(out), "--json").stdout)
    assert [d["doc_id"] for d in listed] == ["one", "two"]
    proc = run("index", "remove", str(out), "one")
    assert proc.returncode == 0 and "removed 1" in proc.stdout
    assert [d["doc_id"] for d in json.loads(run("index", "list", str(out), "--json").stdout)] == ["two"]


def test_adding_an_unchanged_folder_opens_no_index_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import qa.index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one.txt").write_text("The first note is about apples.", encoding="utf-8")
    out = tmp_path / "idx"
    assert main(["index", "build", "--out", str(out), str(docs), "--no-progress"]) == 0
    before = (out / "manifest.json").read_text(encoding="utf-8")

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was opened")

    monkeypatch.setattr(qa.index.Index, "load", no_load)
    assert main(["index", "add", str(out), str(docs), "--no-progress"]) == 0
    assert "added 0, replaced 0, unchanged 1 (0 texts embedded); 1 documents, 1 sentences" in capsys.readouterr().out
    assert (out / "manifest.json").read_text(encoding="utf-8") == before
    (docs / "one.txt").write_text("The first note is about pears.", encoding="utf-8")
    with pytest.raises(AssertionError, match="the index was opened"):  # a change still goes through the index
        main(["index", "add", str(out), str(docs), "--no-progress"])
    assert main(["index", "add", str(tmp_path / "nowhere"), str(docs)]) == 2
    assert "no index at" in capsys.readouterr().err


def test_failed_files_are_listed_and_the_rest_indexed_with_exit_code_2(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("Good text about rivers.", encoding="utf-8")
    (docs / "empty.txt").write_text("", encoding="utf-8")
    (docs / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    proc = run("index", "build", "--out", str(tmp_path / "idx"), str(docs))
    assert proc.returncode == 2
    assert "indexed 1 documents" in proc.stdout
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("qa: error: ") for line in errors)
    assert any("empty.txt" in line for line in errors) and any("bad.txt" in line for line in errors)
