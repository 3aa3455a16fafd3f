"""Parent side of OS isolation: what a confined worker may see, and where its folders live.

:func:`confine_spec` lists the paths the worker binds read-only into its new root
(see :mod:`alma_tui.sandbox.confine` for how); :func:`supported` says whether this
platform can try at all; :func:`cleanup_stale_dirs` removes what a killed engine left.
Whether isolation actually works here is measured by :mod:`alma_tui.sandbox.detect`.
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
import time
from typing import Any

__all__ = ["DIR_PREFIX", "PKG_DIR", "cleanup_stale_dirs", "confine_spec", "supported"]

PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR_PREFIX = "alma-sbx-"
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group")


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
