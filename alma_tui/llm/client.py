"""Every model call of a search goes through here: one place for litellm, accounting and limits.

litellm is imported on the first call, never at start-up (it costs 4-5 s). Offline
models are litellm custom providers, registered by the application in
:mod:`alma_tui.llm.providers` (this module never imports them), so they take the
same path as real ones. Every call becomes an ``LLMCall`` row (never the key, never the prompt):
model, role, prompt/completion/reasoning tokens, cost (litellm's price map; an
unknown price counts the tokens, costs 0 and sets ``cost_known=False``), latency
and the number of retries.

Limits live here too:

- retries with exponential backoff and full jitter on 429, 5xx, timeouts and
  connection errors (a ``Retry-After`` header is honoured, capped); litellm's and
  the OpenAI SDK's own retries are switched off so the count we record is the truth;
- when every retry failed, the provider is considered unavailable: the call raises
  :class:`ProviderUnavailable` and the client *halts* (every later call fails fast
  with the same error) until :meth:`LLMClient.clear_halt`; the search pauses on it;
- a per-model concurrency limit (a semaphore per model, held only while a request is
  in flight, not during backoff);
- the run's budget in USD and tokens: :meth:`LLMClient.complete` refuses to start a
  call once the budget is spent, and :meth:`LLMClient.ensure_room` lets the search
  refuse to start a step that its estimate says would not fit.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alma_tui.llm import providers
from alma_tui.sanitize import one_line

_lock = threading.Lock()
_litellm: Any = None
_handlers: dict[str, Any] = {}  # in-process provider name -> its litellm handler, built once

#: providers that run on the user's machine or their own server: no key needed
LOCAL_PROVIDERS = {
    "ollama",
    "ollama_chat",
    "hosted_vllm",
    "lm_studio",
    "llamafile",
    "vllm",
    "xinference",
    "openai_like",
    "custom_openai",
}
#: providers whose "model" is whatever the server at api_base serves
COMPATIBLE_PROVIDERS = {"openai", "text-completion-openai", "custom_openai", "openai_like"} | LOCAL_PROVIDERS
#: the base-URL variables litellm itself reads for each OpenAI-compatible provider: one set in the
#: environment (or --env-file) means the same as --api-base with that URL
BASE_URL_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
    "text-completion-openai": ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
    "hosted_vllm": ("HOSTED_VLLM_API_BASE",),
    "openai_like": ("OPENAI_LIKE_API_BASE",),
    "ollama": ("OLLAMA_API_BASE",),
    "ollama_chat": ("OLLAMA_API_BASE",),
    "xinference": ("XINFERENCE_API_BASE",),
    "lm_studio": ("LM_STUDIO_API_BASE",),
}
#: providers whose prompt caching reads only what the request marks with ``cache_control``
CACHE_MARKER_PROVIDERS = {"anthropic"}
#: providers serving Claude models with the same markers (litellm translates them)
CLAUDE_HOSTS = {"bedrock", "vertex_ai", "openrouter"}
#: sent when an OpenAI-compatible server needs no key (the OpenAI SDK refuses an empty one)
NO_KEY = "sk-no-key-needed"


class ModelError(Exception):
    """A model is unusable (unknown, missing or rejected key): one clear line for the user."""


class BudgetExceeded(Exception):
    """The next call (or step) would go over the run's budget."""


class ProviderUnavailable(Exception):
    """Every retry of a call failed on a transient error (connection, 5xx, timeout, 429)."""


def litellm_module() -> Any:
    """Import and configure litellm once (local price map, quiet logs), and hand it the
    in-process providers registered so far (the offline models)."""
    global _litellm
    with _lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.ERROR)
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            litellm.drop_params = True  # reasoning_effort/temperature/seed dropped where unsupported
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.ERROR)
            _litellm = litellm
        _install_providers(_litellm)
    return _litellm


def _install_providers(litellm: Any) -> None:
    """Give litellm a handler for each registered in-process provider it does not have yet
    (a provider registered after litellm was loaded is picked up on the next call)."""
    new = [p for p in providers.registered() if p.name not in _handlers]
    if not new:
        return
    for p in new:
        _handlers[p.name] = p.make_handler()
    litellm.custom_provider_map = [{"provider": name, "custom_handler": h} for name, h in _handlers.items()]


# -- keys and model checks ----------------------------------------------------------------------
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def load_env_file(path: str | Path, override: bool = False) -> list[str]:
    """Read ``KEY=VALUE`` lines (``export``, quotes and ``#`` comments allowed) into
    ``os.environ``; variables already set win unless ``override``. Returns the names
    set (never the values: keys must not reach logs or the store)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as exc:
        raise ModelError(f"cannot read --env-file {p}: {exc.strerror or exc}") from exc
    names = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        if not m:
            continue
        name, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        if override or name not in os.environ:
            os.environ[name] = value
            names.append(name)
    return names


def _provider(litellm: Any, model: str, api_base: str | None) -> str:
    return str(litellm.get_llm_provider(model, api_base=api_base)[1])


def env_api_base(model: str) -> str | None:
    """The base URL litellm would take from the environment for ``model``'s provider
    (``OPENAI_BASE_URL``/``OPENAI_API_BASE`` for ``openai/...``, ...), or None."""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    for name in BASE_URL_ENV.get(provider, ()):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def check_model(model: str, api_base: str | None = None, *, embedding: bool = False, strict_name: bool = True) -> None:
    """Fail before a search starts if a model cannot work: unknown provider, a cloud
    model name litellm does not know (``strict_name``), or a missing key. Local servers
    (ollama, vLLM, any OpenAI-compatible ``api_base``) need no key and accept any name."""
    local = providers.lookup(model)
    if local is not None:
        if model not in local.models:
            raise ModelError(f"unknown {local.name} model {model!r}; use {' or '.join(local.models)}")
        return
    litellm = litellm_module()
    api_base = api_base or env_api_base(model)  # OPENAI_BASE_URL etc. count as --api-base
    try:
        provider = _provider(litellm, model, api_base)
    except Exception as exc:
        raise ModelError(
            f"unknown model {model!r}: litellm cannot tell its provider "
            "(write it as provider/model, e.g. openai/gpt-5-nano)"
        ) from exc
    keyless = provider in LOCAL_PROVIDERS or (api_base is not None and provider in COMPATIBLE_PROVIDERS)
    if strict_name and not keyless:
        cost_map = getattr(litellm, "model_cost", {}) or {}
        info = cost_map.get(model) or cost_map.get(model.split("/", 1)[-1])
        if info is None:
            raise ModelError(
                f"unknown model {model!r}: not in litellm's model list (a typo? for an OpenAI-compatible "
                "server add --api-base URL or set OPENAI_BASE_URL; for a model newer than litellm pass "
                "--skip-model-check)"
            )
        if embedding and info.get("mode") not in (None, "embedding"):
            raise ModelError(f"{model!r} is a {info.get('mode')} model, not an embedding model")
    if keyless:
        return
    env = litellm.validate_environment(model=model, api_base=api_base)
    if not env.get("keys_in_environment", True):
        missing = env.get("missing_keys") or []
        raise ModelError(
            f"model {model!r} needs {' or '.join(missing) or 'an API key'} in the environment "
            "(export it or pass --env-file PATH)"
        )


# -- accounting ---------------------------------------------------------------------------------
@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the provider read from its prompt cache (billed lower)
    cost_usd: float = 0.0
    calls: int = 0
    unknown_cost_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Budget:
    usd: float | None = None
    tokens: int | None = None


@dataclass
class RoleParams:
    """Per-role generation settings; ``None`` leaves the provider's default."""

    temperature: float | None = None
    reasoning_effort: str | None = None  # low | medium | high; dropped where unsupported

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.reasoning_effort:
            out["reasoning_effort"] = self.reasoning_effort
        return out


def _usage_numbers(usage: Any) -> tuple[int, int, int, int]:
    """(prompt, completion, reasoning, cached prompt) tokens of a response's usage.

    Cached tokens are part of the prompt tokens: OpenAI-style ``prompt_tokens_details.cached_tokens``
    (litellm maps Anthropic's ``cache_read_input_tokens`` there too; read both, in case)."""
    if usage is None:
        return 0, 0, 0, 0

    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    pt = int(get(usage, "prompt_tokens") or 0)
    ct = int(get(usage, "completion_tokens") or 0)
    details = get(usage, "completion_tokens_details")
    rt = int((get(details, "reasoning_tokens") if details is not None else 0) or 0)
    pdetails = get(usage, "prompt_tokens_details")
    cached = int((get(pdetails, "cached_tokens") if pdetails is not None else 0) or 0)
    cached = max(cached, int(get(usage, "cache_read_input_tokens") or 0))
    return pt, ct, rt, min(cached, pt) if pt else cached


def _secret_values() -> list[str]:
    return [
        v for k, v in os.environ.items() if len(v) >= 8 and re.search(r"KEY|TOKEN|SECRET|PASSWORD", k, re.IGNORECASE)
    ]


def redact(text: str) -> str:
    """Remove any secret from the environment out of ``text`` (error messages may echo keys)."""
    for v in _secret_values():
        if v in text:
            text = text.replace(v, "[redacted]")
    return re.sub(r"\b(sk-[A-Za-z0-9_-]{4})[A-Za-z0-9_-]{12,}", r"\1…[redacted]", text)


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException) -> str:
    """``retry`` (transient: 429, 5xx, timeout, connection), ``auth`` (key/model rejected)
    or ``fatal`` (a bad request for this call only)."""
    name = type(exc).__name__
    if name in (
        "Timeout",
        "APITimeoutError",
        "APIConnectionError",
        "ServiceUnavailableError",
        "BadGatewayError",
        "InternalServerError",
        "RateLimitError",
        "ConnectError",
        "ReadTimeout",
        "RemoteProtocolError",
        "MidStreamFallbackError",
    ):
        return "retry"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "retry"
    if name in ("AuthenticationError", "PermissionDeniedError", "NotFoundError"):
        return "auth"
    code = _status(exc)
    if code is not None and (code in (408, 409, 425, 429) or code >= 500):
        return "retry"
    if code in (401, 403):
        return "auth"
    return "fatal"


def _retry_after(exc: BaseException) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass
class _Attempt:
    retries: int = 0
    last_error: BaseException | None = None
    notes: list[str] = field(default_factory=list)


class LLMClient:
    """Calls models for one run and records each call through ``record``."""

    def __init__(
        self,
        *,
        record: Callable[[dict[str, Any]], None] | None = None,
        budget: Budget | None = None,
        api_base: str | None = None,
        api_bases: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        num_retries: int = 4,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_concurrent: int = 8,
        role_params: dict[str, RoleParams] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.record = record
        self.budget = budget or Budget()
        self.api_base = api_base
        self.api_bases = dict(api_bases or {})
        self.timeout_s = timeout_s
        self.num_retries = num_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_concurrent = max(1, int(max_concurrent))
        self.role_params = dict(role_params or {})
        self.cancel = cancel or threading.Event()
        self.spent = Usage()
        self.by_design: dict[str, Usage] = {}
        self._spent_lock = threading.Lock()
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._halt: ProviderUnavailable | None = None
        self._budget_hit: BudgetExceeded | None = None
        self._fatal: ModelError | None = None
        self._rng = random.Random()
        self._markers: dict[str, bool] = {}

    # -- state the search reads ----------------------------------------------------------------
    @property
    def halted(self) -> ProviderUnavailable | None:
        """The outage that stopped calls, until :meth:`clear_halt`."""
        return self._halt

    def clear_halt(self) -> None:
        self._halt = None

    def stop_reason(self) -> Exception | None:
        """Why calls cannot go on (an outage, the budget, a rejected key), if any call hit it.
        Episodes swallow call errors as reward 0, so the search asks this after each step."""
        return self._halt or self._budget_hit or self._fatal

    def restore(
        self, prompt_tokens: int = 0, completion_tokens: int = 0, cost_usd: float = 0.0, calls: int = 0
    ) -> None:
        """Count what earlier sessions of the run spent (a budget covers the whole run)."""
        with self._spent_lock:
            self.spent.prompt_tokens += prompt_tokens
            self.spent.completion_tokens += completion_tokens
            self.spent.cost_usd += cost_usd
            self.spent.calls += calls

    def budget_status(self) -> dict[str, Any]:
        """Spend vs budget, for the TUI and the headless summary."""
        with self._spent_lock:
            s = self.spent
            return {
                "cost_usd": s.cost_usd,
                "tokens": s.tokens,
                "calls": s.calls,
                "reasoning_tokens": s.reasoning_tokens,
                "cached_tokens": s.cached_tokens,
                "cache_hit_rate": s.cached_tokens / s.prompt_tokens if s.prompt_tokens else 0.0,
                "unknown_cost_calls": s.unknown_cost_calls,
                "budget_usd": self.budget.usd,
                "budget_tokens": self.budget.tokens,
                "left_usd": None if self.budget.usd is None else self.budget.usd - s.cost_usd,
                "left_tokens": None if self.budget.tokens is None else self.budget.tokens - s.tokens,
            }

    def ensure_room(self, usd: float = 0.0, tokens: int = 0, what: str = "the next step") -> None:
        """Raise :class:`BudgetExceeded` if spending ``usd``/``tokens`` more would go over budget."""
        self._check_budget()
        b = self.budget
        with self._spent_lock:
            if b.usd is not None and usd > 0 and self.spent.cost_usd + usd > b.usd:
                raise BudgetExceeded(
                    f"budget of ${b.usd:.2f}: {what} would need ~${usd:.4f}, "
                    f"${max(0.0, b.usd - self.spent.cost_usd):.4f} left (${self.spent.cost_usd:.4f} spent)"
                )
            if b.tokens is not None and tokens > 0 and self.spent.tokens + tokens > b.tokens:
                raise BudgetExceeded(
                    f"budget of {b.tokens} tokens: {what} would need ~{tokens}, "
                    f"{max(0, b.tokens - self.spent.tokens)} left ({self.spent.tokens} used)"
                )

    # -- calls ------------------------------------------------------------------------------------
    def _kwargs(self, model: str, role: str, seed: int | None, params: dict[str, Any]) -> dict[str, Any]:
        rp = self.role_params.get(role)
        kwargs: dict[str, Any] = {**(rp.kwargs() if rp else {}), **params}
        if seed is not None:
            kwargs["seed"] = seed
        if not providers.in_process(model):
            kwargs["num_retries"] = 0  # our loop retries (and counts); litellm's and the SDK's must not
            kwargs["max_retries"] = 0
            kwargs.setdefault("timeout", self.timeout_s)
            kwargs.setdefault("drop_params", True)
            base = self.api_bases.get(model) or self.api_base
            if base:
                kwargs.setdefault("api_base", base)
                self._maybe_no_key(model, base, kwargs)
            elif env_api_base(model):  # litellm reads the URL itself; a keyless server still needs a key
                self._maybe_no_key(model, env_api_base(model) or "", kwargs)
        return kwargs

    def _maybe_no_key(self, model: str, base: str, kwargs: dict[str, Any]) -> None:
        """An OpenAI-compatible server without OPENAI_API_KEY gets a placeholder key."""
        if "api_key" in kwargs:
            return
        provider = model.split("/", 1)[0] if "/" in model else "openai"
        if provider in ("openai", "hosted_vllm", "openai_like", "custom_openai") and not os.environ.get(
            "OPENAI_API_KEY" if provider == "openai" else "HOSTED_VLLM_API_KEY"
        ):
            kwargs["api_key"] = NO_KEY

    def _slot(self, model: str) -> threading.BoundedSemaphore:
        with _lock:
            sem = self._sems.get(model)
            if sem is None:
                sem = self._sems[model] = threading.BoundedSemaphore(self.max_concurrent)
            return sem

    def _backoff(self, retries: int, exc: BaseException) -> float:
        after = _retry_after(exc)
        if after is not None:  # the provider said when: wait that long, plus a little jitter
            return min(after, self.backoff_max_s) + self._rng.uniform(0.0, 0.25)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**retries))
        return self._rng.uniform(0.0, ceiling)  # exponential backoff with full jitter

    def _retrying(
        self, model: str, fn: Callable[[], Any], attempt: _Attempt, on_retry: Callable[[], None] | None = None
    ) -> Any:
        while True:
            if self._halt is not None:
                raise ProviderUnavailable(str(self._halt))
            try:
                with self._slot(model):
                    return fn()
            except (BudgetExceeded, ProviderUnavailable):
                raise
            except Exception as exc:
                attempt.last_error = exc
                kind = classify(exc)
                if kind == "auth":
                    self._fatal = ModelError(f"{model} was rejected by the provider: {one_line(redact(str(exc)), 300)}")
                    raise self._fatal from exc
                if kind != "retry" or providers.in_process(model):
                    raise
                if attempt.retries >= self.num_retries:
                    halt = ProviderUnavailable(
                        f"{model}: {type(exc).__name__}"
                        + (f" {_status(exc)}" if _status(exc) else "")
                        + f" after {attempt.retries + 1} attempts: {redact(str(exc))[:200]}"
                    )
                    self._halt = halt
                    raise halt from exc
                delay = self._backoff(attempt.retries, exc)
                attempt.retries += 1
                if on_retry is not None:
                    on_retry()
                if self.cancel.wait(delay):
                    raise exc

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        role: str,
        design_id: str | None = None,
        seed: int | None = None,
        on_chunk: Callable[[str], None] | None = None,
        task: str | None = None,
        prompt_version: str | None = None,
        **params: Any,
    ) -> str:
        """The answer's text. ``task`` (analyze, write, repair, act, design) and ``prompt_version``
        are recorded with the call, so a result stays attributable to the prompt that produced it."""
        self._check_budget()
        litellm = litellm_module()
        kwargs = self._kwargs(model, role, seed, params)
        messages = self._cache_marked(litellm, model, messages)
        started = time.perf_counter()
        attempt = _Attempt()
        try:
            if on_chunk is not None:
                emitted = [False]

                def chunk(text: str) -> None:
                    emitted[0] = True
                    on_chunk(text)

                def on_retry() -> None:
                    if emitted[0]:
                        on_chunk("\n[connection lost; retrying the whole answer]\n")
                        emitted[0] = False

                text, usage = self._retrying(
                    model, lambda: self._stream(litellm, model, messages, chunk, kwargs), attempt, on_retry
                )
            else:
                resp = self._retrying(
                    model, lambda: litellm.completion(model=model, messages=messages, **kwargs), attempt
                )
                text = resp.choices[0].message.content or ""
                usage = getattr(resp, "usage", None)
        except Exception as exc:
            self._record(
                role,
                model,
                design_id,
                None,
                time.perf_counter() - started,
                attempt.retries,
                error=exc,
                task=task,
                prompt_version=prompt_version,
            )
            raise
        self._record(
            role,
            model,
            design_id,
            usage,
            time.perf_counter() - started,
            attempt.retries,
            task=task,
            prompt_version=prompt_version,
        )
        return text

    def _cache_marked(self, litellm: Any, model: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages with Anthropic-style cache markers on their stable prefix (the system message
        and the first user message) for providers that cache only what is marked; litellm passes
        them through. Others (OpenAI, DeepSeek, Gemini) cache prefixes by themselves and get the
        messages unchanged, as do in-process models."""
        if providers.in_process(model) or not self._wants_markers(litellm, model):
            return messages
        out: list[dict[str, Any]] = []
        first_user = True
        for m in messages:
            marked = m.get("role") == "system" or (m.get("role") == "user" and first_user)
            if m.get("role") == "user":
                first_user = False
            content = m.get("content")
            if marked and isinstance(content, str) and content:
                m = {**m, "content": [{"type": "text", "text": content, "cache_control": {"type": "ephemeral"}}]}
            out.append(m)
        return out

    def _wants_markers(self, litellm: Any, model: str) -> bool:
        known = self._markers.get(model)
        if known is None:
            try:
                provider = _provider(litellm, model, self.api_bases.get(model) or self.api_base)
            except Exception:
                provider = ""
            name = model.lower()
            known = provider in CACHE_MARKER_PROVIDERS or (provider in CLAUDE_HOSTS and "claude" in name)
            self._markers[model] = known
        return known

    def _stream(
        self, litellm: Any, model: str, messages: list, on_chunk: Callable[[str], None], kwargs: dict[str, Any]
    ) -> tuple[str, Any]:
        parts: list[str] = []
        usage = None
        stream = litellm.completion(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}, **kwargs
        )
        for chunk in stream:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                parts.append(delta)
                on_chunk(delta)
        return "".join(parts), usage

    def _cost(self, model: str, usage: Any, embedding: bool = False) -> tuple[float, bool]:
        """(cost in USD, whether the price is known). Unknown prices cost 0 and are flagged."""
        if providers.in_process(model):
            return 0.0, True
        if usage is None:
            return 0.0, False
        litellm = litellm_module()
        try:
            if embedding:
                pt, _, _, _ = _usage_numbers(usage)
                p, c = litellm.cost_per_token(model=model, prompt_tokens=pt, completion_tokens=0, call_type="embedding")
            else:
                p, c = litellm.cost_per_token(model=model, usage_object=usage)
            return float(p or 0.0) + float(c or 0.0), True
        except Exception:
            return 0.0, False  # no price known for this model: tokens still count

    def _check_budget(self) -> None:
        b = self.budget
        with self._spent_lock:
            hit = None
            if b.usd is not None and self.spent.cost_usd >= b.usd:
                hit = BudgetExceeded(f"budget of ${b.usd:.2f} reached (${self.spent.cost_usd:.4f} spent)")
            tokens = self.spent.tokens
            if hit is None and b.tokens is not None and tokens >= b.tokens:
                hit = BudgetExceeded(f"budget of {b.tokens} tokens reached ({tokens} used)")
            if hit is not None:
                self._budget_hit = self._budget_hit or hit
                raise hit

    def _record(
        self,
        role: str,
        model: str,
        design_id: str | None,
        usage: Any,
        latency: float,
        retries: int,
        error: BaseException | None = None,
        embedding: bool = False,
        task: str | None = None,
        prompt_version: str | None = None,
    ) -> None:
        pt, ct, rt, cached = _usage_numbers(usage)
        cost, known = self._cost(model, usage, embedding) if error is None else (0.0, True)
        with self._spent_lock:
            for u in [self.spent] + ([self.by_design.setdefault(design_id, Usage())] if design_id else []):
                u.prompt_tokens += pt
                u.completion_tokens += ct
                u.reasoning_tokens += rt
                u.cached_tokens += cached
                u.cost_usd += cost
                u.calls += 1
                u.unknown_cost_calls += 0 if known else 1
        if self.record is not None:
            self.record(
                {
                    "role": role,
                    "model": model,
                    "design_id": design_id,
                    "prompt_tokens": pt,
                    "completion_tokens": ct,
                    "reasoning_tokens": rt,
                    "cached_tokens": cached,
                    "cost_usd": cost,
                    "cost_known": known,
                    "latency_s": latency,
                    "retries": retries,
                    "ok": error is None,
                    "task": task,
                    "prompt_version": prompt_version,
                    "error": None if error is None else redact(f"{type(error).__name__}: {error}")[:500],
                }
            )

    def embed(self, texts: list[str], *, model: str | None = None, design_id: str | None = None) -> list[list[float]]:
        """Embeddings for designs: a litellm model when configured, else a local hashing embedding."""
        if not model:
            from alma_tui.llm.local_embed import hash_embed

            return hash_embed(list(texts))
        self._check_budget()
        litellm = litellm_module()
        kwargs = self._kwargs(model, "embed", None, {})
        kwargs.pop("drop_params", None)
        started = time.perf_counter()
        attempt = _Attempt()
        try:
            resp = self._retrying(model, lambda: litellm.embedding(model=model, input=list(texts), **kwargs), attempt)
        except Exception as exc:
            self._record(
                "embed",
                model,
                design_id,
                None,
                time.perf_counter() - started,
                attempt.retries,
                error=exc,
                embedding=True,
                task="embed",
            )
            raise
        self._record(
            "embed",
            model,
            design_id,
            getattr(resp, "usage", None),
            time.perf_counter() - started,
            attempt.retries,
            embedding=True,
            task="embed",
        )
        out = []
        for item in resp.data:
            vec = item["embedding"] if isinstance(item, dict) else item.embedding
            out.append([float(x) for x in vec])
        return out
