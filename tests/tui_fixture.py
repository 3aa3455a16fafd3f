"""A small, realistic, deterministic archive for TUI tests, snapshots and screenshots.

``make_fixture_repo(path)`` fills ``<path>/.alma/alma.db`` (and a git lineage in
``path`` itself) with three seed designs and five meta designs: accepted ones with
evaluations and episodes, a rejected one with its error, one still evaluating.
Every timestamp is fixed; pass ``FIXED_NOW`` as the app's clock so the heartbeat
is fresh in snapshots.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

T0 = datetime(2025, 1, 15, 9, 0, 0, tzinfo=UTC)
FIXED_NOW = T0 + timedelta(minutes=42, seconds=3)

NO_MEMORY = '''"""No memory: the agent acts from the goal and the observation alone."""

from alma_tui.design_api import Episode, MemoryDesign, Query


class NoMemory(MemoryDesign):
    def update(self, episode: Episode) -> None:
        pass

    def retrieve(self, query: Query) -> str:
        return ""

    def snapshot(self) -> dict:
        return {}
'''

TRAJ = '''"""Trajectory retrieval: keep successful trajectories, return the most similar ones."""

from alma_tui.design_api import Episode, MemoryDesign, Query


class TrajectoryRetrieval(MemoryDesign):
    def __init__(self, services):
        super().__init__(services)
        self.trajectories: list[dict] = []

    def update(self, episode: Episode) -> None:
        if not episode.success:
            return
        actions = [s.action for s in episode.steps]
        self.trajectories.append({"goal": episode.goal, "actions": actions})

    def retrieve(self, query: Query) -> str:
        words = set(query.goal.lower().split())
        scored = []
        for t in self.trajectories:
            overlap = len(words & set(t["goal"].lower().split()))
            scored.append((overlap, t))
        scored.sort(key=lambda x: -x[0])
        lines = []
        for _, t in scored[:2]:
            lines.append(f"Goal: {t['goal']}")
            lines.append("Actions: " + " -> ".join(t["actions"]))
        return "\\n".join(lines)

    def snapshot(self) -> dict:
        return {"trajectories": self.trajectories[-20:]}
'''

BANK = '''"""Reasoning bank: distil each episode into a short, reusable strategy."""

from alma_tui.design_api import Episode, MemoryDesign, Query


class ReasoningBank(MemoryDesign):
    def __init__(self, services):
        super().__init__(services)
        self.items: list[dict] = []

    def update(self, episode: Episode) -> None:
        verdict = "worked" if episode.success else "failed"
        summary = self.services.llm(
            f"In one sentence, what strategy {verdict} for: {episode.goal}?"
        )
        self.items.append({"goal": episode.goal, "lesson": summary, "ok": episode.success})

    def retrieve(self, query: Query) -> str:
        if not self.items:
            return ""
        vecs = self.services.embed([query.goal] + [i["goal"] for i in self.items])
        q = vecs[0]
        sims = [sum(a * b for a, b in zip(q, v)) for v in vecs[1:]]
        best = sorted(range(len(sims)), key=lambda i: -sims[i])[:3]
        return "\\n".join(f"- {self.items[i]['lesson']}" for i in best)

    def snapshot(self) -> dict:
        return {"items": self.items}
'''

KEYWORD = (
    TRAJ.replace(
        '"""Trajectory retrieval: keep successful trajectories, return the most similar ones."""',
        '"""Trajectory retrieval with a goal-keyword index and failure notes."""',
    )
    .replace(
        """        self.trajectories: list[dict] = []
""",
        """        self.trajectories: list[dict] = []
        self.index: dict[str, list[int]] = {}
        self.failures: list[str] = []
""",
    )
    .replace(
        """        if not episode.success:
            return
        actions = [s.action for s in episode.steps]
        self.trajectories.append({"goal": episode.goal, "actions": actions})
""",
        """        if not episode.success:
            last = episode.steps[-1].action if episode.steps else "nothing"
            self.failures.append(f"{episode.goal}: stopped after '{last}'")
            return
        actions = [s.action for s in episode.steps]
        self.trajectories.append({"goal": episode.goal, "actions": actions})
        for word in set(episode.goal.lower().split()):
            self.index.setdefault(word, []).append(len(self.trajectories) - 1)
""",
    )
    .replace(
        """        words = set(query.goal.lower().split())
        scored = []
        for t in self.trajectories:
            overlap = len(words & set(t["goal"].lower().split()))
            scored.append((overlap, t))
        scored.sort(key=lambda x: -x[0])
        lines = []
        for _, t in scored[:2]:
""",
        """        votes: dict[int, int] = {}
        for word in set(query.goal.lower().split()):
            for i in self.index.get(word, []):
                votes[i] = votes.get(i, 0) + 1
        ranked = sorted(votes, key=lambda i: -votes[i])[:3]
        lines = []
        for t in (self.trajectories[i] for i in ranked):
""",
    )
    .replace(
        """        return "\\n".join(lines)
""",
        """        if self.failures:
            lines.append("Avoid: " + "; ".join(self.failures[-2:]))
        return "\\n".join(lines)
""",
    )
    .replace(
        """        return {"trajectories": self.trajectories[-20:]}""",
        """        return {"trajectories": self.trajectories[-20:], "failures": self.failures[-10:]}""",
    )
)

PRIORS = (
    KEYWORD.replace(
        '"""Trajectory retrieval with a goal-keyword index and failure notes."""',
        '"""Location priors per object type, learned from where things were found."""',
    )
    .replace(
        """        self.failures: list[str] = []
""",
        """        self.failures: list[str] = []
        self.priors: dict[str, dict[str, int]] = {}
""",
    )
    .replace(
        """        actions = [s.action for s in episode.steps]
        self.trajectories.append""",
        """        actions = [s.action for s in episode.steps]
        for step in episode.steps:
            if step.action.startswith("take "):
                obj, _, place = step.action[5:].partition(" from ")
                counts = self.priors.setdefault(obj.rstrip("0123456789 "), {})
                counts[place] = counts.get(place, 0) + 1
        self.trajectories.append""",
    )
    .replace(
        """        lines = []
        for t in (self.trajectories[i] for i in ranked):""",
        """        lines = []
        for obj, places in self.priors.items():
            if obj in query.goal:
                top = sorted(places, key=lambda p: -places[p])[:2]
                lines.append(f"{obj} is usually at: {', '.join(top)}")
        for t in (self.trajectories[i] for i in ranked[:2]):""",
    )
    .replace(
        """"failures": self.failures[-10:]}""",
        """"failures": self.failures[-10:],
                "priors": self.priors}""",
    )
)

CHEATSHEET = KEYWORD.replace(
    '"""Trajectory retrieval with a goal-keyword index and failure notes."""',
    '"""A running cheatsheet that summarizes failures with the LLM."""',
).replace(
    """            self.failures.append(f"{episode.goal}: stopped after '{last}'")
""",
    """            note = self.services.llm(
                f"The agent failed '{episode.goal}' after '{last}'. One rule to avoid this:"
            )
            self.failures.append(note.strip())
""",
)

BROKEN = BANK.replace(
    '"""Reasoning bank: distil each episode into a short, reusable strategy."""',
    '"""Reasoning bank keyed by task family."""',
).replace(
    """        vecs = self.services.embed([query.goal] + [i["goal"] for i in self.items])""",
    """        family = query.task.split("-")[0]
        pool = [i for i in self.items if i["goal"].startswith(family)]
        vecs = self.services.embed([query.goal] + [i["goal"] for i in pool])""",
)

HINTED = PRIORS.replace(
    '"""Location priors per object type, learned from where things were found."""',
    '"""Location priors with recency decay and a per-room fallback."""',
).replace(
    """                counts[place] = counts.get(place, 0) + 1""",
    """                for p in counts:
                    counts[p] = counts[p] * 0.9
                counts[place] = counts.get(place, 0) + 1""",
)

TASKS = [
    ("pick-apple-3", "put a clean apple in the fridge"),
    ("pick-mug-7", "put a hot mug on the coffeetable"),
    ("find-key-2", "find the keychain and put it in the drawer"),
    ("clean-plate-5", "clean a plate and put it in the cabinet"),
    ("cool-tomato-1", "cool a tomato and put it on the countertop"),
    ("pick-book-4", "put a book on the sidetable"),
]

ANALYSIS_D006 = {
    "lessons_from_previous": (
        "The keyword index (d004) fixed retrieval for goals that share object names, but the agent "
        "still spends most steps searching receptacles in the wrong order. Successful trajectories "
        "show that objects have strong location regularities (apples in the fridge or on the "
        "countertop, keys in drawers)."
    ),
    "trajectory_assessments": [
        {
            "task_id": "pick-apple-3",
            "memory_label": "useful",
            "how_it_could_help": "Retrieved trajectory opened fridge 1 first, saving 6 steps.",
        },
        {
            "task_id": "find-key-2",
            "memory_label": "potentially_useful",
            "how_it_could_help": "Goal words matched but the trajectory was for a different room.",
        },
        {
            "task_id": "cool-tomato-1",
            "memory_label": "irrelevant",
            "how_it_could_help": "Only matched on 'put'; a type-level prior would help.",
        },
    ],
    "content_quality_issues": [
        "Full action sequences are long and mostly navigation noise.",
        "Failure notes repeat the same goal several times.",
    ],
    "structure_issues": ["No aggregation across episodes: each trajectory is stored separately."],
    "suggested_changes": [
        {
            "priority": 1,
            "what": "Count where each object type was taken from and surface the top 2 places",
            "why": "Search order dominates step count in household tasks.",
        },
        {
            "priority": 2,
            "what": "Keep at most two full trajectories in the retrieved text",
            "why": "Shorter context; the agent follows the first one anyway.",
        },
        {"priority": 3, "what": "Deduplicate failure notes by goal", "why": "Less noise."},
    ],
    "title_hint": "Location priors per object type",
}


def _analysis_for(title: str) -> dict:
    return {
        "lessons_from_previous": f"The parent's retrieval helped on some tasks; '{title}' targets the failures.",
        "trajectory_assessments": [
            {
                "task_id": "pick-mug-7",
                "memory_label": "potentially_useful",
                "how_it_could_help": "Heating steps were retrieved but in the wrong order.",
            },
        ],
        "content_quality_issues": ["Retrieved text is long."],
        "structure_issues": [],
        "suggested_changes": [{"priority": 1, "what": title, "why": "Most failures share this cause."}],
        "title_hint": title,
    }


def make_fixture_repo(path: Path, *, git: bool = True, run_status: str = "running") -> Path:
    """Create the fixture archive in ``path`` (created if missing) and return ``path``."""
    from alma_tui.store import Store
    from alma_tui.store.models import Design, Episode, Evaluation, Event, LLMCall, Run

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    store = Store(path)
    run = Run(
        domain="household",
        meta_model="offline/meta",
        agent_model="offline/agent",
        selection="open-ended",
        seed=0,
        iterations_target=10,
        iterations_done=3,
        status=run_status,
        no_memory_score=0.312,
        pid=os.getpid(),  # a live process: the fixture's engine counts as running
        created_at=T0,
        heartbeat_at=FIXED_NOW - timedelta(seconds=1),
    )
    store.add(run)
    assert run.id is not None
    # id, parent, iteration, origin, title, code, status, score, se, visits, pinned, vetoed
    specs = [
        (
            "d001",
            None,
            0,
            "builtin",
            "no memory",
            NO_MEMORY,
            "accepted",
            0.312,
            0.021,
            0,
            False,
            False,
        ),
        (
            "d002",
            None,
            0,
            "builtin",
            "trajectory retrieval",
            TRAJ,
            "accepted",
            0.481,
            0.032,
            2,
            False,
            False,
        ),
        (
            "d003",
            None,
            0,
            "builtin",
            "reasoning bank",
            BANK,
            "accepted",
            0.455,
            0.027,
            1,
            False,
            False,
        ),
        (
            "d004",
            "d002",
            1,
            "meta",
            "Trajectory retrieval with a goal-keyword index",
            KEYWORD,
            "accepted",
            0.583,
            0.025,
            2,
            False,
            False,
        ),
        (
            "d005",
            "d003",
            1,
            "meta",
            "Reasoning bank keyed by task family",
            BROKEN,
            "rejected",
            None,
            None,
            0,
            False,
            False,
        ),
        (
            "d006",
            "d004",
            2,
            "meta",
            "Location priors per object type",
            PRIORS,
            "accepted",
            0.667,
            0.019,
            1,
            True,
            False,
        ),
        (
            "d007",
            "d004",
            2,
            "meta",
            "LLM cheatsheet of failures",
            CHEATSHEET,
            "accepted",
            0.542,
            0.041,
            0,
            False,
            True,
        ),
        (
            "d008",
            "d006",
            3,
            "meta",
            "Location priors with recency decay",
            HINTED,
            "evaluating",
            None,
            None,
            0,
            False,
            False,
        ),
    ]
    t = T0
    ev_rows: list = []

    def ev(kind: str, msg: str, design: str | None, **data: object) -> None:
        nonlocal t
        t += timedelta(seconds=2)
        ev_rows.append(
            Event(
                ts=t,
                run_id=run.id,
                design_id=design,
                kind=kind,
                message=msg,
                data_json=json.dumps(data),
            )
        )

    ev(
        "run.status",
        "search started: household, offline/meta + offline/agent, 10 iterations",
        None,
        status="running",
    )
    for seq, (
        did,
        parent,
        it,
        origin,
        title,
        code,
        status,
        score,
        se,
        visits,
        pin,
        veto,
    ) in enumerate(specs, start=1):
        if origin == "meta" and (seq == 4 or specs[seq - 2][2] != it):
            ev("iteration.started", f"iteration {it}/10", None, iteration=it)
            ev(
                "selection",
                "",
                None,
                parents=[parent],
                probabilities={"d002": 0.31, "d003": 0.22, "d004": 0.27, "d006": 0.2},
            )
        analysis = ANALYSIS_D006 if did == "d006" else (_analysis_for(title) if origin == "meta" else None)
        run_scores = [] if score is None else [round(score + d, 3) for d in (-0.02, 0.01, 0.01)]
        design = Design(
            id=did,
            run_id=run.id,
            seq=seq,
            parent_id=parent,
            iteration=it,
            origin=origin,
            title=title,
            code=code,
            status=status,
            score=score,
            score_se=se,
            run_scores_json=json.dumps(run_scores),
            visits=visits,
            pinned=pin,
            vetoed=veto,
            analysis_json=json.dumps(analysis) if analysis else None,
            analysis_raw=("```json\n" + json.dumps(analysis, indent=2) + "\n```") if analysis else None,
            tokens=0 if origin == "builtin" else 1800 + 137 * seq,
            cost_usd=0.0,
            created_at=t,
            finished_at=t + timedelta(seconds=40),
            repairs=3 if status == "rejected" else (1 if did == "d007" else 0),
            error=("AttributeError: 'Query' object has no attribute 'task'" if status == "rejected" else None),
            error_detail=(
                'Traceback (most recent call last):\n  File "design.py", line 24, in retrieve\n'
                "    family = query.task.split(\"-\")[0]\nAttributeError: 'Query' object has no attribute 'task'"
                if status == "rejected"
                else None
            ),
        )
        if did == "d006":
            design.memory_json = json.dumps(
                {
                    "priors": {
                        "apple": {"fridge 1": 3, "countertop 2": 1},
                        "mug": {"cabinet 3": 2},
                        "keychain": {"drawer 1": 2, "sidetable 1": 1},
                        "tomato": {"fridge 1": 2},
                    },
                    "trajectories": [
                        {
                            "goal": g,
                            "actions": [
                                "go to fridge 1",
                                "open fridge 1",
                                "take apple 1 from fridge 1",
                            ],
                        }
                        for _, g in TASKS[:3]
                    ],
                    "failures": ["put a book on the sidetable: stopped after 'go to shelf 2'"],
                }
            )
        elif did in ("d002", "d004", "d007"):
            design.memory_json = json.dumps({"trajectories": [{"goal": TASKS[0][1], "actions": ["go to fridge 1"]}]})
        store.add(design)
        if origin == "meta":
            ev("meta.chunk", "", did, text=f"Analyzing {parent}: the retrieved memory was")
            ev("meta.chunk", "", did, text=f" useful on 2 of 6 tasks.\nProposal: {title}.\n")
            ev("design.proposed", f"{did} proposed from {parent}: {title}", did)
        if status == "rejected":
            for a in (1, 2, 3):
                ev(
                    "design.repair",
                    f"repair {a}/3: AttributeError: 'Query' object has no attribute 'task'",
                    did,
                    attempt=a,
                    error="AttributeError",
                )
            ev(
                "design.rejected",
                f"{did} rejected after 3 repairs: AttributeError: 'Query' object has no attribute 'task'",
                did,
                error="AttributeError",
            )
            continue
        ev(
            "design.evaluating",
            f"evaluating {did} on household (6 collection + 6 deployment tasks x 3 runs)",
            did,
        )
        evaluation = Evaluation(
            design_id=did,
            domain="household",
            agent_model="offline/agent",
            status="running" if status == "evaluating" else "done",
            score=score,
            score_se=se,
            run_scores_json=json.dumps(run_scores),
            started_at=t,
            wall_s=None if status == "evaluating" else 12.5 + seq,
        )
        store.add(evaluation)
        assert evaluation.id is not None
        episodes = []
        phases = [("collection", 0)] + [("deployment", r) for r in (0, 1, 2)]
        if status == "evaluating":
            phases = phases[:2]
        p_success = score or 0.6
        for phase, r in phases:
            for task_id, goal in TASKS:
                ok = rng.random() < p_success
                steps = rng.randint(4, 9) if ok else 15
                traj = [
                    {
                        "observation": f"You are in the kitchen. You see fridge 1, cabinet {k}.",
                        "action": f"go to cabinet {k}",
                        "reward": 0,
                    }
                    for k in range(1, min(steps, 4))
                ]
                if phase == "deployment" and did == "d006" and r == 0 and task_id == "pick-apple-3":
                    for k, step in enumerate(traj, start=1):
                        ev(
                            "episode.step",
                            "",
                            did,
                            phase=phase,
                            run=r,
                            task_id=task_id,
                            step=k,
                            action=step["action"],
                            observation=step["observation"],
                            reward=0,
                        )
                episodes.append(
                    Episode(
                        evaluation_id=evaluation.id,
                        design_id=did,
                        phase=phase,
                        run=r,
                        task_id=task_id,
                        goal=goal,
                        success=ok,
                        score=1.0 if ok else 0.0,
                        steps=steps,
                        retrieved="" if did == "d001" else "apple is usually at: fridge 1" * (2 + r),
                        trajectory_json=json.dumps(traj),
                        error="step limit (15) reached" if not ok else None,
                        wall_s=0.4,
                    )
                )
                if phase == "deployment":
                    ev(
                        "episode.done",
                        "",
                        did,
                        phase=phase,
                        run=r,
                        task_id=task_id,
                        success=ok,
                        steps=steps,
                    )
        store.add(*episodes)
        if status == "evaluating":
            continue
        ev("evaluation.done", "", did, score=score, score_se=se, run_scores=run_scores)
        ev(
            "design.accepted",
            f"{did} accepted: {score:.3f} ± {se:.3f} ({title})",
            did,
            score=score,
            commit=None,
        )
        if did == "d006":
            ev("design.log", "priors: 4 object types, 9 observations", did)
    ev("command", "pin d006", "d006", source="tui")
    ev("command", "veto d007", "d007", source="tui")
    ev(
        "command",
        "hint prefer aggregating counts over storing raw trajectories",
        None,
        source="cli",
    )
    store.add(*ev_rows)
    calls = []
    for i in range(24):
        calls.append(
            LLMCall(
                ts=T0 + timedelta(seconds=i),
                run_id=run.id,
                role="meta" if i % 4 == 0 else "agent",
                model="offline/meta" if i % 4 == 0 else "offline/agent",
                prompt_tokens=900 + 10 * i,
                completion_tokens=120 + i,
                cost_usd=0.0,
            )
        )
    store.add(*calls)
    if git:
        _make_git(path, store, specs)
    store.close()
    return path


def _make_git(path: Path, store, specs) -> None:
    import git

    repo = git.Repo.init(path)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "alma-tui fixture")
        cw.set_value("user", "email", "fixture@alma-tui.invalid")
    (path / ".gitignore").write_text(".alma/\n")
    shas: dict[str, str] = {}
    date = T0.strftime("%Y-%m-%dT%H:%M:%S+0000")
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    for did, parent, _it, _origin, title, code, status, score, _se, *_ in specs:
        if status != "accepted":
            continue
        (path / "design.py").write_text(code)
        (path / "design.json").write_text(
            json.dumps({"id": did, "parent": parent, "title": title, "score": score}, indent=2) + "\n"
        )
        tree_index = repo.index
        tree_index.add(["design.py", "design.json", ".gitignore"])
        parents = [repo.commit(shas[parent])] if parent else []
        commit = tree_index.commit(
            f"{did}: {title}\n\nDesign-Id: {did}\nParent-Design: {parent or '-'}\nScore: {score}\n",
            parent_commits=parents,
            head=False,
            author_date=date,
            commit_date=date,
        )
        shas[did] = commit.hexsha
        repo.create_tag(f"design/{did}", ref=commit)
        store.update_design(did, commit=commit.hexsha)
    del env
