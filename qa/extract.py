"""Extraction: the plain text (with page starts, headings and a title) of one file's bytes, by format.

Every extractor returns an :class:`Extracted` whose ``text`` becomes ``Document.text``, the text every citation
offset points into. Paragraphs are put on separate lines (the sentence splitter treats every line break as a
boundary) and lines inside a paragraph are joined, so a PDF's layout never cuts a sentence in two.

* ``.txt`` is kept as is (only a byte-order mark is dropped and newlines are normalised).
* ``.md`` is kept as is, ``#`` lines included, so offsets into the file stay exact; markdown-it-py finds the
  headings (ATX and setext, never a ``#`` inside a code block) and the title (the first level-1 heading).
* ``.html``/``.htm`` goes through the standard library's ``html.parser``. ``benchmarks/ingest_extract.py``
  fed the same text builder from lxml and BeautifulSoup: identical text and titles on 157 installed manual
  pages, every trap passed (BeautifulSoup's html.parser builder splits misnested ``<b><p>``), about 3x faster
  than BeautifulSoup and within 2x of lxml, with no dependency. Scripts, styles, navigation, page banners and
  footers, hidden elements and forms' widgets are dropped; every block element ends a line; ``<h1>``-``<h6>``
  are recorded as headings.
* ``.pdf`` goes through pypdf; text fragments carry their positions, so lines are grouped into paragraphs by
  vertical gaps, font changes, indents, bullets and short last lines, and a paragraph's lines are joined
  (a word hyphenated at a line end is rejoined). Bare page numbers and lines repeated at the top or bottom of
  several pages (running heads) are dropped, unless that leaves nothing (the same text on every page is the
  document's text). Each page's start offset is recorded; bookmarks become headings. Pages are read one at a
  time, and reading stops once their text passes ``max_document_chars``.
* ``.docx`` goes through python-docx: paragraphs and table rows in document order, ``Heading``/``Title``
  styled paragraphs recorded as headings. Its zip is first inflated as a stream and checked against the
  limits (:func:`qa.limits.check_zip`), so a zip bomb or a paragraph bomb never reaches python-docx.

Every document's text is held to the limits on what one document may cost (:mod:`qa.limits`: characters,
sentences), by :func:`extract` on the text each extractor gives, and while reading where that saves work.

Errors are :class:`~qa.errors.DocumentError` messages that name the file and say what to do.
"""

from __future__ import annotations

import codecs
import functools
import io
import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DocumentError
from .limits import Limits, check_text, check_zip, refusal

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = [
    "EXTRACTORS",
    "Extracted",
    "decode_text",
    "extract",
    "extract_docx",
    "extract_html",
    "extract_markdown",
    "extract_pdf",
    "extract_text",
    "meaningful_title",
]


@dataclass(frozen=True)
class Extracted:
    """The plain text of one file, with what is known about its structure.

    Attributes:
        text: the plain text; paragraphs on separate lines.
        title: the document's own title (metadata, ``<title>``, first heading), or None when it has none.
        pages: the offset in ``text`` where each page starts (page n starts at ``pages[n - 1]``); empty when the
            format has no pages.
        headings: ``(offset, heading)`` pairs, sorted by offset: the heading's section starts at ``offset``.
    """

    text: str
    title: str | None = None
    pages: tuple[int, ...] = ()
    headings: tuple[tuple[int, str], ...] = ()


# --------------------------------------------------------------------------------------------------------------
# Text files
# --------------------------------------------------------------------------------------------------------------

#: File signatures of common binary formats, to say what a mis-named file really is.
_MAGIC = (
    (b"%PDF-", "a PDF (rename it to .pdf)"),
    (b"PK\x03\x04", "a ZIP archive, such as a .docx (rename a Word file to .docx)"),
    (b"\xd0\xcf\x11\xe0", "an old Office (.doc/.xls) or password-protected Office file (save it as .docx)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
)


def _binary_error(data: bytes, name: str) -> DocumentError:
    kind = next((what for magic, what in _MAGIC if data.startswith(magic)), None)
    if kind:
        return DocumentError(f"{name}: looks like binary data ({kind}), not text")
    return DocumentError(f"{name}: looks like binary data, not text; convert it to UTF-8 text first")


def decode_text(data: bytes, name: str, *, fallback_encoding: str | None = None) -> str:
    """Decode a text file's bytes as UTF-8 (or UTF-16 with a byte-order mark), with ``\\n`` newlines.

    Args:
        data: the file's bytes.
        name: the file's name, for error messages.
        fallback_encoding: an encoding the file declares for itself (an HTML ``<meta charset>``), used when
            the bytes are not UTF-8.

    Returns:
        The text, without a byte-order mark, with ``\\r\\n`` and ``\\r`` turned into ``\\n``.

    Raises:
        DocumentError: the bytes are binary data or not valid in the encoding.

    Example:
        >>> decode_text(b"\\xef\\xbb\\xbfOne.\\r\\nTwo.", "a.txt")
        'One.\\nTwo.'
    """
    text: str | None = None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            text = None  # not UTF-16 after all: judged as UTF-8 below
    if text is None:
        if b"\x00" in data or data.startswith(tuple(magic for magic, _ in _MAGIC)):
            raise _binary_error(data, name)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if fallback_encoding:
                try:
                    text = data.decode(fallback_encoding)
                except (UnicodeDecodeError, LookupError):
                    text = None
            if text is None:
                raise DocumentError(
                    f"{name}: not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8"
                ) from None
    # Newlines are normalised so offsets do not depend on the OS the file was written on.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extract_text(data: bytes, name: str) -> Extracted:
    """A plain-text file: its decoded text, unchanged.

    Example:
        >>> extract_text(b"Cats sleep.", "a.txt").text
        'Cats sleep.'
    """
    return Extracted(decode_text(data, name))


@functools.cache
def _markdown_parsers() -> tuple[MarkdownIt, MarkdownIt]:
    """A block-only CommonMark parser (to find headings, 3x faster) and a full one (for headings' inline text)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").disable(["inline", "text_join"]), MarkdownIt("commonmark")


def extract_markdown(data: bytes, name: str, *, limits: Limits | None = None) -> Extracted:
    """A Markdown file: its text unchanged (``#`` lines included), with its headings and title.

    Example:
        >>> e = extract_markdown(b"# Notes\\n\\nIntro.\\n\\n## Results\\n\\nIt works.\\n", "n.md")
        >>> e.title, e.headings
        ('Notes', ((0, 'Notes'), (17, 'Results')))
    """
    text = decode_text(data, name)
    check_text(text, name, (limits or Limits()).resolved())  # before the parser's work, not after
    line_starts = [0]
    for match in re.finditer("\n", text):
        line_starts.append(match.end())
    blocks, inline = _markdown_parsers()
    tokens = blocks.parse(text)
    headings: list[tuple[int, str]] = []
    title = None
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or token.map is None or i + 1 >= len(tokens):
            continue
        children = inline.parseInline(tokens[i + 1].content)[0].children or []
        heading = _collapse("".join(
            " " if t.type in ("softbreak", "hardbreak") else t.content
            for t in children
            if t.type in ("text", "code_inline", "softbreak", "hardbreak")
        ))
        if not heading:
            continue
        headings.append((line_starts[token.map[0]], heading))
        if title is None and token.tag == "h1":
            title = heading
    return Extracted(text, title, headings=tuple(headings))


# --------------------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")


def _collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


#: Elements whose content is never document text.
_DROPPED = frozenset({
    "script", "style", "noscript", "template", "nav", "svg", "math", "canvas", "iframe", "object", "embed",
    "select", "button", "textarea", "datalist", "dialog", "head", "title",
})
#: What may stand inside ``<head>``: any other element closes it (as browsers do when ``</head>`` is missing).
_HEAD_CONTENT = frozenset({"title", "meta", "link", "style", "script", "base", "noscript", "template"})
#: Landmarks that are page furniture (banner, site footer, sidebar) only outside sectioning content.
_FURNITURE = frozenset({"header", "footer", "aside"})
_SECTIONING = frozenset({"article", "main", "section"})
_HIDDEN_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
#: Elements that start and end a line of text.
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog", "dir",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr", "html",
    "legend", "li", "main", "menu", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
    "tr", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "br", "option", "nav", "noscript",
})
_CELLS = frozenset({"td", "th"})
_VOID = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
})
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


class HtmlText:
    """Turns a stream of HTML events (start tag, end tag, text) into lines of plain text with headings.

    It is fed by a parser (the standard library's, here; ``benchmarks/ingest_extract.py`` feeds it from lxml
    and BeautifulSoup too, to compare them) and keeps a stack of open elements, so an unclosed or stray tag
    only affects its own element.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._buf: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, dropped)
        self._dropped = 0
        self._pre = 0
        self._row_has_cell = False
        self._heading: list[str] | None = None
        self._heading_line = 0
        self._heading_tag = ""
        self._headings: list[tuple[int, str]] = []
        self._title: list[str] | None = None
        self.title: str | None = None
        self.first_h1: str | None = None

    def start(self, tag: str, attrs: Sequence[tuple[str, str | None]]) -> None:
        """An element starts."""
        tag = tag.lower()
        if tag == "title" and self.title is None and self._title is None and not self._dropped_outside_head():
            self._title = []
        if tag not in _HEAD_CONTENT and self._stack and self._stack[-1][0] == "head":
            self.end("head")
        if tag in _VOID:
            if tag in ("br", "hr") and not self._dropped:
                self._break()
            return
        dropped = self._is_dropped(tag, attrs)
        if not self._dropped and tag in _BLOCKS:
            self._break()  # before a dropped block too, so the text around it is not glued together
            if tag == "tr":
                self._row_has_cell = False
        self._stack.append((tag, dropped))
        if dropped:
            self._dropped += 1
        if self._dropped:
            return
        if tag in _CELLS:
            if self._row_has_cell and "".join(self._buf).strip():
                self._buf.append(" | ")
            self._row_has_cell = True
        if tag == "pre":
            self._pre += 1
        if tag in _HEADINGS:
            self._heading = []
            self._heading_tag = tag
            self._heading_line = len(self.lines)

    def end(self, tag: str) -> None:
        """An element ends (a stray end tag is ignored; an end tag closes the elements left open inside it)."""
        tag = tag.lower()
        if tag == "title" and self._title is not None:
            self.title = _collapse("".join(self._title)) or None
            self._title = None
        if tag in _VOID or not any(t == tag for t, _ in self._stack):
            if tag in ("br", "p") and not self._dropped:
                self._break()  # </br> and a stray </p> still end a line, as browsers do
            return
        if tag not in _BLOCKS and tag not in _CELLS and tag not in _DROPPED and tag not in _FURNITURE:
            # An inline element (</b>) closes only itself, even around blocks opened inside it.
            i = max(i for i, (t, _) in enumerate(self._stack) if t == tag)
            self._close(*self._stack.pop(i))
            return
        while self._stack:
            open_tag, dropped = self._stack.pop()
            self._close(open_tag, dropped)
            if open_tag == tag:
                break

    def data(self, text: str) -> None:
        """Text inside the current element."""
        if self._title is not None:
            self._title.append(text)
        if self._dropped:
            return
        self._buf.append(text)
        if self._heading is not None:
            self._heading.append(text)

    def finish(self) -> Extracted:
        """Close everything still open and return the text, title and headings."""
        while self._stack:
            self._close(*self._stack.pop())
        self._break()
        offsets, offset = [], 0
        for line in self.lines:
            offsets.append(offset)
            offset += len(line) + 1
        headings = tuple((offsets[i], h) for i, h in self._headings if i < len(self.lines))
        return Extracted("\n".join(self.lines), self.title or self.first_h1, headings=headings)

    def _dropped_outside_head(self) -> bool:
        return any(dropped and tag != "head" for tag, dropped in self._stack)

    def _is_dropped(self, tag: str, attrs: Sequence[tuple[str, str | None]]) -> bool:
        if tag in _DROPPED:
            return True
        if tag in _FURNITURE and not any(t in _SECTIONING for t, _ in self._stack):
            return True
        for key, value in attrs:
            key = key.lower()
            if key == "hidden":
                return True
            if value is None:
                continue
            if key == "aria-hidden" and value.strip().lower() == "true":
                return True
            if key == "role" and value.strip().lower() in _HIDDEN_ROLES:
                return True
            if key == "style" and _DISPLAY_NONE.search(value):
                return True
        return False

    def _close(self, tag: str, dropped: bool) -> None:
        if self._dropped:
            if dropped:
                self._dropped -= 1
            return
        if tag in _BLOCKS:
            self._break()
        if tag == "pre":
            self._pre -= 1

    def _break(self) -> None:
        """End the current line (and the heading being collected, if any)."""
        raw = "".join(self._buf)
        self._buf = []
        if self._pre:
            self.lines.extend(line.rstrip() for line in raw.split("\n") if line.strip())
        else:
            line = _collapse(raw)
            if line:
                self.lines.append(line)
        if self._heading is not None:
            heading = _collapse("".join(self._heading))
            self._heading = None
            if heading and self._heading_line < len(self.lines):
                self._headings.append((self._heading_line, heading))
                if self.first_h1 is None and self._heading_tag == "h1":
                    self.first_h1 = heading


class _StdlibHtml(HTMLParser):
    def __init__(self, sink: HtmlText) -> None:
        super().__init__(convert_charrefs=True)
        self.sink = sink

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.sink.start(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.sink.end(tag)

    def handle_data(self, data: str) -> None:
        self.sink.data(data)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


def html_to_text(markup: str) -> Extracted:
    """The plain text of an HTML string (see :func:`extract_html`).

    Example:
        >>> html_to_text("<title>T</title><nav>Home</nav><h1>Cats</h1><p>Cats <b>sleep</b>.<script>x()</script>")
        Extracted(text='Cats\\nCats sleep.', title='T', pages=(), headings=((0, 'Cats'),))
    """
    sink = HtmlText()
    parser = _StdlibHtml(sink)
    parser.feed(markup)
    parser.close()
    return sink.finish()


def extract_html(data: bytes, name: str) -> Extracted:
    """An HTML file: the text of its content, one block (paragraph, list item, table row, heading) a line.

    The title is the ``<title>``, else the first ``<h1>``. Bytes that are not UTF-8 are decoded with the
    charset the page declares in a ``<meta>`` tag.
    """
    return html_to_text(decode_text(data, name, fallback_encoding=_declared_charset(data)))


# --------------------------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------------------------

_LIGATURES = str.maketrans({
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
    "\u00a0": " ",
})
_SOFT_HYPHEN = re.compile("\u00ad(?!$)")  # invisible unless it ends a line, where it marks a hyphenated word
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BULLET = re.compile(r"^(?:[•▪◦‣●○■□➢►*-]\s|\(?\d{1,3}[.)]\s|\(?[a-z]\)\s)")
_TERMINAL = re.compile(r"""[.!?:;]["'”’)\]]*$""")
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:/|of)\s*\d{1,4})?$", re.IGNORECASE)
_HYPHENATED = re.compile(r"[^\W\d_][-\u00ad]$")


@dataclass
class _Line:
    text: str
    x: float | None
    y: float | None
    size: float


def _page_lines(page: Any) -> list[_Line]:
    """The lines of one PDF page in pypdf's reading order, each with its position and font size when known."""
    lines: list[_Line] = []
    parts: list[str] = []
    pos: list[float | None] = [None, None, 0.0]  # x, y, font size of the current line's first text

    def visit(text: str, cm: Sequence[float], tm: Sequence[float], font: Any, size: float) -> None:
        pieces = text.split("\n")
        for k, piece in enumerate(pieces):
            if k:
                lines.append(_Line("".join(parts), pos[0], pos[1], pos[2] or 0.0))
                parts.clear()
                pos[0] = pos[1] = None
                pos[2] = 0.0
            if piece.strip():
                if pos[1] is None and k == 0:
                    # Position in user space: the text matrix's origin through the current transformation matrix.
                    pos[0] = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                    pos[1] = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                scale = (tm[2] ** 2 + tm[3] ** 2) ** 0.5 * (cm[2] ** 2 + cm[3] ** 2) ** 0.5
                pos[2] = max(pos[2] or 0.0, abs(size * scale) if scale else abs(size))
            parts.append(piece)

    page.extract_text(visitor_text=visit)
    lines.append(_Line("".join(parts), pos[0], pos[1], pos[2] or 0.0))
    for line in lines:
        line.text = _SOFT_HYPHEN.sub("", _collapse(_CONTROL.sub(" ", line.text.translate(_LIGATURES))))
    return [line for line in lines if line.text]


def _strip_running_lines(pages: list[list[_Line]]) -> None:
    """Drop bare page numbers and running heads/feet (the same line at the top or bottom of several pages)."""
    def edges(lines: list[_Line]) -> list[int]:
        # The first and last line, and the second and second-to-last of a page long enough to have a body.
        ends = (0, 1, len(lines) - 2, len(lines) - 1) if len(lines) > 4 else (0, len(lines) - 1)
        return sorted({i for i in ends if 0 <= i < len(lines)})

    def key(text: str) -> str:
        return re.sub(r"\d+", "#", text.lower())

    seen: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    for lines in pages:
        for i in edges(lines):
            seen.setdefault(key(lines[i].text), set()).add(lines[i].text)
        counts.update({key(lines[i].text) for i in edges(lines)})
    # The same edge line (digits aside) on three pages, or on two with only its numbers changing (a page
    # number), is a running head or foot: "Chapter 2: Naming 7".
    running = {k for k, n in counts.items() if n >= 3 or (n >= 2 and len(seen[k]) > 1)}
    for lines in pages:
        drop = {i for i in edges(lines) if key(lines[i].text) in running}
        drop |= {i for i in (0, len(lines) - 1) if 0 <= i < len(lines) and _PAGE_NUMBER.match(lines[i].text)}
        for i in sorted(drop, reverse=True):
            del lines[i]


def _paragraphs(lines: list[_Line]) -> tuple[list[str], bool]:
    """Group a page's lines into paragraphs and join each paragraph's lines into one.

    Returns:
        The paragraphs, and whether the page's last line is a full line (a paragraph may go on overleaf).
    """
    if not lines:
        return [], False
    gaps = [
        round(a.y - b.y, 1)
        for a, b in itertools.pairwise(lines)
        if a.y is not None and b.y is not None and 0.5 * max(a.size, 1) < a.y - b.y < 3 * max(a.size, 1)
    ]
    spacing = Counter(gaps).most_common(1)[0][0] if gaps else None
    lengths = sorted(len(line.text) for line in lines)
    long_line = lengths[round(0.9 * (len(lengths) - 1))]
    paragraphs: list[str] = [lines[0].text]
    for prev, cur in itertools.pairwise(lines):
        size = max(prev.size, cur.size, 1.0)
        gap = prev.y - cur.y if prev.y is not None and cur.y is not None else None
        if gap is not None and abs(gap) < 0.35 * size and not _BULLET.match(cur.text):
            paragraphs[-1] += " " + cur.text  # the same baseline: one line written in pieces
            continue
        if _new_paragraph(prev, cur, gap, spacing, long_line, size):
            paragraphs.append(cur.text)
        else:
            paragraphs[-1] = _join(paragraphs[-1], cur.text)
    return paragraphs, len(lines[-1].text) >= 0.8 * long_line


def _new_paragraph(prev: _Line, cur: _Line, gap: float | None, spacing: float | None, long_line: int,
                   size: float) -> bool:
    if prev.size and cur.size and abs(prev.size - cur.size) > 0.15 * size:
        return True  # a heading, a caption, a footnote
    if _BULLET.match(cur.text):
        return True
    if gap is not None and gap > 0 and gap > 1.35 * (spacing or 1.3 * size):
        return True  # a vertical gap wider than the line spacing
    ends = bool(_TERMINAL.search(prev.text))
    if ends and (spacing or gap or 0) > 1.8 * size:
        return True  # lines far apart (double spacing, or one-line paragraphs): a full stop ends the paragraph
    if ends and prev.x is not None and cur.x is not None and size < cur.x - prev.x < 6 * size:
        return True  # an indented first line
    short = len(prev.text) / max(long_line, 1)
    if ends and short < 0.8:
        return True  # the short last line of a paragraph
    first = cur.text[0]
    return short < 0.6 and (first.isupper() or first.isdigit()) and not prev.text.endswith((",", "-"))


def _join(paragraph: str, line: str) -> str:
    if _HYPHENATED.search(paragraph) and line[:1].islower():
        return paragraph[:-1] + line  # a word hyphenated at the end of a line
    return paragraph + " " + line


def _flatten_outline(reader: Any, outline: Any) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for item in outline:
        if isinstance(item, list):
            out.extend(_flatten_outline(reader, item))
            continue
        try:
            page = reader.get_destination_page_number(item)
            title = _collapse(str(item.title or ""))
        except Exception:  # noqa: BLE001 - a damaged bookmark is skipped, the text is still read
            continue
        if page is not None and page >= 0 and title:
            out.append((page, title))
    return out


def meaningful_title(title: object) -> str | None:
    """A metadata title worth showing, or None (empty, a file name, "Untitled", "Microsoft Word - x.doc", ...).

    Example:
        >>> meaningful_title("Annual Report 2024"), meaningful_title("Microsoft Word - draft3.docx")
        ('Annual Report 2024', None)
    """
    if not isinstance(title, str):
        return None
    text = _collapse(title)
    lowered = text.lower()
    if len(text) < 3 or not re.search(r"[^\W\d_]", text):
        return None
    if lowered in {"untitled", "untitled document", "title", "document", "no title", "none", "null", "slide 1"}:
        return None
    if lowered.startswith(("microsoft word -", "microsoft powerpoint -", "untitled-")):
        return None
    if re.search(r"\.(pdf|docx?|rtf|odt|tex|dvi|ps|indd|pages|pptx?|xlsx?|txt|html?)$", lowered):
        return None
    return text


def _pdf_text(pages: list[list[_Line]]) -> tuple[str, list[int]]:
    """The text of a PDF's pages (their lines grouped into paragraphs, one a line) and each page's start offset."""
    text, starts, full = "", [], False
    for lines in pages:
        paragraphs, next_full = _paragraphs(lines)
        if text and paragraphs:
            first = paragraphs[0]
            # A sentence that runs on to the next page (a full last line, no full stop) stays one line.
            continues = full and not _TERMINAL.search(text) and first[:1].islower()
            if continues and _HYPHENATED.search(text):
                text = text[:-1]
                starts.append(len(text))
            else:
                text += " " if continues else "\n"
                starts.append(len(text))
        else:
            starts.append(len(text))
        text += "\n".join(paragraphs)
        full = next_full if paragraphs else full
    return text, starts


def extract_pdf(data: bytes, name: str, *, limits: Limits | None = None) -> Extracted:
    """A PDF: its pages' text, paragraph by paragraph, with each page's start offset and its bookmarks.

    Pages are read one at a time and reading stops as soon as their text passes ``max_document_chars``.

    Raises:
        DocumentError: the PDF is damaged, password-protected, has no text (a scan: it needs OCR), or has more
            text than ``max_document_chars``.
    """
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    most = (limits or Limits()).resolved().max_document_chars or 0
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # permissions-only PDFs open with the empty user password
            except DependencyError:
                raise DocumentError(
                    f"{name}: the PDF is encrypted with AES and the 'cryptography' package is missing; "
                    "install it (pip install cryptography) or remove the encryption"
                ) from None
            if not opened:
                raise DocumentError(f"{name}: the PDF is password-protected; remove the password and add it again")
        pages: list[list[_Line]] = []
        chars = 0
        for number, pdf_page in enumerate(reader.pages, start=1):
            pages.append(_page_lines(pdf_page))
            chars += sum(len(line.text) + 1 for line in pages[-1])
            if chars > most:
                raise refusal(name, f"holds more than {most:,} characters of text by page {number:,} of "
                              f"{len(reader.pages):,}", "max_document_chars", most)
    except DocumentError:
        raise
    except FileNotDecryptedError:
        raise DocumentError(f"{name}: the PDF is password-protected; remove the password and add it again") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on damaged files
        raise DocumentError(
            f"{name}: not a readable PDF ({type(exc).__name__}: {exc}); it may be damaged: re-export or re-save it"
        ) from None
    if not pages:
        raise DocumentError(f"{name}: the PDF has no pages")
    unstripped = [list(lines) for lines in pages]
    _strip_running_lines(pages)
    text, starts = _pdf_text(pages)
    if not text.strip() and any(unstripped):
        # Every line repeats at the edge of several pages (the same text on every page): that text is the
        # document, not a running head.
        text, starts = _pdf_text(unstripped)
    if not text.strip():
        raise DocumentError(
            f"{name}: the PDF has no extractable text (it looks scanned: pages of images); "
            "run OCR on it first (for example with ocrmypdf) and add the result"
        )
    headings: list[tuple[int, str]] = []
    try:
        outline = _flatten_outline(reader, reader.outline)
    except Exception:  # noqa: BLE001 - a damaged outline only loses the headings
        outline = []
    for page, heading in outline:
        if page >= len(starts):
            continue
        end = starts[page + 1] if page + 1 < len(starts) else len(text)
        pattern = r"\s*".join(re.escape(c) for c in heading.replace(" ", ""))
        found = re.compile(pattern, re.IGNORECASE).search(text, starts[page], end)
        headings.append((found.start() if found else starts[page], heading))
    headings.sort(key=lambda h: h[0])
    metadata_title = None
    try:
        metadata_title = meaningful_title(reader.metadata.title if reader.metadata else None)
    except Exception:  # noqa: BLE001 - damaged metadata only loses the title
        metadata_title = None
    return Extracted(text, metadata_title, pages=tuple(starts), headings=tuple(headings))


# --------------------------------------------------------------------------------------------------------------
# DOCX
# --------------------------------------------------------------------------------------------------------------


def extract_docx(data: bytes, name: str, *, limits: Limits | None = None) -> Extracted:
    """A Word (.docx) file: its paragraphs and table rows in order, with headings and a title.

    The title is the document's core-properties title, else its first ``Title`` or ``Heading`` paragraph.
    Before python-docx opens it (it reads every part into memory and parses the XML whole), the zip is checked
    against the limits by :func:`qa.limits.check_zip`, inflating it as a stream: a zip bomb or a million
    paragraphs is refused in bounded memory.

    Raises:
        DocumentError: the file is not a readable .docx (an old .doc, password-protected, damaged), or passes
            a limit (unpacked size, compression ratio, XML elements, paragraphs, characters, sentences).
    """
    import docx
    from docx.table import Table

    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise DocumentError(
            f"{name}: this is an old Word (.doc) or password-protected file; "
            "save it as an unprotected .docx and add it again"
        )
    limits = (limits or Limits()).resolved()
    most_chars, most_lines = limits.max_document_chars or 0, limits.max_document_sentences or 0
    try:
        check_zip(data, name, limits, kind="Word")
        document = docx.Document(io.BytesIO(data))
        # Style names by id, each looked up once: Paragraph.style resolves an unstyled paragraph's default style
        # by scanning every style, which took most of the time on real files.
        style_names: dict[str, str] = {}

        def style_name(style_id: str | None) -> str:
            if not style_id or '"' in style_id:
                return ""
            if style_id not in style_names:
                style = document.styles.element.get_by_id(style_id)
                # Built-in names are stored in lower case ("heading 1") whatever the language of Word.
                style_names[style_id] = (style.name_val or "") if style is not None else ""
            return style_names[style_id]
        lines: list[str] = []
        headings: list[tuple[int, str]] = []
        styled_title: str | None = None
        offset = 0
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                new = [_docx_row(row) for row in block.rows]
                heading = None
            else:
                new = [_collapse(part) for part in block.text.split("\n")]
                style = style_name(block._p.style).lower()
                is_heading = style.startswith("heading") or style == "title"
                heading = _collapse(block.text) if is_heading else None
                if heading and styled_title is None:
                    styled_title = heading
            new = [line for line in new if line]
            if heading and new:
                headings.append((offset, heading))
            for line in new:
                lines.append(line)
                offset += len(line) + 1
            if offset > most_chars or len(lines) > most_lines:  # line breaks inside paragraphs make more lines
                check_text("\n".join(lines), name, limits)
        core_title = meaningful_title(document.core_properties.title)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds of errors on damaged files
        raise DocumentError(
            f"{name}: not a readable .docx file ({type(exc).__name__}: {exc}); open it in Word or LibreOffice "
            "and save it again as .docx"
        ) from None
    return Extracted("\n".join(lines), core_title or styled_title, headings=tuple(headings))


def _docx_row(row: Any) -> str:
    cells: list[str] = []
    seen: set[int] = set()
    for cell in row.cells:
        if id(cell._tc) in seen:  # a merged cell is listed once per grid column it spans
            continue
        seen.add(id(cell._tc))
        text = _collapse(cell.text)
        if text:
            cells.append(text)
    return " | ".join(cells)


# --------------------------------------------------------------------------------------------------------------

#: The extractor of each supported suffix (JSONL, a list of documents, is read by :mod:`qa.documents`).
EXTRACTORS: dict[str, Callable[[bytes, str], Extracted]] = {
    ".txt": extract_text,
    ".md": extract_markdown,
    ".markdown": extract_markdown,
    ".html": extract_html,
    ".htm": extract_html,
    ".pdf": extract_pdf,
    ".docx": extract_docx,
}


class _Checked(Protocol):
    def __call__(self, data: bytes, name: str, *, limits: Limits | None = None) -> Extracted: ...


#: The extractors that check the limits while they read (the others are checked on the text they give).
_CHECKED_WHILE_READING: dict[object, _Checked] = {f: f for f in (extract_markdown, extract_pdf, extract_docx)}


def extract(data: bytes, *, suffix: str, name: str, limits: Limits | None = None) -> Extracted:
    """Extract the text of a file's bytes by its suffix, within the limits on what one document may cost.

    Args:
        data: the file's bytes.
        suffix: the file's extension with its dot, such as ``".pdf"`` (any case).
        name: the file's name or path, for error messages.
        limits: what the document may cost (see :class:`qa.limits.Limits`); ``None`` fields use the settings.

    Raises:
        DocumentError: the suffix is not supported, the file cannot be read as that format, or it passes a
            limit (the message names the limit and the ``QA_*`` variable that raises it).

    Example:
        >>> extract(b"<p>Hi there.</p>", suffix=".HTML", name="hi.html").text
        'Hi there.'
    """
    extractor = EXTRACTORS.get(suffix.lower())
    if extractor is None:
        raise DocumentError(
            f"{name}: unsupported file type {suffix!r}; supported: {', '.join(sorted(EXTRACTORS))} and .jsonl"
        )
    limits = (limits or Limits()).resolved()
    checked = _CHECKED_WHILE_READING.get(extractor)
    extracted = checked(data, name, limits=limits) if checked is not None else extractor(data, name)
    check_text(extracted.text, name, limits)
    return extracted
