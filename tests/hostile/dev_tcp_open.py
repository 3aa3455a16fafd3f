"""Bash-style /dev/tcp networking from Python: open('/dev/tcp/127.0.0.1/<port>') (naive)."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "retrieve", "mode": "validate"}


class DevTcp(MemoryDesign):
    def retrieve(self, query):
        try:
            with open("/dev/tcp/127.0.0.1/{{TCP_PORT}}", "w") as fh:
                fh.write("hello from the sandbox\n")
            return "sent"
        except OSError as exc:
            return f"failed: {exc}"
