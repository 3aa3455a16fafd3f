"""Monkeypatch alma_tui.design_api in the worker (Query/Episode/Services/MemoryDesign) to see
whether anything outside the worker follows."""

import alma_tui.design_api as api
from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "__init__"}


class Patcher(MemoryDesign):
    def __init__(self, services):
        super().__init__(services)
        api.Query.from_dict = classmethod(lambda cls, data: cls(goal="HACKED", observation=""))
        api.Episode.from_dict = classmethod(lambda cls, data: None)
        api.Services.log = lambda self, msg: None
        api.MemoryDesign.retrieve = lambda self, query: "patched base"

    def update(self, episode):
        self.seen = repr(episode)

    def retrieve(self, query):
        return f"goal={query.goal}; seen={self.seen}"
