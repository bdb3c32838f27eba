"""Fixtures for the CLI tests: projects rendered with copier, and the CLI run in-process.

tests/conftest.py already isolates copier and git from the machine. Projects are rendered once
per session and copied per test (`project_copy`), so a test may edit its copy freely.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import REPO_ROOT, THREE_ENVS, git, render


@pytest.fixture(scope="session")
def fresh_project(tmp_path_factory) -> Path:
    """A project with dev, preprod and prod on otherwise default answers. Read-only."""
    dst = tmp_path_factory.mktemp("fresh") / "churn"
    return render(dst, {"project_name": "Customer Churn", "environments": THREE_ENVS})


@pytest.fixture
def project_copy(fresh_project, tmp_path) -> Path:
    """A private copy of `fresh_project` to edit."""
    return Path(shutil.copytree(fresh_project, tmp_path / "churn"))


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory) -> Path:
    """This checkout's template (copier.yml, template/, tasks/) committed and tagged in a
    throwaway git repository, so `copier update` can find the version a project was made from
    whatever the state of the working tree."""
    repo = tmp_path_factory.mktemp("template-repo")
    shutil.copy2(REPO_ROOT / "copier.yml", repo / "copier.yml")
    for folder in ("template", "tasks"):
        shutil.copytree(REPO_ROOT / folder, repo / folder)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "template v0.1.0")
    git(repo, "tag", "v0.1.0")
    return repo


@pytest.fixture
def committed_project(template_repo, tmp_path) -> Callable[..., Path]:
    """Render from `template_repo` and commit the project, as a team would after `new`."""

    def _make(**answers) -> Path:
        dst = render(
            tmp_path / "project",
            {"project_name": "Customer Churn", **answers},
            src=template_repo,
            vcs_ref=None,
        )
        git(dst, "init", "-q", "-b", "main")
        git(dst, "add", "-A")
        git(dst, "commit", "-q", "-m", "New project")
        return dst

    return _make


@pytest.fixture(params=["own pool", "preview server"])
def preview_mode(request, monkeypatch) -> Path | None:
    """Run the test's previews both ways: in the command's own pool of workers, and through a
    preview server of its own (in a private socket folder, stopped afterwards). Yields that
    folder, or None for the own pool."""
    import tempfile

    from cli_helpers import stop_preview_servers

    from mlops_blueprint import previews

    monkeypatch.setattr(previews, "_server", None)  # decided again from the environment
    if request.param == "own pool":
        monkeypatch.setenv("BLUEPRINT_PREVIEW_SERVER", "off")
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))  # socket paths must be short
    monkeypatch.setenv("BLUEPRINT_PREVIEW_SERVER", "on")
    monkeypatch.setenv("BLUEPRINT_RUNTIME_DIR", str(folder))
    try:
        yield folder
        # the previews went through a server, not the fallback to the command's own pool
        assert list(folder.glob("preview-*.sock")), "no preview server answered"
    finally:
        stop_preview_servers(folder)
        shutil.rmtree(folder, ignore_errors=True)
