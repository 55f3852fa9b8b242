"""Load: many concurrent users asking questions through the web app's ``/ask`` API, with nothing lost.

Starts the real app (``qa.ui.build_app`` + ``qa.ui.launch``, real model and FAISS index) in a child process on
127.0.0.1 on a free port, then runs ``--users`` simulated users, each its own ``gradio_client.Client`` (its
own session) in its own thread, asking the article's dev questions (``shared/eval/seed/questions.jsonl``,
cycling, each user starting at a different one) back to back for ``--seconds``. Every reply is checked: it
must be the reply to the question that user asked (no cross-talk) with the same ``found`` verdict and the same
first citation as a quiet, sequential warm-up pass gave. Anything else, an exception or a timeout is an error.

Reports throughput (answered questions per second), p50/p99 latency and errors, and with ``--sweep`` the same
per number of users, to find where throughput stops growing (the saturation point). Prints a summary and
writes ``benchmarks/results/load.json``.

Usage::

    python benchmarks/load.py                                   # 32 users for 60 s
    python benchmarks/load.py --users 8 --seconds 10            # the short version (tests/test_reliability.py)
    python benchmarks/load.py --sweep 1,4,8,16,32,64 --sweep-seconds 20
"""

from __future__ import annotations

import os

# No telemetry or hub look-ups: gradio_client builds Hugging Face headers, which may otherwise go online.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTION_FILES = (
    ROOT.parent / "shared" / "eval" / "seed" / "questions.jsonl",
    ROOT / "tests" / "data" / "seed_questions.jsonl",
)
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "load.json"
#: Longest wait for one reply before it counts as an error (a bound, so a stuck server cannot hang the run).
REQUEST_TIMEOUT_S = 120.0
#: Longest wait for the server to load the model and start listening.
STARTUP_TIMEOUT_S = 600.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_questions(path: Path | None = None) -> list[str]:
    """The dev questions of the bundled article, in file order.

    Args:
        path: a JSONL file with a ``question`` per line (default: ``shared/eval/seed/questions.jsonl``, else
            the copy in ``tests/data``).

    Returns:
        The questions.
    """
    candidates = [path] if path is not None else [p for p in QUESTION_FILES if p.is_file()]
    if not candidates:
        raise SystemExit(f"no question file found (looked for {', '.join(map(str, QUESTION_FILES))})")
    lines = candidates[0].read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["question"]) for line in lines if line.strip()]


# ---------------------------------------------------------------------------------------------- the server


def serve_forever(port: int, index: str | None, concurrency: int | None) -> None:
    """Child-process entry point: build the app, listen on 127.0.0.1:``port``, print ``READY <url>``, block.

    Args:
        port: the port to listen on.
        index: index directory, or ``None`` for the bundled article.
        concurrency: questions answered at once (``None``: the ``concurrency`` setting).
    """
    import qa
    from qa import web as ui

    settings = qa.get_settings(concurrency=concurrency)
    app = ui.build_app(index=index, settings=settings)
    url = ui.launch(app, host="127.0.0.1", port=port, settings=settings, block=False, quiet=True)
    print(f"READY {url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    app.close()


class Server:
    """The app running in a child process (so the users' threads do not share its interpreter)."""

    def __init__(self, *, index: str | None, concurrency: int | None) -> None:
        self.port = _free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.port)]
        if index is not None:
            cmd += ["--index", index]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.url = self._wait_ready()
        self.startup_s = time.perf_counter() - started

    def _wait_ready(self) -> str:
        found: list[str] = []
        ready = threading.Event()

        def read() -> None:
            # Keeps draining the child's stdout after READY, so it can never block on a full pipe.
            assert self.proc.stdout is not None
            for line in self.proc.stdout:  # ends when the child exits
                if not ready.is_set() and line.startswith("READY "):
                    found.append(line.split(maxsplit=1)[1].strip())
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(STARTUP_TIMEOUT_S)
        if not found:
            self.stop()
            raise SystemExit(f"the app did not start within {STARTUP_TIMEOUT_S:.0f} s (exit code {self.proc.poll()})")
        return found[0]

    def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL if it has not exited after 30 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


# ---------------------------------------------------------------------------------------------- the users


#: How users talk to the app: ``gradio`` (a ``gradio_client.Client`` each, as the README shows) or ``http`` (plain
#: HTTP to Gradio's ``/gradio_api/call/ask`` route with the standard library: far less client CPU per question, so
#: on a small machine it shows more of what the app itself can do).
CLIENTS = ("gradio", "http")


class Asker:
    """One user's connection to the app: ``ask(question)`` returns the ``/ask`` reply or raises."""

    def __init__(self, url: str, kind: str) -> None:
        self.url = url
        self.client: Any = None
        if kind == "gradio":
            from gradio_client import Client

            self.client = Client(url, verbose=False, analytics_enabled=False, max_workers=2, download_files=False)

    def ask(self, question: str) -> Any:
        """The reply to ``question`` (bounded by :data:`REQUEST_TIMEOUT_S`)."""
        if self.client is not None:
            return self.client.submit(question, api_name="/ask").result(timeout=REQUEST_TIMEOUT_S)
        return _http_ask(self.url, question)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _http_ask(url: str, question: str) -> Any:
    """``/ask`` over plain HTTP: POST the question, then read the event stream of its reply."""
    body = json.dumps({"data": [question]}).encode("utf-8")
    post = urllib.request.Request(
        f"{url}gradio_api/call/ask", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(post, timeout=REQUEST_TIMEOUT_S) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/ask/{event_id}", timeout=REQUEST_TIMEOUT_S) as response:
        lines = response.read().decode("utf-8").splitlines()
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    data = [line.split(":", 1)[1].strip() for line in lines if line.startswith("data:")]
    if not events or events[-1] != "complete":
        raise RuntimeError(f"event {events[-1] if events else None}: {data[-1][:120] if data else ''}")
    return json.loads(data[-1])[0]


def _signature(result: dict[str, Any]) -> tuple[bool, str | None]:
    """What a reply must agree on with the quiet reference reply: found, and the first citation's place."""
    first = (result.get("citations") or result.get("closest") or [None])[0]
    place = f"{first['doc_id']}:{first['start']}-{first['end']}" if first else None
    return bool(result.get("found")), place


def reference_answers(url: str, questions: list[str]) -> dict[str, tuple[bool, str | None]]:
    """Each question asked once, sequentially, on a quiet server: the replies every user must get.

    Args:
        url: the app's URL.
        questions: the questions.

    Returns:
        ``(found, first citation)`` per question.
    """
    asker = Asker(url, "gradio")
    try:
        return {q: _signature(asker.ask(q)) for q in questions}
    finally:
        asker.close()


def cpu_seconds(pid: int | None = None) -> float | None:
    """User plus system CPU time of a process so far, all threads included.

    Args:
        pid: the process (``None``: this one).

    Returns:
        Seconds, or ``None`` when another process's times cannot be read (no ``/proc``).
    """
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime in clock ticks
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Phase:
    """The outcome of one load phase: every request's latency and every error, and the CPU time spent."""

    users: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wrong: int = 0
    elapsed: float = 0.0
    server_cpu: float | None = None
    client_cpu: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> dict[str, Any]:
        """Throughput, latency percentiles and errors of the phase, JSON-ready."""
        ms = sorted(t * 1000 for t in self.latencies)
        answered = len(ms)
        return {
            "users": self.users,
            "seconds": self.seconds,
            "elapsed_s": round(self.elapsed, 2),
            "answered": answered,
            "throughput_qps": round(answered / self.elapsed, 2) if self.elapsed else 0.0,
            "p50_ms": round(_percentile(ms, 50), 1) if ms else None,
            "p99_ms": round(_percentile(ms, 99), 1) if ms else None,
            "max_ms": round(ms[-1], 1) if ms else None,
            "errors": sum(self.errors.values()) + self.wrong,
            "wrong_replies": self.wrong,
            "error_kinds": dict(self.errors.most_common(10)),
            # Where the CPU went: the app's process, and this one (the users' gradio_client threads).
            "server_cpu_ms_per_question": _per(self.server_cpu, answered),
            "client_cpu_ms_per_question": _per(self.client_cpu, answered),
            "server_cpu_cores_busy": round(self.server_cpu / self.elapsed, 2)
            if self.server_cpu is not None and self.elapsed
            else None,
        }


def _per(cpu: float | None, answered: int) -> float | None:
    return round(1000 * cpu / answered, 1) if cpu is not None and answered else None


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100), at least 1
    return ordered[int(rank) - 1]


def run_phase(
    url: str,
    questions: list[str],
    expected: dict[str, tuple[bool, str | None]],
    *,
    users: int,
    seconds: float,
    server_pid: int | None = None,
    client: str = "gradio",
) -> Phase:
    """``users`` users asking questions back to back for ``seconds``; each reply checked against ``expected``.

    Each user starts no new question after the deadline; questions in flight then are awaited (bounded by
    :data:`REQUEST_TIMEOUT_S`) and counted.

    Args:
        url: the app's URL.
        questions: the questions, asked in a cycle; user ``u`` starts at question ``u``.
        expected: the reference ``(found, first citation)`` of every question.
        users: concurrent users, each with its own client (session).
        seconds: how long users keep asking.
        server_pid: the app's process, to account for its CPU time (``None``: not measured).
        client: how users connect, one of :data:`CLIENTS`.

    Returns:
        The phase's latencies and errors.
    """
    phase = Phase(users, seconds)
    clients: list[Asker | None] = [None] * users

    def connect(u: int) -> None:
        try:
            clients[u] = Asker(url, client)
        except Exception as exc:  # noqa: BLE001 - a user that cannot connect is an error to report, not a crash
            with phase.lock:
                phase.errors[f"connect: {type(exc).__name__}: {str(exc)[:120]}"] += 1

    connectors = [threading.Thread(target=connect, args=(u,)) for u in range(users)]
    for t in connectors:
        t.start()
    for t in connectors:
        t.join()

    start_gate = threading.Barrier(users + 1)
    deadline = [0.0]

    def user(u: int) -> None:
        asker = clients[u]
        start_gate.wait()
        i = u
        while asker is not None and time.perf_counter() < deadline[0]:
            question = questions[i % len(questions)]
            i += 1
            t0 = time.perf_counter()
            try:
                result = asker.ask(question)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported, none stops the run
                with phase.lock:
                    phase.errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                continue
            took = time.perf_counter() - t0
            ok = isinstance(result, dict) and result.get("question") == question.strip()
            ok = ok and _signature(result) == expected[question]
            with phase.lock:
                phase.latencies.append(took)
                phase.wrong += not ok

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for t in threads:
        t.start()
    server_cpu = cpu_seconds(server_pid) if server_pid is not None else None
    client_cpu = cpu_seconds()
    t_start = time.perf_counter()
    deadline[0] = t_start + seconds
    start_gate.wait()
    for t in threads:
        t.join(seconds + REQUEST_TIMEOUT_S + 30)
    phase.elapsed = time.perf_counter() - t_start
    server_after = cpu_seconds(server_pid) if server_pid is not None else None
    if server_cpu is not None and server_after is not None:
        phase.server_cpu = server_after - server_cpu
    after = cpu_seconds()
    phase.client_cpu = after - client_cpu if after is not None and client_cpu is not None else None
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        phase.errors["user thread still waiting after the time limit"] += stuck
    for c in clients:
        if c is not None:
            c.close()
    return phase


def saturation(levels: list[dict[str, Any]], *, share: float = 0.9) -> dict[str, Any]:
    """Where more users stop buying throughput: the fewest users reaching ``share`` of the best throughput.

    Args:
        levels: phase summaries, in increasing number of users.
        share: the fraction of the peak throughput that counts as saturated.

    Returns:
        ``{"users", "throughput_qps", "peak_qps", "peak_users", "rule"}``.
    """
    peak = max(levels, key=lambda r: r["throughput_qps"])
    knee = next(r for r in levels if r["throughput_qps"] >= share * peak["throughput_qps"])
    return {
        "users": knee["users"],
        "throughput_qps": knee["throughput_qps"],
        "peak_qps": peak["throughput_qps"],
        "peak_users": peak["users"],
        "rule": f"fewest users reaching {share:.0%} of the peak throughput; beyond it only latency grows",
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['users']:>3} users: {r['throughput_qps']:6.2f} questions/s  p50 {r['p50_ms']} ms  "
        f"p99 {r['p99_ms']} ms  answered {r['answered']}  errors {r['errors']}  "
        f"CPU/question: app {r['server_cpu_ms_per_question']} ms, clients {r['client_cpu_ms_per_question']} ms"
    )


def _environment(concurrency: int | None) -> dict[str, Any]:
    import gradio_client

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "gradio_client": gradio_client.__version__,
        "server_concurrency": concurrency if concurrency is not None else os.environ.get("QA_CONCURRENCY", 4),
    }
    if hasattr(os, "getloadavg"):
        env["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return env


def main(argv: list[str] | None = None) -> int:
    """Run the load benchmark; returns 0, or 1 when any phase had errors."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=32, help="concurrent users of the main run (default 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the main run (default 60)")
    parser.add_argument("--sweep", help="comma-separated user counts to measure one after another, e.g. 1,4,8,16,32,64")
    parser.add_argument("--sweep-seconds", type=float, default=20.0, help="length of each sweep level (default 20)")
    parser.add_argument("--no-main", action="store_true", help="with --sweep: skip the main run")
    parser.add_argument("--index", help="index directory (default: the bundled article)")
    parser.add_argument("--questions", type=Path, help="question JSONL (default: shared/eval/seed/questions.jsonl)")
    parser.add_argument("--concurrency", type=int, help="questions the app answers at once (QA_CONCURRENCY)")
    parser.add_argument(
        "--client", choices=CLIENTS, default="gradio", help="gradio_client users (default) or plain HTTP users"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result file (default {DEFAULT_OUT})")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve is not None:
        serve_forever(args.serve, args.index, args.concurrency)
        return 0
    if args.users < 1 or args.seconds <= 0:
        parser.error("--users must be at least 1 and --seconds positive")
    levels = [int(x) for x in args.sweep.split(",")] if args.sweep else []
    if any(n < 1 for n in levels):
        parser.error("--sweep levels must be at least 1")

    questions = load_questions(args.questions)
    environment = _environment(args.concurrency)
    server = Server(index=args.index, concurrency=args.concurrency)
    print(f"app started at {server.url} in {server.startup_s:.1f} s; {len(questions)} questions", flush=True)
    report: dict[str, Any] = {
        "what": f"concurrent {args.client} users asking /ask back to back through the real app (child process)",
        "client": args.client,
        "questions": len(questions),
        "startup_s": round(server.startup_s, 2),
    }
    try:
        expected = reference_answers(server.url, questions)
        common = {"server_pid": server.proc.pid, "client": args.client}
        if not args.no_main:
            phase = run_phase(server.url, questions, expected, users=args.users, seconds=args.seconds, **common)
            report["run"] = main_run = phase.summary()
            print("main run:", _line(main_run), flush=True)
        if levels:
            sweep = []
            for n in levels:
                r = run_phase(server.url, questions, expected, users=n, seconds=args.sweep_seconds, **common).summary()
                sweep.append(r)
                print("sweep   :", _line(r), flush=True)
            report["sweep"] = sweep
            report["saturation"] = saturation(sweep)
            print(f"saturates at {report['saturation']['users']} users "
                  f"({report['saturation']['throughput_qps']} of peak {report['saturation']['peak_qps']} q/s)")
    finally:
        server.stop()
    report["environment"] = environment
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    phases = [report.get("run"), *report.get("sweep", [])]
    return 1 if any(p and p["errors"] for p in phases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
