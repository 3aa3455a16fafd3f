"""Trajectory retrieval: recall the single most similar past episode verbatim.

Port of the reference baseline. Each collected episode is stored whole (goal,
setting, every "action -> observation" step, outcome) and keyed by its task: the
goal plus the first sentence of the initial observation (the setting, e.g. the
kind of house). Before an episode the most similar stored key by embedding
cosine is found and, if the similarity passes 0.3, that trajectory is returned.

Like the reference it keeps every step (an earlier version cut episodes at 40 steps,
which on TextWorld's 80-step quests dropped the step that finds the goal object); only
each observation is shortened, to 300 characters.

Fixes over the reference: when nothing passes the threshold it returns "" instead
of crashing, and each key is embedded once at update time (queries are cached)
instead of re-embedding every key on every call.
"""

import math

from alma_tui.design_api import Episode, MemoryDesign, Query

THRESHOLD = 0.3
MAX_OBS_CHARS = 300


def _setting(observation: str) -> str:
    """First sentence of the initial observation: where the task takes place."""
    first = observation.strip().split("\n")[0]
    return first.split(". ")[0][:200]


def _unit(vec):
    """Normalise once, so each comparison is a plain dot product."""
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm > 0 else [0.0 for _ in vec]


class TrajectoryRetrieval(MemoryDesign):
    """Stores whole episodes; retrieves the nearest one by task similarity."""

    def __init__(self, services):
        super().__init__(services)
        self.records = []  # one dict per stored episode
        self.vectors = []  # embedding of each record's key, same order
        self._query_cache = {}

    def _key(self, goal: str, observation: str) -> str:
        return f"{goal} | {_setting(observation)}"

    def update(self, episode: Episode) -> None:
        lines = []
        for step in episode.steps:
            obs = " ".join(step.observation.split())[:MAX_OBS_CHARS]
            lines.append(f"{step.action} -> {obs}")
        outcome = "success" if episode.success else "failure"
        text = "\n".join(
            [
                f"Task: {episode.goal}",
                f"Setting: {_setting(episode.initial_observation)}",
                f"Outcome: {outcome} (score {episode.score:g}) in {episode.step_count} steps",
                "Trajectory:",
                *lines,
            ]
        )
        key = self._key(episode.goal, episode.initial_observation)
        self.vectors.append(_unit(self.services.embed([key])[0]))
        self.records.append(
            {
                "task_id": episode.task_id,
                "goal": episode.goal,
                "key": key,
                "success": bool(episode.success),
                "steps": episode.step_count,
                "text": text,
            }
        )

    def retrieve(self, query: Query) -> str:
        if not self.records:
            return ""
        key = self._key(query.goal, query.observation)
        vec = self._query_cache.get(key)
        if vec is None:
            vec = _unit(self.services.embed([key])[0])
            self._query_cache[key] = vec
        best, best_sim = None, THRESHOLD
        for rec, v in zip(self.records, self.vectors):
            sim = sum(x * y for x, y in zip(vec, v))
            if sim > best_sim:
                best, best_sim = rec, sim
        if best is None:
            return ""
        return f"Most similar past episode (similarity {best_sim:.2f}):\n{best['text']}"

    def snapshot(self) -> dict:
        return {
            "episodes": len(self.records),
            "items": [
                {
                    "task_id": r["task_id"],
                    "goal": r["goal"],
                    "success": r["success"],
                    "steps": r["steps"],
                }
                for r in self.records
            ],
        }
