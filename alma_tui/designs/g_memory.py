"""G-Memory: interaction records, a task graph and scored rules.

Port of the reference baseline (Zhang et al., "G-Memory"), three tiers:

1. Interaction records: every collected episode is kept whole (all its steps) with
   the key steps an LLM extracts from it and, for a failure, the LLM's explanation
   of the mistake (one LLM call per episode for both).
2. Task graph: one node per episode, keyed by the task (goal plus the setting, the
   first sentence of the initial observation); nodes whose key embeddings have
   cosine >= 0.7 are linked. Retrieval takes the most similar tasks and their
   graph neighbours and shows their key steps (and mistakes), most similar first.
3. Rules: a small set of scored rules. Every REVISE_EVERY episodes the LLM revises
   them by comparing the recent successes and failures; a rule shown before an
   episode gains +1 if that episode succeeds and -2 if it fails (sequential
   protocol), and a rule whose score falls below MIN_SCORE is retired.

Fix over the reference: steps with a negative reward are kept (the reference drops
them, which empties every trajectory in domains with a step penalty). LLM answers
are parsed leniently (tags, else bullet lines, else a fallback drawn from the
trajectory itself), so an unexpected answer never raises. Retrieval makes no LLM
call; keys are embedded once and queries are cached.
"""

import math
import re

from alma_tui.design_api import Episode, MemoryDesign, Query

EDGE_THRESHOLD = 0.7
MIN_SIMILARITY = 0.3
SEED_TASKS = 2
MAX_RECORDS_SHOWN = 4
MAX_KEY_STEPS = 8
MAX_RULES = 8
MAX_RULES_SHOWN = 5
MIN_SCORE = -2
REVISE_EVERY = 4
MAX_STEPS_SHOWN = 40
MAX_OBS_CHARS = 300
MAX_LINE_CHARS = 300

SYSTEM = (
    "You analyse the episodes of an agent that solves household tasks by text "
    "actions, and distil what a later attempt at a similar task needs to know."
)

KEY_STEPS_PROMPT = """## Task
Goal: {goal}
Setting: {setting}
Outcome: {outcome} after {steps} steps (score {score})

## Trajectory (action -> observation)
{trajectory}

## Instructions
Extract the key steps of this trajectory: the few actions and observations that decided the outcome
or that a later attempt could reuse (where the needed object was found, the appliance that
transformed it, the final placement, useful sightings). At most {k} lines, each a short
self-contained statement, between <key_steps> and </key_steps>.{mistake}
"""

MISTAKE_PART = (
    "\nThe episode FAILED: then explain in one or two sentences the mistake that caused "
    "the failure and what to do instead, between <mistake> and </mistake>."
)

RULES_PROMPT = """## Recent episodes
{episodes}

## Current rules (keep a rule's exact wording to keep its score)
{rules}

## Instructions
Compare the successful and the failed episodes above. Write the revised set of rules, at most {n}:
general, actionable statements that make success more likely on similar tasks (where kinds of
objects are usually found in a kind of place, which appliance to use, how to avoid wasted steps).
Keep the current rules that still hold, reword or drop those contradicted, add new ones. One rule
per line between <rules> and </rules>.
"""

_IT = re.compile(r"\bIn it,")
_REC_AT_END = re.compile(r"([A-Za-z]+ \d+)\s*$")
_ANY_TAG = re.compile(r"</?\s*[A-Za-z_]+\s*>")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def _setting(observation: str) -> str:
    first = observation.strip().split("\n")[0]
    return first.split(". ")[0][:200]


def _unit(vec):
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm > 0 else [0.0 for _ in vec]


def _render_step(action: str, observation: str) -> str:
    """One "action -> observation" line; "In it," is resolved to the receptacle acted on."""
    obs = " ".join(str(observation).split())
    m = _REC_AT_END.search(str(action))
    if m:
        obs = _IT.sub(f"In the {m.group(1)},", obs)
    return f"{action} -> {obs[:MAX_OBS_CHARS]}"


def _tagged(answer: str, tag: str):
    """Text of the last complete <tag>...</tag> block, else None."""
    found = re.findall(rf"<\s*{tag}\s*>(.*?)<\s*/\s*{tag}\s*>", answer, re.IGNORECASE | re.DOTALL)
    return found[-1] if found else None


def _as_lines(text: str, limit: int, bullets_only: bool = False) -> list[str]:
    out, seen = [], set()
    for raw in _ANY_TAG.sub("\n", str(text)).splitlines():
        if bullets_only and not _BULLET.match(raw):
            continue
        line = " ".join(_BULLET.sub("", raw).split()).strip("*").strip()[:MAX_LINE_CHARS]
        if line and line.lower() not in seen:
            seen.add(line.lower())
            out.append(line)
        if len(out) >= limit:
            break
    return out


def _fallback_steps(rendered: list[str]) -> list[str]:
    """Key steps without the LLM: the steps that changed something, else the last ones."""
    moves = [s for s in rendered if not s.startswith(("go to ", "look", "inventory", "examine"))]
    return (moves or rendered)[-MAX_KEY_STEPS:]


class GMemory(MemoryDesign):
    """Three tiers: interaction records, task graph, scored rules."""

    def __init__(self, services):
        super().__init__(services)
        self.records = []  # tier 1: one dict per episode
        self.vectors = []  # unit key embedding per record
        self.edges = []  # tier 2: adjacency lists (indices into records)
        self.rules = []  # tier 3: {"text", "score", "uses"}
        self.pending = []  # record indices since the last rule revision
        self.revisions = 0
        self._shown = {}  # task_id -> rule texts shown before that task
        self._query_cache = {}

    def _key(self, goal: str, observation: str) -> str:
        return f"{goal} | {_setting(observation)}"

    # tier 1 + 2 ---------------------------------------------------------------
    def update(self, episode: Episode) -> None:
        self._reward_rules(episode)
        rendered = [_render_step(s.action, s.observation) for s in episode.steps]  # all steps, any reward
        outcome = "success" if episode.success else "failure"
        prompt = KEY_STEPS_PROMPT.format(
            goal=episode.goal,
            setting=_setting(episode.initial_observation),
            outcome=outcome,
            steps=episode.step_count,
            score=f"{episode.score:g}",
            trajectory="\n".join(rendered[:MAX_STEPS_SHOWN]) or "(no steps)",
            k=MAX_KEY_STEPS,
            mistake="" if episode.success else MISTAKE_PART,
        )
        answer = str(self.services.llm(prompt, SYSTEM) or "")
        block = _tagged(answer, "key_steps")
        if block is not None:
            key_steps = _as_lines(block, MAX_KEY_STEPS)
        else:
            rest = re.sub(r"<\s*mistake\s*>.*?(<\s*/\s*mistake\s*>|$)", "", answer, flags=re.IGNORECASE | re.DOTALL)
            key_steps = _as_lines(rest, MAX_KEY_STEPS, bullets_only=True)
        if not key_steps:
            key_steps = _fallback_steps(rendered)
        mistake = ""
        if not episode.success:
            m = _tagged(answer, "mistake")
            mistake = " ".join(_as_lines(m, 3)) if m is not None else ""
            if not mistake:
                mistake = f"The episode ended unsuccessfully after {episode.step_count} steps."
        key = self._key(episode.goal, episode.initial_observation)
        vec = _unit(self.services.embed([key])[0])
        idx = len(self.records)
        self.edges.append([])
        for j, other in enumerate(self.vectors):
            if sum(x * y for x, y in zip(vec, other)) >= EDGE_THRESHOLD:
                self.edges[idx].append(j)
                self.edges[j].append(idx)
        self.vectors.append(vec)
        self.records.append(
            {
                "task_id": episode.task_id,
                "goal": episode.goal,
                "setting": _setting(episode.initial_observation),
                "success": bool(episode.success),
                "steps": rendered[:MAX_STEPS_SHOWN],
                "rewards": [float(s.reward) for s in episode.steps[:MAX_STEPS_SHOWN]],
                "key_steps": key_steps,
                "mistake": mistake,
            }
        )
        self.pending.append(idx)
        if len(self.pending) >= REVISE_EVERY:
            self._revise_rules()

    # tier 3 -------------------------------------------------------------------
    def _reward_rules(self, episode: Episode) -> None:
        shown = self._shown.pop(episode.task_id, None)
        if not shown:
            return
        delta = 1 if episode.success else -2
        for rule in self.rules:
            if rule["text"] in shown:
                rule["score"] += delta
                rule["uses"] += 1
        self.rules = [r for r in self.rules if r["score"] >= MIN_SCORE]

    def _revise_rules(self) -> None:
        recent = [self.records[i] for i in self.pending]
        self.pending = []
        blocks = []
        for rec in sorted(recent, key=lambda r: not r["success"]):
            lines = [f"[{'SUCCESS' if rec['success'] else 'FAILURE'}] Goal: {rec['goal']} ({rec['setting']})"]
            lines += [f"- {s}" for s in rec["key_steps"]]
            if rec["mistake"]:
                lines.append(f"Mistake: {rec['mistake']}")
            blocks.append("\n".join(lines))
        current = "\n".join(f"- {r['text']}" for r in self.rules) or "(none yet)"
        prompt = RULES_PROMPT.format(episodes="\n\n".join(blocks), rules=current, n=MAX_RULES)
        answer = str(self.services.llm(prompt, SYSTEM) or "")
        block = _tagged(answer, "rules")
        texts = _as_lines(block, MAX_RULES) if block is not None else _as_lines(answer, MAX_RULES, bullets_only=True)
        if not texts:
            self.services.log("g_memory: rule revision gave no rules; kept the current ones")
            return
        old = {r["text"].lower(): r for r in self.rules}
        self.rules = [dict(old[t.lower()]) if t.lower() in old else {"text": t, "score": 0, "uses": 0} for t in texts]
        self.revisions += 1

    # retrieval ----------------------------------------------------------------
    def retrieve(self, query: Query) -> str:
        lines = []
        if self.records:
            key = self._key(query.goal, query.observation)
            vec = self._query_cache.get(key)
            if vec is None:
                vec = _unit(self.services.embed([key])[0])
                self._query_cache[key] = vec
            sims = [sum(x * y for x, y in zip(vec, v)) for v in self.vectors]
            order = sorted(range(len(sims)), key=lambda i: -sims[i])
            seeds = [i for i in order[:SEED_TASKS] if sims[i] >= MIN_SIMILARITY]
            chosen = set(seeds)
            for i in seeds:
                chosen.update(self.edges[i])
            ranked = sorted(chosen, key=lambda i: -sims[i])[:MAX_RECORDS_SHOWN]
            if ranked:
                lines.append("Key steps of similar past tasks (most similar first):")
            for i in ranked:
                rec = self.records[i]
                outcome = "success" if rec["success"] else "failure"
                lines.append(f"[{outcome}, similarity {sims[i]:.2f}] Task: {rec['goal']} ({rec['setting']})")
                lines += [f"- {s}" for s in rec["key_steps"]]
                if rec["mistake"]:
                    lines.append(f"Mistake: {rec['mistake']}")
        rules = sorted(self.rules, key=lambda r: -r["score"])[:MAX_RULES_SHOWN]
        if rules:
            lines.append("Rules learned from past episodes (best first):")
            lines += [f"- {r['text']}" for r in rules]
            if query.task_id:
                self._shown[query.task_id] = [r["text"] for r in rules]
                if len(self._shown) > 500:
                    self._shown.pop(next(iter(self._shown)))
        return "\n".join(lines)

    def snapshot(self) -> dict:
        return {
            "episodes": len(self.records),
            "task_graph_edges": sum(len(e) for e in self.edges) // 2,
            "rule_revisions": self.revisions,
            "rules": [dict(r) for r in sorted(self.rules, key=lambda r: -r["score"])],
            "items": [
                {
                    "task_id": r["task_id"],
                    "goal": r["goal"],
                    "success": r["success"],
                    "steps": len(r["steps"]),
                    "key_steps": list(r["key_steps"]),
                    "mistake": r["mistake"],
                    "neighbours": len(self.edges[i]),
                }
                for i, r in enumerate(self.records)
            ],
        }
