"""`blueprint check`: passes on a fresh project, names the file of every finding otherwise."""

from __future__ import annotations

import shutil

import pytest
from cli_helpers import blueprint, load_yaml

from mlops_blueprint.commands.check import azure_ml_files, loader_name


def test_fresh_project_passes(fresh_project):
    run = blueprint("check", fresh_project)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "check passed" in run.stdout
    # Every Azure ML file was loaded, and the pipeline was built with its steps.
    count = len(azure_ml_files(fresh_project))
    assert count >= 10
    assert f"{count} files loaded" in run.stdout
    assert "built pipelines/" in run.stdout
    assert "plan: passes for dev, preprod, prod, bootstrap" in run.stdout


def test_every_azure_ml_file_has_a_loader(fresh_project):
    cloud = fresh_project / ".cloud"
    for path in azure_ml_files(fresh_project):
        assert "infra" not in path.relative_to(cloud).parts
        assert loader_name(path, load_yaml(path), cloud), path


@pytest.mark.parametrize(
    ("relative", "edit", "says"),
    [
        # a value of the wrong type: azure-ai-ml's schema rejects it
        (".cloud/compute/cpu-cluster.yml",
         lambda t: t.replace("max_instances: 2", "max_instances: lots"), "max_instances"),
        # not YAML at all
        (".cloud/environments/train.yml", lambda t: t + "\n  broken: [\n", "not valid YAML"),
        # a conda file that is not there
        (".cloud/environments/prep.yml",
         lambda t: t.replace("code/prep/environment.yml", "code/prep/missing.yml"), "missing.yml"),
    ],
)
def test_broken_azure_ml_yaml_fails_naming_the_file(project_copy, relative, edit, says):
    path = project_copy / relative
    original = path.read_text()
    path.write_text(edit(original))
    assert path.read_text() != original, "the edit must change the file"

    run = blueprint("check", project_copy)
    assert run.exit_code == 1
    findings = [line.strip() for line in run.stdout.splitlines() if line.startswith("    ")]
    assert findings, run.stdout
    assert all(f.startswith(f"{relative}: ") for f in findings), findings
    assert says in findings[0]


def test_pipeline_that_does_not_build_is_a_finding(project_copy):
    pipeline = project_copy / "pipelines" / "training_pipeline.py"
    broken = pipeline.read_text().replace("def build_pipeline(", "def build_pipeline(x,")
    pipeline.write_text(broken)
    run = blueprint("check", project_copy)
    assert run.exit_code == 1
    assert "pipelines/training_pipeline.py: does not build offline" in run.stdout


def test_answers_and_stacks_must_agree(project_copy):
    infra = project_copy / ".cloud" / "infra"
    shutil.copy(infra / "Pulumi.preprod.yaml", infra / "Pulumi.qa.yaml")  # not in the answers
    (infra / "Pulumi.preprod.yaml").unlink()  # answered, but gone
    run = blueprint("check", project_copy)
    assert run.exit_code == 1
    assert ".cloud/infra/Pulumi.qa.yaml: stray stack" in run.stdout
    assert ".cloud/infra/Pulumi.preprod.yaml: missing" in run.stdout


def test_prod_policy_violation_is_a_finding(project_copy):
    from test_plan import add_ops_grant

    add_ops_grant(project_copy)
    run = blueprint("check", project_copy)
    assert run.exit_code == 1
    assert (
        ".cloud/infra/Pulumi.prod.yaml: plan: policy prod-no-human-write-roles on ops-contributor"
        in run.stdout
    )


def test_not_a_project_is_one_line(tmp_path):
    run = blueprint("check", tmp_path)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and "not a generated project" in run.error_lines[0]
