"""Documents: reading sources (files, folders, JSONL) into plain-text :class:`Document` objects.

The text kept here is the reference every citation points into: sentence offsets are offsets into
``Document.text``, which is stored inside the index. Formats other than plain text are turned into text by
:mod:`qa.extract`, which also gives each PDF's page starts and each document's headings.

:func:`read_sources` reads everything it can and reports each source that failed, with the reason;
:func:`load_sources` is the strict form that raises on the first failure.
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path, PurePosixPath

from .errors import ConfigError, DocumentError
from .extract import EXTRACTORS, decode_text, extract
from .limits import Limits, check_text

__all__ = [
    "DEFAULT_DOC_ID",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TITLE",
    "SUPPORTED_SUFFIXES",
    "Document",
    "Limits",
    "ReadReport",
    "SourceFailure",
    "content_hash",
    "default_document",
    "heading_at",
    "load_sources",
    "page_at",
    "read_sources",
    "safe_filename",
]

DEFAULT_DOC_ID = "us-pakistan-relations"
DEFAULT_TITLE = "US-Pakistan relations under Trump's second term"
#: File types read (in any case): JSONL holds many documents, one JSON object a line.
SUPPORTED_SUFFIXES = (*EXTRACTORS, ".jsonl")
#: Largest file read unless told otherwise: 50 MB (MiB).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def content_hash(text: str) -> str:
    """SHA-256 of ``text`` encoded as UTF-8, as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One document: a stable id, a title, and its plain text.

    Example:
        >>> from qa.documents import Document
        >>> Document("notes", "My notes", "Cats sleep a lot.").sha256[:12]
        'd7e6799ff32a'
    """

    doc_id: str
    title: str
    text: str
    source: str | None = None
    """Where the document came from (a file path), for display only."""
    pages: tuple[int, ...] = ()
    """The offset in ``text`` where each page starts (page n starts at ``pages[n - 1]``); empty without pages."""
    headings: tuple[tuple[int, str], ...] = ()
    """``(offset, heading)`` pairs sorted by offset: the heading's section starts at ``offset`` in ``text``."""

    @property
    def sha256(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class SourceFailure:
    """A source (a file, a JSONL line, a given document) that could not be read, and why.

    Attributes:
        source: the file path (or document id) that failed.
        reason: what is wrong and what to do, naming the file.
    """

    source: str
    reason: str


@dataclass(frozen=True)
class ReadReport:
    """What :func:`read_sources` read: the documents, and every source that failed.

    Attributes:
        documents: the documents read, in source order (files of a folder in path order).
        failures: the sources that could not be read; none of their documents is in ``documents``.
    """

    documents: list[Document]
    failures: list[SourceFailure]


def page_at(doc_or_pages: Document | Sequence[int], offset: int) -> int | None:
    """The 1-based page number holding character ``offset`` of a document's text.

    Args:
        doc_or_pages: a document, or its ``pages`` (the offset where each page starts).
        offset: a character offset into the document's text (a sentence's start).

    Returns:
        The page number, or None when the document has no pages (not a PDF) or the offset is negative.

    Example:
        >>> page_at((0, 120, 300), 150)
        2
        >>> page_at((), 150) is None
        True
    """
    pages = doc_or_pages.pages if isinstance(doc_or_pages, Document) else doc_or_pages
    if not pages or offset < 0 or offset < pages[0]:
        return None
    return bisect.bisect_right(pages, offset)


def heading_at(headings: Document | Sequence[tuple[int, str]], offset: int) -> str | None:
    """The heading a character ``offset`` sits under: the last heading starting at or before it.

    Args:
        headings: a document, or its ``headings`` (``(offset, heading)`` pairs sorted by offset).
        offset: a character offset into the document's text.

    Returns:
        The heading text, or None when no heading comes before ``offset``.

    Example:
        >>> heading_at(((0, "Intro"), (40, "Results")), 55)
        'Results'
        >>> heading_at(((10, "Intro"),), 3) is None
        True
    """
    pairs = headings.headings if isinstance(headings, Document) else headings
    i = bisect.bisect_right([start for start, _ in pairs], offset)
    return pairs[i - 1][1] if i else None


def safe_filename(name: str) -> str:
    """Check the name of an uploaded file and return it bare, or refuse it.

    A name that could point outside the folder it is saved into, or that a folder read would skip, is refused.

    Raises:
        DocumentError: the name is empty, or holds ``/``, ``\\``, ``..``, a NUL or another control character,
            starts with ``.`` (hidden), or is longer than 255 bytes.

    Example:
        >>> safe_filename("report 2024.pdf")
        'report 2024.pdf'
    """
    shown = repr(name)
    if not name or not name.strip():
        raise DocumentError("a file name is empty; give the file a name such as notes.txt")
    if "/" in name or "\\" in name or ".." in name:
        raise DocumentError(f"the file name {shown} holds a path ('/', '\\', '..'); upload the file by its bare name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise DocumentError(f"the file name {shown} holds a NUL or control character; rename the file")
    if name.startswith("."):
        raise DocumentError(f"the file name {shown} starts with '.', which marks a hidden file; rename the file")
    if len(name.encode("utf-8")) > 255:
        raise DocumentError(f"the file name {shown[:60]}... is longer than 255 bytes; give it a shorter name")
    return name


def default_document() -> Document:
    """The bundled default article, byte-identical to the evaluation copy."""
    raw = resources.files("qa").joinpath("data/article.txt").read_bytes()
    return Document(DEFAULT_DOC_ID, DEFAULT_TITLE, raw.decode("utf-8"), source="qa/data/article.txt")


def load_sources(
    sources: Iterable[str | Path | Document],
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    max_bytes: int | None = None,
    limits: Limits | None = None,
) -> list[Document]:
    """Read documents from files, folders (recursively) or ``Document`` objects; any failure is an error.

    See :func:`read_sources` for the formats, ids and options; this strict form reads the same documents but
    raises if any source failed.

    Raises:
        DocumentError: a source failed (the first failure's reason, with how many more there were), or the
            sources hold no document.

    Example:
        >>> from qa.documents import load_sources, Document
        >>> [d.doc_id for d in load_sources([Document("a", "A", "Some text.")])]
        ['a']
    """
    report = read_sources(sources, include=include, exclude=exclude, max_bytes=max_bytes, limits=limits)
    if report.failures:
        more = len(report.failures) - 1
        raise DocumentError(report.failures[0].reason + (f" (and {more} more failed)" if more else ""))
    if not report.documents:
        raise DocumentError(
            f"no documents found in the given sources; pass {', '.join(SUPPORTED_SUFFIXES)} files or folders"
            + (" (or loosen the include/exclude patterns)" if include or exclude else "")
        )
    return report.documents


def read_sources(
    sources: Iterable[str | Path | Document],
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    max_bytes: int | None = None,
    limits: Limits | None = None,
    progress: bool | None = None,
) -> ReadReport:
    """Read every document the sources hold, and report each source that could not be read.

    Files are ``.txt``, ``.md``, ``.html``/``.htm``, ``.pdf``, ``.docx`` and ``.jsonl`` (one JSON object a line
    with ``id``, ``text`` and optionally ``title``); see :mod:`qa.extract` for how each is turned into text.
    A folder is read recursively, skipping hidden files and folders and files of other types. Document ids
    come from the file name without extension (a file given directly) or the path relative to the folder
    without extension (files found in a folder); a JSONL line's ``id`` is its id.

    A failure is one file's (or one given document's): it is reported and every other file is still read.
    A file over a limit on what one document may cost (``limits``) is such a failure.
    A document whose id is already taken fails its whole file (the first file keeps the id).

    Args:
        sources: files, folders, or :class:`Document` objects.
        include: glob patterns a file found in a folder must match one of (default: all files). Patterns are
            matched against the path relative to the folder (``*`` also crosses ``/``, so ``*.md`` matches
            ``notes/a.md``); a pattern without ``/`` also matches any single folder or file name on the path.
            Files given directly are always read.
        exclude: glob patterns (same rules) of files found in a folder to skip, such as ``drafts`` or ``*.htm``.
        max_bytes: largest file size read; larger files fail. None means :data:`DEFAULT_MAX_BYTES` (50 MB).
        limits: what one document read from a file may cost (unpacked size of a .docx, characters, sentences:
            see :class:`qa.limits.Limits`), checked while it is read; a file passing one fails with a message
            naming the limit and its ``QA_*`` variable. ``None`` (or a ``None`` field) uses the settings.
            :class:`Document` objects given directly are not limited.
        progress: a progress bar over the files on stderr (``None``: when stderr is a terminal and there are
            more than 20 files).

    Returns:
        The documents read and the failures, each failure naming its file and what to do.

    Raises:
        ConfigError: ``max_bytes`` is not a positive number, or a limit is out of range.

    Example:
        >>> from qa.documents import read_sources, Document
        >>> report = read_sources([Document("a", "A", "Text."), Document("b", "B", "  ")])
        >>> [d.doc_id for d in report.documents], [f.source for f in report.failures]
        (['a'], ['b'])
    """
    include = [include] if isinstance(include, str) else include  # one pattern given bare, not a list
    exclude = [exclude] if isinstance(exclude, str) else exclude
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ConfigError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
    resolved = (limits or Limits()).resolved()
    documents: list[Document] = []
    failures: list[SourceFailure] = []
    owners: dict[str, str] = {}
    units = list(_units(sources, include=include, exclude=exclude, limit=limit, limits=resolved))
    show = progress if progress is not None else (len(units) > 20 and sys.stderr.isatty())
    if show:
        from tqdm.auto import tqdm

        units = tqdm(units, desc="Reading", unit="file", leave=False)
    for source, read in units:
        try:
            docs = read()
            _claim_ids(docs, owners, source)
        except DocumentError as exc:
            failures.append(SourceFailure(source, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one file's unexpected failure must not lose the others
            reason = f"{source}: could not be read ({type(exc).__name__}: {exc}); please report this file's problem"
            failures.append(SourceFailure(source, reason))
            continue
        documents.extend(docs)
    return ReadReport(documents, failures)


def _units(
    sources: Iterable[str | Path | Document], *, include: Sequence[str] | None, exclude: Sequence[str] | None,
    limit: int, limits: Limits,
) -> Iterator[tuple[str, Callable[[], list[Document]]]]:
    """Each unit of reading (a given document, or a file): its name, and a function reading its documents."""
    for source in sources:
        if isinstance(source, Document):
            yield source.source or source.doc_id, partial(_given, source)
            continue
        path = Path(source)
        if path.is_dir():
            files, unlisted = _folder_files(path, include=include, exclude=exclude)
            for file, rel in files:
                doc_id = PurePosixPath(rel).with_suffix("").as_posix()
                yield str(file), partial(_read_file, file, doc_id=doc_id, limit=limit, limits=limits)
            for where, reason in unlisted:
                yield where, partial(_fail, reason)
        elif path.is_file():
            yield str(path), partial(_read_file, path, doc_id=path.stem, limit=limit, limits=limits)
        else:
            yield str(path), partial(_missing, path)


def _given(doc: Document) -> list[Document]:
    return [_checked(doc)]


def _missing(path: Path) -> list[Document]:
    raise DocumentError(f"no such file or folder: {path}; check the path")


def _fail(reason: str) -> list[Document]:
    raise DocumentError(reason)


def _folder_files(
    folder: Path, *, include: Sequence[str] | None, exclude: Sequence[str] | None
) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """The files of a folder to read, and the sub-folders that could not be listed.

    Returns:
        The supported, non-hidden files under ``folder`` that pass the patterns, as (path, relative POSIX path)
        sorted by relative path; and (folder, reason) for each folder that could not be listed.
    """
    found: list[tuple[Path, str]] = []
    unlisted: list[tuple[str, str]] = []

    def failed(exc: OSError) -> None:
        where = exc.filename or folder
        unlisted.append((str(where), f"{where}: cannot list this folder ({exc.strerror}); check its permissions"))

    for root, dirs, files in os.walk(folder, onerror=failed):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # hidden folders (.git) are never read
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            file = Path(root) / name
            rel = file.relative_to(folder).as_posix()
            if include and not any(_matches(rel, p) for p in include):
                continue
            if exclude and any(_matches(rel, p) for p in exclude):
                continue
            if file.is_file():
                found.append((file, rel))
    return sorted(found, key=lambda pair: pair[1]), unlisted


def _matches(rel: str, pattern: str) -> bool:
    """Whether the relative path ``rel`` matches a glob ``pattern`` (see :func:`read_sources`)."""
    pattern = pattern.replace("\\", "/").strip()
    while pattern.startswith(("./", "**/")):
        pattern = pattern.split("/", 1)[1]
    pattern = pattern.rstrip("/")
    if not pattern:
        return False
    if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel, pattern + "/*"):
        return True
    return "/" not in pattern and any(fnmatch.fnmatchcase(part, pattern) for part in rel.split("/"))


def _claim_ids(docs: list[Document], owners: dict[str, str], source: str) -> None:
    for doc in docs:
        if doc.doc_id in owners:
            raise DocumentError(
                f"{source}: two documents have the id {doc.doc_id!r} ({owners[doc.doc_id]} and {doc.source}); "
                "give each a distinct id or file name (this one was not read)"
            )
    for doc in docs:
        owners[doc.doc_id] = doc.source or doc.doc_id


def _read_file(path: Path, *, doc_id: str, limit: int, limits: Limits) -> list[Document]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        hint = "; save it as .docx" if suffix == ".doc" else ""
        raise DocumentError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}{hint}"
        )
    try:
        size = path.stat().st_size
        if size > limit:
            raise DocumentError(
                f"{path}: {size / 1024 / 1024:.1f} MB is over the {limit / 1024 / 1024:g} MB size limit; "
                "split the file or raise the limit (max_file_mb)"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read ({exc.strerror}); check the path and its permissions") from None
    if not raw.strip():
        raise DocumentError(f"{path}: the file is empty; remove it or add text")
    if suffix == ".jsonl":
        return _read_jsonl(path, decode_text(raw, str(path)), limits)
    extracted = extract(raw, suffix=suffix, name=str(path), limits=limits)
    title = extracted.title or path.stem.replace("_", " ").replace("-", " ")
    doc = Document(doc_id, title, extracted.text, str(path), pages=extracted.pages, headings=extracted.headings)
    return [_checked(doc)]


def _read_jsonl(path: Path, text: str, limits: Limits) -> list[Document]:
    docs: list[Document] = []
    lines_of: dict[str, int] = {}
    # Lines end at "\n" only: str.splitlines would also cut at U+2028, U+0085 and other characters that JSON
    # strings may hold unescaped (json.dumps(..., ensure_ascii=False) writes them as they are).
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{where}: invalid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise DocumentError(f"{where}: expected a JSON object with 'id' and 'text'")
        doc_id, body = record.get("id"), record.get("text")
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or str(doc_id).strip() == "":
            raise DocumentError(f"{where}: missing 'id'; every line needs an 'id' and a 'text'")
        if not isinstance(body, str):
            raise DocumentError(f"{where}: missing or non-string 'text' for id {doc_id!r}")
        doc_id = str(doc_id)
        if doc_id in lines_of:
            raise DocumentError(
                f"{where}: two documents have the id {doc_id!r} (lines {lines_of[doc_id]} and {number}); "
                "give each line a distinct id"
            )
        lines_of[doc_id] = number
        check_text(body, where, limits)
        title = record.get("title")
        docs.append(_checked(Document(doc_id, str(title) if title else doc_id, body, where)))
    return docs


def _checked(doc: Document) -> Document:
    where = f"{doc.source}: " if doc.source else ""
    for name, value in (("id", doc.doc_id), ("title", doc.title), ("text", doc.text)):
        _check_characters(value, f"{where}the {name} of document {doc.doc_id!r}")
    if not doc.doc_id or doc.doc_id != doc.doc_id.strip():
        raise DocumentError(f"{where}invalid document id {doc.doc_id!r}: it must be non-empty without outer spaces")
    if not doc.text.strip():
        raise DocumentError(f"{where}document {doc.doc_id!r} is empty (no text); remove it or add text")
    return doc


def _check_characters(value: str, what: str) -> None:
    """Refuse characters that an index cannot store faithfully.

    NUL is refused because SQLite's text functions stop at it, so citations after it would be cut short; lone
    surrogates because they are not Unicode text and cannot be encoded as UTF-8.

    Raises:
        DocumentError: ``value`` holds such a character; the message names ``what`` and the position.
    """
    if "\x00" in value:
        raise DocumentError(f"{what} holds a NUL character at position {value.index(chr(0))}; remove it (binary data?)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DocumentError(
            f"{what} holds a lone surrogate {value[exc.start]!r} at position {exc.start}, which is not Unicode "
            "text; fix the encoding of the source"
        ) from None
