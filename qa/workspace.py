"""The web app's active index, and the changes a user makes to it: files uploaded, documents removed.

A :class:`Workspace` holds the index that answers questions and swaps it, under a lock, for the updated one
after every change: a question reads the reference once and uses that index throughout, so it sees the old or
the new index, never a partial one (an update builds a complete new :class:`~qa.Index` and leaves the old object
untouched).

Where changes go:

* The bundled article's index (``<index root>/default``) is never modified. The first upload made while it is
  active creates the *workspace*, ``<index root>/workspace``, holding the article plus the uploads, and makes it
  the active index; when a workspace already exists (from an earlier run), the upload is added to it.
* Any other index the app was started with (``--index DIR``) is updated in place.

Uploaded files are checked by name (:func:`~qa.documents.safe_filename`) and size (``max_file_mb``), copied under
their checked name into a hidden staging folder inside the index's uploads folder (``<index's parent>/uploads/
<index name>/``), read there, and moved into the uploads folder once the index holding them is saved. A file that
cannot be read is reported with its reason, and every other file is still indexed. Failure messages name the
file as the user gave it, never a server path.

What one upload may cost is bounded before anything is embedded: each file is held to the limits on one
document (:class:`~qa.limits.Limits`: unpacked size, characters, sentences), and the upload as a whole to
``max_upload_sentences`` (counted with :func:`~qa.limits.sentences_at_least`); once a file would take the upload
past it, that file and every later one are refused (the later ones unread), and the files before are indexed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .config import Settings
from .documents import (
    Document,
    SourceFailure,
    default_document,
    read_sources,
    safe_filename,
)
from .errors import DocumentError, QAError
from .index import MANIFEST, DocumentInfo, Index
from .limits import Limits, refusal, sentences_at_least
from .retrieval import default_index_path

__all__ = ["AddReport", "DocumentRow", "Progress", "Upload", "Workspace"]

#: Folder (under the index root) of the editable index created by the first upload on the bundled article.
WORKSPACE = "workspace"
UPLOADS = "uploads"

#: What to do about a file refused for the upload's sentence limit.
_ANOTHER_BATCH = "upload it in another batch, or raise the limit"
#: ``progress(fraction or None, description)``: how far an upload is (``None``: a step of unknown length).
Progress = Callable[[float | None, str], None]


@dataclass(frozen=True)
class Upload:
    """A file received from a user.

    Attributes:
        name: the file's name as the user's browser or client gave it (checked before use, never trusted).
        path: where the server holds its bytes now.
    """

    name: str
    path: Path


@dataclass(frozen=True)
class DocumentRow:
    """A document of the active index, as the document list shows it.

    Attributes:
        doc_id: the document's id.
        title: its title.
        sentences: how many sentences it was split into.
        file: the uploaded file it came from (its name), or None when it was not uploaded through the app.
    """

    doc_id: str
    title: str
    sentences: int
    file: str | None


@dataclass(frozen=True)
class AddReport:
    """What :meth:`Workspace.add` did.

    Attributes:
        index: the active index afterwards.
        added: the documents new to the index.
        replaced: the documents that replaced an earlier version with the same id.
        unchanged: the documents uploaded again with the same text (nothing to do).
        failures: one per file that was not indexed: ``source`` is the name the user gave, ``reason`` says why
            and what to do.
        created: whether this upload created the workspace.
        switched: whether the active index changed (from the bundled article's to the workspace).
    """

    index: Index
    added: list[DocumentInfo]
    replaced: list[DocumentInfo]
    unchanged: list[DocumentInfo]
    failures: list[SourceFailure]
    created: bool = False
    switched: bool = False


def _no_progress(fraction: float | None, description: str) -> None:
    return None


class Workspace:
    """The active index of a running app, and the uploads and removals that change it.

    Args:
        index: the index the app starts with.
        settings: the app's settings (index root, ``max_file_mb``, model).

    Example:
        >>> import qa
        >>> from qa.workspace import Workspace
        >>> ws = Workspace(qa.Index.build([qa.Document("a", "A", "Cats purr."), qa.Document("b", "B", "Dogs bark.")]),
        ...                qa.get_settings())
        >>> _ = ws.remove("a")
        >>> [d.doc_id for d in ws.index.documents]
        ['b']
    """

    def __init__(self, index: Index, settings: Settings) -> None:
        self.settings = settings
        self._default_path = default_index_path(settings).resolve()
        self._index = index
        self._default = index if self.is_default(index) else None
        self._swap_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one change at a time: each builds on the index the last one left
        self._version = 0

    # ------------------------------------------------------------------ the active index

    @property
    def index(self) -> Index:
        """The active index. Read it once per question and use that object throughout."""
        with self._swap_lock:
            return self._index

    @property
    def version(self) -> int:
        """How many times the active index has been swapped (0 at start)."""
        with self._swap_lock:
            return self._version

    def snapshot(self) -> tuple[Index, int]:
        """The active index and its :attr:`version`, read together."""
        with self._swap_lock:
            return self._index, self._version

    def _swap(self, index: Index) -> None:
        with self._swap_lock:
            if index is not self._index:
                self._index = index
                self._version += 1

    @property
    def workspace_path(self) -> Path:
        """Where the workspace index lives: ``<index root>/workspace``."""
        return self.settings.index_root / WORKSPACE

    @property
    def started_on_default(self) -> bool:
        """Whether the app started on the bundled article's index (it can then switch to the workspace)."""
        return self._default is not None

    def is_default(self, index: Index | None = None) -> bool:
        """Whether ``index`` (default: the active one) is the bundled article's read-only index."""
        index = self.index if index is None else index
        return index.path is not None and index.path.resolve() == self._default_path

    def is_workspace(self, index: Index | None = None) -> bool:
        """Whether ``index`` (default: the active one) is the workspace."""
        index = self.index if index is None else index
        return index.path is not None and index.path.resolve() == self.workspace_path.resolve()

    def workspace_exists(self) -> bool:
        """Whether a workspace index has been saved (by this run or an earlier one)."""
        return (self.workspace_path / MANIFEST).is_file()

    def label(self, index: Index | None = None) -> str:
        """A short name for ``index`` (default: the active one): the bundled article, your workspace, or its folder."""
        index = self.index if index is None else index
        if self.is_default(index):
            return "the bundled article"
        if self.is_workspace(index):
            return "your workspace"
        return f"“{index.path.name}”" if index.path is not None else "an index in memory"

    def uploads_folder(self, index: Index | None = None) -> Path:
        """Where files uploaded into ``index`` (default: the active one) are kept.

        ``<index's parent>/uploads/<index name>``; uploads made on the bundled article go to the workspace's.
        """
        index = self.index if index is None else index
        path = self.workspace_path if self.is_default(index) else index.path
        if path is None:
            return (self.settings.index_root / UPLOADS / "in-memory").resolve()
        path = path.resolve()
        return path.parent / UPLOADS / path.name

    def rows(self, index: Index | None = None) -> list[DocumentRow]:
        """The documents of ``index`` (default: the active one) for the document list, in index order."""
        index = self.index if index is None else index
        folder = self.uploads_folder(index)
        return [DocumentRow(d.doc_id, d.title, d.sentences, _uploaded_name(d.source, folder)) for d in index.documents]

    def use(self, which: Literal["default", "workspace"]) -> Index:
        """Make the bundled article's index or the workspace the active index (for an app started on the former).

        Raises:
            QAError: the app did not start on the bundled article, there is no workspace yet, or it cannot be
                opened (the message says why and what to do).
        """
        with self._write_lock:
            if self._default is None:
                raise QAError("this app was started on its own index; there is no other index to switch to")
            if which == "default":
                self._swap(self._default)
            elif self.is_workspace():
                pass
            elif not self.workspace_exists():
                raise QAError("there is no workspace yet; upload files to create one")
            else:
                self._swap(self._open_workspace())
            return self.index

    def _open_workspace(self) -> Index:
        try:
            return Index.load(self.workspace_path, settings=self.settings)
        except QAError as exc:
            raise QAError(
                f"your workspace at {self.workspace_path} cannot be opened: {exc}. Move that folder away (or delete "
                "it) to start a new workspace"
            ) from None

    # ------------------------------------------------------------------ changes

    def add(self, uploads: Sequence[Upload], *, progress: Progress | None = None, bars: bool = False) -> AddReport:
        """Index uploaded files into the active index (or the workspace, when the bundled article's is active).

        Each file is checked, copied and read on its own: a bad file is listed in ``failures`` with its reason and
        the others are still indexed. The updated index is saved, then made the active one.

        Args:
            uploads: the files, with the names the user gave them.
            progress: called with the fraction done and what is happening (reading each file, then embedding).
            bars: let the embedding show a progress bar (tqdm; the web app forwards it to the page).

        Returns:
            What was added, replaced, left unchanged, and why each failed file failed.

        Raises:
            QAError: the workspace exists but cannot be opened, or the index cannot be saved; nothing changed.
        """
        report = progress or _no_progress
        with self._write_lock:
            current = self.index
            on_default = self.is_default(current)
            if on_default:
                base = self._open_workspace() if self.workspace_exists() else None
                target: Path | None = self.workspace_path
            else:
                base, target = current, current.path
            folder = self.uploads_folder(current)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            staging = folder / f".incoming-{uuid.uuid4().hex[:12]}"
            staging.mkdir(mode=0o700)
            try:
                docs, failures, staged = self._read(uploads, staging, folder, report)
                if not docs:
                    return AddReport(current, [], [], [], failures)
                n_docs = len(docs)
                report(None, f"Embedding {n_docs} document{'s' if n_docs != 1 else ''} (sentences and their context)")
                if base is None:
                    article = default_document()
                    keep = [] if any(d.doc_id == article.doc_id for d in docs) else [article]
                    # Never on Ray (setting ray_address): an upload would wait 10-30 s for a Ray instance to start.
                    new = Index.build([*keep, *docs], target, settings=self.settings, progress=bars, ray="")
                    added, replaced, unchanged = [d.doc_id for d in docs], [], []
                else:
                    up = base.update(add=docs, progress=bars, max_bytes=_max_bytes(self.settings))
                    new, added, replaced, unchanged = up.index, up.added, up.replaced, up.unchanged
                    failures += [_named(f, {str(final): final.name for _, final in staged}) for f in up.failures]
                for source, final in staged:
                    os.replace(source, final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            _prune_uploads(folder, before=base.documents if base is not None else [], after=new.documents)
            self._swap(new)
            info = {d.doc_id: d for d in new.documents}
            return AddReport(
                index=new,
                added=[info[i] for i in added],
                replaced=[info[i] for i in replaced],
                unchanged=[info[i] for i in unchanged],
                failures=failures,
                created=base is None,
                switched=on_default,
            )

    def _read(
        self, uploads: Sequence[Upload], staging: Path, folder: Path, report: Progress
    ) -> tuple[list[Document], list[SourceFailure], list[tuple[Path, Path]]]:
        """Check, copy and read each upload: its documents (sources renamed to their final place), the failures,
        and the (staged, final) path of every file that was read."""
        limit, limits = _max_bytes(self.settings), Limits.of(self.settings)
        most = self.settings.max_upload_sentences
        docs: list[Document] = []
        failures: list[SourceFailure] = []
        staged: list[tuple[Path, Path]] = []
        owners: dict[str, str] = {}  # document id -> the file that gave it
        sentences, full = 0, None  # sentences (at least) read so far; the file that took the upload over `most`
        for number, upload in enumerate(uploads):
            report(number / max(1, len(uploads)), f"Reading {upload.name} ({number + 1} of {len(uploads)})")
            try:
                name = safe_filename(upload.name)
                if full is not None:
                    raise refusal(name, f"was not read: this upload reached its limit of {most:,} sentences at {full}",
                                  "max_upload_sentences", most, _ANOTHER_BATCH)
                if any(final.name == name for _, final in staged):
                    raise DocumentError(f"{name}: a file of this name was already uploaded in this batch; rename one")
                file_docs, copy = _read_upload(upload.path, name, staging, limit, limits)
                final = folder / name
                file_docs = [_moved(d, copy, final) for d in file_docs]
                for doc in file_docs:
                    if doc.doc_id in owners:
                        raise DocumentError(
                            f"{name}: its document id {doc.doc_id!r} is also the id of a document in "
                            f"{owners[doc.doc_id]}, uploaded with it; rename one of the files (this one was not read)"
                        )
                held = sum(sentences_at_least(d.text) for d in file_docs)
                if sentences + held > most:
                    full = name
                    raise refusal(name, f"would take this upload to at least {sentences + held:,} sentences, more "
                                  f"than {most:,} (it and the files after it were not indexed)",
                                  "max_upload_sentences", most, _ANOTHER_BATCH)
            except DocumentError as exc:
                failures.append(SourceFailure(upload.name, str(exc)))
                continue
            sentences += held
            owners.update((doc.doc_id, name) for doc in file_docs)
            docs.extend(file_docs)
            staged.append((copy, final))
        report(1.0, f"Read {len(uploads)} file{'s' if len(uploads) != 1 else ''}")
        return docs, failures, staged

    def remove(self, doc_id: str) -> Index:
        """Remove a document from the active index, save it, and make the result the active index.

        Returns:
            The new active index.

        Raises:
            QAError: the active index is the bundled article's (read-only), it has no such document, or the
                document is the last one (an index needs at least one).
        """
        with self._write_lock:
            current = self.index
            if self.is_default(current):
                raise QAError(
                    "the bundled article's index is read-only; upload files to start your own workspace, "
                    "where documents can be removed"
                )
            info = {d.doc_id: d for d in current.documents}
            if doc_id not in info:
                raise QAError(f"there is no document {doc_id!r} in the active index (it may have been removed already)")
            if len(info) == 1:
                raise QAError(
                    f"“{info[doc_id].title}” is the only document left, and an index needs at least one; "
                    "upload another file before removing it"
                )
            new = current.update(remove=[doc_id]).index
            _prune_uploads(self.uploads_folder(current), before=current.documents, after=new.documents)
            self._swap(new)
            return new


# ---------------------------------------------------------------------- helpers


def _max_bytes(settings: Settings) -> int:
    return int(settings.max_file_mb * 1024 * 1024)


def _read_upload(
    path: Path, name: str, staging: Path, limit: int, limits: Limits
) -> tuple[list[Document], Path]:
    """Copy an upload (already checked by name) into ``staging`` under ``name`` and read it there.

    Raises:
        DocumentError: it is too large, cannot be copied, or cannot be read; the message names ``name`` only.
    """
    copy = staging / name
    try:
        size = path.stat().st_size
        if size > limit:
            raise DocumentError(
                f"{name}: {size / 1024 / 1024:.1f} MB is over the {limit / 1024 / 1024:.3g} MB size limit; "
                "split the file or raise the limit (max_file_mb)"
            )
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o600)
    except OSError as exc:
        raise DocumentError(f"{name}: the upload could not be saved on the server ({exc.strerror})") from None
    read = read_sources([copy], max_bytes=limit, limits=limits)
    if read.failures:
        raise DocumentError(read.failures[0].reason.replace(str(copy), name))
    return read.documents, copy


def _moved(doc: Document, copy: Path, final: Path) -> Document:
    """``doc`` with its source pointing at ``final`` instead of the staged ``copy`` (a JSONL line keeps ``:N``)."""
    source = doc.source or str(copy)
    if source.startswith(str(copy)):
        source = str(final) + source[len(str(copy)) :]
    return dataclasses.replace(doc, source=source)


def _named(failure: SourceFailure, names: dict[str, str]) -> SourceFailure:
    """``failure`` with server paths replaced by the uploaded file names."""
    source, reason = failure.source, failure.reason
    for path, name in names.items():
        source, reason = source.replace(path, name), reason.replace(path, name)
    return SourceFailure(source, reason)


def _upload_file(source: str | None, folder: Path) -> Path | None:
    """The file in the uploads ``folder`` that a document's ``source`` names (``file`` or ``file:line``)."""
    if not source:
        return None
    candidates = [Path(source)]
    if ":" in source:
        candidates.append(Path(source.rsplit(":", 1)[0]))
    for file in candidates:
        if file.parent == folder and not file.name.startswith("."):
            return file
    return None


def _uploaded_name(source: str | None, folder: Path) -> str | None:
    if _upload_file(source, folder) is None:
        return None
    return Path(source or "").name


def _prune_uploads(folder: Path, *, before: Iterable[DocumentInfo], after: Iterable[DocumentInfo]) -> None:
    """Delete the uploaded files that documents of the old index came from and no document of the new one does."""
    kept = {_upload_file(d.source, folder) for d in after}
    for doc in before:
        file = _upload_file(doc.source, folder)
        if file is not None and file not in kept:
            file.unlink(missing_ok=True)
