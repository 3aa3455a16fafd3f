"""Bad input and hostile conditions: one clear line, the right exit code, nothing corrupted, resumable.

Exit codes: 1 error, 2 usage (argparse), 130 interrupted. Every case checks that stderr has
no traceback and that the state on disk is what it was (or is resumable).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from alma_tui.cli import main
from tests.conftest import TINY

DISK_FULL = "disk full while writing {}: free some space and run again to resume"


def db(repo: Path) -> Path:
    return repo / ".alma" / "alma.db"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def run_row(repo: Path) -> dict:
    con = sqlite3.connect(db(repo))
    try:
        con.row_factory = sqlite3.Row
        return dict(con.execute("SELECT * FROM run").fetchone())
    finally:
        con.close()


def statuses(repo: Path) -> dict[str, str]:
    con = sqlite3.connect(db(repo))
    try:
        return dict(con.execute("SELECT id, status FROM design ORDER BY seq").fetchall())
    finally:
        con.close()


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alma_tui", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})},
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-iteration search (built once; tests work on copies)."""
    repo = tmp_path_factory.mktemp("searched") / "r"
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "1", *TINY]) == 0
    return repo


@pytest.fixture
def repo_copy(searched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    capsys.readouterr()
    dst = tmp_path / "r"
    shutil.copytree(searched, dst, symlinks=True)
    return dst


# -- 1. disk full ---------------------------------------------------------------------------------
def test_disk_full_during_a_run_is_one_line_and_resumable(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from alma_tui.lineage import Lineage

    real = Lineage.commit_design
    target = repo / ".git" / "objects"

    def full(self: Lineage, info, parent_commit):  # type: ignore[no-untyped-def]
        if info.design_id == "d002":
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(self, info, parent_commit)

    monkeypatch.setattr(Lineage, "commit_design", full)
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "1", *TINY]) == 1
    assert one_line(capsys.readouterr().err) == "alma-tui: error: " + DISK_FULL.format(target)
    monkeypatch.setattr(Lineage, "commit_design", real)  # space freed
    assert main(["run", "--headless", "--repo", str(repo)]) == 0
    assert run_row(repo)["status"] == "done" and set(statuses(repo).values()) <= {"accepted", "rejected"}


def test_sqlite_disk_full_is_one_line(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLITE_FULL (wrapped by SQLAlchemy) while the status itself cannot be written any more."""
    from sqlalchemy.exc import OperationalError

    from alma_tui.store.db import Store

    def full(self, *a, **k):  # type: ignore[no-untyped-def]
        raise OperationalError("UPDATE design", {}, sqlite3.OperationalError("database or disk is full"))

    real_update_run = Store.update_run

    def update_run(self, run_id, **fields):  # type: ignore[no-untyped-def]
        if fields.get("status") == "error":  # the final status does not fit either
            full(self)
        return real_update_run(self, run_id, **fields)

    monkeypatch.setattr(Store, "update_design", full)
    monkeypatch.setattr(Store, "update_run", update_run)
    assert main(["run", "--headless", "--repo", str(repo), "--iterations", "0", *TINY]) == 1
    assert one_line(capsys.readouterr().err) == "alma-tui: error: " + DISK_FULL.format(db(repo))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_on_a_real_small_filesystem(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        repo = mnt / "r"
        cp = cli(
            "run",
            "--headless",
            "--repo",
            str(repo),
            "--iterations",
            "2",
            "--collection",
            "3",
            "--deployment",
            "3",
            "--runs",
            "1",
        )
        assert cp.returncode == 1, cp.stderr
        line = one_line(cp.stderr)
        assert line.startswith("alma-tui: error: disk full while writing " + str(repo)), line
        assert line.endswith(": free some space and run again to resume")
        subprocess.run(["mount", "-o", "remount,size=40m", str(mnt)], check=True)  # space freed
        cp = cli("run", "--headless", "--repo", str(repo))
        assert cp.returncode == 0, cp.stderr
        con = sqlite3.connect(db(repo))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT status, iterations_done FROM run").fetchone() == ("done", 2)
        con.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


# -- 2. a damaged store ---------------------------------------------------------------------------
DAMAGED = (
    "alma-tui: error: the run store {} is damaged (sqlite: {}); move it aside and run "
    "`alma-tui repair --repo {}` to rebuild it from the lineage"
)


def test_garbage_in_the_middle_of_the_store(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = db(repo_copy)
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # one page in the middle overwritten
        fh.seek((size // 2) // 4096 * 4096)
        fh.write(bytes(range(256)) * 16)
    before = digest(path)
    for args in (
        ["designs"],
        ["designs", "--json"],
        ["pin", "d001"],
        ["veto", "d002"],
        ["hint", "x"],
        ["eval", "d001", "--runs", "1"],
        ["run", "--headless"],
    ):
        assert main([*args, "--repo", str(repo_copy)]) == 1, args
        line = one_line(capsys.readouterr().err)
        assert line.startswith(
            f"alma-tui: error: the run store {path} is damaged (sqlite: database disk image is malformed"
        ), (args, line)
        assert line.endswith(
            f"move it aside and run `alma-tui repair --repo {repo_copy}` to rebuild it from the lineage"
        ), line
    assert digest(path) == before


def test_garbage_inside_a_text_cell(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bytes that are not UTF-8 pass SQLite's page checks and fail only when read."""
    con = sqlite3.connect(db(repo_copy))
    con.execute("UPDATE design SET title = CAST(x'fffe41' AS TEXT) WHERE id = 'd002'")
    con.commit()
    con.close()
    for args in (["designs"], ["designs", "--json"]):
        assert main([*args, "--repo", str(repo_copy)]) == 1
        line = one_line(capsys.readouterr().err)
        head, tail = DAMAGED.format(
            db(repo_copy), "database disk image is malformed: Could not decode to UTF-8 column @", repo_copy
        ).split("@")
        assert line.startswith(head) and line.endswith(tail) and "title" in line, line


def test_not_a_database(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db(repo_copy).write_bytes(b"this is not sqlite" * 500)
    for f in ("alma.db-wal", "alma.db-shm"):
        (repo_copy / ".alma" / f).unlink(missing_ok=True)
    for args in (["designs"], ["pin", "d001"], ["run", "--headless"]):
        assert main([*args, "--repo", str(repo_copy)]) == 1
        assert one_line(capsys.readouterr().err) == DAMAGED.format(db(repo_copy), "file is not a database", repo_copy)


def test_empty_store_with_committed_designs(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db(repo_copy).write_bytes(b"")
    for f in ("alma.db-wal", "alma.db-shm"):
        (repo_copy / ".alma" / f).unlink(missing_ok=True)
    for args in (["designs"], ["designs", "--json"], ["pin", "d001"]):
        assert main([*args, "--repo", str(repo_copy)]) == 1
        line = one_line(capsys.readouterr().err)
        assert line == (
            "alma-tui: error: the store is empty but the lineage holds 4 designs; rebuild the archive "
            f"with `alma-tui repair --repo {repo_copy}`"
        ), line
    assert db(repo_copy).stat().st_size == 0  # not turned into an empty store


def test_empty_store_without_designs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "r"
    db(repo).parent.mkdir(parents=True)
    db(repo).write_bytes(b"")
    assert main(["designs", "--repo", str(repo)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"alma-tui: error: no alma-tui search found in {repo} (the store {db(repo)} holds no run yet)"
    )


# -- 3. numeric flags are checked by argparse ----------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--iterations", "99999999999999999999"], "argument --iterations: must be between 0 and 1000000"),
        (["run", "--iterations", "-1"], "argument --iterations: must be between 0 and 1000000"),
        (["run", "--iterations", "1e3"], "argument --iterations: invalid integer value: '1e3'"),
        (["run", "--budget-usd", "nan"], "argument --budget-usd: must be a finite number, not nan"),
        (["run", "--budget-usd", "inf"], "argument --budget-usd: must be a finite number, not inf"),
        (["run", "--budget-usd", "-1"], "argument --budget-usd: must be greater than 0 and at most 1e+09"),
        (["run", "--budget-tokens", "0"], "argument --budget-tokens: must be between 1 and 1000000000000000"),
        (["run", "--runs", "0"], "argument --runs: must be between 1 and 1000"),
        (["run", "--collection", "0"], "argument --collection: must be between 1 and 10000"),
        (["run", "--parents", "0"], "argument --parents: must be between 1 and 100"),
        (["run", "--concurrency", "100000"], "argument --concurrency: must be between 1 and 256"),
        (["run", "--seed", "-5"], "argument --seed: must be between 0 and 4294967295"),
        (["run", "--llm-timeout", "nan"], "argument --llm-timeout: must be a finite number, not nan"),
        (["run", "--llm-timeout", "0"], "argument --llm-timeout: must be greater than 0 and at most 86400"),
        (["run", "--llm-retries", "-1"], "argument --llm-retries: must be between 0 and 100"),
        (["run", "--max-concurrent-llm", "0"], "argument --max-concurrent-llm: must be between 1 and 1024"),
        (["run", "--meta-temperature", "inf"], "argument --meta-temperature: must be a finite number, not inf"),
        (["run", "--agent-temperature", "-0.5"], "argument --agent-temperature: must be at least 0 and at most 2"),
        (["eval", "no_memory", "--runs", "0"], "argument --runs: must be between 1 and 1000"),
        (["eval", "no_memory", "--deployment", "nan"], "argument --deployment: invalid integer value: 'nan'"),
    ],
)
def test_numeric_flags_are_usage_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "r"
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--repo", str(repo)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1  # one line, not argparse's usage block
    assert err.strip() == f"alma-tui {args[0]}: error: {message} (see `alma-tui {args[0]} --help`)"
    assert not repo.exists()


# -- 4. --iterations 0 never overwrites the target ------------------------------------------------
def test_iterations_zero_on_an_existing_search_shows_its_status(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = run_row(repo_copy)
    assert main(["run", "--headless", "--repo", str(repo_copy), "--iterations", "0"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{repo_copy}: done · 1/1 iterations · 4 designs (")
    after = run_row(repo_copy)
    assert (after["iterations_target"], after["iterations_done"], after["settings_json"]) == (
        before["iterations_target"],
        before["iterations_done"],
        before["settings_json"],
    )


def test_iterations_below_what_is_done_is_a_usage_error(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    con = sqlite3.connect(db(repo_copy))
    con.execute("UPDATE run SET iterations_done = 6, iterations_target = 10")
    con.commit()
    con.close()
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--headless", "--repo", str(repo_copy), "--iterations", "3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"alma-tui run: error: argument --iterations: {repo_copy} has already done 6 iterations; give a total "
        "of at least 6 (or 0 to show its status) (see `alma-tui run --help`)"
    )
    assert run_row(repo_copy)["iterations_target"] == 10


# -- 5. terminal escapes in user and model text ---------------------------------------------------
ESCAPES = "\x1b]0;pwned\x07\x1b[31mred\x1b[2J\u202e"


def test_hint_with_escapes_is_stored_and_echoed_clean(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hint", ESCAPES, "--repo", str(repo_copy)]) == 0
    out = capsys.readouterr().out
    assert out == "hint red recorded; the search applies it at its next selection\n"
    con = sqlite3.connect(db(repo_copy))
    assert con.execute("SELECT text FROM command WHERE kind = 'hint'").fetchall() == [("red",)]
    assert all("\x1b" not in m for (m,) in con.execute("SELECT message FROM event"))
    con.close()
    assert main(["hint", "\x1b[31m\x07", "--repo", str(repo_copy)]) == 1  # nothing left once cleaned
    assert one_line(capsys.readouterr().err) == "alma-tui: error: a hint needs some text"


def test_stored_escapes_never_reach_the_terminal(repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Titles written by the model, design log lines and errors are shown clean everywhere."""
    from rich.console import Console

    from alma_tui.headless import HeadlessReporter, archive_table
    from alma_tui.tui.data import Reader, read_designs, read_detail, read_events_after

    con = sqlite3.connect(db(repo_copy))
    con.execute("UPDATE design SET title = ?, error = ? WHERE id = 'd003'", (f"[bold]t{ESCAPES}[/]", ESCAPES))
    con.execute(
        "INSERT INTO event (ts, run_id, design_id, kind, message, data_json) VALUES "
        "('2026-01-01 00:00:00', 1, 'd003', 'design.log', ?, '{}')",
        (f"log {ESCAPES}",),
    )
    con.commit()
    con.close()
    assert main(["designs", "--repo", str(repo_copy)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "pwned" not in out and "[bold]tred" in out
    assert main(["designs", "--json", "--repo", str(repo_copy)]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["id"] == "d003")
    assert (row["title"], row["error"]) == ("[bold]tred[/]", "red")
    with Reader(repo_copy) as r:
        assert next(d for d in read_designs(r) if d.id == "d003").title == "[bold]tred[/]"
        assert read_events_after(r, 0)[-1].message == "log red"
        detail = read_detail(r, "d003")
        assert detail is not None and (detail.title, detail.error) == ("[bold]tred[/]", "red")
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=200)
    console.print(
        archive_table(
            [
                {
                    "id": "d9",
                    "parent": None,
                    "title": ESCAPES + "[/]",
                    "score": None,
                    "status": "rejected",
                    "commit": None,
                }
            ]
        )
    )
    reporter = HeadlessReporter(console)
    reporter.event("design.rejected", f"d9 rejected: {ESCAPES} [/] [weights]", "d9", {})
    text = buf.getvalue()
    assert "pwned" not in text and "\x1b]" not in text and "\x1b[2J" not in text and "[weights]" in text


# -- 6. a read-only repo --------------------------------------------------------------------------
@pytest.fixture
def read_only(repo_copy: Path, tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "--bind", str(repo_copy), str(mnt)]).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)]).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_read_only_repo_can_be_browsed(read_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = digest(db(read_only))
    assert main(["designs", "--repo", str(read_only), "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["d001", "d002", "d003", "d004"]
    assert main(["designs", "--repo", str(read_only)]) == 0
    assert f"{read_only}: done · 1/1 iterations" in capsys.readouterr().out
    assert (
        main(
            [
                "eval",
                "d003",
                "--repo",
                str(read_only),
                "--collection",
                "2",
                "--deployment",
                "2",
                "--runs",
                "1",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["design"] == "d003"
    assert main(["pin", "d001", "--repo", str(read_only)]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"alma-tui: error: cannot write to the run store {db(read_only)}: it is read-only"), line
    assert digest(db(read_only)) == before


# -- 7 and 8. a killed engine is interrupted; a design that kills it twice is quarantined -----------
def test_killed_engine_shows_as_interrupted(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from alma_tui.runstate import effective_status
    from alma_tui.tui.data import Reader, read_run
    from alma_tui.tui.rows import heartbeat_age
    from alma_tui.tui.widgets.status_bar import effective_status as header_status

    cp = cli(
        "run",
        "--headless",
        "--repo",
        str(repo),
        "--iterations",
        "0",
        *TINY,
        env={"ALMA_TUI_TEST_DIE_EVALUATING": "d002"},
    )
    assert cp.returncode == -9, cp.stderr  # SIGKILLed while evaluating d002
    assert run_row(repo)["status"] == "running"  # what the dead engine left behind
    assert main(["designs", "--repo", str(repo)]) == 0
    out = capsys.readouterr().out
    assert (
        f"{repo}: interrupted · 0/0 iterations · 2 designs (1 accepted, 0 rejected) · best d001 "
        in out.replace("\n", " ")
    ) or f"{repo}: interrupted · 0/0 iterations" in out
    with Reader(repo) as r:
        info = read_run(r)
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    assert header_status(info, heartbeat_age(info, now), None, repo, now) == "interrupted"
    assert effective_status("running", repo=repo, pid=info.pid, heartbeat_at=info.heartbeat_at) == "interrupted"
    cp = cli("run", "--headless", "--repo", str(repo))
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines()[0] == (
        f"resuming {repo}: its last engine stopped without finishing (0/0 iterations done)"
    )
    assert run_row(repo)["status"] == "done"


def test_design_that_kills_the_engine_twice_is_quarantined(repo: Path) -> None:
    die = {"ALMA_TUI_TEST_DIE_EVALUATING": "d003"}
    args = ("run", "--headless", "--repo", str(repo), "--iterations", "1", "--parents", "1", *TINY)
    for _ in range(2):
        cp = cli(*args, env=die)
        assert cp.returncode == -9, cp.stderr
        assert statuses(repo)["d003"] == "evaluating"
    cp = cli("run", "--headless", "--repo", str(repo), env=die)  # the third start does not evaluate it
    assert cp.returncode == 0, cp.stderr
    con = sqlite3.connect(db(repo))
    assert con.execute("SELECT status, error FROM design WHERE id = 'd003'").fetchone() == (
        "rejected",
        "crashed the engine twice",
    )
    assert con.execute("SELECT count(*) FROM evaluation WHERE design_id = 'd003'").fetchone() == (2,)
    assert con.execute("SELECT status, iterations_done FROM run").fetchone() == ("done", 1)
    con.close()


# -- 9. the heartbeat survives a transient store error ---------------------------------------------
def test_heartbeat_survives_a_transient_error(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from alma_tui.cli import build_parser, config_from_args
    from alma_tui.engine import search as search_mod
    from alma_tui.engine.heartbeat import Heartbeat
    from alma_tui.store.db import Store

    real = Store.update_run
    beats = {"failed": 0, "ok": 0}
    done = threading.Event()

    def flaky(self, run_id, **fields):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "alma-heartbeat":
            if beats["failed"] == 0:
                beats["failed"] += 1
                raise OperationalError("UPDATE run", {}, sqlite3.OperationalError("database is locked"))
            beats["ok"] += 1
            done.set()
        return real(self, run_id, **fields)

    monkeypatch.setattr(Store, "update_run", flaky)
    cfg = config_from_args(build_parser().parse_args(["run", "--repo", str(repo), "--iterations", "0", *TINY]))
    s = search_mod.Search(cfg)
    s.open()
    beat = Heartbeat(s.engine.ctx, interval_s=0.05)
    beat.start()
    try:
        assert done.wait(15), "the heartbeat stopped after one failed beat"
        assert beat.is_alive()
    finally:
        beat.stop(timeout=5)
        s.close()
    assert "heartbeat failed (1x, retrying): OperationalError" in (repo / ".alma" / "engine-error.log").read_text()
