"""Cancel by signal: a flag that SIGINT and SIGTERM set, and the worker checks.

The command line and a farm's Generate task pass a :class:`CancelFlag` as the worker's
``cancel`` callable (:func:`~shotfill.worker.run.run_job` checks it at every step and frame
write), so a cancel stops at the next frame with every written frame whole.
"""
from __future__ import annotations

import signal
import threading


class CancelFlag:
    """Set by SIGINT/SIGTERM; the pipeline checks it at every step and frame write."""

    def __init__(self):
        self._event = threading.Event()

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self, *_):
        if self._event.is_set():        # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._event.set()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self.set)
            signal.signal(signal.SIGTERM, self.set)
