"""Bring your own documents: uploads through the real app server (gradio_client), and the workspace behind them.

The server tests run the real app (``python app.py`` in a child process: real model, FAISS, Gradio) on 127.0.0.1 on
a free port with an index folder of its own, so the workspace it creates and the bundled article's index it must
leave alone are its own; it is stopped by PID at the end of the module. The other tests drive
:class:`qa.workspace.Workspace` directly, with real files, the real model and saved indexes.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import qa
from qa import web
from qa.conversation import read_question
from qa.web import uploads
from qa.web.server import UPLOAD_CAP_FACTOR
from qa.web.uploads import TEMP_FOLDER
from qa.workspace import AddReport, DocumentRow, Upload, Workspace

if TYPE_CHECKING:
    from conftest import AppServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated"),
]

SHIPS = "How many ships did the lighthouse keeper log in March?"
TOMATOES = "How often do tomatoes need watering?"
QUOKKAS = "Where do quokkas live?"
PAYLOAD = '<img src=x onerror="window.__xss=1">'
#: Uploads larger than this are refused (the PDF and the text files are far smaller).
MAX_FILE_MB = 0.05


# ------------------------------------------------------------------------------------------ files


def make_pdf(path: Path, pages: list[str], *, title: str | None = None) -> Path:
    """A text PDF (fpdf2), one paragraph a page."""
    from fpdf import FPDF

    pdf = FPDF()
    if title is not None:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path) -> Path:
    """A PDF whose only page is an image: no text to extract."""
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF()
    pdf.add_page()
    pdf.image(Image.new("RGB", (60, 20), "white"), x=10, y=10, w=120)
    pdf.output(str(path))
    return path


def make_locked_pdf(path: Path, plain: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="secret", algorithm="AES-256")
    with path.open("wb") as out:
        writer.write(out)
    return path


#: Good files: name -> (title it gets, a question it answers).
GOOD = {
    "notes.txt": ("notes", QUOKKAS),
    "guide.md": ("Garden guide", TOMATOES),
    "log.pdf": ("Lighthouse log", SHIPS),
}
#: Bad files: name -> what the reason says.
BAD = {
    "empty.txt": "the file is empty",
    "a..b.txt": "holds a path",
    "big.txt": "size limit",
    "photo.png": "unsupported file type '.png'",
    "latin1.txt": "not valid UTF-8",
    "binary.txt": "binary",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The good and bad files of an upload, written to disk."""
    folder = tmp_path_factory.mktemp("upload-files")
    (folder / "notes.txt").write_text(
        "Quokkas live on Rottnest Island, off the coast of Western Australia. They are small marsupials.\n",
        encoding="utf-8",
    )
    (folder / "guide.md").write_text(
        "# Garden guide\n\n## Sowing\n\nSow the seeds indoors in early spring.\n\n"
        "## Watering\n\nTomatoes need deep watering twice a week in summer.\n",
        encoding="utf-8",
    )
    make_pdf(
        folder / "log.pdf",
        ["The lighthouse stands on a granite cliff above the harbour.",
         "The lighthouse keeper logged 412 ships passing the cape in March."],
        title="Lighthouse log",
    )
    (folder / "empty.txt").write_bytes(b"")
    (folder / "a..b.txt").write_text("A file whose name holds two dots in a row.", encoding="utf-8")
    (folder / "big.txt").write_text("This sentence fills a file that is too big. " * 2000, encoding="utf-8")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "latin1.txt").write_bytes("Café crème brûlée.".encode("latin-1"))
    (folder / "binary.txt").write_bytes(b"abc\x00def\x00" * 16)
    return {p.name: p for p in folder.iterdir()}


def _tree_digest(folder: Path) -> str:
    """SHA-256 over every file's relative path and content under ``folder``."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ a real server


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> qa.Settings:
    root = tmp_path_factory.mktemp("upload-root")
    return qa.get_settings(index_dir=root / "index", feedback_dir=root / "feedback", max_file_mb=MAX_FILE_MB)


@pytest.fixture(scope="module")
def folder_app(serve_app: Callable[..., AppServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """An app with an index folder of its own, whose upload folder a test watches (and which that test stops)."""
    root = tmp_path_factory.mktemp("folder-app")
    with serve_app(index_dir=root / "index", feedback_dir=root / "feedback", max_file_mb=MAX_FILE_MB) as app:
        yield app


@pytest.fixture(scope="module")
def server(settings: qa.Settings, serve_app: Callable[..., AppServer], folder_app: AppServer) -> Iterator[str]:
    """The app on the bundled article (its index built in this module's folder), on 127.0.0.1.

    ``folder_app`` is started here too, so that it loads while this app's tests run.
    """
    with serve_app(settings=settings) as app:
        yield app.url


@pytest.fixture(scope="module")
def client(server: str, _offline_hub: None) -> Any:
    from gradio_client import Client

    return Client(server, verbose=False, analytics_enabled=False)


def _report(result: Any) -> str:
    """The upload report among an upload event's outputs."""
    outputs = result if isinstance(result, (list, tuple)) else [result]
    (report,) = [o for o in outputs if isinstance(o, str) and "qa-upload-report" in o]
    return report


def _failures(report: str) -> dict[str, str]:
    """File name -> reason, as listed (unescaped) in an upload report."""
    found = re.findall(r'<li class="qa-failed"><span class="qa-file">(.*?)</span>: (.*?)</li>', report)
    return {html.unescape(name): html.unescape(reason) for name, reason in found}


def _cited_titles(answer: dict[str, Any]) -> set[str]:
    return {p["title"] for p in answer["citations"] + answer["closest"]}


def test_uploads_are_indexed_bad_files_reported_and_documents_removable(
    client: Any, settings: qa.Settings, files: dict[str, Path]
) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    default = qa.default_index_path(settings)
    default_before = _tree_digest(default)
    manifest_before = hashlib.sha256((default / "manifest.json").read_bytes()).hexdigest()
    assert client.predict(api_name="/documents")["name"] == "the bundled article"

    result = client.predict([handle_file(str(files[name])) for name in [*GOOD, *BAD]], api_name="/upload_documents")

    report = _report(result)
    assert "Created your workspace" in report
    for title, _ in GOOD.values():
        assert f"“{html.escape(title)}”" in report
    failures = _failures(report)
    assert set(failures) == set(BAD)
    for name, reason in BAD.items():
        assert reason in failures[name], (name, failures[name])
    # Reasons name the file as uploaded, never a path on the server.
    assert str(settings.index_root) not in report and "gradio" not in report and ".incoming" not in report

    # The good files are in the document list, and in the workspace saved on disk.
    listed = client.predict(api_name="/documents")
    workspace = settings.index_root / "workspace"
    assert listed["index"] == str(workspace) and listed["name"] == "your workspace"
    rows = {row["doc_id"]: row for row in listed["documents"]}
    assert set(rows) == {qa.documents.DEFAULT_DOC_ID, "notes", "guide", "log"}
    assert {rows[i]["file"] for i in ("notes", "guide", "log")} == set(GOOD)
    assert rows[qa.documents.DEFAULT_DOC_ID]["file"] is None
    assert [d.doc_id for d in qa.Index.load(workspace, settings=settings).documents] == list(rows)
    uploads = settings.index_root / "uploads" / "workspace"
    assert sorted(p.name for p in uploads.iterdir()) == sorted(GOOD)  # bad files and staging folders are gone

    # Questions about them are answered citing their title, and the PDF's page or the Markdown heading.
    ships = client.predict(SHIPS, api_name="/ask")
    assert ships["found"] and "412 ships" in ships["citations"][0]["text"]
    assert ships["citations"][0]["title"] == "Lighthouse log" and ships["citations"][0]["page"] == 2
    tomatoes = client.predict(TOMATOES, api_name="/ask")
    assert tomatoes["found"] and tomatoes["citations"][0]["title"] == "Garden guide"
    assert tomatoes["citations"][0]["heading"] == "Watering"
    quokkas = client.predict(QUOKKAS, api_name="/ask")
    assert quokkas["found"] and quokkas["citations"][0]["title"] == "notes"
    assert "Gentry Beach" in client.predict("Who led the delegation of US lawmakers?", api_name="/ask")["answer"]

    # The bundled article's index was never touched.
    assert hashlib.sha256((default / "manifest.json").read_bytes()).hexdigest() == manifest_before
    assert _tree_digest(default) == default_before

    # Removing a document: gone from the list, the saved index, the uploads folder and every answer.
    after = client.predict("log", api_name="/remove_document")
    assert "log" not in {row["doc_id"] for row in after["documents"]}
    assert "log" not in {d.doc_id for d in qa.Index.load(workspace, settings=settings).documents}
    assert sorted(p.name for p in uploads.iterdir()) == ["guide.md", "notes.txt"]
    again = client.predict(SHIPS, api_name="/ask")
    assert "Lighthouse log" not in _cited_titles(again) and "412 ships" not in again["answer"]
    assert "Lighthouse log" not in str(client.predict(SHIPS, 10, api_name="/retrieve"))
    with pytest.raises(AppError, match=r"no document .*log"):
        client.predict("log", api_name="/remove_document")
    assert _tree_digest(default) == default_before


def test_the_server_takes_files_over_the_limit_for_a_reason_and_refuses_huge_ones(server: str) -> None:
    # Between max_file_mb and the server's cap a file reaches qa, which refuses that file alone with the reason
    # (above); beyond the cap Gradio's upload route refuses it before it is written to disk.
    import httpx

    limit = int(MAX_FILE_MB * 1024 * 1024)
    over = httpx.post(f"{server}gradio_api/upload", files={"files": ("over.txt", b"x" * (limit + 1))})
    assert over.status_code == 200
    cap = int(MAX_FILE_MB * 1024 * 1024 * UPLOAD_CAP_FACTOR)
    huge = httpx.post(f"{server}gradio_api/upload", files={"files": ("huge.txt", b"x" * (cap + 1))})
    assert huge.status_code == 413


# ------------------------------------------------------------------------------------------ Gradio's upload folder


def _upload(url: str, name: str, content: bytes) -> Path:
    """POST one file to Gradio's upload route, as the page does before the upload event; where the server put it."""
    import httpx

    response = httpx.post(f"{url}gradio_api/upload", files={"files": (name, content)}, timeout=60)
    assert response.status_code == 200, response.text
    (path,) = response.json()
    return Path(path)


def _add_uploaded(url: str, uploaded: dict[str, Path]) -> str:
    """Call ``/upload_documents`` with files already uploaded (name -> server path); the upload report."""
    import httpx

    data = [[{"path": str(p), "orig_name": name, "meta": {"_type": "gradio.FileData"}} for name, p in uploaded.items()]]
    call = f"{url}gradio_api/call/upload_documents"
    event_id = httpx.post(call, json={"data": data}, timeout=60).json()["event_id"]
    lines = httpx.get(f"{call}/{event_id}", timeout=300).text.splitlines()
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    payloads = [line.split(":", 1)[1].strip() for line in lines if line.startswith("data:")]
    assert events[-1] == "complete", (events, payloads)
    return _report(json.loads(payloads[-1]))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_uploads_wait_in_a_private_folder_emptied_once_handled_and_removed_when_the_app_stops(
    folder_app: AppServer,
) -> None:
    root = folder_app.settings.index_root
    gradio_default = Path(tempfile.gettempdir()) / "gradio"  # where Gradio would have put them (world-readable)
    with folder_app as server:
        parent = root / TEMP_FOLDER
        (folder,) = parent.glob(f"{server.pid}-*")  # this app's own folder, named after its process
        assert _mode(parent) == 0o700 and _mode(folder) == 0o700

        # Contents of this run only: Gradio names a file's folder by its content's hash, the same in every process.
        tag = uuid.uuid4().hex
        # An upload waits there, never in /tmp/gradio, until a handler has it...
        waiting = _upload(server.url, "waiting.txt", f"Waiting {tag}.".encode())
        assert waiting.is_relative_to(folder) and waiting.is_file()
        # ...and once the documents panel has handled it, added or refused, Gradio's copy is gone.
        good = {
            "notes.txt": _upload(server.url, "notes.txt", f"Quokkas live on Rottnest Island, note {tag}.".encode()),
            "guide.md": _upload(server.url, "guide.md", f"# Garden guide\n\nTomatoes need water ({tag}).".encode()),
        }
        assert "Created your workspace" in _add_uploaded(server.url, good)
        bad = {
            "photo.png": _upload(server.url, "photo.png", b"\x89PNG\r\n\x1a\n" + tag.encode()),
            "latin1.txt": _upload(server.url, "latin1.txt", f"Café crème {tag}.".encode("latin-1")),
        }
        assert set(_failures(_add_uploaded(server.url, bad))) == set(bad)
        for path in [*good.values(), *bad.values()]:
            assert path.is_relative_to(folder)
            assert not path.exists() and not path.parent.exists(), path
            assert not (gradio_default / path.parent.name).exists(), path
        assert [p for p in folder.rglob("*") if p.is_file()] == [waiting]
        assert sorted(p.name for p in (root / "uploads" / "workspace").iterdir()) == ["guide.md", "notes.txt"]

        assert server.stop() == 0  # SIGTERM: a clean stop
    assert not folder.exists() and not parent.exists()


def test_an_app_closed_in_this_process_removes_its_upload_folder(
    serve_app: Callable[..., AppServer], built_default: Path, tmp_path: Path
) -> None:
    before = os.environ.get("GRADIO_TEMP_DIR")
    server = serve_app(built_default, index_dir=tmp_path / "index", in_process=True)
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    assert folder.parent == (tmp_path / "index" / TEMP_FOLDER).resolve() and _mode(folder) == 0o700
    assert _upload(server.url, "notes.txt", b"Cats purr.").is_relative_to(folder)
    server.stop()  # app.close()
    assert not folder.exists() and not folder.parent.exists()
    assert os.environ.get("GRADIO_TEMP_DIR") == before


def test_an_index_folder_that_cannot_be_written_gets_a_private_upload_folder_elsewhere(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"  # an index root that cannot hold folders (root ignores read-only modes)
    blocker.write_text("not a folder", encoding="utf-8")
    before = os.environ.get("GRADIO_TEMP_DIR")
    assert uploads.current() is None
    folder = uploads.hold(qa.Settings(index_dir=blocker))
    try:
        assert uploads.current() == folder and os.environ["GRADIO_TEMP_DIR"] == str(folder)
        assert folder.name.startswith(f"qa-uploads-{os.getpid()}-") and _mode(folder) == 0o700
        assert folder.parent == Path(tempfile.gettempdir()).resolve()  # not /tmp/gradio, and its own
    finally:
        uploads.release()
    assert not folder.exists() and uploads.current() is None
    assert os.environ.get("GRADIO_TEMP_DIR") == before


# ------------------------------------------------------------------------------------------ the workspace


@pytest.fixture(scope="module")
def built_default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled article's index, built once; tests copy it into their own index folder."""
    root = tmp_path_factory.mktemp("built-default")
    qa.open_index(settings=qa.get_settings(index_dir=root))
    return root / "default"


@pytest.fixture
def root_settings(tmp_path: Path, built_default: Path) -> qa.Settings:
    """Settings whose index folder holds a copy of the bundled article's index (and nothing else)."""
    shutil.copytree(built_default, tmp_path / "index" / "default")
    return qa.get_settings(index_dir=tmp_path / "index", max_file_mb=MAX_FILE_MB)


def _on_default(settings: qa.Settings) -> Workspace:
    ws = Workspace(qa.open_index(settings=settings), settings)
    assert ws.started_on_default and ws.is_default()
    return ws


def _text_upload(folder: Path, name: str, text: str) -> Upload:
    path = folder / f"received-{len(list(folder.iterdir()))}"
    path.write_text(text, encoding="utf-8")
    return Upload(name, path)


def test_the_bundled_index_is_read_only(root_settings: qa.Settings) -> None:
    ws = _on_default(root_settings)
    with pytest.raises(qa.QAError, match="read-only"):
        ws.remove(qa.documents.DEFAULT_DOC_ID)
    with pytest.raises(qa.QAError, match="no workspace yet"):
        ws.use("workspace")
    assert ws.is_default() and ws.version == 0


def test_bad_files_are_reported_by_name_with_progress_and_the_good_ones_indexed(
    root_settings: qa.Settings, files: dict[str, Path], tmp_path: Path
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    locked = make_locked_pdf(received / "locked", files["log.pdf"])
    scanned = make_scanned_pdf(received / "scanned")
    uploads = [
        Upload("notes.txt", files["notes.txt"]),
        Upload("locked.pdf", locked),
        Upload("scan.pdf", scanned),
        Upload("../../etc/evil.txt", files["notes.txt"]),
        Upload("folder\\evil.txt", files["notes.txt"]),
        Upload(".hidden.txt", files["notes.txt"]),
        Upload("notes.txt", files["guide.md"]),  # the same name twice in one upload
        Upload("notes.md", files["guide.md"]),  # another file giving the document id "notes"
        Upload("big.txt", files["big.txt"]),
    ]
    steps: list[tuple[float | None, str]] = []
    ws = _on_default(root_settings)
    report = ws.add(uploads, progress=lambda fraction, what: steps.append((fraction, what)))

    assert [d.doc_id for d in report.added] == ["notes"] and report.created and report.switched
    reasons = {f.source: f.reason for f in report.failures}
    assert list(reasons) == [u.name for u in uploads[1:]]
    assert "password-protected" in reasons["locked.pdf"]
    assert "no extractable text" in reasons["scan.pdf"] and "OCR" in reasons["scan.pdf"]
    assert "holds a path" in reasons["../../etc/evil.txt"] and "holds a path" in reasons["folder\\evil.txt"]
    assert "hidden" in reasons[".hidden.txt"]
    assert "already uploaded in this batch" in reasons["notes.txt"]
    assert "also the id of a document in notes.txt" in reasons["notes.md"]
    assert "size limit" in reasons["big.txt"]
    for reason in reasons.values():
        assert str(tmp_path) not in reason and ".incoming" not in reason

    readings = [what for _, what in steps if what.startswith("Reading ")]
    assert readings[0] == "Reading notes.txt (1 of 9)" and len(readings) == len(uploads)
    assert any(what.startswith("Embedding 1 document") for _, what in steps)
    assert not (tmp_path / "etc").exists() and not (root_settings.index_root.parent / "etc").exists()
    assert sorted(p.name for p in ws.uploads_folder().iterdir()) == ["notes.txt"]


def test_the_first_upload_creates_the_workspace_and_a_later_run_offers_it(
    root_settings: qa.Settings, tmp_path: Path
) -> None:
    default_before = _tree_digest(qa.default_index_path(root_settings))
    first = _on_default(root_settings)
    none = first.add([Upload("missing.txt", tmp_path / "missing")])
    assert not none.added and none.index is first.index and not first.workspace_exists()  # nothing created

    received = tmp_path / "received"
    received.mkdir()
    made = first.add([_text_upload(received, "cats.txt", "Cats sleep for sixteen hours a day.")])
    assert made.created and made.switched and first.is_workspace() and first.version == 1
    assert [d.doc_id for d in made.index.documents] == [qa.documents.DEFAULT_DOC_ID, "cats"]

    # A new run starts on the bundled article again; the workspace is offered, and uploads extend it.
    again = _on_default(root_settings)
    assert again.workspace_exists()
    assert [d.doc_id for d in again.use("workspace").documents] == [qa.documents.DEFAULT_DOC_ID, "cats"]
    assert again.use("default").path == qa.default_index_path(root_settings)
    added = again.add([_text_upload(received, "dogs.txt", "Dogs bark at the postman.")])
    assert not added.created and added.switched
    assert [d.doc_id for d in again.index.documents] == [qa.documents.DEFAULT_DOC_ID, "cats", "dogs"]
    assert _tree_digest(qa.default_index_path(root_settings)) == default_before


def test_an_index_given_at_start_is_updated_in_place(tmp_path: Path) -> None:
    settings = qa.get_settings(index_dir=tmp_path / "root")
    path = tmp_path / "mine"
    qa.Index.build([qa.Document("cats", "Cats", "Cats sleep for sixteen hours a day.")], path, settings=settings)
    ws = Workspace(qa.open_index(path, settings=settings), settings)
    assert not ws.started_on_default and ws.label() == "“mine”"
    with pytest.raises(qa.QAError, match="no other index"):
        ws.use("default")

    received = tmp_path / "received"
    received.mkdir()
    report = ws.add([_text_upload(received, "dogs.txt", "Dogs bark at the postman.")])
    assert [d.doc_id for d in report.added] == ["dogs"] and not report.created and not report.switched
    assert ws.index.path == path
    assert [d.doc_id for d in qa.Index.load(path, settings=settings).documents] == ["cats", "dogs"]
    assert (tmp_path / "uploads" / "mine" / "dogs.txt").read_text(encoding="utf-8") == "Dogs bark at the postman."
    assert not (tmp_path / "root" / "workspace").exists()

    # The same file again is unchanged; a new version replaces it; another file giving the same id replaces it
    # and its predecessor's copy is dropped.
    same = ws.add([_text_upload(received, "dogs.txt", "Dogs bark at the postman.")])
    assert [d.doc_id for d in same.unchanged] == ["dogs"] and not same.added
    newer = ws.add([_text_upload(received, "dogs.md", "# Dogs\n\nDogs chase cats around the garden.")])
    assert [d.doc_id for d in newer.replaced] == ["dogs"] and newer.replaced[0].title == "Dogs"
    assert sorted(p.name for p in (tmp_path / "uploads" / "mine").iterdir()) == ["dogs.md"]
    assert [r.file for r in ws.rows()] == [None, "dogs.md"]

    ws.remove("dogs")
    assert [d.doc_id for d in qa.Index.load(path, settings=settings).documents] == ["cats"]
    assert list((tmp_path / "uploads" / "mine").iterdir()) == []
    with pytest.raises(qa.QAError, match="only document left"):
        ws.remove("cats")
    with pytest.raises(qa.QAError, match="no document 'dogs'"):
        ws.remove("dogs")
    assert [d.doc_id for d in ws.index.documents] == ["cats"]


def test_questions_during_an_update_see_the_old_or_the_new_index(tmp_path: Path) -> None:
    settings = qa.get_settings(index_dir=tmp_path / "root")
    path = tmp_path / "live"
    qa.Index.build([qa.Document("cats", "Cats", "Cats sleep for sixteen hours a day.")], path, settings=settings)
    ws = Workspace(qa.open_index(path, settings=settings), settings)
    old = ws.index
    received = tmp_path / "received"
    received.mkdir()
    upload = _text_upload(received, "dogs.txt", "Dogs bark at the postman every single morning.")

    seen: list[tuple[qa.Index, list[str]]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def ask() -> None:
        while not done.is_set():
            idx = ws.index
            try:
                result = qa.answer("Which animal barks at the postman?", index=idx, settings=settings)
            except BaseException as exc:  # noqa: BLE001 - any error fails the test below
                errors.append(exc)
                return
            seen.append((idx, [p.doc_id for p in result.citations]))

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for t in askers:
        t.start()
    try:
        new = ws.add([upload]).index
        while not any(idx is new for idx, _ in seen) and not errors:
            done.wait(0.01)
    finally:
        done.set()
        for t in askers:
            t.join()
    assert not errors
    assert {id(idx) for idx, _ in seen} <= {id(old), id(new)}
    assert all(set(cited) <= {"cats"} for idx, cited in seen if idx is old)
    assert all(cited and cited[0] == "dogs" for idx, cited in seen if idx is new)


# ------------------------------------------------------------------------------------------ rendering


def test_sources_show_the_page_and_heading_escaped() -> None:
    passage = qa.Passage(
        text="Tomatoes need water.", score=0.5, doc_id="g", title="Guide", sentence=2, start=10, end=30,
        context="Tomatoes need water.", context_start=10, context_end=30, page=3, heading=f"Results {PAYLOAD}",
    )
    turn = web.Turn(read_question("q?", []), qa.Answer("q?", "Tomatoes need water. [1]", True, [passage], []))
    shown = web.render_sources([turn])
    assert f"p. 3 · under “Results {html.escape(PAYLOAD, quote=True)}” · sentence 3" in shown
    assert "<img" not in shown
    marker = web.render_answer(turn.answer, turn=1)
    assert "p. 3 · under “Results &lt;img" in marker and "<img" not in marker


def test_upload_report_and_document_rows_escape_names_titles_and_reasons() -> None:
    info = qa.DocumentInfo("x", f"Title {PAYLOAD}", "0" * 64, 2)
    report = AddReport(
        index=None,  # type: ignore[arg-type]  # not rendered
        added=[info], replaced=[], unchanged=[],
        failures=[qa.SourceFailure(f"{PAYLOAD}.txt", f"{PAYLOAD}.txt: the file is empty; remove it or add text")],
        created=True,
    )
    shown = web.render_upload_report(report, where="your workspace")
    assert "<img" not in shown and "Created your workspace" in shown
    assert _failures(shown) == {f"{PAYLOAD}.txt": "the file is empty; remove it or add text"}
    row = web.render_document_row(DocumentRow(PAYLOAD, PAYLOAD, 1, f"{PAYLOAD}.txt"))
    assert "<img" not in row and "1 sentence ·" in row
