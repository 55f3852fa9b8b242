"""Hostile Word files, generated fast: zip bombs (honest or lying directory) and paragraph bombs.

Shared by ``tests/test_limits.py`` and ``benchmarks/hostile_documents.py``. Every file is a real .docx: the parts
of a blank python-docx document, with a ``word/document.xml`` of our making. A bomb's document.xml is valid XML
(a paragraph, then white space between elements, which XML allows anywhere there), so a parser without limits
would read it whole.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from functools import cache
from pathlib import Path

DOCUMENT = "word/document.xml"
MB = 1024 * 1024
_FIRST = b"<w:p><w:r><w:t>The first paragraph of a bomb.</w:t></w:r></w:p>"


@cache
def _blank_docx() -> tuple[dict[str, bytes], bytes, bytes]:
    """The parts of a blank python-docx document, and its document.xml split around the body's content."""
    import docx

    buffer = io.BytesIO()
    docx.Document().save(buffer)
    with zipfile.ZipFile(buffer) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    xml = parts.pop(DOCUMENT)
    cut = xml.index(b"<w:body>") + len(b"<w:body>")
    return parts, xml[:cut], xml[cut:]


def paragraph_docx(path: Path, paragraphs: int, *, numbered: bool = True) -> Path:
    """A .docx of ``paragraphs`` tiny paragraphs, written as XML directly (a million take seconds).

    ``numbered``: each paragraph says its number ("12."), so the XML compresses like a real document's (about
    15:1); otherwise each is "a", and a million of them pack into ~120 KB (about 300:1).
    """
    parts, head, tail = _blank_docx()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
        with z.open(DOCUMENT, "w") as out:
            out.write(head)
            for start in range(0, paragraphs, 10_000):
                out.write(b"".join(
                    b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>" % (b"%d." % i if numbered else b"a")
                    for i in range(start, min(paragraphs, start + 10_000))
                ))
            out.write(tail)
    return path


def zip_bomb(path: Path, unpacked: int, *, claim: int | None = None) -> Path:
    """A .docx whose document.xml inflates to about ``unpacked`` bytes (a paragraph, then spaces).

    The compressed stream repeats one fully flushed deflate block of 1 MB of spaces (about 1 KB), so a 4 GB
    bomb takes seconds to make and is about 4 MB. ``claim``: the uncompressed size the zip's local header and
    directory state for document.xml (default: the true size); a smaller one makes a lying header.
    """
    parts, head, tail = _blank_docx()
    blocks = max(1, unpacked // MB)
    spaces = b" " * MB
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = deflate.compress(head + _FIRST) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(spaces) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.compress(tail) + deflate.flush()
    crc = zlib.crc32(head + _FIRST)
    for _ in range(blocks):
        crc = zlib.crc32(spaces, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + len(_FIRST) + blocks * MB + len(tail)
    packed = len(start) + blocks * len(block) + len(end)
    if size >= 1 << 32 or packed >= 1 << 32:
        raise ValueError("this writer makes plain (not ZIP64) archives: keep the bomb under 4 GiB")
    with path.open("wb") as out:
        writer = _ZipWriter(out)
        for name, data in parts.items():
            packed_part = zlib.compress(data, 9)[2:-4]  # raw deflate: no zlib header and checksum
            writer.member(name, [packed_part], crc=zlib.crc32(data), packed=len(packed_part), size=len(data))
        writer.member(DOCUMENT, _repeat(start, block, blocks, end), crc=crc, packed=packed,
                      size=size if claim is None else claim)
        writer.close()
    return path


def _repeat(start: bytes, block: bytes, times: int, end: bytes):  # type: ignore[no-untyped-def]
    yield start
    for _ in range(times):
        yield block
    yield end


class _ZipWriter:
    """Writes a plain zip of deflated members whose sizes are whatever it is told (so they can lie)."""

    def __init__(self, out: io.BufferedWriter) -> None:
        self.out, self.directory, self.count = out, bytearray(), 0

    def member(self, name: str, chunks, *, crc: int, packed: int, size: int) -> None:  # type: ignore[no-untyped-def]
        raw = name.encode()
        offset = self.out.tell()
        self.out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, zipfile.ZIP_DEFLATED, 0, 0x21,
                                   crc, packed, size, len(raw), 0) + raw)
        for chunk in chunks:
            self.out.write(chunk)
        self.directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, zipfile.ZIP_DEFLATED, 0, 0x21,
                                      crc, packed, size, len(raw), 0, 0, 0, 0, 0, offset) + raw
        self.count += 1

    def close(self) -> None:
        start = self.out.tell()
        self.out.write(bytes(self.directory))
        self.out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, self.count, self.count, len(self.directory),
                                   start, 0))
