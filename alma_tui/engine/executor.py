"""Where evaluations run: the executor interface of the engine.

``local`` is the engine's own path: the evaluator runs in this process (its episodes in
threads, the design in a sandbox child). ``ray`` (``--executor ray``,
``alma_tui/engine/ray_executor.py``) runs each child's evaluation, and within it its episode
batches, as Ray tasks; the engine, the store, the lineage, the budget and the TUI stay here.
Both run the same evaluator, sandbox and domain code. Ray is imported only when it is chosen,
so a run without ``--executor ray`` never loads it (tests/test_ray_executor.py checks).
"""

from __future__ import annotations

import threading
from typing import Protocol

from alma_tui.engine.context import RunContext
from alma_tui.engine.errors import SearchError
from alma_tui.engine.evaluator import EvalResult, EvalSettings, Evaluator, Hooks
from alma_tui.sandbox import SandboxLimits

__all__ = ["Evaluates", "Executor", "LocalExecutor", "open_executor"]


class Evaluates(Protocol):
    """What the pipeline and the held-out step call: the evaluator's ``evaluate``."""

    def evaluate(
        self, code: str, settings: EvalSettings, hooks: Hooks | None = None, cancel: threading.Event | None = None
    ) -> EvalResult: ...


class Executor(Protocol):
    name: str

    def bind(self, evaluator: Evaluator) -> Evaluates:
        """The evaluations of ``evaluator`` (this process's) as this executor runs them."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Today's path: evaluations run in the engine process."""

    name = "local"

    def bind(self, evaluator: Evaluator) -> Evaluates:
        return evaluator

    def close(self) -> None:
        pass


def open_executor(ctx: RunContext, limits: SandboxLimits) -> Executor:
    """The executor the settings ask for, started (a Ray one is connected and its nodes probed);
    a Ray that cannot be used is one ``SearchError`` line."""
    if ctx.config.executor == "ray":
        try:
            from alma_tui.engine.ray_executor import RayExecutor  # the only door to Ray
        except ImportError as exc:
            raise SearchError(
                f'--executor ray needs Ray, which is not installed here ({exc}): pip install "alma-tui[ray]"'
            ) from exc
        return RayExecutor.open(ctx, limits)
    return LocalExecutor()
