"""The sandbox contains designs that fail in every way we can think of, quickly."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time

import pytest

from alma_tui.design_api import Episode, Query, Step
from alma_tui.sandbox import (
    DesignFailure,
    SandboxedDesign,
    SandboxLimits,
    scrub_env,
    validate_design,
)

FAST = SandboxLimits(call_timeout_s=5.0, start_timeout_s=10.0, memory_mb=512)


def design(body: str, imports: str = "") -> str:
    """A design module whose class body is ``body`` (indented for you)."""
    return (
        "from alma_tui.design_api import MemoryDesign\n"
        + textwrap.dedent(imports)
        + "\nclass D(MemoryDesign):\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )


def episode(task: str = "t1", goal: str = "put a mug in the sink", obs: str = "kitchen") -> Episode:
    return Episode(
        domain="household",
        task_id=task,
        goal=goal,
        initial_observation=obs,
        steps=[Step("you see a mug", "take mug", 0.0), Step("done", "put mug in sink", 1.0)],
        success=True,
        score=1.0,
        step_count=2,
    )


def query(goal: str = "put a mug in the sink") -> Query:
    return Query(goal=goal, observation="kitchen", domain="household", task_id="q1")


def assert_gone(pid: int | None) -> None:
    """The child is neither running nor a zombie (it was reaped)."""
    assert pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, recursively (the confined worker lives below a supervisor)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(k) for k in fh.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in descendants(k)]


GOOD = design(
    """
    def __init__(self, services):
        super().__init__(services)
        self.notes = []

    def update(self, episode):
        print("updating", episode.task_id)          # must go to the log, not the protocol
        summary = self.services.llm("summarise: " + episode.goal, "be brief")
        vec = self.services.embed([episode.goal])[0]
        self.services.log(f"stored {episode.task_id}")
        self.notes.append({"goal": episode.goal, "summary": summary, "dim": len(vec),
                           "steps": len(episode.steps)})

    def retrieve(self, query):
        print("no newline at the end", end="")
        return "\\n".join(n["summary"] for n in self.notes if n["goal"] == query.goal)

    def snapshot(self):
        return {"notes": self.notes}
    """
)


def test_round_trip_brokers_services_and_captures_print() -> None:
    logs: list[str] = []
    prompts: list[tuple[str, str | None]] = []

    def llm(prompt: str, system: str | None) -> str:
        prompts.append((prompt, system))
        return "SUMMARY:" + prompt[-4:]

    with SandboxedDesign(
        GOOD, llm=llm, embed=lambda ts: [[0.5, 0.25, 1.0] for _ in ts], log=logs.append, limits=FAST
    ) as d:
        assert d.alive and d.class_name == "D"
        d.update(episode())
        d.update(episode("t2", goal="heat an egg").to_dict())  # dicts are accepted too
        assert d.retrieve(query()) == "SUMMARY:sink"
        assert d.retrieve({"goal": "nothing", "observation": ""}) == ""
        snap = d.snapshot()
        assert snap["notes"][0] == {"goal": "put a mug in the sink", "summary": "SUMMARY:sink", "dim": 3, "steps": 2}
        stats = d.stats
        pid = d.pid
    assert prompts[0] == ("summarise: put a mug in the sink", "be brief")
    assert "[stdout] updating t1" in logs and "stored t2" in logs
    assert "[stdout] no newline at the end" in logs
    assert stats["calls"] == {"update": 2, "retrieve": 2, "snapshot": 1}
    assert stats["service_calls"]["llm"] == 2 and stats["service_calls"]["embed"] == 2
    assert not d.alive
    assert_gone(pid)


def test_large_messages_and_retrieve_cap() -> None:
    code = design(
        """
        def update(self, episode):
            self.obs = episode.initial_observation

        def retrieve(self, query):
            return self.obs * 2
        """
    )
    limits = SandboxLimits(call_timeout_s=5, max_retrieve_chars=30_000)
    with SandboxedDesign(code, limits=limits) as d:
        d.update(episode(obs="x" * (1 << 20)))  # 1 MB episode
        out = d.retrieve(query())
    assert out.startswith("x" * 30_000) and "memory truncated" in out
    assert len(out) < 30_100


def test_service_errors_reach_the_design_as_runtime_error() -> None:
    code = design(
        """
        def retrieve(self, query):
            try:
                self.services.llm("x")
            except RuntimeError as exc:
                return "caught: " + str(exc)
            return "no error"
        """
    )

    def llm(prompt: str, system: str | None) -> str:
        raise ValueError("budget exhausted")

    with SandboxedDesign(code, llm=llm, limits=FAST) as d:
        assert d.retrieve(query()) == "caught: llm() service failed: ValueError: budget exhausted"
    # Without an llm callback the design gets design_api's own message.
    with SandboxedDesign(code, limits=FAST) as d:
        assert "no llm service is available" in d.retrieve(query())


@pytest.mark.parametrize("method", ["update", "retrieve"])
def test_exception_in_design_is_an_error_with_its_traceback(method: str) -> None:
    code = design(
        """
        def update(self, episode):
            {}["mug"]

        def retrieve(self, query):
            return {}["mug"]
        """
    )
    d = SandboxedDesign(code, limits=FAST)
    d.start()
    with pytest.raises(DesignFailure) as info:
        d.update(episode()) if method == "update" else d.retrieve(query())
    f = info.value
    assert f.kind == "error"
    assert f.reason.startswith(f"{method}() raised KeyError: 'mug'"), f.reason
    assert "design.py" in f.reason
    assert 'File "design.py"' in f.detail and "worker.py" not in f.detail
    assert not d.alive
    pid = d.pid
    # A dead design raises immediately, with the original reason.
    t0 = time.monotonic()
    with pytest.raises(DesignFailure) as again:
        d.snapshot()
    assert time.monotonic() - t0 < 0.1
    assert again.value.kind == "error" and "KeyError" in again.value.reason
    d.close()
    assert_gone(pid)


def test_syntax_error_is_invalid() -> None:
    d = SandboxedDesign("class D(:\n  pass\n", limits=FAST)
    with pytest.raises(DesignFailure) as info:
        d.start()
    assert info.value.kind == "invalid"
    assert d._res.tmpdir is None  # a failed start frees everything without close()
    assert_gone(d.pid)
    assert "syntax error at design.py line 1" in info.value.reason


def test_missing_or_ambiguous_subclass_is_invalid() -> None:
    with pytest.raises(DesignFailure) as info:
        SandboxedDesign("from alma_tui.design_api import MemoryDesign\nX = 1\n", limits=FAST).start()
    assert info.value.kind == "invalid" and "no subclass of MemoryDesign" in info.value.reason

    two = "from alma_tui.design_api import MemoryDesign\nclass A(MemoryDesign): pass\nclass B(MemoryDesign): pass\n"
    with pytest.raises(DesignFailure) as info:
        SandboxedDesign(two, limits=FAST).start()
    assert info.value.kind == "invalid" and "(A, B)" in info.value.reason

    # A helper base plus one concrete subclass is not ambiguous.
    chain = "from alma_tui.design_api import MemoryDesign\nclass Base(MemoryDesign): pass\nclass Leaf(Base): pass\n"
    with SandboxedDesign(chain, limits=FAST) as d:
        assert d.class_name == "Leaf"


def test_import_error_and_init_error_are_errors() -> None:
    with pytest.raises(DesignFailure) as info:
        SandboxedDesign(design("pass", imports="import torch_not_here\n"), limits=FAST).start()
    assert info.value.kind == "error"
    assert info.value.reason.startswith("loading the design raised ModuleNotFoundError")

    bad_init = design("def __init__(self, services):\n    raise ValueError('nope')\n")
    with pytest.raises(DesignFailure) as info:
        SandboxedDesign(bad_init, limits=FAST).start()
    assert info.value.reason.startswith("D.__init__() raised ValueError: nope")


def test_hang_times_out_and_the_process_group_is_killed() -> None:
    code = design("def retrieve(self, query):\n    while True:\n        pass\n")
    d = SandboxedDesign(code, limits=SandboxLimits(call_timeout_s=0.5))
    d.start()
    pid = d.pid
    t0 = time.monotonic()
    with pytest.raises(DesignFailure) as info:
        d.retrieve(query())
    assert time.monotonic() - t0 < 3
    assert info.value.kind == "timeout"
    assert info.value.reason == "retrieve() exceeded 0.5s and was killed"
    assert_gone(pid)  # killed and reaped even before close()
    d.close()


def test_slow_llm_callback_does_not_count_against_the_call_timeout() -> None:
    code = design("def retrieve(self, query):\n    return self.services.llm('x')\n")

    def slow_llm(prompt: str, system: str | None) -> str:
        time.sleep(0.8)
        return "ok"

    with SandboxedDesign(code, llm=slow_llm, limits=SandboxLimits(call_timeout_s=0.5)) as d:
        assert d.retrieve(query()) == "ok"


def test_memory_blow_up_is_memory() -> None:
    code = design("def update(self, episode):\n    self.x = bytearray(4 * 1024 ** 3)\n")
    d = SandboxedDesign(code, limits=SandboxLimits(memory_mb=256, call_timeout_s=5))
    d.start()
    with pytest.raises(DesignFailure) as info:
        d.update(episode())
    assert info.value.kind == "memory"
    assert info.value.reason == "ran out of memory in update() (limit 256 MB)"
    d.close()

    code = design("def update(self, episode):\n    self.x = [0] * (4 * 1024 ** 3 // 8)\n")
    with pytest.raises(DesignFailure) as info, SandboxedDesign(code, limits=SandboxLimits(memory_mb=256)) as d:
        d.update(episode())
    assert info.value.kind == "memory"


def test_os_exit_is_a_crash() -> None:
    code = design("def update(self, episode):\n    import os\n    os._exit(3)\n")
    d = SandboxedDesign(code, limits=FAST)
    d.start()
    pid = d.pid
    with pytest.raises(DesignFailure) as info:
        d.update(episode())
    assert info.value.kind == "crash"
    assert info.value.reason == "the design process exited with code 3 during update()"
    assert_gone(pid)
    d.close()


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-123")
    monkeypatch.setenv("SOME_TOKEN", "tok")
    monkeypatch.setenv("OPENAI_ORG", "org")
    monkeypatch.setenv("AWS_REGION", "eu")
    code = design(
        """
        def retrieve(self, query):
            import json, os
            return json.dumps(dict(os.environ))
        """
    )
    import json

    with SandboxedDesign(code, limits=FAST) as d:
        env = json.loads(d.retrieve(query()))
        tmp = d._res.tmpdir
    for name in ("FAKE_API_KEY", "SOME_TOKEN", "OPENAI_ORG", "AWS_REGION"):
        assert name not in env
    assert env["HOME"] == ("/tmp" if FAST.isolate else tmp) and env["PYTHONHASHSEED"] == "0"
    assert not any("sk-123" in v for v in env.values())
    assert tmp is not None and not os.path.exists(tmp)  # temp dir removed on close
    assert "X_PASSWORD" not in scrub_env({"X_PASSWORD": "p", "PATH": "/bin"}, home="/tmp")


ESCAPES = {
    "subprocess": "import subprocess\nsubprocess.run(['true'])",
    "os.system": "import os\nos.system('true')",
    "fork": "import os\nos.fork()",
    "posix_spawn": "import os\nos.posix_spawn('/bin/true', ['true'], {})",
    "multiprocessing": "import multiprocessing as mp\np = mp.Process(target=print)\np.start()",
    "socket": "import socket\nsocket.create_connection(('127.0.0.1', 9))",
    "kill parent": "import os\nos.kill(os.getppid(), 0)",
    "write outside": "open('/usr/alma-sandbox-escape.txt', 'w').write('x')",
    "parent environ": "import os\nopen(f'/proc/{os.getppid()}/environ').read()",
    "ctypes": "import ctypes\nctypes.CDLL(None).fork()",
    "engine import": "import alma_tui.sandbox.runner",
    "raise limits": "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escapes_fail_inside_the_design(name: str) -> None:
    attempt = textwrap.indent(ESCAPES[name], " " * 16)
    code = design(
        f"""
        def retrieve(self, query):
            try:
{attempt}
            except (PermissionError, ImportError) as exc:
                return "blocked: " + type(exc).__name__ + ": " + str(exc)
            return "escaped"
        """
    )
    with SandboxedDesign(code, limits=FAST) as d:
        out = d.retrieve(query())
    assert out.startswith("blocked: "), out
    assert "sandbox" in out
    assert not os.path.exists("/usr/alma-sandbox-escape.txt")


def test_design_may_use_numpy_and_its_temp_dir() -> None:
    code = design(
        """
        def retrieve(self, query):
            import numpy as np
            with open("scratch.txt", "w") as fh:
                fh.write("ok")
            return str(int(np.arange(5).sum())) + open("scratch.txt").read()
        """
    )
    with SandboxedDesign(code, limits=FAST) as d:
        assert d.retrieve(query()) == "10ok"


def test_non_str_retrieve_and_bad_snapshot_are_invalid() -> None:
    code = design("def retrieve(self, query):\n    return ['a list']\n")
    with pytest.raises(DesignFailure) as info, SandboxedDesign(code, limits=FAST) as d:
        d.retrieve(query())
    assert info.value.kind == "invalid"
    assert info.value.reason == "retrieve() must return a str, but returned list"

    code = design("def snapshot(self):\n    return {'s': {1, 2}}\n")
    with pytest.raises(DesignFailure) as info, SandboxedDesign(code, limits=FAST) as d:
        d.snapshot()
    assert info.value.kind == "invalid" and "JSON-serialisable" in info.value.reason


def test_concurrent_retrieve_is_serialised_and_correct() -> None:
    code = design(
        """
        def __init__(self, services):
            super().__init__(services)
            self.busy = False

        def retrieve(self, query):
            import time
            assert not self.busy, "overlapping calls"
            self.busy = True
            time.sleep(0.01)
            self.busy = False
            return "answer for " + query.goal
        """
    )
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    with SandboxedDesign(code, limits=FAST) as d:

        def worker(i: int) -> None:
            try:
                for j in range(5):
                    results[i * 10 + j] = d.retrieve(query(goal=f"g{i}-{j}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert d.stats["calls"]["retrieve"] == 40
    assert not errors
    assert results == {i * 10 + j: f"answer for g{i}-{j}" for i in range(8) for j in range(5)}


def test_close_is_idempotent_and_interrupts_a_hung_call() -> None:
    code = design("def retrieve(self, query):\n    while True:\n        pass\n")
    d = SandboxedDesign(code, limits=SandboxLimits(call_timeout_s=30))
    d.start()
    pid = d.pid
    failures: list[DesignFailure] = []

    def call() -> None:
        try:
            d.retrieve(query())
        except DesignFailure as exc:
            failures.append(exc)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.2)
    d.close()
    t.join(5)
    assert not t.is_alive()
    assert failures and failures[0].kind == "crash" and "closed" in failures[0].reason
    d.close()
    d.close()
    assert_gone(pid)
    with pytest.raises(DesignFailure):
        d.retrieve(query())
    SandboxedDesign(GOOD).close()  # never started: still fine


def test_validate_design_reports_and_raises() -> None:
    report = validate_design(
        GOOD,
        episodes=[episode(), episode("t2")],
        queries=[query(), query("other")],
        llm=lambda p, s: "S",
        embed=lambda ts: [[1.0] for _ in ts],
        limits=FAST,
    )
    assert report["class_name"] == "D"
    assert report["retrieved"] == ["S\nS", ""]
    assert len(report["snapshot"]["notes"]) == 2
    assert len(report["timings"]["update_s"]) == 2
    assert "[stdout] updating t1" in report["log_tail"]

    with pytest.raises(DesignFailure) as info:
        validate_design(GOOD, episodes=[episode()], queries=[], limits=FAST)  # no llm given
    assert info.value.kind == "error" and "no llm service" in info.value.reason


def test_a_child_that_stops_reading_cannot_block_the_parent() -> None:
    with SandboxedDesign(GOOD, limits=SandboxLimits(call_timeout_s=0.5)) as d:
        pid = d.pid
        assert pid is not None
        for p in [pid, *descendants(pid)]:  # the supervisor and the confined worker
            os.kill(p, signal.SIGSTOP)  # frozen: reads nothing, writes nothing
        t0 = time.monotonic()
        with pytest.raises(DesignFailure) as info:
            d.update(episode(obs="y" * (1 << 20)))  # far more than a pipe buffer holds
        assert time.monotonic() - t0 < 3
        assert info.value.kind == "timeout"
    assert_gone(pid)


def test_failure_pickles_and_stats_are_readable_during_a_call() -> None:
    import pickle

    f = pickle.loads(pickle.dumps(DesignFailure("error", "r", "d", op="update")))
    assert (f.kind, f.reason, f.detail, f.op) == ("error", "r", "d", "update")

    code = design("def retrieve(self, query):\n    __import__('time').sleep(0.5)\n    return ''\n")
    with SandboxedDesign(code, limits=FAST) as d:
        t = threading.Thread(target=d.retrieve, args=(query(),))
        t.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        assert d.stats["spawn_s"] is not None
        assert time.monotonic() - t0 < 0.1
        t.join()


def test_unbounded_recursion_is_named_as_such_not_as_memory() -> None:
    code = design(
        """
        def retrieve(self, query):
            import sys
            sys.setrecursionlimit(10**8)
            def f(n):
                return f(n + 1)
            return f(0)
        """
    )
    limits = SandboxLimits(call_timeout_s=30.0, start_timeout_s=10.0, memory_mb=200)
    with SandboxedDesign(code, limits=limits) as d, pytest.raises(DesignFailure) as info:
        d.retrieve(query())
    assert info.value.kind == "error"
    assert "recursed without bound" in info.value.reason
