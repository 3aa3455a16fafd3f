"""`alma-tui doctor`: what this machine gives a search, measured rather than assumed.

The sandbox line comes from starting a real confined worker (see
:func:`alma_tui.sandbox.detect.probe`), so it reports what the kernel allowed,
including the reason when a container or a sysctl forbids namespaces.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    exe = shutil.which("git")
    if exe is None:
        return "MISSING (the lineage repo needs git on PATH)"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "found"


def cmd_doctor() -> int:
    """Print one line per check; exit 1 when designs could not be isolated or git is missing."""
    from alma_tui.sandbox.detect import describe, probe

    iso = probe()
    rows = [
        ("alma-tui", _version("alma-tui")),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        (
            "system",
            f"{platform.system()} {platform.release()} {platform.machine()}, "
            f"{'root' if os.geteuid() == 0 else 'uid ' + str(os.geteuid())}",
        ),
        ("git", _git()),
        ("litellm", _version("litellm")),
        ("textual", _version("textual")),
        ("sandbox", describe(iso).removeprefix("sandbox: ")),
    ]
    if iso.strong:
        r = iso.report
        rows.append(
            (
                "  measured",
                f"a worker starts in {iso.start_ms:.0f} ms; inside it: uid {r.get('uid')}, "
                f"{r.get('visible_pids')} visible process(es), root "
                f"{'WRITABLE' if r.get('root_writable') else 'read-only'}, "
                f"network devices: {', '.join(r.get('net_devices') or []) or 'none'}",
            )
        )
    else:
        rows.append(
            (
                "  fix",
                "run on Linux with user namespaces enabled (sysctl kernel.unprivileged_userns_clone=1"
                " / user.max_user_namespaces > 0), or as root; in Docker: --security-opt "
                "seccomp=unconfined or --privileged. Otherwise pass --allow-weak-sandbox.",
            )
        )
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0 if iso.strong and shutil.which("git") else 1
