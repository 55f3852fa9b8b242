"""Questions never queue behind a document being embedded, and sharing the encoder changes no vector.

Everything runs the real model on every backend (the ``onnx`` export is made once into the user's model cache,
~20 s the first time). A thread embeds a couple of thousand sentences through ``get_encoder().encode_documents``
while the test thread asks questions; the claims are about the order of events (a question returned while the
document was still being embedded), never about how long anything took. The vectors are compared bit for bit
with a quiet run and with the same texts encoded the way the encoder did before it was sliced.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.config import Settings
from qa.documents import default_document
from qa.embedding import Encoder, OnnxEncoder, _ort_session, get_encoder
from qa.scheduling import PriorityGate, QuestionTraffic
from qa.sentences import split

DATA = Path(__file__).parent / "data"
QUESTIONS = [
    "Which team won Super Bowl 50?",
    "Who did Interior Minister Mohsin Naqvi meet?",
    "What is the capital of Poland?",
    "Where was the game played?",
    "When did the US withdraw from Afghanistan?",
]
#: Sentences embedded per backend: enough that the build outlasts the questions by far on any machine.
SIZES = {"onnx-int8": 800, "onnx": 600, "torch": 400}


def _sentences(n: int) -> list[str]:
    """``n`` distinct sentences of varied lengths: the test data's SQuAD paragraphs and the article, reworded."""
    texts = [default_document().text]
    texts += [json.loads(line)["text"] for line in (DATA / "squad_docs.jsonl").read_text(encoding="utf-8").splitlines()]
    base = list(dict.fromkeys(t[a:b] for t in texts for a, b in split(t)))
    frames = ["In report {k}, {l}", "{s} (source {k})", "According to note {k}, {l}", "Item {k}: {s}"]
    out = base[:n]
    for k in range(n - len(out)):  # the sentences again, each time in a numbered frame
        s = base[k % len(base)]
        out.append(frames[k % len(frames)].format(s=s, l=s[:1].lower() + s[1:], k=k))
    assert len(set(out[:n])) == n
    return out[:n]


def _as_before(encoder: Any, texts: list[str]) -> np.ndarray:
    """The texts encoded as the encoder did before slicing: one uninterrupted pass, nothing else running."""
    if isinstance(encoder, Encoder):  # sentence-transformers' own encode in one call (the hook stays idle)
        return np.asarray(encoder._model.encode_document(
            texts, batch_size=encoder.batch_size, convert_to_numpy=True, normalize_embeddings=True
        ), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
    if encoder.precision == "int8":  # each text alone on a single-threaded session
        session = _ort_session(encoder.onnx_path, 1)
        for i in order:
            out[i] = encoder._run(session, [texts[i].strip()])[0]
    else:  # longest-first batches on the all-cores session
        session = _ort_session(encoder.onnx_path, 0)
        for start in range(0, len(order), encoder.batch_size):
            batch = order[start : start + encoder.batch_size]
            out[batch] = encoder._run(session, [texts[i].strip() for i in batch])
    return out


@dataclass
class _Run:
    encoder: Any
    texts: list[str]
    quiet: np.ndarray  # the document encoded with nothing else running
    busy: np.ndarray  # the same document encoded while questions were asked
    before: np.ndarray  # the same texts encoded the old way
    answered_during_build: list[bool]  # per question: the build was still running when it returned
    questions_alone: np.ndarray
    questions_during_build: np.ndarray


def _started_spy(encoder: Any, mp: pytest.MonkeyPatch) -> tuple[threading.Event, Callable[[], None]]:
    """An event set when the model first runs on a thread other than this one (the build's), and its undo."""
    started = threading.Event()
    asker = threading.current_thread()

    def note() -> None:
        if threading.current_thread() is not asker:
            started.set()

    if isinstance(encoder, OnnxEncoder):
        real = encoder._run

        def spy(session: Any, batch: list[str]) -> np.ndarray:
            note()
            return real(session, batch)

        mp.setattr(encoder, "_run", spy)
        return started, mp.undo
    # sentence-transformers calls the model once per batch
    return started, encoder._model.register_forward_pre_hook(lambda module, args: note()).remove


def _run(backend: str) -> _Run:
    encoder = get_encoder(Settings(backend=backend))
    texts = _sentences(SIZES[backend])
    questions_alone = np.vstack([encoder.encode_queries([q]) for q in QUESTIONS])
    quiet = encoder.encode_documents(texts)

    with pytest.MonkeyPatch.context() as mp:
        started, undo = _started_spy(encoder, mp)
        done = threading.Event()
        result: dict[str, Any] = {}

        def build() -> None:
            try:
                result["vectors"] = encoder.encode_documents(texts)
            finally:
                done.set()

        builder = threading.Thread(target=build, name="test-build")
        builder.start()
        try:
            assert started.wait(600), "the build never started"
            during, answered = [], []
            for question in QUESTIONS:
                during.append(encoder.encode_queries([question])[0])
                answered.append(not done.is_set())  # returned while the build was still running
        finally:
            builder.join(1200)
            undo()
    assert not builder.is_alive() and "vectors" in result
    return _Run(encoder, texts, quiet, result["vectors"], _as_before(encoder, texts), answered,
                questions_alone, np.vstack(during))


@pytest.fixture(scope="module", params=["onnx-int8", "onnx", "torch"])
def run(request: pytest.FixtureRequest) -> _Run:
    return _run(request.param)


def test_questions_return_while_a_document_is_still_being_embedded(run: _Run) -> None:
    assert run.answered_during_build == [True] * len(QUESTIONS)


def test_a_document_gets_the_same_vectors_with_or_without_questions_running(run: _Run) -> None:
    assert np.array_equal(run.busy, run.quiet)


def test_slicing_leaves_every_document_vector_as_it_was_before(run: _Run) -> None:
    assert np.array_equal(run.quiet, run.before)


def test_a_question_gets_the_same_vector_during_a_build_as_alone(run: _Run) -> None:
    assert np.array_equal(run.questions_during_build, run.questions_alone)


def test_int8_text_gets_one_vector_as_question_as_few_texts_and_in_a_build() -> None:
    encoder = get_encoder(Settings(backend="onnx-int8"))
    texts = _sentences(40)
    build = encoder.encode_documents(texts)  # bulk: slices on the build's own sessions
    few = encoder.encode_documents(texts[:5])  # a few texts: the questions' session
    asked = np.vstack([encoder.encode_queries([t]) for t in texts[:5]])
    assert np.array_equal(few, build[:5]) and np.array_equal(asked, build[:5])


# ------------------------------------------------------------------------------------ the scheduling tools


def _until(condition: Any) -> None:
    """Wait (briefly polling) until ``condition()`` holds: ordering, not timing, is what the tests check."""
    import time

    for _ in range(10_000):
        if condition():
            return
        time.sleep(0.001)
    raise AssertionError("condition never became true")


def test_waiting_question_takes_the_gate_before_the_bulk_works_next_slice() -> None:
    gate = PriorityGate()
    order: list[str] = []

    def ask() -> None:
        with gate.question():
            order.append("question")

    with gate.bulk():
        order.append("slice 1")
        asker = threading.Thread(target=ask)
        asker.start()
        _until(lambda: gate._arrived == 1)
        order.append("slice 1 ends")
        gate.yield_to_questions()
        order.append("slice 2")
    asker.join()
    assert order == ["slice 1", "slice 1 ends", "question", "slice 2"]


def test_bulk_work_waits_for_questions_already_waiting_only() -> None:
    gate = PriorityGate()
    with gate.bulk():
        gate.yield_to_questions()  # nobody waiting: keeps the gate, no deadlock
    with gate.question():
        pass
    with gate.bulk():  # served questions do not hold bulk work back
        pass


def test_traffic_counts_a_question_in_flight_for_the_quiet_period_after_it() -> None:
    traffic = QuestionTraffic(quiet_s=3600)
    assert not traffic.busy()
    with traffic.question():
        assert traffic.busy()
    assert traffic.busy()  # within the quiet period after the question
    stopped = threading.Event()
    stopped.set()
    traffic.pause_while_busy(stop=stopped.is_set)  # a paused helper gives up when told to
    assert not QuestionTraffic(quiet_s=0).busy()
