"""The Ray executor (``--executor ray``): children's evaluations, and within each its episode
batches, run as Ray tasks; everything that decides or records stays in the engine.

Why this shape:

- **One gateway for model calls.** Workers never call a model: their acting agent's and
  designs' calls go to the ``Gateway`` actor, which this engine drains (``_pump``) and
  answers with its own hooks (``ModelCalls.hooks``), so the budget, retries, the per-model
  concurrency limit and the accounting (each call once, charged to its design) are the
  local executor's, exactly. Workers therefore never need an API key: a local Ray is started
  with the secret-looking variables removed from its environment, and a job whose
  ``runtime_env`` carries one is refused.
- **Idempotent tasks.** A task writes nothing; the engine stores an evaluation once, from
  the attempt that finished. A worker lost mid-evaluation is retried by Ray (``max_retries``);
  calls its lost attempt made were real, so they stay counted (charged to the design), and
  the retry is an event. A killed engine resumes as with the local executor (the store's
  reconcile/recovery): an evaluation is redone from its design's stored state.
- **Live logs.** Steps, episodes and design log lines come back through the gateway, in
  order, with the worker's node (``@10.0.0.5 [deployment r1 t007] ...``).
- **Fail at start.** Each node that can run tasks gets a cheap probe (can it load the domain,
  isolate a design?); a node that cannot is one line naming it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from alma_tui.engine.context import RunContext
from alma_tui.engine.errors import SearchError
from alma_tui.engine.evaluator import EvalResult, EvalSettings, EvaluationCancelled, EvaluationFailed, Evaluator, Hooks
from alma_tui.engine.executor import Evaluates
from alma_tui.engine.ray_tasks import MAX_RETRIES, Gateway, Job, evaluate_design, probe_node
from alma_tui.sandbox import SandboxLimits
from alma_tui.sandbox.runner import is_secret_name
from alma_tui.sanitize import one_line

__all__ = ["Attempt", "RayExecutor", "start_ray"]

PROBE_TIMEOUT_S = 120.0
END_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


@contextlib.contextmanager
def _without_secrets() -> Iterator[None]:
    """The environment without its secret-looking variables while a local Ray starts: its head
    and workers are started now and keep the environment they were given."""
    saved = {k: v for k, v in os.environ.items() if is_secret_name(k)}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)


def _reachable(address: str) -> str | None:
    """Why nothing answers at a ``host:port`` or ``ray://host:port`` address (None: something
    does, or it is ``auto``): Ray itself would retry an unreachable one for minutes."""
    if address == "auto":
        return None
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return "expected auto, host:port or ray://host:port"
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or exc})"


def start_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` ("auto", "ray://host:10001") or start a local Ray
    (without the keys in its environment). True when this call started it (and so shuts it down)."""
    if ray.is_initialized():  # e.g. the tests' shared local Ray
        return False
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    why = None if address is None else _reachable(address)
    if why is not None:
        raise SearchError(f"--ray-address {address}: {why}")
    try:
        if address is None:
            with _without_secrets():
                ray.init(num_cpus=num_cpus, include_dashboard=False, **common)
        else:
            ray.init(address=address, **common)
    except Exception as exc:
        where = f"--ray-address {address}" if address else "a local Ray"
        raise SearchError(f"{where}: cannot start or join Ray ({one_line(exc, 300)})") from exc
    return True


def _refuse_keys_in_runtime_env() -> None:
    """Keys stay on the driver: a job whose runtime_env would hand one to every worker is refused."""
    try:
        env = ray.get_runtime_context().runtime_env or {}
    except Exception:
        return
    names = sorted(k for k in (env.get("env_vars") or {}) if is_secret_name(k))
    if names:
        raise SearchError(
            f"the Ray job's runtime_env env_vars carry {', '.join(names)}: API keys stay on the driver "
            "(remove them from runtime_env; the engine makes every model call itself)"
        )


@dataclass(frozen=True)
class Attempt:
    """One start of an evaluation task on a worker (a second one means Ray retried it)."""

    key: str
    design_id: str | None
    number: int
    node: str
    pid: int


class RayExecutor:
    """Evaluations as Ray tasks; model calls and events relayed through one gateway."""

    name = "ray"

    def __init__(self, ctx: RunContext, limits: SandboxLimits, owns_ray: bool) -> None:
        self.ctx = ctx
        self.limits = limits
        self.owns_ray = owns_ray
        self.attempts: list[Attempt] = []  # every task start, in order (tests kill workers from it)
        self.episodes_relayed: dict[str, int] = {}  # per evaluation key, attempts together
        self._live: dict[str, Hooks] = {}
        self._at: dict[tuple[str, str], Hooks] = {}  # hooks per (evaluation, node)
        self._ended: dict[str, threading.Event] = {}
        self._closed = threading.Event()
        self._calls = ThreadPoolExecutor(
            max_workers=max(16, 2 * ctx.config.max_concurrent_llm), thread_name_prefix="alma-gw"
        )
        self.gateway = Gateway.options(scheduling_strategy=self._here()).remote()  # type: ignore[attr-defined]
        self._pump_thread = threading.Thread(target=self._pump, name="alma-ray-gateway", daemon=True)
        self._pump_thread.start()

    @classmethod
    def open(cls, ctx: RunContext, limits: SandboxLimits) -> RayExecutor:
        cfg = ctx.config
        owns = start_ray(cfg.ray_address)
        try:
            _refuse_keys_in_runtime_env()
            ex = cls(ctx, limits, owns)
        except BaseException:
            if owns:
                ray.shutdown()
            raise
        try:
            nodes = ex.probe()
        except BaseException:
            ex.close()
            raise
        cpus = int(ray.cluster_resources().get("CPU", 0))  # type: ignore[no-untyped-call]
        ctx.emit(
            "run.executor",
            f"executor: ray, {len(nodes)} node(s) ({', '.join(nodes)}), {cpus} CPUs",
            flush=True,
            nodes=nodes,
        )
        return ex

    @staticmethod
    def _here() -> Any:
        """The gateway beside the engine (soft: a Ray client's driver is not a node)."""
        try:
            return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        except Exception:
            return "DEFAULT"

    def probe(self) -> list[str]:
        """Every node that can run tasks loads the domain and isolates a design, or the run
        stops here with one line naming the node that cannot."""
        cfg = self.ctx.config
        every: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
        nodes = [n for n in every if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        if not nodes:
            raise SearchError("the Ray cluster has no node with CPUs to run evaluations on")
        refs = [
            probe_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                cfg.domain, cfg.allow_weak_sandbox
            )
            for n in nodes
        ]
        try:
            answers = ray.get(refs, timeout=PROBE_TIMEOUT_S)
        except GetTimeoutError as exc:
            raise SearchError(f"Ray nodes did not answer the start probe within {PROBE_TIMEOUT_S:.0f}s") from exc
        except RayError as exc:
            raise SearchError(f"a Ray node failed the start probe: {one_line(exc, 300)}") from exc
        for node, why in answers:
            if why is not None:
                raise SearchError(f"Ray worker {node} cannot evaluate designs: {one_line(why, 400)}")
        return [node for node, _ in answers]

    def bind(self, evaluator: Evaluator) -> Evaluates:
        return _RayEvaluator(self)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._pump_thread.join(timeout=5)
        self._calls.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            ray.kill(self.gateway)
        if self.owns_ray:
            with contextlib.suppress(Exception):
                ray.shutdown()

    # -- one evaluation ---------------------------------------------------------------------------
    def evaluate(self, code: str, settings: EvalSettings, hooks: Hooks, cancel: threading.Event) -> EvalResult:
        key = uuid.uuid4().hex
        self._live[key] = hooks
        self._ended[key] = threading.Event()
        job = Job(key=key, domain=self.ctx.config.domain, limits=self.limits)
        ref = evaluate_design.remote(job, code, settings, self.gateway)
        try:
            while not ray.wait([ref], timeout=0.25)[0]:
                if cancel.is_set():
                    ray.cancel(ref, force=True, recursive=True)
                    raise EvaluationCancelled()
            try:
                outcome = ray.get(ref)
            except RayError as exc:
                raise SearchError(
                    f"{hooks.design_id or 'an'} evaluation failed on Ray after {MAX_RETRIES} retries: "
                    f"{one_line(exc, 300)} (run again to resume)"
                ) from exc
            ray.get(self.gateway.mark.remote(key))  # its last steps and episodes reach the log first
            self._ended[key].wait(END_TIMEOUT_S)
        finally:
            self._live.pop(key, None)
            self._ended.pop(key, None)
            for k in [k for k in list(self._at) if k[0] == key]:
                self._at.pop(k, None)
        if outcome[0] == "failed":
            _, reason, detail, kind = outcome
            raise EvaluationFailed(reason, detail, kind)
        result: EvalResult = outcome[1]
        return result

    # -- the gateway's engine side ----------------------------------------------------------------
    def _pump(self) -> None:
        """Take what workers sent: calls are answered from a pool (they may wait on the
        model client's limits), events are relayed here, in arrival order."""
        while not self._closed.is_set():
            try:
                items = ray.get(self.gateway.take.remote(0.5))
            except Exception as exc:
                if self._closed.is_set():
                    return
                self.ctx.log_error(f"ray gateway: {exc!r}")
                self._closed.wait(0.5)
                continue
            for what, rid, key, kind, payload in items:
                if what == "call":
                    self._calls.submit(self._serve, rid, key, kind, payload)
                else:
                    self._relay(key, kind, *payload)

    def _serve(self, rid: int, key: str, kind: str, payload: Any) -> None:
        hooks = self._live.get(key)
        try:
            if hooks is None:  # a lost attempt's call after its evaluation ended: not made, not counted
                raise RuntimeError("the evaluation this call belongs to is over")
            if kind == "agent" and hooks.agent is not None:
                messages, seed = payload
                value: Any = hooks.agent(messages, seed)
            elif kind == "llm" and hooks.design_llm is not None:
                prompt, system = payload
                value = hooks.design_llm(prompt, system)
            elif kind == "embed" and hooks.design_embed is not None:
                value = hooks.design_embed(payload)
            elif kind == "embed":
                from alma_tui.llm.local_embed import hash_embed

                value = hash_embed(payload)
            else:
                raise RuntimeError(f"no {kind} service for this evaluation")
            ok = True
        except Exception as exc:
            ok, value = False, f"{type(exc).__name__}: {exc}"[:1000]
        with contextlib.suppress(Exception):
            self.gateway.respond.remote(rid, ok, value)

    def _relay(self, key: str, kind: str, payload: Any, node: str) -> None:
        if kind == "end":
            ended = self._ended.get(key)
            if ended is not None:
                ended.set()
            return
        hooks = self._live.get(key)
        if hooks is None:  # a lost attempt's late report
            return
        at = hooks
        if hooks.at is not None and node:  # the design's hooks labelled with the node, made once per node
            at = self._at.get((key, node)) or self._at.setdefault((key, node), hooks.at(node))
        try:
            if kind == "begin":
                number, pid = payload
                self.attempts.append(Attempt(key, hooks.design_id, number, node, pid))
                if number > 1:
                    self.ctx.emit(
                        "evaluation.retry",
                        f"{hooks.design_id or 'evaluation'}: its Ray worker was lost; Ray retries it on {node} "
                        f"(attempt {number}; nothing of the lost attempt is kept but its model calls' cost)",
                        hooks.design_id,
                        flush=True,
                        attempt=number,
                        node=node,
                    )
            elif kind == "step" and at.on_step is not None:
                at.on_step(*payload)
            elif kind == "episode":
                self.episodes_relayed[key] = self.episodes_relayed.get(key, 0) + 1
                if at.on_episode is not None:
                    at.on_episode(payload)
            elif kind == "log" and at.design_log is not None:
                at.design_log(payload)
        except Exception as exc:  # a report must not stop the relay of the others
            self.ctx.log_error(f"ray gateway relay of {kind}: {exc!r}")


class _RayEvaluator:
    """The evaluator's ``evaluate`` through a Ray executor."""

    def __init__(self, executor: RayExecutor) -> None:
        self.executor = executor

    def evaluate(
        self, code: str, settings: EvalSettings, hooks: Hooks | None = None, cancel: threading.Event | None = None
    ) -> EvalResult:
        return self.executor.evaluate(code, settings, hooks or Hooks(), cancel or threading.Event())
