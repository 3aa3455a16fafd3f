"""The archive as plain rows, one dict per design, shared by the CLI and the headless reporter.

`alma-tui designs --json` prints them; `alma-tui designs` and the headless run summary
render them with :func:`alma_tui.headless.archive_table`. A module of its own (stdlib
only) so that neither the CLI nor the reporter has to import the other.
"""

from __future__ import annotations

from typing import Any

from alma_tui.sanitize import sanitize

__all__ = ["best_id", "design_rows"]


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


def _age(design_id: str) -> int:
    digits = "".join(ch for ch in str(design_id) if ch.isdigit())
    return int(digits) if digits else 0


def best_id(items: Any) -> str | None:
    """The one best design: highest score among accepted ones; a tie goes to the smaller
    standard error, then to the older design. Rows (dicts) or store/TUI objects alike, so
    the CLI, the run summary, the TUI and the lineage's ``best`` branch all mark the same one."""
    accepted = [d for d in items if _get(d, "status") == "accepted" and _get(d, "score") is not None]
    if not accepted:
        return None
    best = min(accepted, key=lambda d: (-_get(d, "score"), _get(d, "score_se") or 0.0, _age(_get(d, "id"))))
    return str(_get(best, "id"))


def design_rows(store: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": d.id,
            "parent": d.parent_id,  # the first parent (kept for scripts written before merges)
            "parents": [p for p in (d.parent_id, getattr(d, "second_parent_id", None)) if p],
            "title": sanitize(d.title, newlines=False),
            "score": d.score,
            "score_se": d.score_se,
            "test_score": d.test_score,  # held-out (test split), measured when it became the best
            "test_score_se": d.test_score_se,
            "duplicate_of": d.duplicate_of,
            "status": d.status,
            "commit": d.commit,
            "iteration": d.iteration,
            "origin": d.origin,
            "visits": d.visits,
            "pinned": d.pinned,
            "vetoed": d.vetoed,
            "repairs": d.repairs,
            "error": sanitize(d.error) if d.error else d.error,
        }
        for d in store.designs()
    ]
