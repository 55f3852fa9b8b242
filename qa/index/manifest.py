"""An index's manifest: its text on disk, and whether these settings can use the index it describes."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import sentences as _sentences
from ..checks import check_path
from ..config import Settings
from ..documents import Document
from ..errors import IndexMismatchError
from ..lexical import TOKENIZER
from .storage import fix_hint, read_manifest
from .storage import locked as _locked
from .storage import recover_interrupted_swap as _recover_interrupted_swap

#: Bump when the on-disk layout or the meaning of stored vectors changes; older indexes are then rebuilt.
FORMAT_VERSION = 6


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as indented JSON, each entry of a list (a document each) on one line.

    ``json`` indents only with its pure-Python encoder, and each entry costs microseconds even with the C one:
    past :data:`_LINE_PER_ENTRY` entries (a million-sentence index lists 200k documents, 1-2 s) the list is
    written compactly in one call.
    """
    encode = json.JSONEncoder(ensure_ascii=False).encode
    parts = []
    for key, value in manifest.items():
        if isinstance(value, list) and value and len(value) <= _LINE_PER_ENTRY:
            text = "[\n    " + ",\n    ".join(map(encode, value)) + "\n  ]"
        elif isinstance(value, list):
            text = encode(value)
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


_LINE_PER_ENTRY = 10_000


def checked_manifest(path: str | Path, settings: Settings, *, check_model: bool = True) -> dict[str, Any]:
    """The manifest of the index saved at ``path``, if these settings can use that index.

    Raises:
        IndexNotFoundError: nothing is saved at ``path``.
        IndexMismatchError: it was built with another model, format version or segmenter.
        IndexCorruptError: the manifest cannot be read.
    """
    target = check_path(path)
    with _locked(target, exclusive=not target.exists()):  # as Index.load: never a half-swapped save
        return _checked_manifest(target, settings, check_model=check_model)


def _checked_manifest(target: Path, settings: Settings, *, check_model: bool) -> dict[str, Any]:
    _recover_interrupted_swap(target)
    manifest = read_manifest(target)
    problem = manifest_mismatch(manifest, settings, check_model=check_model)
    if problem:
        raise IndexMismatchError(f"index at {target} {problem}; {fix_hint(target)}")
    return manifest


def holds_unchanged(manifest: dict[str, Any], documents: Sequence[Document]) -> bool:
    """Whether the index with ``manifest`` holds each of ``documents`` (by id) with the same content: adding
    them would change nothing, which the manifest alone tells (a no-op ``qa index add`` then opens no index:
    0.7 s of its 1.1 s on a 2k index)."""
    held = {d.get("doc_id"): d.get("sha256") for d in manifest.get("documents", []) if isinstance(d, dict)}
    return bool(documents) and all(held.get(d.doc_id) == d.sha256 for d in documents)


def manifest_mismatch(manifest: dict[str, Any], settings: Settings, *, check_model: bool = True) -> str | None:
    """Why an index with ``manifest`` cannot serve ``settings``, or ``None`` if it can."""
    from ..embedding import resolve_model, vector_precision

    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        return f"has format version {version}; this qa reads version {FORMAT_VERSION}"
    seg = manifest.get("segmenter")
    if seg != _sentences.SEGMENTER:
        return f"was split into sentences by {seg}; this qa uses {_sentences.SEGMENTER}"
    if manifest.get("lexical") != TOKENIZER:
        return f"was built with BM25 tokenisation {manifest.get('lexical')}; this qa uses {TOKENIZER}"
    if not check_model:
        return None
    model = manifest.get("model")
    if not isinstance(model, dict):
        return "has no valid model entry in its manifest"
    spec = resolve_model(settings.model, verify=settings.verify_model, cache_dir=settings.model_cache_dir)
    if model.get("name") != spec.name:
        return (
            f"was built with model {model.get('name')} ({model.get('dimension')}-d); settings ask for {spec.name}"
        )
    built_hash, current_hash = model.get("weights_sha256"), spec.weights_sha256
    if built_hash and current_hash and built_hash != current_hash:
        return f"was built with other weights of {spec.name} ({str(built_hash)[:12]}…, now {current_hash[:12]}…)"
    # torch and onnx compute the same float32 vectors, so either may query the other's index; int8 ones differ.
    backend = settings.effective_backend
    built, wanted = model.get("precision", "float32"), vector_precision(backend)
    if built != wanted:
        return (
            f"holds {built} vectors (backend {model.get('backend')}); backend={backend} makes {wanted} "
            f"ones. Set QA_BACKEND={model.get('backend')}, or rebuild with the backend you want"
        )
    return None

