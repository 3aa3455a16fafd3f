"""Key bindings as data: one table, remappable by binding id (``App.set_keymap``).

A user keymap is a ``{binding_id: "keys"}`` dict, e.g. ``{"alma.pin": "P"}``;
``ALMA_TUI_KEYMAP="alma.pin=P,alma.hint=H"`` in the environment does the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Key:
    id: str
    keys: str
    action: str
    description: str
    show: bool = True
    priority: bool = False
    tooltip: str = ""


MAIN_KEYS: tuple[Key, ...] = (
    Key(
        "alma.pin",
        "p",
        "toggle_pin",
        "Pin",
        tooltip="Pin/unpin the selected design: always a parent",
    ),
    Key("alma.veto", "v", "toggle_veto", "Veto", tooltip="Veto/unveto: never chosen as a parent"),
    Key(
        "alma.pause",
        "space",
        "toggle_pause",
        "Pause",
        priority=True,
        tooltip="Pause/resume at the next selection",
    ),
    Key("alma.hint", "h", "hint", "Hint", tooltip="Add a hint for the next analysis"),
    Key("alma.stop", "s", "stop", "Stop", tooltip="Stop after the current evaluation"),
    Key("alma.git", "g", "git", "Git", tooltip="git log / show of the selected design"),
    Key("alma.best", "b", "best", "Best", tooltip="Jump to the best design"),
    Key("alma.follow", "n", "follow", "Newest", tooltip="Follow the newest design"),
    Key("alma.scope", "l", "toggle_scope", "Log scope", tooltip="Log: selected design or all"),
    Key("alma.filter", "slash", "focus_filter", "Filter", tooltip="Filter the log"),
    Key("alma.tab_next", "right_square_bracket", "next_tab", "Next tab", show=False),
    Key("alma.tab_prev", "left_square_bracket", "prev_tab", "Prev tab", show=False),
    Key("alma.tab1", "1", "tab('diff')", "Diff", show=False),
    Key("alma.tab2", "2", "tab('code')", "Code", show=False),
    Key("alma.tab3", "3", "tab('analysis')", "Analysis", show=False),
    Key("alma.tab4", "4", "tab('evaluation')", "Evaluation", show=False),
    Key("alma.tab5", "5", "tab('memory')", "Memory", show=False),
)

APP_KEYS: tuple[Key, ...] = (
    Key("alma.quit", "q", "quit", "Quit", tooltip="Quit (stops an engine started by this UI)"),
)


def to_bindings(keys: tuple[Key, ...]) -> list[BindingType]:
    return [
        Binding(
            k.keys,
            k.action,
            k.description,
            show=k.show,
            priority=k.priority,
            id=k.id,
            tooltip=k.tooltip,
        )
        for k in keys
    ]


def env_keymap() -> dict[str, str]:
    raw = os.environ.get("ALMA_TUI_KEYMAP", "")
    out: dict[str, str] = {}
    for item in raw.split(","):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k.strip()] = v.strip()
    return out
