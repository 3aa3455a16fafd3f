"""The archive as plain rows, one dict per design, shared by the CLI and the headless reporter.

`alma-tui designs --json` prints them; `alma-tui designs` and the headless run summary
render them with :func:`alma_tui.headless.archive_table`. A module of its own (stdlib
only) so that neither the CLI nor the reporter has to import the other.
"""

from __future__ import annotations

from typing import Any

from alma_tui.sanitize import sanitize

__all__ = ["design_rows"]


def design_rows(store: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": d.id,
            "parent": d.parent_id,
            "title": sanitize(d.title, newlines=False),
            "score": d.score,
            "score_se": d.score_se,
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
