"""The commands the generated CI runs work on a freshly generated project (slow: minutes)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from template_cases import COMBINATIONS

BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.parametrize("case", ["github-3env-aks", "ado-3env"])
def test_ci_infra_check_passes_on_a_fresh_project(rendered_project, tmp_path, case):
    """The CI's infra job: `blueprint check` (Azure ML YAML, pipeline, answers vs stacks, plan
    of every stack) as CI runs it from the project's root, with the infra program installed."""
    project = shutil.copytree(rendered_project(**COMBINATIONS[case]), tmp_path / "project")
    if COMBINATIONS[case]["ci_provider"] == "github":
        steps = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())["jobs"]["infra"]
        command = steps["steps"][-1]["run"]
    else:
        jobs = yaml.safe_load((project / ".ado/ci.yml").read_text())["jobs"]
        (infra,) = [job for job in jobs if job["job"] == "infra"]
        command = infra["steps"][-1]["script"]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        shlex.split(command), cwd=project, env=env, capture_output=True, text=True, check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout
