"""End to end in a real browser: Chromium (Playwright) drives the real app (``python app.py``) on 127.0.0.1.

Skipped only when /usr/bin/chromium is missing (CI installs it). ``QA_UPDATE_SCREENSHOT=1`` also writes the
laptop-width screenshot of a real answer to docs/screenshot.png.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS

import qa
from qa.web.uploads import TEMP_FOLDER

if TYPE_CHECKING:
    from conftest import AppServer

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshot.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    ),
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated"),
]

GOLD_QUESTION = "Who led the delegation of US lawmakers that visited Pakistan?"
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

BOT = "#chatbot .message.bot"
USER = "#chatbot .message.user"


@pytest.fixture(scope="module")
def feedback_dir(article_server: AppServer) -> Path:
    return Path(article_server.settings.feedback_dir)


@pytest.fixture(scope="module")
def server(article_server: AppServer, evil_app: AppServer, upload_app: AppServer) -> str:
    """The app on the bundled article (shared with test_ui.py: its tests only ask questions).

    The module's other two apps are started here too, so that they load while the first tests run.
    """
    return article_server.url


@pytest.fixture(scope="module")
def evil_app(serve_app: Callable[..., AppServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app on a document whose title and text are full of markup and script."""
    text = (
        "The castle was built in 1200. "
        f"The castle gate hides &lt;b&gt; a code {PAYLOAD} and ${{window.__xss=3}} "
        "and {{constructor.constructor('window.__xss=4')()}} in its wall. "
        "The river flows north."
    )
    doc = qa.Document("evil", f"Evil {PAYLOAD} title", text)
    path = tmp_path_factory.mktemp("evil") / "index"
    qa.Index.build([doc], path)
    with serve_app(path, feedback_dir=tmp_path_factory.mktemp("evil-feedback")) as app:
        yield app


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("#msg textarea")
    yield page
    context.close()


def ask(page: Any, question: str) -> Any:
    """Type ``question``, press Enter, wait for the reply; return the new bot message."""
    before = page.locator(BOT).count()
    page.fill("#msg textarea", question)
    page.press("#msg textarea", "Enter")
    page.wait_for_function(f"document.querySelectorAll({BOT!r}).length > {before}")
    page.wait_for_function("document.querySelector('#chatbot [data-testid=status-tracker]').classList.contains('hide')")
    return page.locator(BOT).last


def _in_viewport(page: Any, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }""",
            selector,
        )
    )


def _records(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _wait_for_records(page: Any, log: Path, n: int) -> list[dict[str, Any]]:
    """Wait (up to 30 s) until the feedback log has ``n`` records; return them."""
    for _ in range(300):
        records = _records(log)
        if len(records) >= n:
            return records
        page.wait_for_timeout(100)
    raise AssertionError(f"the feedback log {log} did not reach {n} records: {_records(log)}")


def test_page_names_the_index_and_its_documents(page: Any) -> None:
    header = page.locator("#qa-header").inner_text()
    assert "Active index" in header and "1 document" in header
    page.click("#qa-header summary")
    assert qa.default_document().title in page.locator("#qa-header").inner_text()


def test_an_answer_cites_sentences_shown_in_the_sources_panel(page: Any) -> None:
    reply = ask(page, GOLD_QUESTION)
    assert "Gentry Beach" in reply.inner_text()
    markers = reply.locator("a.qa-cite")
    assert markers.count() >= 1
    assert markers.first.inner_text() == "[1]"
    assert markers.first.get_attribute("href") == "#src-1-1"

    cited = page.locator("#src-1-1 mark.qa-cited")
    assert cited.is_visible()
    assert "Gentry Beach" in cited.inner_text()
    card = page.locator("#src-1-1").inner_text()
    assert "sentence" in card and "score" in card and qa.default_document().title in card

    markers.first.hover()  # hovering highlights the source
    page.wait_for_function("document.querySelector('#src-1-1').classList.contains('qa-hover')")

    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    markers.first.click()  # clicking brings it into view
    page.wait_for_function("document.querySelector('#src-1-1').matches(':target')")
    assert _in_viewport(page, "#src-1-1")


def test_an_off_topic_question_is_declined_without_citations(page: Any) -> None:
    reply = ask(page, "Who won the 2022 FIFA World Cup?")
    assert "do not answer" in reply.inner_text()
    assert reply.locator("a.qa-cite").count() == 0
    latest = page.locator("#sources section.qa-latest")
    assert "nothing is cited" in latest.inner_text()
    assert latest.locator(".qa-badge").count() == 0
    assert "do not answer" in latest.locator("details.qa-closest summary").inner_text()


def test_markup_in_a_question_is_shown_as_text_and_never_runs(page: Any) -> None:
    question = f"{PAYLOAD} Who led the delegation of US lawmakers?"
    ask(page, question)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#chatbot img[src='x'], #sources img, #chatbot script, #sources script").count() == 0
    assert '<img src=x onerror="window.__xss=1">' in page.locator(USER).last.inner_text()
    assert '<img src=x onerror="window.__xss=1">' in page.locator("#sources .qa-latest .qa-q").inner_text()


def test_markup_in_a_document_is_shown_as_text_and_never_runs(browser: Any, evil_app: AppServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(evil_app.url)
        page.wait_for_selector("#msg textarea")
        reply = ask(page, "What does the castle gate hide?")
        if reply.locator("a.qa-cite").count() == 0:
            page.click("#sources .qa-latest details summary")  # show the closest sentences
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src='x'], #sources script, #chatbot script").count() == 0
        sources = page.locator("#sources").inner_text()
        assert '<img src=x onerror="window.__xss=1">' in sources
        assert "${window.__xss=3}" in sources and "{{constructor" in sources and "&lt;b&gt;" in sources
        assert "Evil <img src=x" in sources  # the title, escaped too
    finally:
        context.close()


def test_a_followup_is_read_in_context(page: Any) -> None:
    ask(page, "Who did Interior Minister Mohsin Naqvi meet?")
    reply = ask(page, "and when is their dialogue scheduled?")
    text = reply.inner_text()
    assert "June" in text and "follow-up" in text
    assert reply.locator("a.qa-cite").first.get_attribute("href") == "#src-2-1"


def test_a_too_long_question_is_refused_with_a_clear_message(page: Any) -> None:
    limit = qa.get_settings().max_question_chars
    page.fill("#msg textarea", "x" * (limit + 1))
    page.press("#msg textarea", "Enter")
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for()
    assert f"limit is {limit:,}" in toast.inner_text()
    assert page.locator(BOT).count() == 0


def test_example_questions_retry_clear_and_feedback(page: Any, feedback_dir: Path) -> None:
    page.locator("#examples button", has_text="Interior Minister").first.click()
    page.wait_for_function(f"document.querySelectorAll({BOT!r}).length === 1")
    assert "Naqvi" in page.locator(BOT).last.inner_text()

    log = feedback_dir / "feedback.jsonl"
    seen = _records(log)
    page.locator("#chatbot button[aria-label='Like']").last.click()
    records = _wait_for_records(page, log, len(seen) + 1)
    assert records[-1]["verdict"] == "up"
    assert "Naqvi" in records[-1]["question"] and "Naqvi" in records[-1]["answer"]
    assert "Naqvi" in records[-1]["citations"][0]["text"] and records[-1]["time"]
    page.locator("#chatbot button[aria-label='Liked']").last.click()  # a second click withdraws it
    assert _wait_for_records(page, log, len(seen) + 2)[-1]["verdict"] == "withdrawn"

    page.locator("#chatbot button[aria-label='Retry']").last.click()
    page.wait_for_function("document.querySelector('#chatbot [data-testid=status-tracker]').classList.contains('hide')")
    assert page.locator(BOT).count() == 1 and page.locator(USER).count() == 1

    page.click("#clear")
    page.wait_for_function(f"document.querySelectorAll({BOT!r}).length === 0")
    assert page.locator("#sources .qa-src").count() == 0


@pytest.fixture(scope="module")
def upload_app(serve_app: Callable[..., AppServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app on the bundled article, with an index folder of its own: the first upload creates a workspace there."""
    root = tmp_path_factory.mktemp("upload-app")
    with serve_app(index_dir=root / "index", feedback_dir=root / "feedback") as app:
        yield app


def _pdf_bytes(pages: list[str], title: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def test_an_uploaded_file_is_listed_answered_cited_and_removable(browser: Any, upload_app: AppServer) -> None:
    ships = "How many ships did the lighthouse keeper log in March?"
    markup = '<img src=x onerror="window.__xss=1">'  # a file name cannot hold the '/' of PAYLOAD's </script>
    pdf = _pdf_bytes(
        ["The lighthouse stands on a granite cliff above the harbour.",
         "The lighthouse keeper logged 412 ships passing the cape in March."],
        "Lighthouse log",
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(upload_app.url)
        page.wait_for_selector("#msg textarea")
        page.locator("#qa-docs button.label-wrap").click()  # open the Documents section
        page.set_input_files(
            "#upload input[type=file]",
            files=[
                {"name": "lighthouse.pdf", "mimeType": "application/pdf", "buffer": pdf},
                {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
                {"name": f"{markup}.txt", "mimeType": "text/plain", "buffer": f"The gate hides {PAYLOAD}.".encode()},
            ],
        )
        row = page.locator("#qa-doc-list .qa-doc-row", has_text="Lighthouse log")
        row.wait_for()
        assert "from lighthouse.pdf" in row.inner_text() and "2 sentences" in row.inner_text()
        status = page.locator("#upload-status").inner_text()
        assert "Created your workspace" in status and "empty.txt: the file is empty" in status
        assert "Active index: your workspace" in page.locator("#qa-header").inner_text()
        # A file named and filled with markup is listed as text; nothing in it runs.
        assert f"from {markup}.txt" in page.locator("#qa-doc-list").inner_text()
        assert page.evaluate("window.__xss") is None and page.locator("#qa-docs img[src='x']").count() == 0
        # The upload is handled: nothing of it is left in the app's private upload folder.
        (folder,) = (upload_app.settings.index_root / TEMP_FOLDER).glob(f"{upload_app.pid}-*")
        assert [p for p in folder.rglob("*") if p.is_file()] == []

        reply = ask(page, ships)
        assert "412 ships" in reply.inner_text()
        card = page.locator("#src-1-1").inner_text()
        assert "Lighthouse log" in card and "p. 2 · sentence 2 of 2" in card

        row.locator("button", has_text="Remove").click()
        row.wait_for(state="detached")
        assert "Removed “Lighthouse log”" in page.locator("#upload-status").inner_text()
        reply = ask(page, ships)
        assert "412" not in reply.inner_text()
        assert "Lighthouse log" not in page.locator("#sources section.qa-latest").inner_text()
    finally:
        context.close()


def test_screenshots_at_laptop_and_phone_width(page: Any, tmp_path: Path) -> None:
    ask(page, GOLD_QUESTION)
    ask(page, "What role have Pakistan's security forces played against terrorism?")
    laptop = tmp_path / "laptop.png"
    page.screenshot(path=str(laptop))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.documentElement.scrollWidth <= 390")
    chat = page.locator("#chatbot").bounding_box()
    sources = page.locator("#sources").bounding_box()
    assert sources["y"] >= chat["y"] + chat["height"]  # stacked under the chat, not squeezed beside it
    assert chat["width"] <= 390 and sources["width"] <= 390
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)

    if os.environ.get("QA_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(laptop, SCREENSHOT)
