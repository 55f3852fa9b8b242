"""The worker threads that overlap one question's steps (and check an index's files side by side)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_WORKERS: ThreadPoolExecutor | None = None
_WORKERS_LOCK = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    """Threads that overlap one question's steps: ONNX Runtime, FAISS and numpy release the GIL while they work."""
    global _WORKERS
    with _WORKERS_LOCK:
        if _WORKERS is None:
            _WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qa-search")
        return _WORKERS
