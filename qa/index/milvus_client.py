"""The connections to Milvus: pymilvus imported on first use, one ``MilvusClient`` per URI, the server's version.

A Milvus Lite file (``milvus:./corpus.db#NAME``) starts its own server in the process that opens it and can be
opened by one process at a time; :func:`close` stops it. A server's version is read when the process connects,
and every feature newer than :data:`MINIMUM_SERVER` is checked with :func:`require` before anything is written.
pymilvus is imported only here (by :func:`_pymilvus`), and only when a location is used.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import warnings
from collections.abc import Iterable
from typing import Any

from ..errors import IndexUnavailableError, MissingDependencyError
from .location import MilvusLocation, parse_location

__all__ = ["MINIMUM_SERVER", "READ_TIMEOUT", "WRITE_TIMEOUT", "client", "close", "last_write", "reads_at", "require",
           "server_version"]

#: Seconds any one call may take (an int: pymilvus ignores a float timeout when it bounds its retries).
READ_TIMEOUT = 60
WRITE_TIMEOUT = 300
#: Reads see every write made before them (a save flushes, then publishes).
_STRONG = {"consistency_level": "Strong"}
#: A committed generation's rows are read at the timestamp of its save (see :func:`reads_at`), and the question
#: "which generation is committed?" asked per call (qa.retrieve) at bounded staleness: both wait for no time tick.
_BOUNDED = {"consistency_level": "Bounded"}
#: How far a save's timestamp may lie outside its own wall-clock span before it is not trusted (clock skew).
_SKEW_S = 60.0
#: The oldest server qa's calls work on: query iterators (every load reads its rows through one) came in 2.3.
MINIMUM_SERVER = (2, 3)
_clients: dict[str, Any] = {}
_versions: dict[str, tuple[str, tuple[int, int]]] = {}
_clients_lock = threading.Lock()
_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def _pymilvus(loc: MilvusLocation) -> Any:
    """The pymilvus module, or a :class:`MissingDependencyError` naming the extra to install."""
    try:
        with warnings.catch_warnings():
            # milvus-lite 2.5.1 imports pkg_resources, which warns that it is deprecated.
            warnings.simplefilter("ignore")
            import pymilvus

            if loc.lite:
                import milvus_lite  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"the index location {loc} needs pymilvus{' and milvus-lite' if loc.lite else ''} ({exc.name} is not "
            "installed); install them with: pip install 'qa[milvus]'"
        ) from None
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("pymilvus")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # it logs every failed call, which qa reports itself
    return pymilvus


def client(loc: MilvusLocation) -> Any:
    """The process's ``MilvusClient`` for ``loc``'s URI (opened on first use; a Lite file starts its server)."""
    with _clients_lock:
        found = _clients.get(loc.uri)
        if found is not None:
            return found
        pymilvus = _pymilvus(loc)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made = pymilvus.MilvusClient(loc.uri, alias=f"qa-{len(_clients)}-{id(loc)}", timeout=READ_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - pymilvus raises its own types, and RuntimeError from Lite
            hint = ("another process may have the file open: Milvus Lite opens a file in one process at a time "
                    "(use a Milvus server to share an index)") if loc.lite else "check that the server is running"
            raise IndexUnavailableError(f"cannot open {loc}: {' '.join(str(exc).split())[:300]}; {hint}") from None
        if not loc.lite:
            _versions[loc.uri] = _read_version(made, loc)
        _clients[loc.uri] = made
    if not loc.lite:
        require(loc, "query iterators (every load reads its rows with one)", MINIMUM_SERVER)
    return made


def _read_version(c: Any, loc: MilvusLocation) -> tuple[str, tuple[int, int]]:
    """A server's version, as it reports it and as (major, minor). (Milvus Lite answers UNIMPLEMENTED: never asked.)"""
    try:
        text = str(c.get_server_version(timeout=READ_TIMEOUT))
    except Exception as exc:  # noqa: BLE001 - pymilvus and grpc raise their own types
        raise IndexUnavailableError(f"cannot read the version of the Milvus server at {loc}: "
                                    f"{' '.join(str(exc).split())[:300]}; check that the server is running") from None
    found = _VERSION.match(text.strip())
    if found is None:
        raise IndexUnavailableError(f"the Milvus server at {loc} reports the version {text!r}, which qa cannot read; "
                                    f"qa needs Milvus {'.'.join(map(str, MINIMUM_SERVER))} or later")
    return text, (int(found.group(1)), int(found.group(2)))


def server_version(loc: MilvusLocation) -> tuple[str, tuple[int, int]] | None:
    """The version the Milvus server at ``loc`` reported when the process connected (``None`` for a Lite file).

    Example:
        >>> from qa.index.location import parse_location
        >>> server_version(parse_location("milvus:/tmp/never-opened.db#articles")) is None
        True
    """
    if loc.lite:
        return None
    if loc.uri not in _versions:
        client(loc)
    return _versions[loc.uri]


def require(loc: MilvusLocation, feature: str, minimum: tuple[int, int]) -> None:
    """Raise a clear error unless the server at ``loc`` is at least ``minimum`` (Milvus Lite 2.5 always passes).

    A 2.3 server creates a sparse-vector field without complaint and fails only at the first insert, so a
    feature newer than the server must be checked here, before anything is written.

    Raises:
        IndexUnavailableError: the server is older than ``minimum``; names its version and the one needed.

    Example:
        >>> from qa.index.location import parse_location
        >>> require(parse_location("milvus:/tmp/never-opened.db#articles"), "sparse vectors", (2, 4))
    """
    found = server_version(loc)
    if found is None or found[1] >= minimum:
        return
    need = ".".join(map(str, minimum))
    raise IndexUnavailableError(
        f"the Milvus server at {loc} is version {found[0]}; {feature} need Milvus {need} or later. Upgrade the "
        f"server to {need} or later, or use a Milvus Lite file (milvus:./corpus.db#{loc.collection})"
    )


def close(loc: MilvusLocation | str) -> None:
    """Close the process's connection to ``loc`` and, for a Milvus Lite file, stop its server (releasing the file
    for other processes). Indexes opened from it stop working."""
    loc = parse_location(loc)
    with _clients_lock:
        found = _clients.pop(loc.uri, None)
        _versions.pop(loc.uri, None)
    if found is not None:
        with contextlib.suppress(Exception):  # a connection already gone
            found.close()
    if loc.lite:
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:
            return
        if str(loc.uri) in getattr(server_manager_instance, "_servers", {}):
            server_manager_instance.release_server(loc.uri)


def reads_at(stamp: int) -> dict[str, Any]:
    """Read options that see every row written before ``stamp`` (a Milvus hybrid timestamp) and wait for nothing
    later; ``0`` (not known: an index saved by an older qa, or a server that reports no timestamps) reads at Strong.

    A Strong read waits until the query nodes have passed the moment it was sent, about two of the proxy's time
    ticks (200 ms each by default): ~0.4 s a call, several calls a question. A generation's rows never change
    once it is committed, so reading at the timestamp of its save sees all of them at once.

    Example:
        >>> reads_at(0), reads_at(7)["consistency_level"]
        ({'consistency_level': 'Strong'}, 'Customized')
    """
    if stamp <= 0:
        return dict(_STRONG)
    return {"consistency_level": "Customized", "guarantee_timestamp": int(stamp)}


def last_write(names: Iterable[str], since: float) -> int:
    """The Milvus timestamp of this process's last write to any of the collections ``names``, made since the wall
    clock time ``since`` (seconds); 0 when there is none or it cannot be trusted.

    pymilvus records it per collection name for the whole process, whatever the server: a name written on
    another server with a clock ahead of this one would give a timestamp every reader waits for, so one outside
    ``since`` .. now (with a minute's skew allowed) is not used.
    """
    from pymilvus.client import ts_utils
    from pymilvus.client.utils import hybridts_to_unixtime

    stamp = max((int(ts_utils.get_collection_ts(n) or 0) for n in names), default=0)
    return stamp if since - _SKEW_S <= hybridts_to_unixtime(stamp) <= time.time() + _SKEW_S else 0
