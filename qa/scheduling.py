"""How questions and bulk embedding (a document being indexed) share one encoder without questions waiting.

The web app answers questions while an upload is being indexed, from the previous index. Both need the
model: a question a single short text (a few milliseconds), an upload thousands of sentences (a minute).
When one lock covered a whole document's embedding, a question asked during a 10k-sentence upload waited for
all of it (55 s measured). Two small tools here keep questions ahead:

* :class:`QuestionTraffic` tells bulk work whether questions are being answered right now (or were a moment
  ago), so that it can step aside: the ONNX encoder then runs its document slices on one core instead of all
  of them, leaving the other to the questions (on a 2-core machine, a question otherwise competes with two
  busy encoding threads for the CPU).
* :class:`PriorityGate` is a mutex for a model that only one thread may run at a time (PyTorch under
  sentence-transformers): bulk work holds it batch by batch and, between batches, hands it to any question
  waiting, so a question waits at most one batch, never a whole document.

Neither changes what is computed: which texts go together in a batch is decided before any of this, so the
vectors are the same whether or not questions run meanwhile.

Why not simply run the build's threads at a lower OS priority (``nice``)? It was tried and measured, in one
process answering questions back to back while it indexed 2,000 new sentences (2 cores, load average 8-15):
``nice +10`` build threads left the question latency's p50 where it was but made the tail worse (max 1.2-1.4 s
against 0.36 s with one worker kept) and starved the build (240-300 s against 54-96 s). A lowered thread that
is preempted while it holds the GIL keeps the questions waiting for it (priority inversion), and a steady
stream of questions leaves it no CPU at all. Keeping one worker at normal priority bounds both: the build
always progresses at one core's pace, and the questions have the other.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["QUIET_S", "PriorityGate", "QuestionTraffic"]

#: After the last question left the encoder, how long bulk work still counts questions as "in flight". A
#: question spends most of its time after the encoder (lexical search, ranking, composing the answer, the
#: web round trip), and a user asks again soon after a reply; half a second covers both on a busy machine.
QUIET_S = 0.5


class QuestionTraffic:
    """Questions in flight through an encoder, so that bulk work can make room for them.

    Example:
        >>> traffic = QuestionTraffic(quiet_s=0.0)
        >>> with traffic.question():
        ...     traffic.busy()
        True
        >>> traffic.busy()
        False
    """

    def __init__(self, quiet_s: float = QUIET_S) -> None:
        self.quiet_s = quiet_s
        self._cond = threading.Condition()
        self._active = 0
        self._last_end = -math.inf

    @contextlib.contextmanager
    def question(self) -> Iterator[None]:
        """Mark a question (or a few) being encoded for the duration of the ``with`` block."""
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._last_end = time.monotonic()
                self._cond.notify_all()

    def _quiet_in(self) -> float:
        """Seconds until no question counts as in flight (0: none does). Call with ``_cond`` held."""
        if self._active:
            return math.inf
        return max(0.0, self._last_end + self.quiet_s - time.monotonic())

    def busy(self) -> bool:
        """Whether a question is being encoded or left the encoder less than ``quiet_s`` ago."""
        with self._cond:
            return self._quiet_in() > 0

    def pause_while_busy(self, *, stop: Callable[[], bool], poll_s: float = 0.02) -> None:
        """Block while :meth:`busy`, or until ``stop()`` is true (checked every ``poll_s`` at least).

        ``stop`` lets a paused helper give up once its share of the work has been done by others.
        """
        with self._cond:
            while not stop():
                left = self._quiet_in()
                if left <= 0:
                    return
                self._cond.wait(min(left, poll_s))

    def wait_idle(self, timeout_s: float) -> None:
        """Block while a question is inside the encoder, for at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)


class PriorityGate:
    """A mutex that a waiting question gets before bulk work's next slice.

    Questions enter with :meth:`question`; bulk work enters with :meth:`bulk` and calls :meth:`yield_to_questions`
    between slices. Bulk work gives way only to the questions already waiting when it yields (or arrives), so a
    steady stream of questions delays it by at most one round of them each slice: neither side can starve.

    Example:
        >>> gate = PriorityGate()
        >>> with gate.bulk():
        ...     gate.yield_to_questions()  # nobody waiting: returns at once, still holding the gate
        >>> with gate.question():
        ...     pass
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._arrived = 0  # questions that asked for the gate so far
        self._served = 0  # questions that have left it

    @contextlib.contextmanager
    def question(self) -> Iterator[None]:
        """Hold the gate for a question: waits only for the slice in progress, if any."""
        with self._cond:
            self._arrived += 1
            try:
                while self._held:
                    self._cond.wait()
            except BaseException:  # interrupted while waiting: it will not be served
                self._served += 1
                self._cond.notify_all()
                raise
            self._held = True
        try:
            yield
        finally:
            with self._cond:
                self._held = False
                self._served += 1
                self._cond.notify_all()

    def _take_after(self, target: int) -> None:
        """Take the gate once the first ``target`` questions are done with it. Call with ``_cond`` held."""
        while self._held or self._served < target:
            self._cond.wait()
        self._held = True

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Hold the gate for bulk work, after the questions already waiting."""
        with self._cond:
            self._take_after(self._arrived)
        try:
            yield
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()

    def yield_to_questions(self) -> None:
        """From inside :meth:`bulk`: let the questions waiting now go first, then take the gate back."""
        with self._cond:
            if self._served >= self._arrived:
                return
            self._held = False
            self._cond.notify_all()
            self._take_after(self._arrived)
