"""Run model-generated Python in a separate, confined process and report what happened.

    from workbench.sandbox import run
    result = run("print(sum(map(int, input().split())))", stdin="2 3", timeout_s=2)
    result.status, result.exit_code, result.stdout    # ("finished", 0, "5\\n")

`run` never raises because of the code it runs: a crash, a timeout, a flood of output or a
sandbox that could not start are all a `SandboxResult` (status "finished" | "timeout" | "killed"
| "error"). Only invalid arguments raise (WorkbenchError).

How the code is confined. The child is this file run as a script by the same interpreter
(`python -I -S sandbox.py <config>`): a small *supervisor* that confines itself, then starts the
code in a fresh `python -I -S` (stdlib only, no site-packages, no PYTHON* variables).

- Own session and process group (start_new_session), so a last-resort os.killpg reaches it all.
- Environment emptied except PATH, LANG and HOME = TMPDIR = the working directory.
- Resource limits (setrlimit): CPU seconds ceil(timeout_s) (SIGXCPU, then SIGKILL a second
  later), address space memory_mb, 1 MB per written file, 64 open files, 32 processes
  (threads count too), no core dumps. The wall clock is enforced by the caller: at timeout_s
  the whole sandbox is killed.
- A fresh temporary working directory (owned by the sandbox user, removed afterwards).
- Output is read in chunks while the code runs and cut at max_output_bytes per stream; code that
  writes past the cap is killed (status "killed", truncated=True), so memory here stays bounded.

As root (with CAP_SYS_ADMIN) it also, in this order:
- unshares network, PID, mount and IPC namespaces. The new network namespace holds only a down
  loopback, so no connection of any kind leaves the sandbox. The supervisor's first child is PID 1
  of the new PID namespace and reaps everything below it; when it exits the kernel kills every
  process left in the namespace, including ones that called setsid() or daemonised. Nothing is
  orphaned to the host's init (which in some containers never reaps, so leaked zombies would
  count against the process limit of later runs).
- builds a private root and chroots into it, so the code sees only what it needs to run: the
  interpreter's prefix and the shared-library directories (read-only binds; installed-package
  directories such as site-packages covered by an empty one), /dev/null, zero, full, random and
  urandom, private tmpfs at /tmp and /dev/shm (thrown away with the namespace), and a size-capped
  tmpfs (64 MB) as the working directory. The task data, the repository, home directories, /etc
  and /proc (other processes' command lines) are not in it: a policy cannot learn to read a code
  task's tests instead of passing them.
- drops to the `nobody` user (setgroups([]), setgid, setuid 65534) after the limits, so the
  process limit binds (root ignores RLIMIT_NPROC) and all but its working directory and the
  private /tmp is read-only to it; sets no_new_privs so setuid binaries cannot regain root.
- the code runs in its own session inside the PID namespace: it can signal neither the supervisor
  (in the parent namespace) nor its namespace's init (the kernel protects PID 1 there).

Weaker, or not covered:
- Not root, or namespaces unavailable (e.g. Docker without CAP_SYS_ADMIN): no network namespace.
  Instead a prelude replaces `socket.socket` with a class that refuses every family but AF_UNIX.
  Code that imports `_socket` directly, uses ctypes, or runs another program (curl) bypasses it.
- Without a PID namespace the supervisor is a child subreaper instead: when the code ends it
  kills its process group and then every process reparented to it, and reaps them all. Code
  running as the same user as the supervisor could still kill it first.
- Not root: no user switch, so the code can write wherever the caller can and can signal the
  caller's processes; RLIMIT_NPROC is the caller's current task count + 32.
- Root without a mount namespace: the code runs as nobody and can still write to world-writable
  places (/tmp, /dev/shm), and reads the whole file system wherever `nobody` may read. Root where the interpreter is not readable by nobody and no mount
  namespace is available: every run is status "error" (it fails closed, never runs as root).
- Without a mount namespace, files are readable wherever the code's user may read (most of /usr,
  /etc, a world-readable repo, the task data), and /proc lists the host's processes.
- The 32-process limit is per user, so concurrent sandboxes share it: while one runs a fork bomb,
  another may fail to start ("error") until the first is killed.
- RLIMIT_AS counts address space, not resident memory: threaded code reserves stacks and malloc
  arenas and may hit MemoryError well below memory_mb.
- No seccomp filter: every system call the kernel allows `nobody` is allowed.
"""

from __future__ import annotations

import json
import math
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

STATUSES = ("finished", "timeout", "killed", "error")
NOBODY_UID = NOBODY_GID = 65534
FILE_SIZE_BYTES = 1 << 20
MAX_OPEN_FILES = 64
MAX_PROCESSES = 32
SCRATCH_MB = 64  # tmpfs size of the working directory when a mount namespace is available
KILL_GRACE_S = 2.0  # how long the supervisor gets to take the namespace down before killpg

# Linux constants (os.CLONE_* exist only from Python 3.12; mount flags never).
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
# What the code's private root holds besides the interpreter's own prefix: the shared libraries it
# links, and the harmless devices. Everything else (the task data, the repository, home
# directories, /proc with other processes' command lines) is simply not there.
LIBRARY_DIRS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# Installed packages next to the standard library (where a task's data would sit if installed
# there): covered by an empty directory inside the private root.
PACKAGE_DIRS = ("python3*/site-packages", "python3*/dist-packages", "lib/python3*/site-packages",
                "lib/python3*/dist-packages", "python3/dist-packages")
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38


@dataclass
class SandboxResult:
    status: str  # one of STATUSES
    exit_code: int | None  # set when status == "finished"
    stdout: str
    stderr: str
    seconds: float  # wall time of the whole run
    truncated: bool = False  # stdout or stderr was cut at max_output_bytes
    signal: int | None = None  # the signal that ended the code, if one did

    @property
    def ok(self) -> bool:
        return self.status == "finished" and self.exit_code == 0


# The program the code runs in: a fresh `python -I -S -c _PRELUDE <network-flag>`.
_PRELUDE = r'''
import builtins, sys

class _Quitter:
    # site.py, which -S skips, is what normally provides exit() and quit().
    def __init__(self, name):
        self.name = name
    def __repr__(self):
        return "Use %s() or Ctrl-D (i.e. EOF) to exit" % self.name
    def __call__(self, code=None):
        raise SystemExit(code)

builtins.exit, builtins.quit = _Quitter("exit"), _Quitter("quit")
if sys.argv[1] == "block-network":
    import socket

    class _LocalSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.family != socket.AF_UNIX:  # AF_UNIX stays: asyncio's socketpair needs it
                self.close()
                raise PermissionError("network access is disabled in the sandbox")

    socket.socket = _LocalSocket

def _run_main():
    import traceback, types
    main = types.ModuleType("__main__")  # a clean namespace, and pickle finds it as __main__
    main.__file__, main.__builtins__ = "main.py", builtins
    sys.modules["__main__"], sys.argv = main, ["main.py"]
    try:
        with open("main.py", encoding="utf-8") as f:
            code = compile(f.read(), "main.py", "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        # Leave this prelude's frame out: the traceback starts in main.py, as with `python main.py`.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        sys.exit(1)

_run_main()
'''


def run(code: str, timeout_s: float = 5.0, memory_mb: int = 256, stdin: str = "",
        max_output_bytes: int = 65536) -> SandboxResult:
    """Run `code` as a Python program in the sandbox; see the module docstring for the limits."""
    from workbench.errors import WorkbenchError

    if not timeout_s > 0:
        raise WorkbenchError(f"timeout_s must be > 0, got {timeout_s!r}")
    if memory_mb < 32:
        raise WorkbenchError(f"memory_mb must be >= 32 (the interpreter alone needs ~20), got {memory_mb!r}")
    if max_output_bytes < 0:
        raise WorkbenchError(f"max_output_bytes must be >= 0, got {max_output_bytes!r}")
    return _execute(code, timeout_s, memory_mb, stdin, max_output_bytes)[0]


def isolation() -> dict:
    """What the sandbox enforces on this machine, found by running an empty program.

    Keys: network ("namespace" | "socket-patch"), pid_namespace, mount_namespace (bools),
    uid (the user the code runs as); "error" instead when the sandbox cannot start here.
    """
    result, info = _execute("pass", 5.0, 256, "", 4096)
    if result.status == "error":
        return {"error": result.stderr.strip()}
    return {k: info[k] for k in ("network", "pid_namespace", "mount_namespace", "uid") if k in info}


# --- the caller's side ----------------------------------------------------------------------


def _execute(code: str, timeout_s: float, memory_mb: int, stdin: str,
             max_output_bytes: int) -> tuple[SandboxResult, dict]:
    start = time.monotonic()
    workdir = None
    try:
        workdir = tempfile.mkdtemp(prefix="workbench-sandbox-")
        return _start_and_watch(code, timeout_s, memory_mb, stdin, max_output_bytes, workdir, start)
    except Exception as e:  # the sandbox itself failed (pipes, fork, disk): still a result
        return _error(f"sandbox: {type(e).__name__}: {e}", start), {}
    finally:
        if workdir:
            _remove_tree(workdir)


def _start_and_watch(code, timeout_s, memory_mb, stdin, max_output_bytes, workdir, start):
    root = os.geteuid() == 0
    python = os.path.realpath(sys.executable)
    if root:
        os.chown(workdir, NOBODY_UID, NOBODY_GID)  # used as is when no mount namespace is available
    cpu = math.ceil(timeout_s)
    limits = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, memory_mb << 20, memory_mb << 20),
        (resource.RLIMIT_FSIZE, FILE_SIZE_BYTES, FILE_SIZE_BYTES),
        (resource.RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES),
        # Root is exempt from RLIMIT_NPROC but the code runs as nobody; a non-root caller's own
        # processes count too, so it gets headroom above what it already runs.
        (resource.RLIMIT_NPROC, *(2 * [MAX_PROCESSES if root else _own_process_count() + MAX_PROCESSES])),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    with tempfile.TemporaryFile() as code_file, tempfile.TemporaryFile() as stdin_file:
        # Files, not pipes: nothing to deadlock on, and the sandbox reads them at its own pace.
        code_file.write(code.encode("utf-8", "replace"))
        stdin_file.write(stdin.encode("utf-8", "replace"))
        code_file.seek(0)
        stdin_file.seek(0)
        status_r, status_w = os.pipe()
        config = {
            "status_fd": status_w, "code_fd": code_file.fileno(), "workdir": workdir,
            "python": python, "prelude": _PRELUDE, "limits": limits, "root": root,
            "root_fs": _root_fs(python) if root else {}, "scratch_mb": SCRATCH_MB,
        }
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
               "LANG": "C.UTF-8"}
        try:
            # No preexec_fn: it is unsafe in threaded callers (trainers are). The supervisor
            # confines itself instead, and knows (and reports) which isolation took effect.
            proc = subprocess.Popen(
                [python, "-I", "-S", "-B", os.path.abspath(__file__), json.dumps(config)],
                stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir,
                env=env, start_new_session=True, pass_fds=(status_w, code_file.fileno()))
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
    return _watch(proc, status_r, start, timeout_s, max_output_bytes)


def _watch(proc, status_r, start, timeout_s, cap):
    out, err, status = bytearray(), bytearray(), bytearray()
    bufs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, status_r: status}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    deadline = start + timeout_s
    reason, truncated, supervisor_gone = None, False, None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                reason = "timeout"
                break
            if supervisor_gone is not None and now - supervisor_gone > 0.5:
                break  # only without a PID namespace: a leftover process holds the pipes open
            for key, _ in sel.select(min(deadline - now, 0.25)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    if key.fd == status_r:
                        supervisor_gone = time.monotonic()
                    continue
                buf = bufs[key.fd]
                room = (1 << 16) - len(buf) if key.fd == status_r else cap - len(buf)
                buf += chunk[:max(room, 0)]
                if len(chunk) > room and key.fd != status_r:
                    truncated, reason = True, "output"
            if reason:
                break
        if reason:
            _stop(proc, sel, status_r, status)
    finally:
        try:  # sweep up whatever is left in the process group (nothing, with a PID namespace)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        sel.close()
        for f in (proc.stdout, proc.stderr):
            f.close()
        os.close(status_r)

    info = {}
    for line in status.decode("utf-8", "replace").splitlines():
        try:
            info.update(json.loads(line))
        except ValueError:
            pass
    text = dict(stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
                seconds=time.monotonic() - start, truncated=truncated)
    if reason == "timeout":
        return SandboxResult("timeout", None, signal=int(signal.SIGKILL), **text), info
    if reason == "output":
        return SandboxResult("killed", None, signal=int(signal.SIGKILL), **text), info
    if "exit_code" in info and "error" not in info:
        return SandboxResult("finished", info["exit_code"], **text), info
    if "signal" in info and "error" not in info:
        # SIGXCPU is RLIMIT_CPU's soft limit: the code ran out of CPU time, i.e. a timeout.
        status_name = "timeout" if info["signal"] == signal.SIGXCPU else "killed"
        return SandboxResult(status_name, None, signal=info["signal"], **text), info
    message = info.get("error") or f"sandbox supervisor exited with status {proc.returncode}"
    text["stderr"] = (text["stderr"] + "\n" if text["stderr"] else "") + f"sandbox: {message}"
    return SandboxResult("error", None, **text), info


def _stop(proc, sel, status_r, status):
    """Ask the supervisor to take the sandbox down; it kills the namespace's init, which reaps."""
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_GRACE_S
    while status_r in sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
            elif key.fd == status_r and len(status) < 1 << 16:
                status += chunk


def _error(message: str, start: float) -> SandboxResult:
    return SandboxResult("error", None, "", message, time.monotonic() - start)


def _own_process_count() -> int:
    """Tasks (threads included: RLIMIT_NPROC counts them) the calling user runs now."""
    uid = os.getuid()
    count = 0
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            pass
    return count


def _root_fs(python: str) -> dict:
    """What the code's private root is made of: {"binds": read-only directories (the interpreter's
    prefix, the library directories), "links": [path, target] symlinks as on the host (/lib ->
    usr/lib), "cover": package directories hidden under an empty one, "devices": device files}."""
    import glob

    wanted = [os.path.realpath(sys.base_prefix), os.path.dirname(python), *LIBRARY_DIRS]
    binds, links = set(), []
    for path in wanted:
        if os.path.islink(path):
            links.append([path, os.readlink(path)])
            path = os.path.realpath(path)
        if os.path.isdir(path):
            binds.add(path)
    binds = sorted(p for p in binds if not any(p != q and p.startswith(q + os.sep) for q in binds))
    cover = sorted({os.path.realpath(d) for b in binds for pattern in PACKAGE_DIRS
                    for d in glob.glob(os.path.join(b, pattern)) if os.path.isdir(d)})
    return {"binds": binds, "links": links, "cover": cover, "devices": [d for d in DEVICES if os.path.exists(d)]}


def _remove_tree(path: str) -> None:
    # Code running as the caller (no user switch) may have left directories without permissions.
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            try:
                os.chmod(os.path.join(dirpath, d), 0o700)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


# --- the sandbox's side: this file run as a script ------------------------------------------


def _supervise(cfg: dict) -> None:
    """Confine this process, then run the code under a PID-1 reaper; report JSON lines on a pipe."""
    status_fd, code_fd = cfg["status_fd"], cfg["code_fd"]
    for fd in (status_fd, code_fd):
        os.set_inheritable(fd, False)  # the code's interpreter must not inherit them

    def report(**fields):
        os.write(status_fd, (json.dumps(fields) + "\n").encode())

    state = {"child": None, "pid_namespace": False}

    def stop(signum, frame):
        if state["child"] is None:
            os._exit(1)
        if state["pid_namespace"]:
            os.kill(state["child"], signal.SIGKILL)  # init dies -> the kernel kills the namespace
        else:
            _killpg(state["child"])  # the code's process group; the rest is swept up below

    signal.signal(signal.SIGTERM, stop)
    try:
        info = _confine(cfg)
        with open("main.py", "wb") as f:
            while chunk := os.read(code_fd, 1 << 16):
                f.write(chunk)
        os.close(code_fd)
    except Exception as e:
        report(error=f"could not set up the sandbox: {type(e).__name__}: {e}")
        sys.exit(1)
    state["pid_namespace"] = info["pid_namespace"]
    report(**info)
    try:
        child = os.fork()  # with a new PID namespace this child is its PID 1
    except OSError as e:
        report(error=f"could not start: {e}")
        sys.exit(1)
    if child == 0:
        _reaper(cfg, info, report)
    if not info["pid_namespace"]:
        try:  # the child does the same; whichever runs first wins the race
            os.setpgid(child, child)
        except OSError:
            pass
    state["child"] = child
    os.waitpid(child, 0)
    if not info["pid_namespace"]:
        _sweep(child)


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _sweep(pgid: int) -> None:
    """Without a PID namespace: kill what the code left behind and reap it (we are its subreaper).

    Orphans are reparented to this process (PR_SET_CHILD_SUBREAPER), so killing our children
    until none are left also reaches processes that left the group with setsid(). Otherwise they
    would go to the host's init, which in some containers never reaps, and their zombies would
    count against the process limit of every later run.
    """
    _killpg(pgid)
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0]:
                continue
        except ChildProcessError:
            return
        try:
            with open(f"/proc/self/task/{os.getpid()}/children") as f:
                children = [int(pid) for pid in f.read().split()]
        except OSError:
            children = []
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def _reaper(cfg: dict, info: dict, report) -> None:
    # Default dispositions: as a namespace's init the kernel then drops signals from inside it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if not info["pid_namespace"]:
        os.setpgid(0, 0)  # a group of its own, so the supervisor can kill the code but not itself
    try:
        user = os.fork()
    except OSError as e:
        report(error=f"could not start: {e}")
        os._exit(1)
    if user == 0:
        try:
            if info["pid_namespace"]:
                os.setsid()  # kill(0, ...) from the code must not reach our process group
            flag = "allow-network" if info["network"] == "namespace" else "block-network"
            os.execv(cfg["python"], [cfg["python"], "-I", "-S", "-B", "-X", "utf8", "-c", cfg["prelude"], flag])
        except BaseException as e:
            report(error=f"could not start the interpreter {cfg['python']}: {e}")
        os._exit(127)
    while True:
        try:
            pid, wait_status = os.waitpid(-1, 0)  # as init, this also reaps the code's orphans
        except ChildProcessError:
            os._exit(1)
        if pid == user:
            break
    code = os.waitstatus_to_exitcode(wait_status)
    report(**({"exit_code": code} if code >= 0 else {"signal": -code}))
    os._exit(0)  # as init: the kernel now kills and reaps whatever the code left running


def _confine(cfg: dict) -> dict:
    info = {"network": "socket-patch", "pid_namespace": False, "mount_namespace": False}
    if cfg["root"]:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if _unshare(libc, CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC):
            info.update(network="namespace", pid_namespace=True, mount_namespace=True)
            _mount_scratch(libc, cfg)
        elif _unshare(libc, CLONE_NEWNET):
            info["network"] = "namespace"
    os.chdir(cfg["workdir"])
    for res, soft, hard in cfg["limits"]:
        _, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY:  # only root may raise a hard limit
            hard, soft = min(hard, cur_hard), min(soft, cur_hard)
        resource.setrlimit(res, (soft, hard))
    if cfg["root"]:
        os.setgroups([])
        os.setgid(NOBODY_GID)
        os.setuid(NOBODY_UID)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if not info["pid_namespace"]:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # see _sweep
    except (OSError, AttributeError):
        pass
    info["uid"] = os.getuid()
    return info


def _unshare(libc, flags: int) -> bool:
    return libc.unshare(flags) == 0


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _mount_scratch(libc, cfg: dict) -> None:
    """Build the code's private root under the working directory and chroot into it: read-only
    binds of what the interpreter needs (``_root_fs``), private tmpfs at /tmp and /dev/shm, the
    size-capped working directory at its own path; nothing else of the host's file system."""
    import ctypes

    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    fs, new = cfg["root_fs"], os.path.join(cfg["workdir"], "root")
    os.makedirs(new)
    _mount(libc, "tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for path in fs["binds"]:
        os.makedirs(new + path, exist_ok=True)
        _mount(libc, path, new + path, None, MS_BIND | MS_REC)
        _mount(libc, None, new + path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for path in fs["cover"]:
        _mount(libc, "tmpfs", new + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755,size=4k")
    for path, target in fs["links"]:
        os.makedirs(os.path.dirname(new + path), exist_ok=True)
        if not os.path.lexists(new + path):
            os.symlink(target, new + path)
    for device in fs["devices"]:
        os.makedirs(os.path.dirname(new + device), exist_ok=True)
        open(new + device, "a").close()
        _mount(libc, device, new + device, None, MS_BIND)  # writable: /dev/null must take writes
    for d in ("/tmp", "/dev/shm"):
        os.makedirs(new + d, exist_ok=True)
        _mount(libc, "tmpfs", new + d, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=16m")
    os.makedirs(new + cfg["workdir"], exist_ok=True)
    _mount(libc, "tmpfs", new + cfg["workdir"], "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=0700,size={cfg['scratch_mb']}m,uid={NOBODY_UID},gid={NOBODY_GID}")
    os.chroot(new)
    os.chdir("/")


if __name__ == "__main__":
    _supervise(json.loads(sys.argv[1]))
