"""Read the benchmark generator's source (alma_tui/domains/household.py) to learn where
objects are: located next to design_api, opened with dir_fd so the path rule misses it."""

import os

import alma_tui.design_api as api
from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}


class SourceReader(MemoryDesign):
    def update(self, episode):
        pkg = os.path.dirname(os.path.realpath(api.__file__))
        try:
            d = os.open(pkg, os.O_RDONLY)  # the package dir itself is not under the rule
            fd = os.open("domains/household.py", os.O_RDONLY, dir_fd=d)
            src = os.read(fd, 1 << 20).decode()
        except OSError as exc:
            self.src = f"blocked: {exc}"
            return
        self.src = "\n".join(line for line in src.splitlines() if line.startswith("P_"))

    def retrieve(self, query):
        return self.src
