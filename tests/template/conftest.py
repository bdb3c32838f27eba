"""Rendering fixtures for the template tests (the functions are in copier_helpers.py).

Fixtures (tests/conftest.py already isolates copier and git from the machine):
- `render_template(dst, data, src=REPO_ROOT)`: stamp out a project from this checkout
  (uncommitted changes included, as copier does for a dirty local template) into `dst`.
- `rendered_project(**answers)`: a project for these answers (on top of BASE_ANSWERS), rendered
  once per session and shared between tests: treat it as read-only, or `shutil.copytree` it
  before changing anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from copier_helpers import render

#: A realistic project; tests override single answers on top of copier's defaults.
BASE_ANSWERS: dict[str, object] = {"project_name": "Customer Churn"}


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
