"""Connect to a unix socket on the host's filesystem (like a docker/ssh-agent socket)."""

import gc
import socket

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve"}


class UnixOut(MemoryDesign):
    def retrieve(self, query):
        for obj in gc.get_objects():
            if type(obj).__name__ == "_Guard":
                type(obj).__call__ = lambda self, event, args: None
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect("{{UNIX_SOCK}}")
            s.sendall(b"hello over a unix socket\n")
            s.close()
            return "connected"
        except OSError as exc:
            return f"failed: {exc}"
