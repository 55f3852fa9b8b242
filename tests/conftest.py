"""Shared fixtures: the real model, real FAISS, indexes built once per test session, and real app servers.

``serve_app`` starts the real web app (``python app.py``) in a child process bound to 127.0.0.1 on a free port,
waits until it answers when it is first used, and stops it by PID (SIGTERM, then SIGKILL) when the test or module
is done with it, or at the end of the session at the latest. ``article_server`` is one such app on the bundled
article, shared by the modules that only ask it questions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
#: Longest wait for a child app to load the model and answer (a bound for a busy machine, not a benchmark).
STARTUP_TIMEOUT_S = 300.0

#: Files that mostly wait (servers starting, Ray, threads racing a build) go first: with ``-n 2 --dist
#: loadfile`` (pyproject's addopts) one worker takes them while the other runs everything else.
_FIRST = ("test_milvus_server.py", "test_ray_build.py", "test_encoder_concurrency.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(_FIRST)))


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


# ------------------------------------------------------------------------------------------ app servers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings_env(settings: Any) -> dict[str, str | None]:
    """``settings`` as the ``QA_*`` variables a child reads them from (``None``: unset, the default applies)."""
    env: dict[str, str | None] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        env[f"QA_{f.name.upper()}"] = None if value is None else str(value)
    return env


class AppServer:
    """A started app: ``python app.py`` in a child process, or an in-process Blocks (``app``).

    A child is started at once and waited for only when first needed: reading ``url`` or ``pid`` waits until it
    answers, so a module can start several children that load side by side. Stop it with :meth:`stop` or by using
    it as a context manager; :func:`serve_app` stops what is left.
    """

    def __init__(
        self,
        settings: Any,
        *,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        app: Any = None,
        url: str | None = None,
    ) -> None:
        self.settings = settings
        self.app = app
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._command = command
        self._env = env
        self._url = url
        self._ready = command is None
        self._tries = 0
        if command is not None:
            self._spawn()

    def _spawn(self) -> None:
        assert self._command is not None and self.log is not None
        port = free_port()
        self._tries += 1
        self._url = f"http://127.0.0.1:{port}/"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*self._command, "--port", str(port)], cwd=ROOT, env=self._env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait(self) -> None:
        """Wait until the child answers (its model loaded, its server listening); fail with its output if it dies."""
        while not self._ready:
            assert self.proc is not None
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while self.proc.poll() is None and time.monotonic() < deadline and not self._answers():
                time.sleep(0.1)
            if self.proc.poll() is None and self._answers():
                self._ready = True
                return
            self.stop()
            # Another process may take the free port before the child binds it: try another one.
            if "port" not in self.output().lower() or self._tries >= 3:
                code = self.proc.returncode
                raise RuntimeError(f"the app did not start (exit code {code}):\n{self.output()[-3000:]}")
            self._spawn()

    def _answers(self) -> bool:
        # The app prints its URL once launch() has returned (its HTTP server answers a little earlier).
        return f"qa: answering at {self._url}" in self.output() and _answers(str(self._url))

    @property
    def url(self) -> str:
        self.wait()
        return str(self._url)

    @property
    def pid(self) -> int | None:
        self.wait()
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> int | None:
        """Stop the server: the child by PID (SIGTERM, then SIGKILL after 20 s), or ``app.close()``.

        Returns:
            The child's exit code (``None`` for an in-process app).
        """
        if self.proc is None:
            if self.app is not None:
                self.app.close()
            return None
        self.terminate()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        return self.proc.returncode

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM), without waiting."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def output(self) -> str:
        """What the child printed (stdout and stderr)."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log is not None else ""

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}config", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # 401 behind a login: it is up
    except (OSError, ValueError):
        return False


def _child(index: Path | None, settings: Any, log: Path) -> AppServer:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name, value in _settings_env(settings).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1"]
    if index is not None:
        command += ["--index", str(index)]
    return AppServer(settings, command=command, env=env, log=log)


@pytest.fixture(scope="session")
def serve_app(
    tmp_path_factory: pytest.TempPathFactory, _isolated_index_dir: Path
) -> Iterator[Callable[..., AppServer]]:
    """Start the real app; every server started this way is stopped by the end of the session at the latest.

    ``serve_app(index=None, *, settings=None, in_process=False, **overrides) -> AppServer``:

    * ``index``: an index directory (or a saved :class:`qa.Index`); default: the bundled article.
    * ``settings``: the app's settings (default: the environment's, as ``qa serve`` reads them), with
      ``overrides`` (``feedback_dir=...``, ``max_file_mb=...``) on top. A child gets them as ``QA_*`` variables.
    * ``in_process``: build and launch the app in this process (for a test that needs the Blocks object);
      otherwise ``python app.py --host 127.0.0.1 --port P`` runs it in a child process, started at once and
      waited for when its ``url`` or ``pid`` is first read.
    """
    import qa

    started: list[AppServer] = []

    def start(
        index: str | Path | qa.Index | None = None,
        *,
        settings: qa.Settings | None = None,
        in_process: bool = False,
        **overrides: Any,
    ) -> AppServer:
        s = (settings or qa.get_settings()).replace(**overrides)
        if in_process:
            from qa import web

            app = web.build_app(index=index, settings=s)
            url = web.launch(app, port=free_port(), settings=s, block=False, quiet=True)
            server = AppServer(s, app=app, url=url)
        else:
            path = index.path if isinstance(index, qa.Index) else index
            assert path is not None or index is None, "a child app needs an index saved on disk"
            log = tmp_path_factory.mktemp("app-server") / "output.log"
            server = _child(Path(path) if path is not None else None, s, log)
        started.append(server)
        return server

    yield start
    for server in started:
        server.terminate()  # all at once: they shut down side by side
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def article_server(
    serve_app: Callable[..., AppServer], article_index: Any, tmp_path_factory: pytest.TempPathFactory
) -> AppServer:
    """The app on the bundled article (its index built first, in this session's folder), shared by the modules that
    only ask it questions; its thumbs up/down go to a feedback folder of its own (``settings.feedback_dir``)."""
    return serve_app(feedback_dir=tmp_path_factory.mktemp("article-feedback"), concurrency=3)


@pytest.fixture(scope="session")
def login_server(
    serve_app: Callable[..., AppServer], article_index: Any, tmp_path_factory: pytest.TempPathFactory
) -> AppServer:
    """The app on the bundled article behind a login, ``QA_AUTH=alice:s3cret`` in its environment (as ``qa serve``
    reads it), shared by the modules that check what the login guards."""
    return serve_app(auth="alice:s3cret", feedback_dir=tmp_path_factory.mktemp("login-feedback"))
