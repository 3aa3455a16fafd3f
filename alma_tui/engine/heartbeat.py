"""The heartbeat: every ~2 s the engine proves it is alive and flushes buffered events.

A failed beat (the database locked past its timeout, a full disk for a moment) is logged
and retried: a dead heartbeat would make a working engine look interrupted.
"""

from __future__ import annotations

import threading

from alma_tui.engine.context import RunContext
from alma_tui.store.models import utcnow

INTERVAL_S = 2.0
THREAD_NAME = "alma-heartbeat"


class Heartbeat:
    def __init__(self, ctx: RunContext, interval_s: float = INTERVAL_S) -> None:
        self.ctx = ctx
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.beat, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end; wait for it only when given a timeout."""
        self._stop.set()
        if self._thread is not None and timeout is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def beat(self) -> None:
        """The thread's loop (runs until :meth:`stop`)."""
        ctx = self.ctx
        failures = 0
        while not self._stop.is_set():
            try:
                ctx.store.update_run(ctx.run_id, heartbeat_at=utcnow())
                ctx.store.flush_events()
                failures = 0
            except Exception as exc:
                if self._stop.is_set():
                    return  # the store is closing
                failures += 1
                if failures == 1 or failures % 30 == 0:  # first of a streak, then once a minute
                    ctx.log_error(f"heartbeat failed ({failures}x, retrying): {type(exc).__name__}: {exc}")
            self._stop.wait(self.interval_s)
