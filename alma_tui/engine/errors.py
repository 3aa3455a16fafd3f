"""Errors of the search engine that callers (the CLI, the TUI's engine process) act on."""

from __future__ import annotations


class SearchError(Exception):
    """A search cannot start or continue (one clear line for the user)."""
