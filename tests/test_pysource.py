"""Parsing from concurrent children: CPython 3.11's AST converter shares a counter between
threads (python/cpython#106905) and failed a CI run with "AST constructor recursion depth
mismatch" when two children were checked at once. These tests keep every parse behind
``alma_tui.pysource``'s lock."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from alma_tui import pysource
from alma_tui.designs import BUILTIN, builtin_source

PACKAGE = Path(__file__).resolve().parents[1] / "alma_tui"


def test_no_module_parses_python_outside_the_lock() -> None:
    raw = re.compile(r"\bast\.(parse|literal_eval)\(")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "pysource.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if raw.search(line.split("#")[0]) and "``" not in line
    ]
    assert offenders == []


class _Finaliser:
    """Cyclic garbage whose finaliser yields the GIL: the thread switch inside the C AST
    conversion that exposes the shared counter (the engine has such objects: sockets,
    SQLAlchemy connections)."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        time.sleep(0)


def test_parsing_from_many_threads_at_once_never_fails() -> None:
    codes = [builtin_source(name) for name in BUILTIN]
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(25):
            for code in codes:
                for _ in range(30):
                    _Finaliser()
                try:
                    pysource.parse(code)
                    pysource.literal_eval("{'a': [1, 2.5, None]}")
                except BaseException as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_parse_and_literal_eval_behave_like_ast() -> None:
    assert pysource.parse("x = 1\n").body
    assert pysource.literal_eval("[1, 'a', None]") == [1, "a", None]
