"""The generated CI/CD files pass their linters: actionlint and zizmor (offline; no finding above
low) for GitHub Actions, the Azure Pipelines JSON schema (check-jsonschema's vendored copy) for
Azure DevOps pipelines and their templates. Every answer combination of template_cases.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from template_cases import COMBINATIONS

BIN = Path(sys.executable).parent
GITHUB_WORKFLOWS = ["ci.yml", "infra.yml", "model-release.yml", "model-train.yml", "model.yml",
                    "pulumi-preview.yml", "pulumi-up.yml"]
ADO_PIPELINES = ["ci.yml", "infra.yml", "model.yml"]
ADO_TEMPLATES = ["install-infra.yml", "install-pulumi.yml", "model-release.yml",
                 "model-train.yml", "pulumi-preview.yml", "pulumi-up.yml"]
# zizmor's severities, lowest first; the bar: nothing above "Low".
ALLOWED_SEVERITIES = {"Unknown", "Informational", "Low"}


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


def zizmor_findings(folder: Path) -> list[dict]:
    """zizmor's findings (offline audits, regular persona) as parsed JSON."""
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--format", "json", "--no-progress", str(folder)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    # exit 0: no findings; 10-14: findings of the highest severity; anything else: a failure.
    assert result.returncode == 0 or 10 <= result.returncode <= 14, result.stderr
    return json.loads(result.stdout or "[]")


def above_low(findings: list[dict]) -> list[str]:
    return [
        f"{f['ident']} ({f['determinations']['severity']}): "
        f"{f['locations'][0]['symbolic']['key']} {f['desc']}"
        for f in findings if f["determinations"]["severity"] not in ALLOWED_SEVERITIES
    ]


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
    assert [w.name for w in workflows] == GITHUB_WORKFLOWS
    result = actionlint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", GITHUB)
def test_github_workflows_have_no_zizmor_finding_above_low(rendered_project, case):
    project = rendered_project(**COMBINATIONS[case])
    assert above_low(zizmor_findings(project / ".github")) == []


@pytest.mark.parametrize("case", ADO)
def test_azure_pipelines_and_templates_match_the_schema(rendered_project, case):
    ado = rendered_project(**COMBINATIONS[case]) / ".ado"
    pipelines = sorted(ado.glob("*.yml"))
    templates = sorted((ado / "templates").glob("*.yml"))
    assert [p.name for p in pipelines] == ADO_PIPELINES
    assert [t.name for t in templates] == ADO_TEMPLATES
    result = azure_pipelines_schema(*pipelines, *templates)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linters_catch_a_broken_file(rendered_project, tmp_path):
    """Controls: each linter rejects a rendered file with one realistic mistake."""
    github = rendered_project(**COMBINATIONS[GITHUB[0]])
    broken = tmp_path / "gh/.github/workflows/infra.yml"
    broken.parent.mkdir(parents=True)
    text = (github / ".github/workflows/infra.yml").read_text()
    broken.write_text(text.replace("needs: [deploy-dev]", "needs: [deploy-nowhere]", 1)
                      .replace("needs: [check]", "needs: [deploy-nowhere]", 1))
    assert actionlint(broken).returncode != 0

    # an action pinned by tag instead of commit: zizmor's unpinned-uses is above low
    unpinned = tmp_path / "zz/.github/workflows/pulumi-up.yml"
    unpinned.parent.mkdir(parents=True)
    text = (github / ".github/workflows/pulumi-up.yml").read_text()
    pin = next(line for line in text.splitlines() if "uses: azure/login@" in line)
    unpinned.write_text(text.replace(pin, pin.split("@")[0] + "@v3"))
    assert [f["ident"] for f in zizmor_findings(unpinned.parents[2]) if above_low([f])] == [
        "unpinned-uses"]

    ado = rendered_project(**COMBINATIONS[ADO[0]])
    broken = tmp_path / "infra.yml"
    text = (ado / ".ado/templates/pulumi-up.yml").read_text()
    broken.write_text(text.replace("strategy:", "stratgy:", 1))
    assert azure_pipelines_schema(broken).returncode != 0
