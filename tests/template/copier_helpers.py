"""Helpers for the template tests that drive copier and git (imported by name: test modules
sit on sys.path). tests/conftest.py already isolates copier and git from the machine."""

from __future__ import annotations

import re
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path

import copier

REPO_ROOT = Path(__file__).resolve().parents[2]


def render(
    dst: Path,
    data: Mapping[str, object] | None = None,
    *,
    src: Path = REPO_ROOT,
    vcs_ref: str | None = "HEAD",
) -> Path:
    """Render the template at `src` into `dst` on copier's defaults plus `data`."""
    with warnings.catch_warnings():
        # A dirty checkout is the normal state while developing the template.
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        # COPIER_SETTINGS_PATH points at no file on purpose (tests/conftest.py).
        warnings.simplefilter("ignore", copier.errors.MissingSettingsWarning)
        copier.run_copy(
            str(src),
            str(dst),
            data=dict(data or {}),
            defaults=True,
            unsafe=True,
            vcs_ref=vcs_ref,
            quiet=True,
        )
    return dst


def update(project: Path, *, vcs_ref: str | None = None, **data: object) -> None:
    """`copier update` the project (to `vcs_ref`, else the template's latest tag), taking the
    template's side of changes the team did not touch and changing answers to `data`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        warnings.simplefilter("ignore", copier.errors.MissingSettingsWarning)
        copier.run_update(
            str(project), data=data, vcs_ref=vcs_ref, defaults=True, overwrite=True,
            unsafe=True, quiet=True,
        )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def assert_no_conflicts(project: Path) -> None:
    """No .rej file and no conflict marker left in the project after an update."""
    markers = re.compile(r"<<<<<<< |^>>>>>>> ", re.MULTILINE)
    leftovers = [str(p.relative_to(project)) for p in project.rglob("*.rej")] + [
        str(p.relative_to(project))
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.parts and markers.search(p.read_text(errors="ignore"))
    ]
    assert leftovers == []
