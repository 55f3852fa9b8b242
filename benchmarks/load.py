"""Load: many concurrent users asking questions through the web app's ``/ask`` API, with nothing lost.

Starts the real app (``qa.web.build_app`` + ``qa.web.launch``, real model and FAISS index) in a child process on
127.0.0.1 on a free port, then runs ``--users`` simulated users, each its own ``gradio_client.Client`` (its
own session) in its own thread, asking the article's dev questions (``shared/eval/seed/questions.jsonl``,
cycling, each user starting at a different one) back to back for ``--seconds``. Every reply is checked: it
must be the reply to the question that user asked (no cross-talk) with the same ``found`` verdict and the same
first citation as a quiet, sequential warm-up pass gave. Anything else, an exception or a timeout is an error.

Reports throughput (answered questions per second), p50/p99 latency and errors, and with ``--sweep`` the same
per number of users, to find where throughput stops growing (the saturation point). Prints a summary and
writes ``benchmarks/results/load.json``.

With ``--upload``, questions during an upload instead: for each number of users in ``--upload-users`` (default
1 and 32) a fresh app (its own empty index folder) first serves a no-upload baseline (``--baseline-seconds``
for one user, ``--seconds`` for more), then the users keep asking while one more client uploads a ~10k-sentence
document (``--upload-sentences``, made from the SQuAD paragraphs, reworded until every sentence is distinct)
through the app's ``/upload_documents`` endpoint, as the Documents panel does. Questions answered during the
upload come from the previous index, after it from the new one: a reply must match one of the two references.
Writes ``benchmarks/results/load_upload.json``, with the load average around every phase.

Usage::

    python benchmarks/load.py                                   # 32 users for 60 s
    python benchmarks/load.py --users 8 --seconds 10            # the short version (tests/test_reliability.py)
    python benchmarks/load.py --sweep 1,4,8,16,32,64 --sweep-seconds 20
    python benchmarks/load.py --upload                          # 1 and 32 users, with and without an upload
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
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import free_port

ROOT = Path(__file__).resolve().parents[1]
#: The shared evaluation data sits beside the checkout (or beside the folder of a git worktree).
SHARED_EVAL = [base / "shared" / "eval" for base in (ROOT.parent, ROOT.parent.parent)]
QUESTION_FILES = (
    *(shared / "seed" / "questions.jsonl" for shared in SHARED_EVAL),
    ROOT / "tests" / "data" / "seed_questions.jsonl",
)
SQUAD_DOCS = next((p for p in (s / "squad" / "docs.jsonl" for s in SHARED_EVAL) if p.is_file()),
                  SHARED_EVAL[0] / "squad" / "docs.jsonl")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "load.json"
UPLOAD_OUT = ROOT / "benchmarks" / "results" / "load_upload.json"
#: Longest wait for one reply before it counts as an error (a bound, so a stuck server cannot hang the run).
REQUEST_TIMEOUT_S = 120.0
#: Longest wait for the server to load the model and start listening.
STARTUP_TIMEOUT_S = 600.0


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


def serve_forever(port: int, index: str | None, concurrency: int | None, *, build_yields: bool = True) -> None:
    """Child-process entry point: build the app, listen on 127.0.0.1:``port``, print ``READY <url>``, block.

    Args:
        port: the port to listen on.
        index: index directory, or ``None`` for the bundled article.
        concurrency: questions answered at once (``None``: the ``concurrency`` setting).
        build_yields: ``False`` (a comparison only) keeps a document being embedded on every core even while
            questions are in flight; questions still never wait for it.
    """
    import qa
    from qa import web as ui

    if not build_yields:
        from qa.scheduling import QuestionTraffic

        QuestionTraffic.pause_while_busy = lambda self, **_: None  # type: ignore[method-assign]
        QuestionTraffic.wait_idle = lambda self, timeout_s: None  # type: ignore[method-assign]

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

    def __init__(
        self,
        *,
        index: str | None,
        concurrency: int | None,
        index_root: Path | None = None,
        build_yields: bool = True,
    ) -> None:
        self.port = free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.port)]
        if index is not None:
            cmd += ["--index", index]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        if not build_yields:
            cmd += ["--build-no-yield"]
        env = dict(os.environ)
        if index_root is not None:  # its own index folder: uploads make a fresh workspace there
            env["QA_INDEX_DIR"] = str(index_root)
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
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
    #: Every reply as ``(question asked, question in the reply, its signature)``, checked by :meth:`check`.
    replies: list[tuple[str, Any, tuple[bool, str | None]]] = field(default_factory=list, repr=False)
    #: Every answered question as ``(seconds from the phase's start to when it was asked, latency)``.
    timeline: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def check(self, expected: Mapping[str, Any]) -> None:
        """Count the wrong replies: another question's, or a signature not among ``expected[question]``.

        ``expected`` maps each question to its reference signature, or to a set of acceptable ones (before and
        after an upload's new index is swapped in).
        """

        def allowed(question: str) -> Any:
            ref = expected[question]
            return ref if isinstance(ref, set) else {ref}

        self.wrong = sum(asked.strip() != got or sig not in allowed(asked) for asked, got, sig in self.replies)

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
    on_start: Callable[[threading.Event], None] | None = None,
    warm_up: bool = False,
) -> Phase:
    """``users`` users asking questions back to back for ``seconds``; each reply checked against ``expected``.

    Each user starts no new question after the deadline; questions in flight then are awaited (bounded by
    :data:`REQUEST_TIMEOUT_S`) and counted. With ``on_start``, it is called with a stop event as the users
    start, and the phase also ends as soon as that event is set (e.g. when an upload is done).

    Args:
        url: the app's URL.
        questions: the questions, asked in a cycle; user ``u`` starts at question ``u``.
        expected: the reference ``(found, first citation)`` of every question.
        users: concurrent users, each with its own client (session).
        seconds: how long users keep asking.
        server_pid: the app's process, to account for its CPU time (``None``: not measured).
        client: how users connect, one of :data:`CLIENTS`.
        on_start: started with the users (see above).
        warm_up: each user first asks one question that is not counted (sessions set up, caches warm).

    Returns:
        The phase's latencies and errors.
    """
    phase = Phase(users, seconds)
    clients: list[Asker | None] = [None] * users

    def connect(u: int) -> None:
        try:
            clients[u] = asker = Asker(url, client)
            if warm_up:  # one question each, not counted: every session is set up before the clock starts
                asker.ask(questions[u % len(questions)])
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
    stop = threading.Event()

    def user(u: int) -> None:
        asker = clients[u]
        start_gate.wait()
        i = u
        while asker is not None and time.perf_counter() < deadline[0] and not stop.is_set():
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
            reply = (question, result.get("question"), _signature(result)) if isinstance(result, dict) else \
                (question, None, (False, None))
            with phase.lock:
                phase.latencies.append(took)
                phase.replies.append(reply)
                phase.timeline.append((t0 - t_start, took))

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for t in threads:
        t.start()
    server_cpu = cpu_seconds(server_pid) if server_pid is not None else None
    client_cpu = cpu_seconds()
    t_start = time.perf_counter()  # (read by the users only after the start gate)
    deadline[0] = t_start + seconds
    if on_start is not None:
        on_start(stop)
    start_gate.wait()
    for t in threads:
        t.join(max(0.0, deadline[0] - time.perf_counter()) + REQUEST_TIMEOUT_S + 30)
    phase.elapsed = time.perf_counter() - t_start
    phase.check(expected)
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


# ---------------------------------------------------------------------------------------------- the upload


#: Longest an upload may take before it counts as failed (10k sentences take about a minute here).
UPLOAD_TIMEOUT_S = 1800.0


def upload_document(path: Path, sentences: int, *, source: Path = SQUAD_DOCS) -> int:
    """Write a plain-text document of ``sentences`` distinct sentences to ``path``; returns the count qa splits.

    The SQuAD paragraphs' sentences (as qa splits them), then the same again in numbered frames ("In report 7,
    ...") until there are enough, six to a paragraph: no sentence is in the index yet, so every one of them goes
    through the model, as with a real new document.

    Args:
        path: the ``.txt`` file to write.
        sentences: how many sentences.
        source: SQuAD paragraphs, one JSON object with a ``text`` per line.
    """
    from qa.sentences import split

    if not source.is_file():
        raise SystemExit(f"no SQuAD paragraphs at {source}; --upload needs them to make its document")
    texts = [json.loads(line)["text"] for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    base = list(dict.fromkeys(" ".join(t[a:b].split()) for t in texts for a, b in split(t)))
    frames = ("In report {k}, {low}", "As entry {k} records, {low}", "According to note {k}, {low}", "Item {k}: {s}")
    out = base[:sentences]
    for k in range(sentences - len(out)):
        s = base[k % len(base)]
        out.append(frames[k % len(frames)].format(s=s, low=s[:1].lower() + s[1:], k=k))
    text = "\n\n".join(" ".join(out[i : i + 6]) for i in range(0, len(out), 6)) + "\n"
    path.write_text(text, encoding="utf-8")
    return len(split(text))


class Uploader:
    """One more client, which uploads a document through ``/upload_documents`` as the Documents panel does."""

    def __init__(self, url: str, path: Path) -> None:
        from gradio_client import Client

        self.client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        self.path = path
        self.seconds: float | None = None
        self.error: str | None = None
        self.thread: threading.Thread | None = None
        self.stages: list[tuple[str, float]] = []  # (progress description, seconds from the start)

    def start(self, done: threading.Event) -> None:
        """Start the upload in a thread; ``done`` is set when it has returned (or failed)."""
        from gradio_client import handle_file

        def run() -> None:
            t0 = time.perf_counter()
            try:
                job = self.client.submit([handle_file(str(self.path))], api_name="/upload_documents")
                while not job.done() and time.perf_counter() - t0 < UPLOAD_TIMEOUT_S:
                    self._note_stage(job.status(), time.perf_counter() - t0)
                    time.sleep(0.25)
                job.result(timeout=UPLOAD_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a failed upload is reported, not a crash
                self.error = f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                self.seconds = time.perf_counter() - t0
                done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def _note_stage(self, status: Any, at: float) -> None:
        """Record when the upload's progress description first changed to each stage (reading, embedding...)."""
        units = getattr(status, "progress_data", None) or []
        desc = str(getattr(units[0], "desc", None) or "") if units else ""
        desc = desc or str(getattr(status, "code", ""))
        if desc and (not self.stages or self.stages[-1][0] != desc):
            self.stages.append((desc, round(at, 2)))

    def indexed_sentences(self) -> int | None:
        """The uploaded document's sentence count in the app's document list (``None``: not listed)."""
        listed = self.client.predict(api_name="/documents")
        rows = [r for r in listed["documents"] if r.get("file") == self.path.name]
        return int(rows[0]["sentences"]) if rows else None


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def upload_scenario(
    users: int,
    *,
    baseline_s: float,
    questions: list[str],
    document: Path,
    concurrency: int | None,
    build_yields: bool = True,
) -> dict[str, Any]:
    """A fresh app: ``users`` users for ``baseline_s`` with no upload, then the same while a document is uploaded.

    Args:
        users: concurrent users.
        baseline_s: length of the no-upload baseline.
        questions: the questions.
        document: the file to upload.
        concurrency: questions answered at once (``None``: the setting).
        build_yields: see :func:`serve_forever`.

    Returns:
        ``{"users", "baseline", "during_upload", "upload"}``, the phases' summaries with the load average
        before and after each.
    """
    with tempfile.TemporaryDirectory(prefix="qa-load-upload-") as root:
        server = Server(index=None, concurrency=concurrency, index_root=Path(root), build_yields=build_yields)
        try:
            before = reference_answers(server.url, questions)
            load_0 = _load_average()
            baseline = run_phase(server.url, questions, before, users=users, seconds=baseline_s if users else 0.0,
                                 server_pid=server.proc.pid, warm_up=True)
            load_1 = _load_average()
            uploader = Uploader(server.url, document)
            expected: dict[str, set[tuple[bool, str | None]]] = {q: {sig} for q, sig in before.items()}
            during = run_phase(server.url, questions, expected, users=users, seconds=UPLOAD_TIMEOUT_S,
                               server_pid=server.proc.pid, on_start=uploader.start, warm_up=True)
            assert uploader.thread is not None
            uploader.thread.join(UPLOAD_TIMEOUT_S)
            load_2 = _load_average()
            # Questions asked as the new index was swapped in may be answered from it: either reference is right.
            after = reference_answers(server.url, questions)
            for q, sig in after.items():
                expected[q].add(sig)
            during.check(expected)
            sentences = uploader.indexed_sentences() if uploader.error is None else None
            uploader.client.close()
        finally:
            server.stop()
    return {
        "users": users,
        "baseline": {**baseline.summary(), "load_average_before": load_0, "load_average_after": load_1},
        "during_upload": {**during.summary(), "load_average_before": load_1, "load_average_after": load_2},
        "upload": {
            "seconds": round(uploader.seconds, 2) if uploader.seconds is not None else None,
            "error": uploader.error,
            "indexed_sentences": sentences,
            "sentences_per_second": round(sentences / uploader.seconds, 1) if sentences and uploader.seconds else None,
            "references_changed_by_the_upload": sum(before[q] != after[q] for q in questions),
            "stages": uploader.stages,
            "slowest_questions": [
                {"asked_at_s": round(at, 2), "latency_ms": round(1000 * took, 1)}
                for at, took in sorted(during.timeline, key=lambda x: -x[1])[:5]
            ],
            "tenths": _tenths(during.timeline, uploader.seconds or 0.0),
        },
    }


def _tenths(timeline: list[tuple[float, float]], seconds: float) -> list[dict[str, Any]]:
    """The questions of each tenth of the upload (by when they were asked): count, p50 and max latency."""
    out = []
    for tenth in range(10):
        lo, hi = tenth * seconds / 10, (tenth + 1) * seconds / 10
        ms = sorted(1000 * took for at, took in timeline if lo <= at < hi or (tenth == 9 and at >= hi))
        p50, top = (round(_percentile(ms, 50), 1), round(ms[-1], 1)) if ms else (None, None)
        out.append({"from_s": round(lo, 1), "questions": len(ms), "p50_ms": p50, "max_ms": top})
    return out


def upload_targets(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    """The upload scenario's targets, each with the measured value and whether it was met."""
    out: dict[str, Any] = {}
    for sc in scenarios:
        base, during, n = sc["baseline"], sc["during_upload"], sc["users"]
        if n == 0:
            continue
        if n == 1:
            out["1 user: every question during the upload answered in < 1 s"] = {
                "max_ms": during["max_ms"], "met": during["max_ms"] is not None and during["max_ms"] < 1000
                and not during["errors"]}
        else:
            ratio = during["p99_ms"] / base["p99_ms"] if during["p99_ms"] and base["p99_ms"] else None
            out[f"{n} users with one upload: p99 within 2x of the no-upload p99"] = {
                "p99_ms": during["p99_ms"], "no_upload_p99_ms": base["p99_ms"],
                "ratio": round(ratio, 2) if ratio else None, "met": ratio is not None and ratio <= 2.0}
            phases = ((f"{n} users for {base['seconds']:.0f} s", base), (f"{n} users during the upload", during))
            for name, phase in phases:
                out[f"{name}: 0 errors"] = {"errors": phase["errors"], "met": not phase["errors"]}
    return out


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
    parser.add_argument("--upload", action="store_true", help="questions while a document is uploaded (see above)")
    parser.add_argument("--upload-users", default="0,1,32",
                        help="with --upload: user counts (default 0,1,32; 0 times the upload alone)")
    parser.add_argument("--upload-sentences", type=int, default=10_000, help="sentences of the uploaded document")
    parser.add_argument("--baseline-seconds", type=float, default=20.0,
                        help="with --upload: length of the one-user no-upload baseline (more users: --seconds)")
    parser.add_argument("--build-no-yield", action="store_true",
                        help="comparison only: the app's build keeps every core while questions are in flight")
    parser.add_argument("--out", type=Path, help=f"result file (default {DEFAULT_OUT}, with --upload {UPLOAD_OUT})")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve is not None:
        serve_forever(args.serve, args.index, args.concurrency, build_yields=not args.build_no_yield)
        return 0
    if args.upload:
        return upload_main(args)
    args.out = args.out or DEFAULT_OUT
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


def upload_main(args: argparse.Namespace) -> int:
    """``--upload``: each scenario on a fresh app, then the targets; returns 0, or 1 when any phase had errors."""
    counts = [int(x) for x in args.upload_users.split(",")]
    if any(n < 0 for n in counts) or args.upload_sentences < 1:
        raise SystemExit("--upload-users must be 0 (the upload alone) or more, and --upload-sentences positive")
    questions = load_questions(args.questions)
    report: dict[str, Any] = {
        "what": "gradio_client users asking /ask on a fresh app, without and then during one upload of a document "
                "through /upload_documents (questions are answered from the previous index until the new one is "
                "saved; a reply must match the reference of the old or the new index)",
        "questions": len(questions),
        "build_yields": not args.build_no_yield,
        "environment": _environment(args.concurrency),
        "scenarios": [],
    }
    with tempfile.TemporaryDirectory(prefix="qa-load-doc-") as folder:
        document = Path(folder) / "squad_reworded.txt"
        report["document"] = {"sentences": upload_document(document, args.upload_sentences),
                              "bytes": document.stat().st_size}
        print(f"upload document: {report['document']['sentences']} sentences, {report['document']['bytes']} bytes",
              flush=True)
        for n in counts:
            baseline_s = args.baseline_seconds if n == 1 else args.seconds
            sc = upload_scenario(n, baseline_s=baseline_s, questions=questions, document=document,
                                 concurrency=args.concurrency, build_yields=not args.build_no_yield)
            report["scenarios"].append(sc)
            up = sc["upload"]
            if n:
                print(f"no upload   : {_line(sc['baseline'])}  max {sc['baseline']['max_ms']} ms", flush=True)
                print(f"with upload : {_line(sc['during_upload'])}  max {sc['during_upload']['max_ms']} ms", flush=True)
            print(f"  upload of {up['indexed_sentences']} sentences took {up['seconds']} s"
                  f"{'; ERROR ' + up['error'] if up['error'] else ''}; stages {up['stages']}", flush=True)
    report["targets"] = upload_targets(report["scenarios"])
    for name, target in report["targets"].items():
        print(f"{'met ' if target['met'] else 'MISS'} {name}: {target}")
    if hasattr(os, "getloadavg"):
        report["environment"]["load_average_at_end"] = _load_average()
    out = args.out or UPLOAD_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    phases = [p for sc in report["scenarios"] for p in (sc["baseline"], sc["during_upload"])]
    return 1 if any(p["errors"] for p in phases) or any(sc["upload"]["error"] for sc in report["scenarios"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
