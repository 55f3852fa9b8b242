"""Gradio's upload folder, made private: mode 0700 under the index folder, emptied as uploads are handled, removed
at shutdown.

Gradio writes every uploaded file to its upload folder before any handler sees it. Left alone that is
``/tmp/gradio``, created with the process umask (world-readable with the usual 022) and never emptied. Gradio reads
the folder from ``GRADIO_TEMP_DIR`` whenever it needs it (``gradio.utils.get_upload_folder()``: when a component is
created, when ``launch()`` creates the server, and when a request's files are checked against it), so the variable
must name the folder from before the Blocks is built until the server stops, and there is one folder per process.
This module owns it:

* :func:`hold` creates ``<index root>/.uploads-tmp/<pid>-<random>/`` (both 0700; a private folder in the system's
  temp folder if the index root is read-only) and points ``GRADIO_TEMP_DIR`` at it; every app of the process
  shares it, counted.
* :func:`discard` removes an upload's temporary copies once its handler is done with them (the workspace keeps its
  own copy of each file it indexed).
* :func:`release` removes the folder when the last app holding it closes, and restores ``GRADIO_TEMP_DIR``; an exit
  handler removes it at interpreter exit too. Only a killed process (SIGKILL) leaves it behind; the folder name
  starts with the process id.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import qa

__all__ = ["TEMP_FOLDER", "current", "discard", "hold", "release"]

#: Folder under the index root holding each running app's private upload folder.
TEMP_FOLDER = ".uploads-tmp"
_ENV = "GRADIO_TEMP_DIR"
log = logging.getLogger(__name__)

_lock = threading.Lock()
_folder: Path | None = None
_holders = 0
_previous: str | None = None
_exit_hook = False


def current() -> Path | None:
    """The process's private upload folder, or ``None`` when no app holds one."""
    return _folder


def hold(settings: qa.Settings) -> Path:
    """The process's private upload folder, created (0700, under ``settings.index_root``) if no app holds it yet.

    Sets ``GRADIO_TEMP_DIR`` to it; each call must be matched by one :func:`release`. When the index root cannot
    be written, the folder is a private (0700) one in the system's temp folder instead, and a warning says so.
    """
    global _folder, _holders, _previous, _exit_hook
    with _lock:
        if _folder is None or not _folder.is_dir():
            folder = _create(settings.index_root / TEMP_FOLDER)
            if _folder is None:
                _previous = os.environ.get(_ENV)
            _folder = folder
            os.environ[_ENV] = str(folder)
            if not _exit_hook:
                atexit.register(_remove)
                _exit_hook = True
        _holders += 1
        return _folder


def _create(parent: Path) -> Path:
    """A new 0700 folder in ``parent`` (made 0700 too), or, if that cannot be written, in the system's temp folder."""
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        parent.chmod(0o700)  # ours by name: tighten one left with looser rights
        return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent)).resolve()  # mkdtemp makes it 0700
    except OSError as exc:
        # A read-only index folder can still be served: a private folder of the system's is private too.
        folder = Path(tempfile.mkdtemp(prefix=f"qa-uploads-{os.getpid()}-")).resolve()
        log.warning("cannot create %s (%s); uploads are received in %s instead", parent, exc.strerror or exc, folder)
        return folder


def release() -> None:
    """Give back one :func:`hold`; the last one removes the folder (with anything left in it)."""
    global _holders
    with _lock:
        _holders = max(0, _holders - 1)
        if _holders == 0:
            _remove()


def _remove() -> None:
    global _folder, _holders
    folder, _folder, _holders = _folder, None, 0
    if folder is None:
        return
    shutil.rmtree(folder, ignore_errors=True)
    if folder.parent.name == TEMP_FOLDER:
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # .uploads-tmp, unless another app process still has its folder there
    if os.environ.get(_ENV) == str(folder):
        if _previous is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = _previous


def discard(paths: Iterable[Path]) -> None:
    """Delete Gradio's temporary copies of handled uploads: each file, and its own subfolder once empty.

    Only paths inside the private upload folder are touched; anything else is left alone.

    Example:
        >>> with tempfile.NamedTemporaryFile() as elsewhere:
        ...     discard([Path(elsewhere.name)])  # not an upload: left alone
        ...     Path(elsewhere.name).exists()
        True
    """
    folder = _folder
    if folder is None:
        return
    for path in paths:
        try:
            resolved = path.resolve()
        except OSError:
            continue
        if resolved == folder or not resolved.is_relative_to(folder):
            continue
        with contextlib.suppress(OSError):
            resolved.unlink()
        # Gradio stores each file in a subfolder named by a hash of its content: drop it once empty.
        if resolved.parent != folder:
            with contextlib.suppress(OSError):
                resolved.parent.rmdir()
