"""Screens of the alma TUI."""
