"""Widgets of the alma TUI."""
