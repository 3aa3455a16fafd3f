"""Hostile designs: every file in ``tests/hostile/`` tries to break out of the sandbox.

Each design is LLM-style adversarial code (most first switch off the worker's
in-process audit hook, which DESIGN.md section 7 says is not a boundary) and is
run through ``validate_design`` by a stand-in engine process
(``tests/hostile/_engine.py``) whose exec-time environment holds fake API keys.
The test around it plants bait and checks, per design:

* containment: the engine got a ``DesignFailure`` with a sane one-line reason, or
  a harmless result; the engine process itself survived and did not hang;
* no secret seen: the canary (in the engine's and a sentinel process's
  environment, in bait files, in a fake repo's ``.alma/alma.db``) appears in no
  returned value, failure text, log line, or file the design managed to write;
* no file written outside: bait files are byte-identical, no new files in the
  test's tmp area, in a bait ``/tmp/alma-sbx-victim-*`` dir, or named with the
  design's marker in ``/`` or ``/tmp``;
* no network: the test's TCP, UDP, unix and abstract-unix listeners saw nothing;
* no process left: nothing with the design's marker in its cmdline/comm exists
  3 s after ``close()``; the sentinel process is alive;
* engine bounded: peak RSS growth < 300 MB; returned values, failure details and
  log lines within the caps the engine promises (checked in the engine, since
  the worker can be bypassed);
* self-reports: a design prints ``PWNED:`` for what only it can observe (raised
  rlimits, loaded native code, host pid 1 signalable, engine source read).

Failures here are escapes. Run against another checkout with
``cd /that/checkout && python -m pytest /this/checkout/tests/test_hostile_designs.py``
(``python -m`` puts the cwd first on sys.path, ahead of PYTHONPATH; from a neutral
cwd such as /tmp, ``PYTHONPATH=/that/checkout`` works too). The engine process gets
the same ``alma_tui`` as pytest; ``test_engine_uses_...`` prints which one.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import alma_tui

HOSTILE = Path(__file__).parent / "hostile"
ENGINE = HOSTILE / "_engine.py"
CORPUS = sorted(p for p in HOSTILE.glob("*.py") if not p.name.startswith("_"))

LIMITS = {"call_timeout_s": 5, "start_timeout_s": 15, "memory_mb": 512}
MAX_RETRIEVE_CHARS = 20_000  # SandboxLimits default
MAX_SNAPSHOT_CHARS = 4096 << 10  # SandboxLimits.max_snapshot_kb default
RSS_GROWTH_MAX_MB = 300
# What the engine may hand its log callback for one evaluation. The worker cuts
# log() messages at 10,000 chars and printed lines at 2,000, but a design can
# write to the protocol pipe itself, so only the engine can enforce these.
# The exact numbers are policy; these are generous on purpose (2,000 lines of 16 KiB).
LOG_LINE_MAX = 16 * 1024
LOG_TOTAL_MAX = 32 << 20
DETAIL_MAX = 64 * 1024  # DesignFailure.detail goes into the store and repair prompts
KINDS = {"error", "timeout", "memory", "crash", "protocol", "invalid"}
ENGINE_DEADLINE_S = 90
SECRET_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "GH_TOKEN")
# A line of the household benchmark's generator: a design that can show it can
# read the answers instead of learning them.
ENGINE_SOURCE_NEEDLE = "P_USUAL_TARGET = 0.7"


def load_expect(path: Path) -> dict:
    """The module-level ``EXPECT = {...}`` literal, read without running the hostile code."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXPECT" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def docstring(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split())


def render(code: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        code = code.replace("{{" + key + "}}", value)
    left = re.findall(r"\{\{[A-Z_0-9]+\}\}", code)
    assert not left, f"unknown placeholders {left}"
    return code


def proc_starttime(pid: int | str) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[19]


def marker_pids(marker: str) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            comm = Path(f"/proc/{name}/comm").read_bytes()
            zombie = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if zombie:
            continue
        if marker.encode() in cmd or marker.encode() in comm:
            pids.append(int(name))
    return pids


def tree(root: Path, skip: set[Path]) -> dict[str, tuple]:
    """Path -> (kind, digest, mode) for everything under root (symlinks not followed)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p in skip or any(s in p.parents for s in skip):
                continue
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[str(p)] = ("link", os.readlink(p), st.st_mode)
            elif stat.S_ISREG(st.st_mode):
                out[str(p)] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode)
            else:
                out[str(p)] = ("other", "", st.st_mode)
    return out


class Listeners:
    """TCP, UDP, unix and abstract unix sockets the designs try to reach; records every contact."""

    def __init__(self, unix_path: str, abstract: str) -> None:
        self.hits: list[str] = []
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(unix_path)
        self.unix.listen()
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind("\0" + abstract)
        self.abstract.listen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        for name, s in (("tcp", self.tcp), ("udp", self.udp), ("unix", self.unix), ("abstract", self.abstract)):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, name)
        while not self._stop.is_set():
            for key, _ in sel.select(0.1):
                s, name = key.fileobj, key.data
                try:
                    if name == "udp":
                        data, _addr = s.recvfrom(65536)  # type: ignore[union-attr]
                        self.hits.append(f"udp datagram {data[:80]!r}")
                        continue
                    conn, _addr = s.accept()  # type: ignore[union-attr]
                    conn.settimeout(0.5)
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        data = b""
                    conn.close()
                    self.hits.append(f"{name} connection {data[:80]!r}")
                except OSError:
                    pass
        sel.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in (self.tcp, self.udp, self.unix, self.abstract):
            s.close()


@dataclass
class Arena:
    """Bait and instruments for one design run."""

    tmp: Path
    marker: str
    token: str  # the secret every bait carries
    secrets: dict[str, str]
    sentinel: subprocess.Popen
    listeners: Listeners
    victim: Path
    harness: Path
    placeholders: dict[str, str] = field(default_factory=dict)

    def needles(self) -> dict[str, str]:
        hexpart = self.token.split("-", 1)[1]
        return {
            "secret": self.token,
            "secret (bare uuid)": hexpart,
            "secret (reversed)": hexpart[::-1],
            "engine source": ENGINE_SOURCE_NEEDLE,
        }

    def state(self) -> dict[str, tuple]:
        skip = {self.harness, self.tmp / "engine.sock"}
        return {**tree(self.tmp, skip), **tree(self.victim, set())}

    def marker_files(self) -> list[str]:
        found = []
        for top in ("/", "/tmp", tempfile.gettempdir()):
            with contextlib.suppress(OSError):
                found += [os.path.join(top, n) for n in os.listdir(top) if self.marker in n]
        return sorted(set(found))

    def run_engine(self, code: str, expect: dict) -> tuple[dict | None, str]:
        spec = self.harness / "spec.json"
        report = self.harness / "report.json"
        spec.write_text(
            json.dumps(
                {
                    "code": code,
                    "limits": LIMITS,
                    "mode": expect.get("mode", "direct"),
                    "marker": self.marker,
                    "needles": self.needles(),
                    "report": str(report),
                }
            )
        )
        env = {**os.environ, **self.secrets}
        pkg_parent = str(Path(alma_tui.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([pkg_parent, *filter(None, [os.environ.get("PYTHONPATH")])])
        proc = subprocess.Popen(
            [sys.executable, str(ENGINE), str(spec)],
            cwd=self.tmp / "repo",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=ENGINE_DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return None, f"engine hung for {ENGINE_DEADLINE_S}s"
        text = out.decode("utf-8", "replace")
        if proc.returncode != 0 or not report.exists():
            return None, f"engine process died (rc={proc.returncode}): {text[-300:]!r}"
        return json.loads(report.read_text()), text


@pytest.fixture
def arena(tmp_path: Path):
    marker = "hx" + uuid.uuid4().hex[:12]  # fits /proc/<pid>/comm (15 chars)
    token = "CANARY-" + uuid.uuid4().hex
    secrets = {
        "OPENAI_API_KEY": f"sk-test-{token}",
        "ANTHROPIC_API_KEY": f"sk-ant-test-{token}",
        "AWS_SECRET_ACCESS_KEY": f"aws-{token}",
        "GITHUB_TOKEN": f"ghp_{token}",
        "GH_TOKEN": f"gho_{token}",
    }
    keys_env = "".join(f"{k}={v}\n" for k, v in secrets.items())
    canary = tmp_path / "canary"
    (canary / "home" / ".config" / "alma").mkdir(parents=True)
    (canary / "home" / ".aws").mkdir(parents=True)
    (canary / "keys.env").write_text(keys_env)
    (canary / "home" / ".config" / "alma" / "keys.env").write_text(keys_env)
    (canary / "home" / ".aws" / "credentials").write_text(f"[default]\naws_secret_access_key = aws-{token}\n")
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text("0" * 40 + "\n")
    (repo / ".alma").mkdir()
    con = sqlite3.connect(repo / ".alma" / "alma.db")
    con.execute("create table settings (key text, value text)")
    con.execute("insert into settings values ('openai_api_key', ?)", (f"sk-test-{token}",))
    con.commit()
    con.close()
    (repo / "design.py").write_text("# a committed design\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("untouched\n")
    harness = tmp_path / "harness"
    harness.mkdir()
    victim = Path(tempfile.mkdtemp(prefix="alma-sbx-victim-", dir="/tmp"))
    (victim / "state.json").write_text('{"victim": true}\n')
    sentinel = subprocess.Popen(
        ["/bin/sleep", "600"],
        env={"PATH": "/usr/bin:/bin", **secrets},
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sbx_before = set(Path("/tmp").glob("alma-sbx-hostile-*"))
    abstract = f"alma-hostile-{marker}"
    listeners = Listeners(str(tmp_path / "engine.sock"), abstract)
    a = Arena(tmp_path, marker, token, secrets, sentinel, listeners, victim, harness)
    a.placeholders = {
        "MARKER": marker,
        "SENTINEL_PID": str(sentinel.pid),
        "CANARY_DIR": str(canary),
        "REPO_DIR": str(repo),
        "OUTSIDE_DIR": str(tmp_path / "outside"),
        "VICTIM_DIR": str(victim),
        "TCP_PORT": str(listeners.tcp.getsockname()[1]),
        "UDP_PORT": str(listeners.udp.getsockname()[1]),
        "UNIX_SOCK": str(tmp_path / "engine.sock"),
        "ABSTRACT_SOCK": abstract,
        "HOST_PID1_START": proc_starttime(1),
    }
    try:
        yield a
    finally:
        listeners.close()
        for pid in marker_pids(marker):  # survivors of a design we ran: ours to end
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if sentinel.poll() is None:
            sentinel.kill()
        sentinel.wait()
        shutil.rmtree(victim, ignore_errors=True)
        # A killed engine cannot remove its worker's dir; those dirs are this run's.
        for leftover in set(Path("/tmp").glob("alma-sbx-hostile-*")) - sbx_before:
            shutil.rmtree(leftover, ignore_errors=True)
        for path in a.marker_files():
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def check_failure(failure: dict, expect: dict) -> list[str]:
    problems = []
    reason = failure["reason"]
    if not reason.strip() or "\n" in reason or failure["reason_len"] >= 300:
        problems.append(f"reason is not one short line ({failure['reason_len']} chars): {reason[:120]!r}")
    if failure["kind"] not in KINDS:
        problems.append(f"unknown failure kind {failure['kind']!r}")
    if "kind_in" in expect and failure["kind"] not in expect["kind_in"]:
        problems.append(f"kind {failure['kind']!r} (reason {reason[:100]!r}), expected one of {expect['kind_in']}")
    if "reason_re" in expect and not re.search(expect["reason_re"], reason, re.I):
        problems.append(f"reason {reason[:120]!r} does not match {expect['reason_re']!r}")
    if failure["detail_len"] > DETAIL_MAX:
        problems.append(f"failure detail of {failure['detail_len']} chars reached the engine")
    return problems


def evaluate(path: Path, a: Arena) -> tuple[list[str], dict | None]:
    expect = load_expect(path)
    code = render(path.read_text(), a.placeholders)
    before = a.state()
    report, engine_out = a.run_engine(code, expect)
    problems: list[str] = []
    if report is None:
        problems.append(engine_out)
    else:
        if report["outcome"] == "engine-exception":
            problems.append("engine raised " + report["exception"].strip().splitlines()[-1][:200])
        elif report["outcome"] == "failure":
            problems += check_failure(report["failure"], expect)
        for v in report["values"]:
            cap = MAX_RETRIEVE_CHARS + 200 if v["op"] == "retrieve" else MAX_SNAPSHOT_CHARS + 1024
            if v["chars"] > cap:
                problems.append(f"{v['op']}() handed the engine {v['chars']:,} chars")
        problems += [f"leak: {leak}" for leak in report["leaks"]]
        problems += [f"self-reported {p}" for p in report["pwned"]]
        if report["survivors"]:
            problems.append(f"processes alive 3s after close(): {report['survivors'][:3]}")
        if report["rss_growth_mb"] >= RSS_GROWTH_MAX_MB:
            problems.append(f"engine peak RSS grew by {report['rss_growth_mb']} MB")
        log = report["log"]
        if log["max_line"] > LOG_LINE_MAX:
            problems.append(f"a log line of {log['max_line']:,} chars reached the engine")
        if log["chars"] > LOG_TOTAL_MAX:
            problems.append(f"{log['chars']:,} chars in {log['lines']:,} log lines reached the engine")
    # Evidence outside the engine.
    if a.sentinel.poll() is not None:
        problems.append(f"sentinel process was killed (rc={a.sentinel.returncode})")
    after = a.state()
    for p in sorted(set(before) | set(after)):
        if before.get(p) != after.get(p):
            what = "new" if p not in before else "deleted" if p not in after else "modified"
            problems.append(f"{what} file outside the sandbox: {p}")
            if p in after and after[p][0] == "file" and a.token.encode() in Path(p).read_bytes():
                problems.append(f"leak: secret written to {p}")
    for p in a.marker_files():
        problems.append(f"file written outside the sandbox: {p}")
    problems += [f"network: {hit}" for hit in a.listeners.hits]
    # The engine polled already unless it died; a dead engine's workers must die too.
    deadline = time.monotonic() + 3.0
    left = [] if report is not None and report["survivors"] else marker_pids(a.marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = marker_pids(a.marker)
    if left:
        problems.append(f"processes with the marker alive 3s after the engine exited: {left}")
    return list(dict.fromkeys(problems)), report


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in CORPUS])
def test_hostile_design_is_contained(path: Path, arena: Arena) -> None:
    problems, report = evaluate(path, arena)
    summary = "no report from the engine"
    if report is not None:
        f = report.get("failure")
        summary = f"{report['outcome']}" + (f" [{f['kind']}] {f['reason'][:150]}" if f else "")
        summary += f" ({report['elapsed_s']}s, engine RSS +{report['rss_growth_mb']} MB)"
        summary += "".join(f"\n    {v['op']} -> {v['head'][:100]!r}" for v in report["values"][:2])
    print(f"\n{path.stem}: {summary}")
    assert not problems, f"{path.stem} ESCAPED: " + " | ".join(problems)


def test_corpus_is_big_and_documented() -> None:
    assert len(CORPUS) >= 40
    for path in CORPUS:
        assert docstring(path), f"{path.name} has no docstring saying what it attempts"
        assert "MemoryDesign" in path.read_text(), path.name


def test_engine_uses_the_checkout_under_test(arena: Arena) -> None:
    """The stand-in engine imports the same alma_tui as pytest (so PYTHONPATH picks the checkout)."""
    code = "from alma_tui.design_api import MemoryDesign\nclass D(MemoryDesign):\n    pass\n"
    report, out = arena.run_engine(code, {})
    assert report is not None, out
    assert report["outcome"] == "ok", report
    assert report["alma_tui"] == str(Path(alma_tui.__file__).resolve().parent)
    print(f"\nsandbox under test: {report['alma_tui']}/sandbox")
