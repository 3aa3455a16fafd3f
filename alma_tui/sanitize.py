"""Text from outside (user hints, LLM-written titles, design logs, errors) made safe to print.

A terminal interprets escape sequences: an OSC sequence can retitle the window or write the
clipboard, a CSI one can recolour or erase the screen. Every piece of untrusted text goes
through :func:`sanitize` before it is stored, echoed or drawn. Whole escape sequences are
removed (not just their ESC byte, which would leave ``]0;pwned`` behind), then every other
control character except newline and tab, and the bidirectional overrides that make
text display in an order other than the one it is stored in.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"""
      \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC ... BEL/ST (or unterminated)
    | \x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?     # C1 OSC
    | \x1b[P^_X][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, PM, APC, SOS strings
    | (?:\x1b\[|\x9b)[0-?]*[\x20-/]*[@-~]?           # CSI (7- or 8-bit)
    | \x1b[\x20-/]*[0-~]?                            # other two-byte escapes (ESC c, ESC 7, ...)
    """,
    re.VERBOSE,
)
# C0 controls except \t and \n, DEL, C1 controls, bidi embeddings/overrides/isolates
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def sanitize(text: object, *, newlines: bool = True) -> str:
    """``text`` without terminal escape sequences or control characters.

    ``\\r\\n`` and ``\\r`` become ``\\n``; with ``newlines=False`` line breaks and tabs become
    spaces (for one-line fields such as titles and hints).
    """
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():  # the common case: nothing to do
        return s
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _CONTROLS.sub("", _ESCAPES.sub("", s))
    if not newlines:
        s = s.replace("\n", " ").replace("\t", " ")
    return s


def one_line(text: object, limit: int = 300) -> str:
    """``text`` sanitized as one readable line of at most ``limit`` characters.

    Whitespace runs (line breaks included) become one space; a longer text is cut at the
    last word boundary before the limit and ends with "…", never in the middle of a word.
    """
    s = " ".join(sanitize(text, newlines=False).split())
    if len(s) <= limit:
        return s
    head = s[: max(1, limit - 1)]
    cut = head.rfind(" ")
    if cut > limit // 2:  # a word boundary not too far back
        head = head[:cut]
    return head.rstrip(" ,;:.-") + "…"
