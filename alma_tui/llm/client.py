"""Every model call of a search goes through here: one place for litellm, accounting and limits.

litellm is imported on the first call, never at start-up (it costs 4-5 s). Offline
models are registered as a litellm custom provider, so they take the same path as
real ones. Every call becomes an ``LLMCall`` row (never the key, never the prompt).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alma_tui.llm.offline import is_offline

_lock = threading.Lock()
_litellm: Any = None


class ModelError(Exception):
    """A model is unusable (unknown, missing key): one clear line for the user."""


class BudgetExceeded(Exception):
    """The next call would go over the run's budget."""


def litellm_module() -> Any:
    """Import and configure litellm once (local price map, quiet logs, offline provider)."""
    global _litellm
    with _lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.ERROR)
            from alma_tui.llm.offline import make_handler

            litellm.custom_provider_map = [{"provider": "offline", "custom_handler": make_handler()}]
            _litellm = litellm
    return _litellm


def check_model(model: str, api_base: str | None = None) -> None:
    """Fail before a search starts if a model cannot work (unknown provider, missing key)."""
    if is_offline(model):
        if model not in ("offline/agent", "offline/meta"):
            raise ModelError(f"unknown offline model {model!r}; use offline/agent or offline/meta")
        return
    litellm = litellm_module()
    try:
        litellm.get_llm_provider(model, api_base=api_base)
    except Exception as exc:
        raise ModelError(
            f"unknown model {model!r}: litellm cannot tell its provider "
            "(write it as provider/model, e.g. openai/gpt-5-nano)"
        ) from exc
    env = litellm.validate_environment(model=model, api_base=api_base)
    missing = env.get("missing_keys") or []
    if missing:
        raise ModelError(f"model {model!r} needs {', '.join(missing)} in the environment")


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Budget:
    usd: float | None = None
    tokens: int | None = None


class LLMClient:
    """Calls models for one run and records each call through ``record``."""

    def __init__(
        self,
        *,
        record: Callable[[dict[str, Any]], None] | None = None,
        budget: Budget | None = None,
        api_base: str | None = None,
        timeout_s: float = 120.0,
        num_retries: int = 4,
    ) -> None:
        self.record = record
        self.budget = budget or Budget()
        self.api_base = api_base
        self.timeout_s = timeout_s
        self.num_retries = num_retries
        self.spent = Usage()
        self._spent_lock = threading.Lock()

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        role: str,
        design_id: str | None = None,
        seed: int | None = None,
        on_chunk: Callable[[str], None] | None = None,
        **params: Any,
    ) -> str:
        self._check_budget()
        litellm = litellm_module()
        kwargs: dict[str, Any] = dict(params)
        if seed is not None:
            kwargs["seed"] = seed
        if not is_offline(model):
            kwargs.setdefault("num_retries", self.num_retries)
            kwargs.setdefault("timeout", self.timeout_s)
            if self.api_base:
                kwargs.setdefault("api_base", self.api_base)
        started = time.perf_counter()
        try:
            if on_chunk is not None:
                text, usage = self._stream(litellm, model, messages, on_chunk, kwargs)
            else:
                resp = litellm.completion(model=model, messages=messages, **kwargs)
                text = resp.choices[0].message.content or ""
                usage = getattr(resp, "usage", None)
                cost = self._cost(litellm, resp, model)
        except Exception as exc:
            self._record(role, model, design_id, None, 0.0, time.perf_counter() - started, error=exc)
            raise
        if on_chunk is not None:
            cost = 0.0
        self._record(role, model, design_id, usage, cost, time.perf_counter() - started)
        return text

    def _stream(self, litellm: Any, model: str, messages: list, on_chunk: Callable[[str], None],
                kwargs: dict[str, Any]) -> tuple[str, Any]:
        parts: list[str] = []
        usage = None
        stream = litellm.completion(model=model, messages=messages, stream=True,
                                    stream_options={"include_usage": True}, **kwargs)
        for chunk in stream:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                parts.append(delta)
                on_chunk(delta)
        return "".join(parts), usage

    @staticmethod
    def _cost(litellm: Any, resp: Any, model: str) -> float:
        if is_offline(model):
            return 0.0
        try:
            return float(litellm.completion_cost(completion_response=resp) or 0.0)
        except Exception:
            return 0.0  # no price known for this model: tokens still count

    def _check_budget(self) -> None:
        b = self.budget
        with self._spent_lock:
            if b.usd is not None and self.spent.cost_usd >= b.usd:
                raise BudgetExceeded(f"budget of ${b.usd:.2f} reached (${self.spent.cost_usd:.4f} spent)")
            tokens = self.spent.prompt_tokens + self.spent.completion_tokens
            if b.tokens is not None and tokens >= b.tokens:
                raise BudgetExceeded(f"budget of {b.tokens} tokens reached ({tokens} used)")

    def _record(self, role: str, model: str, design_id: str | None, usage: Any, cost: float,
                latency: float, error: Exception | None = None) -> None:
        pt = int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
        ct = int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0
        with self._spent_lock:
            self.spent.prompt_tokens += pt
            self.spent.completion_tokens += ct
            self.spent.cost_usd += cost
        if self.record is not None:
            self.record({
                "role": role, "model": model, "design_id": design_id,
                "prompt_tokens": pt, "completion_tokens": ct, "cost_usd": cost,
                "cost_known": is_offline(model) or cost > 0,
                "latency_s": latency, "ok": error is None,
                "error": None if error is None else f"{type(error).__name__}: {error}"[:500],
            })

    def embed(self, texts: list[str], *, model: str | None = None, design_id: str | None = None) -> list[list[float]]:
        """Embeddings for designs: a litellm model when configured, else a local hashing embedding."""
        if not model:
            from alma_tui.llm.local_embed import hash_embed

            return hash_embed(list(texts))
        self._check_budget()
        litellm = litellm_module()
        started = time.perf_counter()
        resp = litellm.embedding(model=model, input=list(texts), api_base=self.api_base)
        self._record("embed", model, design_id, getattr(resp, "usage", None), 0.0, time.perf_counter() - started)
        return [list(item["embedding"]) for item in resp.data]
