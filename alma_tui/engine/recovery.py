"""Recovery and commit: what makes a killed search resume without redoing finished work.

Accepted designs are committed to the lineage repo idempotently (a tag per design), and a
commit a crash missed is made on resume. An evaluation that took the engine down too often
rejects its design, so a poison design cannot stop the search for good.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from alma_tui.archive_rows import best_id
from alma_tui.engine.context import RunContext
from alma_tui.engine.reconcile import commit_info
from alma_tui.store.models import Design

# An evaluation that was started this many times without finishing (the engine died each
# time: a crash, the OOM killer, a kill -9) is not started again: the design is rejected so
# the search goes on. ALMA_TUI_CRASH_LIMIT overrides it for operators (and the kill
# harness) that kill engines on purpose.
CRASH_LIMIT = 2
ENGINE_DIED = "interrupted (the engine stopped); redone on resume"

Reject = Callable[[Design, str, str], Design]


def crash_limit() -> int:
    try:
        return max(1, int(os.environ.get("ALMA_TUI_CRASH_LIMIT", CRASH_LIMIT)))
    except ValueError:
        return CRASH_LIMIT


class Committer:
    """Commits accepted designs to the lineage repo and keeps the ``best`` branch current."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._best_note = ""  # the last note about the best branch, said once

    def commit(self, d: Design) -> str:
        """Commit a design (its parents first, if a crash left one uncommitted); a merge child's
        commit has both parents' commits as its git parents, the first parent first."""
        store = self.ctx.store
        parent_commits: list[str] = []
        for pid in (d.parent_id, d.second_parent_id):
            parent = store.get_design(pid) if pid else None
            if parent is None:
                continue
            parent_commits.append(parent.commit or self.commit(parent))
        commit = self.ctx.lineage.commit_design(commit_info(d, self.ctx.run_row), parent_commits)
        store.update_design(d.id, commit=commit)
        return commit

    def update_best(self) -> str | None:
        """Move the ``best`` branch to the one best design (see ``best_id``); returns its id."""
        ctx = self.ctx
        designs = ctx.store.designs()
        bid = best_id(designs)
        best = next((d for d in designs if d.id == bid), None)
        if best is None:
            return None
        ctx.progress.best_id, ctx.progress.best_score = best.id, best.score
        if best.commit:
            try:
                update = ctx.lineage.set_best(best.commit)
            except Exception as exc:  # a user's checkout in the way must not stop the search
                ctx.emit("error", f"could not move the best branch: {exc}")
                return best.id
            how = "commit or stash them, then `git checkout best`" if update.dirty else "`git checkout best`"
            note = "" if update.worktree else f"{update.note}, best design is {best.id} ({how} to see it)"
            if note and note != self._best_note:  # said once, not at every accept
                ctx.emit("lineage.best", note, best.id, flush=True)
            self._best_note = note
        return best.id


def recover(ctx: RunContext, committer: Committer, reject: Reject) -> None:
    """Resume after a crash or kill: finish lineage, restart interrupted evaluations."""
    died = ctx.store.fail_running_evaluations(ENGINE_DIED)
    limit = crash_limit()
    for d in ctx.store.designs():
        if d.status == "accepted" and not d.commit:
            committer.commit(d)
        elif d.status == "evaluating" and died.count(d.id) >= limit:
            # a poison design: each evaluation of it took the engine down; do not start a third
            times = "twice" if limit == 2 else f"{died.count(d.id)} times"
            reject(
                d,
                f"crashed the engine {times}",
                f"{died.count(d.id)} evaluations of {d.id} started and never finished: the engine "
                "process died during each (crash, out of memory or kill). It is not evaluated again.",
            )
        elif d.status in ("validating", "evaluating"):
            ctx.emit("design.resumed", f"{d.id} was interrupted while {d.status}; redoing", d.id)
    committer.update_best()
