"""Offline stand-ins for the LLMs, registered with litellm as the `offline` provider.

`offline/agent` acts in a domain from the chat it is given; `offline/meta` writes and
repairs memory designs. Both are deterministic for a seed and never touch the
network, so `alma-tui run` is a real search on any machine. Because they sit behind
litellm like any other provider, every code path (prompting, parsing, accounting,
retries) is the one real models take.

The model client does not import this module: :func:`install` registers the
provider in :mod:`alma_tui.llm.providers`, and the client hands it to litellm.
"""

from __future__ import annotations

import functools
import importlib
import re
import time
from collections.abc import Callable
from typing import Any, cast

from alma_tui.agent.prompt import parse_history
from alma_tui.llm.providers import POLICY_KEY, LocalProvider, register

OFFLINE_MODELS = ("offline/agent", "offline/meta")


def _approx_tokens(text: str) -> int:
    """Offline models have no tokenizer; 4 characters per token is the usual estimate."""
    return max(1, len(text) // 4)


Policy = Callable[[list[dict[str, Any]], int], str]


@functools.lru_cache(maxsize=32)
def load_policy(spec: str | None) -> Policy:
    """The acting policy a domain asks for (``Domain.offline_policy`` = "module:function", a
    function ``(messages, seed) -> answer``); the generic text agent
    (:mod:`alma_tui.offline.generic_policy`) when it names none. Imported lazily, like the
    meta agent below, so install() stays light."""
    if not spec:
        from alma_tui.offline.generic_policy import choose_action

        return choose_action
    module, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"offline policy {spec!r} cannot be loaded: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"offline policy {spec!r} is not a function")
    return cast(Policy, fn)


def expand_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat with a folded-history message (``--agent-history summary``) unfolded into the
    exchanges it stands for: an assistant message per action and a user message with the first
    line of what it produced. Policies written against plain chats then see every action they
    took, as they would in a window, with the same (shortened) text a real model gets."""
    out: list[dict[str, Any]] = []
    for m in messages:
        folded = parse_history(str(m.get("content", ""))) if m.get("role") == "user" else None
        if folded is None:
            out.append(m)
            continue
        for action, observation in folded:
            out += [{"role": "assistant", "content": action}, {"role": "user", "content": observation}]
    return out


def offline_answer(model: str, messages: list[dict[str, Any]], seed: int, policy: str | None = None) -> str:
    name = model.split("/", 1)[-1]
    if name == "agent":
        last = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        if "Admissible actions:" not in last:
            return extractive_note(messages)  # a design's own llm() call, not an acting step
        act = load_policy(policy)
        if not getattr(act, "reads_history_summary", False):
            messages = expand_history(messages)
        return act(messages, seed)
    if name == "meta":
        from alma_tui.offline.meta import respond

        return respond(messages, seed)
    raise ValueError(f"unknown offline model {model!r} (known: {', '.join(OFFLINE_MODELS)})")


_EVIDENCE = re.compile(
    r"(take \w+ \d+ from [\w ]+? \d+|(?:clean|heat|cool) \w+ \d+ with \w+ \d+(?: -> [^.\n]*)?|"
    r"(?:you open the|on the|in the) \w+ \d+[^.]*?you see [^.\n]+|put \w+ \d+ in/on \w+ \d+)",
    re.IGNORECASE,
)


def extractive_note(messages: list[dict[str, Any]], limit: int = 12) -> str:
    """What the offline model answers to a design's free-form llm() prompt (summarise, extract
    rules, curate notes): the prompt's own evidence lines (takes, tool uses, sightings, puts),
    deduplicated and in order. A tool use keeps what it produced ("heat mug 1 with microwave 1
    -> The microwave 1 is broken: it does not heat"): an attempt that failed is a pitfall, and a
    note that dropped its outcome would teach it as the way to heat. Deterministic, honest about
    being extractive, and useful to the offline agent, which reads exactly such lines."""
    text = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")
    seen: list[str] = []
    for match in _EVIDENCE.finditer(text):
        line = " ".join(match.group(0).split())
        if line.lower() not in (x.lower() for x in seen):
            seen.append(line)
        if len(seen) >= limit:
            break
    if not seen:
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
        return " ".join(sentences[:3])[:600]
    lesson = _missed(text, seen)
    return "\n".join(f"- {line}" for line in ([lesson] if lesson else []) + seen)


_GOAL_KIND = re.compile(r"goal: put (?:a |an |two )?(?:clean |hot |cool )?([a-z]+)", re.IGNORECASE)
_LOOKED = re.compile(r"(?:you open the|on the|in the) (\w+ \d+)[^.]*?you see ([^.\n]+)", re.IGNORECASE)


_REFLECT = re.compile(r"\b(?:reflect|explain)\b[^.]{0,60}\b(?:fail\w*|mistake)", re.IGNORECASE)


def _missed(text: str, lines: list[str]) -> str:
    """The lesson a prompt asks for when it asks to reflect on a failure ("reflect on why the
    trajectory failed", "explain the mistake"), as a reflection would state it: where the goal's
    object was looked for in vain ("mug not found in drawer 1, cabinet 4"). Empty for any other
    prompt, or when the object was taken after all."""
    m = _GOAL_KIND.search(text)
    if not m or not _REFLECT.search(text):
        return ""
    kind = m.group(1).lower().rstrip("s") if m.group(0).lower().startswith("goal: put two") else m.group(1).lower()
    if any(line.lower().startswith(f"take {kind} ") for line in lines):
        return ""
    places = [p for line in lines for p, listed in _LOOKED.findall(line) if not re.search(rf"\b{kind}", listed.lower())]
    return f"{kind} not found in {', '.join(dict.fromkeys(places))}" if places else ""


def make_handler() -> Any:
    """Build the litellm CustomLLM (imported lazily: litellm costs ~4 s to import)."""
    import litellm
    from litellm.llms.custom_llm import CustomLLM
    from litellm.types.utils import GenericStreamingChunk, ModelResponse, Usage

    class OfflineLLM(CustomLLM):
        def _answer(self, model: str, messages: list[dict], kwargs: dict) -> str:
            params = kwargs.get("optional_params") or {}
            seed = int(params.get("seed", kwargs.get("seed", 0)) or 0)
            metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
            policy = metadata.get(POLICY_KEY) if isinstance(metadata, dict) else None
            return offline_answer(model if "/" in model else f"offline/{model}", messages, seed, policy)

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            text = self._answer(model, messages, kwargs)
            response: ModelResponse = kwargs.get("model_response") or ModelResponse()
            response.choices[0].message.content = text
            response.model = f"offline/{model.split('/')[-1]}"
            prompt_tokens = sum(_approx_tokens(str(m.get("content", ""))) for m in messages)
            response.usage = Usage(  # type: ignore[attr-defined]
                prompt_tokens=prompt_tokens,
                completion_tokens=_approx_tokens(text),
                total_tokens=prompt_tokens + _approx_tokens(text),
            )
            response.created = int(time.time())
            return response

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            return self.completion(model, messages, *args, **kwargs)

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any):
            text = self._answer(model, messages, kwargs)
            lines = text.splitlines(keepends=True) or [""]
            for i, piece in enumerate(lines):
                last = i == len(lines) - 1
                chunk: GenericStreamingChunk = {
                    "text": piece,
                    "is_finished": last,
                    "finish_reason": "stop" if last else "",
                    "usage": {
                        "prompt_tokens": sum(_approx_tokens(str(m.get("content", ""))) for m in messages),
                        "completion_tokens": _approx_tokens(text),
                        "total_tokens": 0,
                    }
                    if last
                    else None,
                    "index": 0,
                    "tool_use": None,
                }
                yield chunk

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any):
            for chunk in self.streaming(model, messages, *args, **kwargs):
                yield chunk

    handler = OfflineLLM()
    for name in OFFLINE_MODELS:
        litellm.register_model(
            {
                name: {
                    "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0,
                    "litellm_provider": "offline",
                    "mode": "chat",
                    "max_tokens": 1_000_000,
                }
            }
        )
    return handler


PROVIDER = LocalProvider("offline", OFFLINE_MODELS, make_handler)


def install() -> None:
    """Make ``offline/agent`` and ``offline/meta`` callable through the model client (idempotent)."""
    register(PROVIDER)
