"""Sentences: splitting a document's text into sentence spans with exact character offsets.

:func:`split` returns ``(start, end)`` pairs such that ``text[start:end]`` is a sentence with no surrounding
whitespace; spans are non-empty, increasing and disjoint, and every non-space character of ``text`` lies in
exactly one span (nothing is dropped).

syntok (chosen over pysbd and blingfire by ``benchmarks/segmenters.py``: exact offsets, every trap
of the bundled article handled, fewest SQuAD answers cut in two) runs one line at a time, because
documents here put one paragraph per line and a line break is always a boundary.
Around it sit three repairs it cannot do alone:

* a line that opens with closing quotes (``’’ Of course, ...``) hands them back to the sentence they close
  on the previous line;
* a fragment with no letter or digit (a stray quote or dash) joins its neighbour instead of standing alone;
* a sentence longer than :data:`MAX_CHARS` is cut at white space, since the model would truncate it anyway.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

__all__ = ["MAX_CHARS", "SEGMENTER", "split"]

#: Longest sentence kept whole (all-MiniLM-L6-v2 reads 256 word pieces, roughly 1,000 characters).
MAX_CHARS = 1000

_ENGINE = "syntok"
#: Recorded in index manifests: an index built with another segmenter (or repair rules) is rebuilt.
SEGMENTER: dict[str, Any] = {"name": _ENGINE, "version": version(_ENGINE), "rules": 1}

_WORD = re.compile(r"\w")
_CLOSING_QUOTES = re.compile(r"[’”\"'»]+(?=\s|$)")
_LINE = re.compile(r"[^\n]+")

Span = tuple[int, int]


def _segment_line(line: str) -> list[Span]:
    """Raw spans of syntok on one line.

    ``analyze`` (not ``process``, which rewrites "n't" and hyphenation) yields tokens carrying their offsets
    into ``line``, so a sentence runs from its first token's offset to the end of its last token.
    """
    import syntok.segmenter

    spans = []
    for paragraph in syntok.segmenter.analyze(line):
        for sentence in paragraph:
            tokens = [t for t in sentence if t.value]
            if tokens:
                span = _trim(line, tokens[0].offset, tokens[-1].offset + len(tokens[-1].value))
                if span[0] < span[1]:
                    spans.append(span)
    return _join_semicolons(line, spans)


def _join_semicolons(line: str, spans: list[Span]) -> list[Span]:
    # syntok ends sentences at ';' too; a clause after a semicolon rarely stands alone, and SQuAD/ReQA keep it.
    out: list[Span] = []
    for span in spans:
        if out and line[out[-1][1] - 1] == ";":
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def _trim(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _fill_gaps(line: str, spans: list[Span]) -> list[Span]:
    """Make sure no non-space character of ``line`` falls outside a span (some segmenters drop some)."""
    out: list[Span] = []
    pos = 0
    for start, end in sorted(spans):
        start = max(start, pos)
        if start >= end:
            continue
        gap = _trim(line, pos, start)
        if gap[0] < gap[1]:
            out.append(gap)
        out.append((start, end))
        pos = end
    tail = _trim(line, pos, len(line))
    if tail[0] < tail[1]:
        out.append(tail)
    return out


def _merge_wordless(spans: list[Span], text: str) -> list[Span]:
    out: list[Span] = []
    for span in spans:
        if not _WORD.search(text[span[0] : span[1]]) and out:
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    if len(out) > 1 and not _WORD.search(text[out[0][0] : out[0][1]]):
        out[0:2] = [(out[0][0], out[1][1])]
    return out


def _cut_long(text: str, span: Span) -> list[Span]:
    start, end = span
    pieces = []
    while end - start > MAX_CHARS:
        cut = text.rfind(" ", start + MAX_CHARS // 2, start + MAX_CHARS)
        cut = cut if cut > start else start + MAX_CHARS
        pieces.append(_trim(text, start, cut))
        start = _trim(text, cut, end)[0]
    pieces.append((start, end))
    return [p for p in pieces if p[0] < p[1]]


def split(text: str) -> list[Span]:
    """Split ``text`` into sentence spans ``(start, end)``, offsets into ``text``.

    Example:
        >>> from qa.sentences import split
        >>> text = "Special Assistant to the PM, Tariq Fatmi, met US officials. Talks went well."
        >>> [text[a:b] for a, b in split(text)]
        ['Special Assistant to the PM, Tariq Fatmi, met US officials.', 'Talks went well.']
    """
    spans: list[Span] = []
    for match in _LINE.finditer(text):
        offset, line = match.start(), match.group()
        if not line.strip():
            continue
        local = _fill_gaps(line, _segment_line(line))
        local = [(a + offset, b + offset) for a, b in local]
        quote = _CLOSING_QUOTES.match(line.lstrip())
        if quote and spans and local:
            # ’’ opening a line closes the quotation that ended the previous line: give it back.
            lead = len(line) - len(line.lstrip())
            quote_end = offset + lead + quote.end()
            spans[-1] = (spans[-1][0], quote_end)
            first = _trim(text, quote_end, local[0][1])
            local = ([first] if first[0] < first[1] else []) + local[1:]
        spans.extend(_merge_wordless(local, text))
    return [piece for span in spans for piece in _cut_long(text, span)]
