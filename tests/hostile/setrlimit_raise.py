"""Raise the worker's own rlimits back (root may raise hard limits), then allocate beyond
the memory limit and ignore the CPU limit. Guard off by clearing __main__._FORBIDDEN_EVENTS."""

import resource
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class LimitRaiser(MemoryDesign):
    def update(self, episode):
        table = getattr(sys.modules.get("__main__"), "_FORBIDDEN_EVENTS", None)
        if hasattr(table, "clear"):
            table.clear()
        inf = resource.RLIM_INFINITY
        raised = []
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE"):
            which = getattr(resource, name)
            before = resource.getrlimit(which)
            try:
                resource.setrlimit(which, (inf, inf))
                raised.append(f"{name} {before} -> unlimited")
            except (OSError, ValueError):
                pass
        if raised:
            self.services.log("PWNED: raised " + ", ".join(raised))
        try:
            self.blob = bytearray(700 << 20)  # > the 512 MB limit the harness set
            self.services.log("PWNED: allocated 700 MB past the memory limit")
        except MemoryError:
            self.blob = None
