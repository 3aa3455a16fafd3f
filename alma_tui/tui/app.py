"""AlmaApp: a live view of the store plus a writer of steering commands.

Data flow: ONE thread worker tails the store every ``poll_interval`` seconds
(run row, light design rows, new events, LLM totals), diffs against the last
poll and publishes an :class:`~alma_tui.tui.data.Update` on ``store_updated``;
the main screen applies it in one go. Heavy reads (one design's detail, one
design's event history, git) run in their own exclusive workers.

Startup: every read goes through :class:`~alma_tui.tui.data.Reader` (stdlib
sqlite3), so the first data needs no sqlmodel/sqlalchemy (~0.8 s of imports that,
GIL-bound, would also slow the UI thread down). The sqlmodel :class:`Store`, needed
only to write steering commands, is opened in a worker once the first design is on
screen (or on the first command, whichever comes first). Nothing here imports
sqlmodel or the store before the first frame.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App
from textual.signal import Signal
from textual.worker import Worker, WorkerState, get_current_worker

from alma_tui.runstate import engine_running, lock_pid
from alma_tui.tui.bindings import APP_KEYS, KeymapError, check_keymap, env_keymap, to_bindings
from alma_tui.tui.commands import AlmaCommands
from alma_tui.tui.engine_proc import EngineProcess
from alma_tui.tui.messages import CommandDone, DetailLoaded, EngineExited, StoreMissing

if TYPE_CHECKING:
    from alma_tui.store import Store
    from alma_tui.tui.data import Reader
    from alma_tui.tui.rows import DesignRow, RunInfo, Totals, Update


_gc_frozen = False


def _freeze_startup_objects() -> None:
    """Move everything imported so far (Textual, Rich, ours: ~150k long-lived objects) out of
    the collector's sight, once per process. Without it the first full collection lands in the
    middle of the first layout and costs 50-80 ms; objects created later are collected as usual.
    """
    global _gc_frozen
    if not _gc_frozen:
        _gc_frozen = True
        gc.freeze()


class AlmaApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "alma"
    COMMANDS = App.COMMANDS | {AlmaCommands}
    BINDINGS = to_bindings(APP_KEYS)
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        repo: Path,
        *,
        engine: EngineProcess | None = None,
        clock: Callable[[], datetime] | None = None,
        poll_interval: float = 0.25,
        keymap: dict[str, str] | None = None,
        theme: str | None = None,
        deterministic: bool = False,
        attached_pid: int | None = None,
        continue_flags: Sequence[str] = (),
    ) -> None:
        _freeze_startup_objects()
        super().__init__()
        # one-line problems with the user's keymap or theme, shown as a toast once mounted
        self.setup_warnings: list[str] = []
        # Set the theme before the stylesheet is first parsed: set in on_mount it re-parses
        # every CSS source and restyles every widget before the first frame (~100 ms).
        if theme and theme not in self.available_themes:
            self.setup_warnings.append(f"unknown theme {theme!r}; using monokai")
            theme = None
        theme = theme or "monokai"
        if theme in self.available_themes:
            self.theme = theme
        self.repo = Path(repo).resolve()
        self.engine = engine
        # set when we were asked to start an engine but found one running (0: pid unknown)
        self.attached_pid = attached_pid
        self.clock = clock or (lambda: datetime.now(UTC))
        self.poll_interval = poll_interval
        self.deterministic = deterministic
        self._keymap: dict[str, str] = {}
        try:  # the settings file's [keymap] (checked by the CLI, again here), then the environment
            self._keymap.update(check_keymap(keymap or {}, "keymap"))
            self._keymap.update(env_keymap())
        except KeymapError as exc:
            self.setup_warnings.append(str(exc))
        # how "continue" starts an engine (tests swap in a stand-in), and this start's one-time
        # flags it passes on (--allow-weak-sandbox, --skip-model-check, the executor)
        self.continue_flags = list(continue_flags)
        self.engine_factory: Callable[[Path, list[str]], EngineProcess] = EngineProcess
        self.store_updated: Signal[Update] = Signal(self, "store-updated")
        self.store: Store | None = None
        self.run_info: RunInfo | None = None
        self.designs: list[DesignRow] = []
        self.totals: Totals | None = None
        self.engine_exit: int | None = None
        self.engine_tail: str = ""
        self.polls = 0
        self._wake = threading.Event()
        self._store_lock = threading.Lock()
        self._store_error = ""
        self._store_opener_started = False
        self.reader: Reader | None = None  # the poller's connection; None until the store exists
        self.started_at = time.perf_counter()
        self.first_frame_s: float | None = None
        self.worker_errors: list[str] = []  # one line per failed worker (shown as a toast too)

    # -- lifecycle --------------------------------------------------------------------------
    def get_default_screen(self):
        from alma_tui.tui.screens.main import MainScreen

        self.main_screen = MainScreen()
        return self.main_screen

    def tell(self, message) -> None:
        """Post to the main screen (thread-safe); workers report there."""
        screen = getattr(self, "main_screen", None)
        (screen or self).post_message(message)

    def on_mount(self) -> None:
        if self._keymap:
            self.set_keymap(self._keymap)
        for warning in self.setup_warnings:
            self.notify(warning, severity="warning", title="settings", timeout=10)
        if self.attached_pid is not None:
            pid = self.attached_pid or "unknown"
            self.notify(f"attached to the search already running in {self.repo} (pid {pid})")
        # start polling once the first frame is on screen
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        self.first_frame_s = time.perf_counter() - self.started_at
        self.poll_store()

    def poll_now(self) -> None:
        self._wake.set()

    @work(thread=True, exclusive=True, group="poll", name="store-poller", exit_on_error=False)
    def poll_store(self) -> None:
        worker = get_current_worker()
        from alma_tui.tui.data import Poller, Reader, ReaderError

        reader: Reader | None = None
        told_missing = False
        while not worker.is_cancelled and reader is None:
            try:
                reader = Reader(self.repo)
                break
            except ReaderError as exc:
                reason = str(exc)
            if not told_missing:
                self.tell(StoreMissing(reason))
                told_missing = True
            self._check_engine()
            self._wake.wait(0.5)
            self._wake.clear()
        if reader is None:
            return
        self.reader = reader
        poller = Poller(reader)
        while not worker.is_cancelled:
            try:
                up = poller.poll()
            except Exception as exc:  # locked/corrupt db, schema change mid-run: keep going
                self.log.error(f"poll failed: {exc!r}")
                up = None
            if up is not None and (not up.empty or up.first):
                if worker.is_cancelled:
                    break
                # blocks until the UI has applied it: natural back-pressure
                self.call_from_thread(self._apply_update, up)
            self._check_engine()
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        reader.close()

    # -- the write side (sqlmodel), opened off the startup path -----------------------------
    def _open_store(self) -> Store | None:
        """Open the sqlmodel Store for writes (thread-safe, once); None if it cannot be."""
        with self._store_lock:
            if self.store is None and not self._store_error:
                from alma_tui.store import Store, StoreError

                try:
                    self.store = Store(self.repo, create=False)
                except StoreError as exc:
                    self._store_error = str(exc)
        return self.store

    def open_store(self) -> None:
        """Warm up the write side in the background (called once data is on screen)."""
        if not self._store_opener_started and self.store is None:
            self._store_opener_started = True
            self._open_store_worker()

    @work(thread=True, group="store", name="store-opener", exit_on_error=False)
    def _open_store_worker(self) -> None:
        self._open_store()

    def _check_engine(self) -> None:
        if self.engine is None or self.engine_exit is not None:
            return
        rc = self.engine.returncode()
        if rc is not None:
            self.engine_exit = rc
            self.engine_tail = self.engine.log_tail(15)
            self.tell(EngineExited(rc, self.engine_tail))

    def _apply_update(self, up: Update) -> None:
        if up.run_changed or up.run is not None:
            self.run_info = up.run
        if up.designs is not None:
            self.designs = up.designs
        if up.totals is not None:
            self.totals = up.totals
        self.polls += 1
        self.store_updated.publish(up)

    # -- reads in workers -------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="detail", name="detail-loader", exit_on_error=False)
    def load_detail(self, design_id: str, tabs: tuple[str, ...] = ()) -> None:
        import sqlite3

        from alma_tui.tui.data import Reader, ReaderError, read_detail

        worker = get_current_worker()
        try:
            with Reader(self.repo) as db:
                detail = read_detail(db, design_id)
            from alma_tui.tui.widgets.detail import build_views

            if worker.is_cancelled:
                return
            views = build_views(detail, tabs) if detail is not None else None
        except (ReaderError, sqlite3.Error) as exc:
            self.log.error(f"detail of {design_id} failed: {exc!r}")
            self.tell(DetailLoaded(design_id, None, f"cannot read the store: {exc}"))
            return
        except Exception as exc:  # a row this version cannot render: say so, keep the UI
            self.log.error(f"detail of {design_id} failed: {exc!r}")
            self.tell(DetailLoaded(design_id, None, f"cannot show {design_id}: {type(exc).__name__}: {exc}"))
            return
        if not worker.is_cancelled:
            self.tell(DetailLoaded(design_id, views))

    @work(thread=True, exclusive=True, group="history", name="history-loader", exit_on_error=False)
    def load_design_history(self, design_id: str, callback: Callable[[str, list], None]) -> None:
        import sqlite3

        from alma_tui.tui.data import Reader, ReaderError, read_design_events

        worker = get_current_worker()
        try:
            with Reader(self.repo) as db:
                events = read_design_events(db, design_id)
        except (ReaderError, sqlite3.Error) as exc:
            self.log.error(f"history of {design_id} failed: {exc!r}")
            return
        if not worker.is_cancelled:
            self.call_from_thread(callback, design_id, events)

    # -- worker failures --------------------------------------------------------------------
    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for every worker that failed: a toast and the log, never a dead UI.

        Workers run with ``exit_on_error=False`` (Textual's default would exit the app on
        the first exception in any of them). The store poller is restarted, since
        without it nothing on screen would move again.
        """
        if event.state != WorkerState.ERROR:
            return
        worker = event.worker
        err = worker.error
        what = worker.name or worker.group
        line = f"{type(err).__name__}: {err}" if err is not None else "unknown error"
        self.log.error(f"worker {what} failed: {err!r}")
        self.worker_errors.append(f"{what}: {line}")
        self.notify(f"{what} failed: {line}", severity="error", title="internal error", timeout=10)
        if worker.group == "poll" and not self._exiting:
            self.set_timer(1.0, self.poll_store)

    @property
    def _exiting(self) -> bool:
        return bool(getattr(self, "_exit", False)) or self.return_code is not None

    # -- writes -----------------------------------------------------------------------------
    @work(thread=True, group="commands", name="steering", exit_on_error=False)
    def send_command(self, kind: str, design_id: str | None = None, text: str = "") -> None:
        store = self._open_store() if self.reader is not None else None
        if store is None:
            why = self._store_error or "the store is not open yet"
            self.tell(CommandDone(kind, design_id, False, why))
            return
        try:
            store.command(kind, design_id, text, source="tui")
        except Exception as exc:
            self.tell(CommandDone(kind, design_id, False, str(exc)))
            return
        self.tell(CommandDone(kind, design_id, True))
        self.poll_now()

    # -- continue a finished search ---------------------------------------------------------
    def continue_search(self, iterations: int, budget_usd: float | None) -> None:
        """Start an engine that resumes this search up to ``iterations`` in total (and, with
        ``budget_usd``, a raised budget): `alma-tui run --headless` with those two flags, all
        else from the settings stored in the repo. Quitting stops it as any engine the app started."""
        argv = continue_argv(self.repo, iterations, budget_usd) + self.continue_flags
        engine = self.engine_factory(self.repo, argv)
        try:
            engine.start()
        except OSError as exc:
            self.notify(f"cannot start the engine: {exc}", severity="error")
            return
        self.engine = engine
        self.engine_exit = None
        self.engine_tail = ""
        self.attached_pid = None
        more = f"up to {iterations} iterations" + (f", budget ${budget_usd:g}" if budget_usd else "")
        self.notify(f"continuing the search: {more}", title="engine", timeout=5)
        screen = getattr(self, "main_screen", None)
        if screen is not None:
            screen.engine_started()
        self.poll_now()

    async def wait_commands(self) -> None:
        """Await every steering write in flight (tests, quitting)."""
        pending = [w for w in self.workers if w.group == "commands"]
        if pending:
            await self.workers.wait_for_complete(pending)

    # -- helpers ----------------------------------------------------------------------------
    def design(self, design_id: str | None) -> DesignRow | None:
        if design_id is None:
            return None
        for d in self.designs:
            if d.id == design_id:
                return d
        return None

    def now(self) -> datetime:
        return self.clock()

    async def action_quit(self) -> None:
        await self.wait_commands()
        if self.engine is not None and self.engine.running():
            self.notify("Stopping the engine (it stays resumable)…", timeout=3)
        self.exit(0)

    def action_detach(self) -> None:
        """Quit the UI but leave an engine started by it running."""
        if self.engine is not None:
            self._detached = True
        self.exit(0)


def continue_argv(repo: Path, iterations: int, budget_usd: float | None) -> list[str]:
    """The engine's arguments for "continue": a headless resume with a new total (and budget)."""
    argv = ["run", "--headless", "--repo", str(repo), "--iterations", str(iterations)]
    if budget_usd is not None:
        argv += ["--budget-usd", repr(float(budget_usd))]
    return argv


def build_app(repo: Path, engine_argv: list[str] | None = None, *, attach: bool = False, **app_kw: Any) -> AlmaApp:
    """The app for ``repo``; with ``engine_argv`` it also starts the engine, unless one runs there.

    A search already running in the repo (its engine holds ``.alma/engine.lock``) is not
    started again: a second engine would only exit with "already running" and the app
    would show that as a failure. The app attaches to it instead, as ``alma-tui watch``
    does, and says so; quitting then leaves that engine alone. ``attach`` says the caller
    found it running already (announce it, start nothing).
    """
    repo = Path(repo).resolve()
    engine: EngineProcess | None = None
    attached_pid: int | None = None
    if engine_argv is not None or attach:
        if engine_running(repo):
            attached_pid = lock_pid(repo) or 0
        elif engine_argv is not None:
            engine = EngineProcess(repo, engine_argv)
            engine.start()
    return AlmaApp(repo, engine=engine, attached_pid=attached_pid, **app_kw)


def finish(app: AlmaApp, *, crashed: bool | None = None) -> int:
    """After the app has run: stop the engine it started (not one it attached to); exit code."""
    engine = app.engine
    if crashed is None:
        crashed = app.return_code not in (0, None)
    if engine is not None:
        detached = getattr(app, "_detached", False)
        if crashed or detached:
            if engine.running():
                why = "the UI crashed" if crashed else "detached"
                print(
                    f"alma-tui: {why}; the engine keeps running (pid {engine.pid}). "
                    f"Re-attach with: alma-tui watch --repo {app.repo}",
                    file=sys.stderr,
                )
        elif engine.running():
            print("alma-tui: stopping the engine (SIGINT)…", file=sys.stderr)
            rc = engine.stop(timeout=8.0)
            if rc not in (0, None, -2, 130):
                print(
                    f"alma-tui: engine exited with code {rc}; see {engine.log_path}",
                    file=sys.stderr,
                )
    if engine is not None and app.engine_exit not in (None, 0):
        print(
            f"alma-tui: the engine failed (exit {app.engine_exit}). Last lines of "
            f"{engine.log_path}:\n{app.engine_tail}",
            file=sys.stderr,
        )
        return 1
    return 0 if app.return_code in (0, None) else int(app.return_code)


def run_tui(repo: Path, engine_argv: list[str] | None = None, *, attach: bool = False, **app_kw: Any) -> int:
    """Run the TUI on ``repo``; with ``engine_argv`` also start (and on quit stop) the engine.

    ``engine_argv`` are the arguments of ``python -m alma_tui`` for a headless run,
    e.g. ``["run", "--headless", "--repo", str(repo), "--iterations", "10"]``; when a
    search already runs in ``repo`` the TUI attaches to it instead (see :func:`build_app`).
    Returns a process exit code.
    """
    app = build_app(repo, engine_argv, attach=attach, **app_kw)
    try:
        app.run()
    except BaseException:
        finish(app, crashed=True)
        raise
    return finish(app)
