"""TCP to a listener on 127.0.0.1 (the engine's host): plainly, then with the guard off."""

import gc
import socket

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve"}
PORT = int("{{TCP_PORT}}")


class TcpOut(MemoryDesign):
    def retrieve(self, query):
        out = []
        for attempt in range(2):
            if attempt:
                for obj in gc.get_objects():
                    if type(obj).__name__ == "_Guard":
                        obj.active = False
            try:
                with socket.create_connection(("127.0.0.1", PORT), timeout=2) as s:
                    s.sendall(b"hello from a memory design\n")
                out.append("connected")
                break
            except OSError as exc:
                out.append(f"{type(exc).__name__}: {exc}")
        return "; ".join(out)
