"""The "Documents" section of the page: add files, list the active index's documents, remove them, switch index.

Uploads are indexed by :class:`qa.workspace.Workspace`, which swaps the app's active index under a lock; the
panel renders the result (every name, title and reason escaped) and refreshes the header, the list and the
choice of index. The same operations are unlisted API endpoints: ``/upload_documents``, ``/documents`` and
``/remove_document``.
"""

from __future__ import annotations

import dataclasses
import html
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.events import api as _endpoint

import qa
from qa.documents import SUPPORTED_SUFFIXES
from qa.workspace import Upload, Workspace

from .render import esc, header_html, render_document_row, render_upload_report
from .uploads import discard

__all__ = ["DocumentsPanel", "has_article", "user_error"]


def user_error(exc: qa.QAError, title: str = "Cannot answer") -> gr.Error:
    """The message the page shows for a refused request: the error's text, escaped, under ``title``."""
    return gr.Error(html.escape(str(exc)), title=title, print_exception=False)


def has_article(index: qa.Index) -> bool:
    """Whether ``index`` holds the bundled article (then the example questions apply)."""
    article = qa.default_document().sha256
    return any(d.sha256 == article for d in index.documents)


def _uploads(payload: Any) -> list[Upload]:
    """The files of a ``gr.File`` event received without preprocessing: each with the name the client gave it.

    Gradio has already checked that every path lies in its upload folder (the app's private one, see
    :mod:`qa.web.uploads`); the name is checked by the workspace.
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


def _docs_note_html(ws: Workspace, index: qa.Index) -> str:
    """What uploads do to the active ``index``, and where it and the uploaded files are stored."""
    types = ", ".join(SUPPORTED_SUFFIXES)
    limit = f"{ws.settings.max_file_mb:g} MB"
    if ws.is_default(index):
        where = esc(str(ws.workspace_path))
        text = (
            "The bundled article's index is read-only. Files you add go into your workspace "
            f"(<code>{where}</code>), which also holds the article, and it becomes the active index."
        )
        if ws.workspace_exists():
            text += " You already have a workspace: choose it above, or add files to it."
    else:
        stored = f" (<code>{esc(str(index.path))}</code>)" if index.path is not None else " (in memory, not saved)"
        text = f"Files you add are indexed into {esc(ws.label(index))}{stored}."
    return (
        f'<p class="qa-docs-note">{text} Accepted: {esc(types)}, up to {esc(limit)} each. A file that cannot '
        "be read is listed with the reason; the others are still added.</p>"
    )


#: Documents listed with a remove button each; more are summarised as a count.
_MAX_DOCUMENT_ROWS = 100
_DOCS_IO: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "documents"}


class DocumentsPanel:
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
            header_html(idx, where=self.ws.label(idx)),
            gr.Accordion(label=self._label(idx)),
            gr.Radio(value=self._choice_value(idx), visible=self._choice_visible()),
            _docs_note_html(self.ws, idx),
            version,
        ]
        if self.examples is not None:
            updates.append(gr.Dataset(visible=has_article(idx)))
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
            raise user_error(exc, "Cannot add the files") from None
        finally:
            # Indexed or refused, the workspace is done with Gradio's copies (it keeps its own of each indexed file).
            discard(u.path for u in uploads)
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
            message = f'<p class="qa-failed">Not removed: {esc(str(exc))}</p>'
        else:
            message = (
                f"<p>Removed “{esc(title)}” (id <code>{esc(doc_id)}</code>) from {esc(self.ws.label(after))}.</p>"
            )
        return [f'<div class="qa-upload-report">{message}</div>', *self._refresh()]

    def _switch(self, which: str) -> list[Any]:
        try:
            idx = self.ws.use("workspace" if which == "workspace" else "default")
        except qa.QAError as exc:
            gr.Warning(html.escape(str(exc)), title="Index not changed")
            return ["", *self._refresh()]
        return [f'<div class="qa-upload-report"><p>Now answering from {esc(self.ws.label(idx))}.</p></div>',
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
            raise user_error(exc, "Not removed") from None
        return self.documents()
