"""Stand-in for the engine process: runs ONE hostile design and reports what came back.

Started by ``tests/test_hostile_designs.py`` as a separate process, on purpose:

* its environment *at exec time* holds the fake API keys, exactly like a real
  engine started with ``OPENAI_API_KEY=...`` in its environment, so a design that
  reads ``/proc/<ppid>/environ`` or scans ``/proc/<ppid>/mem`` finds them;
* a design that kills its parent (``os.kill(os.getppid(), SIGKILL)``) kills this
  process, not pytest; the test sees the missing report and calls that an escape;
* its peak RSS is the engine's memory cost of the design (floods, giant lines).

Usage: ``python _engine.py SPEC_JSON`` (a file). Writes the report to the spec's
``report`` path. Nothing the design sends is stored whole: every returned value,
failure text and log line is checked here, and only sizes and short excerpts go
into the report.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import alma_tui
from alma_tui.design_api import Episode, Query, Step
from alma_tui.sandbox import DesignFailure, SandboxedDesign, SandboxLimits, validate_design

PWNED = "PWNED:"  # designs self-report things only they can observe with this tag


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def marker_processes(marker: str) -> list[str]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read(4096).replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{name}/comm", "rb") as fh:
                comm = fh.read(64).decode("utf-8", "replace").strip()
            with open(f"/proc/{name}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie is dead, just not reaped yet
        except (OSError, IndexError):
            continue
        if marker in cmd or marker in comm:
            found.append(f"{name}: {cmd[:160] or comm}")
    return found


class Scanner:
    """Looks at one text the design produced: secret? self-reported escape? how big?"""

    def __init__(self, needles: dict[str, str]) -> None:
        self.needles = needles
        self.leaks: list[str] = []
        self.pwned: list[str] = []

    def scan(self, where: str, text: str) -> None:
        for label, needle in self.needles.items():
            i = text.find(needle)
            if i >= 0 and len(self.leaks) < 5:
                self.leaks.append(f"{label} in {where}: ...{text[max(0, i - 40) : i + len(needle) + 10]!r}")
        i = text.find(PWNED)
        if i >= 0 and len(self.pwned) < 5:
            self.pwned.append(f"{where}: {text[i : i + 200]!r}")


def main() -> int:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    scanner = Scanner(spec["needles"])
    log_stats = {"lines": 0, "chars": 0, "max_line": 0, "first": []}

    def log(line: str) -> None:
        log_stats["lines"] += 1
        log_stats["chars"] += len(line)
        log_stats["max_line"] = max(log_stats["max_line"], len(line))
        if len(log_stats["first"]) < 8:
            log_stats["first"].append(line[:200])
        scanner.scan("log line", line)

    limits = SandboxLimits(**spec["limits"])
    ep = Episode(
        domain="household",
        task_id="t1",
        goal="put a mug in the sink",
        initial_observation="kitchen",
        steps=[Step("you see a mug", "take mug", 0.0), Step("done", "put mug in sink", 1.0)],
        success=True,
        score=1.0,
        step_count=2,
    )
    q = Query(goal="put a mug in the sink", observation="kitchen", domain="household", task_id="q1")
    report: dict = {
        "alma_tui": os.path.dirname(os.path.abspath(alma_tui.__file__)),
        "outcome": None,
        "values": [],
    }
    _reset_peak_rss()
    rss0 = _status_kb("VmRSS")
    t0 = time.monotonic()

    def record(op: str, value: object) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        scanner.scan(f"{op} value", text)
        report["values"].append({"op": op, "type": type(value).__name__, "chars": len(text), "head": text[:300]})

    try:
        if spec["mode"] == "validate":
            res = validate_design(spec["code"], episodes=[ep], queries=[q, q], log=log, limits=limits, name="hostile")
            for value in res["retrieved"]:
                record("retrieve", value)
            record("snapshot", res["snapshot"])
        else:  # "direct": every op by hand, each value recorded as soon as it arrives
            d = SandboxedDesign(spec["code"], log=log, limits=limits, name="hostile")
            try:
                d.start()
                d.update(ep)
                record("retrieve", d.retrieve(q))
                record("retrieve", d.retrieve(q))
                record("snapshot", d.snapshot())
            finally:
                d.close()
        report["outcome"] = "ok"
    except DesignFailure as exc:
        report["outcome"] = "failure"
        report["failure"] = {
            "kind": exc.kind,
            "op": exc.op,
            "reason": exc.reason[:2000],
            "reason_len": len(exc.reason),
            "detail_len": len(exc.detail),
            "detail_tail": exc.detail[-600:],
        }
        scanner.scan("DesignFailure.reason", exc.reason)
        scanner.scan("DesignFailure.detail", exc.detail)
    except BaseException as exc:  # the sandbox itself broke: that is a containment failure
        report["outcome"] = "engine-exception"
        report["exception"] = "".join(traceback.format_exception(exc))[-3000:]
        scanner.scan("engine exception", report["exception"])
    report["elapsed_s"] = round(time.monotonic() - t0, 3)
    report["rss_growth_mb"] = round((_status_kb("VmHWM") - rss0) / 1024, 1)
    deadline = time.monotonic() + 3.0
    survivors = marker_processes(spec["marker"])
    while survivors and time.monotonic() < deadline:
        time.sleep(0.1)
        survivors = marker_processes(spec["marker"])
    report["survivors"] = survivors
    report["log"] = log_stats
    report["leaks"] = scanner.leaks
    report["pwned"] = scanner.pwned
    with open(spec["report"], "w") as fh:
        json.dump(report, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
