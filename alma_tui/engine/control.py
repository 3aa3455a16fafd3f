"""The errors that stop a search (or pause it) rather than fail a design.

They must reach the search loop's handlers wherever they are raised: a courtesy
``except Exception`` on the way (an optional prompt example, a best-effort step) lets
them through, and one wrapped by another error (``raise X from budget_error``) is found
by following ``__cause__``.
"""

from __future__ import annotations

from alma_tui.engine.evaluator import EvaluationCancelled
from alma_tui.llm.client import BudgetExceeded, ModelError, ProviderUnavailable

# the budget is spent, the provider is down, the user stopped, a key was rejected
STOPS: tuple[type[Exception], ...] = (BudgetExceeded, ProviderUnavailable, EvaluationCancelled, ModelError)


def stop_cause(exc: BaseException) -> Exception | None:
    """The stop error ``exc`` is, or was raised from (explicitly, ``raise ... from``)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, STOPS):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__
    return None
