"""Channel forgery for snapshot(): a forged result with a 30 MB dict (the worker's own
snapshot size check never runs)."""

import json
import os
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "snapshot"}


class SnapForger(MemoryDesign):
    def snapshot(self):
        f, call_id = sys._getframe(), 5
        while f is not None:
            req = f.f_locals.get("req")
            if isinstance(req, dict) and "id" in req:
                call_id = req["id"]
                break
            f = f.f_back
        data = (
            json.dumps({"type": "result", "id": call_id, "ok": True, "value": {"blob": "S" * (30 << 20)}}) + "\n"
        ).encode()
        for fd in range(3, 31):
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                continue
        return {}
