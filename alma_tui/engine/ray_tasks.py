"""What runs on Ray workers, and the gateway actor between them and the engine.

Loaded only with ``--executor ray`` (it imports Ray at the top). The engine side is
``ray_executor.py``; this module holds:

- ``Gateway``: an async actor that relays workers' model calls and events to the engine.
  It makes no model call itself: the engine takes the requests (``take``), makes each call
  through its own model client (budget, retries, per-model concurrency, accounting charged
  to the design) and answers (``respond``). A worker therefore never needs an API key.
- ``evaluate_design``: one child's evaluation (the same ``Evaluator``: its design runs in
  the same limited sandbox child, here on the worker), whose phases hand their episodes
  to ``play_batch`` tasks.
- ``probe_node``: a cheap task pinned to each node at start: can it load the domain and
  isolate a design?

Tasks are idempotent: they write nothing; the engine stores an evaluation once, from the
result of the attempt that finished, so Ray may retry one lost with its worker.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ray

from alma_tui.design_api import Episode
from alma_tui.domains import DomainError, get_domain
from alma_tui.domains.base import Domain, TaskSpec
from alma_tui.engine.evaluator import EpisodeRecord, EvalResult, EvalSettings, EvaluationFailed, Evaluator, Hooks
from alma_tui.sandbox import SandboxLimits, SandboxUnavailable, require

#: retries of a task whose worker was lost (Ray's own retries; the tasks are idempotent)
MAX_RETRIES = 3


@dataclass(frozen=True)
class Job:
    """What a worker needs to evaluate a design: never a key, never a handle to the store."""

    key: str  # the evaluation's relay key at the gateway
    domain: str  # a domain name (or path.py:Class, present on the workers)
    limits: SandboxLimits


class GatewayCallFailed(RuntimeError):
    """A model call the engine made for a worker failed (the episode counts it as reward 0)."""


@ray.remote(num_cpus=0, max_restarts=0)
class Gateway:
    """Workers' model calls and events, queued for the engine in arrival order."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._attempts: dict[str, int] = {}
        self._next = 0

    async def call(self, key: str, kind: str, payload: Any, events: list[tuple[str, Any, str]]) -> tuple[bool, Any]:
        """A model call for evaluation ``key``, after the events its worker gathered since its
        last call (so they reach the engine in order, in the same round trip); waits for the
        engine's answer (ok, value)."""
        self.events(key, events)
        self._next += 1
        rid = self._next
        fut: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        self._queue.put_nowait(("call", rid, key, kind, payload))
        try:
            return await fut
        finally:
            self._waiting.pop(rid, None)

    def events(self, key: str, events: list[tuple[str, Any, str]]) -> None:
        """Steps, episodes and a design's log lines, (kind, payload, node) each: relayed in order."""
        for kind, payload, node in events:
            self._queue.put_nowait(("event", 0, key, kind, (payload, node)))

    def begin(self, key: str, node: str, pid: int) -> int:
        """An attempt of evaluation ``key`` starts on ``node``; returns its number (1, 2 after a retry)."""
        n = self._attempts.get(key, 0) + 1
        self._attempts[key] = n
        self._queue.put_nowait(("event", 0, key, "begin", ((n, pid), node)))
        return n

    def mark(self, key: str) -> None:
        """After every event of ``key`` so far: the engine has relayed them all when it reads this."""
        self._queue.put_nowait(("event", 0, key, "end", (None, "")))

    async def take(self, timeout_s: float = 0.5, limit: int = 512) -> list[tuple[Any, ...]]:
        """What arrived since the last take (waits up to ``timeout_s`` for the first)."""
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return []
        out = [first]
        while len(out) < limit and not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def respond(self, rid: int, ok: bool, value: Any) -> None:
        fut = self._waiting.get(rid)
        if fut is not None and not fut.done():
            fut.set_result((ok, value))


def node_label() -> str:
    """The worker's node as the log shows it (its address; the host name when Ray has none)."""
    try:
        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    except Exception:
        return socket.gethostname()


_domains: dict[str, Domain] = {}


def _domain(name: str) -> Domain:
    """The domain, loaded once per worker process (prepared as the engine prepared it)."""
    if name not in _domains:
        from alma_tui.domains import prepare_domain

        domain = get_domain(name)
        prepare_domain(domain, lambda _line: None)
        _domains[name] = domain
    return _domains[name]


def _no_agent(_messages: list[dict[str, Any]], _seed: int) -> str:
    raise EvaluationFailed("no acting agent on the worker (the gateway's is always given)")


class Relay:
    """Sends a worker's events to the engine: gathered here and carried by the next model call
    (each agent step makes one, so the log stays live), or by ``flush`` (each episode's end and
    the task's), always in a call the worker waits for: nothing is in flight when a task returns."""

    def __init__(self, gateway: Any, key: str, node: str) -> None:
        self.gateway, self.key, self.node = gateway, key, node
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Any, str]] = []

    def add(self, kind: str, payload: Any) -> None:
        with self._lock:
            self._pending.append((kind, payload, self.node))

    def take(self) -> list[tuple[str, Any, str]]:
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def flush(self) -> None:
        events = self.take()
        if events:
            ray.get(self.gateway.events.remote(self.key, events))

    def call(self, kind: str, payload: Any) -> Any:
        ok, value = ray.get(self.gateway.call.remote(self.key, kind, payload, self.take()))
        if not ok:
            raise GatewayCallFailed(value)
        return value


def relay_hooks(relay: Relay) -> Hooks:
    """Hooks that send everything to the engine through the gateway: the acting agent's and
    the design's model calls (answered) and the steps, episodes and log lines (in order)."""
    call = relay.call

    def on_step(phase: str, run: int, task_id: str, i: int, action: str, obs: str, reward: float) -> None:
        relay.add("step", (phase, run, task_id, i, action, obs, reward))

    def on_episode(rec: EpisodeRecord) -> None:
        relay.add("episode", rec)
        relay.flush()

    def design_log(line: str) -> None:
        relay.add("log", line)

    def design_llm(prompt: str, system: str | None) -> str:
        return str(call("llm", (prompt, system)))

    def design_embed(texts: list[str]) -> list[list[float]]:
        return list(call("embed", texts))

    def agent(messages: list[dict[str, Any]], seed: int) -> str:
        return str(call("agent", (messages, seed)))

    return Hooks(
        on_step=on_step,
        on_episode=on_episode,
        design_log=design_log,
        design_llm=design_llm,
        design_embed=design_embed,
        agent=agent,
    )


Played = list[tuple[EpisodeRecord, Episode | None]]


@ray.remote(num_cpus=1, max_retries=MAX_RETRIES)
def play_batch(
    job: Job, phase: str, run: int, items: list[tuple[TaskSpec, str]], settings: EvalSettings, gateway: Any
) -> Played:
    """A batch of one phase's episodes (memory texts already retrieved), run at once in threads."""
    relay = Relay(gateway, job.key, node_label())
    evaluator = Evaluator(_domain(job.domain), _no_agent, limits=job.limits)
    hooks = relay_hooks(relay)

    def one(item: tuple[TaskSpec, str]) -> tuple[EpisodeRecord, Episode | None]:
        task, memory = item
        return evaluator.play(phase, run, task, memory, settings, hooks, lambda: False)

    try:
        if len(items) <= 1:
            return [one(i) for i in items]
        with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="alma-batch") as pool:
            return list(pool.map(one, items))
    finally:
        relay.flush()


def _batches(job: Job, gateway: Any) -> Callable[[str, int, list[tuple[TaskSpec, str]], EvalSettings], Played]:
    def run_batches(phase: str, run: int, items: list[tuple[TaskSpec, str]], settings: EvalSettings) -> Played:
        size = max(1, settings.concurrency)
        refs = [
            play_batch.remote(job, phase, run, items[i : i + size], settings, gateway)
            for i in range(0, len(items), size)
        ]
        out: Played = []
        for part in ray.get(refs):
            out += part
        return out

    return run_batches


#: what an evaluation task returns: ("ok", result) or ("failed", reason, detail, kind)
Outcome = tuple[Any, ...]


@ray.remote(num_cpus=1, max_retries=MAX_RETRIES)
def evaluate_design(job: Job, code: str, settings: EvalSettings, gateway: Any) -> Outcome:
    """One child's evaluation on a worker; its episode batches are tasks of their own."""
    relay = Relay(gateway, job.key, node_label())
    ray.get(gateway.begin.remote(job.key, relay.node, os.getpid()))
    evaluator = Evaluator(_domain(job.domain), _no_agent, limits=job.limits, batches=_batches(job, gateway))
    try:
        result: EvalResult = evaluator.evaluate(code, settings, relay_hooks(relay))
    except EvaluationFailed as exc:  # the design's failure: an answer, not a lost task
        return ("failed", exc.reason, exc.detail, exc.kind)
    finally:
        relay.flush()
    return ("ok", result)


@ray.remote(num_cpus=0, max_retries=0)
def probe_node(domain: str, allow_weak_sandbox: bool) -> tuple[str, str | None]:
    """(node, None) when this node can evaluate designs on ``domain``, else (node, why)."""
    node = node_label()
    try:
        loaded = get_domain(domain)
        missing = loaded.requirements() if hasattr(loaded, "requirements") else None
        if missing:
            return node, f"domain {domain!r} is not usable there: {missing}"
    except DomainError as exc:
        return node, str(exc)
    try:
        require(allow_weak_sandbox)
    except SandboxUnavailable as exc:
        return node, str(exc)
    return node, None


@ray.remote(num_cpus=0, max_retries=0)
def secret_names_seen() -> list[str]:
    """The secret-looking variables in a worker's environment (a check of the 'no keys on
    workers' rule; the design's sandbox child never has any either way)."""
    from alma_tui.sandbox.runner import is_secret_name

    return sorted(k for k in os.environ if is_secret_name(k))
