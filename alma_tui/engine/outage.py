"""The outage policy: a provider that stays unavailable pauses the search, not fails it.

The pause lasts a backoff (``outage_wait_s``, doubled for each outage within 30 minutes of
the last, capped at 10 minutes) or until `alma-tui resume`; designs resume where they were.
"""

from __future__ import annotations

import time

from alma_tui.engine.context import RunContext
from alma_tui.llm.client import LLMClient
from alma_tui.sanitize import one_line

MAX_WAIT_S = 600.0
STREAK_WINDOW_S = 1800.0


class OutagePolicy:
    def __init__(self, ctx: RunContext, llm: LLMClient) -> None:
        self.ctx = ctx
        self.llm = llm
        self.outages = 0  # in the current streak
        self.last_outage = 0.0  # time.monotonic() of the last one

    def next_wait(self) -> float:
        """Count an outage and return how long to wait before trying again."""
        now = time.monotonic()
        self.outages = 1 if now - self.last_outage > STREAK_WINDOW_S else self.outages + 1
        self.last_outage = now
        return min(MAX_WAIT_S, self.ctx.config.outage_wait_s * 2.0 ** (self.outages - 1))

    def wait_out(self, detail: str) -> bool:
        """Pause until the backoff passes or `alma-tui resume`; False on a stop or Ctrl-C."""
        ctx = self.ctx
        wait = self.next_wait()
        ctx.set_status(
            "paused",
            f"provider unavailable: {one_line(detail, 300)}; retrying in {wait:.0f}s (or on `alma-tui resume`)",
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for cmd in ctx.store.pending_commands():
                if cmd.kind in ("resume", "stop"):
                    ctx.store.mark_applied([cmd.id])
                    if cmd.kind == "stop":
                        return False
                    deadline = 0.0
            if ctx.cancel.wait(0.5):
                return False
        self.llm.clear_halt()
        ctx.set_status("running", "retrying after the provider outage")
        return True
