"""The Textual UI: a view of the store plus a writer of steering commands.

Importing this package is cheap (no Textual, no sqlmodel); ``run_tui`` and
``AlmaApp`` are loaded on first use so ``alma-tui --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alma_tui.tui.app import AlmaApp, run_tui

__all__ = ["AlmaApp", "run_tui"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from alma_tui.tui import app

        return getattr(app, name)
    raise AttributeError(name)
