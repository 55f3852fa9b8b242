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
``torch.onnx`` and ``onnxruntime`` directly.

Once the export exists, a model made of the usual three modules (Transformer, mean/CLS/max Pooling, Normalize;
the default model and most sentence-transformers models) is run by :class:`OnnxEncoder` with only ``tokenizers``
and ``onnxruntime``: PyTorch and sentence-transformers are not even imported, which is what makes a cold
``qa retrieve`` start in about a second instead of ten. Anything else keeps sentence-transformers' own
tokenization and pooling around the ONNX transformer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
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

from .config import BACKENDS, Settings, get_settings
from .errors import ConfigError, ModelError
from .models import DEFAULT_MODEL_SHA256, ModelSpec, default_model_cache_dir, publish_folder, resolve_model
from .models import file_sha256 as _file_sha256
from .scheduling import PriorityGate, QuestionTraffic

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_MODEL_SHA256",
    "ONNX_RECIPE",
    "Encoder",
    "ModelSpec",
    "OnnxEncoder",
    "default_model_cache_dir",
    "ensure_onnx_export",
    "get_encoder",
    "onnx_export_dir",
    "resolve_model",
    "vector_precision",
]

log = logging.getLogger(__name__)

#: At most this many texts are "a few": a question, or a small update. They run at once on the caller's thread.
_SMALL_BATCH = 8
#: Texts an int8 bulk worker takes at a time: how often it checks for questions (~8 runs of a few ms each).
_SLICE = 8
#: Longest a float bulk batch waits for a question being encoded to finish (a question takes milliseconds).
_YIELD_S = 0.05

_PRECISION = {"torch": "float32", "onnx": "float32", "onnx-int8": "int8"}
#: Version of the export recipe below; bumping it makes every cached export be made anew.
ONNX_RECIPE = 2
_ONNX_OPSET = 17
_ONNX_FILE = "model.onnx"
_EXPORT_INFO = "export.json"
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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
            if backend == "onnx":
                optimized = _export_float(model, tmp / _ONNX_FILE, optimize=True)
            else:  # int8 weights are quantized from the plain float graph, which the quantizer knows best
                optimized = _export_float(model, tmp / "float.onnx", optimize=False)
                _quantize_int8(tmp / "float.onnx", tmp / _ONNX_FILE)
                (tmp / "float.onnx").unlink()
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
            "fused": optimized,
            "onnx_sha256": _file_sha256(tmp / _ONNX_FILE),
            "versions": _versions(),
            "export_seconds": round(time.perf_counter() - start, 2),
        }
        (tmp / _EXPORT_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        for name in (_ONNX_FILE, _EXPORT_INFO):
            _fsync(tmp / name)
        publish_folder(tmp, target, complete=_valid_export)
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


def _export_float(model: SentenceTransformer, path: Path, *, optimize: bool) -> bool:
    """Export the transformer of ``model`` (token ids in, ``last_hidden_state`` out) to ``path``.

    With ``optimize``, BERT-family graphs are then fused by ONNX Runtime's transformer optimizer (attention,
    skip-layer-norm and bias-GELU kernels, about 10% faster on a CPU), kept only if the fused graph gives the
    same output as the plain one on the tracing batch. Returns whether the fused graph was kept.
    """
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
    if not optimize:
        return False
    return _fuse(path, hf_model.config, {n: features[n].numpy() for n in names})


#: Model types whose graphs ONNX Runtime's "bert" optimizer knows how to fuse.
_FUSABLE = {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra", "camembert"}


def _fuse(path: Path, config: Any, feed: dict[str, np.ndarray]) -> bool:
    """Replace ``path`` by its fused graph if the optimizer applies and the outputs agree; else leave it."""
    if getattr(config, "model_type", None) not in _FUSABLE:
        return False
    import onnxruntime as ort

    fused = path.with_name(f"fused-{path.name}")
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with _quiet():
            graph = optimize_model(str(path), model_type="bert", num_heads=int(config.num_attention_heads),
                                   hidden_size=int(config.hidden_size), opt_level=1)
            graph.save_model_to_file(str(fused))
        outputs = []
        for candidate in (path, fused):
            session = ort.InferenceSession(str(candidate), providers=["CPUExecutionProvider"])
            outputs.append(session.run(["last_hidden_state"], feed)[0])
        if outputs[0].shape != outputs[1].shape or float(np.abs(outputs[0] - outputs[1]).max()) > 1e-3:
            log.warning("the fused ONNX graph disagrees with the plain one; keeping the plain graph")
            return False
        os.replace(fused, path)
        return True
    except Exception as exc:  # noqa: BLE001 - an optimizer that fails here costs speed, not correctness
        log.warning("could not fuse the ONNX graph (%s: %s); keeping the plain graph", type(exc).__name__, exc)
        return False
    finally:
        fused.unlink(missing_ok=True)


def _quantize_int8(source: Path, path: Path) -> None:
    """Quantize the weights of ``source``'s matrix multiplications to int8, one scale per output channel.

    Per-tensor scales cost too much quality on this kind of model (cosine to the float vectors down to 0.93);
    per channel it stays above 0.98.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer writes a shape-inferred copy beside its input: give it a private input in the output's
    # (temporary) folder, so that processes quantizing at once never share that file or litter the cache.
    private = path.with_name(f"float-{source.name}")
    try:
        os.link(source, private)
    except OSError:  # no hard links on this file system
        shutil.copyfile(source, private)
    try:
        with _quiet():
            quantize_dynamic(str(private), str(path), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        for leftover in path.parent.glob(f"{private.stem}*"):
            leftover.unlink()


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
                self._sessions[threads] = _ort_session(self.path, threads)
            return self._sessions[threads]

        def forward(self, **features: Any) -> dict[str, torch.Tensor]:
            feed = {name: features[name].detach().cpu().numpy() for name in self.input_names}
            (hidden,) = self.session(torch.get_num_threads()).run(["last_hidden_state"], feed)
            return {"last_hidden_state": torch.from_numpy(hidden)}

    return OnnxTransformer()


def _ort_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session running ``path`` with ``threads`` intra-op threads (0: one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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


def show_progress(progress: bool | None, n_texts: int) -> bool:
    """Whether to draw a progress bar: as asked, or (``None``) for long runs on a terminal."""
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
        batch_size: int = 32,
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
        # The tokenizer and torch are not documented as thread-safe for concurrent calls on one model, so one
        # thread runs it at a time. A long encode holds the gate one batch at a time: before each batch
        # (sentence-transformers calls the model once per batch) it lets waiting questions go first, so a
        # question waits for at most one batch of a document being indexed, never the whole document. The
        # batches themselves are formed by sentence-transformers as before, so no vector changes.
        self._gate = PriorityGate()
        self._bulk = threading.local()
        self._model.register_forward_pre_hook(self._between_batches)

    def encode_documents(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed passages (uses the model's document prompt, if it defines one)."""
        return self._encode(self._model.encode_document, texts, progress)

    def encode_queries(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed questions (uses the model's query prompt, if it defines one)."""
        return self._encode(self._model.encode_query, texts, progress)

    def _between_batches(self, module: Any, args: Any) -> None:
        """Forward pre-hook: inside a long encode, let the questions waiting now run before the next batch."""
        if getattr(self._bulk, "active", False):
            self._gate.yield_to_questions()

    def _encode(self, fn: Any, texts: list[str], progress: bool | None) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        kwargs = {
            "batch_size": self.batch_size,
            "show_progress_bar": show_progress(progress, len(texts)),
            "convert_to_numpy": True,
            "normalize_embeddings": True,  # unit vectors: inner product == cosine similarity
        }
        if len(texts) > _SMALL_BATCH:
            with self._gate.bulk():
                self._bulk.active = True
                try:
                    vectors = fn(texts, **kwargs)
                finally:
                    self._bulk.active = False
            return np.ascontiguousarray(vectors, dtype=np.float32)
        with self._gate.question():
            # A few short texts gain nothing from intra-op threads, and when the cores are busy torch's
            # threads wait on each other: one query took ~0.5 s with 2 threads against ~20 ms with 1.
            # (The ONNX backends follow the same setting: they pick a session with this many threads.)
            # The setting is process-wide, which is safe here: no other thread runs the model meanwhile.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                vectors = fn(texts, **kwargs)
            finally:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(vectors, dtype=np.float32)


@dataclass(frozen=True)
class _Recipe:
    """What :class:`OnnxEncoder` needs to reproduce sentence-transformers' encode around the ONNX transformer."""

    tokenizer: Path
    max_length: int
    pooling: str
    pad_token: str
    dimension: int


def _simple_recipe(folder: Path) -> _Recipe | None:
    """The recipe of the model in ``folder`` if it is Transformer + Pooling (+ Normalize) with no prompts, else None.

    Anything unusual (prompts, extra modules such as Dense, weighted pooling, no fast tokenizer) returns None, and
    sentence-transformers itself is used around the ONNX transformer instead.
    """
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or modules[0]["path"]:
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        modes = [m for m in ("cls_token", "mean_tokens", "max_tokens") if pooling.get(f"pooling_mode_{m}")]
        others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k[13:] not in modes]
        if len(modes) != 1 or others or pooling.get("include_prompt") is False:
            return None
        st_config = folder / "config_sentence_transformers.json"
        if st_config.is_file() and json.loads(st_config.read_text(encoding="utf-8")).get("prompts"):
            return None
        bert_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        if bert_config.get("do_lower_case"):
            return None
        max_length = int(bert_config["max_seq_length"])
        tokenizer = folder / "tokenizer.json"
        tok_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad = tok_config.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        if not tokenizer.is_file() or not isinstance(pad, str):
            return None
        return _Recipe(tokenizer, max_length, modes[0].split("_")[0], pad, int(pooling["word_embedding_dimension"]))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers often narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxEncoder:
    """An ONNX export run by ONNX Runtime with the model's own fast tokenizer: no PyTorch in the process.

    Does what sentence-transformers' ``encode`` does for a Transformer + Pooling (+ Normalize) model: strip
    each text, tokenize (truncated to the model's ``max_seq_length``, padded to the longest in its batch), run
    the transformer, pool the token vectors under the attention mask, normalize. Texts are batched longest
    first, as sentence-transformers does, so that padding stays small; with int8 weights each text runs
    alone instead (:meth:`_encode_one_by_one`).

    Questions never wait for a document being embedded. A few texts (a question, up to :data:`_SMALL_BATCH`)
    run at once on the calling thread, on a single-threaded session of their own that no bulk work uses: ONNX
    Runtime allows concurrent ``run`` calls on one session, and the tokenizer is only read, so questions take
    no lock at all. Bulk work (more texts: a document being indexed) runs in slices on sessions of its own,
    and makes room for questions in flight (see :class:`~qa.scheduling.QuestionTraffic`): with int8 weights
    it drops to one core while questions are being answered; float batches wait, between batches, for a
    question being encoded. What goes into each run (the text alone, or the same longest-first batch) does
    not depend on any of this, so the vectors are the same whether or not questions run meanwhile.

    Attributes: as :class:`Encoder`.
    """

    def __init__(self, spec: ModelSpec, *, backend: str, onnx_path: Path, recipe: _Recipe, batch_size: int = 32):
        from tokenizers import Tokenizer

        self.spec = spec
        self.backend = backend
        self.precision = vector_precision(backend)
        self.onnx_path: Path = onnx_path
        self.batch_size = batch_size
        self.dimension = recipe.dimension
        self._pooling = recipe.pooling
        self._tokenizer = Tokenizer.from_file(str(recipe.tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=recipe.max_length)
        pad_id = self._tokenizer.token_to_id(recipe.pad_token)
        if pad_id is None:
            raise ModelError(f"the tokenizer of {spec.name!r} has no pad token {recipe.pad_token!r}; use backend=torch")
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token=recipe.pad_token)
        # The tokenizer is never modified after this point, so concurrent encode_batch calls only read it.
        self._sessions: dict[int, Any] = {}
        self._sessions_lock = threading.Lock()  # sessions are made lazily, from any thread, once each
        self._solo: queue.SimpleQueue[Any] = queue.SimpleQueue()  # idle single-threaded bulk sessions
        self._solo_made = 0
        self._batch_lock = threading.Lock()  # one float bulk batch at a time (it already uses every core)
        self._traffic = QuestionTraffic()
        try:
            self._inputs = [i.name for i in self._session(1).get_inputs()]
        except Exception as exc:
            raise ModelError(
                f"cannot load the ONNX export {onnx_path}: {type(exc).__name__}: {exc}; "
                "delete its folder to export it again"
            ) from exc

    def _session(self, threads: int) -> Any:
        """The shared session with ``threads`` intra-op threads (0 = one per core).

        ``_session(1)`` serves questions and other small calls, concurrently: a single-threaded session runs
        on the calling thread. ``_session(0)`` runs float bulk batches.
        """
        with self._sessions_lock:
            if threads not in self._sessions:
                self._sessions[threads] = _ort_session(self.onnx_path, threads)
            return self._sessions[threads]

    def encode_documents(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed passages (the model defines no prompts, so the same as :meth:`encode_queries`)."""
        return self._encode(texts, progress, question=False)

    def encode_queries(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        """Embed questions (a few at once never wait for documents being embedded; see the class)."""
        return self._encode(texts, progress, question=True)

    def _encode(self, texts: list[str], progress: bool | None, *, question: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # Longest first, as sentence-transformers does: float batches are consecutive runs of this order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        bar = None
        if show_progress(progress, len(texts)):
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="Batches", unit="text")
        try:
            if len(texts) <= _SMALL_BATCH:
                with self._traffic.question() if question else contextlib.nullcontext():
                    self._encode_small(texts, order, out, bar)
            elif self.precision == "int8":
                self._encode_one_by_one(texts, order, out, bar)
            else:
                self._encode_batches(texts, order, out, bar)
        finally:
            if bar is not None:
                bar.close()
        return out

    def _encode_small(self, texts: list[str], order: list[int], out: np.ndarray, bar: Any) -> None:
        """A few texts on the calling thread and the shared single-threaded session: no lock, no waiting.

        As in bulk work, int8 runs each text alone and float runs longest-first batches; both here and there
        the sessions are single-threaded for int8, so a text's vector is the same in a question and a build.
        """
        session = self._session(1)
        size = 1 if self.precision == "int8" else self.batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            out[batch] = self._run(session, [texts[i].strip() for i in batch])
            if bar is not None:
                bar.update(len(batch))

    def _encode_batches(self, texts: list[str], order: list[int], out: np.ndarray, bar: Any) -> None:
        """Float bulk work: longest-first batches on the all-cores session, one batch per slice.

        The batches are exactly those of one uninterrupted pass. Between two, the encoder is free for other
        bulk work, and a question being encoded right now gets the cores first (a wait of milliseconds,
        bounded so that a stream of questions cannot stall the build).
        """
        session = self._session(0)
        for start in range(0, len(order), self.batch_size):
            self._traffic.wait_idle(_YIELD_S)
            batch = order[start : start + self.batch_size]
            with self._batch_lock:
                out[batch] = self._run(session, [texts[i].strip() for i in batch])
            if bar is not None:
                bar.update(len(batch))

    def _solo_session(self) -> Any:
        """An idle single-threaded bulk session (made on demand, at most one per core; else wait for one)."""
        with self._sessions_lock:
            make = self._solo_made < _cores() and self._solo.empty()
            self._solo_made += make
        return _ort_session(self.onnx_path, 1) if make else self._solo.get()

    def _encode_one_by_one(self, texts: list[str], order: list[int], out: np.ndarray, bar: Any) -> None:
        """Encode each text in a run of its own, on one single-threaded session per core, side by side.

        The int8 graph quantizes its activations with one scale per run, so in a batch a text's vector would
        depend on the texts beside it (cosine down to 0.97): alone, a text always gets the same vector, in a
        build, an update or as a question. It is also faster here: no padding, and two single-threaded
        sessions at once do 1.7x the texts per second of batches of 32 on two threads
        (``benchmarks/encoding.py``).

        The texts are taken in slices of :data:`_SLICE` by one worker per core. While questions are in
        flight, only the first worker keeps going, so the build leaves the other cores to the questions
        (on this 2-core machine a question otherwise shares the CPU with two encoding threads); the others
        resume when the questions stop. The sessions are shared by every bulk call, one call per session at
        a time, so two builds at once still use one thread per core between them.
        """
        slices = iter([order[i : i + _SLICE] for i in range(0, len(order), _SLICE)])
        take = threading.Lock()
        finished = threading.Event()  # every slice has been taken, or a worker failed: the others stop

        def next_slice() -> list[int] | None:
            with take:
                chunk = None if finished.is_set() else next(slices, None)
            if chunk is None:
                finished.set()
            return chunk

        def work(rank: int) -> None:
            while True:
                if rank:  # make room for questions; the first worker always goes on, so the build ends
                    self._traffic.pause_while_busy(stop=finished.is_set)
                chunk = next_slice()
                if chunk is None:
                    return
                session = self._solo_session()
                try:
                    for i in chunk:
                        out[i] = self._run(session, [texts[i].strip()])[0]
                finally:
                    self._solo.put(session)
                if bar is not None:
                    with take:
                        bar.update(len(chunk))

        def worker(rank: int) -> None:
            try:
                work(rank)
            except BaseException:
                finished.set()
                raise

        from concurrent.futures import ThreadPoolExecutor

        workers = min(_cores(), -(-len(order) // _SLICE))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-encode") as pool:
            for job in [pool.submit(worker, rank) for rank in range(workers)]:
                job.result()

    def _run(self, session: Any, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = session.run(["last_hidden_state"], feed)
        weights = mask[:, :, None].astype(np.float32)
        if self._pooling == "mean":
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        elif self._pooling == "cls":
            pooled = hidden[:, 0]
        else:  # max over real tokens only
            pooled = np.where(weights > 0, hidden, -1e9).max(axis=1)
        # unit vectors: inner product == cosine similarity
        return np.asarray(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12), np.float32)


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


_encoders: dict[tuple[str, str, str, str], Encoder | OnnxEncoder] = {}
_encoders_lock = threading.Lock()


def get_encoder(settings: Settings | None = None) -> Encoder | OnnxEncoder:
    """The process-wide :class:`Encoder` for the configured model, device and backend, loaded on first call.

    With an ONNX backend the first call on a machine also exports the model into ``model_cache_dir``, once
    (about 20 s for the default model on a busy 2-core machine); later calls and processes load the cached export.

    Example:
        >>> from qa.embedding import get_encoder
        >>> get_encoder().encode_queries(["Who met the US ambassador?"]).shape
        (1, 384)
    """
    s = settings or get_settings()
    cache_dir = s.model_cache_dir or default_model_cache_dir()
    spec = resolve_model(s.model, verify=s.verify_model, cache_dir=cache_dir)
    key = (spec.location, s.device, s.effective_backend, str(cache_dir))
    with _encoders_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = _load_encoder(spec, s, cache_dir)
            _encoders[key] = encoder
    encoder.batch_size = s.batch_size
    return encoder


def _load_encoder(spec: ModelSpec, s: Settings, cache_dir: Path) -> Encoder | OnnxEncoder:
    """The lean :class:`OnnxEncoder` when the backend and model allow it, else sentence-transformers'."""
    recipe = _lean_recipe(spec, s)
    if recipe is not None:
        target = onnx_export_dir(spec, s.effective_backend, cache_dir)
        if _valid_export(target):
            return OnnxEncoder(spec, backend=s.effective_backend, onnx_path=target / _ONNX_FILE, recipe=recipe,
                               batch_size=s.batch_size)
    # No export yet (or not a simple model): sentence-transformers loads the model and exports it if needed.
    full = Encoder(
        spec,
        device=s.device,
        batch_size=s.batch_size,
        allow_download=s.allow_download,
        backend=s.effective_backend,
        cache_dir=cache_dir,
    )
    if recipe is None or full.onnx_path is None:
        return full
    # Now that the export exists, run it with the lean encoder (same vectors, no torch) like later processes.
    return OnnxEncoder(spec, backend=s.effective_backend, onnx_path=full.onnx_path, recipe=recipe,
                       batch_size=s.batch_size)


def _lean_recipe(spec: ModelSpec, s: Settings) -> _Recipe | None:
    """The model's recipe if it may run on :class:`OnnxEncoder`: ONNX backend, CPU, local simple model."""
    if s.effective_backend == "torch" or s.device != "cpu" or spec.weights_sha256 is None:
        return None
    folder = Path(spec.location)
    return _simple_recipe(folder) if folder.is_dir() else None
