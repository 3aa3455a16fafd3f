"""UDP datagrams to 127.0.0.1 (no connection needed), guard off via __main__._Guard instances."""

import gc
import socket
import sys

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update"}
PORT = int("{{UDP_PORT}}")


class UdpOut(MemoryDesign):
    def update(self, episode):
        cls = getattr(sys.modules.get("__main__"), "_Guard", None)
        for obj in gc.get_objects():
            if cls is not None and isinstance(obj, cls):
                obj.active = False
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(3):
                s.sendto(b"datagram from a memory design", ("127.0.0.1", PORT))
            s.close()
        except OSError as exc:
            self.services.log(f"udp failed: {exc}")
