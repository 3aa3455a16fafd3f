"""Parent side of the design sandbox: spawn, broker, time and kill design workers.

A memory design is untrusted code written by an LLM, so it never runs in the
engine or UI process. :class:`SandboxedDesign` starts one child Python process
per design (see :mod:`alma_tui.sandbox.worker` for the child and for an honest
threat model) and talks to it in JSON lines over two dedicated pipes. While a
call is running the child may ask for services (``llm``, ``embed``, ``log``);
the parent runs the callbacks it was given and sends the answers back.

Everything that can go wrong with a design becomes a :class:`DesignFailure`
with a ``kind`` and a one-line ``reason`` fit for the user (and for the meta
agent's repair prompt); the engine itself never hangs or dies because of a
design: every wait has a deadline, and on expiry the whole process group is
SIGKILLed and reaped.

How the child is started, and why it differs slightly from ``python -I -m``:
the worker is run *by path* with ``-s -P`` (no user site-packages, no script
dir or cwd on ``sys.path``) in an environment we build from scratch rather than
inherit. ``-I`` would additionally imply ``-E`` (ignore ``PYTHON*`` variables),
which buys nothing when no inherited variable reaches the child, and would drop
the ones we deliberately set: ``PYTHONHASHSEED=0`` makes a design's set/dict
iteration order, hence its retrieved text, reproducible across runs;
``PYTHONUNBUFFERED``/``PYTHONDONTWRITEBYTECODE`` keep output prompt and the
checkout clean. Running by path (instead of ``-m``) works both from a source
checkout and from an installed package, because the worker locates
``design_api.py`` next to itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alma_tui.design_api import Episode, Query
from alma_tui.sandbox.isolation import DIR_PREFIX, confine_spec, supported

__all__ = [
    "DesignFailure",
    "SandboxLimits",
    "SandboxedDesign",
    "is_secret_name",
    "scrub_env",
    "validate_design",
]

WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")

LlmFn = Callable[[str, "str | None"], str]
EmbedFn = Callable[[list[str]], Any]
LogFn = Callable[[str], None]

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_SECRET_PREFIXES = ("AWS_", "OPENAI", "ANTHROPIC", "GEMINI", "AZURE", "LITELLM", "HF_")
_KEEP_VARS = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_MEMORY_HINTS = ("MemoryError", "Cannot allocate memory", "out of memory", "bad_alloc", "failed to allocate")
_TAIL_BYTES = 8192


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one design process (see module docstrings for the reasoning).

    ``max_processes`` is RLIMIT_NPROC. The kernel counts every task of the real
    user against it, so the default 0 means "this process may not fork or start
    threads", whatever else the user runs; it is ignored by the kernel for root
    (CAP_SYS_RESOURCE), where only the worker's audit hook stands in the way.
    ``None`` leaves the inherited limit alone.
    """

    memory_mb: int = 1024
    cpu_seconds: int = 300
    call_timeout_s: float = 20.0
    start_timeout_s: float = 20.0
    file_size_mb: int = 16
    max_processes: int | None = 0
    open_files: int = 256
    max_retrieve_chars: int = 20_000
    max_snapshot_kb: int = 4096
    # The engine's own caps on what it reads (the worker's checks can be bypassed by
    # the design): one line, all lines of one call, log/print lines per design.
    max_message_mb: int = 6
    max_call_mb: int = 64
    max_output_lines: int = 2000
    max_log_lines: int = 2000
    max_log_chars: int = 2000
    max_prompt_chars: int = 200_000
    max_embed_texts: int = 256
    # OS isolation (see isolation.py): True requires it; False runs with the in-process
    # guards only (the user's explicit --allow-weak-sandbox on a machine without it).
    isolate: bool = True
    scratch_mb: int = 64
    # Time spent in the parent's llm/embed callbacks does not count against
    # call_timeout_s (a slow model is not the design's fault); this caps the total.
    max_call_wall_s: float = 900.0

    def for_child(self) -> dict[str, Any]:
        return {
            "memory_bytes": self.memory_mb << 20,
            "cpu_seconds": self.cpu_seconds,
            "file_size_bytes": self.file_size_mb << 20,
            "max_processes": self.max_processes,
            "open_files": self.open_files,
            "max_output_lines": self.max_output_lines,
        }


class DesignFailure(Exception):
    """A design failed; after this the design is dead and every later call raises too.

    ``kind`` is one of "error" (design code raised), "timeout" (wall clock or CPU
    limit), "memory", "crash" (process died otherwise, or was closed), "protocol"
    (the child sent garbage) and "invalid" (contract violated: syntax error, no
    MemoryDesign subclass, wrong return type). ``reason`` is one line for humans and
    repair prompts, ``detail`` a traceback or stderr tail. ``service_error`` is the
    last exception raised by the engine's own llm/embed callback during the failed
    call (e.g. a budget exhaustion the design did not handle), so the engine can
    tell its own problems from the design's.
    """

    def __init__(
        self, kind: str, reason: str, detail: str = "", *, op: str = "", service_error: BaseException | None = None
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.detail = detail
        self.op = op
        self.service_error = service_error

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_failure, (self.kind, self.reason, self.detail, self.op))

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "reason": self.reason, "detail": self.detail, "op": self.op}


def _rebuild_failure(kind: str, reason: str, detail: str, op: str) -> DesignFailure:
    """Unpickling helper (the callback exception itself is not carried across)."""
    return DesignFailure(kind, reason, detail, op=op)


class _Timeout(Exception):
    pass


class _Eof(Exception):
    pass


def scrub_env(environ: dict[str, str] | None = None, *, home: str) -> dict[str, str]:
    """A minimal environment for a design: a few harmless variables, never a secret.

    Built from an allow-list; the deny rules are applied on top in case someone
    widens the allow-list later.
    """
    src = os.environ if environ is None else environ
    env = {k: src[k] for k in _KEEP_VARS if k in src}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.update(
        {
            "HOME": home,
            "TMPDIR": home,
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONSAFEPATH": "1",
            "PYTHONIOENCODING": "utf-8",
            # One BLAS thread: threads may be forbidden (RLIMIT_NPROC) and each one
            # reserves address space that would count against RLIMIT_AS.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
    )
    return {k: v for k, v in env.items() if not is_secret_name(k)}


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name looks like a credential (never given to designs or Ray workers)."""
    upper = name.upper()
    return any(w in upper for w in _SECRET_WORDS) or upper.startswith(_SECRET_PREFIXES)


class _Resources:
    """Process, fds and temp dir of one child; released exactly once (close or GC)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmpdir: str | None = None
        self.fds: list[int] = []
        self.out_fd: int | None = None
        self.out_pos = 0
        self.lifeline: int | None = None

    def kill(self) -> None:
        """Kill the design process and everything it started.

        Isolated: closing the lifeline (and SIGTERM) makes the supervisor SIGKILL the
        namespace's PID 1, which takes every process of the namespace with it, even
        one that left the process group; the supervisor is given a moment to do so
        before the group is SIGKILLed as a fallback. Not isolated: SIGKILL the group.
        The leader is not reaped yet, so its pid (= pgid) is still ours.
        """
        proc = self.proc
        if self.lifeline is not None:
            with contextlib.suppress(OSError):
                os.close(self.lifeline)
            self.lifeline = None
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(2.0)
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    def reap(self, timeout: float = 5.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return proc.wait(timeout)

    def output_tail(self, limit: int = _TAIL_BYTES) -> str:
        """Last bytes the child wrote to its real stdout/stderr (fatal errors land there)."""
        if self.out_fd is None:
            return ""
        try:
            size = os.fstat(self.out_fd).st_size
            start = max(0, size - limit)
            data = os.pread(self.out_fd, size - start, start)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def new_output(self, limit: int = 64 * 1024) -> str:
        """Output written to the real fds since the last look (forwarded to the log)."""
        if self.out_fd is None:
            return ""
        try:
            size = os.fstat(self.out_fd).st_size
            if size <= self.out_pos:
                return ""
            data = os.pread(self.out_fd, min(size - self.out_pos, limit), self.out_pos)
            self.out_pos = size
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def release(self) -> None:
        self.kill()
        with contextlib.suppress(Exception):
            self.reap()
        for fd in [*self.fds, *([self.out_fd] if self.out_fd is not None else [])]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        self.out_fd = None
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


class SandboxedDesign:
    """One memory design running in its own process; calls are serialised by a lock.

    Use as a context manager (``with SandboxedDesign(code) as d: ...``), or call
    :meth:`start` and :meth:`close` yourself. ``log`` receives service ``log()``
    messages verbatim and the design's printed output as ``"[stdout] ..."`` /
    ``"[stderr] ..."`` lines; it is called from the thread making the call.
    Exceptions raised by ``llm``/``embed`` are passed to the design as
    ``RuntimeError``; exceptions from ``log`` are ignored.
    """

    def __init__(
        self,
        code: str,
        *,
        llm: LlmFn | None = None,
        embed: EmbedFn | None = None,
        log: LogFn | None = None,
        limits: SandboxLimits | None = None,
        name: str = "design",
    ) -> None:
        self.code = code
        self.name = name
        self.limits = limits or SandboxLimits()
        self.class_name: str | None = None
        self._llm = llm
        self._embed = embed
        self._log = log
        self._lock = threading.RLock()  # serialises calls
        self._stats_lock = threading.Lock()
        self._res = _Resources()
        self._finalizer = weakref.finalize(self, self._res.release)
        self._started = False
        self._closing = False
        self._failure: DesignFailure | None = None
        self.isolation_report: dict[str, Any] | None = None
        self._call_id = 0
        self._call_bytes = 0
        self._buf = bytearray()
        self._scan = 0
        self._svc_error: BaseException | None = None
        self._stats: dict[str, Any] = {
            "spawn_s": None,
            "start_s": None,
            "calls": {},
            "call_time_s": {},
            "service_calls": {"llm": 0, "embed": 0, "log": 0},
            "service_time_s": {"llm": 0.0, "embed": 0.0},
            "output_lines": 0,
            "log_lines": 0,
        }

    # --- public API ------------------------------------------------------------------
    def __enter__(self) -> SandboxedDesign:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        proc = self._res.proc
        return (
            self._started and not self._closing and self._failure is None and proc is not None and proc.poll() is None
        )

    @property
    def failure(self) -> DesignFailure | None:
        """The failure that killed this design, if any."""
        return self._failure

    @property
    def pid(self) -> int | None:
        return self._res.proc.pid if self._res.proc is not None else None

    @property
    def stats(self) -> dict[str, Any]:
        """Counts and timings: calls per op, seconds per op, service calls and seconds.

        Has its own small lock, so a UI thread can read it while a call is running.
        """
        with self._stats_lock:
            stats: dict[str, Any] = json.loads(json.dumps(self._stats))
            return stats

    def start(self) -> None:
        """Spawn the child, load the code and instantiate its single MemoryDesign subclass."""
        with self._lock:
            if self._started:
                self._check_usable("start")
                return
            self._started = True
            t0 = time.monotonic()
            try:
                self._spawn()
                budget = [self.limits.start_timeout_s]
                try:
                    hello = self._recv_counted(budget, "start-up")
                except _Timeout:
                    raise DesignFailure(
                        "timeout",
                        f"the design process did not start within {self.limits.start_timeout_s:g}s",
                        self._res.output_tail(),
                        op="start",
                    ) from None
                except _Eof:
                    raise self._died("start", "start-up") from None
                if hello.get("type") != "hello":
                    raise DesignFailure(
                        "protocol", "the design process did not say hello", repr(hello)[:500], op="start"
                    )
                if hello.get("isolation_error"):
                    raise DesignFailure(
                        "sandbox",
                        f"OS isolation failed: {str(hello['isolation_error'])[:300]}",
                        self._res.output_tail(),
                        op="start",
                    )
                report = hello.get("isolation")
                if self.limits.isolate and not isinstance(report, dict):
                    raise DesignFailure("sandbox", "the design process is not isolated", op="start")
                self.isolation_report = report if isinstance(report, dict) else None
                self._stat_set("spawn_s", round(time.monotonic() - t0, 4))
                value = self._exchange(
                    "start",
                    {
                        "code": self.code,
                        "services": {"llm": self._llm is not None, "embed": self._embed is not None},
                        "max_retrieve_chars": self.limits.max_retrieve_chars,
                        "max_snapshot_bytes": self.limits.max_snapshot_kb << 10,
                    },
                    budget,
                )
                self.class_name = str(value.get("class_name")) if isinstance(value, dict) else None
                self._stat_set("start_s", round(time.monotonic() - t0, 4))
            except DesignFailure as failure:
                self._die(failure)
                raise
            except BaseException:
                self._die(DesignFailure("crash", "start-up was interrupted", op="start"))
                raise

    def update(self, episode: Episode | dict[str, Any]) -> None:
        """Hand one finished episode to the design."""
        ep = episode if isinstance(episode, Episode) else Episode.from_dict(episode)
        data = ep.to_dict()
        self._call("update", data)

    def retrieve(self, query: Query | dict[str, Any]) -> str:
        """Ask the design for memory text (capped at ``limits.max_retrieve_chars``)."""
        data = query.to_dict() if isinstance(query, Query) else Query.from_dict(query).to_dict()
        value = self._call("retrieve", data)
        if not isinstance(value, str):
            raise self._die(DesignFailure("protocol", "retrieve() result arrived as a non-string", op="retrieve"))
        # The worker truncates to the limit and appends a short note; anything longer
        # was not produced by the worker's own code.
        if len(value) > self.limits.max_retrieve_chars + 100:
            raise self._die(
                DesignFailure(
                    "protocol",
                    f"protocol violation: a retrieve() result of {len(value):,} chars "
                    f"(over the limit of {self.limits.max_retrieve_chars:,})",
                    op="retrieve",
                )
            )
        return value

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable view of the design's memory, for the TUI."""
        value = self._call("snapshot", None)
        if not isinstance(value, dict):
            raise self._die(DesignFailure("protocol", "snapshot() result arrived as a non-dict", op="snapshot"))
        return value

    def close(self) -> None:
        """Kill the process group and clean up; idempotent, safe from any thread.

        Killing happens first and without the call lock, so close() also interrupts
        a call hanging in another thread (that call then raises DesignFailure).
        """
        self._closing = True
        self._res.kill()
        with self._lock:
            self._finalizer()

    # --- internals ---------------------------------------------------------------------
    def _check_usable(self, op: str) -> None:
        if self._failure is not None:
            f = self._failure
            raise DesignFailure(f.kind, f"design is dead after an earlier failure: {f.reason}", f.detail, op=op)
        if self._closing:
            raise DesignFailure("crash", "design is closed", op=op)
        if not self._started:
            raise DesignFailure("crash", "design was not started (call start() first)", op=op)

    def _call(self, op: str, arg: Any) -> Any:
        with self._lock:
            self._check_usable(op)
            t0 = time.monotonic()
            try:
                return self._exchange(op, arg, [self.limits.call_timeout_s])
            except DesignFailure as failure:
                self._die(failure)
                raise
            except BaseException:
                self._die(DesignFailure("crash", f"{op}() was interrupted", op=op))
                raise
            finally:
                self._stat_add("calls", op, 1)
                self._stat_add("call_time_s", op, time.monotonic() - t0)

    def _stat_set(self, key: str, value: Any) -> None:
        with self._stats_lock:
            self._stats[key] = value

    def _stat_add(self, section: str, key: str, amount: float) -> None:
        with self._stats_lock:
            table = self._stats[section]
            table[key] = round(table.get(key, 0) + amount, 6)

    def _die(self, failure: DesignFailure) -> DesignFailure:
        """Record the failure and free everything now (called under the call lock).
        Returns the failure that stands: the first one recorded.

        Releasing here, not only in close(), matters because ``with
        SandboxedDesign(...)`` never reaches ``__exit__`` when start() fails.
        """
        first = self._failure if self._failure is not None else failure
        self._failure = first
        self._res.kill()
        with contextlib.suppress(Exception):
            self._res.reap()
        self._forward_fd_output()
        self._finalizer()
        return first

    def _spawn(self) -> None:
        res = self._res
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)[:40]
        # The engine's pid in the name lets a later engine remove folders a kill -9 left behind.
        res.tmpdir = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-{safe}-")
        # Unlinked at once: the parent keeps reading it through its fd, nothing is left on disk.
        out_path = os.path.join(res.tmpdir, ".output")
        out_w = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        res.out_fd = os.open(out_path, os.O_RDONLY | os.O_CLOEXEC)
        os.unlink(out_path)
        req_r, req_w = os.pipe()  # O_CLOEXEC: concurrent spawns in other threads cannot inherit
        resp_r, resp_w = os.pipe()
        res.fds = [req_w, resp_r]
        child_fds = [req_r, resp_w]
        limits = self.limits.for_child()
        home = res.tmpdir
        if self.limits.isolate:
            why = supported()
            if why is not None:
                raise DesignFailure("sandbox", f"OS isolation is not available: {why}", op="start")
            life_r, res.lifeline = os.pipe()
            child_fds.append(life_r)
            limits["confine"] = confine_spec(res.tmpdir, life_r, self.limits.scratch_mb)
            home = "/tmp"
        try:
            res.proc = subprocess.Popen(
                [sys.executable, "-s", "-P", WORKER_PATH, str(req_r), str(resp_w), json.dumps(limits)],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                pass_fds=tuple(child_fds),
                cwd=res.tmpdir,
                env=scrub_env(home=home),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise DesignFailure("crash", f"could not start the design process: {exc}", op="start") from exc
        finally:
            for fd in (*child_fds, out_w):
                os.close(fd)
        os.set_blocking(req_w, False)
        os.set_blocking(resp_r, False)

    def _exchange(self, op: str, arg: Any, budget: list[float]) -> Any:
        """Send one request and serve service requests until its result arrives.

        ``budget`` is the child's remaining time, shared with the caller; it only
        runs down while we wait for the child, not while our callbacks run.
        """
        self._call_id += 1
        call_id = self._call_id
        self._svc_error = None
        self._call_bytes = 0
        wall_deadline = time.monotonic() + self.limits.max_call_wall_s
        label = "start-up" if op == "start" else f"{op}()"
        try:
            self._send({"id": call_id, "op": op, "arg": arg}, budget, label)
            while True:
                if time.monotonic() > wall_deadline:
                    raise _Timeout
                msg = self._recv_counted(budget, label)
                kind = msg.get("type")
                if kind == "result":
                    if msg.get("id") != call_id:
                        raise self._protocol(op, f"result for call {msg.get('id')!r}")
                    return self._result(op, msg)
                if kind == "svc":
                    self._serve_service(msg, budget, label)
                elif kind == "out":
                    self._emit_output(f"[{str(msg.get('stream', 'stdout'))[:6]}] {msg.get('line', '')}")
                elif kind == "log":
                    self._stat_add("service_calls", "log", 1)
                    self._emit_capped("log_lines", self.limits.max_log_lines, str(msg.get("msg", "")))
                else:
                    raise self._protocol(op, f"unexpected message type {kind!r}")
        except _Timeout:
            self._res.kill()
            limit = self.limits.start_timeout_s if op == "start" else self.limits.call_timeout_s
            raise DesignFailure(
                "timeout",
                f"{label} exceeded {limit:g}s and was killed",
                self._res.output_tail(),
                op=op,
                service_error=self._svc_error,
            ) from None
        except _Eof:
            raise self._died(op, label) from None
        finally:
            self._forward_fd_output()

    def _result(self, op: str, msg: dict[str, Any]) -> Any:
        if msg.get("ok"):
            return msg.get("value")
        kind = str(msg.get("kind", "error"))
        if kind not in ("error", "memory", "invalid"):
            kind = "protocol"
        reason = str(msg.get("reason", "failed"))
        if kind == "memory":
            reason = f"{reason} (limit {self.limits.memory_mb} MB)"
        raise DesignFailure(kind, reason, str(msg.get("detail", "")), op=op, service_error=self._svc_error)

    def _protocol(self, op: str, what: str) -> DesignFailure:
        return DesignFailure(
            "protocol",
            f"the design process broke the sandbox protocol: {what}",
            self._res.output_tail(),
            op=op,
            service_error=self._svc_error,
        )

    def _died(self, op: str, label: str) -> DesignFailure:
        """Turn an unexpected EOF into the most precise failure we can name."""
        try:
            rc = self._res.reap(2.0)
        except Exception:
            rc = None
        tail = self._res.output_tail()
        mem = any(h in tail for h in _MEMORY_HINTS)
        if self._closing:
            return DesignFailure("crash", f"design was closed while {label} was running", tail, op=op)
        if rc is not None and rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = f"signal {-rc}"
            if -rc == signal.SIGXCPU:
                return DesignFailure(
                    "timeout",
                    f"used more than {self.limits.cpu_seconds}s of CPU time and was killed (during {label})",
                    tail,
                    op=op,
                )
            if mem:
                return DesignFailure(
                    "memory",
                    f"ran out of memory in {label} (limit {self.limits.memory_mb} MB; killed by {sig})",
                    tail,
                    op=op,
                )
            hint = " (possibly the system OOM killer)" if -rc == signal.SIGKILL else ""
            return DesignFailure(
                "crash",
                f"the design process was killed by {sig}{hint} during {label}",
                tail,
                op=op,
                service_error=self._svc_error,
            )
        if mem:
            return DesignFailure(
                "memory", f"ran out of memory in {label} (limit {self.limits.memory_mb} MB)", tail, op=op
            )
        code = "an unknown status" if rc is None else f"code {rc}"
        return DesignFailure(
            "crash", f"the design process exited with {code} during {label}", tail, op=op, service_error=self._svc_error
        )

    def _serve_service(self, msg: dict[str, Any], budget: list[float], label: str) -> None:
        service = msg.get("service")
        sid = msg.get("id")
        t0 = time.monotonic()
        reply: dict[str, Any] = {"type": "svc_reply", "id": sid}
        try:
            if service == "llm":
                if self._llm is None:
                    raise RuntimeError("no llm service is available in this context")
                system = msg.get("system")
                prompt = str(msg.get("prompt", ""))
                if len(prompt) + len(str(system or "")) > self.limits.max_prompt_chars:
                    raise ValueError(f"llm() prompt over {self.limits.max_prompt_chars:,} chars")
                value: Any = self._llm(prompt, None if system is None else str(system))
                if not isinstance(value, str):
                    raise TypeError(f"llm callback returned {type(value).__name__}, not str")
            elif service == "embed":
                if self._embed is None:
                    raise RuntimeError("no embedding service is available in this context")
                texts = msg.get("texts")
                if not isinstance(texts, list):
                    raise TypeError("embed() needs a list of texts")
                if (
                    len(texts) > self.limits.max_embed_texts
                    or sum(len(str(t)) for t in texts) > self.limits.max_prompt_chars
                ):
                    raise ValueError(
                        f"embed() takes at most {self.limits.max_embed_texts} texts and "
                        f"{self.limits.max_prompt_chars:,} chars per call"
                    )
                raw = self._embed([str(t) for t in texts])
                value = [[float(x) for x in vec] for vec in raw]
            else:
                raise self._protocol(label, f"unknown service {service!r}")
            reply.update(ok=True, value=value)
        except DesignFailure:
            raise
        except Exception as exc:
            self._svc_error = exc
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:2000])
        finally:
            if service in ("llm", "embed"):
                self._stat_add("service_calls", service, 1)
                self._stat_add("service_time_s", service, time.monotonic() - t0)
        self._send(reply, budget, label)

    def _emit_output(self, line: str) -> None:
        self._emit_capped("output_lines", self.limits.max_output_lines + 10, line)

    def _emit_capped(self, counter: str, limit: int, line: str) -> None:
        """Forward a log/print line within the design's per-design budget, cut to a sane width.

        Enforced here, not only in the worker: a design can write to the channel itself.
        """
        with self._stats_lock:
            n = self._stats[counter]
            if n > limit:
                return
            self._stats[counter] = n + 1
        if n == limit:
            line = f"[further {counter.split('_')[0]} lines of this design are dropped (limit {limit})]"
        elif len(line) > self.limits.max_log_chars:
            line = line[: self.limits.max_log_chars] + f"... [{len(line) - self.limits.max_log_chars} chars cut]"
        self._emit_log(line)

    def _emit_log(self, line: str) -> None:
        if self._log is None:
            return
        with contextlib.suppress(Exception):
            self._log(line)

    def _forward_fd_output(self) -> None:
        """Forward what went to the child's real fds 1/2 (C-level writes, fatal errors)."""
        text = self._res.new_output()
        for line in text.splitlines():
            if line.strip():
                self._emit_output(f"[stderr] {line}")

    # --- raw pipe I/O with deadlines -------------------------------------------------
    def _send(self, obj: dict[str, Any], budget: list[float], label: str) -> None:
        data = (json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        fd = self._res.fds[0]
        view = memoryview(data)
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                raise _Eof from None
            self._wait(poller, budget)

    def _recv_counted(self, budget: list[float], label: str) -> dict[str, Any]:
        """Next message from the child, within the remaining budget."""
        fd = self._res.fds[1]
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        limit = self.limits.max_message_mb << 20
        while True:
            idx = self._buf.find(b"\n", self._scan)
            if idx >= 0:
                line = bytes(self._buf[:idx])
                del self._buf[: idx + 1]
                self._scan = 0
                try:
                    msg = json.loads(line)
                except ValueError:
                    raise self._protocol(label, "a line that is not JSON") from None
                if not isinstance(msg, dict):
                    raise self._protocol(label, "a message that is not an object")
                return msg
            self._scan = len(self._buf)
            if len(self._buf) > limit:
                raise self._protocol(label, f"a message over {self.limits.max_message_mb} MB")
            if self._call_bytes > self.limits.max_call_mb << 20:
                raise self._protocol(label, f"more than {self.limits.max_call_mb} MB sent during one call")
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - len(self._buf)))
            except BlockingIOError:
                self._wait(poller, budget)
                continue
            if not chunk:
                raise _Eof
            self._call_bytes += len(chunk)
            self._buf += chunk

    @staticmethod
    def _wait(poller: select.poll, budget: list[float]) -> None:
        """Block until the fd is ready; charge the time to the child's budget."""
        if budget[0] <= 0:
            raise _Timeout
        t0 = time.monotonic()
        poller.poll(max(1, int(budget[0] * 1000)))
        budget[0] -= time.monotonic() - t0
        # An HUP/ERR wakes us too; the following read/write turns it into _Eof.


def validate_design(
    code: str,
    *,
    episodes: list[Episode],
    queries: list[Query],
    llm: LlmFn | None = None,
    embed: EmbedFn | None = None,
    log: LogFn | None = None,
    limits: SandboxLimits | None = None,
    name: str = "design",
) -> dict[str, Any]:
    """Smoke-test a design: start, update each episode, retrieve each query, snapshot.

    Returns a small report (class name, retrieved texts, snapshot, timings, stats,
    last output lines); raises :class:`DesignFailure` on the first problem, whose
    ``reason``/``detail`` are meant to be fed back into a repair prompt.
    """
    lines: deque[str] = deque(maxlen=50)

    def tee(line: str) -> None:
        lines.append(line)
        if log is not None:
            log(line)

    timings: dict[str, Any] = {"update_s": [], "retrieve_s": []}
    with SandboxedDesign(code, llm=llm, embed=embed, log=tee, limits=limits, name=name) as d:
        timings["start_s"] = d.stats["start_s"]
        for ep in episodes:
            t0 = time.monotonic()
            d.update(ep)
            timings["update_s"].append(round(time.monotonic() - t0, 4))
        retrieved = []
        for q in queries:
            t0 = time.monotonic()
            retrieved.append(d.retrieve(q))
            timings["retrieve_s"].append(round(time.monotonic() - t0, 4))
        t0 = time.monotonic()
        snap = d.snapshot()
        timings["snapshot_s"] = round(time.monotonic() - t0, 4)
        return {
            "class_name": d.class_name,
            "retrieved": retrieved,
            "snapshot": snap,
            "timings": timings,
            "stats": d.stats,
            "log_tail": list(lines),
        }
