"""Rendering answers, sources, the page header and upload reports as HTML: pure functions, all text escaped.

Every question, document title, sentence, file name and reason is HTML-escaped (:func:`esc`) before it is put
into markup, so nothing typed or uploaded is ever interpreted as HTML. Nothing here imports Gradio.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import qa
from qa.conversation import Reading
from qa.workspace import AddReport, DocumentRow

__all__ = [
    "EMPTY_SOURCES",
    "Turn",
    "clip",
    "esc",
    "header_html",
    "render_answer",
    "render_document_row",
    "render_question",
    "render_sources",
    "render_upload_report",
]

#: Documents listed by name in the page header; more are summarised as a count.
_MAX_LISTED_DOCUMENTS = 8


@dataclass(frozen=True)
class Turn:
    """One question and its answer in a chat session (kept in the session's state).

    Attributes:
        reading: the question as typed and the query it was searched as.
        answer: the answer, with its citations (or closest passages when not found).
    """

    reading: Reading
    answer: qa.Answer


def esc(text: str) -> str:
    """Escape ``text`` for HTML and fold runs of whitespace (newlines included) into one space.

    Example:
        >>> esc("<b title='x'>bold</b>  \\t text")
        '&lt;b title=&#x27;x&#x27;&gt;bold&lt;/b&gt; text'
    """
    return html.escape(re.sub(r"\s+", " ", text), quote=True)


def clip(text: str, limit: int) -> str:
    """``text`` with whitespace folded, cut to at most ``limit`` characters (an ellipsis marks the cut).

    Example:
        >>> clip("The castle   gate was built in 1200.", 16)
        'The castle gate…'
    """
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
        parts.append(f"under “{clip(passage.heading, 80)}”")
    return "".join(f"{part} · " for part in parts)


def _marker(turn: int, n: int, passage: qa.Passage, total: dict[str, int]) -> str:
    of = total.get(passage.doc_id)
    position = f"sentence {passage.sentence + 1}" + (f" of {of}" if of else "")
    tip = f"[{n}] {clip(passage.title, 80)}, {_place(passage)}{position}: {clip(passage.text, 160)}"
    return f'<a class="qa-cite" href="#{_anchor(turn, n)}" title="{html.escape(tip, quote=True)}">[{n}]</a>'


def _linked_answer_text(answer: qa.Answer, turn: int, total: dict[str, int]) -> str:
    """The answer text, escaped, with each ``[n]`` marker that follows its cited sentence made a link."""
    text, pos, parts = answer.text, 0, []
    for n, passage in enumerate(answer.citations, start=1):
        found = text.find(passage.text, pos)
        marker_at = text.find(f"[{n}]", found + len(passage.text)) if found >= 0 else -1
        if marker_at < 0:
            break  # unexpected layout: leave the rest as plain (escaped) text rather than guess
        parts.append(esc(text[pos:marker_at]))
        parts.append(_marker(turn, n, passage, total))
        pos = marker_at + len(f"[{n}]")
    parts.append(esc(text[pos:]))
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
            f'<div class="qa-answer qa-none"><strong>{esc(answer.text)}</strong> '
            "Nothing is cited. The closest sentences are listed under Sources, marked as not answering.</div>"
        )
    if answer.confidence is not None:
        verdict = "answered" if answer.found else "declined"
        threshold = f" (answers from {answer.threshold:.0%})" if answer.threshold is not None else ""
        body += (f'<div class="qa-confidence" title="how likely the best sentence answers the question">'
                 f"Confidence {answer.confidence:.0%}: {verdict}{threshold}</div>")
    if reading is not None and reading.followup:
        body += f'<div class="qa-followup">Read as a follow-up; searched for: “{esc(reading.query)}”</div>'
    return body


def _context_html(passage: qa.Passage) -> str:
    a = max(0, passage.start - passage.context_start)
    b = max(a, passage.end - passage.context_start)
    ctx = passage.context
    before, sentence, after = ctx[:a], ctx[a:b], ctx[b:]
    return f'{esc(before)}<mark class="qa-cited">{esc(sentence)}</mark>{esc(after)}'


def _source_card(passage: qa.Passage, *, number: int | None, anchor: str | None, total: dict[str, int]) -> str:
    of = total.get(passage.doc_id)
    position = f"sentence {passage.sentence + 1}" + (f" of {of}" if of else "")
    badge = f'<span class="qa-badge">{number}</span>' if number is not None else ""
    ident = f' id="{anchor}"' if anchor else ""
    return (
        f'<li class="qa-src"{ident}>'
        f'<div class="qa-src-head">{badge}<span class="qa-doc">{esc(passage.title)}</span></div>'
        f'<div class="qa-src-meta">{esc(_place(passage))}{position} · score {passage.score:.2f}</div>'
        f'<p class="qa-ctx">{_context_html(passage)}</p>'
        "</li>"
    )


_PANEL_TITLE = '<h2 class="qa-panel-title">Sources</h2>'
EMPTY_SOURCES = (
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
        return EMPTY_SOURCES
    total = sentences or {}
    sections = []
    for number in range(len(turns), 0, -1):
        turn = turns[number - 1]
        ans, question = turn.answer, esc(clip(turn.reading.question, 300))
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


def header_html(index: qa.Index, *, where: str) -> str:
    """The page header: what the app does, and the active index (``where``, plain text) with its documents."""
    docs = index.documents
    where = esc(where)
    path = f'<p class="qa-dim">Stored at <code>{esc(str(index.path))}</code></p>' if index.path is not None else ""
    items = "".join(
        f'<li><span class="qa-doc">{esc(d.title)}</span> <span class="qa-dim">({d.sentences} sentences)</span></li>'
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
    file = f" · from {esc(row.file)}" if row.file else ""
    plural = "s" if row.sentences != 1 else ""
    return (
        f'<div class="qa-doc-item"><span class="qa-doc">{esc(row.title)}</span> <span class="qa-dim">id '
        f"<code>{esc(row.doc_id)}</code> · {row.sentences} sentence{plural}{file}</span></div>"
    )


def _titles(docs: Sequence[qa.DocumentInfo]) -> str:
    return ", ".join(f"“{esc(clip(d.title, 80))}”" for d in docs)


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
        f'<li class="qa-failed"><span class="qa-file">{esc(f.source)}</span>: '
        f"{esc(f.reason.removeprefix(f'{f.source}: '))}</li>"
        for f in report.failures
    )
    head = ""
    if report.created:
        head = f"Created {esc(where)} (the bundled article plus your files); it is now the active index."
    elif report.switched:
        head = f"Added to {esc(where)}, which is now the active index."
    elif report.added or report.replaced:
        head = f"Updated {esc(where)}."
    n_failed = len(report.failures)
    if n_failed:
        what = "file was" if n_failed == 1 else "files were"
        lines.append(f'<li class="qa-failed-head">{n_failed} {what} not added:<ul>{failed}</ul></li>')
    head_html = f"<p>{head}</p>" if head else ""
    return f'<div class="qa-upload-report">{head_html}<ul>{"".join(lines)}</ul></div>'

