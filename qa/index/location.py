"""Index locations that are not folders: ``milvus:<uri>#<collection>``.

``milvus:./corpus.db#articles`` is a Milvus Lite file (resolved against the current folder when parsed),
``milvus:http://host:19530#articles`` a Milvus server or cluster. Parsing imports nothing: the FAISS path
never loads pymilvus. See ``docs/notes/milvus-design.md``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArgumentError

__all__ = ["PREFIX", "MilvusLocation", "is_location", "parse_location"]

PREFIX = "milvus:"
#: qa's collection names are the location's name plus a suffix (``_dense_context``, 14 characters): Milvus
#: allows 255 characters in all.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
#: Milvus Lite's own rule for its file's name (``milvus_lite/server.py``).
_LITE_FILE = re.compile(r"^[a-zA-Z0-9.\-_]{1,36}$")
_SERVER = ("http://", "https://", "tcp://", "grpc://")
_COLLAPSED = re.compile(r"^(https?|tcp|grpc):/(?!/)")
_EXAMPLES = "milvus:./corpus.db#articles (a Milvus Lite file) or milvus:http://127.0.0.1:19530#articles (a server)"


@dataclass(frozen=True)
class MilvusLocation:
    """Where a Milvus-backed index lives: a Milvus Lite file or a server's URI, and its collections' prefix.

    Example:
        >>> loc = parse_location("milvus:http://127.0.0.1:19530#articles")
        >>> loc.uri, loc.collection, loc.lite, str(loc)
        ('http://127.0.0.1:19530', 'articles', False, 'milvus:http://127.0.0.1:19530#articles')
    """

    uri: str
    """A server's URI, or the Lite file's absolute path."""
    collection: str
    """The prefix of qa's collections (``<collection>_dense``, ``<collection>_meta``, ...)."""

    @property
    def lite(self) -> bool:
        """Whether this is a Milvus Lite file (opened by one process at a time)."""
        return not self.uri.startswith(_SERVER)

    def __str__(self) -> str:
        return f"{PREFIX}{self.uri}#{self.collection}"


def is_location(value: object) -> bool:
    """Whether ``value`` is meant as a Milvus location (a ``str`` starting with ``milvus:``), well-formed or not.

    Example:
        >>> is_location("milvus:./corpus.db#articles"), is_location("index/articles"), is_location(None)
        (True, False, False)
    """
    if isinstance(value, MilvusLocation):
        return True
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return isinstance(value, str) and value.strip().startswith(PREFIX)


def parse_location(value: str | os.PathLike[str] | MilvusLocation) -> MilvusLocation:
    """The :class:`MilvusLocation` that ``value`` names (a Lite path made absolute).

    Raises:
        ArgumentError: ``value`` is not of the form ``milvus:<uri>#<collection>``; the message shows one that is.

    Example:
        >>> loc = parse_location("milvus:/tmp/corpus.db#articles")
        >>> loc.uri, loc.collection, loc.lite
        ('/tmp/corpus.db', 'articles', True)
        >>> parse_location("milvus:/tmp/corpus.db")
        Traceback (most recent call last):
        ...
        qa.errors.ArgumentError: index location 'milvus:/tmp/corpus.db' names no collection: add #NAME, e.g. ...
    """
    if isinstance(value, MilvusLocation):
        return value
    text = os.fspath(value).strip() if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise ArgumentError(f"index location {value!r} must start with {PREFIX!r}, e.g. {_EXAMPLES}")
    # A location that went through pathlib.Path (an argparse type=Path, a Path-typed setting) lost one slash
    # of its scheme: put it back.
    rest = _COLLAPSED.sub(r"\1://", text[len(PREFIX):], count=1)
    uri, sep, name = rest.rpartition("#")
    if not sep:
        raise ArgumentError(f"index location {text!r} names no collection: add #NAME, e.g. {_EXAMPLES}")
    if not uri:
        raise ArgumentError(f"index location {text!r} names no Milvus URI before #{name}, e.g. {_EXAMPLES}")
    if not _NAME.match(name):
        raise ArgumentError(
            f"index location {text!r}: collection name {name!r} must be a letter or _ followed by letters, digits "
            "or _ (at most 200 characters), e.g. #articles"
        )
    if uri.startswith(_SERVER):
        return MilvusLocation(uri.rstrip("/"), name)
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise ArgumentError(f"index location {text!r}: unknown scheme {scheme}://; use http://, https:// or tcp:// "
                            f"for a server, or a path ending in .db for a Milvus Lite file, e.g. {_EXAMPLES}")
    path = Path(uri).expanduser()
    if path.suffix != ".db":
        raise ArgumentError(f"index location {text!r}: a Milvus Lite file's name must end in .db (Lite's rule), e.g. "
                            f"{_EXAMPLES}")
    if not _LITE_FILE.match(path.name):
        raise ArgumentError(
            f"index location {text!r}: Milvus Lite takes file names of at most 36 letters, digits, '.', '-' or '_'; "
            f"{path.name!r} is not one. Rename the file, e.g. milvus:{path.with_name('corpus.db')}#{name}"
        )
    return MilvusLocation(str(path.absolute()), name)
