"""The index folder's locks, swaps and manifest reading under their old name: every name here is
:mod:`qa.index.storage`'s, read from it and set on it (as tests set ``qa.store.MAX_MANIFEST_BYTES``)."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from .index import storage as _storage

if TYPE_CHECKING:  # what type checkers see; at run time each name is looked up in qa.index.storage
    from .index.storage import *  # noqa: F403
    from .index.storage import MANIFEST as MANIFEST
    from .index.storage import MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES


class _Alias(types.ModuleType):
    """A module whose names are properties over qa.index.storage's: data descriptors, so that reads, writes
    and pytest's monkeypatch (which saves and restores what it finds) all reach the one real value."""


def _forward(name: str) -> property:
    def get(_: Any) -> Any:
        return getattr(_storage, name)

    def put(_: Any, value: Any) -> None:
        setattr(_storage, name, value)

    return property(get, put)


for _name in list(vars(_storage)):
    if not _name.startswith("__"):
        setattr(_Alias, _name, _forward(_name))
sys.modules[__name__].__class__ = _Alias
