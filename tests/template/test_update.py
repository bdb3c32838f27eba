"""`copier update` keeps the team's edits, brings template changes, and adds environments.

Each test builds a throwaway template repository from this checkout's copier.yml, template/ and
tasks/ (tagged v1), stamps out a project from it and commits the project, as a team would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from copier_helpers import assert_no_conflicts, commit_all, git, update

from blueprint_infra import naming

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSWERS = {"project_name": "Customer Churn", "ci_provider": "github"}


def make_template_repo(root: Path) -> Path:
    repo = root / "template-repo"
    repo.mkdir()
    shutil.copy2(REPO_ROOT / "copier.yml", repo / "copier.yml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("template", "tasks"):
        shutil.copytree(REPO_ROOT / folder, repo / folder, ignore=ignore)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "template v1")
    git(repo, "tag", "v1")
    return repo


@pytest.fixture
def team_project(tmp_path, render_template):
    """A project stamped out from template v1, committed, with the team's edits committed."""
    template = make_template_repo(tmp_path)
    project = render_template(tmp_path / "project", ANSWERS, src=template, vcs_ref="v1")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Stamp out customer-churn")

    # The team edits a generated file and both stack files.
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nOur team's own notes.\n")
    edits = {}
    for env, size in (("dev", "Standard_E4s_v3"), ("prod", "Standard_D8s_v3")):
        stack = project / ".cloud/infra" / f"Pulumi.{env}.yaml"
        text = stack.read_text().replace(
            "# customer-churn:computeVmSize: Standard_DS3_v2",
            f"customer-churn:computeVmSize: {size}  # sized by the infra team",
        )
        text = text.replace('costCenter: "CC-0000"', 'costCenter: "CC-4242"')
        assert size in text and "CC-4242" in text, "the team's edit did not apply"
        stack.write_text(text)
        edits[env] = text
    commit_all(project, "Team edits")
    return template, project, edits


def stack(project: Path, env: str) -> dict:
    return yaml.safe_load((project / ".cloud/infra" / f"Pulumi.{env}.yaml").read_text())["config"]


def test_update_keeps_team_edits_and_brings_template_changes(team_project):
    template, project, edits = team_project
    # v2 of the template: a line in the infra README, a new comment in the CI workflow ...
    infra_readme = template / "template/.cloud/infra/README.md.jinja"
    infra_readme.write_text(infra_readme.read_text() + "\nTemplate v2 was here.\n")
    workflow = next((template / "template").glob("*.github*/workflows/ci.yml"))
    workflow.write_text("# Template v2 workflow comment.\n" + workflow.read_text())
    # ... and stack files written differently: existing ones must still not change.
    task = template / "tasks/write_stacks.py"
    task.write_text(task.read_text().replace("Written once by", "Template v2: written once by"))
    commit_all(template, "template v2")
    git(template, "tag", "v2")

    update(project)

    assert_no_conflicts(project)
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2"
    assert (project / "README.md").read_text().endswith("\nOur team's own notes.\n")
    assert "Template v2 was here." in (project / ".cloud/infra/README.md").read_text()
    assert (project / ".github/workflows/ci.yml").read_text().startswith("# Template v2")
    for env, text in edits.items():
        assert (project / ".cloud/infra" / f"Pulumi.{env}.yaml").read_text() == text


def test_adding_an_environment_by_update_writes_its_stack_and_pipeline_jobs(team_project):
    _, project, edits = team_project

    update(project, environments=["dev", "preprod", "prod"])

    assert_no_conflicts(project)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["environments"] == ["dev", "preprod", "prod"]
    # the new stack, written by the task
    preprod = stack(project, "preprod")
    assert preprod["customer-churn:kind"] == naming.environment_kind("preprod") == "staging"
    assert preprod["customer-churn:environment"] == "preprod"
    assert preprod["customer-churn:publicNetworkAccess"] == "Enabled"
    # the team's stack files, byte for byte
    for env, text in edits.items():
        assert (project / ".cloud/infra" / f"Pulumi.{env}.yaml").read_text() == text
    assert stack(project, "prod")["customer-churn:computeVmSize"] == "Standard_D8s_v3"
    # the pipeline deploys preprod between dev and prod
    jobs = yaml.safe_load((project / ".github/workflows/infra.yml").read_text())["jobs"]
    assert jobs["deploy-preprod"]["uses"] == "./.github/workflows/pulumi-up.yml"
    assert jobs["deploy-preprod"]["with"] == {"environment": "preprod"}
    assert jobs["deploy-preprod"]["needs"] == ["deploy-dev"]
    assert jobs["deploy-prod"]["needs"] == ["deploy-preprod"]
    assert jobs["preview-preprod"]["with"] == {"environment": "preprod"}
    model = yaml.safe_load((project / ".github/workflows/model.yml").read_text())["jobs"]
    assert model["deploy-preprod"]["needs"] == ["train", "deploy-dev"]
    assert model["deploy-prod"]["needs"] == ["train", "deploy-preprod"]
    # the reusable preview and the environment setup script know the new environment
    assert "dev|preprod)" in (project / ".github/workflows/pulumi-preview.yml").read_text()
    script = (project / ".github/scripts/protect_environments.py").read_text()
    assert 'ENVIRONMENTS = ["dev", "preprod", "prod"]' in script
    # the bootstrap will create preprod's deploy identity
    platform = yaml.safe_load((project / ".cloud/infra/bootstrap/Pulumi.platform.yaml").read_text())
    assert platform["config"]["customer-churn-bootstrap:environments"] == ["dev", "preprod", "prod"]
    # the team's other edit survived too
    assert (project / "README.md").read_text().endswith("\nOur team's own notes.\n")


def test_update_says_wrote_only_for_stack_files_really_written(team_project, capfd):
    """copier renders the old and new template versions into temporary folders and runs the task
    there too; only files written into the project itself are announced."""
    _, project, _ = team_project
    capfd.readouterr()

    update(project)  # nothing to add: no stack file is written, none announced

    assert "wrote" not in capfd.readouterr().err

    update(project, environments=["dev", "qa", "prod"])

    wrote = [line for line in capfd.readouterr().err.splitlines() if line.startswith("wrote ")]
    assert wrote == ["wrote .cloud/infra/Pulumi.qa.yaml"]
    assert (project / ".cloud/infra/Pulumi.qa.yaml").is_file()


def test_copy_announces_every_stack_file(tmp_path, render_template, capfd):
    render_template(tmp_path / "p", {**ANSWERS, "environments": ["dev", "qa", "prod"]})
    wrote = [line for line in capfd.readouterr().err.splitlines() if line.startswith("wrote ")]
    assert wrote == [f"wrote .cloud/infra/Pulumi.{env}.yaml" for env in ("dev", "qa", "prod")]
