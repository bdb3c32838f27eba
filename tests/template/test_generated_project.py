"""A generated project works on day one: in a fresh virtualenv, the documented install command
succeeds, then the project's own `pytest` and `ruff check .` pass.

The slow tests (`pytest -m slow`) do what copier-uv's test_project.sh does, for copier's
defaults, an awkward Azure DevOps project (three environments, a long unicode name) and a
project with an AKS cluster. The renders share one virtualenv: their dependency sets are
identical (the fast test below checks it), so later installs only add the next project.
While the project's tests run, every HTTP(S) proxy points at a closed port, so a test that
reaches for the network fails.
"""

from __future__ import annotations

import os
import subprocess
import time
import venv
from pathlib import Path

import pytest
from template_cases import COMBINATIONS, UNICODE_NAME

#: The install command the README and CI document; the slow tests run exactly this.
INSTALL = 'python -m pip install -U pip && python -m pip install -e ".[dev]"'

CASES = {
    # project_name has no default; everything else is copier's default answer.
    "defaults": {"project_name": "Customer Churn"},
    "ado-3env-unicode": {
        "project_name": UNICODE_NAME,
        "description": 'Flags "suspicious" payments — & explains why (ß, 東京, 🚀)',
        "ci_provider": "azure-devops",
        "environments": ["dev", "preprod", "prod"],
    },
    # The AKS branch: the project also ships and tests a Kubernetes endpoint.
    "github-3env-aks": {"project_name": "Customer Churn", **COMBINATIONS["github-3env-aks"]},
}
#: A closed local port: anything that honours the proxy variables cannot go online.
NO_NETWORK = "http://127.0.0.1:9"


def render_case(render_template, tmp_path_factory, name: str) -> Path:
    return render_template(tmp_path_factory.mktemp(name) / "project", CASES[name])


def pyproject(project: Path) -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_parses_and_keeps_awkward_answers_intact(render_template, tmp_path_factory):
    awkward = render_case(render_template, tmp_path_factory, "ado-3env-unicode")
    default = render_case(render_template, tmp_path_factory, "defaults")
    meta = pyproject(awkward)["project"]
    assert meta["description"] == CASES["ado-3env-unicode"]["description"]
    answers = (awkward / ".copier-answers.yml").read_text(encoding="utf-8")
    assert f"project_slug: {meta['name']}" in answers
    # numpy 1.26 (pinned: the Azure ML step environments run it) has no wheels past 3.12.
    assert meta["requires-python"] == ">=3.10,<3.13"
    assert {"pytest", "ruff"} <= {dep.split(">")[0] for dep in meta["optional-dependencies"]["dev"]}
    # One virtualenv serves both slow renders only while their dependencies are the same.
    for key in ("dependencies", "optional-dependencies"):
        assert meta[key] == pyproject(default)["project"][key]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> dict[str, str]:
    """A new virtualenv (pip upgraded by the install command itself); its environment."""
    location = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(location)
    bin_dir = location / ("Scripts" if os.name == "nt" else "bin")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS")
    }
    env["VIRTUAL_ENV"] = str(location)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(command: str, cwd: Path, env: dict[str, str], timeout: int) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"`{command}` failed in {cwd}:\n{output}"
    return time.monotonic() - started, output


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_generated_project_installs_tests_and_lints_clean(
    case, render_template, tmp_path_factory, fresh_venv
):
    project = render_case(render_template, tmp_path_factory, case)
    run(INSTALL, project, fresh_venv, timeout=900)
    python = run("python -c 'import sys; print(sys.prefix)'", project, fresh_venv, 60)[1]
    assert python.strip() == fresh_venv["VIRTUAL_ENV"], "the project ran outside the fresh venv"

    offline = {
        **fresh_venv,
        "HTTP_PROXY": NO_NETWORK,
        "HTTPS_PROXY": NO_NETWORK,
        "http_proxy": NO_NETWORK,
        "https_proxy": NO_NETWORK,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    seconds, output = run(
        'pytest -q -p no:cacheprovider -m "not slow"', project, offline, timeout=300
    )
    assert " passed" in output
    # ~25 s on an idle 2-core machine; the bound leaves room for a busy CI runner.
    assert seconds < 150, f"the project's tests took {seconds:.0f}s; they should stay quick"
    # The local rehearsal: train, gate, register in local MLflow, serve with azmlinfsrv on
    # 127.0.0.1 (the proxies above do not apply to it), answer the CD smoke request.
    _, output = run("pytest -q -p no:cacheprovider -m slow", project, offline, timeout=600)
    assert "1 passed" in output
    run("ruff check .", project, offline, timeout=120)

