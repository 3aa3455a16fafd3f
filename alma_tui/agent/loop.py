"""The acting agent's step loop: chat building, action matching, bounded history.

Shared by every acting model (a litellm model or the offline policy), so the
rules live here once: how an answer maps to an admissible action, what an
unmatched answer costs (a step, like the reference), and how the chat is kept
small enough for long episodes (system prompt + goal message + the last
``HISTORY_STEPS`` exchanges).

``Step.observation`` in the returned Episode is the observation *produced by*
the step's action (ALFWorld logs read "action -> observation" this way).
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from typing import Any

from alma_tui.agent.prompt import step_message, system_prompt
from alma_tui.design_api import Episode, Query, Step
from alma_tui.domains.base import Env, TaskSpec

__all__ = ["CORRECTION", "HISTORY_STEPS", "match_action", "run_episode", "trim_history"]

HISTORY_STEPS = 20
FUZZY_CUTOFF = 0.8
CORRECTION = "That is not an admissible action. Reply with exactly one action from the list below."

_PREFIX = re.compile(r"^(?:action\s*:|>|-|\*|\d+[.)])\s*", re.IGNORECASE)


def _normalise(text: str) -> str:
    t = " ".join(text.strip().split()).lower()
    for _ in range(3):
        t = _PREFIX.sub("", t).strip().strip("`'\"").strip()
    return t.rstrip(".!").strip()


def match_action(answer: str, admissible: list[str]) -> str | None:
    """Map a model answer to an admissible action: exact, then normalised (case,
    whitespace, quotes, "Action:" prefixes, trailing period; tried per line),
    then the closest admissible action by difflib ratio >= ``FUZZY_CUTOFF``.
    Returns None when nothing is close enough."""
    answer = answer or ""
    if answer in admissible:
        return answer
    norm = {_normalise(a): a for a in admissible}
    lines = [ln for ln in (_normalise(x) for x in answer.splitlines()) if ln] or [_normalise(answer)]
    for ln in lines:
        if ln in norm:
            return norm[ln]
    for ln in lines:
        close = difflib.get_close_matches(ln, list(norm), n=1, cutoff=FUZZY_CUTOFF)
        if close:
            return norm[close[0]]
    return None


def trim_history(messages: list[dict], keep_steps: int = HISTORY_STEPS) -> list[dict]:
    """System message + first user message (the goal) + the last ``keep_steps``
    assistant/user exchanges."""
    head, tail = messages[:2], messages[2:]
    if len(tail) > 2 * keep_steps:
        tail = tail[-2 * keep_steps :]
    return head + tail


def run_episode(
    env: Env,
    task: TaskSpec,
    domain: Any,
    memory: str,
    complete: Callable[[list[dict]], str],
    on_step: Callable[[int, str, str, float], None] | None = None,
    retrieve_each_step: Callable[[Query], str] | None = None,
    keep_steps: int = HISTORY_STEPS,
) -> tuple[Episode, dict]:
    """Run one episode; return the design_api Episode and an info dict
    (steps, success, score, wall_time, invalid_actions, memory_chars).

    ``retrieve_each_step``, when given, is called before every step after the
    first with the current Query and replaces the memory in the system prompt.
    """
    t0 = time.perf_counter()
    instructions = getattr(domain, "instructions", "")
    max_steps = int(getattr(domain, "max_steps", 30))
    obs0 = env.reset()
    goal = getattr(env, "goal", task.goal)
    messages: list[dict] = [
        {"role": "system", "content": system_prompt(instructions, memory)},
        {"role": "user", "content": step_message(obs0, env.admissible_actions())},
    ]
    steps: list[Step] = []
    invalid = 0
    done = success = False
    obs = obs0
    for i in range(max_steps):
        if retrieve_each_step is not None and i > 0:
            mem = retrieve_each_step(Query(goal, obs, list(steps), i, getattr(domain, "name", ""), task.task_id))
            messages[0] = {"role": "system", "content": system_prompt(instructions, mem)}
        admissible = env.admissible_actions()
        answer = complete(messages)
        action = match_action(answer, admissible)
        res = env.step(action if action is not None else (answer or "").strip()[:200])
        obs = res.observation
        steps.append(Step(obs, action if action is not None else (answer or "").strip()[:200], res.reward))
        invalid += action is None
        if on_step is not None:
            on_step(i, steps[-1].action, obs, res.reward)
        done, success = res.done, res.success
        if done:
            break
        shown = obs if action is not None else f"{obs}\n{CORRECTION}"
        messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": step_message(shown, env.admissible_actions())})
        messages = trim_history(messages, keep_steps)
    score = float(env.score())
    episode = Episode(
        domain=getattr(domain, "name", ""),
        task_id=task.task_id,
        goal=goal,
        initial_observation=obs0,
        steps=steps,
        success=bool(success),
        score=score,
        step_count=len(steps),
    )
    info = {
        "steps": len(steps),
        "success": bool(success),
        "score": score,
        "wall_time": time.perf_counter() - t0,
        "invalid_actions": invalid,
        "memory_chars": len(memory or ""),
    }
    return episode, info
