"""Limits on what one document may cost, checked while it is read, before the expensive work.

A hostile or broken file must be refused quickly and in bounded memory, not after the parsers have built it:

* a zip container (``.docx`` today; any zip-based format can use :func:`check_zip`) is inspected before its
  parser opens it: the sizes its directory declares, then every member is inflated as a stream (1 MB at a
  time, counted and thrown away) until the real unpacked bytes, the compression ratio, the XML elements or the
  paragraphs pass their limit. The directory's sizes are not trusted (they can lie): each member is inflated
  for as long as its compressed bytes last, whatever size it claims;
* the text of every document is held to :attr:`Limits.max_document_chars` and, through a cheap lower bound
  on its sentences (:func:`sentences_at_least`), to :attr:`Limits.max_document_sentences`; a PDF is held to
  the character limit page by page.

Each limit is a :class:`~qa.config.Settings` field (``QA_MAX_*``); a refusal is a
:class:`~qa.errors.DocumentError` naming the file, the limit, its value and the variable that raises it.
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

from .config import Settings, get_settings
from .errors import DocumentError
from .sentences import MAX_CHARS

__all__ = ["MAX_ZIP_MEMBERS", "Limits", "check_text", "check_zip", "refusal", "sentences_at_least", "xml_counts"]

_MB = 1024 * 1024
#: Bytes inflated at a time while a zip member is checked: memory stays at about this, whatever the member.
_CHUNK = _MB
#: Compressed bytes fed to the inflater at a time.
_FEED = 64 * 1024
#: A member unpacking to less than this is never refused for its ratio: it cannot cost much, and small XML
#: files full of repeated markup legitimately compress very well.
_RATIO_FLOOR = _MB
#: More members than this is no document (a .docx has tens, hundreds with many images); Python's zipfile
#: builds an object per member of the directory before anything else can be checked, so this is counted first.
MAX_ZIP_MEMBERS = 10_000
#: A paragraph element, in any namespace prefix (``<w:p>``, ``<w:p w:rsidR=..>``, ``<w:p/>``, ``<text:p>``).
_PARAGRAPH = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,31}:)?p[\s/>]")
_CARRY = 40  # longer than any _PARAGRAPH match, so a tag cut by a chunk boundary is still counted once
_BLANK_LINE = re.compile(r"^[^\S\n]*$", re.MULTILINE)
_LONG_LINE = re.compile(f"[^\\n]{{{MAX_CHARS + 1},}}")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Limits:
    """What one document may cost; each ``None`` field means "use the setting" (see :meth:`resolved`).

    Attributes:
        max_unpacked_mb: most MB a zip-based file may unpack to (``QA_MAX_UNPACKED_MB``).
        max_zip_ratio: most a zip member over 1 MB may unpack to, as a multiple of its packed size.
        max_xml_elements: most XML elements (start tags) in a zip-based file's members.
        max_document_chars: most characters of text in a document.
        max_document_sentences: most sentences in a document (and paragraphs in a .docx).

    Example:
        >>> Limits(max_document_chars=1000).resolved(Settings()).max_document_sentences
        50000
    """

    max_unpacked_mb: float | None = None
    max_zip_ratio: float | None = None
    max_xml_elements: int | None = None
    max_document_chars: int | None = None
    max_document_sentences: int | None = None

    def resolved(self, settings: Settings | None = None) -> Limits:
        """Every limit filled in: the ones given here, the others from ``settings`` (default: the environment).

        Raises:
            ConfigError: a limit is out of range (zero, negative).
        """
        if settings is None and None not in asdict(self).values():
            return self
        base = (settings or get_settings()).replace(**asdict(self))  # replace validates the values given
        return Limits(**{f.name: getattr(base, f.name) for f in fields(self)})

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits ``settings`` set."""
        return cls().resolved(settings)


#: What to do about a document over a limit.
_GENUINE = "if the document is genuine, split it or raise the limit"


def refusal(name: str, what: str, setting: str, value: float, advice: str = _GENUINE) -> DocumentError:
    """The error refusing ``name`` for passing a limit: what it holds, the limit, its value, how to raise it.

    Example:
        >>> print(refusal("a.txt", "holds 12 characters, more than 10", "max_document_chars", 10))
        ... # doctest: +NORMALIZE_WHITESPACE
        a.txt: holds 12 characters, more than 10 (limit max_document_chars=10, QA_MAX_DOCUMENT_CHARS);
        if the document is genuine, split it or raise the limit
    """
    return DocumentError(
        f"{name}: {what} (limit {setting}={int(value) if value == int(value) else value}, QA_{setting.upper()}); "
        f"{advice}"
    )


def _count(value: float) -> str:
    return f"{value:,.0f}"


# ---------------------------------------------------------------------------------------------------- text


def sentences_at_least(text: str) -> int:
    """A cheap lower bound on the sentences :func:`qa.sentences.split` makes of ``text``.

    A line break always ends a sentence, so every line that is not blank holds at least one; a sentence is
    at most :data:`~qa.sentences.MAX_CHARS` characters, so a longer line holds at least its non-space
    characters divided by that.

    Example:
        >>> sentences_at_least("One. Two.\\n\\n  \\nThree.\\n" + "word " * 600)  # the last line: 2,400 letters
        5
    """
    lines = text.count("\n") + 1 - len(_BLANK_LINE.findall(text))
    for match in _LONG_LINE.finditer(text):
        line = match.group()
        visible = len(line) - sum(len(s) for s in _SPACE.findall(line))
        lines += max(0, -(-visible // MAX_CHARS) - 1)
    return lines


def check_text(text: str, name: str, limits: Limits) -> None:
    """Refuse a document's text that passes the character or sentence limit (``limits`` resolved).

    Raises:
        DocumentError: the text has more than ``max_document_chars`` characters, or surely more than
            ``max_document_sentences`` sentences.

    Example:
        >>> check_text("Short.", "a.txt", Limits.of(Settings()))  # within the limits: nothing happens
        >>> check_text("One.\\nTwo.\\nThree.", "a.txt", Limits(max_document_sentences=2).resolved(Settings()))
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        qa.errors.DocumentError: a.txt: holds at least 3 sentences, more than 2 ...
    """
    chars, most = len(text), limits.max_document_sentences
    assert limits.max_document_chars is not None and most is not None
    if chars > limits.max_document_chars:
        raise refusal(name, f"holds {_count(chars)} characters of text, more than {_count(limits.max_document_chars)}",
                      "max_document_chars", limits.max_document_chars)
    # Fast path: fewer lines (and long-line sentences) than the limit cannot make too many sentences.
    if text.count("\n") + 1 + chars // MAX_CHARS <= most:
        return
    found = sentences_at_least(text)
    if found > most:
        raise refusal(name, f"holds at least {_count(found)} sentences, more than {_count(most)}",
                      "max_document_sentences", most)


# ---------------------------------------------------------------------------------------------------- zip


def check_zip(data: bytes, name: str, limits: Limits, *, kind: str = "zip") -> None:
    """Check a zip container against the limits before a parser opens it; memory stays at about 1 MB.

    First the directory: the number of members, the unpacked size it declares (in total, and as a ratio of
    each member's packed size). Then each member is inflated as a stream, for as long as its compressed bytes
    last whatever size the directory claims, counting the bytes, the XML elements (start tags) and the
    paragraph elements (``<w:p>`` and the like) of XML members; the first limit passed stops it.

    Args:
        data: the file's bytes.
        name: the file's name, for messages.
        limits: resolved limits; paragraphs are held to ``max_document_sentences`` (a Word paragraph is a line,
            and every line is at least one sentence).
        kind: the format's name for messages (``"Word"``).

    Raises:
        DocumentError: a limit is passed (the message names it), or a member uses a compression method
            documents do not use. A damaged zip raises ``zipfile.BadZipFile`` or ``zlib.error``, for the caller
            to word as "damaged".

    Example:
        >>> buffer = io.BytesIO()
        >>> with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        ...     z.writestr("content.xml", "<body>" + "<p>Hi.</p>" * 10 + "</body>")
        >>> check_zip(buffer.getvalue(), "a.odt", Limits.of(Settings()))  # within the limits: nothing happens
        >>> check_zip(buffer.getvalue(), "a.odt", Limits(max_xml_elements=5).resolved(Settings()))
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        qa.errors.DocumentError: a.odt: holds more than 5 XML elements ...
    """
    assert limits.max_unpacked_mb is not None and limits.max_zip_ratio is not None
    cap_mb, ratio = limits.max_unpacked_mb, limits.max_zip_ratio
    cap = int(cap_mb * _MB)
    if data.count(b"PK\x01\x02") > MAX_ZIP_MEMBERS:  # each directory entry starts so: an upper bound
        raise DocumentError(
            f"{name}: holds more than {_count(MAX_ZIP_MEMBERS)} files inside its zip container, which no {kind} "
            "document does; it is damaged or a zip bomb"
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # BytesIO shares the bytes: no copy
        members = archive.infolist()
        declared = sum(m.file_size for m in members)
        if declared > cap:
            raise refusal(name, f"unpacks to more than {cap_mb:g} MB: its directory says {declared / _MB:,.0f} MB",
                          "max_unpacked_mb", cap_mb)
        for member in members:
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise DocumentError(
                    f"{name}: {member.filename} is compressed with method {member.compress_type}, which {kind} "
                    f"documents do not use; re-save the file as a {kind} document"
                )
            if member.file_size > _RATIO_FLOOR and member.file_size > ratio * max(member.compress_size, 1):
                raise _ratio_refusal(name, member, member.file_size, member.compress_size, ratio, declared=True)
        _Inflater(archive, data, name, limits).run(members)


def _ratio_refusal(name: str, member: zipfile.ZipInfo, unpacked: int, packed: int, ratio: float,
                   *, declared: bool = False) -> DocumentError:
    says = "unpacks, by the zip's directory, to" if declared else "unpacks to at least"
    return refusal(
        name, f"{member.filename} {says} {unpacked:,} bytes from {packed:,} compressed ones, "
        f"{unpacked / max(packed, 1):,.0f} times more, over {ratio:g} times", "max_zip_ratio", ratio,
    )


class _Inflater:
    """Inflates the members of a zip as streams, counting bytes, elements and paragraphs against the limits."""

    def __init__(self, archive: zipfile.ZipFile, data: bytes, name: str, limits: Limits) -> None:
        assert limits.max_unpacked_mb is not None and limits.max_zip_ratio is not None
        assert limits.max_xml_elements is not None and limits.max_document_sentences is not None
        self.archive, self.data, self.name = archive, data, name
        self.cap_mb, self.ratio = limits.max_unpacked_mb, limits.max_zip_ratio
        self.most_elements, self.most_paragraphs = limits.max_xml_elements, limits.max_document_sentences
        self.unpacked = self.elements = self.paragraphs = 0
        # Where each member's compressed bytes can end at the most: the next member's header, or the directory.
        starts = {m.header_offset for m in archive.infolist()}
        starts.add(getattr(archive, "start_dir", len(data)))
        self.ends = sorted(starts | {len(data)})

    def run(self, members: list[zipfile.ZipInfo]) -> None:
        for member in members:
            if not member.is_dir():
                self._member(member)

    def _member(self, member: zipfile.ZipInfo) -> None:
        header = self.data[member.header_offset : member.header_offset + 30]
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {member.filename}")
        names, extra = struct.unpack("<HH", header[26:30])
        start = member.header_offset + 30 + names + extra
        end = next(e for e in self.ends if e > member.header_offset)
        size, xml, carry = 0, None, b""
        decoder: codecs.IncrementalDecoder | None = None
        for chunk, packed in _inflate(memoryview(self.data)[start:end], member):
            size += len(chunk)
            self.unpacked += len(chunk)
            if self.unpacked > self.cap_mb * _MB:
                raise refusal(self.name, f"unpacks to more than {self.cap_mb:g} MB", "max_unpacked_mb", self.cap_mb)
            if size > _RATIO_FLOOR and size > self.ratio * max(packed, 1):
                raise _ratio_refusal(self.name, member, size, packed, self.ratio)
            if xml is None and chunk:
                xml, decoder = _sniff_xml(chunk)
            if xml:
                if decoder is not None:  # UTF-16/32 XML is counted in UTF-8
                    chunk = decoder.decode(chunk).encode("utf-8", "surrogatepass")
                carry = self._count(carry, chunk)
        if size != member.file_size:
            raise zipfile.BadZipFile(
                f"{member.filename} unpacks to {size:,} bytes but the zip's directory says {member.file_size:,}"
            )

    def _count(self, carry: bytes, chunk: bytes) -> bytes:
        """Count an XML chunk's start tags and paragraphs against the limits; the carry for the next chunk."""
        elements, paragraphs, carry = xml_counts(carry, chunk)
        self.elements += elements
        self.paragraphs += paragraphs
        if self.elements > self.most_elements:
            raise refusal(self.name, f"holds more than {_count(self.most_elements)} XML elements",
                          "max_xml_elements", self.most_elements)
        if self.paragraphs > self.most_paragraphs:
            raise refusal(
                self.name, f"holds more than {_count(self.most_paragraphs)} paragraphs, each a line of text and so at "
                "least one sentence", "max_document_sentences", self.most_paragraphs,
            )
        return carry


def xml_counts(carry: bytes, chunk: bytes) -> tuple[int, int, bytes]:
    """The start tags and paragraph elements that end in ``chunk`` of an XML stream read in chunks.

    Args:
        carry: what this function returned for the previous chunk (``b""`` for the first), so that a tag cut
            in two by a chunk boundary is counted once.
        chunk: the next bytes of the stream (UTF-8).

    Returns:
        ``(start tags, paragraphs, carry)``; start tags are counted as ``<`` not followed by ``/`` (comments
        and processing instructions count too: an upper bound).

    Example:
        >>> xml_counts(b"", b"<w:body><w:p><w:r/></w:p><w:p/></w:bo")[:2]
        (4, 2)
    """
    window = carry + chunk
    elements = chunk.count(b"<") - (carry[-1:] + chunk).count(b"</")
    paragraphs = sum(1 for m in _PARAGRAPH.finditer(window) if m.end() > len(carry))
    return elements, paragraphs, window[-_CARRY:]


def _inflate(raw: memoryview, member: zipfile.ZipInfo) -> Iterator[tuple[bytes, int]]:
    """A member's unpacked bytes, a chunk at a time, each with the compressed bytes consumed so far.

    ``raw`` runs from the member's data to the next member's header: a deflated member is inflated until its
    stream ends, whatever size the directory claims (it can lie); a stored one is its declared size.
    """
    if member.compress_type == zipfile.ZIP_STORED:
        for at in range(0, min(member.compress_size, len(raw)), _CHUNK):
            yield bytes(raw[at : at + _CHUNK]), min(member.compress_size, at + _CHUNK)
        return
    inflater, read = zlib.decompressobj(-zlib.MAX_WBITS), 0
    while not inflater.eof:
        source = inflater.unconsumed_tail
        if not source:
            source, read = bytes(raw[read : read + _FEED]), read + _FEED
            if not source:
                raise zipfile.BadZipFile(f"{member.filename} is cut short")
        chunk = inflater.decompress(source, _CHUNK)  # at most _CHUNK bytes, whatever the input holds
        yield chunk, min(read, len(raw)) - len(inflater.unconsumed_tail)


#: How XML starts in each encoding an XML parser detects (XML 1.0, appendix F), without a declaration's text.
_XML_STARTS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (b"<\0\0\0", "utf-32-le"),
    (b"\0\0\0<", "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
    (b"<\0", "utf-16-le"), (b"\0<", "utf-16-be"),
)


def _sniff_xml(first: bytes) -> tuple[bool, codecs.IncrementalDecoder | None]:
    """Whether a member is XML (its first characters are markup), and a decoder when it is not in UTF-8."""
    for start, encoding in _XML_STARTS:
        if first.startswith(start):
            return True, codecs.getincrementaldecoder(encoding)("replace")
    return first.removeprefix(codecs.BOM_UTF8).lstrip()[:1] == b"<", None
