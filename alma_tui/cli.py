"""`alma-tui`: the command line. Fast to start (nothing heavy at import), one clear line on error.

Exit codes: 0 ok, 1 error (one message, no traceback), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from alma_tui import offline
from alma_tui.archive_rows import design_rows
from alma_tui.sanitize import sanitize

DEFAULT_REPO = "designs_repo"


class CliError(Exception):
    """An error the user can fix; printed as one line."""


# -- numeric flags: checked by argparse, so a bad value is a usage error (exit 2) --------------
MAX_ITERATIONS = 1_000_000
MAX_SEED = 2**32 - 1


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
    import math

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


ITERATIONS = int_in(0, MAX_ITERATIONS)  # 0: only evaluate the seed designs of a new search
COUNT = int_in(1, 10_000)  # tasks, runs per evaluation
SEED = int_in(0, MAX_SEED)
TEMPERATURE = float_in(0.0, 2.0)


def _repo_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repo",
        default=DEFAULT_REPO,
        type=Path,
        help=f"designs repo (git) holding the search; default ./{DEFAULT_REPO}",
    )


def _run_args(p: argparse.ArgumentParser) -> None:
    _repo_arg(p)
    p.add_argument("--domain", default=None, help="domain to search on (default household; see `alma-tui domains`)")
    p.add_argument("--meta-model", default=None, help="litellm model of the meta agent (default offline/meta)")
    p.add_argument("--agent-model", default=None, help="litellm model of the acting agent (default offline/agent)")
    p.add_argument("--design-model", default=None, help="model behind a design's llm() (default: agent model)")
    p.add_argument(
        "--embedding-model",
        default=None,
        help="litellm embedding model behind a design's embed() (default: local hashing embedding)",
    )
    p.add_argument("--api-base", default=None, help="base URL of an OpenAI-compatible server (ollama, vllm)")
    p.add_argument("--meta-api-base", default=None, help="server of the meta model only (overrides --api-base)")
    p.add_argument(
        "--agent-api-base", default=None, help="server of the agent, design and embedding models (overrides --api-base)"
    )
    p.add_argument("--env-file", default=None, help="KEY=VALUE file with API keys (the environment wins)")
    p.add_argument(
        "--meta-reasoning",
        choices=["low", "medium", "high"],
        default=None,
        help="reasoning effort of the meta model (dropped if unsupported)",
    )
    p.add_argument(
        "--agent-reasoning",
        choices=["low", "medium", "high"],
        default=None,
        help="reasoning effort of the acting agent (dropped if unsupported)",
    )
    p.add_argument("--meta-temperature", type=TEMPERATURE, default=None)
    p.add_argument("--agent-temperature", type=TEMPERATURE, default=None)
    p.add_argument(
        "--max-concurrent-llm", type=int_in(1, 1024), default=None, help="requests in flight per model (default 8)"
    )
    p.add_argument(
        "--llm-timeout",
        type=float_in(0.0, 86_400.0, low_open=True),
        default=None,
        help="seconds per model request (default 120)",
    )
    p.add_argument(
        "--llm-retries",
        type=int_in(0, 100),
        default=None,
        help="retries on 429/5xx/timeouts before pausing for a provider outage (default 4)",
    )
    p.add_argument(
        "--skip-model-check",
        action="store_true",
        help="accept model names litellm does not know (keys are still checked)",
    )
    p.add_argument(
        "--iterations",
        type=ITERATIONS,
        default=None,
        help="run until N iterations in total (default 5; 0: only evaluate the seeds of a new search)",
    )
    p.add_argument("--parents", type=int_in(1, 100), default=None, help="parents (children) per iteration (default 2)")
    p.add_argument("--selection", choices=["open-ended", "greedy"], default=None)
    p.add_argument("--seed", type=SEED, default=None)
    p.add_argument(
        "--budget-usd",
        type=float_in(0.0, 1e9, low_open=True),
        default=None,
        help="stop before the run would spend more",
    )
    p.add_argument(
        "--budget-tokens", type=int_in(1, 10**15), default=None, help="stop before the run would use more tokens"
    )
    p.add_argument("--collection", type=COUNT, default=None, help="collection tasks per evaluation (default 12)")
    p.add_argument("--deployment", type=COUNT, default=None, help="deployment tasks per evaluation (default 12)")
    p.add_argument("--runs", type=int_in(1, 1000), default=None, help="deployment runs per evaluation (default 3)")
    p.add_argument("--concurrency", type=int_in(1, 256), default=None, help="episodes run at once (default 4)")
    p.add_argument(
        "--protocol",
        choices=["batched", "sequential"],
        default=None,
        help="batched: memory frozen after collection (default); sequential: it keeps learning",
    )
    p.add_argument("--headless", action="store_true", help="no TUI: rich progress on the terminal")
    _sandbox_arg(p)


def _sandbox_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-weak-sandbox",
        action="store_true",
        default=None,
        help="run designs even where the OS cannot isolate them (see `alma-tui doctor`)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the 20-line usage block buried the message)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="alma-tui",
        description="Run, watch and steer an ALMA search over agent memory designs written as code.",
    )
    sub = parser.add_subparsers(dest="command")
    _run_args(sub.add_parser("run", help="start or resume a search (default command)"))
    _repo_arg(sub.add_parser("watch", help="attach the TUI to a search running elsewhere"))
    ev = sub.add_parser("eval", help="evaluate one design (id, git rev, built-in name or .py path)")
    ev.add_argument("design")
    _repo_arg(ev)
    ev.add_argument("--domain", default=None)
    ev.add_argument("--agent-model", default=None)
    ev.add_argument("--api-base", default=None, help="base URL of an OpenAI-compatible server")
    ev.add_argument("--env-file", default=None, help="KEY=VALUE file with API keys")
    ev.add_argument("--agent-reasoning", choices=["low", "medium", "high"], default=None)
    ev.add_argument("--agent-temperature", type=TEMPERATURE, default=None)
    ev.add_argument("--embedding-model", default=None)
    ev.add_argument("--split", default="test", choices=["train", "test"])
    ev.add_argument("--runs", type=int_in(1, 1000), default=3)
    ev.add_argument("--collection", type=COUNT, default=12)
    ev.add_argument("--deployment", type=COUNT, default=12)
    ev.add_argument("--seed", type=SEED, default=0)
    ev.add_argument("--protocol", choices=["batched", "sequential"], default="batched")
    ev.add_argument("--json", action="store_true")
    _sandbox_arg(ev)
    ds = sub.add_parser("designs", help="the archive as a table")
    _repo_arg(ds)
    ds.add_argument("--json", action="store_true")
    for kind in ("pin", "unpin", "veto", "unveto"):
        sp = sub.add_parser(kind, help=f"{kind} a design (takes effect at the next selection)")
        sp.add_argument("design")
        _repo_arg(sp)
    for kind in ("pause", "resume", "stop"):
        _repo_arg(sub.add_parser(kind, help=f"{kind} the search running in the repo"))
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
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]  # `alma-tui --repo R` is `alma-tui run --repo R`
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
    if cmd == "doctor":
        from alma_tui.doctor import cmd_doctor

        return cmd_doctor()
    raise CliError(f"unknown command {cmd}")


# -- run ------------------------------------------------------------------------------------------
def config_from_args(args: argparse.Namespace) -> Any:
    """Flags over the settings stored in the repo (a resume keeps them) over defaults."""
    from alma_tui.engine.config import SearchConfig
    from alma_tui.store.peek import PeekError, stored_settings

    repo = Path(args.repo)
    cfg = SearchConfig(repo=repo)
    stored: Any = None
    try:
        settings = stored_settings(repo)  # stdlib sqlite3: keeps SQLModel off the TUI's start-up path
    except PeekError as exc:
        raise CliError(str(exc)) from exc
    if settings is not None:
        try:
            cfg = SearchConfig.from_json(settings)
            stored = SearchConfig.from_json(settings)
        except (ValueError, TypeError) as exc:
            raise CliError(
                f"the settings stored in {repo / '.alma' / 'alma.db'} are unreadable ({exc}); "
                "start a new search with another --repo"
            ) from exc
        cfg.repo = repo
        stored.repo = repo
    simple = {
        "domain": "domain",
        "meta_model": "meta_model",
        "agent_model": "agent_model",
        "design_model": "design_model",
        "embedding_model": "embedding_model",
        "api_base": "api_base",
        "iterations": "iterations",
        "selection": "selection",
        "seed": "seed",
        "budget_usd": "budget_usd",
        "budget_tokens": "budget_tokens",
        "meta_api_base": "meta_api_base",
        "agent_api_base": "agent_api_base",
        "meta_reasoning": "meta_reasoning",
        "agent_reasoning": "agent_reasoning",
        "meta_temperature": "meta_temperature",
        "agent_temperature": "agent_temperature",
        "max_concurrent_llm": "max_concurrent_llm",
        "llm_timeout": "llm_timeout_s",
        "llm_retries": "llm_retries",
    }
    for flag, attr in simple.items():
        value = getattr(args, flag, None)
        if value is not None:
            setattr(cfg, attr, value)
    for flag, attr in {
        "collection": "n_collection",
        "deployment": "n_deployment",
        "runs": "runs",
        "concurrency": "concurrency",
    }.items():
        value = getattr(args, flag, None)
        if value is not None:
            if value < 1:
                raise CliError(f"--{flag} must be at least 1")
            setattr(cfg.eval, attr, value)
    if getattr(args, "parents", None) is not None:
        from dataclasses import replace

        if args.parents < 1:
            raise CliError("--parents must be at least 1")
        cfg.params = replace(cfg.params, k=args.parents)
    if cfg.iterations < 0:
        raise CliError("--iterations must be >= 0")
    if getattr(args, "allow_weak_sandbox", None):
        cfg.allow_weak_sandbox = True
    if getattr(args, "env_file", None):
        cfg.env_file = str(Path(args.env_file).expanduser().resolve())
    if cfg.max_concurrent_llm < 1 or cfg.llm_retries < 0 or cfg.llm_timeout_s <= 0:
        raise CliError("--max-concurrent-llm must be >= 1, --llm-retries >= 0 and --llm-timeout > 0")
    if (cfg.budget_usd is not None and cfg.budget_usd <= 0) or (
        cfg.budget_tokens is not None and cfg.budget_tokens <= 0
    ):
        raise CliError("--budget-usd and --budget-tokens must be greater than 0")
    if getattr(args, "protocol", None):
        cfg.eval.protocol = args.protocol
    cfg.eval.seed = cfg.seed
    if stored is not None:
        _refuse_score_changes(stored, cfg)
    return cfg


def _refuse_score_changes(stored: Any, cfg: Any) -> None:
    """Scores of one archive must stay comparable: the protocol that defines them is fixed at creation."""
    fields = {
        "--agent-model": ("agent_model",),
        "--seed": ("seed",),
        "--collection": ("eval", "n_collection"),
        "--deployment": ("eval", "n_deployment"),
        "--runs": ("eval", "runs"),
        "--protocol": ("eval", "protocol"),
    }
    for flag, path in fields.items():
        old, new = stored, cfg
        for part in path:
            old, new = getattr(old, part), getattr(new, part)
        if old != new:
            raise CliError(
                f"{cfg.repo} was searched with {flag} {old}; changing it to {new} would make scores "
                f"incomparable (use another --repo, or `alma-tui eval DESIGN {flag} {new}` to transfer)"
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


def _check_iterations(args: argparse.Namespace, run: dict[str, Any] | None) -> bool:
    """False when `--iterations 0` asks for the status of an existing search (nothing to run;
    a search created with `--iterations 0`, which only evaluates the seeds, still resumes).

    `--iterations` is the total to reach; it never moves below what is done, so an existing
    run's stored target is only changed to a reachable one."""
    n = getattr(args, "iterations", None)
    if n is None or run is None:
        return True
    done = int(run.get("iterations_done") or 0)
    if n == 0:  # a seeds-only search (target 0) resumes; any other would lose its target
        return done == 0 and int(run.get("iterations_target") or 0) == 0
    if n < done:
        raise UsageError(
            f"argument --iterations: {args.repo} has already done {done} iterations; "
            f"give a total of at least {done} (or 0 to show its status)"
        )
    return True


def cmd_run(args: argparse.Namespace) -> int:
    from alma_tui.domains import DomainError, get_domain

    run = _peek_run(Path(args.repo))
    if not _check_iterations(args, run):
        print(status_line(Path(args.repo)))
        return 0
    cfg = config_from_args(args)
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
    try:
        get_domain(cfg.domain)
    except DomainError as exc:
        raise CliError(str(exc)) from exc
    _check_models(cfg, strict=not getattr(args, "skip_model_check", False))
    if not args.headless:
        return _run_with_tui(args, cfg)
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


def _run_with_tui(args: argparse.Namespace, cfg: Any) -> int:
    if not sys.stdout.isatty():
        raise CliError("the TUI needs a terminal; use `alma-tui run --headless` for a search without one")
    from alma_tui.lineage import check_lineage_path

    refused = check_lineage_path(Path(cfg.repo))  # before the TUI writes its engine log into the repo
    if refused:
        raise CliError(refused)
    from alma_tui.tui.app import run_tui

    engine_argv = ["run", "--headless", "--repo", str(cfg.repo)]
    for flag in (
        "domain",
        "meta_model",
        "agent_model",
        "design_model",
        "embedding_model",
        "api_base",
        "iterations",
        "parents",
        "selection",
        "seed",
        "budget_usd",
        "budget_tokens",
        "collection",
        "deployment",
        "runs",
        "concurrency",
        "meta_api_base",
        "agent_api_base",
        "env_file",
        "meta_reasoning",
        "agent_reasoning",
        "meta_temperature",
        "agent_temperature",
        "max_concurrent_llm",
        "llm_timeout",
        "llm_retries",
    ):
        value = getattr(args, flag, None)
        if value is not None:
            engine_argv += [f"--{flag.replace('_', '-')}", str(value)]
    if getattr(args, "skip_model_check", False):
        engine_argv.append("--skip-model-check")
    if cfg.allow_weak_sandbox:
        engine_argv.append("--allow-weak-sandbox")
    return run_tui(Path(cfg.repo), engine_argv=engine_argv)


def cmd_watch(args: argparse.Namespace) -> int:
    from alma_tui.store.db import db_path

    if not db_path(args.repo).exists():
        raise CliError(f"no alma-tui search found in {args.repo}; start one with `alma-tui run --repo {args.repo}`")
    if not sys.stdout.isatty():
        raise CliError("the TUI needs a terminal")
    from alma_tui.tui.app import run_tui

    return run_tui(Path(args.repo), engine_argv=None)


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
    best = max((r for r in accepted if r["score"] is not None), key=lambda r: r["score"], default=None)
    parts = [
        f"{repo}: {status}",
        f"{run.iterations_done}/{run.iterations_target} iterations",
        f"{len(rows)} designs ({len(accepted)} accepted, {rejected} rejected)",
    ]
    if best is not None:
        parts.append(f"best {best['id']} {best['score']:.3f}")
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
    print(f"{kind} {design_id or text or ''}".strip() + " recorded; the search applies it at its next selection")
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
            best = max(
                (d for d in store.designs() if d.status == "accepted" and d.score is not None and d.commit),
                key=lambda d: (d.score, -d.seq),
                default=None,
            )
            if best is not None:
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


# -- eval -----------------------------------------------------------------------------------------
def resolve_design_code(ref: str, repo: Path) -> tuple[str, str]:
    """(label, code) of a design given as a .py path, a built-in name, an archive id or a git rev."""
    from alma_tui.designs import BUILTIN, builtin_source

    path = Path(ref)
    if ref.endswith(".py"):
        if not path.is_file():
            raise CliError(f"no such design file: {ref}")
        return str(path), path.read_text()
    if ref in BUILTIN:
        return ref, builtin_source(ref)
    from alma_tui.store.db import db_path

    if db_path(repo).exists():
        store = _open_store(repo, readonly=True)
        d = store.resolve_design(ref)
        if d is not None and d.code:
            return d.id, d.code
    if (repo / ".git").exists():
        import git

        try:
            rev = ref if "/" in ref or len(ref) >= 7 else f"design/{ref}"
            code = git.Repo(repo).git.show(f"{rev}:design.py")
            return ref, code
        except git.GitError:  # unknown rev, or a broken .git: not a design either way
            pass
    raise CliError(
        f"unknown design {ref!r}: not a .py file, built-in ({', '.join(BUILTIN)}), archive id or git rev in {repo}"
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from alma_tui.domains import DomainError, get_domain
    from alma_tui.engine.evaluator import EvalSettings, EvaluationFailed, Evaluator
    from alma_tui.llm.client import LLMClient

    label, code = resolve_design_code(args.design, Path(args.repo))
    domain_name = args.domain or "household"
    try:
        domain = get_domain(domain_name)
    except DomainError as exc:
        raise CliError(str(exc)) from exc
    agent_model = args.agent_model or "offline/agent"
    from alma_tui.engine.config import SearchConfig
    from alma_tui.llm.client import RoleParams

    env_file = str(Path(args.env_file).expanduser().resolve()) if args.env_file else None
    _check_models(
        SearchConfig(
            meta_model="offline/meta",
            agent_model=agent_model,
            api_base=args.api_base,
            embedding_model=args.embedding_model,
            env_file=env_file,
        )
    )
    for flag in ("runs", "collection", "deployment"):
        if getattr(args, flag) < 1:
            raise CliError(f"--{flag} must be at least 1")
    from alma_tui.sandbox import SandboxLimits, SandboxUnavailable, require

    try:
        iso = require(bool(args.allow_weak_sandbox))
    except SandboxUnavailable as exc:
        raise CliError(str(exc)) from exc
    agent_params = RoleParams(args.agent_temperature, args.agent_reasoning)
    llm = LLMClient(api_base=args.api_base, role_params={"agent": agent_params, "design": agent_params})
    evaluator = Evaluator(
        domain,
        lambda m, s: llm.complete(m, model=agent_model, role="agent", seed=s),
        limits=SandboxLimits(isolate=iso.strong),
    )
    settings = EvalSettings(
        n_collection=args.collection,
        n_deployment=args.deployment,
        runs=args.runs,
        split=args.split,
        seed=args.seed,
        protocol=args.protocol,
    )
    from alma_tui.engine.evaluator import Hooks

    hooks = Hooks(
        design_embed=lambda texts: llm.embed(texts, model=args.embedding_model),
        design_llm=lambda p, s: llm.complete(
            ([{"role": "system", "content": s}] if s else []) + [{"role": "user", "content": p}],
            model=agent_model,
            role="design",
            seed=args.seed,
        ),
    )
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
