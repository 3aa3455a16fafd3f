"""Offline stand-ins for the LLMs, registered with litellm as the `offline` provider.

`offline/agent` acts in a domain from the chat it is given; `offline/meta` writes and
repairs memory designs. Both are deterministic for a seed and never touch the
network, so `alma-tui run` is a real search on any machine. Because they sit behind
litellm like any other provider, every code path (prompting, parsing, accounting,
retries) is the one real models take.
"""

from __future__ import annotations

import time
from typing import Any

OFFLINE_MODELS = ("offline/agent", "offline/meta")


def is_offline(model: str) -> bool:
    return model.startswith("offline/")


def _approx_tokens(text: str) -> int:
    """Offline models have no tokenizer; 4 characters per token is the usual estimate."""
    return max(1, len(text) // 4)


def offline_answer(model: str, messages: list[dict[str, Any]], seed: int) -> str:
    name = model.split("/", 1)[-1]
    if name == "agent":
        from alma_tui.agent.offline_policy import choose_action

        return choose_action(messages, seed)
    if name == "meta":
        from alma_tui.llm.offline_meta import respond

        return respond(messages, seed)
    raise ValueError(f"unknown offline model {model!r} (known: {', '.join(OFFLINE_MODELS)})")


def make_handler() -> Any:
    """Build the litellm CustomLLM (imported lazily: litellm costs ~4 s to import)."""
    import litellm
    from litellm import CustomLLM
    from litellm.types.utils import GenericStreamingChunk, ModelResponse, Usage

    class OfflineLLM(CustomLLM):
        def _answer(self, model: str, messages: list[dict], kwargs: dict) -> str:
            params = kwargs.get("optional_params") or {}
            seed = int(params.get("seed", kwargs.get("seed", 0)) or 0)
            return offline_answer(model if "/" in model else f"offline/{model}", messages, seed)

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            text = self._answer(model, messages, kwargs)
            response: ModelResponse = kwargs.get("model_response") or ModelResponse()
            response.choices[0].message.content = text  # type: ignore[union-attr]
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

        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any):  # type: ignore[override]
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

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any):  # type: ignore[override]
            for chunk in self.streaming(model, messages, *args, **kwargs):
                yield chunk

    handler = OfflineLLM()
    for name in OFFLINE_MODELS:
        litellm.register_model(
            {name: {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                    "litellm_provider": "offline", "mode": "chat", "max_tokens": 1_000_000}}
        )
    return handler
