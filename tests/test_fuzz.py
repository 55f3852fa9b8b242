"""Hostile and odd input, fuzzed with hypothesis: questions and documents that try to break ``qa``.

Empty, blank, 100,000-character, control-character, right-to-left, emoji, HTML/JS and SQL-like questions, and
documents made of the same. Whatever comes in: no crash (only a :class:`qa.QAError` with a message saying what
is wrong), a bounded time per example (hypothesis' deadline, a bound and not a benchmark), citations that are
still exact (``document.text[start:end] == passage.text``), and HTML that shows the input as text, never as
markup. Real model, real FAISS; the last tests send the same input through the real app (a child process)
with gradio_client.
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qa
from qa import web
from qa.answer import NOT_FOUND
from qa.conversation import read_question
from qa.documents import load_sources

if TYPE_CHECKING:
    from conftest import AppServer

pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated")

#: A bound on each example (model inference included), not a benchmark; derandomized so CI runs are repeatable.
BOUNDED = settings(
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

PAYLOADS = [
    "",
    " ",
    "\t\n\r\x0b\x0c",
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "<svg/onload=alert(1)>",
    "javascript:alert(document.cookie)",
    '"><iframe src="javascript:alert(1)">',
    "{{constructor.constructor('alert(1)')()}}",
    "${7*7} #{7*7} %s %n %x {0} {!r}",
    "'; DROP TABLE documents; --",
    '" OR 1=1 --',
    "1' UNION SELECT text FROM documents WHERE '1'='1",
    "../../../../etc/passwd",
    "\u202eevil text\u202c reversed",
    "مرحبا بالعالم. هل هذا سؤال؟",
    "שלום עולם. זו שאלה?",
    "🦀🔥👍🏽 👨‍👩‍👧‍👦 🇵🇰",
    "\x00\x01\x02\x1b[31mred\x1b[0m\x7f",
    "\ufeff\u200b\u200c\u200d\u2060",
    "e\u0301" * 40,
    "Z\u0351\u0300\u0317a\u0352\u0341l\u0337g\u0334o\u0360",
    "\u2028line\u2029paragraph\x85next",
    "[1] [2] [3] fake citation markers",
    "&lt;b&gt; &amp;amp; &#x3C;script&#x3E;",
    "Cats sleep. Dogs bark.",
]

DOCS = [
    qa.Document("cats", "Cats", "Cats sleep for most of the day. A cat purrs when it is content."),
    # Every payload (NUL aside: documents holding one are refused, see below), as the text of one document.
    qa.Document("evil", '<img src=x onerror="window.__xss=1">', " ".join(PAYLOADS).replace("\x00", "") + "."),
    qa.Document("rtl", "عربي עברית", "مرحبا بالعالم. هذه جملة ثانية. שלום עולם. זו שאלה?"),
    qa.Document("emoji", "🦀", "The crab 🦀 is the mascot. Fire 🔥 is hot! 👍🏽 means yes."),
]

# Any Unicode text (hypothesis leaves out lone surrogates; they get their own test), the payloads, and mixes.
fragments = st.one_of(st.text(max_size=60), st.sampled_from(PAYLOADS))
questions = st.one_of(
    st.text(max_size=300),
    st.sampled_from(PAYLOADS),
    st.lists(fragments, max_size=6).map(" ".join),
    # Long ones: up to 100,000 characters, just under, at and over the length limit.
    st.tuples(fragments, st.integers(min_value=1, max_value=100_000)).map(lambda t: ((t[0] or "x") * t[1])[: t[1]]),
    st.sampled_from([1999, 2000, 2001]).map(lambda n: "why " * (n // 4) + "?" * (n % 4)),
)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> qa.Index:
    """Hostile documents, saved and loaded back (the loaded path is the one that serves questions)."""
    path = tmp_path_factory.mktemp("fuzz") / "idx"
    qa.Index.build(DOCS, path)
    return qa.Index.load(path)


def _assert_exact(index: qa.Index, passage: qa.Passage) -> None:
    text = index.document_text(passage.doc_id)
    assert text[passage.start : passage.end] == passage.text
    assert text[passage.context_start : passage.context_end] == passage.context
    assert passage.context_start <= passage.start <= passage.end <= passage.context_end


class _Markup(HTMLParser):
    """Collects the tags and attributes of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.extend(attrs)


_OWN_TAGS = {"div", "a", "strong", "h2", "h3", "section", "span", "ol", "ul", "li", "p", "mark", "details", "summary",
             "br"}


def _assert_inert(fragment: str) -> None:
    """Only the app's own tags and attributes: no input turned into markup, script, handler or URL."""
    markup = _Markup()
    markup.feed(fragment)
    markup.close()
    assert markup.tags <= _OWN_TAGS, markup.tags
    for name, value in markup.attributes:
        assert name in {"class", "href", "title", "id"}, name
        if name == "href":
            assert value is not None and value.startswith("#src-"), value
        if name in {"class", "id"}:
            assert value is not None and all(c.isalnum() or c in "- " for c in value), value


def _ask(index: qa.Index, question: str) -> qa.Answer | None:
    """``qa.answer``, or ``None`` when the question is refused, which it may only be for being empty or too long."""
    limit = qa.get_settings().max_question_chars
    stripped = question.strip()
    try:
        answer = qa.answer(question, index=index)
    except qa.QuestionError as exc:
        message = str(exc)
        assert (not stripped and "empty" in message) or (len(stripped) > limit and "limit" in message), message
        return None
    assert stripped and len(stripped) <= limit
    return answer


@BOUNDED
@given(question=questions)
def test_any_question_gets_an_answer_with_exact_citations_or_a_clear_refusal(index: qa.Index, question: str) -> None:
    answer = _ask(index, question)
    if answer is None:
        return
    assert answer.question == question.strip()
    assert answer.found == bool(answer.citations)
    position = 0
    for n, passage in enumerate(answer.citations, start=1):
        _assert_exact(index, passage)
        at = answer.text.index(f"{passage.text} [{n}]", position)  # each cited sentence verbatim, then its marker
        position = at + len(passage.text)
    for passage in answer.closest:
        _assert_exact(index, passage)
    turn = web.Turn(read_question(question, []), answer)
    _assert_inert(web.render_question(question))
    _assert_inert(web.render_answer(answer, turn=1, reading=turn.reading))
    _assert_inert(web.render_sources([turn]))


@BOUNDED
@given(question=questions, history=st.lists(questions, max_size=3))
def test_a_conversation_of_any_questions_reads_and_renders_safely(
    index: qa.Index, question: str, history: list[str]
) -> None:
    limit = qa.get_settings().max_question_chars
    reading = read_question(question, history, max_chars=limit)
    assert reading.question == question.strip()
    if reading.followup:
        assert len(reading.query) <= limit  # a follow-up never turns an accepted question into a refused one
    answer = _ask(index, reading.query)
    if answer is not None:
        _assert_inert(web.render_answer(answer, turn=len(history) + 1, reading=reading))


@pytest.mark.parametrize("question", ["\ud800", "who \udfff is it?", "a\ud83dcats"])
def test_a_question_that_is_not_unicode_text_is_refused_clearly(index: qa.Index, question: str) -> None:
    """Lone surrogates (a JSON ``"\\ud800"`` escape decodes to one) are refused, not passed to the tokenizer."""
    with pytest.raises(qa.QuestionError, match="not valid Unicode text"):
        qa.answer(question, index=index)
    with pytest.raises(qa.QuestionError, match="not valid Unicode text"):
        qa.retrieve(question, index=index)


# ------------------------------------------------------------------------------------------ hostile documents

doc_ids = st.one_of(
    st.text(min_size=1, max_size=20),
    st.sampled_from(["../../etc/passwd", "<script>", "'; DROP TABLE documents; --", "🦀", "مرحبا", "a b", " x"]),
)
doc_texts = st.lists(st.one_of(st.text(max_size=120), st.sampled_from(PAYLOADS)), min_size=1, max_size=8).flatmap(
    lambda parts: st.sampled_from([" ", "\n", ". ", "\n\n"]).map(lambda sep: sep.join(parts))
)
documents = st.lists(
    st.builds(qa.Document, doc_ids, st.one_of(st.text(max_size=40), st.sampled_from(PAYLOADS)), doc_texts),
    min_size=1,
    max_size=3,
)


def _valid(docs: list[qa.Document]) -> bool:
    ids = [d.doc_id for d in docs]
    return len(set(ids)) == len(ids) and all(
        d.doc_id.strip() == d.doc_id != ""
        and d.text.strip() != ""
        and "\x00" not in d.doc_id + d.title + d.text
        for d in docs
    )


@settings(BOUNDED, max_examples=40)
@given(docs=documents)
def test_any_documents_index_with_exact_offsets_or_are_refused_clearly(docs: list[qa.Document]) -> None:
    """Built, saved and loaded back: every sentence of every document is an exact slice of its text."""
    try:
        built = qa.Index.build(docs)
    except qa.DocumentError as exc:
        assert not _valid(docs), f"refused valid documents: {exc}"
        assert str(exc)
        return
    assert _valid(docs)
    with tempfile.TemporaryDirectory() as folder:
        built.save(Path(folder) / "idx")
        index = qa.Index.load(Path(folder) / "idx")
    by_id = {d.doc_id: d for d in docs}
    assert [d.doc_id for d in index.documents] == [d.doc_id for d in docs]
    for row in range(len(index)):
        passage = index.passage(row, 0.0)
        source = by_id[passage.doc_id].text
        assert source[passage.start : passage.end] == passage.text
        assert passage.text == passage.text.strip() and passage.text
        assert source[passage.context_start : passage.context_end] == passage.context
    for doc in docs:
        assert index.document_text(doc.doc_id) == doc.text
        covered = "".join(index.passage(r, 0.0).text for r in index.rows_of([doc.doc_id]).tolist())
        assert "".join(doc.text.split()) == "".join(covered.split())  # every non-space character is in a sentence
    question = next((w for d in docs for w in d.text.split() if w.strip()), "anything")
    try:
        passages = qa.retrieve(question, index=index, k=3)
    except qa.QuestionError:
        return
    for passage in passages:
        _assert_exact(index, passage)
        shown = qa.Answer(question, NOT_FOUND, False, [], [passage])
        _assert_inert(web.render_sources([web.Turn(read_question(question, []), shown)]))


@BOUNDED
@given(docs=documents)
def test_any_documents_survive_a_jsonl_file_unchanged(docs: list[qa.Document]) -> None:
    """Written one JSON object a line (non-ASCII as is, so U+2028 and U+0085 stay raw) and read back exactly."""
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "docs.jsonl"
        lines = [json.dumps({"id": d.doc_id, "title": d.title, "text": d.text}, ensure_ascii=False) for d in docs]
        file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            read = load_sources([file])
        except qa.DocumentError as exc:
            assert not _valid(docs), f"refused valid documents: {exc}"
            return
    assert _valid(docs)
    assert [(d.doc_id, d.text) for d in read] == [(d.doc_id, d.text) for d in docs]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (qa.Document("nul", "NUL", "Before the NUL\x00after it."), "NUL"),
        (qa.Document("sur", "Surrogate", "Broken \ud800 text."), "surrogate"),
        (qa.Document("title", "Bad \udfff title", "Fine text."), "surrogate"),
        (qa.Document("bad\x00id", "T", "Fine text."), "NUL"),
    ],
)
def test_characters_an_index_cannot_store_are_refused_clearly(doc: qa.Document, message: str) -> None:
    with pytest.raises(qa.DocumentError, match=message):
        qa.Index.build([doc])


# ------------------------------------------------------------------------------------------ through the server


@pytest.fixture(scope="module")
def server(
    index: qa.Index, serve_app: Callable[..., AppServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app serving the hostile documents (a child process on 127.0.0.1, stopped at the end of the module)."""
    with serve_app(index, feedback_dir=tmp_path_factory.mktemp("feedback")) as app:
        yield app.url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[Any]:
    import huggingface_hub.constants as hub
    from gradio_client import Client

    old, hub.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE, True
    try:
        yield Client(server, verbose=False, analytics_enabled=False, download_files=False)
    finally:
        hub.HF_HUB_OFFLINE = old


def _raw_call(url: str, api_name: str, data: list[Any]) -> tuple[str, str]:
    """Call an endpoint with plain HTTP (JSON with ASCII escapes, as any client may send): ``(event, data)``."""
    body = json.dumps({"data": data}, ensure_ascii=True).encode("ascii")
    post = urllib.request.Request(
        f"{url}gradio_api/call/{api_name}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(post, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=60) as response:
        lines = response.read().decode("utf-8").splitlines()
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    payloads = [line.split(":", 1)[1].strip() for line in lines if line.startswith("data:")]
    return events[-1], payloads[-1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [*(p for p in PAYLOADS if p.strip()), "x" * 100_000, "   ", "", "🦀" * 1999],
)
def test_hostile_questions_through_the_api_get_an_answer_or_a_clear_error(client: Any, question: str) -> None:
    from gradio_client.exceptions import AppError

    stripped = question.strip()
    try:
        result = client.predict(question, api_name="/ask")
    except AppError as exc:
        assert any(w in str(exc) for w in ("empty", "limit")), str(exc)
        assert not stripped or len(stripped) > 2000
        return
    assert result["question"] == stripped
    for cited in result["citations"] + result["closest"]:
        a, b = cited["start"] - cited["context_start"], cited["end"] - cited["context_start"]
        assert cited["context"][a:b] == cited["text"]


@pytest.mark.slow
@pytest.mark.parametrize("api_name", ["ask", "retrieve"])
def test_a_lone_surrogate_sent_as_a_json_escape_gets_a_clear_error(server: str, api_name: str) -> None:
    args: list[Any] = ["who is \ud800 here?"] + ([3] if api_name == "retrieve" else [])
    event, data = _raw_call(server, api_name, args)
    assert event == "error"
    assert "not valid Unicode text" in data, data


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, -1, 2.5, "three", None, 10**9])
def test_odd_k_through_the_api_gets_passages_or_a_clear_error(client: Any, k: Any) -> None:
    from gradio_client.exceptions import AppError

    max_k = qa.get_settings().max_k
    try:
        result = client.predict("Which pet purrs?", k, api_name="/retrieve")
    except AppError as exc:
        assert "k=" in str(exc) or "number" in str(exc), str(exc)
        assert k != 10**9 or f"limit of {max_k} passages" in str(exc), str(exc)  # over max_k: refused at once
        return
    assert k != 10**9, "a k over max_k must be refused"
    assert 1 <= len(result["passages"]) <= max_k
    # And the server still answers afterwards.
    assert client.predict("Which pet purrs?", api_name="/ask")["found"] in (True, False)
