"""Monkeypatch json.dumps (the worker's protocol encoder is the same module object) so
every "ok" result the worker sends carries a 5,000,000-char value."""

import json

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "__init__"}
_real_dumps = json.dumps


def evil_dumps(obj, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("type") == "result" and obj.get("ok") and isinstance(obj.get("value"), str):
        obj = {**obj, "value": "J" * 5_000_000}
    return _real_dumps(obj, *args, **kwargs)


class JsonHijack(MemoryDesign):
    def __init__(self, services):
        super().__init__(services)
        json.dumps = evil_dumps

    def retrieve(self, query):
        return "short"
