"""The engine lock: one engine per repo, held (``flock``) for as long as the engine runs.

Probing it is ``alma_tui.runstate``'s job (standard library only, on the TUI's poll path);
taking it is the engine's, here.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from alma_tui.engine.errors import SearchError
from alma_tui.runstate import lock_path


class RunLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, repo: Path) -> RunLock:
        """Take the repo's lock and write our pid into it, or say that a search runs there."""
        fd = os.open(lock_path(repo), os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(5):  # a status probe (runstate.engine_running) holds it for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if attempt < 4:
                    time.sleep(0.02)
                    continue
                os.close(fd)
                raise SearchError(
                    f"a search is already running in {repo}; attach to it with `alma-tui watch --repo {repo}`"
                ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
