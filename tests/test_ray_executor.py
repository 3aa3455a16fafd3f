"""The Ray executor (``--executor ray``): same archive as the local executor, worker loss
survived, no key on workers, and no Ray import without the flag.

One local Ray (``ray.init(num_cpus=2)``, offline) is shared by the module; the searches are
tiny (two seeds and one iteration of two children on 2 + 2 tasks). Skipped, with the reason,
where Ray is not installed (``pip install ".[ray]"``); CI installs it (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--collection", "2", "--deployment", "2", "--runs", "2", "--concurrency", "2"]
SECRET = "sk-test-h15-must-not-reach-workers"


def test_nothing_imports_ray_without_the_flag() -> None:
    """Every module of the package but the two Ray ones, and a local executor opened: no Ray."""
    code = r"""
import importlib, json, pkgutil, sys
import alma_tui
skip = {"alma_tui.engine.ray_executor", "alma_tui.engine.ray_tasks", "alma_tui.__main__"}
for m in pkgutil.walk_packages(alma_tui.__path__, "alma_tui."):
    if m.name not in skip and not m.name.startswith("alma_tui.tui"):
        importlib.import_module(m.name)
from alma_tui.engine.config import SearchConfig
from alma_tui.engine.executor import open_executor
ex = open_executor(type("Ctx", (), {"config": SearchConfig()})(), None)
print(json.dumps([ex.name, sorted(n for n in sys.modules if n == "ray" or n.startswith("ray."))]))
"""
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert cp.returncode == 0, cp.stderr[-3000:]
    name, loaded = json.loads(cp.stdout.strip().splitlines()[-1])
    assert name == "local" and loaded == []


def test_without_ray_the_flag_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
        "from alma_tui.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    argv = ["run", "--headless", "--repo", str(tmp_path / "r"), "--iterations", "0", "--executor", "ray"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    cp = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=180, env=env)
    assert cp.returncode == 1
    last = cp.stderr.strip().splitlines()[-1]
    assert last.startswith("alma-tui: error: --executor ray needs Ray, which is not installed here")
    assert last.endswith('pip install "alma-tui[ray]"') and "Traceback" not in cp.stderr


try:
    import ray
except ImportError:  # the import test above still runs
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason='Ray is not installed (pip install ".[ray]"); CI installs it')


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module, started as the engine starts one, with a key set in this
    (the driver's) environment: it must not reach the workers."""
    from alma_tui.engine.ray_executor import start_ray

    os.environ["OPENAI_API_KEY"] = SECRET
    try:
        assert start_ray(None, num_cpus=2)
        yield
    finally:
        os.environ.pop("OPENAI_API_KEY", None)
        ray.shutdown()


def _config(repo: Path, iterations: int, executor: str) -> Any:
    from alma_tui.cli import build_parser, config_from_args

    args = ["run", "--repo", str(repo), "--iterations", str(iterations), "--executor", executor, *SMALL]
    return config_from_args(build_parser().parse_args(args))


def _archive(search: Any) -> list[tuple[str, str | None, float | None, str, list[float], float | None]]:
    rows = []
    for d in search.store.designs():
        rows.append((d.id, d.parent_id, d.score, d.status, json.loads(d.run_scores_json or "[]"), d.test_score))
    return rows


def _spend(search: Any) -> tuple[int, int]:
    from alma_tui.llm.accounting import run_totals

    t = run_totals(search.store)
    return int(t["calls"]), int(t["prompt_tokens"]) + int(t["completion_tokens"])


def _run(repo: Path, iterations: int, executor: str, during: Any = None) -> dict[str, Any]:
    from alma_tui.engine.search import Search

    search = Search(_config(repo, iterations, executor))
    search.open()
    watcher = None
    if during is not None:
        watcher = threading.Thread(target=during, args=(search,), daemon=True)
        watcher.start()
    try:
        status = search.run()
        search.store.flush_events()
        out = {"status": status, "archive": _archive(search), "spend": _spend(search), "store": search.store}
        out["executor"] = search.engine.executor
        return out
    finally:
        search.close()
        if watcher is not None:
            watcher.join(timeout=5)


@pytest.fixture(scope="module")
def local_archive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("local") / "designs_repo", 1, "local")


@needs_ray
def test_a_search_through_ray_finds_the_local_archive(
    local_ray: None, local_archive: dict[str, Any], tmp_path: Path
) -> None:
    """Same seed, same archive (ids, parents, scores, run scores, held-out scores), and the
    same model calls and tokens: every call counted once, whichever executor ran it."""
    from sqlmodel import col, select

    from alma_tui.store.models import Event

    out = _run(tmp_path / "designs_repo", 1, "ray")
    assert out["status"] == local_archive["status"] == "done"
    assert [r[0] for r in out["archive"]] == ["d001", "d002", "d003", "d004"]
    assert out["archive"] == local_archive["archive"]
    assert out["spend"] == local_archive["spend"]
    with out["store"].session() as s:
        events = list(s.exec(select(Event).order_by(col(Event.id))).all())
    steps = [e for e in events if e.kind == "episode.step"]
    assert steps and all(e.message.startswith("@") and json.loads(e.data_json)["node"] for e in steps)
    assert any(e.kind == "run.executor" and "executor: ray" in e.message for e in events)


@needs_ray
def test_a_worker_killed_mid_evaluation_is_retried_and_counted_once(
    local_ray: None, local_archive: dict[str, Any], tmp_path: Path
) -> None:
    """SIGKILL the worker evaluating d002 once its first episodes are back: Ray retries the
    task, the run completes, and the archive is the local one (one evaluation, its episodes once)."""
    from sqlmodel import select

    from alma_tui.store.models import Episode, Evaluation, Event

    killed: list[int] = []

    def kill_d002(search: Any) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            ex = search.engine.executor
            first = [a for a in ex.attempts if a.design_id == "d002" and a.number == 1]
            if first and ex.episodes_relayed.get(first[0].key, 0) >= 1:
                os.kill(first[0].pid, signal.SIGKILL)
                killed.append(first[0].pid)
            time.sleep(0.02)

    out = _run(tmp_path / "designs_repo", 0, "ray", during=kill_d002)
    assert killed, "the evaluation of d002 was never seen running"
    assert out["status"] == "done"
    attempts = [a.number for a in out["executor"].attempts if a.design_id == "d002"]
    assert attempts[:2] == [1, 2]
    local = {r[0]: r for r in local_archive["archive"]}
    for row in out["archive"]:  # d001 and d002: the scores the local executor gave them
        assert row[:5] == local[row[0]][:5]
    with out["store"].session() as s:
        for did in ("d001", "d002"):
            evals = s.exec(select(Evaluation).where(Evaluation.design_id == did, Evaluation.kind == "search")).all()
            assert [e.status for e in evals] == ["done"]
            episodes = s.exec(select(Episode).where(Episode.evaluation_id == evals[0].id)).all()
            assert len(episodes) == 2 + 2 * 2  # collection + deployment x runs, none twice
        retry = s.exec(select(Event).where(Event.kind == "evaluation.retry")).all()
    assert [e.design_id for e in retry] == ["d002"]


@needs_ray
def test_no_key_reaches_a_worker_or_a_design_on_it(local_ray: None) -> None:
    """The key set in the driver's environment: absent from the workers' environment, and a
    design evaluated on a worker (in its sandbox) sees none either."""
    from alma_tui.domains import get_domain
    from alma_tui.engine.config import SearchConfig
    from alma_tui.engine.evaluator import EvalSettings, Evaluator, Hooks
    from alma_tui.engine.ray_executor import RayExecutor
    from alma_tui.engine.ray_tasks import secret_names_seen
    from alma_tui.llm.client import LLMClient
    from alma_tui.sandbox import SandboxLimits, require

    assert os.environ["OPENAI_API_KEY"] == SECRET  # the driver has it
    assert ray.get(secret_names_seen.remote()) == []
    snooper = '''
import os
from alma_tui.design_api import MemoryDesign


class Snoop(MemoryDesign):
    """Reports every environment it can read."""

    def update(self, episode):
        pass

    def retrieve(self, query):
        return ""

    def snapshot(self):
        seen = dict(os.environ)
        try:
            with open("/proc/self/environ", "rb") as fh:
                seen["/proc/self/environ"] = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            seen["/proc/self/environ"] = str(exc)
        return {"env": seen}
'''
    cfg = SearchConfig(executor="ray")
    ctx = SimpleNamespace(config=cfg, emit=lambda *a, **k: None, log_error=lambda text: None)
    limits = SandboxLimits(isolate=require(True).strong)
    ex = RayExecutor(ctx, limits, owns_ray=False)  # type: ignore[arg-type]
    try:
        llm = LLMClient()
        hooks = Hooks(agent=lambda m, s: llm.complete(m, model="offline/agent", role="agent", seed=s))
        domain = get_domain("household")
        result = ex.bind(Evaluator(domain, hooks.agent)).evaluate(  # type: ignore[arg-type]
            snooper, EvalSettings(n_collection=1, n_deployment=1, runs=1), hooks
        )
    finally:
        ex.close()
    seen = json.dumps(result.memory)
    assert "PATH" in result.memory["env"]  # the design did read its environment
    assert SECRET not in seen and "OPENAI_API_KEY" not in seen


@needs_ray
def test_a_node_that_cannot_load_the_domain_stops_the_start_in_one_line(local_ray: None) -> None:
    from alma_tui.engine.config import SearchConfig
    from alma_tui.engine.errors import SearchError
    from alma_tui.engine.ray_executor import RayExecutor
    from alma_tui.sandbox import SandboxLimits

    cfg = SearchConfig(executor="ray", domain="no-such-domain")
    ctx = SimpleNamespace(config=cfg, emit=lambda *a, **k: None, log_error=lambda text: None)
    ex = RayExecutor(ctx, SandboxLimits(), owns_ray=False)  # type: ignore[arg-type]
    try:
        with pytest.raises(SearchError) as err:
            ex.probe()
    finally:
        ex.close()
    message = str(err.value)
    assert message.startswith("Ray worker ") and "cannot evaluate designs: unknown domain 'no-such-domain'" in message
    assert "\n" not in message


@needs_ray
def test_a_job_whose_runtime_env_carries_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from alma_tui.engine import ray_executor
    from alma_tui.engine.errors import SearchError

    job = SimpleNamespace(runtime_env={"env_vars": {"OPENAI_API_KEY": "sk-x", "MY_FLAG": "1"}})
    monkeypatch.setattr(ray_executor.ray, "get_runtime_context", lambda: job)
    with pytest.raises(SearchError, match="runtime_env env_vars carry OPENAI_API_KEY: API keys stay on the driver"):
        ray_executor._refuse_keys_in_runtime_env()
    job.runtime_env = {"env_vars": {"MY_FLAG": "1"}}
    ray_executor._refuse_keys_in_runtime_env()  # nothing secret: accepted


@needs_ray
def test_an_address_where_nothing_answers_is_one_line_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray itself would retry an unreachable cluster for minutes."""
    from alma_tui.engine import ray_executor
    from alma_tui.engine.errors import SearchError

    monkeypatch.setattr(ray_executor.ray, "is_initialized", lambda: False)
    for address, why in [
        ("127.0.0.1:1", "--ray-address 127.0.0.1:1: nothing answers at 127.0.0.1:1"),
        ("ray://127.0.0.1:1", "--ray-address ray://127.0.0.1:1: nothing answers at 127.0.0.1:1"),
        ("head-node", "--ray-address head-node: expected auto, host:port or ray://host:port"),
    ]:
        t0 = time.monotonic()
        with pytest.raises(SearchError, match=why):
            ray_executor.start_ray(address)
        assert time.monotonic() - t0 < 10
