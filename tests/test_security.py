"""Security defaults: who can reach the app, who can use it, what is stored and how, what is read back.

Each promise of SECURITY.md is checked here (or in the file it names) against the real thing: the real app
(``python app.py`` in a child process, on 127.0.0.1 on a free port, stopped by the test by PID), gradio_client and
plain HTTP to it, real index files on disk, and a real Chromium (Playwright) for markup in documents. No traffic
leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import stat
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS

import qa
from qa import web
from qa.conversation import read_question
from qa.documents import safe_filename
from qa.web.feedback import record_feedback
from qa.web.server import check_exposure

if TYPE_CHECKING:
    from conftest import AppServer

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated")

DOCS = [
    qa.Document("cats", "Cats", "Cats sleep for most of the day. A cat purrs when it is content."),
    qa.Document("dogs", "Dogs", "Dogs bark at strangers. Many dogs love to fetch sticks."),
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "idx"
    qa.Index.build(DOCS, path)
    return path


def _http(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    """Status code of a plain HTTP request (to 127.0.0.1 only)."""
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# ------------------------------------------------------------------------------------------ exposure


def test_the_app_binds_this_machine_only_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_HOST", raising=False)
    assert qa.Settings().host == "127.0.0.1"
    assert qa.get_settings().host == "127.0.0.1"


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port``, from /proc/net/tcp and tcp6 (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                address, hex_port = fields[1].split(":")
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    found.add(address)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the socket table of Linux's /proc")
def test_a_launched_app_listens_on_loopback_only_and_shares_nothing(
    serve_app: Callable[..., AppServer], small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QA_HOST", raising=False)
    # In this process, launched as `qa serve` does (default host): the test reads the Blocks' share_url.
    with serve_app(small, feedback_dir=tmp_path, in_process=True) as server:
        url = server.url
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert url.startswith("http://127.0.0.1:")
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 in the kernel's byte order; no 0.0.0.0, no ::
        assert server.app.share_url is None  # no public share link was created


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.5", "example.org", "[::]"])
def test_a_non_local_address_without_a_login_is_refused(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_AUTH", raising=False)
    monkeypatch.delenv("QA_AUTH_FILE", raising=False)
    settings = qa.get_settings()
    with pytest.raises(qa.ConfigError, match=r"without a login.*QA_AUTH.*--allow-public"):
        web.serve(host=host, settings=settings)  # refused before any index, model or socket is touched


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_need_no_login(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_AUTH", raising=False)
    monkeypatch.delenv("QA_AUTH_FILE", raising=False)
    assert check_exposure(qa.get_settings(host=host), allow_public=False) == {}


def test_a_non_local_address_is_allowed_with_a_login_or_on_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_AUTH_FILE", raising=False)
    monkeypatch.setenv("QA_AUTH", "alice:s3cret")
    assert check_exposure(qa.get_settings(host="0.0.0.0"), allow_public=False) == {"alice": "s3cret"}
    monkeypatch.delenv("QA_AUTH")
    assert check_exposure(qa.get_settings(host="0.0.0.0"), allow_public=True) == {}


def test_nothing_is_fetched_from_the_network_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model download and no Gradio telemetry unless asked for (the app may run with no network at all)."""
    monkeypatch.delenv("QA_ALLOW_DOWNLOAD", raising=False)
    assert qa.get_settings().allow_download is False
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"  # set by qa.web before gradio is imported


# ------------------------------------------------------------------------------------------ login


def test_credentials_are_never_taken_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from qa import cli

    helps = []
    for run in (lambda: web.main(["--help"]), lambda: cli.main(["serve", "--help"])):
        with pytest.raises(SystemExit):
            run()
        helps.append(capsys.readouterr().out)
    for text in helps:
        assert "--host" in text
        assert not re.search(r"--(auth|password|passwd|user|login|credentials?)\b", text), text
    # Nor shown: the password is left out of the settings' repr (and so out of logs and tracebacks).
    assert "s3cret" not in repr(qa.get_settings().replace(auth="alice:s3cret"))


@pytest.fixture(scope="module")
def auth_file_app(
    serve_app: Callable[..., AppServer], article_index: qa.Index, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """The app on the bundled article with its login from a file (``QA_AUTH_FILE``; no ``QA_AUTH``)."""
    folder = tmp_path_factory.mktemp("auth-file")
    accounts = folder / "accounts"
    accounts.write_text("# one user:password a line\nbob:other\nalice:s3cret\n", encoding="utf-8")
    accounts.chmod(0o600)
    settings = dataclasses.replace(qa.get_settings(), auth=None, auth_file=accounts)
    with serve_app(settings=settings, feedback_dir=folder / "feedback") as server:
        yield server


@pytest.fixture(scope="module")
def open_app(
    serve_app: Callable[..., AppServer], small: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """The app with no login (loopback), with a 0.01 MB upload limit."""
    with serve_app(small, feedback_dir=tmp_path_factory.mktemp("feedback"), max_file_mb=0.01) as server:
        yield server


@pytest.fixture(scope="module")
def open_server(open_app: AppServer) -> str:
    return open_app.url


@pytest.mark.slow
@pytest.mark.parametrize("source", ["QA_AUTH", "QA_AUTH_FILE"])
def test_a_login_from_the_environment_guards_the_page_the_api_and_the_files(
    source: str,
    login_server: AppServer,
    auth_file_app: AppServer,
    open_app: AppServer,  # not used here: started now, it loads while these tests run
    article_index: qa.Index,
    _offline_hub: None,
) -> None:
    from gradio_client import Client

    # `python app.py` in a child process, which reads the login from its environment like `qa serve`.
    url = (login_server if source == "QA_AUTH" else auth_file_app).url
    assert login_server.settings.auth == "alice:s3cret" and auth_file_app.settings.auth is None
    with pytest.raises(Exception, match=r"(?i)auth|credentials|login"):
        Client(url, verbose=False, analytics_enabled=False)
    with pytest.raises(ValueError, match=r"(?i)could not login"):
        Client(url, auth=("alice", "wrong"), verbose=False, analytics_enabled=False)
    with pytest.raises(ValueError, match=r"(?i)could not login"):
        Client(url, auth=("mallory", "s3cret"), verbose=False, analytics_enabled=False)
    # Without the session cookie, plain HTTP gets nothing: not the config, the API, a file, or an upload.
    ask = b'{"data": ["Who led the delegation of US lawmakers?"]}'
    assert _http(f"{url}config") == 401
    assert _http(f"{url}gradio_api/info") == 401
    json_type = {"Content-Type": "application/json"}
    assert _http(f"{url}gradio_api/call/ask", method="POST", data=ask, headers=json_type) == 401
    assert article_index.path is not None
    assert _http(f"{url}gradio_api/file={article_index.path / 'meta.sqlite'}") == 401
    assert _http(f"{url}gradio_api/upload", method="POST", data=b"") == 401
    client = Client(url, auth=("alice", "s3cret"), verbose=False, analytics_enabled=False)
    assert "Gentry Beach" in client.predict("Who led the delegation of US lawmakers?", api_name="/ask")["answer"]


# ------------------------------------------------------------------------------------------ files served and uploaded


@pytest.mark.slow
def test_no_index_or_system_file_can_be_fetched_through_the_app(open_server: str, small: Path) -> None:
    for target in [
        str(small / "meta.sqlite"),
        str(small / "manifest.json"),
        "/etc/passwd",
        "../../../../../../etc/passwd",
        f"{open_server}config",  # a loopback URL: Gradio would fetch it server-side; private addresses are refused
    ]:
        assert _http(f"{open_server}gradio_api/file={target}") == 403, target


def _multipart(name: str, content: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = f"----qa{uuid.uuid4().hex}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }


@pytest.mark.slow
def test_an_upload_over_the_size_limit_is_refused_before_it_is_stored(open_server: str) -> None:
    small_body, headers = _multipart("notes.txt", b"Cats purr. " * 100)  # 1.1 KB, under 0.01 MB
    assert _http(f"{open_server}gradio_api/upload", method="POST", data=small_body, headers=headers) == 200
    big_body, headers = _multipart("big.txt", b"x" * 200_000)  # 200 KB, over 0.01 MB
    assert _http(f"{open_server}gradio_api/upload", method="POST", data=big_body, headers=headers) == 413


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "../secret.txt",
        "..",
        "a/../../b.txt",
        "/etc/passwd",
        "folder/notes.txt",
        "C:\\Windows\\win.ini",
        ".hidden.md",
        "notes\x00.txt",
        "line\nbreak.txt",
        "esc\x1b[31m.txt",
        "x" * 256 + ".txt",
        "é" * 128 + ".txt",  # 256 bytes in UTF-8
    ],
)
def test_an_unsafe_upload_name_is_refused(name: str) -> None:
    with pytest.raises(qa.DocumentError):
        safe_filename(name)


@pytest.mark.parametrize("name", ["notes.txt", "report 2024 (final).pdf", "заметки.md", "日本語.docx", "a.b.c.jsonl"])
def test_an_ordinary_upload_name_is_kept_as_given(name: str) -> None:
    assert safe_filename(name) == name


def test_a_file_over_the_size_limit_or_of_another_type_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Cats purr. " * 200, encoding="utf-8")
    with pytest.raises(qa.DocumentError, match="size limit"):
        qa.documents.load_sources([big], max_bytes=1000)
    program = tmp_path / "program.exe"
    program.write_bytes(b"MZ\x90\x00")
    with pytest.raises(qa.DocumentError, match="unsupported file type"):
        qa.documents.load_sources([program])


# ------------------------------------------------------------------------------------------ stored files


def _modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root.parent).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_every_file_of_a_saved_index_is_owner_only(tmp_path: Path) -> None:
    """Even with a umask that would let anyone read and write (0), files are 0600 and folders 0700."""
    old = os.umask(0)
    try:
        index = qa.Index.build(DOCS, tmp_path / "idx")
        index.update(add=[qa.Document("birds", "Birds", "Birds sing at dawn.")])  # saved again, in place
    finally:
        os.umask(old)
    modes = _modes(tmp_path / "idx")
    assert len(modes) > 5
    for name, mode in modes.items():
        expected = 0o700 if (tmp_path / name).is_dir() else 0o600
        assert mode == expected, f"{name} is {mode:o}, not {expected:o}"
    for lock in tmp_path.glob(".idx.lock"):  # the save lock beside the index, if this qa uses one
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_the_feedback_log_is_owner_only(tmp_path: Path) -> None:
    """The thumbs up/down log holds the questions people asked: 0600, in a 0700 folder it creates."""
    passage = qa.Passage("Cats purr.", 0.9, "cats", "Cats", 0, 0, 10, "Cats purr.", 0, 10)
    answer = qa.Answer("Which pet purrs?", "Cats purr. [1]", True, [passage], [])
    turn = web.Turn(read_question("Which pet purrs?", []), answer)
    old = os.umask(0)
    try:
        log = tmp_path / "feedback" / "feedback.jsonl"
        record_feedback(log, turn, "up", qa.Index.build(DOCS))
    finally:
        os.umask(old)
    assert json.loads(log.read_text(encoding="utf-8"))["verdict"] == "up"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


# ------------------------------------------------------------------------------------------ nothing unpickled

_UNSAFE = {
    r"\bimport pickle\b|\bfrom pickle\b|\bpickle\.load": "pickle",
    r"allow_pickle\s*=\s*True": "numpy with allow_pickle=True",
    r"\btorch\.load\b": "torch.load",
    r"\b(joblib|dill|shelve|marshal|cloudpickle)\b": "another pickle-based loader",
    r"\byaml\.load\(|\byaml\.unsafe_load\b": "yaml.load",
    r"(?<![.\w])(eval|exec)\(": "eval/exec",  # the builtins, not methods such as torch's module.eval()
}


def test_no_module_reads_anything_back_with_pickle_or_eval() -> None:
    for source in sorted((ROOT / "qa").rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        for pattern, what in _UNSAFE.items():
            assert not re.search(pattern, text), f"{source.relative_to(ROOT)} uses {what}"
        for line in text.splitlines():
            if re.search(r"\b(np|numpy)\.load\(", line):
                assert "allow_pickle=False" in line, f"{source.relative_to(ROOT)}: {line.strip()}"
    lexical = (ROOT / "qa" / "lexical.py").read_text(encoding="utf-8")
    assert re.search(r"BM25\.load\(.*allow_pickle=False", lexical), "bm25s must load with allow_pickle=False"


class _Payload:
    """Unpickling this creates a folder: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_planted_in_an_index_is_refused_and_never_runs(small: Path, tmp_path: Path) -> None:
    """An attacker who can write the index folder swaps a BM25 array for a pickle and fixes the checksums."""
    import shutil

    from qa.index import MANIFEST, _sha256_file

    path = tmp_path / "idx"
    shutil.copytree(small, path)
    marker = tmp_path / "pickle-ran"
    planted = path / "bm25" / "data.csc.index.npy"
    np.save(planted, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"]["bm25/data.csc.index.npy"] = {"sha256": _sha256_file(planted), "bytes": planted.stat().st_size}
    (path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(qa.IndexCorruptError, match=r"(?i)pickle.*qa index build --out"):
        qa.Index.load(path)
    assert not marker.exists(), "the planted pickle was executed"


# ------------------------------------------------------------------------------------------ markup in documents


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
def test_script_in_indexed_documents_is_cited_as_text_and_never_runs(
    serve_app: Callable[..., AppServer], tmp_path: Path
) -> None:
    """Files with script in their names, titles and text, indexed and served: cited, shown, never executed."""
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "castle.md").write_text(
        f"# Castle {PAYLOAD}\n\nThe castle gate was built in 1200 and hides {PAYLOAD} in its wall.\n"
        "The river flows north past the castle.\n",
        encoding="utf-8",
    )
    line = {"id": "<svg onload=window.__xss=3>", "title": f"JSON {PAYLOAD}",
            "text": "The lighthouse keeper writes <iframe src=javascript:window.__xss=4></iframe> in his log."}
    (folder / "more.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    index = tmp_path / "idx"
    qa.Index.build([folder], index)
    dialogs: list[str] = []
    with serve_app(index, feedback_dir=tmp_path / "feedback") as server, sync_playwright() as p:
        url = server.url
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url)
            page.wait_for_selector("#msg textarea")
            for question, expect in [
                ("What does the castle gate hide in its wall?", "castle gate"),
                ("What does the lighthouse keeper write in his log?", "lighthouse keeper"),
                ("Who won the 2022 FIFA World Cup?", None),
            ]:
                bots = page.locator("#chatbot .message.bot")
                before = bots.count()
                page.fill("#msg textarea", question)
                page.press("#msg textarea", "Enter")
                page.wait_for_function(f"document.querySelectorAll('#chatbot .message.bot').length > {before}")
                page.wait_for_function(
                    "document.querySelector('#chatbot [data-testid=status-tracker]').classList.contains('hide')"
                )
                if expect is not None:
                    assert expect in bots.last.inner_text()
                    marker = bots.last.locator("a.qa-cite").first
                    marker.hover()
                    marker.click()
            for summary in page.locator("details summary").all():
                with contextlib.suppress(Exception):
                    summary.click(timeout=2000)
            shown = page.locator("#sources").inner_text() + page.locator("#qa-header").inner_text()
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert dialogs == []
            assert '<img src=x onerror="window.__xss=1">' in shown  # shown as text, in the sources and header
            assert "<iframe src=javascript:window.__xss=4></iframe>" in shown
            assert page.locator("#sources img, #sources script, #sources iframe, #sources svg").count() == 0
        finally:
            browser.close()
