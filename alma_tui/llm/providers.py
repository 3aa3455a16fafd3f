"""In-process model providers: registered by the application, looked up by the model client.

Most models are litellm strings served elsewhere (a cloud API, ollama, a vLLM server).
A few are served inside this process as litellm custom providers: the deterministic
offline stand-ins ``offline/meta`` and ``offline/agent`` (:mod:`alma_tui.offline`).
The model client must not import them: the offline meta agent reads the engine's
prompts, so it sits above the engine, and the client sits below it. Instead the
application registers them here at start-up (``alma_tui.offline.install()``, called
by the CLI and by the tests' conftest) and :mod:`alma_tui.llm.client` hands every
registered provider to litellm when it loads it.

An in-process model needs no key and no network, has no price and is not retried.
This module is import-light (no litellm): registering costs nothing at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["LocalProvider", "in_process", "lookup", "register", "registered"]


@dataclass(frozen=True)
class LocalProvider:
    """A litellm custom provider that runs in this process."""

    name: str  # litellm provider prefix: the part of "offline/meta" before the slash
    models: tuple[str, ...]  # the model strings it serves, e.g. ("offline/agent", "offline/meta")
    make_handler: Callable[[], Any]  # builds its litellm ``CustomLLM``; called once, after litellm is imported


_lock = threading.Lock()
_providers: dict[str, LocalProvider] = {}


def register(provider: LocalProvider) -> None:
    """Make ``provider``'s models callable through the model client (registering again replaces it)."""
    with _lock:
        _providers[provider.name] = provider


def registered() -> list[LocalProvider]:
    with _lock:
        return list(_providers.values())


def lookup(model: str) -> LocalProvider | None:
    """The in-process provider whose prefix ``model`` carries, or None for any other model."""
    prefix, slash, _ = model.partition("/")
    if not slash:
        return None
    with _lock:
        return _providers.get(prefix)


def in_process(model: str) -> bool:
    return lookup(model) is not None


# litellm hands call metadata to in-process providers unchanged: the offline acting agent reads
# the domain's own offline policy ("module:function") from here; real models never see it.
POLICY_KEY = "alma_offline_policy"


def policy_params(model: str, domain: object) -> dict[str, Any]:
    """Extra call arguments telling an in-process (offline) acting model which policy the domain
    asks for (``Domain.offline_policy``); empty for real models and for domains without one."""
    spec = getattr(domain, "offline_policy", None)
    if spec and in_process(model):
        return {"metadata": {POLICY_KEY: str(spec)}}
    return {}
