"""Child side of OS isolation: namespaces, a minimal read-only root, no privileges.

The worker calls :func:`isolate` first thing, before any design code exists in the
process, so everything here is trusted. It runs in the worker's own (single-threaded)
interpreter and uses only the standard library and raw syscalls through ``ctypes``
(Python 3.11 has no ``os.unshare``). What it builds, on Linux:

1. ``unshare`` of the user (only when the engine is not root), mount, PID, network,
   IPC, UTS and cgroup namespaces, then a ``fork``: the child is PID 1 of a new PID
   namespace, so when it dies the kernel kills every process a design started
   (``setsid``/double-fork included), and its ``/proc`` shows only those processes.
   The parent stays behind as a tiny **supervisor**: it kills the child when the
   engine goes away (its lifeline pipe reaches EOF, even after ``kill -9`` of the
   engine), when it gets SIGTERM from the engine, or never otherwise; a design
   cannot see or signal it (it lives outside the design's PID namespace).
2. A new root built on a small tmpfs and entered with ``pivot_root`` (the old root is
   detached, so no path leads back to it): read-only binds of the system
   directories, the Python standard library, numpy and the two parts of
   ``alma_tui`` a design may import; a fresh ``/proc``; four device nodes; a
   size-capped tmpfs ``/tmp`` that is the design's only writable place. Home
   directories, the designs repo, ``.env`` files and other sandboxes simply do not
   exist in that tree, and the new network namespace has only a loopback that is down.
3. Privileges dropped: as uid/gid 65534 with no supplementary groups when the
   engine is root; with every capability cleared when it runs in a user namespace.
   ``PR_SET_NO_NEW_PRIVS`` and ``PR_SET_PDEATHSIG`` (SIGKILL) follow, then a seccomp
   filter refusing the syscalls behind most kernel escapes (new namespaces, mounts,
   ptrace, BPF, keyrings, io_uring, modules).

Anything that fails raises :class:`ConfineError` with one line saying which step;
the worker reports it to the engine instead of running the design.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import select
import signal
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24

NOBODY = 65534
# pivot_root and capset have per-architecture numbers (libc wraps neither).
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capset": 126},
    "aarch64": {"pivot_root": 41, "capset": 91},
}
# Syscalls a design has no use for and the kernel's largest attack surface behind them
# (namespaces and mounts, tracing, BPF, keyrings, io_uring, modules, clocks), refused
# with EPERM by a seccomp filter. Numbers checked against the kernel headers
# (asm/unistd_64.h, asm-generic/unistd.h). clone3 answers ENOSYS so libc falls back
# to clone, whose flags the filter can see; clone with namespace flags is refused.
_DENY = {  # name: (x86_64, aarch64)
    "ptrace": (101, 117),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "unshare": (272, 97),
    "setns": (308, 268),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "reboot": (169, 142),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "kcmp": (312, 272),
    "mount_setattr": (442, 442),
    "move_mount": (429, 429),
    "open_tree": (428, 428),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "quotactl": (179, 60),
    "acct": (163, 89),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "syslog": (103, 116),
    "vhangup": (153, 58),
    "fanotify_init": (300, 262),
    "lookup_dcookie": (212, 18),
}
_CLONE = (56, 220)
_CLONE3 = (435, 435)
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NS_FLAGS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
# statvfs flags that a bind remount must keep (the kernel refuses to clear "locked"
# ones inside a user namespace) and their MS_* equivalents.
_KEEP_FLAGS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
_DEVICES = ("null", "zero", "full", "random", "urandom")


class ConfineError(Exception):
    """OS isolation could not be set up; the message names the step."""


_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise ConfineError(f"{what}: {os.strerror(err)} (errno {errno.errorcode.get(err, err)})")


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_c().mount(_b(src), _b(dst), _b(fstype), flags, _b(data)), f"mount {dst}")


def _syscall(name: str, *args: Any) -> int:
    nums = _SYSCALLS.get(platform.machine())
    if nums is None:
        raise ConfineError(f"no syscall table for {platform.machine()} ({name})")
    return int(_c().syscall(nums[name], *args))


# --- step 1: namespaces and the supervisor ------------------------------------------------
def isolate(spec: dict[str, Any], close_in_supervisor: list[int]) -> None:
    """Enter new namespaces and fork; returns only in the child (PID 1 of the new namespace).

    The calling process becomes the supervisor and never returns: it exits with the
    child's status (re-raising the signal that killed it, so the engine can tell a
    CPU-limit SIGXCPU from an OOM SIGKILL).
    """
    userns = bool(spec.get("userns"))
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
    uid, gid = os.geteuid(), os.getegid()
    if userns:
        flags |= CLONE_NEWUSER
    _check(_c().unshare(flags), "unshare namespaces")
    if userns:
        try:
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"0 {gid} 1")
        except OSError as exc:
            raise ConfineError(f"map the user namespace: {exc}") from exc
    lifeline = int(spec["lifeline_fd"])
    pid = os.fork()
    if pid == 0:
        os.close(lifeline)
        # Dies with the supervisor (single-threaded and alive until the child is reaped).
        _check(_c().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "set the parent-death signal")
        return
    try:
        status = _supervise(pid, lifeline, close_in_supervisor)
    except BaseException:  # never fall through into the worker's code: this is not the design process
        os.kill(pid, signal.SIGKILL)
        os._exit(70)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


def _supervise(child: int, lifeline: int, close: list[int]) -> int:
    """Wait for the child; kill it when the engine goes away. Returns its wait status."""
    for fd in close:
        os.close(fd)  # only the child talks to the engine; EOF reaches the engine when it dies
    os.closerange(0, 1)  # stdin
    killed = [False]

    def kill_child(*_: Any) -> None:
        if not killed[0]:
            killed[0] = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    signal.signal(signal.SIGTERM, kill_child)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the engine's terminal is the engine's
    poller = select.poll()
    poller.register(lifeline, select.POLLIN | select.POLLHUP)
    pidfd = os.pidfd_open(child)
    poller.register(pidfd, select.POLLIN)
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        if any(fd == lifeline for fd, _ in events):
            kill_child()  # the engine is gone (or closed the design): take everything down
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            return status


# --- step 2: the new root ----------------------------------------------------------------
def build_root(spec: dict[str, Any]) -> None:
    """Mount the minimal tree on ``spec["root"]`` and pivot into it; cwd becomes /tmp."""
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do here propagates to the host
    _mount("alma-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    # The scratch /tmp first: a bind below /tmp (a venv made by mktemp, as CI does) then
    # lands inside it instead of being hidden by it.
    _makedirs(root + "/tmp")
    _mount(
        "alma-scratch",
        root + "/tmp",
        "tmpfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,  # data only: nothing written there can be executed
        f"size={int(spec.get('scratch_mb', 64))}m,mode=1777",
    )
    for link, target in spec.get("symlinks", []):
        _makedirs(root + os.path.dirname(link))
        os.symlink(target, root + link)
    for src in spec.get("ro_binds", []):
        _bind_ro(src, root + src)
    hidden = []
    for src in spec.get("hide", []):  # e.g. alma_tui itself when it lives under a bound dir
        dst = root + src
        if os.path.isdir(dst):
            _mount("alma-hide", dst, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
            hidden.append(dst)
    for src in spec.get("ro_binds_late", []):  # the parts of a hidden dir a design may read
        _bind_ro(src, root + src)
    for dst in hidden:
        _mount(None, dst, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    dev = root + "/dev"
    _makedirs(dev)
    for name in _DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind_ro(f"/dev/{name}", f"{dev}/{name}", writable=True)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")
    _makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    old = root + "/.oldroot"
    os.mkdir(old)
    _check(_syscall("pivot_root", _b(root), _b(old)), "pivot_root")
    os.chdir("/")
    _check(_c().umount2(b"/.oldroot", MNT_DETACH), "detach the old root")
    os.rmdir("/.oldroot")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")


def _makedirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _bind_ro(src: str, dst: str, writable: bool = False) -> None:
    if not os.path.exists(src):
        return
    if os.path.isdir(src):
        _makedirs(dst)
    else:
        _makedirs(os.path.dirname(dst))
        if not os.path.exists(dst):
            os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
    _mount(src, dst, None, MS_BIND)
    keep = 0
    try:
        fflags = os.statvfs(src).f_flag
        keep = sum(ms for st, ms in _KEEP_FLAGS.items() if fflags & st)
    except OSError:
        pass
    ro = 0 if writable else MS_RDONLY
    _mount(None, dst, None, MS_REMOUNT | MS_BIND | ro | MS_NOSUID | MS_NODEV | keep)


# --- step 3: privileges ------------------------------------------------------------------
def drop_privileges(spec: dict[str, Any]) -> None:
    """Become nobody (engine is root) or shed every capability (user namespace)."""
    libc = _c()
    if spec.get("userns"):
        for cap in range(64):  # the bounding set first, then the effective/permitted/inheritable sets
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
                break
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        data = (ctypes.c_uint32 * 6)()
        _check(_syscall("capset", header, data), "drop capabilities")
    else:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")
    # Changing credentials cleared the parent-death signal: set it again.
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "set the parent-death signal")
    install_seccomp()


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF filter as (code, jt, jf, k) tuples; see _DENY for what it refuses and why."""
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    col = 0 if machine == "x86_64" else 1
    deny = sorted({nums[col] for nums in _DENY.values()})
    # Layout: header, one jeq per denied syscall, the clone checks, then the return block.
    prog: list[tuple[int, int | str, int | str, Any]] = [  # jump targets: offsets or labels
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, _AUDIT_ARCH[machine]),
        (ret, 0, 0, kill),  # a foreign ABI (e.g. x86 int 0x80) is never legitimate here
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jge, 0, 1, 0x40000000),  # x32 ABI numbers
        (ret, 0, 0, kill),
    ]
    for nr in deny:
        prog.append((jeq, "EPERM", 0, nr))
    prog.append((jeq, "ENOSYS", 0, _CLONE3[col]))
    prog.append((jeq, 0, "ALLOW", _CLONE[col]))
    prog.append((ld, 0, 0, 16))  # low word of args[0]: clone's flags on both architectures
    prog.append((jset, "EPERM", "ALLOW", _NS_FLAGS))
    labels = {"ALLOW": len(prog), "EPERM": len(prog) + 1, "ENOSYS": len(prog) + 2}
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm), (ret, 0, 0, enosys)]

    def rel(i: int, target: Any) -> int:
        return labels[target] - i - 1 if isinstance(target, str) else int(target)

    return [(code, rel(i, jt), rel(i, jf), k) for i, (code, jt, jf, k) in enumerate(prog)]


def install_seccomp() -> None:
    """Load the filter (needs no_new_privs, set just before); it holds for every descendant."""
    machine = platform.machine()
    if machine not in _AUDIT_ARCH:
        raise ConfineError(f"no seccomp filter for {machine}")
    insns = seccomp_program(machine)
    arr = (_SockFilter * len(insns))(*[_SockFilter(*i) for i in insns])
    prog = _SockFprog(len(insns), ctypes.cast(arr, ctypes.POINTER(_SockFilter)))
    libc = _c()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    try:
        _check(libc.prctl(22, 2, ctypes.addressof(prog), 0, 0), "load the seccomp filter")  # SET_SECCOMP, FILTER
    finally:
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def report() -> dict[str, Any]:
    """What the confined process can observe of its own isolation (shown by `alma-tui doctor`)."""
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    try:
        fd = os.open("/.alma-probe", os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        root_writable = True
    except OSError:
        root_writable = False
    return {
        "uid": os.getuid(),
        "pid": os.getpid(),
        "visible_pids": len(pids),
        "root_writable": root_writable,
        "net_devices": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else [],
        "seccomp": _status_field("Seccomp") == "2",
        "no_new_privs": _status_field("NoNewPrivs") == "1",
        "python": sys.version.split()[0],
    }


def _status_field(name: str) -> str:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
