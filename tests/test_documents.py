from __future__ import annotations

import json
from pathlib import Path

import pytest

import qa
from qa.documents import DEFAULT_DOC_ID, load_sources

SHARED_ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "eval" / "seed" / "article.txt"


def test_default_document_is_the_bundled_article() -> None:
    doc = qa.default_document()
    assert doc.doc_id == DEFAULT_DOC_ID
    assert doc.title == "US-Pakistan relations under Trump's second term"
    assert doc.text.startswith("RECENTLY, President Trump")
    assert doc.sha256 == "ba0453fc42da780f073738cc4dbd071efc1b55622689cce0f3c8914b66782342"


@pytest.mark.skipif(not SHARED_ARTICLE.is_file(), reason="shared/eval is not beside the checkout")
def test_bundled_article_is_byte_identical_to_the_evaluation_copy() -> None:
    assert qa.default_document().text.encode("utf-8") == SHARED_ARTICLE.read_bytes()


def test_folder_is_read_recursively_with_ids_from_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Alpha text.", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# Bee notes\n\nBees buzz.", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.txt").write_text("secret", encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    docs = {d.doc_id: d for d in load_sources([tmp_path])}
    assert set(docs) == {"a", "sub/b"}
    assert docs["sub/b"].title == "Bee notes"
    assert docs["a"].text == "Alpha text."


def test_jsonl_lines_become_documents(tmp_path: Path) -> None:
    file = tmp_path / "docs.jsonl"
    file.write_text(
        json.dumps({"id": "x1", "title": "First", "text": "One.", "extra": 1}) + "\n\n"
        + json.dumps({"id": 2, "text": "Two."}) + "\n",
        encoding="utf-8",
    )
    docs = load_sources([file])
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("x1", "First", "One."), ("2", "2", "Two.")]


def test_windows_newlines_and_bom_are_normalised(tmp_path: Path) -> None:
    file = tmp_path / "w.txt"
    file.write_bytes("\ufeffLine one.\r\nLine two.\r\n".encode())
    assert load_sources([file])[0].text == "Line one.\nLine two.\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"  \n", "is empty"),
        ("bad.txt", b"\xff\xfe caf\xe9", "not valid UTF-8"),
        ("bin.txt", b"abc\x00def", "binary"),
        ("doc.pdf", b"%PDF-1.4", "unsupported file type"),
        ("broken.jsonl", b'{"id": "a", "text": "ok"}\n{not json}\n', "broken.jsonl:2: invalid JSON"),
        ("noid.jsonl", b'{"text": "no id"}\n', "missing 'id'"),
        ("dup.jsonl", b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "two documents have the id 'a'"),
    ],
)
def test_bad_input_gets_a_clear_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    file = tmp_path / name
    file.write_bytes(content)
    with pytest.raises(qa.DocumentError, match=message.replace("(", r"\(")):
        load_sources([file])


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(qa.DocumentError, match="no such file or folder"):
        load_sources([tmp_path / "nope.txt"])
