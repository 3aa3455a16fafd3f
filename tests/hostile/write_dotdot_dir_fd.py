"""Escape the scratch dir with "../" paths, and with dir_fd opens (the path check sees a
harmless relative name and resolves it against the cwd)."""

import os

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}
MARKER = "{{MARKER}}"


class DotDot(MemoryDesign):
    def update(self, episode):
        results = []
        try:
            with open("../" * 12 + f"tmp/{MARKER}-dotdot.txt", "w") as fh:
                fh.write("x")
            results.append("dotdot ok")
        except OSError as exc:
            results.append(f"dotdot: {exc}")
        for where in ("/tmp", "{{OUTSIDE_DIR}}"):
            try:
                d = os.open(where, os.O_RDONLY)
                fd = os.open(f"{MARKER}-dirfd.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d)
                os.write(fd, b"written via dir_fd\n")
                os.close(fd)
                results.append(f"dir_fd {where} ok")
            except OSError as exc:
                results.append(f"dir_fd {where}: {exc}")
        self.results = results

    def retrieve(self, query):
        return "; ".join(self.results)
