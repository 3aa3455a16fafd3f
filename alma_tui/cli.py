"""`alma-tui`: the command line. Fast to start (nothing heavy at import), one clear line on error.

Exit codes: 0 ok, 1 error (one message, no traceback), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from alma_tui import offline
from alma_tui.archive_rows import best_id, design_rows
from alma_tui.sanitize import sanitize

DEFAULT_REPO = "designs_repo"


class CliError(Exception):
    """An error the user can fix; printed as one line."""


# -- numeric flags: checked by argparse, so a bad value is a usage error (exit 2) --------------
# (their ranges are the settings' own: alma_tui/engine/config.py; _setting_args derives the flags)
def int_in(lo: int, hi: int) -> Any:
    """argparse ``type=``: an integer in [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(lo: float, hi: float, *, low_open: bool = False) -> Any:
    """argparse ``type=``: a finite number in [lo, hi] (or (lo, hi] with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text.strip()}")
        if value < lo or (low_open and value == lo) or value > hi:
            bound = f"greater than {lo:g}" if low_open else f"at least {lo:g}"
            raise argparse.ArgumentTypeError(f"must be {bound} and at most {hi:g}")
        return value

    parse.__name__ = "number"
    return parse


def _repo_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repo",
        default=DEFAULT_REPO,
        type=Path,
        help=f"designs repo (git) holding the search; default ./{DEFAULT_REPO}",
    )


def checked(check: Callable[[Any], Any]) -> Callable[[str], str]:
    """An argparse type from a setting's validator: its ValueError becomes the usage error."""

    def parse(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def _setting_args(p: argparse.ArgumentParser, paths: tuple[str, ...]) -> None:
    """One flag per setting, derived from ``SearchConfig``: its name from ``FLAGS``, its type,
    range and choices from the field's annotation (so the CLI cannot drift from the settings)."""
    from alma_tui.engine.config import FLAG_BY_PATH, field_spec

    for path in paths:
        if path == "repo":
            _repo_arg(p)
            continue
        flag = FLAG_BY_PATH[path]
        spec = field_spec(path)
        kw: dict[str, Any] = {"dest": flag.dest, "default": None, "help": flag.help}
        if spec.kind is bool:
            kw["action"] = "store_true"
        elif spec.kind is list:
            kw["action"] = "append"
            kw["metavar"] = "FILE"
        elif spec.choices is not None:
            kw["choices"] = list(spec.choices)
        elif spec.kind is int:
            lo = spec.ge if spec.ge is not None else (spec.gt + 1 if spec.gt is not None else -(2**63))
            kw["type"] = int_in(int(lo), int(spec.le if spec.le is not None else 2**63 - 1))
        elif spec.kind is float:
            flo: float | None = spec.gt if spec.gt is not None else spec.ge
            kw["type"] = float_in(
                float(flo if flo is not None else -math.inf),
                float(spec.le if spec.le is not None else math.inf),
                low_open=spec.gt is not None,
            )
        elif spec.check is not None:
            kw["type"] = checked(spec.check)
        p.add_argument(flag.flag, **kw)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML settings file (keys: the flags' names); flags and ALMA_TUI_* variables win over it",
    )


def _run_args(p: argparse.ArgumentParser) -> None:
    from alma_tui.engine.config import FLAGS

    _setting_args(p, tuple(f.path for f in FLAGS))
    _config_arg(p)
    p.add_argument("--headless", action="store_true", help="no TUI: rich progress on the terminal")
    # the TUI starts its engine with the settings it resolved, whole (see _run_with_tui)
    p.add_argument("--settings-json", default=None, help=argparse.SUPPRESS)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("alma-tui")
    except metadata.PackageNotFoundError:  # a source checkout that was never installed
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the 20-line usage block buried the message)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, the flags of `run` and `eval` (derived from the settings,
    which imports pydantic) are added only to that command's parser, so `--help` and the other
    commands start fast."""
    full = command is None
    parser = _Parser(
        prog="alma-tui",
        description="Run, watch and steer an ALMA search over agent memory designs written as code. "
        "With no command, `alma-tui` starts or resumes the search in ./designs_repo and opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"alma-tui {_version()}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser(
        "run",
        help="start or resume a search (default command)",
        epilog="Each setting flag can also come from the environment as ALMA_TUI_<FLAG> (ALMA_TUI_AGENT_MODEL, "
        'ALMA_TUI_LLM_TIMEOUT, ...) or from a TOML --config FILE (agent-model = "..."). Precedence: flags > '
        "environment > file > the settings stored in the repo (a resume keeps them) > the user settings "
        "file (~/.config/alma-tui/config.toml: same keys, plus [keymap] and theme) > defaults.",
    )
    if full or command == "run":
        _run_args(run)
    else:
        _repo_arg(run)
    _repo_arg(sub.add_parser("watch", help="attach the TUI to a search running elsewhere"))
    sv = sub.add_parser(
        "serve",
        help="serve the app (watching the search in the repo) to a browser over HTTP",
        description="Serve the same app as `alma-tui watch` to web browsers (textual-serve). Each browser "
        "tab runs its own app process attached to the repo's search. Listens on localhost unless --host "
        "says otherwise; for a remote machine, forward the port (ssh -L 8000:localhost:8000 host).",
    )
    _repo_arg(sv)
    sv.add_argument("--host", default="localhost", help="address to listen on (default: localhost)")
    sv.add_argument("--port", type=int_in(1, 65535), default=8000, help="port (default: 8000)")
    sv.add_argument("--public-url", default=None, help="the URL browsers use, when behind a proxy")
    ev = sub.add_parser("eval", help="evaluate one design (id, git rev, built-in name or .py path)")
    ev.add_argument("design")
    if full or command == "eval":
        from alma_tui.engine.config import EVAL_PATHS

        _setting_args(ev, EVAL_PATHS)
        _config_arg(ev)
        ev.add_argument("--split", default="test", choices=["train", "test"])
        ev.add_argument("--json", action="store_true")
    else:
        _repo_arg(ev)
    _compare_parser(sub, full or command == "compare")
    ds = sub.add_parser("designs", help="the archive as a table")
    _repo_arg(ds)
    ds.add_argument("--json", action="store_true")
    for kind in ("pin", "unpin", "veto", "unveto"):
        sp = sub.add_parser(kind, help=f"{kind} a design (takes effect at the next selection)")
        sp.add_argument("design")
        _repo_arg(sp)
    for kind in ("pause", "resume", "stop"):
        extra = " (once the evaluations in progress finish)" if kind == "stop" else ""
        _repo_arg(sub.add_parser(kind, help=f"{kind} the search running in the repo{extra}"))
    hp = sub.add_parser("hint", help="add a hint for the meta agent's next analysis")
    hp.add_argument("text")
    _repo_arg(hp)
    _repo_arg(sub.add_parser("repair", help="bring the archive (store) and the git lineage back into agreement"))
    sub.add_parser("domains", help="available domains and what they still need")
    sub.add_parser("baselines", help="built-in memory designs")
    sub.add_parser("doctor", help="check this machine: design sandbox isolation, git, models")
    return parser


def main(argv: list[str] | None = None) -> int:
    offline.install()  # the default offline/* models plug into the model client (alma_tui.llm.providers)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["run", *argv]  # `alma-tui --repo R` is `alma-tui run --repo R`
    parser = build_parser(argv[0])
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except UsageError as exc:
        _subparser(parser, args.command).error(str(exc))  # usage line + message, exit 2
        return 2
    except CliError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # `alma-tui designs --json | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # the machine or the store failed under us: still one line
        message = _failure_message(exc, Path(getattr(args, "repo", None) or DEFAULT_REPO))
        if message is None:
            raise
        _err(message)
        return 1


class UsageError(CliError):
    """A flag that parses but makes no sense here (exit 2 with the usage line)."""


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def _failure_message(exc: BaseException, repo: Path) -> str | None:
    """One line for a full disk, a read-only file system or a damaged store; None if unknown."""
    from alma_tui.failures import disk_full_message, disk_full_target, read_only_target

    full = disk_full_target(exc, repo)
    if full is not None:
        return disk_full_message(full)
    ro = read_only_target(exc)
    if ro is not None:
        return f"cannot write to {ro or repo}: read-only file system"
    import sqlite3

    orig = getattr(exc, "orig", None)
    if isinstance(exc, sqlite3.Error) or isinstance(orig, sqlite3.Error):  # raw or wrapped by SQLAlchemy
        from alma_tui.store.peek import damaged_message, sqlite_problem

        reason = (str(orig or exc).strip() or type(exc).__name__).splitlines()[0]
        kind, reason = sqlite_problem(reason)
        path = repo / ".alma" / "alma.db"
        if kind == "damaged":
            return damaged_message(path, reason)
        if kind == "readonly":
            return f"cannot write to the run store {path}: read-only ({reason})"
        return f"the run store {path} failed: {reason}"
    return None


def _err(msg: str) -> None:
    print(f"alma-tui: error: {msg}", file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "run":
        return cmd_run(args)
    if cmd == "watch":
        return cmd_watch(args)
    if cmd == "serve":
        return cmd_serve(args)
    if cmd == "designs":
        return cmd_designs(args)
    if cmd in ("pin", "unpin", "veto", "unveto"):
        return cmd_steer(args.repo, cmd, args.design)
    if cmd in ("pause", "resume", "stop"):
        return cmd_steer(args.repo, cmd, None)
    if cmd == "hint":
        return cmd_steer(args.repo, "hint", None, args.text)
    if cmd == "repair":
        return cmd_repair(args)
    if cmd == "domains":
        return cmd_domains()
    if cmd == "baselines":
        return cmd_baselines()
    if cmd == "eval":
        return cmd_eval(args)
    if cmd == "compare":
        return cmd_compare(args)
    if cmd == "doctor":
        from alma_tui.doctor import cmd_doctor

        return cmd_doctor()
    raise CliError(f"unknown command {cmd}")


# -- run ------------------------------------------------------------------------------------------
def settings_from_args(
    args: argparse.Namespace, paths: tuple[str, ...] | None = None, *, stored: bool | None = None
) -> Any:
    """The settings (``alma_tui.engine.config.Resolved``), built once from all their sources:
    defaults < the settings stored in the repo (a resume keeps them) < ``--config FILE``
    < ``ALMA_TUI_*`` variables < flags. ``paths`` (eval): only those settings, nothing stored
    unless ``stored`` (compare: a repo's search gives its protocol).

    An engine started by the TUI gets ``--settings-json``: the settings its parent resolved,
    whole, so nothing is merged twice and no flag can be lost on the way."""
    from alma_tui.engine.config import (
        FLAGS,
        Resolved,
        SearchConfig,
        SettingsError,
        describe_error,
        load_stored,
        resolve,
        user_config_path,
    )
    from alma_tui.store.peek import PeekError, stored_settings

    repo = Path(args.repo)
    stored_json = None
    if paths is None if stored is None else stored:
        try:
            stored_json = stored_settings(repo)  # stdlib sqlite3: keeps SQLModel off the TUI's start-up path
        except PeekError as exc:
            raise CliError(str(exc)) from exc
    try:
        if getattr(args, "settings_json", None):
            cfg = SearchConfig.model_validate_json(args.settings_json)
            if Path(cfg.repo) != repo:
                raise CliError(f"--settings-json is for {cfg.repo}, not {repo}")
            return Resolved(cfg, load_stored(repo, stored_json), {})
        flags = {
            f.path: getattr(args, f.dest, None)
            for f in FLAGS
            if f.path != "repo" and (paths is None or f.path in paths)
        }
        if env_file := flags.get("env_file"):
            flags["env_file"] = str(Path(env_file).expanduser().resolve())
        if seeds := flags.get("seed_designs"):
            flags["seed_designs"] = [str(Path(f).expanduser().resolve()) for f in seeds]
        return resolve(
            repo,
            flags=flags,
            file=getattr(args, "config", None),
            stored_json=stored_json,
            paths=paths,
            user_file=user_config_path(),
        )
    except SettingsError as exc:
        raise CliError(str(exc)) from exc
    except ValueError as exc:  # a malformed --settings-json (only the TUI writes it)
        raise CliError(f"--settings-json: {describe_error(exc)}") from exc


def config_from_args(args: argparse.Namespace) -> Any:
    """The ``SearchConfig`` a `run` with these arguments searches with (resume check included)."""
    resolved = settings_from_args(args)
    if resolved.stored is not None:
        _refuse_score_changes(resolved.stored, resolved.config, resolved.origin)
    return resolved.config


def _refuse_score_changes(stored: Any, cfg: Any, origin: dict[str, str] | None = None) -> None:
    """Scores of one archive must stay comparable: the protocol that defines them is fixed at creation."""
    from alma_tui.engine.config import FLAGS, get_path

    for f in FLAGS:
        if not f.score:
            continue
        old, new = get_path(stored, f.path), get_path(cfg, f.path)
        if old != new:
            source = (origin or {}).get(f.path, f.flag)
            came = "" if source == f.flag else f" (from {source})"
            raise CliError(
                f"{cfg.repo} was searched with {f.flag} {old}; changing it to {new}{came} would make scores "
                f"incomparable (use another --repo, or `alma-tui eval DESIGN {f.flag} {new}` to transfer)"
            )


def _check_repo_writable(repo: Path) -> None:
    target = repo
    while not target.exists():
        target = target.parent
    if not target.is_dir():
        raise CliError(f"cannot use {repo} as a designs repo: {target} is not a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        raise CliError(f"cannot write to {target}: permission denied (choose another --repo)")


def _check_models(cfg: Any, strict: bool = True) -> None:
    """Keys (from the environment or --env-file) and model names, before anything starts."""
    from alma_tui.llm.client import ModelError, check_model, load_env_file

    agent_base = getattr(cfg, "agent_api_base", None) or cfg.api_base
    models = {
        (cfg.meta_model, getattr(cfg, "meta_api_base", None) or cfg.api_base, False),
        (cfg.agent_model, agent_base, False),
    }
    if cfg.design_model:
        models.add((cfg.design_model, agent_base, False))
    if cfg.embedding_model:
        models.add((cfg.embedding_model, agent_base, True))
    try:
        if getattr(cfg, "env_file", None):
            load_env_file(cfg.env_file)
        for m, base, embedding in sorted(models, key=str):
            check_model(m, base, embedding=embedding, strict_name=strict)
    except ModelError as exc:
        raise CliError(str(exc)) from exc


def _peek_run(repo: Path) -> dict[str, Any] | None:
    from alma_tui.store.peek import PeekError, stored_run

    try:
        return stored_run(repo)
    except PeekError as exc:
        raise CliError(str(exc)) from exc


def _check_iterations(repo: Path, run: dict[str, Any] | None, resolved: Any) -> bool:
    """False when `--iterations 0` asks for the status of an existing search (nothing to run;
    a search created with `--iterations 0`, which only evaluates the seeds, still resumes).

    `--iterations` is the total to reach; it never moves below what is done, so an existing
    run's stored target is only changed to a reachable one. The same holds for an iterations
    setting from a settings file or the environment (the message names it)."""
    source = resolved.origin.get("iterations")
    if source is None or run is None:
        return True
    n = resolved.config.iterations
    done = int(run.get("iterations_done") or 0)
    if n == 0:  # a seeds-only search (target 0) resumes; any other would lose its target
        return done == 0 and int(run.get("iterations_target") or 0) == 0
    if n < done:
        message = (
            f"{repo} has already done {done} iterations; give a total of at least {done} (or 0 to show its status)"
        )
        if source == "--iterations":
            raise UsageError(f"argument --iterations: {message}")
        raise CliError(f"{source}: {message}")
    return True


def _load_domain(name: str) -> Any:
    """The domain, or one line saying why it cannot run here (an unknown name, a missing package,
    a missing data download such as ALFWorld's), before anything is started."""
    from alma_tui.domains import DomainError, get_domain

    try:
        domain = get_domain(name)
    except DomainError as exc:
        raise CliError(str(exc)) from exc
    missing = domain.requirements() if hasattr(domain, "requirements") else None
    if missing:
        raise CliError(f"domain {name!r} is not usable here: {missing}")
    return domain


def cmd_run(args: argparse.Namespace) -> int:
    run = _peek_run(Path(args.repo))
    resolved = settings_from_args(args)
    if not _check_iterations(Path(args.repo), run, resolved):
        print(status_line(Path(args.repo)))
        return 0
    if not args.headless:
        from alma_tui.runstate import engine_running

        if engine_running(Path(args.repo)):
            # a search already runs there: nothing to start, so nothing (keys, models) to check
            # for it; the TUI attaches to it as `watch` would, and says so
            return _attach_tui(Path(args.repo))
    from alma_tui.domains import normalise_ref

    # a domain given as path/to/file.py:Class is stored absolute: the engine may run elsewhere
    cfg = resolved.config.model_copy(update={"domain": normalise_ref(resolved.config.domain)})
    if resolved.stored is not None:
        _refuse_score_changes(resolved.stored, cfg, resolved.origin)
    if run is not None and args.headless:
        from alma_tui.runstate import INTERRUPTED, effective_status

        if (
            effective_status(run["status"], repo=Path(args.repo), pid=run["pid"], heartbeat_at=run["heartbeat_at"])
            == INTERRUPTED
        ):
            print(
                f"resuming {args.repo}: its last engine stopped without finishing "
                f"({run['iterations_done']}/{run['iterations_target']} iterations done)"
            )
    _check_repo_writable(Path(cfg.repo))
    _load_domain(cfg.domain)
    _check_models(cfg, strict=not cfg.skip_model_check)
    if not args.headless:
        return _run_with_tui(cfg)
    return run_headless(cfg)


def run_headless(cfg: Any, quiet: bool = False) -> int:
    import signal

    from alma_tui.engine.search import Search, SearchError
    from alma_tui.headless import HeadlessReporter
    from alma_tui.lineage import LineageError
    from alma_tui.store import StoreError

    reporter = None if quiet else HeadlessReporter()
    search = Search(cfg, reporter)
    interrupts = [0]

    def on_signal(signum: int, _frame: Any) -> None:
        interrupts[0] += 1
        search.cancel.set()
        if interrupts[0] > 1:
            raise KeyboardInterrupt

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            search.open()
        except (SearchError, StoreError, LineageError) as exc:
            raise CliError(str(exc)) from exc
        if reporter is not None:
            reporter.start(search)
        try:
            status = search.run()
        except SearchError as exc:
            with contextlib.suppress(Exception):  # a full disk cannot take the status either
                search._set_status("error", str(exc))
            raise CliError(str(exc)) from exc
        finally:
            if reporter is not None:
                reporter.stop()
        if reporter is not None:
            reporter.summary(search, status)
        if status == "error":
            run = search.store.get_run() if search.store is not None else None
            _err(run.status_detail if run is not None and run.status_detail else "the search stopped on an error")
        return (
            0
            if status in ("done", "budget")
            else (130 if status == "stopped" and interrupts[0] else (1 if status == "error" else 0))
        )
    finally:
        with contextlib.suppress(Exception):  # only buffered events are lost: state changes are committed
            search.close()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def engine_argv(cfg: Any) -> list[str]:
    """How the TUI starts its engine: `run --headless` with the resolved settings, whole."""
    return ["run", "--headless", "--repo", str(cfg.repo), "--settings-json", cfg.to_engine_json()]


def _run_with_tui(cfg: Any) -> int:
    if not sys.stdout.isatty():
        raise CliError("the TUI needs a terminal; use `alma-tui run --headless` for a search without one")
    from alma_tui.lineage import check_lineage_path

    refused = check_lineage_path(Path(cfg.repo))  # before the TUI writes its engine log into the repo
    if refused:
        raise CliError(refused)
    from alma_tui.engine.config import transient_flags
    from alma_tui.tui.app import run_tui

    return run_tui(Path(cfg.repo), engine_argv=engine_argv(cfg), continue_flags=transient_flags(cfg), **ui_settings())


def ui_settings() -> dict[str, Any]:
    """The app's own settings from the user settings file: ``[keymap]`` (binding id = keys) and
    ``theme``; checked here so a typo is one line before the app starts (exit 1)."""
    from alma_tui.engine.config import SettingsError, read_toml, user_config_path

    path = user_config_path()
    if path is None or not path.is_file():
        return {}
    try:
        data = read_toml(path)
    except SettingsError as exc:
        raise CliError(str(exc)) from exc
    out: dict[str, Any] = {}
    keymap = data.get("keymap")
    if keymap is not None:
        from alma_tui.tui.bindings import KeymapError, check_keymap

        if not isinstance(keymap, dict):
            raise CliError(f'{path}: keymap must be a table ([keymap] with lines like alma.pin = "P")')
        try:
            out["keymap"] = check_keymap({str(k): v for k, v in keymap.items()}, f"{path}: [keymap]")
        except KeymapError as exc:
            raise CliError(str(exc)) from exc
    theme = data.get("theme")
    if theme is not None:
        from alma_tui.tui.bindings import AppSettingError, check_theme

        try:
            out["theme"] = check_theme(theme, str(path))
        except AppSettingError as exc:
            raise CliError(str(exc)) from exc
    return out


def _attach_tui(repo: Path) -> int:
    if not sys.stdout.isatty():
        raise CliError(f"a search is already running in {repo}; the TUI that watches it needs a terminal")
    from alma_tui.tui.app import run_tui

    return run_tui(repo, engine_argv=None, attach=True, **ui_settings())


def cmd_watch(args: argparse.Namespace) -> int:
    from alma_tui.store.db import db_path

    if not db_path(args.repo).exists():
        raise CliError(f"no alma-tui search found in {args.repo}; start one with `alma-tui run --repo {args.repo}`")
    if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):  # `serve` runs it with a web driver
        raise CliError("the TUI needs a terminal")
    from alma_tui.tui.app import run_tui

    return run_tui(Path(args.repo), engine_argv=None, **ui_settings())


def cmd_serve(args: argparse.Namespace) -> int:
    """`alma-tui serve`: the watching app in browsers (textual-serve runs one `watch` per tab)."""
    from alma_tui.store.db import db_path
    from alma_tui.tui.serve import ServeUnavailable, serve

    repo = Path(args.repo).resolve()
    if not db_path(repo).exists():
        raise CliError(f"no alma-tui search found in {args.repo}; start one with `alma-tui run --repo {args.repo}`")
    ui_settings()  # a bad settings file: one line here, not a broken page
    try:
        serve(repo, args.host, args.port, args.public_url)
    except ServeUnavailable as exc:
        raise CliError(str(exc)) from exc
    return 0


# -- archive and steering -------------------------------------------------------------------------
def _open_store(repo: Path, *, readonly: bool = False) -> Any:
    """The repo's store with a run in it. ``readonly`` (designs, eval): works on a read-only
    mount and never changes the file."""
    from alma_tui.store import StoreError
    from alma_tui.store.db import Store, StoreEmpty

    try:
        store = Store(repo, create=False, readonly=readonly)
    except StoreEmpty:
        raise CliError(_no_run_message(repo)) from None
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    if store.get_run() is None:
        store.close()
        raise CliError(_no_run_message(repo))
    return store


def _no_run_message(repo: Path) -> str:
    """A store without a run: lost (the repo has designs) or not started yet."""
    from alma_tui.lineage import design_tag_count
    from alma_tui.store.db import db_path

    if n := design_tag_count(repo):
        return (
            f"the store is empty but the lineage holds {n} designs; rebuild the archive with "
            f"`alma-tui repair --repo {repo}`"
        )
    return f"no alma-tui search found in {repo} (the store {db_path(repo)} holds no run yet)"


def status_line(repo: Path, store: Any = None) -> str:
    """One line on the run: its real status (a killed engine shows as interrupted), progress, best."""
    from alma_tui.runstate import INTERRUPTED, effective_status

    own = store is None
    store = store or _open_store(repo, readonly=True)
    try:
        run = store.get_run()
        rows = design_rows(store)
    finally:
        if own:
            store.close()
    status = effective_status(run.status, repo=repo, pid=run.pid, heartbeat_at=run.heartbeat_at)
    accepted = [r for r in rows if r["status"] == "accepted"]
    rejected = sum(1 for r in rows if r["status"] == "rejected")
    bid = best_id(rows)
    best = next((r for r in rows if r["id"] == bid), None)
    parts = [
        f"{repo}: {status}",
        f"{run.iterations_done}/{run.iterations_target} iterations",
        f"{len(rows)} designs ({len(accepted)} accepted, {rejected} rejected)",
    ]
    if best is not None:
        held = "" if best.get("test_score") is None else f" (held-out test {best['test_score']:.3f})"
        parts.append(f"best {best['id']} {best['score']:.3f}{held}")
    if status == INTERRUPTED:
        parts.append(f"its engine stopped without finishing; `alma-tui run --repo {repo}` resumes it")
    elif status in ("running", "paused", "stopping"):
        parts.append(f"engine pid {run.pid}; `alma-tui watch --repo {repo}` attaches to it")
    elif run.status_detail:
        parts.append(sanitize(run.status_detail, newlines=False))
    return " · ".join(parts)


def cmd_designs(args: argparse.Namespace) -> int:
    store = _open_store(args.repo, readonly=True)
    try:
        rows = design_rows(store)
        if not rows:
            from alma_tui.lineage import design_tag_count

            if n := design_tag_count(args.repo):
                raise CliError(
                    f"the store is empty but the lineage holds {n} designs; rebuild the archive with "
                    f"`alma-tui repair --repo {args.repo}`"
                )
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        from rich.console import Console

        from alma_tui.headless import archive_table

        console = Console()
        console.print(archive_table(rows))
        console.print(status_line(Path(args.repo), store), markup=False, highlight=False, soft_wrap=True)
    finally:
        store.close()
    return 0


def cmd_steer(repo: Path, kind: str, design: str | None, text: str = "") -> int:
    from alma_tui.store import StoreError

    text = sanitize(text).strip()  # a hint reaches the terminal (here, the TUI) and the meta prompt
    store = _open_store(repo)
    design_id = None
    if design is not None:
        d = store.resolve_design(design)
        if d is None:
            raise CliError(f"unknown design {design!r} in {repo} (see `alma-tui designs --repo {repo}`)")
        design_id = d.id
    if kind == "hint" and not text.strip():
        raise CliError("a hint needs some text")
    if kind in ("pause", "resume", "stop"):
        from alma_tui.engine.search import engine_running

        if not engine_running(repo):
            raise CliError(f"no search is running in {repo}; nothing to {kind}")
    try:
        store.command(kind, design_id, text, source="cli")
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    # one description of stop everywhere (app, README, here): running evaluations finish, no new one starts
    when = "stops once the evaluations in progress finish" if kind == "stop" else "applies it at its next selection"
    print(f"{kind} {design_id or text or ''}".strip() + f" recorded; the search {when}")
    return 0


def cmd_domains() -> int:
    from alma_tui.domains import list_domains

    for name, description, missing in list_domains():
        state = "ready" if not missing else f"needs: {missing}"
        print(f"{name:12} {description}  [{state}]")
    return 0


def cmd_baselines() -> int:
    from alma_tui.designs import BUILTIN

    for name, (title, _path) in BUILTIN.items():
        print(f"{name:22} {title}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    """Rebuild the store from the lineage's design tags, or reconcile both as a run would; one line each."""
    from alma_tui.engine.reconcile import ArchiveMismatch, engine_lock, reconcile
    from alma_tui.lineage import Lineage, LineageError
    from alma_tui.store import Store, StoreError
    from alma_tui.store.db import db_path

    repo = Path(args.repo)
    if not (repo / ".git").exists() and not db_path(repo).exists():
        raise CliError(f"no alma-tui search found in {repo} (no store and no lineage)")
    actions: list[str] = []
    try:
        lineage = Lineage(repo)
        with engine_lock(repo):
            try:
                store = Store(repo)
            except StoreError as exc:  # unreadable: keep the file, rebuild from the lineage
                broken = db_path(repo).with_name(f"alma.db.broken-{os.getpid()}")
                for suffix in ("-wal", "-shm", ""):  # the journal files belong to the broken file
                    side = db_path(repo).with_name(db_path(repo).name + suffix)
                    if side.exists():
                        side.rename(broken.with_name(broken.name + suffix))
                actions.append(f"the store could not be read ({exc}); moved it to {broken}")
                store = Store(repo)
            actions += reconcile(store, lineage, store.get_run(), rebuild=True)
            committed = [d for d in store.designs() if d.commit]
            best = next((d for d in committed if d.id == best_id(committed)), None)
            if best is not None and best.commit:
                update = lineage.set_best(best.commit)
                if not update.worktree:
                    actions.append(f"{update.note}, best design is {best.id}")
            n = len(store.designs())
            store.close()
    except (ArchiveMismatch, LineageError, StoreError, OSError) as exc:
        raise CliError(str(exc)) from exc
    for line in actions:
        print(line)
    if not actions:
        print(f"nothing to repair: the store and the lineage of {repo} agree ({n} designs)")
    return 0


# -- compare --------------------------------------------------------------------------------------
def _compare_paths() -> tuple[str, ...]:
    """The settings compare uses: eval's, and how many episodes of one design run at once."""
    from alma_tui.engine.config import EVAL_PATHS

    return (*EVAL_PATHS, "eval.concurrency")


def _compare_parser(sub: Any, full: bool) -> None:
    cp = sub.add_parser(
        "compare",
        help="evaluate several designs on identical tasks: the paper's table",
        description="Evaluate designs on identical task sets (same seed, same collection and deployment "
        "tasks), one row each: success ± s.e. over runs, per-run scores, tokens and cost per episode, wall "
        "time; ranked, with differences within noise marked (a paired permutation test vs the top row). "
        "DESIGN: a built-in name, an archive id, `best`, a git rev of the repo's lineage, or a .py file. "
        "In a repo holding a search, its protocol (domain, agent model, seed, sizes) is the default.",
        epilog="Finished rows are stored and reused by a repeated compare: in the repo's store "
        "(<repo>/.alma/alma.db) when --repo holds a search, otherwise in the user cache "
        "(~/.cache/alma-tui/compare/.alma/alma.db, $XDG_CACHE_HOME respected). Transfer a design found "
        "with one model to another: alma-tui compare best --baselines --agent-model M2.",
    )
    cp.add_argument("designs", nargs="*", metavar="DESIGN")
    if not full:
        _repo_arg(cp)
        return
    _setting_args(cp, _compare_paths())
    _config_arg(cp)
    cp.add_argument("--baselines", action="store_true", help="add the five built-in baseline designs")
    cp.add_argument(
        "--split", default="test", choices=["test", "search"], help="held-out test (default) or the search split"
    )
    cp.add_argument(
        "--jobs", type=int_in(1, 256), default=None, help="designs evaluated at once (default: the machine's cores)"
    )
    fmt = cp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the rows as a JSON list")
    fmt.add_argument("--markdown", action="store_true", help="the paper-style Markdown table")


def _compare_store(repo: Path) -> tuple[Any, str]:
    """Where compare rows live: the repo's store when it holds a search, else the user cache."""
    from alma_tui.store import StoreError
    from alma_tui.store.db import Store, db_path

    target = repo
    if _peek_run(repo) is None:
        import platformdirs

        target = Path(platformdirs.user_cache_dir("alma-tui")) / "compare"
    try:
        return Store(target), str(db_path(target))
    except StoreError as exc:
        raise CliError(str(exc)) from exc


def cmd_compare(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    if not args.designs and not args.baselines:
        raise UsageError("name the designs to compare (e.g. `best`, d004, reasoning_bank, my.py), or --baselines")
    from alma_tui.designs import BUILTIN
    from alma_tui.engine.designref import DesignRefError, resolve_design

    cfg = settings_from_args(args, _compare_paths(), stored=_peek_run(repo) is not None).config
    refs = [*args.designs, *(BUILTIN if args.baselines else [])]
    try:
        designs = [resolve_design(ref, repo) for ref in refs]
    except DesignRefError as exc:
        raise CliError(str(exc)) from exc
    domain = _load_domain(cfg.domain)
    _check_models(cfg)
    evaluator, hooks_for, llm = _evaluation_setup(cfg, domain)
    from alma_tui.engine.evaluator import EvaluationFailed, split_tasks

    settings = replace(cfg.eval, split="train" if args.split == "search" else "test")
    try:
        collection, deployment = split_tasks(domain, settings)
    except EvaluationFailed as exc:
        raise CliError(exc.reason) from exc
    import threading

    from rich.console import Console

    from alma_tui.comparison import CompareBar, Protocol, json_rows, markdown_table, notes, reuse_line, rich_table
    from alma_tui.engine.compare import Evaluated, run_compare

    def evaluate(design: Any, key: str, hooks: Any, cancel: threading.Event) -> Any:
        h = hooks_for(key)
        h.on_episode = hooks.on_episode
        result = evaluator.evaluate(design.code, settings, h, cancel)
        if (stop := llm.stop_reason()) is not None:  # an outage or a rejected key: not the design's score
            raise EvaluationFailed(f"model calls stopped: {stop}")
        used = llm.by_design.get(key)
        return Evaluated(result, used.tokens if used else 0, used.cost_usd if used else 0.0)

    store, where = _compare_store(repo)
    proto = Protocol(
        cfg.domain, cfg.agent_model, args.split, settings.runs, len(collection), len(deployment), settings.seed, where
    )
    err = Console(stderr=True, highlight=False)
    unique = len({d.code_hash for d in designs})
    try:
        with CompareBar(err, settings.runs, unique) as bar:
            rows = run_compare(
                designs,
                evaluate,
                store=store,
                domain=cfg.domain,
                agent_model=cfg.agent_model,
                settings=settings,
                n_deployment=len(deployment),
                extra_key={
                    "agent_temperature": cfg.agent_temperature,
                    "agent_reasoning": cfg.agent_reasoning,
                    "embedding_model": cfg.embedding_model,
                },
                jobs=args.jobs or os.cpu_count() or 1,
                progress=bar.hooks(),
            )
    except KeyboardInterrupt:
        err.print(f"interrupted: the finished rows stay stored in {where}", markup=False, soft_wrap=True)
        raise
    finally:
        store.close()
    if args.json:
        print(json.dumps(json_rows(rows, proto), indent=2))
        err.print(reuse_line(rows, proto), markup=False, soft_wrap=True)
    elif args.markdown:
        print(markdown_table(rows, proto))
        print()
        for line in notes(rows, proto):
            print(line)
    else:
        out = Console(highlight=False)
        out.print(rich_table(rows, proto))
        for line in notes(rows, proto):
            out.print(line, markup=False, soft_wrap=True)
    failed = [r.label for r in rows if not r.ok]
    if failed:
        raise CliError(f"{len(failed)} of {len(rows)} designs failed to evaluate: {', '.join(failed)}")
    return 0


# -- eval -----------------------------------------------------------------------------------------
def resolve_design_code(ref: str, repo: Path) -> tuple[str, str]:
    """(label, code) of a design given as a .py path, a built-in name, `best`, an archive id or a git rev."""
    from alma_tui.engine.designref import DesignRefError, resolve_design

    try:
        d = resolve_design(ref, repo)
    except DesignRefError as exc:
        raise CliError(str(exc)) from exc
    return d.label, d.code


def _evaluation_setup(cfg: Any, domain: Any) -> tuple[Any, Callable[[str | None], Any], Any]:
    """What `eval` and `compare` evaluate designs with: the domain prepared, the sandbox checked,
    an evaluator whose acting agent is ``cfg.agent_model``, and ``hooks_for(key)``, the design's
    llm()/embed() (and, with a key, the agent too) charged to ``key`` in the client's ``by_design``."""
    from alma_tui.domains import DomainError, prepare_domain
    from alma_tui.engine.evaluator import Evaluator, Hooks
    from alma_tui.llm.client import LLMClient, RoleParams
    from alma_tui.llm.providers import policy_params
    from alma_tui.sandbox import SandboxLimits, SandboxUnavailable, require

    try:  # games to generate or data to load: before the sandbox and the first task, with progress
        prepare_domain(domain, lambda line: print(line, file=sys.stderr, flush=True))
    except DomainError as exc:
        raise CliError(str(exc)) from exc
    try:
        iso = require(cfg.allow_weak_sandbox)
    except SandboxUnavailable as exc:
        raise CliError(str(exc)) from exc
    agent_model = cfg.agent_model
    agent_params = RoleParams(cfg.agent_temperature, cfg.agent_reasoning)
    llm = LLMClient(api_base=cfg.api_base, role_params={"agent": agent_params, "design": agent_params})
    offline_policy = policy_params(agent_model, domain)
    evaluator = Evaluator(
        domain,
        lambda m, s: llm.complete(m, model=agent_model, role="agent", seed=s, **offline_policy),
        limits=SandboxLimits(isolate=iso.strong),
    )

    def hooks_for(key: str | None) -> Any:
        return Hooks(
            design_embed=lambda texts: llm.embed(texts, model=cfg.embedding_model, design_id=key),
            design_llm=lambda p, s: llm.complete(
                ([{"role": "system", "content": s}] if s else []) + [{"role": "user", "content": p}],
                model=agent_model,
                role="design",
                design_id=key,
                seed=cfg.seed,
            ),
            agent=None
            if key is None
            else lambda m, s: llm.complete(m, model=agent_model, role="agent", design_id=key, seed=s, **offline_policy),
        )

    return evaluator, hooks_for, llm


def cmd_eval(args: argparse.Namespace) -> int:
    from alma_tui.engine.config import EVAL_PATHS
    from alma_tui.engine.evaluator import EvaluationFailed

    cfg = settings_from_args(args, EVAL_PATHS).config  # the settings eval uses; none stored in the repo
    label, code = resolve_design_code(args.design, Path(args.repo))
    domain_name = cfg.domain
    domain = _load_domain(domain_name)
    agent_model = cfg.agent_model
    _check_models(cfg)  # the meta model is the offline default here: eval has no meta agent
    evaluator, hooks_for, _llm = _evaluation_setup(cfg, domain)
    settings = replace(cfg.eval, split=args.split)
    hooks = hooks_for(None)
    try:
        result = evaluator.evaluate(code, settings, hooks)
    except EvaluationFailed as exc:
        raise CliError(f"{label} failed: {exc.reason}") from exc
    out = {
        "design": label,
        "domain": domain_name,
        "split": args.split,
        "agent_model": agent_model,
        "score": result.score,
        "score_se": result.score_se,
        "run_scores": result.run_scores,
        "per_task": result.per_task(),
        "wall_s": round(result.wall_s, 2),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{label} on {domain_name}/{args.split} with {agent_model}: "
            f"{result.score:.3f} ± {result.score_se:.3f} (runs: "
            f"{', '.join(f'{x:.3f}' for x in result.run_scores)}) in {result.wall_s:.1f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
