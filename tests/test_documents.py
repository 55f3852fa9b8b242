from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

import qa
from qa.documents import (
    DEFAULT_DOC_ID,
    Document,
    ReadReport,
    SourceFailure,
    heading_at,
    load_sources,
    page_at,
    read_sources,
    safe_filename,
)
from qa.sentences import split

SHARED_ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "eval" / "seed" / "article.txt"

# --------------------------------------------------------------------------------------------------------------
# Real files of each format, generated here.
# --------------------------------------------------------------------------------------------------------------

Paragraph = str | list[str]  # a paragraph wrapped by the PDF library, or its lines written one by one


def make_pdf(path: Path, pages: Sequence[Sequence[Paragraph]], *, title: str | None = None,
             header: str | None = None, footer_numbers: bool = False) -> Path:
    """A text PDF made with fpdf2: one list of paragraphs a page, a gap between paragraphs."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    if title is not None:
        pdf.set_title(title)
    for number, paragraphs in enumerate(pages, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        if header:
            pdf.cell(0, 6, header, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(6)
        for paragraph in paragraphs:
            if isinstance(paragraph, str):
                pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            else:
                for line in paragraph:
                    pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
        if footer_numbers:
            pdf.set_y(-20)
            pdf.cell(0, 6, str(number), align="C")
    pdf.output(str(path))
    return path


def make_docx(path: Path, blocks: Sequence[tuple[str, object]], *, title: str | None = None) -> Path:
    """A .docx made with python-docx from ("title"|"h1"|"h2"|"p"|"table", content) blocks."""
    import docx

    d = docx.Document()
    if title is not None:
        d.core_properties.title = title
    for kind, content in blocks:
        if kind == "title":
            d.add_heading(str(content), level=0)
        elif kind.startswith("h"):
            d.add_heading(str(content), level=int(kind[1:]))
        elif kind == "p":
            d.add_paragraph(str(content))
        elif kind == "table":
            rows = list(content)  # type: ignore[call-overload]
            table = d.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
    d.save(str(path))
    return path


def span_of(doc: Document, sentence: str) -> tuple[int, int]:
    """The (start, end) of ``sentence`` among the sentences the index would cut from ``doc``."""
    for start, end in split(doc.text):
        if doc.text[start:end] == sentence:
            return start, end
    raise AssertionError(f"{sentence!r} is not a sentence of {doc.text!r}")


# --------------------------------------------------------------------------------------------------------------
# The bundled article, folders, JSONL (existing behaviour)
# --------------------------------------------------------------------------------------------------------------


def test_default_document_is_the_bundled_article() -> None:
    doc = qa.default_document()
    assert doc.doc_id == DEFAULT_DOC_ID
    assert doc.title == "US-Pakistan relations under Trump's second term"
    assert doc.text.startswith("RECENTLY, President Trump")
    assert doc.sha256 == "ba0453fc42da780f073738cc4dbd071efc1b55622689cce0f3c8914b66782342"
    assert doc.pages == () and doc.headings == ()


@pytest.mark.skipif(not SHARED_ARTICLE.is_file(), reason="shared/eval is not beside the checkout")
def test_bundled_article_is_byte_identical_to_the_evaluation_copy() -> None:
    assert qa.default_document().text.encode("utf-8") == SHARED_ARTICLE.read_bytes()


def test_folder_is_read_recursively_with_ids_from_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Alpha text.", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# Bee notes\n\nBees buzz.", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.txt").write_text("secret", encoding="utf-8")
    (tmp_path / ".dotfile.txt").write_text("secret", encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    report = read_sources([tmp_path])
    assert report.failures == []  # unsupported files found in a folder are skipped silently
    docs = {d.doc_id: d for d in report.documents}
    assert set(docs) == {"a", "sub/b"}
    assert docs["sub/b"].title == "Bee notes"
    assert docs["a"].text == "Alpha text."
    assert docs["a"].title == "a"


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


def test_utf16_text_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    file = tmp_path / "u16.txt"
    file.write_bytes("Zürich is a city.\r\n".encode("utf-16"))
    assert load_sources([file])[0].text == "Zürich is a city.\n"


# --------------------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------------------


def test_markdown_text_is_kept_exactly_and_headings_are_recorded(tmp_path: Path) -> None:
    source = (
        "# Field report\n\nWe counted birds.\n\n## Results\n\nCats won the race. Dogs came second.\n\n"
        "```\n# not a heading\n```\n\nMethods\n-------\n\nWe used a stopwatch.\n"
    )
    file = tmp_path / "report.md"
    file.write_text(source, encoding="utf-8")
    (doc,) = load_sources([file])
    assert doc.text == source  # heading lines included: offsets into the file stay exact
    assert doc.title == "Field report"
    assert doc.headings == (
        (0, "Field report"),
        (source.index("## Results"), "Results"),
        (source.index("Methods"), "Methods"),
    )
    start, end = span_of(doc, "Cats won the race.")
    assert doc.text[start:end] == "Cats won the race."
    assert heading_at(doc.headings, start) == "Results"
    assert heading_at(doc, span_of(doc, "We counted birds.")[0]) == "Field report"
    assert heading_at(doc, span_of(doc, "We used a stopwatch.")[0]) == "Methods"
    assert page_at(doc, start) is None


def test_markdown_without_a_level_one_heading_is_titled_by_its_file_name(tmp_path: Path) -> None:
    file = tmp_path / "meeting_notes.md"
    file.write_text("## Agenda\n\nBudget.\n", encoding="utf-8")
    assert load_sources([file])[0].title == "meeting notes"


# --------------------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>Cat facts</title><style>p { color: red; } .secret-style {}</style>
<script>var trap = "</div><p>script text</p>";</script></head>
<body>
<header><a href="/">Site home</a></header>
<nav><ul><li>Menu entry<li>Another entry</ul></nav>
<main><article>
<h1>All about cats</h1>
<p>Cats sleep a lot.
   They also purr.</p>
<h2>Results</h2>
<p>Cats won the <b>race</b>. Caf&eacute; &amp; na&iuml;ve.<br>A new line.</p>
<ul><li>First item<li>Second item</ul>
<table><tr><th>Name</th><th>Age</th></tr><tr><td>Tom</td><td>3</td></tr></table>
</article></main>
<aside>Related links</aside>
<footer>Copyright notice</footer>
<noscript>Enable scripts</noscript>
<div hidden>Hidden words</div>
</body></html>
"""


def test_html_keeps_content_and_drops_scripts_styles_and_navigation(tmp_path: Path) -> None:
    file = tmp_path / "cats.html"
    file.write_text(PAGE, encoding="utf-8")
    (doc,) = load_sources([file])
    assert doc.title == "Cat facts"
    assert doc.text.split("\n") == [
        "All about cats",
        "Cats sleep a lot. They also purr.",
        "Results",
        "Cats won the race. Café & naïve.",
        "A new line.",
        "First item",
        "Second item",
        "Name | Age",
        "Tom | 3",
    ]
    for dropped in ("script text", "trap", "color", "secret-style", "Site home", "Menu entry", "Related links",
                    "Copyright", "Enable scripts", "Hidden words"):
        assert dropped not in doc.text
    start, end = span_of(doc, "Cats won the race.")
    assert doc.text[start:end] == "Cats won the race."
    assert heading_at(doc, start) == "Results"
    assert heading_at(doc, span_of(doc, "They also purr.")[0]) == "All about cats"
    assert doc.headings == ((0, "All about cats"), (doc.text.index("Results"), "Results"))


def test_html_title_falls_back_to_the_first_h1_then_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "a.htm").write_text("<h2>Minor</h2><h1>Main <em>title</em></h1><p>Text.</p>", encoding="utf-8")
    (tmp_path / "b.html").write_text("<p>Only text.</p>", encoding="utf-8")
    docs = {d.doc_id: d for d in load_sources([tmp_path])}
    assert docs["a"].title == "Main title"
    assert docs["b"].title == "b"


def test_html_declaring_a_legacy_charset_is_decoded_with_it(tmp_path: Path) -> None:
    file = tmp_path / "latin.html"
    file.write_bytes('<meta charset="iso-8859-1"><p>Caf\u00e9 cr\u00e8me.</p>'.encode("latin-1"))
    assert load_sources([file])[0].text == "Café crème."


# --------------------------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------------------------

LONG = (
    "Cats sleep for most of the day and wake up at night to hunt small animals in the garden behind the "
    "old house, which is why the neighbours rarely see them before dusk."
)


def test_pdf_pages_and_paragraphs(tmp_path: Path) -> None:
    file = make_pdf(tmp_path / "report.pdf", [
        [LONG, "A second paragraph that is short."],
        [["Dogs bark at the postman every morning and the", "postman has learned to bring biscuits."],
         ["The infor-", "mation was collected in spring."]],
    ], title="Annual pet report")
    (doc,) = load_sources([file])
    assert doc.title == "Annual pet report"
    lines = doc.text.split("\n")
    # Lines wrapped by the layout are joined back into their paragraph; paragraphs stay on their own lines.
    assert lines == [
        LONG,
        "A second paragraph that is short.",
        "Dogs bark at the postman every morning and the postman has learned to bring biscuits.",
        "The information was collected in spring.",
    ]
    assert len(doc.pages) == 2 and doc.pages[0] == 0
    assert doc.text[doc.pages[1]:].startswith("Dogs bark")
    start, end = span_of(doc, "Dogs bark at the postman every morning and the postman has learned to bring biscuits.")
    assert page_at(doc, start) == 2
    assert page_at(doc.pages, end - 1) == 2
    assert page_at(doc, span_of(doc, "A second paragraph that is short.")[0]) == 1
    assert page_at(doc, span_of(doc, "The information was collected in spring.")[0]) == 2


def test_pdf_sentence_running_on_to_the_next_page_stays_whole(tmp_path: Path) -> None:
    file = make_pdf(tmp_path / "overleaf.pdf", [
        [["The committee met on a cold Tuesday morning in the old town hall and it",
          "discussed the budget for the coming year at length, ending the session without"]],
        [["a vote. The next meeting is in May."]],
    ])
    (doc,) = load_sources([file])
    assert doc.text == (
        "The committee met on a cold Tuesday morning in the old town hall and it discussed the budget for the "
        "coming year at length, ending the session without a vote. The next meeting is in May."
    )
    assert doc.text[doc.pages[1]:].startswith("a vote.")
    start, _ = span_of(doc, doc.text[: doc.text.index("a vote.") + len("a vote.")])
    assert page_at(doc, start) == 1
    assert page_at(doc, span_of(doc, "The next meeting is in May.")[0]) == 2


def test_pdf_running_heads_and_page_numbers_are_dropped(tmp_path: Path) -> None:
    pages = [[f"Page {n} says cats are great number {n}."] for n in range(1, 4)]
    file = make_pdf(tmp_path / "heads.pdf", pages, header="ACME quarterly review", footer_numbers=True)
    (doc,) = load_sources([file])
    assert doc.text.split("\n") == [f"Page {n} says cats are great number {n}." for n in range(1, 4)]


def test_pdf_title_is_the_file_name_when_the_metadata_title_is_not_meaningful(tmp_path: Path) -> None:
    a = make_pdf(tmp_path / "minutes_2024.pdf", [["Minutes of the meeting."]], title="Microsoft Word - min.docx")
    b = make_pdf(tmp_path / "plain.pdf", [["No title at all."]])
    assert [d.title for d in load_sources([a, b])] == ["minutes 2024", "plain"]


def test_pdf_bookmarks_become_headings(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.start_section("Introduction")
    pdf.multi_cell(0, 6, "Intro text is here.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Still the introduction.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.start_section("Results")
    pdf.multi_cell(0, 6, "Results", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.multi_cell(0, 6, "Cats won.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "book.pdf"))
    (doc,) = load_sources([tmp_path / "book.pdf"])
    assert [h for _, h in doc.headings] == ["Introduction", "Results"]
    assert heading_at(doc, span_of(doc, "Still the introduction.")[0]) == "Introduction"
    assert heading_at(doc, span_of(doc, "Cats won.")[0]) == "Results"


def test_pdf_with_an_empty_user_password_is_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(tmp_path / "plain.pdf", [["Readable with no password."]])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    with open(tmp_path / "restricted.pdf", "wb") as out:
        writer.write(out)
    assert load_sources([tmp_path / "restricted.pdf"])[0].text == "Readable with no password."


# --------------------------------------------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------------------------------------------


def test_docx_paragraphs_tables_and_headings(tmp_path: Path) -> None:
    file = make_docx(tmp_path / "memo.docx", [
        ("title", "Quarterly memo"),
        ("p", "Sales grew this quarter."),
        ("h1", "Results"),
        ("p", "Cats won the race. Dogs came second."),
        ("table", [["Name", "Age"], ["Tom", "3"]]),
        ("h2", "Next steps"),
        ("p", "Buy more cat food."),
    ])
    (doc,) = load_sources([file])
    assert doc.title == "Quarterly memo"
    assert doc.text.split("\n") == [
        "Quarterly memo", "Sales grew this quarter.", "Results", "Cats won the race. Dogs came second.",
        "Name | Age", "Tom | 3", "Next steps", "Buy more cat food.",
    ]
    assert [h for _, h in doc.headings] == ["Quarterly memo", "Results", "Next steps"]
    start, end = span_of(doc, "Dogs came second.")
    assert doc.text[start:end] == "Dogs came second."
    assert heading_at(doc, start) == "Results"
    assert heading_at(doc, span_of(doc, "Buy more cat food.")[0]) == "Next steps"


def test_docx_title_comes_from_core_properties_first(tmp_path: Path) -> None:
    a = make_docx(tmp_path / "a.docx", [("h1", "Heading one"), ("p", "Text.")], title="Proper title")
    b = make_docx(tmp_path / "b.docx", [("p", "Text only.")])
    assert [d.title for d in load_sources([a, b])] == ["Proper title", "b"]


# --------------------------------------------------------------------------------------------------------------
# Bad input: a clear error naming the file, and the other files are still read
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"  \n", "is empty"),
        ("zero.md", b"", "is empty"),
        ("zero.pdf", b"", "is empty"),
        ("bad.txt", b"\xff\xfe caf\xe9", "not valid UTF-8"),
        ("bad.html", b"<p>caf\xe9</p>", "not valid UTF-8"),
        ("bin.txt", b"abc\x00def", "binary"),
        ("pdf.txt", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "looks like binary data (a PDF"),
        ("notes.md", b"\x89PNG\r\n\x1a\n\x00\x00", "a PNG image"),
        ("doc.pdf", b"%PDF-1.4", "not a readable PDF"),
        ("junk.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8, "not a readable PDF"),
        ("fake.docx", b"this is not a zip file", "not a readable .docx"),
        ("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old Word (.doc) or password-protected"),
        ("old.doc", b"\xd0\xcf\x11\xe0", "unsupported file type '.doc'; supported: .txt"),
        ("data.csv", b"a,b\n1,2\n", "unsupported file type '.csv'"),
        ("broken.jsonl", b'{"id": "a", "text": "ok"}\n{not json}\n', "broken.jsonl:2: invalid JSON"),
        ("noid.jsonl", b'{"text": "no id"}\n', "missing 'id'"),
        ("dup.jsonl", b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "two documents have the id 'a'"),
        ("blank.jsonl", b'{"id": "a", "text": "  "}\n', "document 'a' is empty"),
    ],
)
def test_bad_input_gets_a_clear_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    file = tmp_path / name
    file.write_bytes(content)
    with pytest.raises(qa.DocumentError, match=re.escape(message)) as info:
        load_sources([file])
    assert name in str(info.value)


def test_password_protected_pdf_says_to_remove_the_password(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(tmp_path / "plain.pdf", [["Secret text."]])
    for algorithm in ("RC4-128", "AES-256"):
        writer = PdfWriter(clone_from=PdfReader(plain))
        writer.encrypt(user_password="secret", algorithm=algorithm)
        locked = tmp_path / f"locked-{algorithm}.pdf"
        with open(locked, "wb") as out:
            writer.write(out)
        with pytest.raises(qa.DocumentError, match=r"locked-.*\.pdf: the PDF is password-protected; remove"):
            load_sources([locked])


def test_pdf_without_text_says_it_needs_ocr(tmp_path: Path) -> None:
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF()
    pdf.add_page()
    pdf.image(Image.new("RGB", (60, 20), "white"), x=10, y=10, w=120)  # a "scanned" page: an image only
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # a page with drawings and no text
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(qa.DocumentError, match=r"scan\.pdf: the PDF has no extractable text .* run OCR"):
        load_sources([tmp_path / "scan.pdf"])


def test_file_over_the_size_limit_fails_and_the_others_are_read(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("Big file. " * 20, encoding="utf-8")
    (tmp_path / "small.txt").write_text("Small.", encoding="utf-8")
    report = read_sources([tmp_path], max_bytes=100)
    assert [d.doc_id for d in report.documents] == ["small"]
    (failure,) = report.failures
    assert failure.source == str(tmp_path / "big.txt")
    assert "big.txt" in failure.reason and "size limit" in failure.reason
    with pytest.raises(qa.DocumentError, match="size limit"):
        load_sources([tmp_path], max_bytes=100)
    assert len(load_sources([tmp_path])) == 2  # the default limit is 50 MB


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_bytes_must_be_a_positive_integer(tmp_path: Path, bad: object) -> None:
    with pytest.raises(qa.ConfigError, match="max_bytes"):
        read_sources([tmp_path], max_bytes=bad)  # type: ignore[arg-type]


def test_read_sources_reports_every_failure_and_keeps_every_good_file(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Good text.", encoding="utf-8")
    (folder / "empty.md").write_text("", encoding="utf-8")
    (folder / "bad.txt").write_bytes(b"\xffbad")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    make_docx(folder / "memo.docx", [("p", "Memo text.")])
    explicit = tmp_path / "table.csv"
    explicit.write_text("a,b", encoding="utf-8")
    report = read_sources([folder, explicit, tmp_path / "missing.txt", Document("given", "Given", "Given text.")])
    assert isinstance(report, ReadReport)
    assert [d.doc_id for d in report.documents] == ["good", "memo", "given"]
    assert [Path(f.source).name for f in report.failures] == [
        "bad.txt", "broken.pdf", "empty.md", "table.csv", "missing.txt",
    ]
    assert all(isinstance(f, SourceFailure) and Path(f.source).name in f.reason for f in report.failures)
    assert "no such file or folder" in report.failures[-1].reason
    with pytest.raises(qa.DocumentError, match=r"bad\.txt: not valid UTF-8.*\(and 4 more failed\)"):
        load_sources([folder, explicit, tmp_path / "missing.txt"])


def test_an_unexpected_error_in_one_file_does_not_lose_the_others(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import extract

    def broken(data: bytes, name: str) -> extract.Extracted:
        raise RuntimeError("extractor bug")

    monkeypatch.setitem(extract.EXTRACTORS, ".htm", broken)  # fault injection: a bug in one extractor
    (tmp_path / "a.htm").write_text("<p>A.</p>", encoding="utf-8")
    (tmp_path / "b.txt").write_text("B.", encoding="utf-8")
    report = read_sources([tmp_path])
    assert [d.doc_id for d in report.documents] == ["b"]
    assert "a.htm: could not be read (RuntimeError: extractor bug)" in report.failures[0].reason


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can list any folder")
def test_a_folder_that_cannot_be_listed_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("Fine.", encoding="utf-8")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.txt").write_text("Hidden by permissions.", encoding="utf-8")
    locked.chmod(0)
    try:
        report = read_sources([tmp_path])
    finally:
        locked.chmod(0o755)
    assert [d.doc_id for d in report.documents] == ["ok"]
    assert "cannot list this folder" in report.failures[0].reason


def test_duplicate_ids_across_files_fail_the_later_file_only(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "notes.txt").write_text("First notes.", encoding="utf-8")
    (tmp_path / "two" / "notes.md").write_text("Second notes.", encoding="utf-8")
    (tmp_path / "many.jsonl").write_text(
        json.dumps({"id": "fresh", "text": "Fresh."}) + "\n" + json.dumps({"id": "notes", "text": "Dup."}) + "\n",
        encoding="utf-8",
    )
    report = read_sources([tmp_path / "one" / "notes.txt", tmp_path / "two" / "notes.md", tmp_path / "many.jsonl"])
    assert [(d.doc_id, d.text) for d in report.documents] == [("notes", "First notes.")]
    assert [Path(f.source).name for f in report.failures] == ["notes.md", "many.jsonl"]
    assert "two documents have the id 'notes'" in report.failures[0].reason


def test_no_documents_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    with pytest.raises(qa.DocumentError, match="no documents found"):
        load_sources([tmp_path])


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(qa.DocumentError, match="no such file or folder"):
        load_sources([tmp_path / "nope.txt"])


# --------------------------------------------------------------------------------------------------------------
# Include and exclude patterns
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    for rel in ("a.md", "b.txt", "drafts/c.md", "notes/d.html", "notes/deep/e.txt"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Text of {rel}.", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("include", "exclude", "ids"),
    [
        (None, None, ["a", "b", "drafts/c", "notes/d", "notes/deep/e"]),
        (["*.md"], None, ["a", "drafts/c"]),
        (["**/*.txt"], None, ["b", "notes/deep/e"]),
        (["notes"], None, ["notes/d", "notes/deep/e"]),
        (["notes/*.html", "a.md"], None, ["a", "notes/d"]),
        (None, ["drafts"], ["a", "b", "notes/d", "notes/deep/e"]),
        (None, ["drafts/", "*.txt"], ["a", "notes/d"]),
        (None, ["notes/deep/*"], ["a", "b", "drafts/c", "notes/d"]),
        (["*.md", "*.txt"], ["drafts/**"], ["a", "b", "notes/deep/e"]),
    ],
)
def test_include_and_exclude_patterns(tree: Path, include: list[str] | None, exclude: list[str] | None,
                                      ids: list[str]) -> None:
    assert [d.doc_id for d in load_sources([tree], include=include, exclude=exclude)] == ids


def test_patterns_do_not_filter_files_given_directly(tree: Path) -> None:
    assert [d.doc_id for d in load_sources([tree / "b.txt"], include=["*.md"])] == ["b"]


def test_a_single_pattern_may_be_given_as_a_string(tree: Path) -> None:
    assert [d.doc_id for d in load_sources([tree], include="*.md", exclude="drafts")] == ["a"]


def test_patterns_that_match_nothing_say_so(tree: Path) -> None:
    with pytest.raises(qa.DocumentError, match="include/exclude"):
        load_sources([tree], include=["*.pdf"])


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def test_page_and_heading_lookup() -> None:
    doc = Document("d", "D", "a" * 300, pages=(0, 100, 100, 250), headings=((10, "One"), (120, "Two")))
    assert [page_at(doc, o) for o in (0, 99, 100, 249, 250, 299)] == [1, 1, 3, 3, 4, 4]
    assert page_at(doc, -1) is None
    assert page_at(Document("e", "E", "text"), 2) is None
    assert [heading_at(doc, o) for o in (0, 9, 10, 119, 120, 299)] == [None, None, "One", "One", "Two", "Two"]
    assert heading_at((), 5) is None


@pytest.mark.parametrize("name", ["report.pdf", "Notes 2024 (final).docx", "ünïcode.md", "a.b.txt"])
def test_safe_filename_returns_bare_names(name: str) -> None:
    assert safe_filename(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("../etc/passwd", "path"),
        ("..", "path"),
        ("a..b.txt", "path"),
        ("dir/file.txt", "path"),
        ("C:\\Users\\x.txt", "path"),
        ("bad\x00.txt", "NUL"),
        (".hidden.txt", "hidden"),
        ("x" * 300 + ".txt", "255 bytes"),
    ],
)
def test_safe_filename_refuses_paths_and_odd_names(name: str, message: str) -> None:
    with pytest.raises(qa.DocumentError, match=message):
        safe_filename(name)


def test_extraction_works_from_bytes_without_a_file() -> None:
    from qa.extract import extract

    buffer = io.BytesIO()
    import docx

    d = docx.Document()
    d.add_paragraph("From memory.")
    d.save(buffer)
    assert extract(buffer.getvalue(), suffix=".DOCX", name="upload.docx").text == "From memory."
