"""Is the design sandbox OS-isolated on this machine? Measured, not assumed.

:func:`probe` starts one confined worker and reads back what it observes (its uid, the
processes it can see, whether its root is writable, seccomp), so a container without
``CAP_SYS_ADMIN`` or with user namespaces disabled fails here, at start, with the kernel's
reason. :func:`require` turns a weak result into a refusal unless the user allowed it;
:func:`describe` is the one line shown by the TUI header, the headless output and
``alma-tui doctor``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from alma_tui.sandbox.isolation import supported
from alma_tui.sandbox.runner import DesignFailure, SandboxedDesign, SandboxLimits

__all__ = ["Isolation", "SandboxUnavailable", "describe", "probe", "require"]


@dataclass(frozen=True)
class Isolation:
    """The outcome of a probe: ``level`` is "namespaces" (OS-enforced) or "weak"."""

    level: str
    reason: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    start_ms: float = 0.0

    @property
    def strong(self) -> bool:
        return self.level == "namespaces"


_probe_lock = threading.Lock()
_probed: Isolation | None = None


def probe(refresh: bool = False) -> Isolation:
    """Start one confined worker and read what it sees; cached for the process."""
    global _probed
    with _probe_lock:
        if _probed is not None and not refresh:
            return _probed
        why = supported()
        if why is not None:
            _probed = Isolation("weak", why)
            return _probed
        code = "from alma_tui.design_api import MemoryDesign\nclass Probe(MemoryDesign):\n    pass\n"
        t0 = time.perf_counter()
        try:
            with SandboxedDesign(code, limits=SandboxLimits(start_timeout_s=15.0), name="probe") as d:
                report = d.isolation_report
        except DesignFailure as exc:
            _probed = Isolation("weak", exc.reason)
            return _probed
        ms = (time.perf_counter() - t0) * 1000
        problems = _check_report(report) if report is not None else ["the sandbox worker sent no isolation report"]
        report = report or {}
        _probed = (
            Isolation("weak", "; ".join(problems), report, ms) if problems else Isolation("namespaces", "", report, ms)
        )
        return _probed


class SandboxUnavailable(Exception):
    """OS isolation is unavailable and the user did not accept running without it."""


def require(allow_weak: bool) -> Isolation:
    """The isolation a run or eval will use; refuses a weak sandbox unless the user allowed it."""
    iso = probe()
    if not iso.strong and not allow_weak:
        raise SandboxUnavailable(
            f"designs are untrusted code and this machine cannot isolate them ({iso.reason}); "
            "see `alma-tui doctor`, or pass --allow-weak-sandbox to run them with in-process guards only"
        )
    return iso


def _check_report(report: dict[str, Any]) -> list[str]:
    problems = []
    if report.get("visible_pids", 99) > 1:
        problems.append(f"the worker sees {report.get('visible_pids')} processes")
    if report.get("root_writable"):
        problems.append("the worker's root is writable")
    if os.geteuid() == 0 and report.get("uid") == 0:
        problems.append("the worker runs as root")
    if not report.get("seccomp") or not report.get("no_new_privs"):
        problems.append("the worker has no seccomp filter")
    return problems


def describe(iso: Isolation) -> str:
    """One line for the header, the headless output and `alma-tui doctor`."""
    if not iso.strong:
        return f"sandbox: WEAK (in-process guards only): {iso.reason}"
    who = "uid 65534" if iso.report.get("uid") == 65534 else "user namespace, no capabilities"
    return (
        f"sandbox: OS-isolated (pid, net, mount, ipc namespaces; read-only root; {who}; seccomp; dies with the engine)"
    )
