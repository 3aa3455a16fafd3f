"""Is the engine of a run alive? One answer for `designs`, the headless output and the TUI.

The run row says ``running`` from the moment an engine starts until it writes a final
status, so an engine killed with SIGKILL (or the OOM killer, or a power cut) leaves it at
``running`` forever. What a run really is, is derived here from three facts:

- the engine lock (``<repo>/.alma/engine.lock``, an ``flock`` held by a live engine);
- the engine's pid (gone, or a zombie, once it died on this machine);
- the heartbeat (written every ~2 s by a live engine).

A run whose stored status is live (running, paused, stopping) is ``interrupted`` when
nobody holds the lock and its engine is gone or silent. The lock is probed only then,
because probing takes the lock for an instant. Standard library only: the TUI calls this
on its poll path.
"""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from pathlib import Path

LIVE_STATUSES = frozenset({"running", "paused", "stopping"})
INTERRUPTED = "interrupted"
STALE_AFTER_S = 10.0  # heartbeats come every ~2 s; five missed ones mean the engine is gone
LOCK_NAME = "engine.lock"


def lock_path(repo: Path) -> Path:
    return Path(repo) / ".alma" / LOCK_NAME


def engine_running(repo: Path) -> bool:
    """True when an engine holds the repo's lock (a search is running there now)."""
    path = lock_path(repo)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file (no engine ever ran) or unreadable
        return False
    try:
        # a shared probe conflicts with the engine's exclusive lock, and two probes
        # (TUI and CLI at once) do not conflict with each other
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we may have taken
    return False


def lock_pid(repo: Path) -> int | None:
    """The pid an engine wrote into the repo's lock (meaningful while ``engine_running``)."""
    try:
        text = lock_path(repo).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def pid_alive(pid: int | None) -> bool | None:
    """Whether a process with that pid runs here (None: unknown). A zombie is not alive."""
    if not pid or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def heartbeat_age(heartbeat_at: datetime | None, now: datetime | None = None) -> float | None:
    if heartbeat_at is None:
        return None
    hb = heartbeat_at if heartbeat_at.tzinfo is not None else heartbeat_at.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - hb).total_seconds()


def effective_status(
    status: str,
    *,
    repo: Path | None,
    pid: int | None = None,
    heartbeat_at: datetime | None = None,
    now: datetime | None = None,
) -> str:
    """The stored status, or ``interrupted`` when it claims a live engine that is gone."""
    if status not in LIVE_STATUSES:
        return status
    age = heartbeat_age(heartbeat_at, now)
    alive = pid_alive(pid)
    if alive is not False and age is not None and age <= STALE_AFTER_S:
        return status  # fresh heartbeat from a process that exists: no need to probe the lock
    if repo is not None and engine_running(repo):
        return status  # slow or hung, but an engine holds the repo
    return INTERRUPTED
