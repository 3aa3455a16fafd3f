"""The opened state of a search: what every part of the engine works on.

A ``RunContext`` exists only once the store is open, the lineage repo is there and the
run row is written, so nothing in the engine has to ask whether the search is open.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from alma_tui.domains.base import Domain
from alma_tui.engine.config import SearchConfig
from alma_tui.engine.errors import SearchError
from alma_tui.lineage import Lineage
from alma_tui.sanitize import sanitize
from alma_tui.store.db import Store
from alma_tui.store.models import LLMCall, Run, utcnow


class Reporter(Protocol):
    def event(self, kind: str, message: str, design_id: str | None, data: dict[str, Any]) -> None: ...


@dataclass
class Progress:
    """What a progress display needs, kept current by the search."""

    iteration: int = 0
    iterations: int = 0
    design_id: str | None = None
    phase: str = ""
    episodes_done: int = 0
    episodes_total: int = 0
    best_id: str | None = None
    best_score: float | None = None


class RunContext:
    """Store, lineage, run row and domain of an open search, and how it reports."""

    def __init__(
        self,
        config: SearchConfig,
        *,
        store: Store,
        lineage: Lineage,
        run_row: Run,
        domain: Domain,
        cancel: threading.Event,
        progress: Progress,
        reporter: Reporter | None,
    ) -> None:
        if run_row.id is None:
            raise SearchError("the run row was not saved")
        self.config = config
        self.store = store
        self.lineage = lineage
        self.run_id: int = run_row.id
        self.run_row = run_row  # refreshed by every status change
        self.domain = domain
        self.cancel = cancel
        self.progress = progress
        self.reporter = reporter

    def emit(
        self, kind: str, message: str = "", design_id: str | None = None, flush: bool = False, **data: Any
    ) -> None:
        message = sanitize(message)  # titles, errors and log lines come from models and designs
        self.store.emit(kind, message, run_id=self.run_id, design_id=design_id, data=data, flush=flush)
        if self.reporter is not None:
            self.reporter.event(kind, message, design_id, data)

    def record_call(self, row: dict[str, Any]) -> None:
        self.store.buffer(LLMCall(run_id=self.run_id, **row))

    def set_status(self, status: str, detail: str = "") -> None:
        self.run_row = self.store.update_run(self.run_id, status=status, status_detail=detail, heartbeat_at=utcnow())
        self.emit("run.status", f"run {status}" + (f": {detail}" if detail else ""), flush=True, status=status)

    def update_run(self, **fields: Any) -> Run:
        self.run_row = self.store.update_run(self.run_id, **fields)
        return self.run_row

    @property
    def error_log(self) -> Path:
        return Path(self.config.repo) / ".alma" / "engine-error.log"

    def log_error(self, text: str) -> None:
        """Append to <repo>/.alma/engine-error.log (best effort: the disk may be full)."""
        try:
            with open(self.error_log, "a") as fh:
                fh.write(f"--- {utcnow().isoformat()}\n{text}\n")
        except OSError:
            pass
