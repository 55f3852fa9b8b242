"""The web app: a Gradio chat whose answers cite, and show, the exact sentences they come from.

Run it with ``python app.py`` or ``qa serve``. Everything it knows comes through the public API of :mod:`qa`
(:func:`qa.answer`, :func:`qa.retrieve`, :func:`qa.open_index`); this package only renders and serves it.

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
* API: two named endpoints, ``/ask`` (:meth:`qa.Answer.to_dict`) and ``/retrieve`` (``{"passages": [...]}``, at
  most ``max_k`` of them), for ``gradio_client``; the chat's own events are private. ``/upload_documents``,
  ``/documents`` and ``/remove_document`` are callable but unlisted.
* Uploads: Gradio receives them into a private 0700 folder under the index folder (:mod:`qa.web.uploads`),
  emptied as each upload is handled and removed when the app stops.
* Exposure: binds 127.0.0.1 by default, never creates a share link, and refuses a non-local address without a
  login (``QA_AUTH`` or ``QA_AUTH_FILE``) unless explicitly allowed.

Modules, by role: :mod:`~qa.web.render` (answers, sources, header and reports as escaped HTML; pure functions),
:mod:`~qa.web.documents_panel` (the "Documents" section and its endpoints), :mod:`~qa.web.feedback` (the thumbs
up/down log), :mod:`~qa.web.app` (:func:`build_app`: the Blocks, the chat and the API), :mod:`~qa.web.style`
(theme, CSS, script), :mod:`~qa.web.uploads` (Gradio's private upload folder) and :mod:`~qa.web.server` (login,
exposure checks, :func:`launch`, :func:`serve`, :func:`main`).
"""

from __future__ import annotations

import os

# Must be set before gradio is imported (every module of this package imports it, and importing any of them runs
# this file first): no version check or telemetry, since this app may run with no network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from .app import EXAMPLE_QUESTIONS, build_app
from .render import (
    Turn,
    render_answer,
    render_document_row,
    render_question,
    render_sources,
    render_upload_report,
)
from .server import launch, load_auth, main, serve

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
