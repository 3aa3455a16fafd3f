"""What the meta agent is shown about a parent: its code, scores, sampled deployment
episodes, the hints of the user, and one real episode of the domain as an example."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from alma_tui.design_api import Episode as ApiEpisode
from alma_tui.design_api import Query
from alma_tui.engine.archive import compare_tasks
from alma_tui.engine.context import RunContext
from alma_tui.engine.control import STOPS
from alma_tui.engine.evaluator import synthetic_episodes
from alma_tui.engine.meta_agent import Analysis, ParentInfo
from alma_tui.engine.steering import Steering
from alma_tui.engine.wiring import ModelCalls
from alma_tui.store.models import Design


class Evidence:
    def __init__(self, ctx: RunContext, calls: ModelCalls, steering: Steering) -> None:
        self.ctx = ctx
        self.calls = calls
        self.steering = steering
        self._vdata: tuple[list[ApiEpisode], list[Query]] | None = None
        self._vlock = threading.Lock()

    def validation_data(self, design_id: str | None = None) -> tuple[list[ApiEpisode], list[Query]]:
        """A few real episodes of the domain (made once per engine, by the first design that needs
        them, which their calls are charged to), to validate designs on."""
        with self._vlock:  # concurrent children wait for the one making them
            if self._vdata is None:
                calls = self.calls
                self._vdata = synthetic_episodes(
                    self.ctx.domain,
                    lambda m, s: calls.agent_complete(m, s, design_id=design_id),
                    n=2,
                    seed=self.ctx.config.seed,
                    history=self.ctx.config.eval.agent_history,
                )
            return self._vdata

    def parent_info(self, parent: Design, iteration: int | None = None) -> ParentInfo:
        """What the meta agent sees about ``parent`` for a child of ``iteration``: only designs of
        earlier iterations are offered as ANOTHER ARCHIVED DESIGN, so a sibling that happens to
        finish first (children run concurrently) never changes what a child is written from,
        and a resumed search writes the same child."""
        ctx = self.ctx
        episodes = self.sample_episodes(parent.id)
        prev_suggestion = None
        prev_improved = None
        if parent.analysis_json:
            try:
                data = json.loads(parent.analysis_json)
                changes = data.get("suggested_changes") or []
                prev_suggestion = "; ".join(c.get("what", "") for c in changes[:3]) or None
                if prev_suggestion is None and data.get("unstructured"):  # a prose analysis: its opening
                    prev_suggestion = Analysis.model_validate(data).top_suggestion() or None
            except (ValueError, AttributeError):
                prev_suggestion = None
            gp = ctx.store.get_design(parent.parent_id) if parent.parent_id else None
            if gp is not None and gp.score is not None and parent.score is not None:
                prev_improved = parent.score > gp.score
        return ParentInfo(
            design_id=parent.id,
            title=parent.title,
            code=parent.code,
            score=parent.score,
            run_scores=json.loads(parent.run_scores_json or "[]"),
            no_memory_score=ctx.run_row.no_memory_score,
            episodes=episodes,
            errors=[parent.error] if parent.error else [],
            previous_suggestion=prev_suggestion,
            previous_improved=prev_improved,
            hints=list(self.steering.hints),
            domain_name=ctx.domain.name,
            domain_description=getattr(ctx.domain, "instructions", ""),
            example_episode=self.example_episode(),
            other_design=self.other_design(parent, iteration),
        )

    def merge_info(self, parent: Design, second: Design, iteration: int | None = None) -> ParentInfo:
        """What a merge child's writer sees: the first parent as usual, plus the second parent's
        code and evaluation and, per search task, both parents' mean rewards and who is better."""
        info = self.parent_info(parent, iteration)
        other = self.parent_info(second, iteration)
        other.other_design = None
        table = self.ctx.store.task_table([parent.id, second.id])
        diff = compare_tasks(table, parent.id, second.id)
        goals = {e["task_id"]: e["goal"] for e in info.episodes + other.episodes if e.get("goal")}
        for row in self.ctx.store.last_episodes(parent.id, "deployment"):
            goals.setdefault(row.task_id, row.goal)
        a, b = table.get(parent.id, {}), table.get(second.id, {})
        tasks = [
            {
                "task_id": t,
                "goal": goals.get(t, ""),
                "first": round(a[t], 3),
                "second": round(b[t], 3),
                "better": "first" if t in diff["a_better"] else "second" if t in diff["b_better"] else "tie",
            }
            for t in sorted(set(a) & set(b))
        ]
        info.other_design = None
        info.second_parent = other
        info.comparison = {
            "first": parent.id,
            "second": second.id,
            "first_score": parent.score,
            "second_score": second.score,
            "first_better": len(diff["a_better"]),
            "second_better": len(diff["b_better"]),
            "tied": len(diff["tied"]),
            "tasks": tasks,
        }
        return info

    def other_design(self, parent: Design, iteration: int | None = None) -> dict[str, Any] | None:
        """The best accepted design of an iteration before ``iteration`` that is neither the parent
        nor its ancestor, so the writer can combine mechanisms of two lines of the archive (None
        when there is none)."""
        ancestors = {parent.id}
        by_id = {d.id: d for d in self.ctx.store.designs()}
        cur = parent
        while cur.parent_id and cur.parent_id in by_id and cur.parent_id not in ancestors:
            ancestors.add(cur.parent_id)
            cur = by_id[cur.parent_id]
        others = [
            d
            for d in by_id.values()
            if d.status == "accepted"
            and d.score is not None
            and d.id not in ancestors
            and (iteration is None or d.iteration < iteration)
        ]
        if not others:
            return None
        o = max(others, key=lambda d: (d.score or 0.0, -d.seq))
        return {"design_id": o.id, "title": o.title, "score": o.score, "code": o.code}

    def example_episode(self) -> dict[str, Any] | None:
        """A real episode and query of this domain (the validation data), trimmed for the prompt."""
        try:
            episodes, queries = self.validation_data()
        except STOPS:
            raise  # the budget, an outage or a stop: the search's business, not a missing example
        except Exception:  # the example is a courtesy; the prompt works without it
            return None
        if not episodes or not queries:
            return None
        ep = episodes[0].to_dict()
        ep["steps"] = ep["steps"][:6] + (
            [{"...": f"{len(ep['steps']) - 6} more steps"}] if len(ep["steps"]) > 6 else []
        )
        return {"episode": ep, "query": queries[0].to_dict()}

    def sample_episodes(self, design_id: str, n: int = 8) -> list[dict[str, Any]]:
        """A sample of the parent's deployment episodes, stratified by success."""
        rows = self.ctx.store.last_episodes(design_id, "deployment")
        rng = random.Random(f"sample:{design_id}")
        fails = [r for r in rows if not r.success]
        wins = [r for r in rows if r.success]
        rng.shuffle(fails)
        rng.shuffle(wins)
        n_fail = min(len(fails), max(n - min(len(wins), n // 2), n // 2))
        picked = fails[:n_fail] + wins[: n - n_fail]
        out = []
        for r in picked:
            traj = json.loads(r.trajectory_json or "[]")
            out.append(
                {
                    "task_id": r.task_id,
                    "goal": r.goal,
                    "success": r.success,
                    "run": r.run,
                    "step_count": r.steps,
                    "memory": r.retrieved,
                    "actions": [t.get("action", "") for t in traj][-12:],
                    "error": r.error,
                }
            )
        return out
