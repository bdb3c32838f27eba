"""The generated projects' Renovate config: valid for Renovate itself, upgrades the template
through Renovate's copier manager, and finds every tool version pinned under a marker comment.

The validator is npm's `renovate` package (`make test` installs it under .tools/); without it
the validation test is skipped and says how to install it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from template_cases import COMBINATIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
CI_FILES = {"github": ".github/workflows", "azure-devops": ".ado"}
#: The marker the CI files put above a pinned tool version (docs/upgrades.md).
PULUMI_MARKER = "# renovate: datasource=github-releases depName=pulumi/pulumi"


def validator() -> str | None:
    for candidate in (
        os.environ.get("RENOVATE_CONFIG_VALIDATOR"),
        str(REPO_ROOT / ".tools/node_modules/.bin/renovate-config-validator"),
        shutil.which("renovate-config-validator"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def config_of(project: Path) -> dict:
    return json.loads((project / "renovate.json").read_text())


def regex_manager(config: dict) -> dict:
    (manager,) = [m for m in config["customManagers"] if m["customType"] == "regex"]
    return manager


def python_pattern(js: str) -> re.Pattern[str]:
    return re.compile(js.replace("(?<", "(?P<"))


@pytest.fixture(params=["github-2env", "ado-2env-aks"])
def project(request, rendered_project):
    return rendered_project(**COMBINATIONS[request.param])


def test_renovate_config_is_valid_for_renovate(project):
    found = validator()
    if found is None:
        pytest.skip("renovate-config-validator not installed: `make test` installs it "
                    "(npm install --prefix .tools renovate)")
    run = subprocess.run(
        [found, "--strict"], cwd=project, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Config validated successfully" in run.stdout + run.stderr


def test_template_upgrades_come_from_the_copier_manager_for_review(project):
    config = config_of(project)
    answers_provider = "github" if (project / ".github").is_dir() else "azure-devops"
    (rule,) = [r for r in config["packageRules"] if r.get("matchManagers") == ["copier"]]
    assert rule["automerge"] is False
    # copier update runs the template's task and migrations: Renovate must not skip scripts
    assert config["ignoreScripts"] is False
    # the package pin moves with the template, never on its own
    (pin,) = [r for r in config["packageRules"]
              if r.get("matchPackageNames") == ["mlops-blueprint"]]
    assert pin["enabled"] is False
    if answers_provider == "github":
        assert "helpers:pinGitHubActionDigests" in config["extends"]
    else:
        assert config["azure-pipelines"]["enabled"] is True
        assert any(python_pattern(p.strip("/")).search(".ado/infra.yml")
                   for p in config["azure-pipelines"]["managerFilePatterns"])
    manager = regex_manager(config)
    ci_file = next(p for p in (project / CI_FILES[answers_provider]).glob("*.yml"))
    relative = str(ci_file.relative_to(project))
    assert any(python_pattern(p.strip("/")).search(relative)
               for p in manager["managerFilePatterns"])


def test_marker_comment_pins_the_pulumi_cli(project):
    (pattern,) = [python_pattern(s) for s in regex_manager(config_of(project))["matchStrings"]]
    for pinned in ('PULUMI_VERSION: "3.150.0"', "pulumi-version: v3.150.0",
                   "pulumi_version: 3.150.0"):
        match = pattern.search(f"      {PULUMI_MARKER}\n      {pinned}\n")
        assert match, pinned
        assert match["datasource"] == "github-releases"
        assert match["depName"] == "pulumi/pulumi"
        assert match["currentValue"] == "3.150.0"


def test_every_marker_in_the_ci_files_is_followed_by_a_version_renovate_reads(project):
    pattern = python_pattern(regex_manager(config_of(project))["matchStrings"][0])
    ci_files = sorted(project.glob(".github/workflows/*.yml")) + sorted(project.glob(".ado/*.yml"))
    for path in ci_files:
        text = path.read_text()
        markers = text.count("# renovate:")
        assert len(pattern.findall(text)) == markers, path
        # a Pulumi CLI version pinned in CI is pinned under the marker
        for line_no, line in enumerate(text.splitlines()):
            if re.search(r"(?i)pulumi[-_]version:\s*[\"']?v?\d", line):
                previous = text.splitlines()[line_no - 1]
                assert previous.strip() == PULUMI_MARKER, (path, line)
