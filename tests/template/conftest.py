"""Rendering helpers for the template tests.

Fixtures (tests/conftest.py already isolates copier and git from the machine):
- `render_template(dst, data, src=REPO_ROOT)`: stamp out a project from this checkout
  (uncommitted changes included, as copier does for a dirty local template) into `dst`.
- `rendered_project(**answers)`: a project for these answers (on top of BASE_ANSWERS), rendered
  once per session and shared between tests: treat it as read-only, or `shutil.copytree` it
  before changing anything.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import copier
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

#: A realistic project; tests override single answers on top of copier's defaults.
BASE_ANSWERS: dict[str, object] = {"project_name": "Customer Churn"}


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


def load_yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def answers_of(project: Path) -> dict[str, object]:
    """The answers copier recorded in the project (without its `_src_path` and `_commit`)."""
    recorded = load_yaml(project / ".copier-answers.yml")
    return {k: v for k, v in recorded.items() if not k.startswith("_")}


@pytest.fixture(scope="session")
def render_template() -> Callable[..., Path]:
    return render


@pytest.fixture(scope="session")
def rendered_project(tmp_path_factory) -> Callable[..., Path]:
    """Render a project for these answers (on top of BASE_ANSWERS) once per session."""
    cache: dict[str, Path] = {}

    def _render(**answers: object) -> Path:
        data = {**BASE_ANSWERS, **answers}
        key = json.dumps(data, sort_keys=True)
        if key not in cache:
            dst = tmp_path_factory.mktemp("project") / "project"
            cache[key] = render(dst, data)
        return cache[key]

    return _render
