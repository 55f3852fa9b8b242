"""The web app: a Gradio chat whose answers cite, and show, the exact sentences they come from.

Run it with ``python app.py`` or ``qa serve``. Everything it knows comes through the public API of :mod:`qa`
(:func:`qa.answer`, :func:`qa.retrieve`, :func:`qa.open_index`); this module only renders and serves it.

* Chat: each answer carries ``[n]`` markers that link to the sources panel, where every citation shows its
  document, sentence position and score, and the cited sentence highlighted in its surrounding sentences.
* Follow-ups ("and when was that?") are searched with the previous turn's key terms
  (:mod:`qa.conversation`); self-contained questions are searched as typed.
* Documents: files uploaded in the page are indexed, with a progress bar, into the active index (the bundled
  article's stays untouched: the first upload creates a workspace holding the article), each bad file listed with
  its reason; the document list has a remove button per document. :mod:`qa.workspace` does the work and swaps the
  app's active index under a lock.
* Safety: every question and document text is HTML-escaped before it is rendered; nothing from a document or
  a question is ever interpreted as markup.
* API: two named endpoints, ``/ask`` (:meth:`qa.Answer.to_dict`) and ``/retrieve`` (``{"passages": [...]}``),
  for ``gradio_client``; the chat's own events are private. ``/upload_documents``, ``/documents`` and
  ``/remove_document`` are callable but unlisted.
* Exposure: binds 127.0.0.1 by default, never creates a share link, and refuses a non-local address without a
  login (``QA_AUTH`` or ``QA_AUTH_FILE``) unless explicitly allowed.
"""

from __future__ import annotations

import os

# Must be set before gradio is imported: no version check or telemetry (this app may run with no network).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse
import dataclasses
import datetime as _dt
import hmac
import html
import ipaddress
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.events import api as _endpoint

import qa
from qa.conversation import Reading, read_question
from qa.documents import SUPPORTED_SUFFIXES
from qa.retrieval import check_question
from qa.workspace import AddReport, DocumentRow, Upload, Workspace

__all__ = [
    "EXAMPLE_QUESTIONS",
    "Turn",
    "build_app",
    "launch",
    "load_auth",
    "main",
    "render_answer",
    "render_document_row",
    "render_question",
    "render_sources",
    "render_upload_report",
    "serve",
]

log = logging.getLogger(__name__)

#: Example questions shown under the chat when the index is the bundled article.
EXAMPLE_QUESTIONS = [
    "Who led the delegation of US lawmakers that visited Pakistan?",
    "What plan has Pakistan devised to counter terrorism?",
    "Who did Interior Minister Mohsin Naqvi meet?",
    "When did the US withdraw from Afghanistan?",
    "How did Tariq Fatmi feel about his talks in Washington?",
]

#: Documents listed by name in the page header; more are summarised as a count.
_MAX_LISTED_DOCUMENTS = 8
_LOCAL_HOSTS = {"localhost", "ip6-localhost"}
_FEEDBACK_FILE = "feedback.jsonl"
#: Gradio refuses uploads over this many times ``max_file_mb`` outright (the whole batch, before qa sees it); files
#: between ``max_file_mb`` and that are refused one by one by qa, with the reason, and the others are indexed.
_UPLOAD_CAP_FACTOR = 4
_feedback_lock = threading.Lock()


@dataclass(frozen=True)
class Turn:
    """One question and its answer in a chat session (kept in the session's state).

    Attributes:
        reading: the question as typed and the query it was searched as.
        answer: the answer, with its citations (or closest passages when not found).
    """

    reading: Reading
    answer: qa.Answer


# ---------------------------------------------------------------------------------------------- rendering


def _esc(text: str) -> str:
    """Escape ``text`` for HTML and fold runs of whitespace (newlines included) into one space."""
    return html.escape(re.sub(r"\s+", " ", text), quote=True)


def _clip(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _anchor(turn: int, n: int) -> str:
    return f"src-{turn}-{n}"


def render_question(question: str) -> str:
    """The chat bubble for a user's question: the text exactly as typed, escaped, never markup.

    Example:
        >>> render_question('<img src=x onerror="alert(1)">')
        '<div class="qa-question">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</div>'
    """
    lines = [html.escape(line, quote=True) for line in question.strip().splitlines()]
    # One HTML block with no blank line in it, so the chat's Markdown renderer leaves the escaped text alone.
    return f'<div class="qa-question">{"<br>".join(lines)}</div>'


def _place(passage: qa.Passage) -> str:
    """Where a cited sentence sits, as plain text (escape it): ``p. 3 · under “Results” · `` or empty."""
    parts = []
    if passage.page is not None:
        parts.append(f"p. {passage.page}")
    if passage.heading and passage.heading.strip():
        parts.append(f"under “{_clip(passage.heading, 80)}”")
    return "".join(f"{part} · " for part in parts)


def _marker(turn: int, n: int, passage: qa.Passage, total: dict[str, int]) -> str:
    of = total.get(passage.doc_id)
    position = f"sentence {passage.sentence + 1}" + (f" of {of}" if of else "")
    tip = f"[{n}] {_clip(passage.title, 80)}, {_place(passage)}{position}: {_clip(passage.text, 160)}"
    return f'<a class="qa-cite" href="#{_anchor(turn, n)}" title="{html.escape(tip, quote=True)}">[{n}]</a>'


def _linked_answer_text(answer: qa.Answer, turn: int, total: dict[str, int]) -> str:
    """The answer text, escaped, with each ``[n]`` marker that follows its cited sentence made a link."""
    text, pos, parts = answer.text, 0, []
    for n, passage in enumerate(answer.citations, start=1):
        found = text.find(passage.text, pos)
        marker_at = text.find(f"[{n}]", found + len(passage.text)) if found >= 0 else -1
        if marker_at < 0:
            break  # unexpected layout: leave the rest as plain (escaped) text rather than guess
        parts.append(_esc(text[pos:marker_at]))
        parts.append(_marker(turn, n, passage, total))
        pos = marker_at + len(f"[{n}]")
    parts.append(_esc(text[pos:]))
    return "".join(parts)


def render_answer(
    answer: qa.Answer, *, turn: int, reading: Reading | None = None, sentences: dict[str, int] | None = None
) -> str:
    """The chat bubble for an answer: the extractive answer with ``[n]`` links to the sources panel.

    Args:
        answer: the answer to show.
        turn: the turn's number in the conversation (1-based); anchors are ``#src-<turn>-<n>``.
        reading: how the question was read; a follow-up says what was searched for.
        sentences: sentence count per document id, to show "sentence 3 of 40" in marker tooltips.

    Returns:
        HTML in which all document and question text is escaped.
    """
    total = sentences or {}
    if answer.found:
        body = f'<div class="qa-answer">{_linked_answer_text(answer, turn, total)}</div>'
    else:
        body = (
            f'<div class="qa-answer qa-none"><strong>{_esc(answer.text)}</strong> '
            "Nothing is cited. The closest sentences are listed under Sources, marked as not answering.</div>"
        )
    if reading is not None and reading.followup:
        body += f'<div class="qa-followup">Read as a follow-up; searched for: “{_esc(reading.query)}”</div>'
    return body


def _context_html(passage: qa.Passage) -> str:
    a = max(0, passage.start - passage.context_start)
    b = max(a, passage.end - passage.context_start)
    ctx = passage.context
    before, sentence, after = ctx[:a], ctx[a:b], ctx[b:]
    return f'{_esc(before)}<mark class="qa-cited">{_esc(sentence)}</mark>{_esc(after)}'


def _source_card(passage: qa.Passage, *, number: int | None, anchor: str | None, total: dict[str, int]) -> str:
    of = total.get(passage.doc_id)
    position = f"sentence {passage.sentence + 1}" + (f" of {of}" if of else "")
    badge = f'<span class="qa-badge">{number}</span>' if number is not None else ""
    ident = f' id="{anchor}"' if anchor else ""
    return (
        f'<li class="qa-src"{ident}>'
        f'<div class="qa-src-head">{badge}<span class="qa-doc">{_esc(passage.title)}</span></div>'
        f'<div class="qa-src-meta">{_esc(_place(passage))}{position} · score {passage.score:.2f}</div>'
        f'<p class="qa-ctx">{_context_html(passage)}</p>'
        "</li>"
    )


_PANEL_TITLE = '<h2 class="qa-panel-title">Sources</h2>'
_EMPTY_SOURCES = (
    f'<div class="qa-sources qa-empty">{_PANEL_TITLE}'
    "<p>Each answer is made of sentences copied from the documents. Its markers [1], [2] link here, to the "
    "cited sentence highlighted in its surrounding text, with its document, position and score.</p></div>"
)


def render_sources(turns: Sequence[Turn], *, sentences: dict[str, int] | None = None) -> str:
    """The sources panel: the citations of every answer in the conversation, newest first.

    Answers that found nothing show no numbered citations; their closest sentences sit in a collapsed
    section labelled as not answering the question.

    Args:
        turns: the conversation so far, oldest first.
        sentences: sentence count per document id, to show "sentence 3 of 40".

    Returns:
        HTML in which all document and question text is escaped.
    """
    if not turns:
        return _EMPTY_SOURCES
    total = sentences or {}
    sections = []
    for number in range(len(turns), 0, -1):
        turn = turns[number - 1]
        ans, question = turn.answer, _esc(_clip(turn.reading.question, 300))
        latest = " qa-latest" if number == len(turns) else ""
        if ans.found:
            cards = "".join(
                _source_card(p, number=n, anchor=_anchor(number, n), total=total)
                for n, p in enumerate(ans.citations, start=1)
            )
            sections.append(
                f'<section class="qa-turn{latest}" id="turn-{number}">'
                f'<h3 class="qa-turn-head">Answer {number} <span class="qa-q">“{question}”</span></h3>'
                f'<ol class="qa-list">{cards}</ol></section>'
            )
        else:
            closest = "".join(_source_card(p, number=None, anchor=None, total=total) for p in ans.closest)
            more = (
                '<details class="qa-closest"><summary>Closest sentences (they do not answer the question)</summary>'
                f'<ul class="qa-list">{closest}</ul></details>'
                if closest
                else ""
            )
            sections.append(
                f'<section class="qa-turn qa-turn-none{latest}" id="turn-{number}">'
                f'<h3 class="qa-turn-head">Answer {number} <span class="qa-q">“{question}”</span></h3>'
                '<p class="qa-none-note">Not answered by the documents: nothing is cited.</p>'
                f"{more}</section>"
            )
    return f'<div class="qa-sources">{_PANEL_TITLE}{"".join(sections)}</div>'


def _header_html(index: qa.Index, *, where: str) -> str:
    """The page header: what the app does, and the active index (``where``, plain text) with its documents."""
    docs = index.documents
    where = _esc(where)
    path = f'<p class="qa-dim">Stored at <code>{_esc(str(index.path))}</code></p>' if index.path is not None else ""
    items = "".join(
        f'<li><span class="qa-doc">{_esc(d.title)}</span> <span class="qa-dim">({d.sentences} sentences)</span></li>'
        for d in docs[:_MAX_LISTED_DOCUMENTS]
    )
    if len(docs) > _MAX_LISTED_DOCUMENTS:
        items += f'<li class="qa-dim">and {len(docs) - _MAX_LISTED_DOCUMENTS} more</li>'
    n_sentences = sum(d.sentences for d in docs)
    plural = "s" if len(docs) != 1 else ""
    return (
        '<header class="qa-header"><h1>Ask the documents</h1>'
        "<p>Answers are sentences quoted from the documents, each with a numbered citation you can check.</p>"
        f'<details class="qa-index"><summary>Active index: {where} · {len(docs)} document{plural}, '
        f"{n_sentences} sentences</summary><ul>{items}</ul>{path}</details></header>"
    )


def render_document_row(row: DocumentRow) -> str:
    """One document in the document list: title, id, sentence count, and the uploaded file it came from.

    Example:
        >>> render_document_row(DocumentRow("notes", "<b>Notes</b>", 12, "notes.txt"))  # doctest: +NORMALIZE_WHITESPACE
        '<div class="qa-doc-item"><span class="qa-doc">&lt;b&gt;Notes&lt;/b&gt;</span> <span class="qa-dim">id
        <code>notes</code> · 12 sentences · from notes.txt</span></div>'
    """
    file = f" · from {_esc(row.file)}" if row.file else ""
    plural = "s" if row.sentences != 1 else ""
    return (
        f'<div class="qa-doc-item"><span class="qa-doc">{_esc(row.title)}</span> <span class="qa-dim">id '
        f"<code>{_esc(row.doc_id)}</code> · {row.sentences} sentence{plural}{file}</span></div>"
    )


def _titles(docs: Sequence[qa.DocumentInfo]) -> str:
    return ", ".join(f"“{_esc(_clip(d.title, 80))}”" for d in docs)


def render_upload_report(report: AddReport, *, where: str) -> str:
    """What an upload did: the documents added, replaced or unchanged, and each file that failed, with why.

    Args:
        report: the result of :meth:`qa.workspace.Workspace.add`.
        where: the active index's name, plain text ("your workspace").

    Returns:
        HTML in which every file name, title and reason is escaped.
    """
    lines = []
    if report.added:
        n = len(report.added)
        plural = "s" if n != 1 else ""
        lines.append(f'<li class="qa-ok">Added {n} document{plural}: {_titles(report.added)}</li>')
    if report.replaced:
        lines.append(f'<li class="qa-ok">Replaced with the new version: {_titles(report.replaced)}</li>')
    if report.unchanged:
        lines.append(f'<li class="qa-dim">Already indexed, unchanged: {_titles(report.unchanged)}</li>')
    failed = "".join(
        f'<li class="qa-failed"><span class="qa-file">{_esc(f.source)}</span>: '
        f"{_esc(f.reason.removeprefix(f'{f.source}: '))}</li>"
        for f in report.failures
    )
    head = ""
    if report.created:
        head = f"Created {_esc(where)} (the bundled article plus your files); it is now the active index."
    elif report.switched:
        head = f"Added to {_esc(where)}, which is now the active index."
    elif report.added or report.replaced:
        head = f"Updated {_esc(where)}."
    n_failed = len(report.failures)
    if n_failed:
        what = "file was" if n_failed == 1 else "files were"
        lines.append(f'<li class="qa-failed-head">{n_failed} {what} not added:<ul>{failed}</ul></li>')
    head_html = f"<p>{head}</p>" if head else ""
    return f'<div class="qa-upload-report">{head_html}<ul>{"".join(lines)}</ul></div>'


def _docs_note_html(ws: Workspace, index: qa.Index) -> str:
    """What uploads do to the active ``index``, and where it and the uploaded files are stored."""
    types = ", ".join(SUPPORTED_SUFFIXES)
    limit = f"{ws.settings.max_file_mb:g} MB"
    if ws.is_default(index):
        where = _esc(str(ws.workspace_path))
        text = (
            "The bundled article's index is read-only. Files you add go into your workspace "
            f"(<code>{where}</code>), which also holds the article, and it becomes the active index."
        )
        if ws.workspace_exists():
            text += " You already have a workspace: choose it above, or add files to it."
    else:
        stored = f" (<code>{_esc(str(index.path))}</code>)" if index.path is not None else " (in memory, not saved)"
        text = f"Files you add are indexed into {_esc(ws.label(index))}{stored}."
    return (
        f'<p class="qa-docs-note">{text} Accepted: {_esc(types)}, up to {_esc(limit)} each. A file that cannot '
        "be read is listed with the reason; the others are still added.</p>"
    )


# ---------------------------------------------------------------------------------------------- feedback


def _feedback_path(settings: qa.Settings) -> Path:
    folder = settings.feedback_dir if settings.feedback_dir is not None else settings.index_root / "feedback"
    return Path(folder) / _FEEDBACK_FILE


def _record_feedback(path: Path, turn: Turn, verdict: str, index: qa.Index) -> None:
    record = {
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "verdict": verdict,
        "question": turn.reading.question,
        "query": turn.reading.query,
        "answer": turn.answer.text,
        "found": turn.answer.found,
        "citations": [p.to_dict() for p in turn.answer.citations],
        "index": str(index.path) if index.path is not None else None,
    }
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _feedback_lock:
        # Owner-only, like the index: the log holds the questions people asked.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(line)


# ---------------------------------------------------------------------------------------------- the app


def _user_error(exc: qa.QAError, title: str = "Cannot answer") -> gr.Error:
    return gr.Error(html.escape(str(exc)), title=title, print_exception=False)


def _has_article(index: qa.Index) -> bool:
    article = qa.default_document().sha256
    return any(d.sha256 == article for d in index.documents)


def _uploads(payload: Any) -> list[Upload]:
    """The files of a ``gr.File`` event received without preprocessing: each with the name the client gave it.

    Gradio has already checked that every path lies in its upload folder; the name is checked by the workspace.
    """
    if payload is None:
        return []
    items = payload if isinstance(payload, list) else [payload]
    uploads = []
    for item in items:
        if isinstance(item, dict) and item.get("path"):
            name = item.get("orig_name") or Path(str(item["path"])).name
            uploads.append(Upload(str(name), Path(str(item["path"]))))
        elif isinstance(item, str) and item:
            uploads.append(Upload(Path(item).name, Path(item)))
    return uploads


#: Documents listed with a remove button each; more are summarised as a count.
_MAX_DOCUMENT_ROWS = 100
_DOCS_IO: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "documents"}


class _DocumentsPanel:
    """The "Documents" section: add files, list the active index's documents with remove buttons, switch index.

    Every change goes through the :class:`~qa.workspace.Workspace`, which swaps the app's active index; the
    panel then re-renders the header, the list and the choice of index from it.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        idx = ws.index
        self.header: gr.HTML | None = None
        self.examples: gr.Dataset | None = None
        with gr.Accordion(self._label(idx), open=False, elem_id="qa-docs") as self.accordion:
            self.choice = gr.Radio(
                choices=[
                    ("The bundled article (read-only)", "default"),
                    ("Your workspace (the files you added)", "workspace"),
                ],
                value=self._choice_value(idx),
                label="Active index",
                visible=self._choice_visible(),
                elem_id="qa-index-choice",
            )
            self.note = gr.HTML(_docs_note_html(ws, idx), elem_id="qa-docs-note", padding=False)
            self.files = gr.File(
                file_count="multiple",
                label="Add files (indexed as soon as they are uploaded)",
                elem_id="upload",
                height=120,
            )
            self.status = gr.HTML("", elem_id="upload-status", padding=False)
            self.version = gr.State(ws.version)
            gr.render(inputs=[self.version])(self._render_list)

    # ------------------------------------------------------------------ rendering

    @staticmethod
    def _label(index: qa.Index) -> str:
        n = len(index.documents)
        return f"Documents ({n}) · add your own files"

    def _choice_value(self, index: qa.Index) -> str:
        return "default" if self.ws.is_default(index) else "workspace"

    def _choice_visible(self) -> bool:
        return self.ws.started_on_default and (self.ws.workspace_exists() or not self.ws.is_default())

    def _render_list(self, version: int) -> None:
        idx = self.ws.index
        rows = self.ws.rows(idx)
        editable = not self.ws.is_default(idx)
        with gr.Column(elem_id="qa-doc-list"):
            for row in rows[:_MAX_DOCUMENT_ROWS]:
                with gr.Row(elem_classes=["qa-doc-row"], equal_height=True):
                    gr.HTML(render_document_row(row), elem_classes=["qa-doc-info"], padding=False)
                    if editable:
                        button = gr.Button(
                            "Remove", size="sm", variant="secondary", scale=0, min_width=90, elem_classes=["qa-remove"]
                        )
                        button.click(
                            partial(self._remove, row.doc_id),
                            None,
                            [self.status, *self.refresh_outputs],
                            api_visibility="private",
                            **_DOCS_IO,
                        )
            if len(rows) > _MAX_DOCUMENT_ROWS:
                gr.HTML(
                    f'<p class="qa-dim">and {len(rows) - _MAX_DOCUMENT_ROWS} more (remove them with '
                    "<code>qa index remove</code>)</p>",
                    padding=False,
                )

    @property
    def refresh_outputs(self) -> list[Any]:
        """The components :meth:`_refresh` updates, in order."""
        extra = [self.examples] if self.examples is not None else []
        return [self.header, self.accordion, self.choice, self.note, self.version, *extra]

    def _refresh(self) -> list[Any]:
        """The header, section label, index choice, note and list version for the active index."""
        idx, version = self.ws.snapshot()
        updates: list[Any] = [
            _header_html(idx, where=self.ws.label(idx)),
            gr.Accordion(label=self._label(idx)),
            gr.Radio(value=self._choice_value(idx), visible=self._choice_visible()),
            _docs_note_html(self.ws, idx),
            version,
        ]
        if self.examples is not None:
            updates.append(gr.Dataset(visible=_has_article(idx)))
        return updates

    # ------------------------------------------------------------------ events

    def wire(self, app: gr.Blocks, *, header: gr.HTML, examples: gr.Dataset | None) -> None:
        """Attach the panel's events (after the components it updates exist)."""
        self.header, self.examples = header, examples
        # Not preprocessed, so the handler sees each file's original name (Gradio's own copy is renamed).
        self.files.upload(
            self._add,
            [self.files],
            [self.files, self.status, *self.refresh_outputs],
            preprocess=False,
            api_name="upload_documents",
            api_visibility="undocumented",
            show_progress_on=[self.files],
            **_DOCS_IO,
        )
        self.choice.input(
            self._switch, [self.choice], [self.status, *self.refresh_outputs], api_visibility="private", **_DOCS_IO
        )
        app.load(self._refresh, None, self.refresh_outputs, api_visibility="private", queue=False)
        _endpoint(self.documents, api_name="documents", api_visibility="undocumented", **_DOCS_IO)
        _endpoint(self.remove_document, api_name="remove_document", api_visibility="undocumented", **_DOCS_IO)

    def _add(self, payload: Any, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> list[Any]:  # noqa: B008
        uploads = _uploads(payload)
        if not uploads:
            return [None, "", *self._refresh()]

        def report(fraction: float | None, description: str) -> None:
            progress(fraction, desc=description)

        try:
            result = self.ws.add(uploads, progress=report, bars=True)
        except qa.QAError as exc:
            raise _user_error(exc, "Cannot add the files") from None
        if result.failures:
            n = len(result.failures)
            gr.Warning(f"{n} file{'s' if n != 1 else ''} could not be added; the list says why.", title="Not added")
        return [None, render_upload_report(result, where=self.ws.label(result.index)), *self._refresh()]

    def _remove(self, doc_id: str) -> list[Any]:
        before = self.ws.index
        title = next((d.title for d in before.documents if d.doc_id == doc_id), doc_id)
        try:
            after = self.ws.remove(doc_id)
        except qa.QAError as exc:
            gr.Warning(html.escape(str(exc)), title="Not removed")
            message = f'<p class="qa-failed">Not removed: {_esc(str(exc))}</p>'
        else:
            message = (
                f"<p>Removed “{_esc(title)}” (id <code>{_esc(doc_id)}</code>) from {_esc(self.ws.label(after))}.</p>"
            )
        return [f'<div class="qa-upload-report">{message}</div>', *self._refresh()]

    def _switch(self, which: str) -> list[Any]:
        try:
            idx = self.ws.use("workspace" if which == "workspace" else "default")
        except qa.QAError as exc:
            gr.Warning(html.escape(str(exc)), title="Index not changed")
            return ["", *self._refresh()]
        return [f'<div class="qa-upload-report"><p>Now answering from {_esc(self.ws.label(idx))}.</p></div>',
                *self._refresh()]

    def documents(self) -> dict[str, Any]:
        """The active index and its documents: {"index", "name", "documents": [{doc_id, title, sentences, file}]}."""
        idx = self.ws.index
        return {
            "index": str(idx.path) if idx.path is not None else None,
            "name": self.ws.label(idx),
            "documents": [dataclasses.asdict(row) for row in self.ws.rows(idx)],
        }

    def remove_document(self, doc_id: str) -> dict[str, Any]:
        """Remove a document from the active index (never the bundled article's); returns the new document list."""
        try:
            self.ws.remove(doc_id)
        except qa.QAError as exc:
            raise _user_error(exc, "Not removed") from None
        return self.documents()


def build_app(*, index: str | Path | qa.Index | None = None, settings: qa.Settings | None = None) -> gr.Blocks:
    """Build the chat app (not started: see :func:`launch` and :func:`serve`).

    The index is opened (built, for the bundled article's first use) and the model loaded here, so the first
    question is answered as fast as the rest.

    Args:
        index: an index directory or :class:`qa.Index` (default: the ``index`` setting, else the bundled article).
        settings: settings to use instead of the environment's.

    Returns:
        The Gradio Blocks app, with its queue configured for ``settings.concurrency`` parallel questions.
    """
    s = settings or qa.get_settings()
    # The active index: uploads and removals swap it for the updated one. Each question reads it once.
    ws = Workspace(qa.open_index(index, settings=s), s)
    with_examples = _has_article(ws.index) or ws.started_on_default
    feedback_path = _feedback_path(s)
    qa.retrieve("warm up", k=1, index=ws.index, settings=s)  # loads the model now rather than on the first question
    limit = s.concurrency

    def totals(idx: qa.Index) -> dict[str, int]:
        return {d.doc_id: d.sentences for d in idx.documents}

    def ask(question: str) -> dict[str, Any]:
        """Answer a question from the documents, with cited sentences (the JSON of `qa ask --json`)."""
        try:
            return qa.answer(question, index=ws.index, settings=s).to_dict()
        except qa.QAError as exc:
            raise _user_error(exc) from None

    def retrieve(question: str, k: int = s.k) -> dict[str, Any]:
        """The k sentences that best match a question, best first: {"passages": [...]}."""
        try:
            return {"passages": [p.to_dict() for p in qa.retrieve(question, k=k, index=ws.index, settings=s)]}
        except qa.QAError as exc:
            raise _user_error(exc) from None

    def validate(question: str) -> None:
        # A separate, output-less step: a refused question shows only a message, and the chat stays as it was.
        try:
            check_question(question, s)
        except qa.QAError as exc:
            raise _user_error(exc) from None

    def respond(
        question: str, history: list[dict[str, Any]] | None, turns: list[Turn] | None
    ) -> tuple[str, list[dict[str, Any]], list[Turn], str]:
        turns = list(turns or [])
        reading = read_question(question or "", [t.reading.question for t in turns], max_chars=s.max_question_chars)
        idx = ws.index  # one index for the whole answer, even if an upload swaps it meanwhile
        try:
            result = qa.answer(reading.query, index=idx, settings=s)
        except qa.QAError as exc:
            raise _user_error(exc) from None
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
        return "", [], [], _EMPTY_SOURCES

    def clear_state() -> tuple[list[Turn], str]:
        return [], _EMPTY_SOURCES

    def feedback(turns: list[Turn] | None, data: gr.LikeData) -> None:
        turns = turns or []
        at = data.index if isinstance(data.index, int) else -1
        if at < 0 or at // 2 >= len(turns):
            return
        # True and False are the thumbs; clicking a thumb again withdraws it (the browser then sends "").
        liked = data.liked
        verdict = "up" if liked is True else "down" if liked is False else str(liked) if liked else "withdrawn"
        _record_feedback(feedback_path, turns[at // 2], verdict, ws.index)
        gr.Info("Feedback withdrawn." if verdict == "withdrawn" else "Thanks, your feedback was saved.")

    app = gr.Blocks(title="qa · ask the documents", analytics_enabled=False)
    with app:
        header = gr.HTML(_header_html(ws.index, where=ws.label()), elem_id="qa-header")
        documents = _DocumentsPanel(ws)
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
                        visible=_has_article(ws.index),
                    )
            with gr.Column(scale=2, min_width=300, elem_id="qa-sources-col"):
                sources = gr.HTML(_EMPTY_SOURCES, elem_id="sources", label="Sources", container=True, padding=True)

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


# ---------------------------------------------------------------------------------------------- serving


def load_auth(settings: qa.Settings) -> dict[str, str]:
    """The web login accounts: ``QA_AUTH`` (``user:password``) plus the lines of ``QA_AUTH_FILE``.

    The file holds one ``user:password`` per line; blank lines and lines starting with ``#`` are skipped.

    Raises:
        qa.ConfigError: a malformed entry, or an auth file that cannot be read.
    """
    accounts: dict[str, str] = {}

    def add(entry: str, where: str) -> None:
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            raise qa.ConfigError(f"{where} is not of the form user:password")
        accounts[user.strip()] = password

    if settings.auth:
        add(settings.auth.strip(), "QA_AUTH")
    if settings.auth_file is not None:
        try:
            lines = Path(settings.auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise qa.ConfigError(f"cannot read the auth file {settings.auth_file}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                add(line, f"line {number} of {settings.auth_file}")
    return accounts


def _checker(accounts: dict[str, str]) -> Callable[[str, str], bool]:
    def check(user: str, password: str) -> bool:
        expected = accounts.get(user, "")
        ok = hmac.compare_digest(expected.encode("utf-8"), (password or "").encode("utf-8"))
        return ok and user in accounts

    return check


def _is_local(host: str) -> bool:
    if host.lower() in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_exposure(settings: qa.Settings, *, allow_public: bool) -> dict[str, str]:
    """The login accounts, after refusing a non-local address that would have none (unless allowed)."""
    accounts = load_auth(settings)
    if not _is_local(settings.host) and not accounts and not allow_public:
        raise qa.ConfigError(
            f"refusing to serve on {settings.host} without a login, since anyone who can reach it could use it; "
            "set QA_AUTH=user:password or QA_AUTH_FILE=FILE, bind 127.0.0.1, or pass --allow-public to serve "
            "it openly on purpose"
        )
    return accounts


_CSS = """
#qa-header { margin-bottom: 0; }
.qa-header h1 { font-size: 1.6rem; font-weight: 700; margin: 0 0 .2rem 0; }
.qa-panel-title { font-size: 1.05rem; font-weight: 700; margin: 0 0 .6rem 0; }
.qa-header p { margin: 0 0 .4rem 0; color: var(--body-text-color-subdued); }
.qa-header summary { cursor: pointer; font-size: .9rem; color: var(--body-text-color-subdued); }
.qa-header ul { margin: .3rem 0 .2rem 1.2rem; font-size: .9rem; }
.qa-header details p { margin: 0 0 0 1.2rem; font-size: .85rem; }
.qa-header code { font-size: .8rem; word-break: break-all; }
.qa-dim { color: var(--body-text-color-subdued); }
.qa-question { white-space: pre-wrap; overflow-wrap: anywhere; }
.qa-answer { line-height: 1.55; overflow-wrap: anywhere; }
.qa-none strong { display: block; margin-bottom: .25rem; }
a.qa-cite { text-decoration: none; font-weight: 700; font-size: .85em; padding: 0 .15em; border-radius: 4px;
  color: var(--color-accent); background: var(--color-accent-soft); margin-left: .1em; white-space: nowrap; }
a.qa-cite:hover, a.qa-cite:focus { text-decoration: underline; }
.qa-followup { margin-top: .35rem; font-size: .8rem; color: var(--body-text-color-subdued); }
#sources { max-height: 720px; overflow-y: auto !important; }
.qa-sources { padding: .25rem .5rem; }
.qa-empty { color: var(--body-text-color-subdued); font-size: .95rem; }
.qa-turn { margin: 0 0 1rem 0; }
.qa-turn:not(.qa-latest) { opacity: .8; }
.qa-turn-head { font-size: .95rem; font-weight: 700; margin: 0 0 .4rem 0; }
.qa-q { font-weight: 400; color: var(--body-text-color-subdued); overflow-wrap: anywhere; }
.qa-list { list-style: none; padding: 0; margin: 0; }
.qa-src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5rem .65rem;
  margin: 0 0 .5rem 0; background: var(--block-background-fill); scroll-margin-top: 1rem;
  transition: box-shadow .3s, border-color .3s; }
.qa-src:target, .qa-src.qa-hover { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.qa-src-head { display: flex; gap: .4rem; align-items: baseline; font-weight: 700; }
.qa-badge { flex: none; min-width: 1.5em; text-align: center; border-radius: 4px; font-size: .85em;
  color: var(--color-accent); background: var(--color-accent-soft); }
.qa-doc { overflow-wrap: anywhere; }
.qa-src-meta { font-size: .8rem; color: var(--body-text-color-subdued); margin: .1rem 0 .3rem 0; }
.qa-ctx { margin: 0; font-size: .92rem; line-height: 1.5; color: var(--body-text-color-subdued);
  overflow-wrap: anywhere; }
.qa-ctx mark.qa-cited { color: var(--body-text-color); background: #fde68a; padding: 0 .1em; border-radius: 2px; }
.dark .qa-ctx mark.qa-cited { background: #854d0e; }
.qa-none-note { margin: 0 0 .4rem 0; }
.qa-closest summary { cursor: pointer; font-size: .9rem; color: var(--body-text-color-subdued); margin-bottom: .4rem; }
.qa-closest .qa-src { border-style: dashed; }
.qa-closest .qa-ctx mark.qa-cited { background: transparent; text-decoration: underline dotted; }
#qa-docs { margin-top: .25rem; }
.qa-docs-note { margin: 0 0 .4rem 0; font-size: .88rem; color: var(--body-text-color-subdued); }
.qa-docs-note code { font-size: .8rem; word-break: break-all; }
.qa-doc-row { align-items: center; border-bottom: 1px solid var(--border-color-primary); padding: .15rem 0; }
.qa-doc-item { font-size: .92rem; overflow-wrap: anywhere; }
.qa-doc-item .qa-dim { font-size: .82rem; }
.qa-upload-report { font-size: .9rem; overflow-wrap: anywhere; }
.qa-upload-report p { margin: .2rem 0; }
.qa-upload-report ul { margin: .2rem 0 .2rem 1.1rem; }
.qa-upload-report .qa-ok::marker { content: "✓ "; color: #15803d; }
.qa-failed, .qa-failed-head { color: var(--error-text-color, #b91c1c); }
.qa-file { font-weight: 700; }
@media (max-width: 640px) {
  .qa-header h1 { font-size: 1.3rem; }
  #sources { max-height: none; overflow-y: visible !important; }
  .qa-sources { padding: 0; }
  .qa-src { padding: .45rem .5rem; }
}
"""

# Hovering a marker highlights its source and scrolls it into view when it is off screen; clicking follows the
# link to the anchor. Delegated from the document, so it works for messages added later.
_JS = """
() => {
  const source = (e) => {
    const a = e.target && e.target.closest ? e.target.closest('a.qa-cite') : null;
    const id = a ? (a.getAttribute('href') || '').slice(1) : '';
    return id ? document.getElementById(id) : null;
  };
  document.addEventListener('mouseover', (e) => {
    const el = source(e); if (!el) return;
    el.classList.add('qa-hover');
    el.scrollIntoView({block: 'nearest', behavior: 'smooth'});
  });
  document.addEventListener('mouseout', (e) => {
    const el = source(e); if (el) el.classList.remove('qa-hover');
  });
}
"""


def _theme() -> gr.themes.Base:
    return gr.themes.Default(
        primary_hue="indigo",
        neutral_hue="slate",
        # The bundled Source Sans Pro semibold file is a small subset: load only regular and bold, so 600 maps to bold.
        font=(gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"),
    )


def launch(
    app: gr.Blocks,
    *,
    host: str | None = None,
    port: int | None = None,
    settings: qa.Settings | None = None,
    allow_public: bool = False,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Start ``app`` with the page's theme, styles and script, the login if one is configured, and no share link.

    Args:
        app: an app from :func:`build_app`.
        host: address to bind (default: the ``host`` setting, 127.0.0.1).
        port: port to listen on (default: the ``port`` setting, 7860).
        settings: settings to use instead of the environment's.
        allow_public: allow a non-local ``host`` without a login.
        block: wait until the server is stopped (Ctrl-C); otherwise return once it is listening.
        quiet: do not print the URL.

    Returns:
        The local URL of the running app.

    Raises:
        qa.ConfigError: a non-local host without a login and without ``allow_public``, or malformed credentials.
    """
    s = (settings or qa.get_settings()).replace(host=host, port=port)
    accounts = _check_exposure(s, allow_public=allow_public)
    _, local_url, _ = app.launch(
        server_name=s.host,
        server_port=s.port,
        share=False,
        auth=_checker(accounts) if accounts else None,
        auth_message="Log in to ask questions about the documents." if accounts else None,
        # Gradio's upload route would otherwise take a file of any size onto disk before qa ever sees it. Its cap
        # sits above max_file_mb: Gradio refuses a whole upload when one file is over it, while qa refuses only
        # that file, with the reason, and indexes the rest (see _UPLOAD_CAP_FACTOR).
        max_file_size=int(s.max_file_mb * 1024 * 1024 * _UPLOAD_CAP_FACTOR),
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
        theme=_theme(),
        css=_CSS,
        js=_JS,
        footer_links=["api", "settings"],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
    )
    if not quiet:
        login = " (login required)" if accounts else ""
        print(f"qa: answering at {local_url}{login}; press Ctrl-C to stop", flush=True)
    if block:
        app.block_thread()
    return str(local_url)


def serve(
    *,
    index: str | Path | qa.Index | None = None,
    host: str | None = None,
    port: int | None = None,
    settings: qa.Settings | None = None,
    allow_public: bool = False,
) -> None:
    """Build and run the web app until interrupted (``python app.py`` and ``qa serve`` call this).

    Args:
        index: an index directory (default: the ``index`` setting, else the bundled article).
        host: address to bind (default: the ``host`` setting, 127.0.0.1).
        port: port to listen on (default: the ``port`` setting, 7860).
        settings: settings to use instead of the environment's.
        allow_public: allow a non-local ``host`` without a login.

    Raises:
        qa.QAError: bad settings or credentials, a refused public address, or an index that cannot be opened.
    """
    s = (settings or qa.get_settings()).replace(host=host, port=port)
    _check_exposure(s, allow_public=allow_public)  # before the slower index and model loading
    app = build_app(index=index, settings=s)
    launch(app, settings=s, allow_public=allow_public, block=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python app.py [--index DIR] [--host HOST] [--port PORT] [--allow-public]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Chat with the documents in a browser. Log-in credentials come only from the environment "
        "(QA_AUTH=user:password) or a file (QA_AUTH_FILE), never from the command line.",
    )
    parser.add_argument("--index", type=Path, help="index directory (default: the bundled article)")
    parser.add_argument("--host", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, help="port (default: 7860)")
    parser.add_argument(
        "--allow-public", action="store_true", help="allow a non-local --host without a login (not recommended)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("qa").setLevel(logging.INFO)  # say so when the index is built or the model loaded
    try:
        serve(index=args.index, host=args.host, port=args.port, allow_public=args.allow_public)
    except qa.QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
