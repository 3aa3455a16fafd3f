"""The OS, not the worker's audit hook, keeps a design away from the engine.

Every attack here first switches the in-process guard off (as a determined design
can, through ``gc``), so what is tested is the namespaces / read-only root /
unprivileged uid / supervisor boundary and the engine's own caps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from alma_tui.sandbox import DesignFailure, SandboxedDesign, SandboxLimits, isolation
from alma_tui.sandbox import detect as sandbox_detect
from alma_tui.sandbox.detect import Isolation

pytestmark = pytest.mark.skipif(isolation.supported() is not None, reason="OS isolation needs Linux")

LIMITS = SandboxLimits(call_timeout_s=8.0, start_timeout_s=15.0, memory_mb=512)
QUERY = {"goal": "g", "observation": "o"}

GUARD_OFF = """
import gc, os, sys
from alma_tui.design_api import MemoryDesign
for _o in gc.get_objects():
    if type(_o).__name__ == "_Guard":
        _o.active = False
        type(_o).__call__ = lambda *a: None
"""


def hostile(body: str) -> str:
    return GUARD_OFF + "\nclass D(MemoryDesign):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def descendants(pid: int) -> list[int]:
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in descendants(k)]


def pids_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def wait_until(cond, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_dir_fd_and_proc_environ_reveal_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    canary = f"sk-CANARY-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    # A sibling process of the engine with the key in its environment, as a shell would have.
    sentinel = subprocess.Popen(["sleep", "60"], env={**os.environ, "ANTHROPIC_API_KEY": canary})
    code = hostile(
        f"""
        def retrieve(self, query):
            out = []
            proc = os.open("/proc", os.O_RDONLY)
            for pid in [os.getppid(), {os.getpid()}, {sentinel.pid}, 1, *os.listdir("/proc")]:
                try:
                    fd = os.open(f"{{pid}}/environ", os.O_RDONLY, dir_fd=proc)
                    out.append(os.read(fd, 100000).decode("latin-1"))
                except Exception as exc:
                    out.append(repr(exc))
            out.append("PIDS " + " ".join(p for p in os.listdir("/proc") if p.isdigit()))
            return "\\n".join(out)
        """
    )
    try:
        with SandboxedDesign(code, limits=LIMITS) as d:
            text = d.retrieve(QUERY)
    finally:
        sentinel.kill()
        sentinel.wait()
    assert canary not in text
    assert "PIDS 1\n" in text + "\n"  # a private /proc: only the design's own process


def test_writes_outside_fail_and_home_is_not_there(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("untouched")
    code = hostile(
        f"""
        def retrieve(self, query):
            out = []
            for path in [{str(target)!r}, "/usr/evil", "/etc/passwd", "/root/x", "/work/x"]:
                try:
                    with open(path, "w") as fh:
                        fh.write("pwned")
                    out.append("WROTE " + path)
                except OSError as exc:
                    out.append(f"{{path}}: {{exc.strerror}}")
            out.append("HOME " + ",".join(os.listdir("/") ))
            with open("/tmp/scratch.txt", "w") as fh:  # its own scratch space works
                fh.write("ok")
            return "\\n".join(out)
        """
    )
    with SandboxedDesign(code, limits=LIMITS) as d:
        text = d.retrieve(QUERY)
    assert [line for line in text.splitlines() if line.startswith("WROTE")] == []
    assert target.read_text() == "untouched"
    assert "home" not in text.split("HOME ")[1]


def test_setsid_children_die_with_the_design() -> None:
    marker = f"alma-marker-{uuid.uuid4().hex}"
    code = hostile(
        f"""
        def retrieve(self, query):
            pid = os.fork()
            if pid == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv("/bin/sleep", [{marker!r}, "300"])
                os._exit(0)
            return "forked"
        """
    )
    limits = SandboxLimits(call_timeout_s=8.0, start_timeout_s=15.0, memory_mb=512, max_processes=None)
    with SandboxedDesign(code, limits=limits) as d:
        assert d.retrieve(QUERY) == "forked"
        assert wait_until(lambda: len(pids_with(marker)) == 1, 3.0)  # it really ran
    assert wait_until(lambda: not pids_with(marker), 5.0), "a process of the design outlived it"


def test_workers_die_with_a_killed_engine(tmp_path: Path) -> None:
    script = tmp_path / "engine.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from alma_tui.sandbox import SandboxedDesign, SandboxLimits
            code = "from alma_tui.design_api import MemoryDesign\\nclass D(MemoryDesign):\\n" \\
                   "    def retrieve(self, q):\\n        import time\\n        time.sleep(600)\\n"
            d = SandboxedDesign(code, limits=SandboxLimits(call_timeout_s=600))
            d.start()
            print(d.pid, flush=True)
            d.retrieve({"goal": "g", "observation": "o"})
            """
        )
    )
    engine = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert engine.stdout is not None
    supervisor = int(engine.stdout.readline())
    workers = [supervisor, *descendants(supervisor)]
    assert len(workers) == 2
    time.sleep(0.3)
    engine.send_signal(signal.SIGKILL)
    engine.wait()

    def all_gone() -> bool:
        for pid in workers:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
            except OSError:
                continue
            if state != "Z":  # a zombie waits for init to reap it; it runs nothing
                return False
        return True

    assert wait_until(all_gone, 5.0), "sandbox workers outlived a SIGKILLed engine"


def test_forged_oversized_retrieve_is_a_protocol_violation() -> None:
    code = hostile(
        """
        def retrieve(self, query):
            import json
            fd = int(sys.argv[2])
            line = json.dumps({"type": "result", "id": 2, "ok": True, "value": "x" * 5_000_000})
            os.write(fd, (line + "\\n").encode())
            import time
            time.sleep(30)
        """
    )
    with SandboxedDesign(code, limits=LIMITS) as d, pytest.raises(DesignFailure) as info:
        d.retrieve(QUERY)
    assert info.value.kind == "protocol"
    assert "over the limit" in info.value.reason


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_huge_forged_line_does_not_grow_the_engine() -> None:
    code = hostile(
        """
        def retrieve(self, query):
            fd = int(sys.argv[2])
            chunk = b"A" * (1 << 20)
            for _ in range(60):
                os.write(fd, chunk)
            return "never"
        """
    )
    before = _rss_mb()
    t0 = time.monotonic()
    with SandboxedDesign(code, limits=LIMITS) as d, pytest.raises(DesignFailure) as info:
        d.retrieve(QUERY)
    assert info.value.kind == "protocol" and "MB" in info.value.reason
    assert time.monotonic() - t0 < 10
    assert _rss_mb() - before < 100


def test_log_floods_are_capped_by_the_engine() -> None:
    code = hostile(
        """
        def retrieve(self, query):
            import json
            fd = int(sys.argv[2])
            line = (json.dumps({"type": "log", "msg": "y" * 50_000}) + "\\n").encode()
            for _ in range(5000):
                os.write(fd, line)
            return "done"
        """
    )
    lines: list[str] = []
    limits = SandboxLimits(call_timeout_s=20.0, start_timeout_s=15.0, max_log_lines=100)
    with SandboxedDesign(code, limits=limits, log=lines.append) as d:
        try:
            d.retrieve(QUERY)
        except DesignFailure as exc:  # over the per-call byte cap is fine too
            assert exc.kind == "protocol"
    logged = [line for line in lines if not line.startswith("[std")]  # print()/stderr have their own cap
    assert len(logged) == limits.max_log_lines + 1, lines[-20:]
    assert all(len(line) <= limits.max_log_chars + 40 for line in lines)
    assert "dropped" in logged[-1]


def test_weak_isolation_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alma_tui.cli import main

    monkeypatch.setattr(sandbox_detect, "_probed", Isolation("weak", "namespaces are forbidden here (test)"))
    rc = main(["eval", "no_memory", "--repo", str(tmp_path), "--collection", "1", "--deployment", "1", "--runs", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1 and "--allow-weak-sandbox" in err and "forbidden here (test)" in err
    rc = main(
        [
            "eval",
            "no_memory",
            "--repo",
            str(tmp_path),
            "--collection",
            "1",
            "--deployment",
            "1",
            "--runs",
            "1",
            "--allow-weak-sandbox",
        ]
    )
    assert rc == 0, capsys.readouterr().err


def test_stale_sandbox_folders_of_dead_engines_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{isolation.DIR_PREFIX}{dead.pid}-design-abc"
    live = tmp_path / f"{isolation.DIR_PREFIX}{os.getpid()}-design-def"
    stale.mkdir()
    live.mkdir()
    assert isolation.cleanup_stale_dirs(str(tmp_path)) == [str(stale)]
    assert live.exists() and not stale.exists()


def test_doctor_reports_the_measured_isolation(capsys) -> None:  # type: ignore[no-untyped-def]
    from alma_tui.cli import main

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "OS-isolated" in out and "1 visible process(es)" in out and "root read-only" in out
    if os.geteuid() == 0:
        assert "uid 65534" in out


def test_seccomp_refuses_namespaces_mounts_and_ptrace() -> None:
    code = hostile(
        """
        def retrieve(self, query):
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            out = []
            for name, call in [("unshare", lambda: libc.unshare(0x10000000)),
                               ("ptrace", lambda: libc.ptrace(0, 0, None, None)),
                               ("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
                               ("getpid", lambda: libc.getpid())]:
                rc = call()
                out.append(f"{name}={rc}/{ctypes.get_errno()}")
            return " ".join(out)
        """
    )
    with SandboxedDesign(code, limits=LIMITS) as d:
        text = d.retrieve(QUERY)
    assert text.split() == ["unshare=-1/1", "ptrace=-1/1", "mount=-1/1", "getpid=1/1"], text


def test_the_design_tree_holds_the_stdlib_and_numpy_not_installed_packages() -> None:
    import importlib.util

    spec = isolation.confine_spec("/nonexistent-root", 3, 64)
    binds = spec["ro_binds"]
    numpy = importlib.util.find_spec("numpy")
    assert numpy is not None and numpy.submodule_search_locations
    site = os.path.dirname(next(iter(numpy.submodule_search_locations)))
    assert site not in binds and not any(site.startswith(b + "/") for b in binds if b != "/usr"), binds
    assert any(b.endswith("/numpy") for b in binds)
    pkg = isolation.PKG_DIR
    if any(pkg.startswith(b.rstrip("/") + "/") for b in binds):  # e.g. installed under /usr
        assert pkg in spec["hide"]
    assert spec["ro_binds_late"] == [os.path.join(pkg, "design_api.py"), os.path.join(pkg, "designs")]
