"""Model wiring: the LLM client of a run, and the calls the agent, the meta agent and the
designs make through it (each accounted to the design in progress)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from alma_tui.agent.prompt import AGENT_PROMPT_VERSION
from alma_tui.engine import prompts
from alma_tui.engine.config import SearchConfig
from alma_tui.engine.context import RunContext
from alma_tui.engine.evaluator import EpisodeRecord, Hooks
from alma_tui.engine.prompts import PROMPT_VERSION
from alma_tui.llm.client import Budget, LLMClient, RoleParams
from alma_tui.llm.providers import policy_params
from alma_tui.sanitize import sanitize

Messages = list[dict[str, Any]]


def build_llm(cfg: SearchConfig, record: Callable[[dict[str, Any]], None], cancel: threading.Event) -> LLMClient:
    """One client for the run: per-model servers, per-role settings, the run's budget."""
    bases = {
        m: b
        for m, b in (
            (cfg.agent_model, cfg.agent_api_base),
            (cfg.design_model, cfg.agent_api_base),
            (cfg.embedding_model, cfg.agent_api_base),
            (cfg.meta_model, cfg.meta_api_base),
        )
        if m and b
    }
    agent_params = RoleParams(cfg.agent_temperature, cfg.agent_reasoning)
    return LLMClient(
        record=record,
        api_base=cfg.api_base,
        api_bases=bases,
        budget=Budget(cfg.budget_usd, cfg.budget_tokens),
        timeout_s=cfg.llm_timeout_s,
        num_retries=cfg.llm_retries,
        max_concurrent=cfg.max_concurrent_llm,
        cancel=cancel,
        role_params={
            "meta": RoleParams(cfg.meta_temperature, cfg.meta_reasoning),
            "agent": agent_params,
            "design": agent_params,
        },
    )


class ModelCalls:
    """The agent's, the meta agent's and the designs' model calls of one run."""

    def __init__(self, ctx: RunContext, llm: LLMClient) -> None:
        self.ctx = ctx
        self.llm = llm

    def stopped(self) -> None:
        """Raise why model calls cannot go on (budget, outage, rejected key) if a call hit it:
        episodes count a failed call as reward 0, so a step's result is only kept after this check."""
        reason = self.llm.stop_reason()
        if reason is not None:
            raise reason

    def agent_complete(self, messages: Messages, seed: int, design_id: str | None = None) -> str:
        # without a design id (a caller outside any design), the design in progress owns the call
        model = self.ctx.config.agent_model
        return self.llm.complete(
            messages,
            model=model,
            role="agent",
            design_id=design_id or self.ctx.progress.design_id,
            seed=seed,
            task="act",
            prompt_version=AGENT_PROMPT_VERSION,
            **policy_params(model, self.ctx.domain),
        )

    def meta_complete(self, design_id: str) -> Callable[[Messages], str]:
        """The meta agent's completion for a design, its output streamed as events."""
        ctx = self.ctx

        def complete(messages: Messages) -> str:
            buf: list[str] = []
            last = [time.monotonic()]

            def on_chunk(text: str) -> None:
                buf.append(text)
                if time.monotonic() - last[0] > 0.1 or len(buf) > 40:
                    ctx.emit("meta.chunk", "", design_id, text="".join(buf))
                    buf.clear()
                    last[0] = time.monotonic()

            answer = self.llm.complete(
                messages,
                model=ctx.config.meta_model,
                role="meta",
                design_id=design_id,
                seed=ctx.config.seed,
                on_chunk=on_chunk,
                task=prompts.task_of(messages) or None,
                prompt_version=PROMPT_VERSION,
            )
            if buf:
                ctx.emit("meta.chunk", "", design_id, text="".join(buf))
            return answer

        return complete

    def hooks(self, design_id: str, node: str = "", _done: list[int] | None = None) -> Hooks:
        """What an evaluation or a validation of a design reports, and its brokered services.

        ``node``: the worker the reports come from (a Ray executor), shown in each log line as
        ``@node``; ``Hooks.at(node)`` gives these hooks for another node, sharing the episode count."""
        ctx, cfg = self.ctx, self.ctx.config
        design_model = cfg.design_model or cfg.agent_model
        at = f"@{node} " if node else ""
        where: dict[str, Any] = {"node": node} if node else {}

        def step(phase: str, run: int, task_id: str, i: int, action: str, obs: str, reward: float) -> None:
            ctx.emit(
                "episode.step",
                f"{at}[{phase} r{run} {task_id}] {i + 1}: {action} -> {obs[:160]}",
                design_id,
                **where,
                phase=phase,
                run=run,
                task_id=task_id,
                step=i + 1,
                action=action,
                observation=obs[:500],
                reward=reward,
            )

        done = [0] if _done is None else _done  # this design's episodes (each child counts its own)
        total = cfg.eval.n_collection + cfg.eval.n_deployment * cfg.eval.runs
        lock = threading.Lock()

        def episode(rec: EpisodeRecord) -> None:
            with lock:
                done[0] += 1
                n = done[0]
            ctx.progress.episodes_done = n
            mark = "success" if rec.success else ("error: " + rec.error if rec.error else "failed")
            ctx.emit(
                "episode.done",
                f"{at}[{rec.phase} r{rec.run} {rec.task_id}] {mark} in {rec.steps} steps",
                design_id,
                **where,
                phase=rec.phase,
                run=rec.run,
                task_id=rec.task_id,
                success=rec.success,
                steps=rec.steps,
                done=n,
                total=total,
            )

        def design_llm(prompt: str, system: str | None) -> str:
            msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            return self.llm.complete(
                msgs, model=design_model, role="design", design_id=design_id, seed=cfg.seed, task="design"
            )

        def design_embed(texts: list[str]) -> list[list[float]]:
            return self.llm.embed(texts, model=cfg.embedding_model, design_id=design_id)

        def design_log(line: str) -> None:
            ctx.emit("design.log", at + sanitize(line)[:1000], design_id, **where)

        def agent(messages: Messages, seed: int) -> str:
            return self.agent_complete(messages, seed, design_id=design_id)

        return Hooks(
            on_step=step,
            on_episode=episode,
            design_log=design_log,
            design_llm=design_llm,
            design_embed=design_embed,
            agent=agent,
            design_id=design_id,
            at=lambda other: self.hooks(design_id, other, done),
        )
