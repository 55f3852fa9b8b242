"""Which Milvus index each dense collection gets, fitted to the number of sentences as the FAISS path fits its own.

Up to ``Settings.exact_limit`` sentences (``index_type=auto``), or always with ``index_type=flat``: ``FLAT``,
exact brute force. Past it, or always with ``index_type=ivf``: ``IVF_FLAT`` with the lists FAISS would use
(:func:`qa.index.stores.faiss.ivf_lists`: 4 x sqrt(n), 16 at least, 1,024 at most up to a million sentences) and
the same ``nprobe`` (``Settings.nprobe``, or :func:`~qa.index.stores.faiss.default_nprobe` of the lists).
``IVF_FLAT`` keeps the float vectors, so a search of given candidates that probes every list (what
:meth:`qa.index.stores.milvus.MilvusStore.score` asks) still scores each exactly. It is the one clustered index
both Milvus Lite 2.5 and a server have (Lite has no HNSW or scalar codes).

The context channel mirrors FAISS's choice too: past the exact size it only scores candidates (it is never
searched, ``qa.index.index.SCORING_ONLY``), so it needs no clusters and stays ``FLAT`` (FAISS stores it as plain
codes for the same reason).

An index is a collection's, not a generation's: when a save wants another one than the collection has (FLAT
against IVF_FLAT, or lists off by more than half or double), it rebuilds it (release, drop, create, load), and
searches of other readers fail while it does; a save at the same size class never does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from .stores.faiss import default_nprobe, ivf_lists

__all__ = ["VectorIndex", "fitted", "from_manifest", "refit"]

log = logging.getLogger("qa.index")


@dataclass(frozen=True)
class VectorIndex:
    """A dense collection's Milvus index: ``kind`` ``FLAT`` or ``IVF_FLAT``, its lists and the search's nprobe.

    Example:
        >>> VectorIndex("IVF_FLAT", nlist=316, nprobe=19).describe()
        'IVF_FLAT nlist=316 nprobe=19 IP'
        >>> VectorIndex("FLAT").search_params()
        {}
    """

    kind: str = "FLAT"
    nlist: int = 0
    nprobe: int = 0

    def describe(self) -> str:
        """The index as the manifest and ``VectorStore.describe`` name it."""
        if self.kind == "FLAT":
            return "FLAT IP"
        return f"{self.kind} nlist={self.nlist}{f' nprobe={self.nprobe}' if self.nprobe else ''} IP"

    def build_params(self) -> dict[str, int]:
        """The ``params`` of ``add_index``."""
        return {} if self.kind == "FLAT" else {"nlist": self.nlist}

    def search_params(self) -> dict[str, int]:
        """The ``params`` of a search that proposes candidates (FLAT takes none)."""
        return {} if self.kind == "FLAT" else {"nprobe": self.nprobe}

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records for it (read back by :func:`from_manifest`)."""
        return {"type": self.kind, "metric": "IP", "nlist": self.nlist, "nprobe": self.nprobe}


def fitted(n: int, settings: Settings, *, context: bool = False) -> VectorIndex:
    """The index for a dense collection of ``n`` sentences (``context``: the context channel's).

    Example:
        >>> from qa.config import Settings
        >>> fitted(1_000, Settings()).kind, fitted(100_000, Settings()).describe()
        ('FLAT', 'IVF_FLAT nlist=1024 nprobe=64 IP')
        >>> fitted(100_000, Settings(), context=True).kind, fitted(100_000, Settings(index_type="flat")).kind
        ('FLAT', 'FLAT')
    """
    large = n > settings.exact_limit
    if settings.index_type == "flat" or (settings.index_type == "auto" and not large) or (context and large):
        return VectorIndex("FLAT")
    nlist = ivf_lists(n)
    return VectorIndex("IVF_FLAT", nlist=nlist, nprobe=settings.nprobe or default_nprobe(nlist))


def from_manifest(entry: dict[str, Any] | None, settings: Settings) -> VectorIndex:
    """The index a manifest's channel entry records (``FLAT`` for indexes saved before it was recorded), with the
    nprobe of ``settings`` when it sets one (as a FAISS index's load applies it).

    Example:
        >>> from qa.config import Settings
        >>> from_manifest({"type": "IVF_FLAT", "nlist": 64, "nprobe": 16}, Settings(nprobe=8)).nprobe
        8
    """
    if not entry or entry.get("type", "FLAT") == "FLAT":
        return VectorIndex("FLAT")
    nlist = int(entry.get("nlist", 0))
    return VectorIndex(str(entry["type"]), nlist=nlist,
                       nprobe=settings.nprobe or int(entry.get("nprobe", 0)) or default_nprobe(nlist))


def _current(c: Any, name: str, timeout: int) -> VectorIndex | None:
    """The index the collection ``name`` has on ``vec`` (``None``: none)."""
    if "vec" not in c.list_indexes(name, timeout=timeout):
        return None
    found = c.describe_index(name, "vec", timeout=timeout)
    return VectorIndex(str(found.get("index_type", "FLAT")), nlist=int(found.get("nlist", 0) or 0))


def refit(c: Any, name: str, wanted: VectorIndex, *, timeout: int) -> bool:
    """Give the existing collection ``name`` the index ``wanted`` unless it has one of that kind and about that
    many lists already; returns whether it rebuilt the index (other readers' searches fail meanwhile)."""
    have = _current(c, name, timeout)
    if have is not None and have.kind == wanted.kind and (
            wanted.kind == "FLAT" or wanted.nlist / 2 <= have.nlist <= wanted.nlist * 2):
        return False
    log.warning("rebuilding the index of the Milvus collection %s: %s -> %s (searches of %s fail until it is "
                "loaded again)", name, "none" if have is None else have.describe(), wanted.describe(), name)
    c.release_collection(name, timeout=timeout)
    if have is not None:
        c.drop_index(name, "vec", timeout=timeout)
    params = c.prepare_index_params()
    params.add_index(field_name="vec", index_type=wanted.kind, metric_type="IP", params=wanted.build_params())
    c.create_index(name, params, timeout=timeout)
    c.load_collection(name, timeout=timeout)
    return True
