"""Key bindings as data: one table, remappable by binding id (``App.set_keymap``).

A user keymap is a ``{binding_id: "keys"}`` dict, e.g. ``{"alma.pin": "P"}``, from the
``[keymap]`` table of the settings file (read by ``alma_tui.cli.ui_settings``) or
``ALMA_TUI_KEYMAP="alma.pin=P,alma.hint=H"`` in the environment (which wins). Every id is
checked against the table below: a typo is one line naming it, never silently ignored.
"""

from __future__ import annotations

import os
import re
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
    # one key, two bindings: the footer says "Pause" while running and "Resume" while paused
    Key("alma.pause", "space", "pause", "Pause", priority=True, tooltip="Pause at the next selection"),
    Key("alma.resume", "space", "resume", "Resume", priority=True, tooltip="Resume the paused search"),
    Key("alma.hint", "h", "hint", "Hint", tooltip="Add a hint for the next analysis"),
    Key("alma.stop", "s", "stop", "Stop", tooltip="Stop once the evaluations in progress finish"),
    Key(
        "alma.continue",
        "c",
        "continue_search",
        "Continue",
        tooltip="Continue a finished or stopped search: more iterations or a larger budget",
    ),
    Key("alma.git", "g", "git", "Git", tooltip="git log / show of the selected design"),
    # shown only while a merge design (two parents) is selected
    Key(
        "alma.diff_parent",
        "d",
        "diff_parent",
        "Diff other parent",
        tooltip="Diff a merge design against its other parent",
    ),
    Key("alma.best", "b", "best", "Best", tooltip="Jump to the best design"),
    Key("alma.follow", "n", "follow", "Newest", tooltip="Follow the newest design"),
    Key("alma.scope", "l", "toggle_scope", "Log scope", tooltip="Log: selected design or all"),
    Key("alma.zoom", "z", "zoom", "Zoom", tooltip="Give the detail pane (or the focused pane) the whole screen"),
    Key("alma.filter", "slash", "focus_filter", "Filter", tooltip="Filter the log"),
    Key("alma.tab_next", "right_square_bracket", "next_tab", "Next tab", show=False),
    Key("alma.tab_prev", "left_square_bracket", "prev_tab", "Prev tab", show=False),
    Key("alma.tab1", "1", "tab('diff')", "Diff", show=False),
    Key("alma.tab2", "2", "tab('code')", "Code", show=False),
    Key("alma.tab3", "3", "tab('analysis')", "Analysis", show=False),
    Key("alma.tab4", "4", "tab('evaluation')", "Evaluation", show=False),
    Key("alma.tab5", "5", "tab('memory')", "Memory", show=False),
    Key("alma.tab6", "6", "tab('scores')", "Scores", show=False),
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


# left out of the footer at <= 100 columns (the keys still work; the palette lists them)
WIDE_ONLY: frozenset[str] = frozenset(
    {"alma.git", "alma.best", "alma.follow", "alma.scope", "alma.filter", "alma.zoom", "alma.diff_parent"}
)

KEY_IDS: frozenset[str] = frozenset(k.id for k in (*MAIN_KEYS, *APP_KEYS))
_KEY_NAME = re.compile(r"^[A-Za-z0-9_+\-]+$")


class AppSettingError(ValueError):
    """A UI setting (keymap, theme) the app cannot use; the message is one line."""


class KeymapError(AppSettingError):
    """A keymap that names a binding we do not have, or a key that cannot be one."""


def check_theme(theme: object, source: str) -> str:
    """The theme name, or AppSettingError naming ``source`` and Textual's built-in themes.
    Here rather than in the CLI so that only the UI package imports Textual."""
    from textual.theme import BUILTIN_THEMES

    if not isinstance(theme, str) or theme not in BUILTIN_THEMES:
        raise AppSettingError(f"{source}: theme {theme!r} is not one of {', '.join(sorted(BUILTIN_THEMES))}")
    return theme


def check_keymap(keymap: dict[str, str], source: str) -> dict[str, str]:
    """The keymap, or KeymapError naming ``source`` and the first bad entry (one line)."""
    for bid, keys in keymap.items():
        if bid not in KEY_IDS:
            known = ", ".join(sorted(KEY_IDS))
            raise KeymapError(f"{source}: unknown key binding id {bid!r} (known: {known})")
        names = [k.strip() for k in str(keys).split(",")]
        if not isinstance(keys, str) or not all(names) or not all(_KEY_NAME.match(k) for k in names):
            raise KeymapError(
                f"{source}: {bid} = {keys!r} is not a key (use Textual key names: 'P', 'ctrl+p', 'f5', 'space')"
            )
    return dict(keymap)


def env_keymap() -> dict[str, str]:
    """``ALMA_TUI_KEYMAP`` (``id=keys,id=keys``), checked: KeymapError names the bad item."""
    raw = os.environ.get("ALMA_TUI_KEYMAP", "")
    out: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise KeymapError(f"ALMA_TUI_KEYMAP: {item.strip()!r} is not id=keys (e.g. alma.pin=P)")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return check_keymap(out, "ALMA_TUI_KEYMAP")
