"""The web app: rendering and escaping, login and exposure rules, and the API of a real server (gradio_client).

Server tests talk to the real app (``python app.py`` in a child process on 127.0.0.1 on a free port, with the real
model and FAISS index; ``serve_app`` and ``article_server`` in conftest.py start it and stop it by PID).
"""

from __future__ import annotations

import dataclasses
import html
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import qa
from qa import web
from qa.conversation import read_question

if TYPE_CHECKING:
    from conftest import AppServer

pytestmark = [
    pytest.mark.slow,
    # Gradio's queue keeps local event statistics with pandas, which warns about its own options.
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated"),
]

GOLD_QUESTION = "Who led the delegation of US lawmakers that visited Pakistan?"
OFF_TOPIC = "Who won the 2022 FIFA World Cup?"
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def _passage(text: str, *, before: str = "Before it. ", after: str = " After it.", title: str = "Doc") -> qa.Passage:
    context = before + text + after
    start = 100 + len(before)
    return qa.Passage(
        text=text,
        score=0.7312,
        doc_id="doc",
        title=title,
        sentence=4,
        start=start,
        end=start + len(text),
        context=context,
        context_start=100,
        context_end=100 + len(context),
    )


def _found(*passages: qa.Passage, question: str = "q?") -> qa.Answer:
    text = " ".join(f"{p.text} [{n}]" for n, p in enumerate(passages, start=1))
    return qa.Answer(question, text, True, list(passages), [])


def _not_found(*closest: qa.Passage, question: str = "q?") -> qa.Answer:
    return qa.Answer(question, "The documents do not answer this question.", False, [], list(closest))


def _tags(fragment: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", fragment)}


# ------------------------------------------------------------------------------------------ rendering


def test_a_question_is_shown_escaped() -> None:
    shown = web.render_question(PAYLOAD + " and *stars*\nsecond line")
    assert "<img" not in shown and "<script" not in shown
    assert html.escape(PAYLOAD, quote=True) in shown
    assert "<br>" in shown  # line breaks kept, as markup of our own


def test_answer_markers_link_to_their_sources() -> None:
    a = _found(_passage("Gentry Beach led the delegation."), _passage("They discussed trade."))
    shown = web.render_answer(a, turn=3, sentences={"doc": 33})
    links = re.findall(r'<a class="qa-cite" href="#(src-\d+-\d+)"[^>]*>\[(\d)\]</a>', shown)
    assert links == [("src-3-1", "1"), ("src-3-2", "2")]
    assert "sentence 5 of 33" in shown  # 0-based position 4, shown 1-based in the marker's tooltip
    assert shown.index("Gentry Beach") < shown.index("[1]") < shown.index("They discussed") < shown.index("[2]")


def test_document_markup_in_an_answer_is_escaped() -> None:
    a = _found(_passage(f"Evil {PAYLOAD} [1] text.", title=f"Title {PAYLOAD}"))
    shown = web.render_answer(a, turn=1)
    assert _tags(shown) <= {"div", "a"}
    assert html.escape(PAYLOAD, quote=True) in shown
    # The literal "[1]" inside the sentence is text; only the marker after the sentence is a link.
    assert shown.count('class="qa-cite"') == 1


def test_a_declined_answer_cites_nothing() -> None:
    a = _not_found(_passage("Close but not it."))
    shown = web.render_answer(a, turn=2)
    assert "do not answer" in shown
    assert "qa-cite" not in shown and "src-2-" not in shown


def test_an_answer_shows_its_confidence_and_verdict() -> None:
    found = dataclasses.replace(_found(_passage("In June.")), confidence=0.834, threshold=0.32)
    assert "Confidence 83%: answered (answers from 32%)" in web.render_answer(found, turn=1)
    declined = dataclasses.replace(_not_found(_passage("Close.")), confidence=0.1, threshold=0.32)
    assert "Confidence 10%: declined" in web.render_answer(declined, turn=1)
    assert "Confidence" not in web.render_answer(_found(_passage("In June.")), turn=1)  # fusion: no confidence


def test_a_followup_says_what_was_searched() -> None:
    reading = read_question("and when?", ["Who did Interior Minister Mohsin Naqvi meet?"])
    shown = web.render_answer(_found(_passage("In June.")), turn=2, reading=reading)
    assert "follow-up" in shown and "Mohsin Naqvi" in shown


def test_sources_highlight_the_cited_sentence_in_its_context() -> None:
    p = _passage("The cited sentence.", before="First <b>one</b>. ", after=" Last one.")
    turn = web.Turn(read_question("q?", []), _found(p))
    shown = web.render_sources([turn], sentences={"doc": 10})
    assert 'id="src-1-1"' in shown
    assert '<mark class="qa-cited">The cited sentence.</mark>' in shown
    assert "First &lt;b&gt;one&lt;/b&gt;. " in shown and " Last one." in shown
    assert "sentence 5 of 10" in shown and "score 0.73" in shown and ">Doc<" in shown


def test_sources_of_a_declined_answer_are_labelled_as_not_answering() -> None:
    turns = [
        web.Turn(read_question("q1?", []), _found(_passage("Evidence."))),
        web.Turn(read_question(OFF_TOPIC, []), _not_found(_passage("Nearest."))),
    ]
    shown = web.render_sources(turns)
    newest, older = shown.split('id="turn-1"')
    assert 'id="turn-2"' in newest and "do not answer" in newest and "Nearest." in newest
    assert "qa-badge" not in newest and "src-2-" not in newest  # no numbered citation for a declined answer
    assert 'id="src-1-1"' in older and "Evidence." in older


def test_sources_escape_questions_titles_and_text() -> None:
    p = _passage(f"Text {PAYLOAD}.", before=f"{PAYLOAD} ", after=f" {PAYLOAD}", title=PAYLOAD)
    turns = [web.Turn(read_question(PAYLOAD, []), _found(p)), web.Turn(read_question("x", []), _not_found(p))]
    shown = web.render_sources(turns)
    assert _tags(shown) <= {"div", "h2", "h3", "section", "span", "ol", "ul", "li", "p", "mark", "details", "summary"}
    assert "onerror=&quot;" in shown


def test_the_documented_examples_hold() -> None:
    import doctest
    import importlib
    import pkgutil

    modules = [importlib.import_module(f"qa.web.{m.name}") for m in pkgutil.iter_modules(web.__path__)]
    assert {m.__name__ for m in modules} >= {"qa.web.render", "qa.web.server", "qa.web.app"}
    results = [doctest.testmod(m) for m in modules]
    assert sum(r.attempted for r in results) > 0 and sum(r.failed for r in results) == 0


# ------------------------------------------------------------------------------------------ login and exposure


def test_login_accounts_come_from_the_environment_and_a_file(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts"
    accounts.write_text("# team\nbob:pw:with:colons\n\n  carol:c4\n", encoding="utf-8")
    s = qa.get_settings().replace(auth="alice:secret", auth_file=accounts)
    assert web.load_auth(s) == {"alice": "secret", "bob": "pw:with:colons", "carol": "c4"}


@pytest.mark.parametrize("entry", ["alice", ":pw", "alice:"])
def test_a_malformed_login_is_refused(entry: str) -> None:
    with pytest.raises(qa.ConfigError, match="user:password"):
        web.load_auth(qa.get_settings().replace(auth=entry))


def test_a_missing_auth_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(qa.ConfigError, match="cannot read the auth file"):
        web.load_auth(qa.get_settings().replace(auth_file=tmp_path / "missing"))


def test_a_public_address_without_login_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QA_AUTH", raising=False)
    monkeypatch.delenv("QA_AUTH_FILE", raising=False)
    s = qa.get_settings()
    with pytest.raises(qa.ConfigError, match="without a login"):
        web.serve(host="0.0.0.0", settings=s)
    assert web.main(["--host", "0.0.0.0", "--port", "1"]) == 2
    assert "without a login" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ a real server


@pytest.fixture(scope="module")
def server(article_server: AppServer, login_server: AppServer) -> str:
    """The app on the bundled article (shared with other modules: these tests only ask it questions).

    The login test's app is started here too, so that it loads while these tests run.
    """
    return article_server.url


@pytest.fixture(scope="module")
def client(server: str, _offline_hub: None) -> Any:
    from gradio_client import Client

    return Client(server, verbose=False, analytics_enabled=False)


def test_the_server_binds_loopback_only(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")


def test_only_ask_and_retrieve_are_public(client: Any) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == {"/ask", "/retrieve"}
    assert not info["unnamed_endpoints"]


def test_ask_answers_with_citations(client: Any) -> None:
    result = client.predict(GOLD_QUESTION, api_name="/ask")
    assert set(result) == {"question", "answer", "found", "confidence", "threshold", "citations", "closest"}
    assert result["found"] is True and result["confidence"] >= result["threshold"]
    assert "Gentry Beach" in result["citations"][0]["text"]
    assert "[1]" in result["answer"] and result["closest"] == []
    cited = result["citations"][0]
    assert set(cited) == {f for f in qa.Passage.__dataclass_fields__}
    assert (
        cited["context"][cited["start"] - cited["context_start"] : cited["end"] - cited["context_start"]]
        == cited["text"]
    )


def test_ask_declines_an_off_topic_question(client: Any) -> None:
    result = client.predict(question=OFF_TOPIC, api_name="/ask")
    assert result["found"] is False
    assert result["citations"] == [] and "[1]" not in result["answer"]
    assert result["closest"]  # offered separately, not as evidence


def test_retrieve_returns_ranked_passages(client: Any) -> None:
    result = client.predict(GOLD_QUESTION, api_name="/retrieve")
    passages = result["passages"]
    assert len(passages) == qa.get_settings().k
    assert "Gentry Beach" in passages[0]["text"]
    scores = [p["score"] for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert len(client.predict(GOLD_QUESTION, 2, api_name="/retrieve")["passages"]) == 2


def test_retrieve_refuses_a_k_over_max_k_at_once_and_serves_max_k(client: Any, article_index: qa.Index) -> None:
    from gradio_client.exceptions import AppError

    max_k = qa.get_settings().max_k
    for k in (10**9, max_k + 1):
        with pytest.raises(AppError, match=rf"k={k} is over the limit of {max_k} passages .*QA_MAX_K"):
            client.predict(GOLD_QUESTION, k, api_name="/retrieve")
    passages = client.predict(GOLD_QUESTION, max_k, api_name="/retrieve")["passages"]
    expected = qa.retrieve(GOLD_QUESTION, k=max_k, index=article_index)
    assert [p["text"] for p in passages] == [p.text for p in expected] and 0 < len(passages) <= max_k
    assert client.predict(OFF_TOPIC, api_name="/ask")["found"] is False  # /ask is not affected: it uses k


def test_a_max_k_below_one_or_under_k_is_refused() -> None:
    with pytest.raises(qa.ConfigError, match="max_k=0 must be at least 1"):
        qa.Settings.from_env({"QA_MAX_K": "0"})
    assert qa.Settings.from_env({"QA_MAX_K": "7"}).max_k == 7
    with pytest.raises(qa.ConfigError, match=r"k=200 is over max_k=100.*QA_K.*QA_MAX_K"):
        web.build_app(settings=qa.get_settings(k=200, max_k=100))  # refused before the index or model is touched


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "empty"), ("   ", "empty"), ("x" * (qa.get_settings().max_question_chars + 1), "limit")],
)
@pytest.mark.parametrize("endpoint", ["/ask", "/retrieve"])
def test_a_bad_question_is_a_clear_error(client: Any, endpoint: str, question: str, message: str) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(question, api_name=endpoint)


def test_internal_chat_events_are_not_callable(client: Any) -> None:
    with pytest.raises(ValueError, match="Cannot find a function"):
        client.predict("hi", api_name="/respond")


def test_independent_questions_run_side_by_side(client: Any) -> None:
    questions = [GOLD_QUESTION, OFF_TOPIC, "When did the US withdraw from Afghanistan?"] * 3
    jobs = [client.submit(q, api_name="/ask") for q in questions]
    results = [job.result() for job in jobs]
    assert [r["question"] for r in results] == questions
    assert [r["found"] for r in results] == [True, False, True] * 3


def test_the_shared_index_is_safe_across_threads(article_index: qa.Index) -> None:
    questions = [GOLD_QUESTION, "Who did Interior Minister Mohsin Naqvi meet?"] * 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda q: qa.answer(q, index=article_index).citations[0].text, questions))
    assert all("Gentry Beach" in r for r in results[::2])
    assert all("Naqvi" in r for r in results[1::2])


def test_a_login_protects_the_app_and_its_api(login_server: AppServer, _offline_hub: None) -> None:
    from gradio_client import Client

    url = login_server.url  # QA_AUTH=alice:s3cret
    with pytest.raises(Exception, match=r"(?i)auth|credentials|login"):
        Client(url, verbose=False, analytics_enabled=False)
    with pytest.raises(ValueError, match=r"(?i)could not login"):
        Client(url, auth=("alice", "wrong"), verbose=False, analytics_enabled=False)
    client = Client(url, auth=("alice", "s3cret"), verbose=False, analytics_enabled=False)
    assert client.predict(GOLD_QUESTION, api_name="/ask")["found"] is True
