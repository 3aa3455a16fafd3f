"""No memory: the agent acts from its instructions alone.

The normaliser of every search: a design's score is read relative to this one.
It stores nothing and retrieves the empty string, so the agent's prompt gets no
"relevant past experience" section at all.
"""

from alma_tui.design_api import Episode, MemoryDesign, Query


class NoMemory(MemoryDesign):
    """Remembers nothing; counts updates only so the TUI shows it was fed."""

    def __init__(self, services):
        super().__init__(services)
        self.seen = 0

    def update(self, episode: Episode) -> None:
        self.seen += 1

    def retrieve(self, query: Query) -> str:
        return ""

    def snapshot(self) -> dict:
        return {"episodes_seen": self.seen, "items": []}
