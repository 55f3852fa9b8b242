"""Shared fixtures: the real model, real FAISS, and indexes built once per test session."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _isolated_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep tests away from the user's indexes: the default index is built in a session folder."""
    root = tmp_path_factory.mktemp("index-root")
    old = os.environ.get("QA_INDEX_DIR")
    os.environ["QA_INDEX_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("QA_INDEX_DIR", None)
    else:
        os.environ["QA_INDEX_DIR"] = old


@pytest.fixture(scope="session")
def article_index(_isolated_index_dir: Path):  # type: ignore[no-untyped-def]
    """The bundled article's default index (built on first use, like a user's first question)."""
    import qa

    return qa.open_index()


@pytest.fixture(scope="session")
def squad_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved index of 12 SQuAD paragraphs, built through the public API."""
    import qa

    out = tmp_path_factory.mktemp("squad") / "idx"
    qa.Index.build([DATA / "squad_docs.jsonl"], out)
    return out


@pytest.fixture(scope="session")
def seed_questions() -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (DATA / "seed_questions.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def _offline_hub() -> Iterator[None]:
    # gradio_client builds Hugging Face headers, which may look up huggingface.co; this machine stays local.
    import huggingface_hub.constants as hub

    old = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = True
    yield
    hub.HF_HUB_OFFLINE = old
