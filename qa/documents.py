"""Documents: reading sources (files, folders, JSONL) into plain-text :class:`Document` objects.

The text kept here is the reference every citation points into: sentence offsets are offsets into
``Document.text``, which is stored inside the index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import DocumentError

__all__ = [
    "DEFAULT_DOC_ID",
    "DEFAULT_TITLE",
    "SUPPORTED_SUFFIXES",
    "Document",
    "content_hash",
    "default_document",
    "load_sources",
]

DEFAULT_DOC_ID = "us-pakistan-relations"
DEFAULT_TITLE = "US-Pakistan relations under Trump's second term"
SUPPORTED_SUFFIXES = (".txt", ".md", ".jsonl")


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

    @property
    def sha256(self) -> str:
        return content_hash(self.text)


def default_document() -> Document:
    """The bundled default article, byte-identical to the evaluation copy."""
    raw = resources.files("qa").joinpath("data/article.txt").read_bytes()
    return Document(DEFAULT_DOC_ID, DEFAULT_TITLE, raw.decode("utf-8"), source="qa/data/article.txt")


def load_sources(sources: Iterable[str | Path | Document]) -> list[Document]:
    """Read documents from files (``.txt``, ``.md``, ``.jsonl``), folders (recursively) or ``Document`` objects.

    Document ids come from the file name (a file given directly) or the path relative to the folder given
    (files found in a folder), without the extension; a JSONL line's ``id`` is its id.

    Raises:
        DocumentError: a source is missing, unreadable, empty, of an unsupported type, or two documents
            share an id.

    Example:
        >>> from qa.documents import load_sources, Document
        >>> [d.doc_id for d in load_sources([Document("a", "A", "Some text.")])]
        ['a']
    """
    docs: list[Document] = []
    for source in sources:
        if isinstance(source, Document):
            docs.append(_checked(source))
        else:
            docs.extend(_read_path(Path(source)))
    seen: dict[str, str | None] = {}
    for doc in docs:
        if doc.doc_id in seen:
            raise DocumentError(
                f"two documents have the id {doc.doc_id!r} ({seen[doc.doc_id]} and {doc.source}); "
                "give each a distinct id or file name"
            )
        seen[doc.doc_id] = doc.source
    if not docs:
        raise DocumentError("no documents found in the given sources; pass .txt, .md or .jsonl files or folders")
    return docs


def _read_path(path: Path) -> Iterator[Document]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        for file in files:
            if any(part.startswith(".") for part in file.relative_to(path).parts):
                continue  # hidden files and folders (.git, editor backups) are never documents
            yield from _read_file(file, doc_id=file.relative_to(path).with_suffix("").as_posix())
    elif path.is_file():
        yield from _read_file(path, doc_id=path.stem)
    else:
        raise DocumentError(f"no such file or folder: {path}; check the path")


def _read_file(path: Path, *, doc_id: str) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{path}: unsupported file type {suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    text = _read_text(path)
    if suffix == ".jsonl":
        yield from _read_jsonl(path, text)
        return
    title = _markdown_title(text) if suffix == ".md" else None
    yield _checked(Document(doc_id, title or path.stem.replace("_", " ").replace("-", " "), text, str(path)))


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read ({exc.strerror}); check the path and its permissions") from None
    if b"\x00" in raw:
        raise DocumentError(f"{path}: looks like binary data, not text; convert it to UTF-8 text first")
    try:
        # utf-8-sig drops a byte-order mark; newlines are normalised so offsets do not depend on the OS.
        return raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{path}: not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8"
        ) from None


def _read_jsonl(path: Path, text: str) -> Iterator[Document]:
    for number, line in enumerate(text.splitlines(), start=1):
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
        if not isinstance(doc_id, (str, int)) or str(doc_id).strip() == "":
            raise DocumentError(f"{where}: missing 'id'; every line needs an 'id' and a 'text'")
        if not isinstance(body, str):
            raise DocumentError(f"{where}: missing or non-string 'text' for id {doc_id!r}")
        title = record.get("title")
        yield _checked(Document(str(doc_id), str(title) if title else str(doc_id), body, where))


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


def _checked(doc: Document) -> Document:
    if not doc.doc_id or doc.doc_id != doc.doc_id.strip():
        raise DocumentError(f"invalid document id {doc.doc_id!r}: it must be non-empty without outer spaces")
    if not doc.text.strip():
        raise DocumentError(f"document {doc.doc_id!r} ({doc.source}) is empty; remove it or add text")
    return doc
