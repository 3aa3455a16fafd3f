"""The search as callers see it: ``Search(config, reporter)``, then ``open()``, ``run()``,
``close()``; steered through the store, cancelled through ``cancel``.

The engine itself lives in modules of its own: ``startup`` (opening a search),
``loop`` (the iteration loop and how it ends), ``pipeline`` (one design: propose,
validate and repair, evaluate, accept or reject), ``evidence`` (what the meta agent is
shown), ``steering`` (commands), ``outage`` (pausing on a provider outage),
``recovery`` (resume after a crash, commits to the lineage), ``heartbeat``,
``runlock`` (one engine per repo), ``wiring`` (model calls) and ``context`` (the
opened state they share).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from alma_tui.engine.config import SearchConfig
from alma_tui.engine.context import Progress, Reporter
from alma_tui.engine.errors import SearchError
from alma_tui.runstate import engine_running

if TYPE_CHECKING:
    from alma_tui.engine.loop import Engine
    from alma_tui.store.db import Store
    from alma_tui.store.models import Run

__all__ = ["Progress", "Reporter", "Search", "SearchError", "engine_running"]


class Search:
    def __init__(self, config: SearchConfig, reporter: Reporter | None = None) -> None:
        self.config = config
        self.reporter = reporter
        self.cancel = threading.Event()
        self.progress = Progress()
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The open engine (``open()`` first)."""
        if self._engine is None:
            raise SearchError("the search is not open")
        return self._engine

    @property
    def store(self) -> Store | None:
        """The run store once the search is open (it stays readable after ``close()``)."""
        return self._engine.ctx.store if self._engine is not None else None

    def open(self) -> Run:
        """Open (or create) the repo, take the engine lock, create or resume the run."""
        from alma_tui.engine.startup import open_engine

        if self._engine is None:
            self._engine = open_engine(self.config, self.reporter, self.cancel, self.progress)
        return self._engine.ctx.run_row

    def run(self) -> str:
        """Run until the iteration target, a stop, the budget or an error. Returns the final status."""
        return self.engine.run()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()

    def _set_status(self, status: str, detail: str = "") -> None:
        """Write a final status from outside the loop (the CLI, on an error that ended it)."""
        self.engine.ctx.set_status(status, detail)
