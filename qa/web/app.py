"""The chat app: a Gradio Blocks whose answers cite, and show, the exact sentences they come from.

:func:`build_app` opens the index, loads the model and wires the page: the chat (with follow-ups read in the
context of the previous turn, retry, clear, examples and thumbs up/down), the sources panel, the documents
panel, and the API endpoints ``/ask`` and ``/retrieve``. Starting it is :mod:`qa.web.server`'s job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio.events import api as _endpoint

import qa
from qa.conversation import read_question
from qa.retrieval import check_k, check_question
from qa.workspace import Workspace

from . import uploads
from .documents_panel import DocumentsPanel, has_article, user_error
from .feedback import feedback_path, record_feedback, verdict_of
from .render import EMPTY_SOURCES, Turn, header_html, render_answer, render_question, render_sources

__all__ = ["EXAMPLE_QUESTIONS", "QABlocks", "build_app", "limit_k"]

#: Example questions shown under the chat when the index is the bundled article.
EXAMPLE_QUESTIONS = [
    "Who led the delegation of US lawmakers that visited Pakistan?",
    "What plan has Pakistan devised to counter terrorism?",
    "Who did Interior Minister Mohsin Naqvi meet?",
    "When did the US withdraw from Afghanistan?",
    "How did Tariq Fatmi feel about his talks in Washington?",
]


class QABlocks(gr.Blocks):
    """The app's Blocks: it holds the process's private upload folder (:mod:`qa.web.uploads`) while it may serve,
    and closing it gives the folder back (the last app to close removes it)."""

    _holds_uploads = False

    def hold_uploads(self, settings: qa.Settings) -> None:
        """Make sure this app holds the private upload folder (again, after a :meth:`close`)."""
        if not self._holds_uploads:
            uploads.hold(settings)
            self._holds_uploads = True

    def close(self, verbose: bool = True) -> None:
        """Stop the server, then give back the private upload folder."""
        try:
            super().close(verbose)
        finally:
            if self._holds_uploads:
                self._holds_uploads = False
                uploads.release()


def limit_k(k: object, settings: qa.Settings) -> int:
    """The number of passages to retrieve for a request's ``k``: a whole number from 1 to ``settings.max_k``
    (``None``: the ``k`` setting). Checked before any search, so an absurd ``k`` costs nothing.

    Raises:
        qa.QAError: ``k`` is not a whole number of at least 1, or is over ``max_k``.

    Example:
        >>> limit_k(3, qa.Settings()), limit_k(None, qa.Settings(k=7))
        (3, 7)
        >>> limit_k(10**9, qa.Settings(max_k=100))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        qa.errors.QuestionError: k=1000000000 is over the limit of 100 passages a request (setting max_k, QA_MAX_K); ...
    """
    n = check_k(k)
    n = settings.k if n is None else n
    if n > settings.max_k:
        raise qa.QuestionError(
            f"k={n} is over the limit of {settings.max_k} passages a request (setting max_k, QA_MAX_K); "
            f"ask for {settings.max_k} or fewer"
        )
    return n


def build_app(*, index: str | Path | qa.Index | None = None, settings: qa.Settings | None = None) -> gr.Blocks:
    """Build the chat app (not started: see :func:`qa.web.launch` and :func:`qa.web.serve`).

    The index is opened (built, for the bundled article's first use) and the model loaded here, so the first
    question is answered as fast as the rest.

    Args:
        index: an index directory or :class:`qa.Index` (default: the ``index`` setting, else the bundled article).
        settings: settings to use instead of the environment's.

    Returns:
        The Gradio Blocks app (a :class:`QABlocks`), with its queue configured for ``settings.concurrency``
        parallel questions. Gradio's uploads go to a private folder under the index root until ``app.close()``.

    Raises:
        qa.QAError: the index cannot be opened, or the ``k`` setting is over ``max_k``.
    """
    s = settings or qa.get_settings()
    if s.k > s.max_k:
        raise qa.ConfigError(
            f"k={s.k} is over max_k={s.max_k}, so the app's /retrieve would refuse its own default; "
            "lower QA_K or raise QA_MAX_K"
        )
    # The active index: uploads and removals swap it for the updated one. Each question reads it once.
    ws = Workspace(qa.open_index(index, settings=s), s)
    with_examples = has_article(ws.index) or ws.started_on_default
    log_path = feedback_path(s)
    qa.retrieve("warm up", k=1, index=ws.index, settings=s)  # loads the model now rather than on the first question
    limit = s.concurrency

    def totals(idx: qa.Index) -> dict[str, int]:
        return {d.doc_id: d.sentences for d in idx.documents}

    def ask(question: str) -> dict[str, Any]:
        """Answer a question from the documents, with cited sentences (the JSON of `qa ask --json`)."""
        try:
            return qa.answer(question, index=ws.index, settings=s).to_dict()
        except qa.QAError as exc:
            raise user_error(exc) from None

    def retrieve(question: str, k: int = s.k) -> dict[str, Any]:
        """The k sentences that best match a question, best first: {"passages": [...]} (k at most max_k)."""
        try:
            n = limit_k(k, s)  # first: a huge k costs nothing
            return {"passages": [p.to_dict() for p in qa.retrieve(question, k=n, index=ws.index, settings=s)]}
        except qa.QAError as exc:
            raise user_error(exc) from None

    def validate(question: str) -> None:
        # A separate, output-less step: a refused question shows only a message, and the chat stays as it was.
        try:
            check_question(question, s)
        except qa.QAError as exc:
            raise user_error(exc) from None

    def respond(
        question: str, history: list[dict[str, Any]] | None, turns: list[Turn] | None
    ) -> tuple[str, list[dict[str, Any]], list[Turn], str]:
        turns = list(turns or [])
        reading = read_question(question or "", [t.reading.question for t in turns], max_chars=s.max_question_chars)
        idx = ws.index  # one index for the whole answer, even if an upload swaps it meanwhile
        try:
            result = qa.answer(reading.query, index=idx, settings=s)
        except qa.QAError as exc:
            raise user_error(exc) from None
        sentences = totals(idx)
        turns.append(Turn(reading, result))
        number = len(turns)
        messages = [*(history or [])]
        messages.append({"role": "user", "content": render_question(reading.question)})
        messages.append(
            {"role": "assistant", "content": render_answer(result, turn=number, reading=reading, sentences=sentences)}
        )
        return "", messages, turns, render_sources(turns, sentences=sentences)

    def retry(
        history: list[dict[str, Any]] | None, turns: list[Turn] | None, data: gr.RetryData
    ) -> tuple[list[dict[str, Any]], list[Turn], str]:
        # Ask the retried question again, dropping it and everything after it (the textbox is left alone).
        turns = list(turns or [])
        at = data.index if isinstance(data.index, int) else 0
        keep = min(at // 2, len(turns))
        if keep >= len(turns):
            raise gr.Error("There is no question to ask again.")
        _, messages, new_turns, panel = respond(turns[keep].reading.question, (history or [])[: 2 * keep], turns[:keep])
        return messages, new_turns, panel

    def clear() -> tuple[str, list[dict[str, Any]], list[Turn], str]:
        return "", [], [], EMPTY_SOURCES

    def clear_state() -> tuple[list[Turn], str]:
        return [], EMPTY_SOURCES

    def feedback(turns: list[Turn] | None, data: gr.LikeData) -> None:
        turns = turns or []
        at = data.index if isinstance(data.index, int) else -1
        if at < 0 or at // 2 >= len(turns):
            return
        verdict = verdict_of(data.liked)
        record_feedback(log_path, turns[at // 2], verdict, ws.index)
        gr.Info("Feedback withdrawn." if verdict == "withdrawn" else "Thanks, your feedback was saved.")

    # Gradio's upload folder must be the private one before the Blocks and its components are created.
    uploads.hold(s)
    try:
        app = QABlocks(title="qa · ask the documents", analytics_enabled=False)
    except BaseException:
        uploads.release()
        raise
    app._holds_uploads = True
    with app:
        header = gr.HTML(header_html(ws.index, where=ws.label()), elem_id="qa-header")
        documents = DocumentsPanel(ws)
        turns_state = gr.State([])
        with gr.Row(equal_height=False, elem_id="qa-main"):
            with gr.Column(scale=3, min_width=320, elem_id="qa-chat-col"):
                chatbot = gr.Chatbot(
                    elem_id="chatbot",
                    label="Conversation",
                    height=460,
                    latex_delimiters=[],
                    buttons=[],
                    placeholder="Ask a question about the documents. Every answer cites the sentences it quotes.",
                    feedback_options=("Like", "Dislike"),
                )
                msg = gr.Textbox(
                    elem_id="msg",
                    show_label=False,
                    placeholder="Ask a question about the documents…",
                    submit_btn="Ask",
                    lines=1,
                    max_lines=4,
                    autofocus=True,
                )
                clear_btn = gr.Button("Clear conversation", elem_id="clear", variant="secondary", size="sm")
                if with_examples:
                    examples = gr.Examples(
                        [[q] for q in EXAMPLE_QUESTIONS],
                        inputs=[msg],
                        label="Example questions",
                        elem_id="examples",
                        api_visibility="private",
                        visible=has_article(ws.index),
                    )
            with gr.Column(scale=2, min_width=300, elem_id="qa-sources-col"):
                sources = gr.HTML(EMPTY_SOURCES, elem_id="sources", label="Sources", container=True, padding=True)

        chat_io: dict[str, Any] = {
            "concurrency_limit": limit,
            "concurrency_id": "qa",
            "api_visibility": "private",
        }
        outputs = [msg, chatbot, turns_state, sources]
        checked = msg.submit(
            validate, [msg], None, api_visibility="private", show_progress="hidden", concurrency_limit=None
        )
        checked.success(respond, [msg, chatbot, turns_state], outputs, **chat_io)
        if with_examples:
            examples.load_input_event.then(respond, [msg, chatbot, turns_state], outputs, **chat_io)
        chatbot.retry(retry, [chatbot, turns_state], [chatbot, turns_state, sources], **chat_io)
        chatbot.like(feedback, [turns_state], None, api_visibility="private", concurrency_id="feedback")
        chatbot.clear(clear_state, None, [turns_state, sources], api_visibility="private", queue=False)
        clear_btn.click(clear, None, outputs, api_visibility="private", queue=False)

        _endpoint(ask, api_name="ask", concurrency_limit=limit, concurrency_id="qa")
        _endpoint(retrieve, api_name="retrieve", concurrency_limit=limit, concurrency_id="qa")
        documents.wire(app, header=header, examples=examples.dataset if with_examples else None)

    app.queue(default_concurrency_limit=limit, max_size=max(64, 16 * limit))
    return app
