"""Child side of the design sandbox: runs ONE untrusted memory design.

The parent (:mod:`alma_tui.sandbox.runner`) starts this file as a script::

    python -s -P .../alma_tui/sandbox/worker.py REQ_FD RESP_FD LIMITS_JSON

in a new session (its own process group), in a fresh temp dir, with an
environment built from scratch (no API keys). ``REQ_FD``/``RESP_FD`` are
dedicated pipes carrying JSON lines; the child's own stdout/stderr go to a file
the parent reads, and ``sys.stdout``/``sys.stderr`` are replaced by streams that
send each printed line as an ``out`` message, so a design's ``print()`` can
never corrupt the protocol.

Protocol (one JSON object per line, ASCII-only so any string survives):

* child -> parent: ``{"type": "hello"}`` once ready; ``{"type": "result", "id",
  "ok": true, "value"}`` or ``{"type": "result", "id", "ok": false, "kind",
  "reason", "detail"}`` per call; during a call any number of ``{"type": "svc",
  "id", "service": "llm"|"embed", ...}`` (answered by ``svc_reply``) and one-way
  ``{"type": "log", "msg"}`` / ``{"type": "out", "stream", "line"}``.
* parent -> child: ``{"id", "op": "start"|"update"|"retrieve"|"snapshot", "arg"}``
  and ``{"type": "svc_reply", "id", "ok", "value"|"error"}``.

Threat model: the design is adversarial code in this interpreter, so nothing in this
file is a boundary. The boundary is the OS, set up by :mod:`confine` before the
design's code exists here (new PID/network/mount/IPC namespaces, a read-only root
that holds only system files, the stdlib, numpy and ``design_api``, uid 65534 or no
capabilities, a supervisor that kills the namespace with the engine), plus rlimits
and the parent's own checks of everything it reads (:mod:`runner`). What this file
adds is a second layer with clearer messages for *accidental* or naive misbehaviour:
an audit hook (:pep:`578`) that refuses process creation, sockets, signals, raising
rlimits, ctypes, writes outside the scratch dir, reading other processes' ``/proc``
entries and credential files, and importing the engine's own modules. A design can
switch it off (e.g. through ``gc``); the tests in ``tests/test_isolation.py`` and
``tests/test_hostile_designs.py`` do exactly that and check that the OS still holds.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import sys
import traceback
import types
from typing import Any

DESIGN_FILENAME = "design.py"
DESIGN_MODULE = "alma_design"
_OUT_LINE_MAX = 2000  # characters per forwarded output line

# Imported modules a design may not load (matched on the full dotted name or
# its first component); _posixsubprocess/_ctypes would bypass the audit events.
_BLOCKED_IMPORTS = {"_posixsubprocess", "_ctypes", "ctypes"}
_ALLOWED_OWN = ("alma_tui.design_api", "alma_tui.designs")
_FORBIDDEN_EVENTS = {
    "subprocess.Popen": "starting subprocesses",
    "os.system": "starting subprocesses",
    "os.exec": "starting subprocesses",
    "os.posix_spawn": "starting subprocesses",
    "os.spawn": "starting subprocesses",
    "os.fork": "forking",
    "os.forkpty": "forking",
    "pty.spawn": "starting subprocesses",
    "os.kill": "sending signals",
    "os.killpg": "sending signals",
    "signal.pthread_kill": "sending signals",
    "socket.__new__": "network access",
    "socket.connect": "network access",
    "socket.bind": "network access",
    "socket.sendto": "network access",
    "socket.getaddrinfo": "network access",
    "socket.gethostbyname": "network access",
    "resource.setrlimit": "changing resource limits",
    "resource.prlimit": "changing resource limits",
    "ctypes.dlopen": "loading native code",
    "ctypes.dlsym": "loading native code",
    "ctypes.call_function": "loading native code",
    "sys.remote_exec": "debugging other processes",
    "webbrowser.open": "opening a browser",
}
# Events whose leading arguments are paths that must stay inside the temp dir.
_PATH_EVENTS = {
    "os.remove": 1,
    "os.rmdir": 1,
    "os.mkdir": 1,
    "os.rename": 2,
    "os.link": 2,
    "os.symlink": 2,
    "os.chmod": 1,
    "os.chown": 1,
    "os.truncate": 1,
    "os.utime": 1,
    "os.chflags": 1,
    "os.setxattr": 1,
    "os.removexattr": 1,
    "shutil.rmtree": 1,
    "shutil.copyfile": 2,
    "shutil.copymode": 2,
    "shutil.copystat": 2,
    "shutil.chown": 1,
}
_SECRET_PARTS = {
    ".ssh",
    ".aws",
    ".gnupg",
    ".docker",
    ".kube",
    ".azure",
    "gcloud",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".alma",
    "shadow",
    "gshadow",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class _Protocol(Exception):
    """The parent sent something we do not understand: give up on this process."""


class _Channel:
    """JSON lines over two raw pipe fds (no Python file objects: nothing to hijack via sys)."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.buf = bytearray()
        self.scan = 0
        self.svc_id = 0

    def send(self, obj: dict[str, Any]) -> None:
        data = (json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]

    def recv(self) -> dict[str, Any]:
        while True:
            idx = self.buf.find(b"\n", self.scan)
            if idx >= 0:
                line = bytes(self.buf[:idx])
                del self.buf[: idx + 1]
                self.scan = 0
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise _Protocol("message is not an object")
                return msg
            self.scan = len(self.buf)
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise SystemExit(0)  # parent went away: nothing left to do
            self.buf += chunk

    def service(self, name: str, payload: dict[str, Any]) -> Any:
        """Ask the parent to run a service callback and wait for its answer."""
        self.svc_id += 1
        sid = self.svc_id
        self.send({"type": "svc", "id": sid, "service": name, **payload})
        msg = self.recv()
        if msg.get("type") != "svc_reply" or msg.get("id") != sid:
            raise _Protocol(f"expected the reply to service call {sid}, got {msg.get('type')!r}")
        if msg.get("ok"):
            return msg.get("value")
        raise RuntimeError(f"{name}() service failed: {msg.get('error')}")


class _OutStream(io.TextIOBase):
    """sys.stdout/sys.stderr replacement: forwards whole lines as protocol messages, capped."""

    def __init__(self, chan: _Channel, stream: str, budget: list[int]) -> None:
        super().__init__()
        self._chan = chan
        self._stream = stream
        self._budget = budget  # shared [lines left] between stdout and stderr
        self._partial = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        text = self._partial + s
        *lines, self._partial = text.split("\n")
        if len(self._partial) > _OUT_LINE_MAX:
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            self._emit(line)
        return len(s)

    def flush_partial(self) -> None:
        """End-of-call flush so a print without newline still shows up."""
        if self._partial:
            line, self._partial = self._partial, ""
            self._emit(line)

    def _emit(self, line: str) -> None:
        if self._budget[0] <= 0:
            return
        self._budget[0] -= 1
        if self._budget[0] == 0:
            line = "[further output of this design is dropped]"
        elif len(line) > _OUT_LINE_MAX:
            line = line[:_OUT_LINE_MAX] + f"... [{len(line) - _OUT_LINE_MAX} chars cut]"
        line = line.encode("utf-8", "replace").decode("utf-8")
        self._chan.send({"type": "out", "stream": self._stream, "line": line})


def _apply_limits(limits: dict[str, Any]) -> None:
    """Set hard == soft so the design cannot raise them back (root could: audit hook refuses)."""

    def setlim(which: int, soft: int, hard: int | None = None) -> None:
        _soft, cur_hard = resource.getrlimit(which)
        hard = soft if hard is None else hard
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            resource.setrlimit(which, (min(soft, cur_hard), cur_hard))

    setlim(resource.RLIMIT_CORE, 0)
    if limits.get("cpu_seconds"):
        cpu = int(limits["cpu_seconds"])
        setlim(resource.RLIMIT_CPU, cpu, cpu + 5)  # SIGXCPU at soft, SIGKILL at hard
    if limits.get("file_size_bytes"):
        setlim(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    if limits.get("open_files"):
        setlim(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if limits.get("max_processes") is not None:
        # Counts every task of the real uid, so a small value forbids fork and threads
        # for this process only; the kernel ignores it for root (CAP_SYS_RESOURCE).
        setlim(resource.RLIMIT_NPROC, int(limits["max_processes"]))
    if limits.get("memory_bytes"):
        setlim(resource.RLIMIT_AS, int(limits["memory_bytes"]))


def _import_design_api(pkg_dir: str) -> types.ModuleType:
    """Load alma_tui.design_api without running alma_tui/__init__.py.

    A stub package keeps start-up fast and independent of whatever the package's
    __init__ may import in the future; it also means this works from a source
    checkout (no install) and from site-packages alike.
    """
    import importlib.util

    pkg = types.ModuleType("alma_tui")
    pkg.__path__ = [pkg_dir]
    pkg.__file__ = os.path.join(pkg_dir, "__init__.py")
    sys.modules.setdefault("alma_tui", pkg)
    spec = importlib.util.spec_from_file_location("alma_tui.design_api", os.path.join(pkg_dir, "design_api.py"))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load alma_tui.design_api from {pkg_dir}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["alma_tui.design_api"] = mod
    spec.loader.exec_module(mod)
    pkg.design_api = mod  # type: ignore[attr-defined]
    return mod


class _Guard:
    """The audit hook (defence in depth only; see the module docstring)."""

    def __init__(self, tmpdir: str, pkg_dir: str) -> None:
        self.tmpdir = os.path.realpath(tmpdir)
        self.pkg_dir = os.path.realpath(pkg_dir)
        self.pkg_allowed = (
            os.path.join(self.pkg_dir, "design_api.py"),
            os.path.join(self.pkg_dir, "designs") + os.sep,
            os.path.join(self.pkg_dir, "sandbox") + os.sep,
        )
        self.pid = str(os.getpid())
        self.active = False

    def _real(self, path: Any, dir_fd: Any = None) -> str | None:
        if isinstance(path, int):
            return None
        try:
            p = os.fsdecode(path)
        except TypeError:
            return None
        if isinstance(dir_fd, int) and not os.path.isabs(p):
            try:
                p = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), p)
            except OSError:
                return None
        return os.path.realpath(p)

    def _inside_tmp(self, real: str | None) -> bool:
        return real is not None and (real == self.tmpdir or real.startswith(self.tmpdir + os.sep))

    def _check_read(self, real: str) -> None:
        parts = real.split(os.sep)
        if len(parts) > 2 and parts[1] == "proc" and parts[2].isdigit() and parts[2] != self.pid:
            raise PermissionError(f"sandbox: reading other processes' {real} is not allowed")
        for part in parts:
            if part in _SECRET_PARTS or part == ".env" or part.startswith(".env."):
                raise PermissionError(f"sandbox: reading {real} is not allowed")
        if real.startswith(self.pkg_dir + os.sep) and not real.startswith(self.pkg_allowed):
            raise PermissionError(f"sandbox: a design may not read the engine's own files ({real})")

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and mode is None and flags & _WRITE_FLAGS
            )
            real = self._real(path)
            if writing:
                if isinstance(path, int):
                    if path in (1, 2):
                        return
                    raise PermissionError("sandbox: writing to raw file descriptors is not allowed")
                if not self._inside_tmp(real):
                    raise PermissionError(
                        f"sandbox: writing files outside the design's temp dir is not allowed ({path!r})"
                    )
            if real is not None:
                self._check_read(real)
            return
        what = _FORBIDDEN_EVENTS.get(event)
        if what is not None:
            raise PermissionError(f"sandbox: {what} is not allowed for a memory design ({event})")
        if event == "import":
            name = str(args[0]) if args else ""
            top = name.split(".")[0]
            if name in _BLOCKED_IMPORTS or top in _BLOCKED_IMPORTS:
                raise ImportError(f"sandbox: module {name!r} is not available to a memory design")
            if top == "alma_tui" and not name.startswith(_ALLOWED_OWN):
                raise ImportError(f"sandbox: a design may import only alma_tui.design_api, not {name!r}")
            return
        nargs = _PATH_EVENTS.get(event)
        if nargs is not None:
            dir_fd = args[nargs] if len(args) > nargs and event.startswith("os.") else None
            for path in args[:nargs]:
                if isinstance(path, int):
                    continue
                if not self._inside_tmp(self._real(path, dir_fd)):
                    raise PermissionError(f"sandbox: {event} outside the design's temp dir is not allowed ({path!r})")


def _design_traceback(exc: BaseException, keep: int = 40) -> tuple[str, int | None]:
    """Traceback starting at the first frame of the design (worker frames are noise).

    Returns the formatted text and the line of the deepest design frame, which goes
    into the one-line reason so a repair prompt can point at it. Only the first and
    last ``keep`` frames are looked at: a runaway recursion has a million of them,
    and formatting those would itself take longer than the call timeout.
    """
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    first = next((i for i, (f, _) in enumerate(frames) if f.f_code.co_filename == DESIGN_FILENAME), 0)
    frames = frames[first:]
    lineno = next((n for f, n in reversed(frames) if f.f_code.co_filename == DESIGN_FILENAME), None)
    omitted = max(0, len(frames) - 2 * keep)
    head, tail = (frames[:keep], frames[-keep:]) if omitted else (frames, [])
    text = ["Traceback (most recent call last):\n"]
    text += traceback.StackSummary.extract(iter(head)).format()
    if omitted:
        text.append(f"  ... {omitted} more frames ...\n")
        text += traceback.StackSummary.extract(iter(tail)).format()
    text += traceback.format_exception_only(type(exc), exc)
    return "".join(text), lineno


def _tb_depth(exc: BaseException) -> int:
    """Frames in the traceback (walking links allocates nothing, safe after a MemoryError)."""
    n, tb = 0, exc.__traceback__
    while tb is not None:
        n, tb = n + 1, tb.tb_next
    return n


def _exc_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    first = msg[0] if msg else ""
    if len(first) > 300:
        first = first[:300] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class _Worker:
    """Holds the design instance and serves requests until the parent closes the pipe."""

    def __init__(self, chan: _Channel, api: types.ModuleType, guard: _Guard, reserve: bytearray) -> None:
        self.chan = chan
        self.api = api
        self.guard = guard
        self.reserve: bytearray | None = reserve
        self.design: Any = None
        self.max_chars = 20_000
        self.max_snapshot_bytes = 16 << 20

    # --- helpers -------------------------------------------------------------------
    def _failure(self, kind: str, reason: str, detail: str = "") -> dict[str, Any]:
        return {"ok": False, "kind": kind, "reason": reason, "detail": detail}

    def _from_exception(self, what: str, exc: BaseException) -> dict[str, Any]:
        if isinstance(exc, MemoryError):
            self.reserve = None  # give the reporting code room to breathe
        depth = _tb_depth(exc)
        if depth > 10_000:  # frames are heap objects in 3.11: a raised recursion limit ends in
            # MemoryError or SystemError, which would hide the real cause
            return self._failure(
                "error",
                f"{what} recursed without bound ({depth:,} nested calls; {_exc_line(exc)})",
                "unbounded recursion after sys.setrecursionlimit was raised",
            )
        if isinstance(exc, MemoryError):
            return self._failure("memory", f"ran out of memory in {what}", "MemoryError")
        detail, lineno = _design_traceback(exc)
        where = f" ({DESIGN_FILENAME} line {lineno})" if lineno else ""
        return self._failure("error", f"{what} raised {_exc_line(exc)}{where}", detail)

    def _services(self, flags: dict[str, Any]) -> Any:
        chan = self.chan

        def llm(prompt: str, system: str | None = None) -> str:
            value = chan.service("llm", {"prompt": str(prompt), "system": None if system is None else str(system)})
            return str(value)

        def embed(texts: list[str]) -> list[list[float]]:
            value = chan.service("embed", {"texts": [str(t) for t in texts]})
            return [list(v) for v in value]

        def log(msg: str) -> None:
            text = str(msg).encode("utf-8", "replace").decode("utf-8")
            chan.send({"type": "log", "msg": text[:10_000]})

        return self.api.Services(
            llm=llm if flags.get("llm") else None,
            embed=embed if flags.get("embed") else None,
            log=log,
        )

    # --- operations ----------------------------------------------------------------
    def op_start(self, arg: dict[str, Any]) -> dict[str, Any]:
        code = arg["code"]
        self.max_chars = int(arg.get("max_retrieve_chars", self.max_chars))
        self.max_snapshot_bytes = int(arg.get("max_snapshot_bytes", self.max_snapshot_bytes))
        with open(DESIGN_FILENAME, "w", encoding="utf-8") as fh:  # for tracebacks' source lines
            fh.write(code)
        try:
            compiled = compile(code, DESIGN_FILENAME, "exec", dont_inherit=True)
        except SyntaxError as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc))
            where = f" at {DESIGN_FILENAME} line {exc.lineno}" if exc.lineno else ""
            return self._failure("invalid", f"syntax error{where}: {exc.msg}", detail)
        except (ValueError, MemoryError) as exc:
            return self._failure("invalid", f"the code cannot be compiled: {_exc_line(exc)}")
        module = types.ModuleType(DESIGN_MODULE)
        module.__file__ = DESIGN_FILENAME
        sys.modules[DESIGN_MODULE] = module  # dataclasses and pickling look modules up here
        self.guard.active = True
        try:
            exec(compiled, module.__dict__)
        except BaseException as exc:
            return self._from_exception("loading the design", exc)
        finally:
            self.guard.active = False
        base = self.api.MemoryDesign
        found = [
            v
            for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, base) and v is not base and v.__module__ == DESIGN_MODULE
        ]
        # A helper base class plus its concrete subclass is fine: take the leaves.
        leaves = [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]
        if not leaves:
            return self._failure(
                "invalid",
                "the code defines no subclass of MemoryDesign "
                "(define exactly one class inheriting alma_tui.design_api.MemoryDesign)",
            )
        if len(leaves) > 1:
            names = ", ".join(sorted(c.__name__ for c in leaves))
            return self._failure(
                "invalid",
                f"the code defines {len(leaves)} MemoryDesign subclasses ({names}); define exactly one",
            )
        cls = leaves[0]
        services = self._services(arg.get("services", {}))
        self.guard.active = True
        try:
            self.design = cls(services)
        except BaseException as exc:
            return self._from_exception(f"{cls.__name__}.__init__()", exc)
        finally:
            self.guard.active = False
        return {"ok": True, "value": {"class_name": cls.__name__}}

    def _run(self, what: str, fn: Any, *args: Any) -> tuple[bool, Any]:
        self.guard.active = True
        try:
            return True, fn(*args)
        except BaseException as exc:
            self.guard.active = False
            return False, self._from_exception(what, exc)
        finally:
            self.guard.active = False

    def op_update(self, arg: dict[str, Any]) -> dict[str, Any]:
        episode = self.api.Episode.from_dict(arg)
        ok, res = self._run("update()", self.design.update, episode)
        return {"ok": True, "value": None} if ok else res

    def op_retrieve(self, arg: dict[str, Any]) -> dict[str, Any]:
        query = self.api.Query.from_dict(arg)
        ok, res = self._run("retrieve()", self.design.retrieve, query)
        if not ok:
            failure: dict[str, Any] = res
            return failure
        if not isinstance(res, str):
            return self._failure("invalid", f"retrieve() must return a str, but returned {type(res).__name__}")
        if len(res) > self.max_chars:
            cut = len(res) - self.max_chars
            res = res[: self.max_chars] + f"\n...[memory truncated: {cut} more chars]"
        return {"ok": True, "value": res.encode("utf-8", "replace").decode("utf-8")}

    def op_snapshot(self, arg: Any) -> dict[str, Any]:
        ok, res = self._run("snapshot()", self.design.snapshot)
        if not ok:
            failure: dict[str, Any] = res
            return failure
        if not isinstance(res, dict):
            return self._failure("invalid", f"snapshot() must return a dict, but returned {type(res).__name__}")
        try:
            size = len(json.dumps(res, ensure_ascii=True))
        except (TypeError, ValueError, RecursionError) as exc:
            return self._failure("invalid", f"snapshot() must return JSON-serialisable data ({_exc_line(exc)})")
        if size > self.max_snapshot_bytes:
            return self._failure(
                "invalid",
                f"snapshot() is too large ({size // 1024} KB > {self.max_snapshot_bytes // 1024} KB)",
            )
        return {"ok": True, "value": res}

    def serve(self, streams: list[_OutStream]) -> None:
        while True:
            req = self.chan.recv()
            op = req.get("op")
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None or (op != "start" and self.design is None):
                raise _Protocol(f"unexpected request {op!r}")
            try:
                result = handler(req.get("arg"))
            except MemoryError:
                self.reserve = None
                result = self._failure("memory", f"ran out of memory in {op}()", "MemoryError")
            for s in streams:
                s.flush_partial()
            result["type"] = "result"
            result["id"] = req.get("id")
            try:
                self.chan.send(result)
            except MemoryError:
                self.reserve = None
                self.chan.send(
                    {
                        "type": "result",
                        "id": req.get("id"),
                        "ok": False,
                        "kind": "memory",
                        "reason": f"ran out of memory in {op}()",
                        "detail": "MemoryError while encoding the result",
                    }
                )


MAX_RECURSION = 50_000


def _clamp_recursion_limit() -> None:
    """``sys.setrecursionlimit(10**9)`` is capped so runaway recursion ends in a RecursionError.

    Without the cap, 3.11 keeps allocating frames until the call timeout or the memory
    limit, and the report says "timeout" or "out of memory" instead of "recursion".
    """
    real = sys.setrecursionlimit

    def setrecursionlimit(limit: int) -> None:
        real(min(int(limit), MAX_RECURSION))

    sys.setrecursionlimit = setrecursionlimit


def _confine(spec: dict[str, Any], here: str, channel_fds: list[int]) -> dict[str, Any]:
    """Enter the OS sandbox (confine.py, loaded by path like design_api) and report on it.

    Returns in the confined child only. ctypes, which the confinement needed, is then
    dropped from ``sys.modules`` so that a design's ``import ctypes`` goes through the
    import machinery again and meets the audit hook.
    """
    import importlib.util

    mod_spec = importlib.util.spec_from_file_location("_alma_confine", os.path.join(here, "confine.py"))
    if mod_spec is None or mod_spec.loader is None:
        raise ImportError("cannot load the sandbox's confine.py")
    confine = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(confine)
    confine.isolate(spec, channel_fds)
    confine.build_root(spec)
    confine.drop_privileges(spec)
    report = dict(confine.report())
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    return report


def main(argv: list[str]) -> int:
    """Entry point; argv = [REQ_FD, RESP_FD, LIMITS_JSON]."""
    here = os.path.dirname(os.path.realpath(__file__))
    # Never let the sandbox dir itself shadow modules (only matters without -P).
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != here]
    sys.dont_write_bytecode = True
    req_fd, resp_fd, limits = int(argv[0]), int(argv[1]), json.loads(argv[2])
    pkg_dir = os.path.dirname(here)

    import faulthandler

    faulthandler.enable(file=sys.__stderr__ or 2, all_threads=False)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversize write -> OSError, not death
    api = _import_design_api(pkg_dir)
    chan = _Channel(req_fd, resp_fd)
    isolation: dict[str, Any] | None = None
    if limits.get("confine"):
        try:
            isolation = _confine(limits["confine"], here, [req_fd, resp_fd])
        except Exception as exc:  # ConfineError or an OSError of a step: the design never runs
            chan.send({"type": "hello", "pid": os.getpid(), "isolation_error": f"{type(exc).__name__}: {exc}"})
            return 71
    import _posixsubprocess  # pre-loaded, then neutered: see below

    def _no_fork_exec(*_a: Any, **_k: Any) -> Any:
        raise PermissionError("sandbox: starting subprocesses is not allowed for a memory design")

    _posixsubprocess.fork_exec = _no_fork_exec

    budget = [int(limits.get("max_output_lines", 2000))]
    out = _OutStream(chan, "stdout", budget)
    err = _OutStream(chan, "stderr", budget)
    sys.stdout, sys.stderr = out, err
    sys.stdin = io.StringIO("")
    _clamp_recursion_limit()
    guard = _Guard(os.getcwd(), pkg_dir)
    sys.addaudithook(guard)
    _apply_limits(limits)
    reserve = bytearray(1 << 20)  # freed on MemoryError so the report can be sent
    worker = _Worker(chan, api, guard, reserve)
    chan.send({"type": "hello", "pid": os.getpid(), "isolation": isolation})
    try:
        worker.serve([out, err])
    except _Protocol as exc:
        os.write(2, f"sandbox worker: protocol error: {exc}\n".encode())
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
