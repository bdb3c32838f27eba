"""`blueprint request-env`: a new environment arrives as an uncommitted, reviewable change."""

from __future__ import annotations

import pytest
from cli_helpers import blueprint, git, load_yaml

from blueprint_infra import naming


def stacks(project):
    return {p.name: p.read_bytes() for p in (project / ".cloud/infra").glob("Pulumi.*.yaml")}


def test_request_preprod_adds_stack_ci_stage_and_answers_uncommitted(committed_project):
    project = committed_project()
    head = git(project, "rev-parse", "HEAD")
    before = stacks(project)
    workflow = project / ".github/workflows/infra.yml"
    jobs_before = load_yaml(workflow)["jobs"]
    assert "deploy-preprod" not in jobs_before

    run = blueprint("request-env", "preprod", project)
    assert run.exit_code == 0, run.stderr

    # answers: preprod added before prod
    answers = load_yaml(project / ".copier-answers.yml")
    assert answers["environments"] == ["dev", "preprod", "prod"]

    # the new stack, written by the template's task, as a staging environment
    slug = answers["project_slug"]
    config = load_yaml(project / ".cloud/infra/Pulumi.preprod.yaml")["config"]
    assert config[f"{slug}:environment"] == "preprod"
    assert config[f"{slug}:kind"] == naming.environment_kind("preprod") == "staging"
    # the existing stacks are the infra engineers': untouched
    after = stacks(project)
    assert {k: v for k, v in after.items() if k != "Pulumi.preprod.yaml"} == before

    # a CI/CD stage: preprod is previewed on pull requests and deployed after dev and before
    # prod, by one call of the reusable workflow; the model is released there in the same order
    jobs = load_yaml(workflow)["jobs"]
    assert jobs["deploy-preprod"]["uses"] == "./.github/workflows/pulumi-up.yml"
    assert jobs["deploy-preprod"]["with"] == {"environment": "preprod"}
    assert jobs["deploy-preprod"]["needs"] == ["deploy-dev"]
    assert jobs["deploy-prod"]["needs"] == ["deploy-preprod"]
    assert jobs["preview-preprod"]["with"] == {"environment": "preprod"}
    model = load_yaml(project / ".github/workflows/model.yml")["jobs"]
    assert model["deploy-preprod"]["with"]["environment"] == "preprod"
    assert model["deploy-preprod"]["needs"] == ["train", "deploy-dev"]
    assert model["deploy-prod"]["needs"] == ["train", "deploy-preprod"]
    # the reusable preview accepts the new non-prod environment, and the setup script covers it
    preview = (project / ".github/workflows/pulumi-preview.yml").read_text()
    assert "dev|preprod)" in preview
    assert '"preprod"' in (project / ".github/scripts/protect_environments.py").read_text()

    # nothing committed; the change is in the working tree for review
    assert git(project, "rev-parse", "HEAD") == head
    changed = {line[3:] for line in git(project, "status", "--porcelain", "-uall").splitlines()}
    assert {".copier-answers.yml", ".github/workflows/infra.yml", ".github/workflows/model.yml",
            ".cloud/infra/Pulumi.preprod.yaml"} <= changed
    assert ".cloud/infra/Pulumi.prod.yaml" not in changed
    assert ".cloud/infra/Pulumi.preprod.yaml" in run.stdout

    # and the new environment previews cleanly
    assert blueprint("plan", project, "--env", "preprod").exit_code == 0


def test_request_env_keeps_team_edits(committed_project):
    project = committed_project()
    prod = project / ".cloud/infra/Pulumi.prod.yaml"
    prod.write_text(prod.read_text() + "  # reviewed by the platform team\n")
    git(project, "commit", "-qam", "Note on prod")
    run = blueprint("request-env", "qa", project)
    assert run.exit_code == 0, run.stderr
    assert prod.read_text().endswith("  # reviewed by the platform team\n")
    assert load_yaml(project / ".copier-answers.yml")["environments"] == ["dev", "qa", "prod"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [("prod", "already exists"), ("Pre-Prod", "ENV"), ("x", "ENV")],
)
def test_bad_environment_is_one_line(committed_project, env, needle):
    project = committed_project()
    run = blueprint("request-env", env, project)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and needle in run.error_lines[0]
    assert git(project, "status", "--porcelain") == ""


def test_refuses_a_dirty_tree(committed_project):
    project = committed_project()
    (project / "notes.md").write_text("wip\n")
    run = blueprint("request-env", "preprod", project)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and "uncommitted changes" in run.error_lines[0]
    assert not (project / ".cloud/infra/Pulumi.preprod.yaml").exists()


def test_refuses_a_project_that_is_not_a_git_repository(fresh_project, tmp_path):
    import shutil

    project = shutil.copytree(fresh_project, tmp_path / "no-git")
    run = blueprint("request-env", "qa", project)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and "not a git repository" in run.error_lines[0]


def test_project_from_a_non_git_template_says_how_to_fix(committed_project):
    project = committed_project()
    answers_file = project / ".copier-answers.yml"
    answers_file.write_text(
        "\n".join(line for line in answers_file.read_text().splitlines()
                  if not line.startswith("_commit:")) + "\n"
    )
    git(project, "commit", "-qam", "answers without _commit")
    run = blueprint("request-env", "preprod", project)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1
    assert "not a git repository" in run.error_lines[0] and "_src_path" in run.error_lines[0]


def test_request_env_on_azure_devops_adds_the_deploy_stage(committed_project):
    project = committed_project(ci_provider="azure-devops", repository="contoso/churn")
    run = blueprint("request-env", "qa", project)
    assert run.exit_code == 0, run.stderr
    # one call of the stage template per environment: {template, parameters}
    calls = load_yaml(project / ".ado/infra.yml")["stages"][1:]
    deploys = {c["parameters"]["environment"]: c["parameters"] for c in calls
               if c["template"] == "templates/pulumi-up.yml"}
    assert deploys["qa"]["dependsOn"] == ["deploy_dev"]
    assert deploys["prod"]["dependsOn"] == ["deploy_qa"]
    previews = [c["parameters"]["environment"] for c in calls
                if c["template"] == "templates/pulumi-preview.yml"]
    assert previews == ["dev", "qa"]
    releases = {c["parameters"]["environment"]: c["parameters"]
                for c in load_yaml(project / ".ado/model.yml")["stages"][1:]}
    assert releases["prod"]["dependsOn"] == ["train", "release_qa"]
    assert (project / ".cloud/infra/Pulumi.qa.yaml").is_file()


def test_refuses_a_project_left_untracked_inside_another_repository(committed_project, tmp_path):
    import shutil

    outer = committed_project()  # any git repository with a commit
    inner = shutil.copytree(outer, outer / "nested", ignore=shutil.ignore_patterns(".git"))
    (outer / ".gitignore").write_text("nested/\n")
    git(outer, "add", ".gitignore")
    git(outer, "commit", "-qm", "ignore nested")
    run = blueprint("request-env", "qa", inner)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and "untracked" in run.error_lines[0]
    assert not (inner / ".cloud/infra/Pulumi.qa.yaml").exists()


def test_conflicting_team_edit_is_reported(committed_project):
    project = committed_project()
    workflow = project / ".github/workflows/infra.yml"
    lines = workflow.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("  deploy-prod:"))
    needs = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("needs:"))
    lines[needs] = "    needs: [deploy-dev]  # team: wait for the smoke tests too\n"
    workflow.write_text("".join(lines))
    git(project, "commit", "-qam", "Team edit of the deploy order")

    run = blueprint("request-env", "uat", project)
    assert run.exit_code == 1, run.stderr  # the change is there to review, but not committable
    assert "Resolve the merge conflicts in: .github/workflows/infra.yml" in run.stdout
    assert (project / ".cloud/infra/Pulumi.uat.yaml").is_file()
    assert "<<<<<<< " in workflow.read_text()


# --- bad input: one line, exit 2, nothing written ---------------------------------------------

def _set_answer(project, key, value):
    answers_file = project / ".copier-answers.yml"
    lines = [line for line in answers_file.read_text().splitlines()
             if not line.startswith(f"{key}:")]
    answers_file.write_text("\n".join([f"{key}: {value}", *lines]) + "\n")
    git(project, "commit", "-qam", f"set {key}")


def _break_answers(project):
    (project / ".copier-answers.yml").write_text("environments: [dev, prod\n")
    git(project, "commit", "-qam", "broken answers")


@pytest.mark.parametrize(
    ("breakage", "needle"),
    [
        (lambda p: _set_answer(p, "_commit", "v9.9.9"), "has no 'v9.9.9'"),
        (lambda p: _set_answer(p, "_src_path", p.parent / "moved-away"),
         "cannot fetch the template from"),
        (lambda p: _set_answer(p, "_src_path", "https://git.invalid/platform/blueprint.git"),
         "set _src_path to the platform team's git URL"),
        (lambda p: _break_answers(p), "is not valid YAML"),
    ],
    ids=["unknown-tag", "moved-source", "unreachable-url", "answers-do-not-parse"],
)
def test_a_project_copier_cannot_update_is_one_line_and_untouched(
    committed_project, breakage, needle
):
    project = committed_project()
    breakage(project)
    head = git(project, "rev-parse", "HEAD")
    run = blueprint("request-env", "qa", project)
    assert run.exit_code == 2, run.stdout
    assert len(run.error_lines) == 1 and needle in run.error_lines[0], run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(project, "rev-parse", "HEAD") == head


def test_a_folder_that_is_not_a_project_is_one_line(tmp_path):
    folder = tmp_path / "not-a-project"
    folder.mkdir()
    (folder / "notes.md").write_text("mine\n")
    run = blueprint("request-env", "qa", folder)
    assert run.exit_code == 2
    assert run.error_lines == [
        f"error: {folder} is not a generated project (no .copier-answers.yml); "
        "create one with `blueprint new DEST`"
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.md"]


def test_request_env_on_azure_devops_speaks_of_the_branch_policy(committed_project):
    project = committed_project(ci_provider="azure-devops", repository="contoso/churn")
    run = blueprint("request-env", "qa", project)
    assert run.exit_code == 0, run.stderr
    assert "CODEOWNERS" not in run.stdout
    assert "required reviewers of .cloud/infra" in run.stdout
    # the default team, `[Project]\\Platform Team`, printed as is (not eaten as rich markup)
    team = load_yaml(project / ".copier-answers.yml")["platform_team"]
    assert team.startswith("[") and f"pull request for {team}," in run.stdout


# --- projects made by `blueprint new` can be updated ------------------------------------------

def test_request_env_on_a_project_made_by_new_from_the_checkout(tmp_path):
    from cli_helpers import REPO_ROOT

    project = tmp_path / "churn"
    # the checkout itself as the source (its origin, the default, may need a network)
    run = blueprint("new", project, "--defaults", "--template-source", REPO_ROOT)
    assert run.exit_code == 0, run.stderr
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "New project")
    run = blueprint("request-env", "qa", project)
    assert run.exit_code == 0, run.stderr
    assert load_yaml(project / ".copier-answers.yml")["environments"] == ["dev", "qa", "prod"]
    assert (project / ".cloud/infra/Pulumi.qa.yaml").is_file()


def installed_layout(site, template_repo, ref):
    """The layout of the installed wheel: mlops_blueprint with its _bundled template (a plain
    copy, no git) and the template source recorded at build time (hatch_build.py)."""
    import json
    import shutil

    from cli_helpers import REPO_ROOT

    package = shutil.copytree(
        REPO_ROOT / "generator/mlops_blueprint", site / "mlops_blueprint",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    bundled = package / "_bundled"
    bundled.mkdir()
    shutil.copy2(template_repo / "copier.yml", bundled / "copier.yml")
    for folder in ("template", "tasks"):
        shutil.copytree(template_repo / folder, bundled / folder)
    (bundled / "template-source.json").write_text(json.dumps({"url": str(template_repo),
                                                               "ref": ref}))
    return site


def test_request_env_and_copier_update_on_a_project_made_from_the_installed_package(
    template_repo, tmp_path
):
    import os
    import subprocess
    import sys
    import warnings

    import copier
    from cli_helpers import REPO_ROOT

    site = installed_layout(tmp_path / "site", template_repo, "v0.1.0")
    project = tmp_path / "churn"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT / "infra")])}
    env.pop("BLUEPRINT_TEMPLATE_SOURCE", None)
    made = subprocess.run(
        [sys.executable, "-m", "mlops_blueprint", "new", str(project), "--defaults"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert made.returncode == 0, made.stderr
    answers = load_yaml(project / ".copier-answers.yml")
    # the template's git repository and tag, not the bundled copy
    assert (answers["_src_path"], answers["_commit"]) == (str(template_repo), "v0.1.0")
    assert "_bundled" not in (project / ".copier-answers.yml").read_text()
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "New project")

    run = blueprint("request-env", "qa", project)
    assert run.exit_code == 0, run.stderr
    assert (project / ".cloud/infra/Pulumi.qa.yaml").is_file()
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "qa")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.MissingSettingsWarning)
        copier.run_update(str(project), defaults=True, overwrite=True, unsafe=True, quiet=True,
                          data={"environments": ["dev", "qa", "uat", "prod"]})
    assert load_yaml(project / ".copier-answers.yml")["environments"] == [
        "dev", "qa", "uat", "prod"]
    assert (project / ".cloud/infra/Pulumi.uat.yaml").is_file()
