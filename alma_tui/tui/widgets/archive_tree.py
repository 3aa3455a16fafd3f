"""The archive as a tree: every design under its parent, updated in place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from alma_tui.tui.format import best_design, design_label
from alma_tui.tui.rows import DesignRow

TITLE_WIDTH = 30  # title columns when the tree has its full width
FULL_WIDTH = 59  # the tree's width inside a 62-column archive pane; narrower trees shorten titles


class ArchiveTree(Tree[str]):
    """Incremental: new designs are added, changed ones relabelled, nothing rebuilt."""

    DEFAULT_CSS = """
    ArchiveTree { scrollbar-size-vertical: 1; }
    """

    @dataclass
    class DesignHighlighted(Message):
        design_id: str
        by_user: bool

    def __init__(self, **kw) -> None:
        super().__init__("archive", **kw)
        self.show_root = False
        self.guide_depth = 3
        self.auto_expand = True
        self.follow = True
        self._dnodes: dict[str, TreeNode[str]] = {}
        self._rows: dict[str, DesignRow] = {}
        self._scale: tuple[float, float, str | None] = (0.0, 1.0, None)
        self._labelled_width: int | None = None
        self._auto_id: str | None = None
        self.selected_id: str | None = None
        self.no_memory: float | None = None

    # -- data -------------------------------------------------------------------------------
    def row(self, design_id: str | None) -> DesignRow | None:
        return self._rows.get(design_id) if design_id else None

    @property
    def rows(self) -> dict[str, DesignRow]:
        return self._rows

    def _depth(self, d: DesignRow) -> int:
        depth, seen = 0, {d.id}
        while d.parent_id and d.parent_id in self._rows and d.parent_id not in seen:
            d = self._rows[d.parent_id]
            seen.add(d.id)
            depth += 1
        return depth

    def _label(self, d: DesignRow):
        lo, hi, best_id = self._scale
        parent = self._rows.get(d.parent_id) if d.parent_id else None
        # shorter titles deeper down keep the score column aligned
        width = max(6, self._title_width() - self.guide_depth * self._depth(d))
        return design_label(
            d,
            parent_score=parent.score if parent else None,
            best_id=best_id,
            lo=lo,
            hi=hi,
            title_width=width,
        )

    def _title_width(self) -> int:
        """Titles give way first on a narrow terminal, so the score column stays visible."""
        width = self.size.width
        return TITLE_WIDTH if not width else TITLE_WIDTH + min(0, width - FULL_WIDTH)

    def on_resize(self) -> None:
        if self._title_width() != self._labelled_width:
            self._labelled_width = self._title_width()
            for did, node in self._dnodes.items():
                node.set_label(self._label(self._rows[did]))

    def sync(self, designs: Sequence[DesignRow], no_memory: float | None) -> list[str]:
        """Bring the tree up to date; returns the ids of new designs."""
        best = best_design(designs)
        scores = [d.score for d in designs if d.score is not None]
        lo = no_memory if no_memory is not None else (min(scores) if scores else 0.0)
        hi = best.score if best is not None and best.score is not None else lo + 1.0
        scale = (lo, max(hi, lo + 1e-6), best.id if best else None)
        rescale = scale != self._scale
        self._scale = scale
        self.no_memory = no_memory
        new: list[str] = []
        old_rows = self._rows
        self._rows = {d.id: d for d in designs}
        for d in designs:
            node = self._dnodes.get(d.id)
            if node is None:
                parent_node = self._dnodes.get(d.parent_id) if d.parent_id else None
                if parent_node is None:
                    parent_node = self.root
                elif not parent_node.allow_expand:
                    parent_node.allow_expand = True
                    parent_node.expand()
                node = parent_node.add(self._label(d), data=d.id, expand=True, allow_expand=False)
                self._dnodes[d.id] = node
                new.append(d.id)
            else:
                prev = old_rows.get(d.id)
                parent_changed = d.parent_id is not None and old_rows.get(d.parent_id) != self._rows.get(d.parent_id)
                if rescale or prev != d or parent_changed:
                    node.set_label(self._label(d))
        if new and (self.follow or self.selected_id is None):
            newest = max(new, key=lambda i: self._rows[i].seq)
            self.go_to(newest, auto=True)
        return new

    # -- cursor -----------------------------------------------------------------------------
    def newest_id(self) -> str | None:
        return max(self._rows.values(), key=lambda d: d.seq).id if self._rows else None

    def go_to(self, design_id: str, *, auto: bool = False) -> bool:
        node = self._dnodes.get(design_id)
        if node is None:
            return False
        n = node.parent
        while n is not None and n is not self.root:
            n.expand()
            n = n.parent
        self._auto_id = design_id if auto else None
        if not auto:
            self.follow = False
        _ = self._tree_lines  # (re)build the lines so node._line is current
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)
        return True

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        did = event.node.data
        if did is None or did == self.selected_id:
            return
        self.selected_id = did
        by_user = did != self._auto_id
        if by_user:
            self.follow = False
        self.post_message(self.DesignHighlighted(did, by_user))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()

    def refresh_design_label(self, design_id: str, row: DesignRow) -> None:
        """Optimistic update after a steering action (the next poll confirms it)."""
        self._rows[design_id] = row
        node = self._dnodes.get(design_id)
        if node is not None:
            node.set_label(self._label(row))
