"""Helpers shared by the CLI tests (imported by name: test modules sit on sys.path)."""

from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import copier
import yaml
from typer.testing import CliRunner

from mlops_blueprint.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
THREE_ENVS = ["dev", "preprod", "prod"]
@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def blueprint(*args: str | Path) -> Run:
    """Run `blueprint ARGS...` in-process."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def render(dst: Path, data: dict | None = None, *, src: Path = REPO_ROOT, vcs_ref="HEAD") -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        copier.run_copy(
            str(src), str(dst), data=dict(data or {}), defaults=True, unsafe=True,
            vcs_ref=vcs_ref, quiet=True,
        )
    return dst


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def preview_server_pids(folder: Path) -> dict[int, int]:
    """pid -> parent pid of every preview-server process (server, supervisors, workers: forks
    share the server's command line) whose sockets live in `folder`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if b"mlops_blueprint.preview_server" in argv and any(
                a.startswith(str(folder).encode()) for a in argv):
            if "State:\tZ" in status:
                continue
            ppid = next(int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("PPid:"))
            found[int(entry.name)] = ppid
    return found


def stop_preview_servers(folder: Path) -> None:
    """Remove the sockets (a server leaves when its socket goes) and kill what is left."""
    import contextlib
    import os
    import signal
    import time

    for sock in folder.glob("preview-*.sock"):
        sock.unlink(missing_ok=True)
    for pid in preview_server_pids(folder):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while preview_server_pids(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
