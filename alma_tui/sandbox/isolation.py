"""Parent side of OS isolation: what a confined worker may see, and what this machine allows.

:func:`confine_spec` lists the paths the worker binds read-only into its new root
(see :mod:`alma_tui.sandbox.confine` for how); :func:`probe` starts one confined
worker and reads back what it observes, so "isolated" is a measured fact, not an
assumption (a container without ``CAP_SYS_ADMIN`` or with user namespaces disabled
fails here, at start, with the kernel's reason). :func:`describe` is the one line
shown in the TUI header, the headless output and ``alma-tui doctor``.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Isolation",
    "SandboxUnavailable",
    "cleanup_stale_dirs",
    "confine_spec",
    "describe",
    "probe",
    "require",
    "supported",
]

PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR_PREFIX = "alma-sbx-"
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group")


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


def supported() -> str | None:
    """Why OS isolation cannot even be attempted here, or None."""
    if sys.platform != "linux":
        return f"OS isolation needs Linux namespaces (this is {sys.platform})"
    if not hasattr(os, "pidfd_open"):
        return "OS isolation needs os.pidfd_open (Linux 5.3+)"
    import platform

    if platform.machine() not in ("x86_64", "aarch64"):
        return f"OS isolation is not implemented for {platform.machine()}"
    return None


def confine_spec(root: str, lifeline_fd: int, scratch_mb: int) -> dict[str, Any]:
    """Everything the child needs to build its root (paths as the child's sys.path names them)."""
    symlinks, binds = [], []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            symlinks.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            binds.append(path)
    binds += [p for p in _ETC_FILES if os.path.exists(p)]
    # The base interpreter's library only: in a venv, "platstdlib" would name the venv's
    # lib/pythonX.Y, i.e. every installed package (and alma_tui itself).
    base = {
        "base": sys.base_prefix,
        "platbase": sys.base_exec_prefix,
        "installed_base": sys.base_prefix,
        "installed_platbase": sys.base_exec_prefix,
    }
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_path(key, vars=base)
        if path and os.path.isdir(path) and not _under(path, binds):
            binds.append(path)
    binds += [p for p in _numpy_paths() if not _under(p, binds)]
    hide = [PKG_DIR] if _under(PKG_DIR, binds) else []
    late = [os.path.join(PKG_DIR, "design_api.py"), os.path.join(PKG_DIR, "designs")]
    return {
        "root": root,
        "lifeline_fd": lifeline_fd,
        "userns": os.geteuid() != 0,
        "symlinks": symlinks,
        "ro_binds": list(dict.fromkeys(binds)),
        "hide": hide,
        "ro_binds_late": late,
        "scratch_mb": scratch_mb,
    }


def _under(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _numpy_paths() -> list[str]:
    """numpy (a design may use it, DESIGN.md section 3), found without importing it."""
    try:
        spec = importlib.util.find_spec("numpy")
    except (ImportError, ValueError):
        return []
    locs = list(spec.submodule_search_locations or []) if spec else []
    out = []
    for loc in locs:
        site = os.path.dirname(loc)
        out.append(loc)
        out += [p for p in (os.path.join(site, "numpy.libs"),) if os.path.isdir(p)]
        out += glob.glob(os.path.join(site, "numpy-*.dist-info"))
    return out


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
        from alma_tui.sandbox.runner import DesignFailure, SandboxedDesign, SandboxLimits

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


def cleanup_stale_dirs(tmp: str | None = None) -> list[str]:
    """Remove sandbox folders whose engine is dead (a kill -9 gives no chance to clean up).

    Folders are named ``alma-sbx-<engine pid>-...``; one whose pid is alive belongs
    to a running engine and is left alone. Returns the removed paths.
    """
    tmp = tmp or tempfile.gettempdir()
    removed = []
    for path in glob.glob(os.path.join(tmp, DIR_PREFIX + "*")):
        pid_text = os.path.basename(path)[len(DIR_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit():
            if _alive(int(pid_text)):
                continue
        else:  # an older naming without the pid: only when clearly abandoned
            with contextlib.suppress(OSError):
                if time.time() - os.path.getmtime(path) < 3600:
                    continue
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
