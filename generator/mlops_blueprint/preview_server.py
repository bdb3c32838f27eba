"""A warm preview process that outlives one command, so the next `blueprint plan` skips the imports.

Most of a one-environment `plan` is the import of pulumi and of the pulumi-azure-native
subpackages the programs use (about 1.2 s of CPU); the preview itself takes 0.15 to 0.3 s in a
warm process. `previews.preview_many` therefore asks this server for its workers: the first
command starts it (in the background, a new session, no terminal), every later command connects
to it, and it leaves after `IDLE_SECONDS` without a request.

What a worker runs is unchanged: for each connection the server forks a supervisor, which forks
the worker (`preview_worker.serve`, the same loop the forkserver's workers run) with the calling
command's environment variables and working directory. The server itself never runs a project's
program, so no project can leave anything behind for the next one; every worker is a fresh fork of
a process that imported libraries only. The supervisor waits for the worker and reports its exit
code (the pool reports a program that calls `os._exit` with it), and kills it when the command
goes away.

Who may connect: the socket lives in a folder of the user's own (`0700`, checked), the server
serves only its own user (`SO_PEERCRED`), and the command talks only to a server of its own (it
unpickles what the server sends). Its name carries a fingerprint of the interpreter, the import
path and every file of the blueprint's packages and of pulumi's, so an edited or upgraded
installation gets a new server, never a stale one; a new server tells the others in the folder to
leave (it removes their sockets). The server is given the command's import path as absolute
folders and computes the fingerprint again itself: one that would import other code leaves at
once. Python is started with `-P`: the working directory is not on
`sys.path`, so a project's `yaml.py` cannot stand in for a library.

`BLUEPRINT_PREVIEW_SERVER=off` (or `on`) decides; by default it is on except under CI (`CI`,
`TF_BUILD`), where nothing should outlive the job. Linux only (`fork`, `SO_PEERCRED`); elsewhere,
and whenever the server cannot be reached, the command previews in its own pool of workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

SWITCH = "BLUEPRINT_PREVIEW_SERVER"
#: Where the sockets live (default: `$XDG_RUNTIME_DIR` or the temporary folder, then
#: `mlops-blueprint-<uid>`).
RUNTIME_DIR = "BLUEPRINT_RUNTIME_DIR"
#: Seconds without a request before the server leaves (`BLUEPRINT_PREVIEW_SERVER_IDLE`).
IDLE_SECONDS = 600.0
#: Seconds a command waits for a server it started to listen, before previewing on its own.
START_TIMEOUT = 30.0
_PACKAGES = ("mlops_blueprint", "blueprint_infra")
#: The command's variables the server is started with (those set): what Python and the imports
#: may read. Each worker gets its own command's variables; the server keeps no others, so a
#: variable given to one command (a secret) does not outlive it in the server, where a later
#: command's program could read it (`/proc/<pid>/environ`: the environment a process started
#: with, which every fork shows whatever `os.environ` says).
_SERVER_VARIABLES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
                     "BLUEPRINT_PREVIEW_SERVER_IDLE")
_SERVER_PREFIXES = ("LC_", "PYTHON")
_LIBRARIES = ("pulumi", "pulumi_azure_native")


class Exited(NamedTuple):
    """The supervisor's last message: the worker has ended, with this exit code (as
    `multiprocessing.Process.exitcode`: negative for a signal)."""

    code: int


class _Hello(NamedTuple):
    fingerprint: str
    environ: dict[str, str]
    cwd: str


# --- where, and whether ------------------------------------------------------------------------


def enabled() -> bool:
    switch = os.environ.get(SWITCH, "").strip().lower()
    if switch in ("0", "off", "no", "false"):
        return False
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        return False
    if switch in ("1", "on", "yes", "true"):
        return True
    return not (os.environ.get("CI") or os.environ.get("TF_BUILD"))


def runtime_dir() -> Path | None:
    """The user's own socket folder, made `0700` if missing; None when it is not safely ours
    (another owner, a link, open to the group or others)."""
    override = os.environ.get(RUNTIME_DIR)
    if override:
        folder = Path(override)
    else:
        base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        folder = Path(base) / f"mlops-blueprint-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=bool(override), exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & 0o077):
        return None
    return folder


def import_path() -> list[str]:
    """Where this process imports from: `sys.path`'s absolute folders (Python made a relative
    `PYTHONPATH` folder absolute against the working folder it started in; `''`, the working
    folder of `python -c`, is left out, as `-P` leaves it out of the server). A server started
    for this process is given exactly these (`PYTHONPATH`): it runs in `/`, where a relative
    folder would name another place, and the fingerprint would describe code it does not run.
    Each folder once, where it first stands, as Python's `site` leaves the server's."""
    return list(dict.fromkeys(entry for entry in sys.path if os.path.isabs(entry)))


def fingerprint() -> str:
    """Changes whenever what a worker would import changes: the interpreter, the import path
    (`import_path`), the distributions installed in it (their `*.dist-info` folders name their
    versions: any install, upgrade or removal), every file of the blueprint's packages,
    pulumi's and pulumi-azure-native's package files. The server computes it again for
    itself, and leaves if it differs."""
    digest = hashlib.sha256()
    digest.update(f"{sys.executable}\0{sys.version}\0{import_path()!r}\0".encode())
    for entry in import_path():
        with contextlib.suppress(OSError):
            installed = sorted(name for name in os.listdir(entry)
                               if name.endswith((".dist-info", ".egg-info", ".pth")))
            digest.update(f"{entry}:{installed!r}\0".encode())
    for name in _PACKAGES + _LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            digest.update(f"{name}:missing\0".encode())
            continue
        root = Path(spec.origin).parent
        files = sorted(root.rglob("*.py")) if name in _PACKAGES else [Path(spec.origin)]
        if name in _PACKAGES:
            files += sorted(root.rglob("*.json"))
        for path in files:
            info = path.stat()
            digest.update(f"{path}:{info.st_mtime_ns}:{info.st_size}\0".encode())
    return digest.hexdigest()[:24]


def socket_path(folder: Path, print_: str) -> Path:
    return folder / f"preview-{print_}.sock"


# --- the command's side ------------------------------------------------------------------------


class Client:
    """One command's handle on the server: `launch()` early (it does not wait), `worker()` for
    each worker the pool starts."""

    def __init__(self) -> None:
        self.folder = runtime_dir()
        self.print_ = fingerprint() if self.folder else ""
        self.path = socket_path(self.folder, self.print_) if self.folder else None
        self.started: subprocess.Popen | None = None
        self.failed = self.path is None

    def launch(self) -> None:
        """Start a server unless one answers or another command is starting one: the launch
        lock (`preview-<fingerprint>.lock`, `flock`) is taken here and handed to the server,
        which holds it as long as it lives, so commands started together start one server."""
        if self.failed or self.started is not None:
            return
        probe = self._connect()
        if probe is not None:
            probe.close()
            return
        try:
            lock = os.open(self.path.with_suffix(".lock"),
                           os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            self.failed = True
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another command's server is starting: wait for it (`worker`)
            os.close(lock)
            return
        environ = {key: value for key, value in os.environ.items()
                   if key in _SERVER_VARIABLES or key.startswith(_SERVER_PREFIXES)}
        environ["PYTHONPATH"] = os.pathsep.join(import_path())
        try:
            self.started = subprocess.Popen(
                [sys.executable, "-P", "-m", "mlops_blueprint.preview_server", str(self.path),
                 self.print_, str(lock)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd="/", env=environ, start_new_session=True, close_fds=True, pass_fds=(lock,),
            )
        except OSError:
            self.failed = True
        finally:
            os.close(lock)  # the server's copy holds the lock now

    def worker(self) -> tuple[RemoteProcess, Connection] | None:
        """A fresh worker forked by the server, or None (then the pool starts its own)."""
        if self.failed:
            return None
        self.launch()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            sock = self._connect()
            if sock is not None:
                break
            if (self.failed or (self.started is not None and self.started.poll() is not None)
                    or time.monotonic() > deadline):
                self.failed = True
                return None
            if self.started is None:
                self.launch()  # the other command's server may have given up: start one
            time.sleep(0.01)
        conn = ServerConnection(sock.detach())
        try:
            conn.send(_Hello(self.print_, dict(os.environ), os.getcwd()))
            kind, pid = conn.recv()
        except (EOFError, OSError, ValueError, TypeError):
            conn.close()
            self.failed = True
            return None
        if kind != "pid":
            conn.close()
            self.failed = True
            return None
        return RemoteProcess(pid, conn), conn

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            return None
        # What a server sends is unpickled here: only one of this user's. The folder was checked
        # once, but one under a parent another user may write can be swapped since.
        if _peer_uid(sock) != os.getuid():
            sock.close()
            return None
        return sock


class ServerConnection(Connection):
    """A worker's connection through the server: the supervisor's `Exited` reads as the end of
    the connection, as a dead local worker's pipe does, and records the exit code."""

    exitcode: int | None = None

    def recv(self) -> Any:
        message = super().recv()
        if isinstance(message, Exited):
            self.exitcode = message.code
            raise EOFError("the worker has ended")
        return message


class RemoteProcess:
    """The part of `multiprocessing.Process` the pool uses, for a worker the server forked."""

    def __init__(self, pid: int, conn: ServerConnection) -> None:
        self.pid = pid
        self.conn = conn

    @property
    def exitcode(self) -> int | None:
        return self.conn.exitcode

    def kill(self) -> None:
        # The worker's pid cannot be reused before its supervisor reaps it, and the supervisor
        # says so (`Exited`) only after reaping it.
        if self.conn.exitcode is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, 9)

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.conn.exitcode is None and not self.conn.closed:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                if not self.conn.poll(remaining):
                    return
                self.conn.recv()
            except (EOFError, OSError):
                return


# --- the server's side -------------------------------------------------------------------------


def serve(path: Path, print_: str, lock: int | None = None) -> None:
    """Warm up (the common part first, listening as soon as that is done), then answer
    connections until idle, or until another server takes the folder. `lock` is the launch
    lock's descriptor, held until the server leaves."""
    import gc
    import select
    import signal

    from mlops_blueprint import preview_worker

    if fingerprint() != print_:  # not the code the command fingerprinted: it previews alone
        os._exit(0)
    idle = float(os.environ.get("BLUEPRINT_PREVIEW_SERVER_IDLE") or IDLE_SECONDS)
    steps = preview_worker.warm_steps(full=True)
    common = len(preview_worker.warm_steps(full=False))
    gc.disable()
    for step in steps[:common]:
        step()
    gc.freeze()
    steps = steps[common:]

    for other in path.parent.glob("preview-*.sock"):  # one server per user: the others leave
        if other != path:
            with contextlib.suppress(OSError):
                other.unlink()
    for other in path.parent.glob("preview-*.lock"):  # and their launch locks, once free
        if other != path.with_suffix(".lock"):
            _remove_if_free(other)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(OSError):
        staging.unlink()
    listener.bind(str(staging))
    os.chmod(staging, 0o600)
    listener.listen(64)
    os.replace(staging, path)
    ours = os.stat(path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    last = time.monotonic()
    while True:
        # While warming, a short wait first: the command that started the server is about to
        # connect (it polls every 10 ms) and should not wait for the next import.
        ready, _, _ = select.select([listener], [], [], 0.05 if steps else 1.0)
        if ready:
            sock, _ = listener.accept()
            last = time.monotonic()
            if _peer_uid(sock) == os.getuid() and os.fork() == 0:
                listener.close()
                if lock is not None:  # nothing the worker runs needs to hold it
                    os.close(lock)
                _supervise(sock, print_)  # never returns
            sock.close()
            continue
        if steps:
            steps.pop(0)()
            gc.freeze()
            continue
        try:
            if os.stat(path).st_ino != ours:
                break
        except OSError:
            break  # removed: a newer server, or the user, asked this one to leave
        if time.monotonic() - last > idle:
            break
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == ours:
            path.unlink()
    os._exit(0)


def _remove_if_free(lock_file: Path) -> None:
    try:
        descriptor = os.open(lock_file, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock_file.unlink()
    except OSError:
        pass  # held: its server is starting or running
    finally:
        os.close(descriptor)


def _peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[1]


def _supervise(sock: socket.socket, print_: str) -> None:
    """In the forked supervisor: take the command's environment, fork the worker, tell the
    command its pid, then wait for it; kill it if the command goes away first."""
    import select
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    conn = Connection(sock.fileno())
    try:
        hello = conn.recv()
        if not isinstance(hello, _Hello) or hello.fingerprint != print_:
            conn.send(("refused", 0))
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            os.environ.clear()
            os.environ.update(hello.environ)
            os.chdir(hello.cwd)
            from mlops_blueprint import preview_worker

            preview_worker.serve(conn)  # leaves with os._exit
        conn.send(("pid", pid))
        watch = select.poll()
        watch.register(sock.fileno(), select.POLLRDHUP)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if watch.poll(200):  # the command closed its end: its worker is no longer wanted
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
        with contextlib.suppress(OSError):
            conn.send(Exited(os.waitstatus_to_exitcode(status)))
    except BaseException:  # noqa: BLE001 - a supervisor never returns to the server's loop
        pass
    os._exit(0)


if __name__ == "__main__":
    # Through the package's module, not `__main__`: the messages' classes must pickle by the
    # names the command knows them by.
    from mlops_blueprint import preview_server

    preview_server.serve(Path(sys.argv[1]), sys.argv[2],
                         int(sys.argv[3]) if len(sys.argv) > 3 else None)
