"""Limits on what one document may cost: zip bombs, paragraph bombs, huge texts and PDFs, heavy uploads.

Every file is real and generated here (zipfile, python-docx, fpdf2; bombs by ``tests/hostile_files.py``) and read
by the real parsers through ``qa.read_sources``. Memory is checked as a sanity bound (peak RSS of a fresh
process), never time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hostile_files import DOCUMENT, MB, paragraph_docx, zip_bomb

import qa
from qa.config import Settings
from qa.documents import Limits, load_sources, read_sources
from qa.limits import MAX_ZIP_MEMBERS, check_zip, sentences_at_least, xml_counts
from qa.sentences import split
from qa.workspace import Upload, Workspace

ROOT = Path(__file__).resolve().parents[1]


def failure_of(path: Path, limits: Limits | None = None) -> str:
    """The reason ``path`` was refused (it must be)."""
    report = read_sources([path], limits=limits)
    assert not report.documents, f"{path.name} was read"
    (failure,) = report.failures
    return failure.reason


# ------------------------------------------------------------------------------------------------ zip bombs


def test_a_docx_zip_bomb_is_refused_by_the_size_its_directory_declares(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "report.docx", 300 * MB)  # ~300 KB on disk
    assert bomb.stat().st_size < 1 * MB
    reason = failure_of(bomb)
    assert reason.startswith(f"{bomb}: unpacks to more than 200 MB")
    assert "max_unpacked_mb=200" in reason and "QA_MAX_UNPACKED_MB" in reason


def test_a_zip_bomb_whose_directory_lies_is_refused_while_it_is_inflated(tmp_path: Path) -> None:
    liar = zip_bomb(tmp_path / "liar.docx", 300 * MB, claim=1000)
    assert zipfile.ZipFile(liar).getinfo(DOCUMENT).file_size == 1000  # what zipfile (and python-docx) would believe
    reason = failure_of(liar)
    assert reason.startswith(f"{liar}: {DOCUMENT} unpacks to at least ")  # stopped after about 1 MB
    assert "max_zip_ratio=200" in reason and "QA_MAX_ZIP_RATIO" in reason
    # With the ratio allowed, the real bytes still stop it at the unpacked-size cap.
    reason = failure_of(liar, Limits(max_zip_ratio=100_000, max_unpacked_mb=50))
    assert reason.startswith(f"{liar}: unpacks to more than 50 MB") and "QA_MAX_UNPACKED_MB" in reason


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="peak RSS is read from /proc")
def test_refusing_a_zip_bomb_takes_little_memory(tmp_path: Path) -> None:
    # A lying directory and a ratio allowed: 200 MB are really inflated before the cap refuses the file.
    liar = zip_bomb(tmp_path / "liar.docx", 300 * MB, claim=1000)
    # VmHWM is the child's own peak RSS (ru_maxrss would start at pytest's, inherited across exec).
    script = (
        "import json, sys\n"
        "from qa.documents import Limits, read_sources\n"
        "def peak_kb():\n"
        "    with open('/proc/self/status') as status:\n"
        "        return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
        "before = peak_kb()\n"
        "report = read_sources([sys.argv[1]], limits=Limits(max_zip_ratio=100_000))\n"
        "print(json.dumps({'reasons': [f.reason for f in report.failures], 'grew_kb': peak_kb() - before}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script, str(liar)], capture_output=True, text=True, env=env,
                         check=True)
    result = json.loads(out.stdout)
    assert "unpacks to more than 200 MB" in result["reasons"][0]
    assert result["grew_kb"] < 64 * 1024, result  # inflating the 200 MB whole would take over 200 MB


def test_an_honest_docx_that_compresses_well_is_read(tmp_path: Path) -> None:
    # The bomb's shape (a paragraph, then 3 MB of spaces) within the limits is an ordinary document.
    file = zip_bomb(tmp_path / "padded.docx", 3 * MB)
    (doc,) = load_sources([file], limits=Limits(max_zip_ratio=2000))
    assert doc.text == "The first paragraph of a bomb."


def test_a_zip_of_too_many_members_is_refused_before_its_directory_is_read(tmp_path: Path) -> None:
    file = tmp_path / "many.docx"
    with zipfile.ZipFile(file, "w") as z:
        for i in range(MAX_ZIP_MEMBERS + 1):
            z.writestr(f"m{i}", b"")
    assert "holds more than 10,000 files inside its zip container" in failure_of(file)


def test_a_member_compressed_with_another_method_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "bz.docx"
    with zipfile.ZipFile(file, "w", zipfile.ZIP_BZIP2) as z:  # bzip2 inflates without a bound on its output
        z.writestr(DOCUMENT, b"<w:document/>")
    assert "is compressed with method 12, which Word documents do not use" in failure_of(file)


def test_a_damaged_zip_is_still_called_unreadable(tmp_path: Path) -> None:
    good = paragraph_docx(tmp_path / "good.docx", 10)
    data = bytearray(good.read_bytes())
    at = data.index(b"PK\x01\x02")  # the directory survives, a member's compressed bytes do not
    data[at - 200 : at - 100] = b"\x00" * 100
    bad = tmp_path / "bad.docx"
    bad.write_bytes(bytes(data))
    assert "not a readable .docx file" in failure_of(bad)


# ------------------------------------------------------------------------------------------ paragraph bombs


def test_a_paragraph_bomb_is_refused_before_python_docx_parses_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import docx

    bomb = paragraph_docx(tmp_path / "bomb.docx", 200_000)  # numbered: compresses like a real document
    assert bomb.stat().st_size < 1 * MB
    parsed: list[object] = []
    real = docx.Document
    monkeypatch.setattr(docx, "Document", lambda *a, **k: parsed.append(a) or real(*a, **k))
    reason = failure_of(bomb)
    assert reason.startswith(f"{bomb}: holds more than 50,000 paragraphs")
    assert "max_document_sentences=50000" in reason and "QA_MAX_DOCUMENT_SENTENCES" in reason
    assert parsed == []  # refused by the scan, not after python-docx built the tree
    # A million identical paragraphs pack so tightly (~300:1) that the ratio refuses them first.
    tight = paragraph_docx(tmp_path / "tight.docx", 1_000_000, numbered=False)
    assert "max_zip_ratio" in failure_of(tight)


def test_paragraphs_are_counted_exactly_across_chunk_boundaries() -> None:
    xml = b"<w:body><w:p><w:r><w:t>a</w:t></w:r></w:p><w:p w:rsidR='1'/><p>x</p><w:pPr/></w:body>"
    whole = xml_counts(b"", xml)[:2]
    assert whole == (7, 3)  # start tags (w:body w:p w:r w:t w:p p w:pPr), paragraphs (w:p w:p p)
    for cut in range(1, len(xml)):
        first, second = xml[:cut], xml[cut:]
        e1, p1, carry = xml_counts(b"", first)
        e2, p2, _ = xml_counts(carry, second)
        assert (e1 + e2, p1 + p2) == whole, cut


def test_paragraph_limit_is_exact_on_a_stream_of_many_chunks(tmp_path: Path) -> None:
    # 40,000 paragraphs are ~1.5 MB of XML: the count crosses the 1 MB chunks the scan reads.
    data = paragraph_docx(tmp_path / "p.docx", 40_000).read_bytes()
    check_zip(data, "p.docx", Limits(max_document_sentences=40_000).resolved(Settings()))
    with pytest.raises(qa.DocumentError, match="more than 39,999 paragraphs"):
        check_zip(data, "p.docx", Limits(max_document_sentences=39_999).resolved(Settings()))


def test_utf16_xml_is_counted_too(tmp_path: Path) -> None:
    file = tmp_path / "wide.docx"
    xml = '<?xml version="1.0" encoding="UTF-16"?><w:document><w:body>' + "<w:p/>" * 60_000 + "</w:body></w:document>"
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(DOCUMENT, xml.encode("utf-16"))
    assert "holds more than 50,000 paragraphs" in failure_of(file)


def test_xml_elements_are_limited(tmp_path: Path) -> None:
    file = paragraph_docx(tmp_path / "runs.docx", 2_000)  # 3 elements a paragraph, plus the blank document's
    assert "holds more than 5,000 XML elements" in failure_of(file, Limits(max_xml_elements=5_000))
    assert "QA_MAX_XML_ELEMENTS" in failure_of(file, Limits(max_xml_elements=5_000))


def test_a_normal_docx_still_reads_with_its_headings(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Annual report", level=1)
    d.add_paragraph("Sales grew in the north. Costs fell.")
    d.add_heading("Outlook", level=2)
    d.add_paragraph("Next year looks better.")
    table = d.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Region", "North"
    file = tmp_path / "report.docx"
    d.save(str(file))
    (doc,) = load_sources([file])
    assert doc.text.split("\n") == [
        "Annual report", "Sales grew in the north. Costs fell.", "Outlook", "Next year looks better.", "Region | North",
    ]
    assert [h for _, h in doc.headings] == ["Annual report", "Outlook"] and doc.title == "Annual report"


# ------------------------------------------------------------------------------------------ text limits


def test_text_over_the_character_limit_is_refused_and_the_others_are_read(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text("A fairly long sentence. " * 10, encoding="utf-8")
    (tmp_path / "short.txt").write_text("Short.", encoding="utf-8")
    (tmp_path / "long.md").write_text("# Title\n\n" + "Words and more words. " * 10, encoding="utf-8")
    report = read_sources([tmp_path], limits=Limits(max_document_chars=100))
    assert [d.doc_id for d in report.documents] == ["short"]
    assert sorted(Path(f.source).name for f in report.failures) == ["long.md", "long.txt"]
    for f in report.failures:
        assert f.reason.startswith(f"{f.source}: holds ") and "characters of text, more than 100" in f.reason
        assert "(limit max_document_chars=100, QA_MAX_DOCUMENT_CHARS)" in f.reason


def test_text_over_the_sentence_limit_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "lines.txt"
    file.write_text("\n".join(f"Line {i}" for i in range(30)), encoding="utf-8")
    reason = failure_of(file, Limits(max_document_sentences=20))
    assert reason.startswith(f"{file}: holds at least 30 sentences, more than 20")
    assert "QA_MAX_DOCUMENT_SENTENCES" in reason
    assert len(load_sources([file], limits=Limits(max_document_sentences=30))[0].text) > 0


def test_each_jsonl_document_is_held_to_the_limits(tmp_path: Path) -> None:
    file = tmp_path / "docs.jsonl"
    file.write_text(json.dumps({"id": "a", "text": "Short."}) + "\n" + json.dumps({"id": "b", "text": "x" * 200}),
                    encoding="utf-8")
    assert failure_of(file, Limits(max_document_chars=100)).startswith(f"{file}:2: holds 200 characters")


@pytest.mark.parametrize("text", [
    "One. Two. Three.", "a\n\n\nb\n  \n\tc", "’’\nx", "word " * 2000, ("y" * 1500 + "\n") * 3, "", " \n \n",
    "Dr. Smith went home.\nHe slept.\n" * 20, "x" * 5000,
])
def test_the_sentence_count_bound_is_never_above_the_real_count(text: str) -> None:
    bound, real = sentences_at_least(text), len(split(text))
    assert bound <= real
    lines = [line for line in text.split("\n") if line.strip()]
    assert bound >= len(lines) - sum(line.strip() == "’’" for line in lines)  # every line but a bare quote


def test_limits_come_from_the_environment_and_are_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "a.txt"
    file.write_text("Some text here.", encoding="utf-8")
    monkeypatch.setenv("QA_MAX_DOCUMENT_CHARS", "5")
    assert "max_document_chars=5" in failure_of(file)
    assert load_sources([file], limits=Limits(max_document_chars=50))[0].doc_id == "a"  # an argument wins
    monkeypatch.setenv("QA_MAX_DOCUMENT_CHARS", "0")
    with pytest.raises(qa.ConfigError, match="max_document_chars=0 must be at least 1"):
        read_sources([file])
    monkeypatch.delenv("QA_MAX_DOCUMENT_CHARS")
    with pytest.raises(qa.ConfigError, match=r"max_zip_ratio=0\.5 must be at least 1"):
        read_sources([file], limits=Limits(max_zip_ratio=0.5))
    defaults = Settings()
    assert (defaults.max_unpacked_mb, defaults.max_zip_ratio, defaults.max_document_chars,
            defaults.max_document_sentences, defaults.max_upload_sentences) == (200, 200, 5_000_000, 50_000, 100_000)


# ------------------------------------------------------------------------------------------ PDF


def same_pages_pdf(path: Path, pages: int) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for _ in range(pages):
        pdf.add_page()
        pdf.cell(0, 6, "The same page, printed again and again.")
    pdf.output(str(path))
    return path


def test_a_pdf_of_identical_pages_is_read_not_called_scanned(tmp_path: Path) -> None:
    file = same_pages_pdf(tmp_path / "same.pdf", 300)
    (doc,) = load_sources([file])
    assert len(doc.pages) == 300
    assert doc.text.split("\n") == ["The same page, printed again and again."] * 300


def test_a_pdf_stops_being_read_at_the_character_limit(tmp_path: Path) -> None:
    file = same_pages_pdf(tmp_path / "same.pdf", 300)  # 40 characters a page (a line and its break)
    reason = failure_of(file, Limits(max_document_chars=2_000))
    assert reason.startswith(f"{file}: holds more than 2,000 characters of text by page 51 of 300")
    assert "QA_MAX_DOCUMENT_CHARS" in reason


# ------------------------------------------------------------------------------------------ uploads


@pytest.mark.slow
def test_an_upload_stops_reading_files_at_its_sentence_limit(tmp_path: Path) -> None:
    settings = qa.get_settings(index_dir=tmp_path / "root", max_upload_sentences=5)
    path = tmp_path / "mine"
    qa.Index.build([qa.Document("cats", "Cats", "Cats sleep for sixteen hours a day.")], path, settings=settings)
    ws = Workspace(qa.open_index(path, settings=settings), settings)
    received = tmp_path / "received"
    received.mkdir()
    files = {
        "dogs.txt": "Dogs bark.\nDogs fetch.",  # 2: read
        "owls.txt": "Owls hoot.\nOwls hunt.\nOwls sleep by day.\nOwls fly.",  # 2 + 4 > 5: refused
        "bad.txt": b"\xff not UTF-8",  # never read: refused for the limit, not for its bytes
    }
    uploads = []
    for name, content in files.items():
        (received / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        uploads.append(Upload(name, received / name))
    report = ws.add(uploads)
    assert [d.doc_id for d in report.added] == ["dogs"]
    owls, bad = report.failures
    assert owls.source == "owls.txt" and owls.reason.startswith(
        "owls.txt: would take this upload to at least 6 sentences, more than 5")
    assert "(limit max_upload_sentences=5, QA_MAX_UPLOAD_SENTENCES)" in owls.reason
    assert bad.reason.startswith("bad.txt: was not read: this upload reached its limit of 5 sentences at owls.txt")
    assert [d.doc_id for d in qa.Index.load(path, settings=settings).documents] == ["cats", "dogs"]
    assert sorted(p.name for p in (tmp_path / "uploads" / "mine").iterdir()) == ["dogs.txt"]


def test_extraction_from_bytes_takes_the_limits_too() -> None:
    from qa.extract import extract

    with pytest.raises(qa.DocumentError, match=r"upload\.txt: holds 11 characters of text, more than 10"):
        extract(b"Cats purr.\n", suffix=".txt", name="upload.txt", limits=Limits(max_document_chars=10))
    assert extract(b"Cats purr.\n", suffix=".txt", name="upload.txt").text == "Cats purr.\n"
