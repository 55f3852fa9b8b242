"""Hostile documents through the real app, with the default limits: refused by name, and the app keeps answering.

On main before the limits, a 123 KB .docx of a million tiny paragraphs was accepted through the browser (a
million sentences, ~10 minutes of CPU, 9.5 GB of memory) and a 4 MB .docx unpacking to 4 GB took the app to
9.3 GB before it was refused. Here both are uploaded to a real app (a child process on 127.0.0.1) whose
settings are the defaults, together with an ordinary file: the two bombs are refused by name with the limit and
the setting that decided, the ordinary file is indexed, and questions are answered meanwhile and after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hostile_files import paragraph_docx, zip_bomb
from test_upload import _failures, _report

if TYPE_CHECKING:
    from conftest import AppServer

pytestmark = pytest.mark.slow

GOLD = "Who led the delegation of US lawmakers that visited Pakistan?"


@pytest.fixture(scope="module")
def app(serve_app: Callable[..., AppServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app on the bundled article with every limit at its default (its own index folder)."""
    root = tmp_path_factory.mktemp("hostile-app")
    with serve_app(index_dir=root / "index", feedback_dir=root / "feedback") as server:
        yield server


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    (folder / "notes.txt").write_text("Quokkas live on Rottnest Island, off the coast of Western Australia.\n",
                                      encoding="utf-8")
    return {
        # A million tiny paragraphs, ~140 KB: under the 50 MB file limit, so only the document limits can stop it.
        "paragraphs.docx": paragraph_docx(folder / "paragraphs.docx", 1_000_000, numbered=False),
        # 300 MB of XML in ~300 KB: over max_unpacked_mb (200), honestly declared.
        "unpacks.docx": zip_bomb(folder / "unpacks.docx", 300 * 1024 * 1024),
        # The same, with a zip directory that claims 1,000 bytes: the inflating itself must stop it.
        "lying.docx": zip_bomb(folder / "lying.docx", 300 * 1024 * 1024, claim=1000),
        "notes.txt": folder / "notes.txt",
    }


def test_bombs_uploaded_to_the_app_are_refused_by_name_and_the_rest_indexed(
    app: AppServer, bombs: dict[str, Path], _offline_hub: None
) -> None:
    from gradio_client import Client, handle_file

    client = Client(app.url, verbose=False, analytics_enabled=False)
    assert client.predict(GOLD, api_name="/ask")["found"]

    report = _report(client.predict([handle_file(str(p)) for p in bombs.values()], api_name="/upload_documents"))

    failures = _failures(report)
    assert set(failures) == {"paragraphs.docx", "unpacks.docx", "lying.docx"}, report
    # Each refusal names the limit and the setting that raises it.
    assert "QA_MAX_ZIP_RATIO" in failures["paragraphs.docx"] or "QA_MAX_DOCUMENT_SENTENCES" in \
        failures["paragraphs.docx"], failures["paragraphs.docx"]
    assert "QA_MAX_UNPACKED_MB" in failures["unpacks.docx"], failures["unpacks.docx"]
    assert "QA_MAX_ZIP_RATIO" in failures["lying.docx"] or "QA_MAX_UNPACKED_MB" in failures["lying.docx"]
    documents: dict[str, Any] = client.predict(api_name="/documents")
    assert {row["doc_id"] for row in documents["documents"]} == {"us-pakistan-relations", "notes"}
    assert "Rottnest" in client.predict("Where do quokkas live?", api_name="/ask")["answer"]
    assert "Gentry Beach" in client.predict(GOLD, api_name="/ask")["answer"]


def test_questions_during_a_large_upload_are_answered_before_it_ends(
    app: AppServer, tmp_path: Path, _offline_hub: None
) -> None:
    # Before, the encoder's lock made a question wait for the whole upload's embedding (55.6 s for 10k
    # sentences). The order of events is what is checked, never a time: answers arrive while the upload runs.
    from gradio_client import Client, handle_file

    colours = ["red", "green", "blue", "amber", "violet", "grey", "white", "black"]
    lines = [f"Crate {i} in the depot holds {i % 97 + 3} {colours[i % 8]} lanterns from shelf {i * 7 % 1009}."
             for i in range(3000)]
    inventory = tmp_path / "inventory.txt"
    inventory.write_text("\n".join(lines) + "\n", encoding="utf-8")
    uploader = Client(app.url, verbose=False, analytics_enabled=False)
    asker = Client(app.url, verbose=False, analytics_enabled=False)

    job = uploader.submit([handle_file(str(inventory))], api_name="/upload_documents")
    answered_during: list[bool] = []
    while not job.done():
        answer = asker.predict(GOLD, api_name="/ask")
        assert answer["found"] and "Gentry Beach" in answer["answer"]  # the old or the new index: same answer
        answered_during.append(not job.done())
    report = _report(job.result())

    assert "inventory" in report and not _failures(report), report
    assert sum(answered_during) >= 3, f"only {sum(answered_during)} answers arrived while the upload ran"
    after = asker.predict("What does crate 41 in the depot hold?", api_name="/ask")  # the new document is searched
    assert "lanterns" in " ".join([after["answer"], *(p["text"] for p in after["closest"])]), after
