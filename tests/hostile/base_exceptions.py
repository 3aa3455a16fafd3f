"""Raise BaseException subclasses the worker might not expect: KeyboardInterrupt in update,
GeneratorExit in retrieve, a custom BaseException in snapshot."""

from alma_tui.design_api import MemoryDesign

EXPECT = {"op": "update", "kind_in": ["error", "crash"]}


class Weird(BaseException):
    pass


class Interrupter(MemoryDesign):
    def update(self, episode):
        raise KeyboardInterrupt("ctrl-c from the design")

    def retrieve(self, query):
        raise GeneratorExit

    def snapshot(self):
        raise Weird("boom")
