"""Serving the app: the login, the exposure rules, ``launch``, ``serve`` and ``python app.py``'s ``main``.

* Exposure: binds 127.0.0.1 by default, never creates a share link, and refuses a non-local address without a
  login (``QA_AUTH`` or ``QA_AUTH_FILE``) unless explicitly allowed (``--allow-public``).
* Login: accounts come only from the environment or a file, never from the command line; passwords are compared
  in constant time.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import ipaddress
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import gradio as gr

import qa

from . import style
from .app import QABlocks, build_app

__all__ = ["UPLOAD_CAP_FACTOR", "check_exposure", "launch", "load_auth", "main", "serve"]

_LOCAL_HOSTS = {"localhost", "ip6-localhost"}
#: Gradio refuses uploads over this many times ``max_file_mb`` outright (the whole batch, before qa sees it); files
#: between ``max_file_mb`` and that are refused one by one by qa, with the reason, and the others are indexed.
UPLOAD_CAP_FACTOR = 4


def load_auth(settings: qa.Settings) -> dict[str, str]:
    """The web login accounts: ``QA_AUTH`` (``user:password``) plus the lines of ``QA_AUTH_FILE``.

    The file holds one ``user:password`` per line; blank lines and lines starting with ``#`` are skipped.

    Raises:
        qa.ConfigError: a malformed entry, or an auth file that cannot be read.
    """
    accounts: dict[str, str] = {}

    def add(entry: str, where: str) -> None:
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            raise qa.ConfigError(f"{where} is not of the form user:password")
        accounts[user.strip()] = password

    if settings.auth:
        add(settings.auth.strip(), "QA_AUTH")
    if settings.auth_file is not None:
        try:
            lines = Path(settings.auth_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise qa.ConfigError(f"cannot read the auth file {settings.auth_file}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                add(line, f"line {number} of {settings.auth_file}")
    return accounts


def _checker(accounts: dict[str, str]) -> Callable[[str, str], bool]:
    def check(user: str, password: str) -> bool:
        expected = accounts.get(user, "")
        ok = hmac.compare_digest(expected.encode("utf-8"), (password or "").encode("utf-8"))
        return ok and user in accounts

    return check


def _is_local(host: str) -> bool:
    if host.lower() in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: qa.Settings, *, allow_public: bool) -> dict[str, str]:
    """The login accounts, after refusing a non-local address that would have none (unless allowed).

    Example:
        >>> check_exposure(qa.Settings(host="127.0.0.1"), allow_public=False)
        {}
        >>> check_exposure(qa.Settings(host="0.0.0.0"), allow_public=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        qa.errors.ConfigError: refusing to serve on 0.0.0.0 without a login, ...
    """
    accounts = load_auth(settings)
    if not _is_local(settings.host) and not accounts and not allow_public:
        raise qa.ConfigError(
            f"refusing to serve on {settings.host} without a login, since anyone who can reach it could use it; "
            "set QA_AUTH=user:password or QA_AUTH_FILE=FILE, bind 127.0.0.1, or pass --allow-public to serve "
            "it openly on purpose"
        )
    return accounts


def launch(
    app: gr.Blocks,
    *,
    host: str | None = None,
    port: int | None = None,
    settings: qa.Settings | None = None,
    allow_public: bool = False,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Start ``app`` with the page's theme, styles and script, the login if one is configured, and no share link.

    Args:
        app: an app from :func:`build_app`.
        host: address to bind (default: the ``host`` setting, 127.0.0.1).
        port: port to listen on (default: the ``port`` setting, 7860).
        settings: settings to use instead of the environment's.
        allow_public: allow a non-local ``host`` without a login.
        block: serve until Ctrl-C, then close the app; otherwise return once it is listening.
        quiet: do not print the URL.

    Returns:
        The local URL of the running app.

    Raises:
        qa.ConfigError: a non-local host without a login and without ``allow_public``, or malformed credentials.
    """
    s = (settings or qa.get_settings()).replace(host=host, port=port)
    accounts = check_exposure(s, allow_public=allow_public)
    if isinstance(app, QABlocks):
        app.hold_uploads(s)  # again, if it was closed since it was built
    _, local_url, _ = app.launch(
        server_name=s.host,
        server_port=s.port,
        share=False,
        auth=_checker(accounts) if accounts else None,
        auth_message="Log in to ask questions about the documents." if accounts else None,
        # Gradio's upload route would otherwise take a file of any size onto disk before qa ever sees it. Its cap
        # sits above max_file_mb: Gradio refuses a whole upload when one file is over it, while qa refuses only
        # that file, with the reason, and indexes the rest (see UPLOAD_CAP_FACTOR).
        max_file_size=int(s.max_file_mb * 1024 * 1024 * UPLOAD_CAP_FACTOR),
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
        theme=style.theme(),
        css=style.CSS,
        js=style.JS,
        footer_links=["api", "settings"],
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
    )
    if not quiet:
        login = " (login required)" if accounts else ""
        print(f"qa: answering at {local_url}{login}; press Ctrl-C to stop", flush=True)
    if block:
        _run_until_stopped(app)
    return str(local_url)


def _run_until_stopped(app: gr.Blocks) -> None:
    """Wait while ``app`` serves; on Ctrl-C (or a signal :func:`serve` turns into one), close it.

    Not Gradio's ``block_thread()``: that stops only the HTTP server, which then waits for the open event streams
    (each client's heartbeat) before it exits; ``close()`` ends the streams first, so the app stops at once.
    """
    try:
        while app.is_running:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        app.close()


def serve(
    *,
    index: str | Path | qa.Index | None = None,
    host: str | None = None,
    port: int | None = None,
    settings: qa.Settings | None = None,
    allow_public: bool = False,
) -> None:
    """Build and run the web app until interrupted (``python app.py`` and ``qa serve`` call this).

    Args:
        index: an index directory (default: the ``index`` setting, else the bundled article).
        host: address to bind (default: the ``host`` setting, 127.0.0.1).
        port: port to listen on (default: the ``port`` setting, 7860).
        settings: settings to use instead of the environment's.
        allow_public: allow a non-local ``host`` without a login.

    Raises:
        qa.QAError: bad settings or credentials, a refused public address, or an index that cannot be opened.
    """
    s = (settings or qa.get_settings()).replace(host=host, port=port)
    check_exposure(s, allow_public=allow_public)  # before the slower index and model loading
    with _stop_on_signals():
        app = build_app(index=index, settings=s)
        try:
            launch(app, settings=s, allow_public=allow_public, block=True)
        finally:
            app.close()  # also removes the private upload folder


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the app as Ctrl-C does, so its cleanup runs (their default would skip it)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {n: signal.signal(getattr(signal, n), interrupt) for n in names}
    try:
        yield
    finally:
        for n, handler in previous.items():
            signal.signal(getattr(signal, n), handler)


def main(argv: Sequence[str] | None = None) -> int:
    """``python app.py [--index DIR] [--host HOST] [--port PORT] [--allow-public]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Chat with the documents in a browser. Log-in credentials come only from the environment "
        "(QA_AUTH=user:password) or a file (QA_AUTH_FILE), never from the command line.",
    )
    parser.add_argument("--index", type=Path, help="index directory (default: the bundled article)")
    parser.add_argument("--host", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, help="port (default: 7860)")
    parser.add_argument(
        "--allow-public", action="store_true", help="allow a non-local --host without a login (not recommended)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("qa").setLevel(logging.INFO)  # say so when the index is built or the model loaded
    try:
        serve(index=args.index, host=args.host, port=args.port, allow_public=args.allow_public)
    except qa.QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
