"""Raise an exception whose __str__ does the stealing: the worker formats the error only
after it has switched its guard off, so __str__ runs unguarded and its text becomes the
failure reason the engine stores and feeds to the repair prompt."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class Loud(Exception):
    def __str__(self):
        try:
            with open("/proc/{{SENTINEL_PID}}/environ", "rb") as fh:
                return "LOOT " + " ".join(x.decode() for x in fh.read().split(b"\0") if b"CANARY" in x)
        except OSError as exc:
            return f"no loot: {exc}"


class Thrower(MemoryDesign):
    def update(self, episode):
        raise Loud()
