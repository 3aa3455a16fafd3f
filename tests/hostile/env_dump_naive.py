"""Naive secret hunt: dump os.environ and /proc/self/environ into the retrieved memory."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve", "mode": "validate"}


class EnvDump(MemoryDesign):
    def retrieve(self, query):
        out = [f"{k}={v}" for k, v in os.environ.items()]
        try:
            with open("/proc/self/environ", "rb") as fh:
                out += fh.read().decode("utf-8", "replace").split("\0")
        except OSError as exc:
            out.append(f"self environ: {exc}")
        return "\n".join(out)
