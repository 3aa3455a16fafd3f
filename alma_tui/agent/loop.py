"""The acting agent's step loop: chat building, action matching, bounded history.

Shared by every acting model (a litellm model or the offline policy), so the
rules live here once: how an answer maps to an admissible action, what an
unmatched answer costs (a step, like the reference), and how the chat is kept
small enough for long episodes: the history policy (``--agent-history``) keeps
the system prompt, the goal message and the last N exchanges verbatim, and folds
older exchanges into one short deterministic summary (each action and the first
line of what it produced) or, with a plain window, drops them.

The chat is ordered for provider-side prompt caching: what is stable comes first
(instructions, then the episode's memory and first observation, then the summary
that only grows), what changes every step last.

``Step.observation`` in the returned Episode is the observation *produced by*
the step's action (ALFWorld logs read "action -> observation" this way).
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alma_tui.agent.prompt import history_message, step_message, system_prompt
from alma_tui.design_api import Episode, Query, Step
from alma_tui.domains.base import Env, TaskSpec

__all__ = [
    "CORRECTION",
    "DEFAULT_HISTORY",
    "HISTORY_STEPS",
    "HistoryPolicy",
    "match_action",
    "parse_history_policy",
    "run_episode",
    "trim_history",
]

HISTORY_STEPS = 20  # the plain window of earlier releases (``--agent-history 20``)
MAX_HISTORY = 1000


@dataclass(frozen=True)
class HistoryPolicy:
    """How much of an episode's past the acting agent is shown at each step."""

    keep: int  # exchanges kept verbatim
    summarize: bool  # older exchanges folded into a summary (else dropped)


SUMMARY_KEEP = 2  # verbatim exchanges of ``summary``; 1, 2 and 4 had success within noise (benchmarks/README.md)
DEFAULT_HISTORY = "summary"


def parse_history_policy(text: str | HistoryPolicy) -> HistoryPolicy:
    """``N`` (the last N exchanges, older dropped), ``summary`` (the last two, older folded into a
    summary) or ``summary:N``. Raises ValueError with what is accepted."""
    if isinstance(text, HistoryPolicy):
        return text
    t = str(text).strip().lower()
    summarize = t == "summary" or t.startswith("summary:")
    num = t.removeprefix("summary").removeprefix(":") if summarize else t
    try:
        keep = int(num) if num else SUMMARY_KEEP
    except ValueError:
        keep = -1
    if not 1 <= keep <= MAX_HISTORY:
        raise ValueError(
            f"agent history is a count of exchanges kept (1-{MAX_HISTORY}), 'summary', or 'summary:' and a count"
        )
    return HistoryPolicy(keep, summarize)


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


def _chat(
    head: list[dict], exchanges: list[tuple[str, str]], pairs: list[tuple[str, str]], policy: HistoryPolicy
) -> list[dict]:
    """The chat for the next step: head, then (folded older exchanges), then the verbatim tail."""
    tail = exchanges[-policy.keep :]
    older = len(exchanges) - len(tail)
    out = list(head)
    if older and policy.summarize:
        out.append({"role": "user", "content": history_message(pairs[:older])})
    for answer, user in tail:
        out += [{"role": "assistant", "content": answer}, {"role": "user", "content": user}]
    return out


def run_episode(
    env: Env,
    task: TaskSpec,
    domain: Any,
    memory: str,
    complete: Callable[[list[dict]], str],
    on_step: Callable[[int, str, str, float], None] | None = None,
    retrieve_each_step: Callable[[Query], str] | None = None,
    history: str | HistoryPolicy = DEFAULT_HISTORY,
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
    policy = parse_history_policy(history)
    head: list[dict] = [
        {"role": "system", "content": system_prompt(instructions, memory)},
        {"role": "user", "content": step_message(obs0, env.admissible_actions())},
    ]
    exchanges: list[tuple[str, str]] = []  # (assistant answer, next user message) per step
    pairs: list[tuple[str, str]] = []  # (action, observation) per step, for the summary
    messages = head
    steps: list[Step] = []
    invalid = 0
    done = success = False
    obs = obs0
    for i in range(max_steps):
        if retrieve_each_step is not None and i > 0:
            mem = retrieve_each_step(Query(goal, obs, list(steps), i, getattr(domain, "name", ""), task.task_id))
            head[0] = {"role": "system", "content": system_prompt(instructions, mem)}
            messages = _chat(head, exchanges, pairs, policy)
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
        exchanges.append((answer, step_message(shown, env.admissible_actions())))
        pairs.append((steps[-1].action, shown))
        messages = _chat(head, exchanges, pairs, policy)
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
