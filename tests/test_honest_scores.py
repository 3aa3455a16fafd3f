"""No duplicate work and one best: the normalised-code check and the tie rule."""

from __future__ import annotations

from alma_tui.archive_rows import best_id
from alma_tui.engine.dedup import duplicate_of, normal_form
from alma_tui.headless import archive_table

BASE = '''"""Remember where mugs were."""

LIMIT = 3  # how many places


class Mem:
    """Docstring."""

    def retrieve(self, q):
        # best first
        return "\\n".join(self.places[:LIMIT])
'''
# The same design: other docstrings, comments, layout and constant name.
SAME = '''"""A different story about the same code."""
TOP_K = 3
class Mem:
    def retrieve(self, q):
        return "\\n".join(self.places[: TOP_K])
'''
OTHER = BASE.replace("LIMIT = 3", "LIMIT = 4")


def test_duplicates_ignore_docstrings_comments_layout_and_constant_names() -> None:
    assert normal_form(BASE) == normal_form(SAME)
    assert normal_form(BASE) != normal_form(OTHER)
    assert duplicate_of(SAME, [("d002", OTHER), ("d005", BASE)]) == "d005"
    assert duplicate_of(OTHER, [("d005", BASE)]) is None
    assert duplicate_of("def broken(:", [("d005", BASE)]) is None  # no normal form: validation rejects it


def row(i: str, score: float | None, se: float | None = 0.05, status: str = "accepted") -> dict:
    return {"id": i, "parent": None, "title": i, "score": score, "score_se": se, "status": status, "commit": None}


def test_exactly_one_best_ties_by_standard_error_then_age() -> None:
    rows = [row("d001", 0.3), row("d003", 0.8, 0.07), row("d004", 0.8, 0.05), row("d006", 0.8, 0.05)]
    assert best_id(rows) == "d004"  # smaller s.e. beats d003; older beats d006
    assert best_id([*rows, row("d009", 0.9, status="rejected")]) == "d004"
    assert best_id([row("d001", None, status="evaluating")]) is None
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(archive_table(rows))
    assert console.export_text().count("│ best ") == 1
