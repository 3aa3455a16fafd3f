"""Baba Is AI: rule-manipulation puzzles on our own pure-Python engine.

:mod:`.engine` (rules and moves), :mod:`.render` (the text observation), :mod:`.solver`
(BFS), :mod:`.levels` (seeded families), :mod:`.domain` (the ``babaisai`` domain).
"""

from __future__ import annotations

from alma_tui.domains.babaisai.domain import BabaIsAIDomain, BabaIsAIEnv

__all__ = ["BabaIsAIDomain", "BabaIsAIEnv"]
