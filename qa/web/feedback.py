"""The feedback log: each thumbs up/down on an answer appends one JSON line to ``feedback.jsonl``.

The log holds the questions people asked, so it is created owner-only (0600, in a 0700 folder), like the index.
The record format is in the README ("Feedback log").
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import qa

from .render import Turn

__all__ = ["FEEDBACK_FILE", "feedback_path", "record_feedback", "verdict_of"]

FEEDBACK_FILE = "feedback.jsonl"
_lock = threading.Lock()


def feedback_path(settings: qa.Settings) -> Path:
    """Where the app logs feedback: ``feedback.jsonl`` in ``feedback_dir`` (default: ``<index root>/feedback``).

    Example:
        >>> from pathlib import Path
        >>> feedback_path(qa.Settings(feedback_dir=Path("/srv/qa/fb"))).as_posix()
        '/srv/qa/fb/feedback.jsonl'
    """
    folder = settings.feedback_dir if settings.feedback_dir is not None else settings.index_root / "feedback"
    return Path(folder) / FEEDBACK_FILE


def verdict_of(liked: Any) -> str:
    """The logged verdict for a Like event's ``liked``: True and False are the thumbs; a second click on the same
    thumb withdraws it (the browser then sends ``""``); any other option is logged as given.

    Example:
        >>> [verdict_of(v) for v in (True, False, "", "Off topic")]
        ['up', 'down', 'withdrawn', 'Off topic']
    """
    return "up" if liked is True else "down" if liked is False else str(liked) if liked else "withdrawn"


def record_feedback(path: Path, turn: Turn, verdict: str, index: qa.Index) -> None:
    """Append one record for ``turn`` (question, query, answer, citations, active index) to the log at ``path``.

    Safe to call from several threads at once: records are whole lines, never interleaved.
    """
    record = {
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "verdict": verdict,
        "question": turn.reading.question,
        "query": turn.reading.query,
        "answer": turn.answer.text,
        "found": turn.answer.found,
        "citations": [p.to_dict() for p in turn.answer.citations],
        "index": str(index.path) if index.path is not None else None,
    }
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _lock:
        # Owner-only, like the index: the log holds the questions people asked.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(line)
