"""The generated CI/CD files pass their linters: actionlint for GitHub Actions, the Azure
Pipelines JSON schema (check-jsonschema's vendored copy) for Azure DevOps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from template_cases import COMBINATIONS

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.fail(f"{name} is not installed (it is in the dev dependency group)")
    return path


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("actionlint"), "-oneline", "-no-color", *map(str, files)],
        capture_output=True, text=True, check=False,
    )


def azure_pipelines_schema(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--regex-variant", "python", "--builtin-schema",
         "vendor.azure-pipelines", *map(str, files)],
        capture_output=True, text=True, check=False,
    )


GITHUB = [name for name, answers in COMBINATIONS.items() if answers["ci_provider"] == "github"]
ADO = [name for name, answers in COMBINATIONS.items() if answers["ci_provider"] != "github"]


@pytest.mark.parametrize("case", GITHUB)
def test_github_workflows_pass_actionlint(rendered_project, case):
    workflows = sorted((rendered_project(**COMBINATIONS[case]) / ".github/workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["ci.yml", "infra.yml"]
    result = actionlint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", ADO)
def test_azure_pipelines_match_the_schema(rendered_project, case):
    pipelines = sorted((rendered_project(**COMBINATIONS[case]) / ".ado").glob("*.yml"))
    assert [p.name for p in pipelines] == ["ci.yml", "infra.yml"]
    result = azure_pipelines_schema(*pipelines)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linters_catch_a_broken_file(rendered_project, tmp_path):
    """Controls: each linter rejects a rendered file with one realistic mistake."""
    github = rendered_project(**COMBINATIONS[GITHUB[0]])
    broken = tmp_path / ".github/workflows/infra.yml"
    broken.parent.mkdir(parents=True)
    text = (github / ".github/workflows/infra.yml").read_text()
    broken.write_text(text.replace("needs: [deploy-dev]", "needs: [deploy-nowhere]", 1)
                      .replace("needs: [check]", "needs: [deploy-nowhere]", 1))
    assert actionlint(broken).returncode != 0

    ado = rendered_project(**COMBINATIONS[ADO[0]])
    broken = tmp_path / "infra.yml"
    text = (ado / ".ado/infra.yml").read_text()
    broken.write_text(text.replace("strategy:", "stratgy:", 1))
    assert azure_pipelines_schema(broken).returncode != 0
