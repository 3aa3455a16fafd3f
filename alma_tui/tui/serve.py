"""`alma-tui serve`: the watching app in web browsers, through textual-serve.

Kept in the UI package so that only ``alma_tui/tui`` touches the Textual family; the CLI
checks the repo and the settings, then hands over here.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["ServeUnavailable", "serve"]


class ServeUnavailable(Exception):
    """textual-serve is not installed (one line for the user)."""


def serve(repo: Path, host: str, port: int, public_url: str | None) -> None:
    """Serve ``alma-tui watch --repo REPO`` to browsers (one process per tab) until stopped."""
    try:
        from textual_serve.server import Server
    except ImportError as exc:
        raise ServeUnavailable("`alma-tui serve` needs textual-serve: pip install textual-serve") from exc
    command = shlex.join([sys.executable, "-m", "alma_tui", "watch", "--repo", str(repo)])
    Server(command, host=host, port=port, title=f"alma · {repo.name}", public_url=public_url).serve()
