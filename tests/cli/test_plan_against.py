"""`blueprint plan --against REF`: what a pull request does to each environment, offline.

The project is committed on `main`; the "pull request" is the working tree edited the way a team
edits: a role assignment added to the project's own program (prod only) and a stack value
changed in dev. The diff must name the grant, shout about it in prod, and show the dev change
input by input.
"""

from __future__ import annotations

import json
import shutil

import pytest
from cli_helpers import blueprint, git
from test_plan import OPS_GROUP, add_ops_grant

MAX_NODES_DEFAULT = '# {slug}:computeMaxNodes: "2"'
MAX_NODES_FOUR = '{slug}:computeMaxNodes: "4"'



@pytest.fixture(scope="module")
def repo(fresh_project, tmp_path_factory):
    """The project committed on main, then edited in the working tree (not committed)."""
    project = shutil.copytree(fresh_project, tmp_path_factory.mktemp("against") / "churn")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "New project")
    add_ops_grant(project)
    dev = project / ".cloud/infra/Pulumi.dev.yaml"
    slug = git(project, "show", "HEAD:.copier-answers.yml").split("project_slug: ")[1].split()[0]
    text = dev.read_text()
    assert MAX_NODES_DEFAULT.format(slug=slug) in text
    dev.write_text(text.replace(MAX_NODES_DEFAULT.format(slug=slug),
                                MAX_NODES_FOUR.format(slug=slug)))
    return project


@pytest.fixture(scope="module")
def diff_json(repo):
    run = blueprint("plan", repo, "--against", "main", "--format", "json")
    assert run.exit_code == 1, run.stderr  # the new version violates a prod policy
    return json.loads(run.stdout)


def _env(diff, name):
    return next(e for e in diff["environments"] if e["environment"] == name)


def test_a_group_granted_a_write_role_in_prod_is_named_and_flagged(diff_json):
    prod = _env(diff_json, "prod")
    granted = prod["role_assignments"]["granted"]
    assert [(g["principal_id"], g["principal_type"], g["role"], g["alarm"]) for g in granted] == [
        (OPS_GROUP, "Group", "Contributor", True)
    ]
    assert prod["role_assignments"]["revoked"] == []
    assert (prod["passed_before"], prod["passed"]) == (True, False)
    assert prod["custom_program"] == {"before": None,
                                      "after": "the ops group's access"}
    assert [v["policy"] for v in prod["violations"]["new"]] == ["prod-no-human-write-roles"]
    # the grant lives in prod only: the other environments gained no role
    for env in ("dev", "preprod"):
        assert _env(diff_json, env)["role_assignments"] == {"granted": [], "revoked": []}


def test_a_stack_value_change_shows_the_changed_input_and_nothing_else(diff_json):
    dev = _env(diff_json, "dev")
    assert dev["status"] == "changed" and dev["passed"]
    assert dev["resources"]["added"] == dev["resources"]["removed"] == []
    [compute] = dev["resources"]["changed"]
    assert compute["type"] == "azure-native:machinelearningservices:Compute"
    [change] = compute["changes"]
    assert change["path"].endswith("scaleSettings.maxNodeCount")
    assert (change["before"], change["after"]) == (2, 4)
    preprod = _env(diff_json, "preprod")  # the same resources, from a now custom program
    assert preprod["status"] == "unchanged"
    assert preprod["custom_program"]["before"] is None and preprod["custom_program"]["after"]
    assert diff_json["against"]["ref"] == "main" and len(diff_json["against"]["commit"]) == 40


def test_markdown_for_the_pull_request_comment_shouts_about_the_prod_grant(repo):
    run = blueprint("plan", repo, "--against", "main", "--format", "markdown")
    assert run.exit_code == 1
    custom = [line for line in run.stdout.splitlines() if line.startswith("> ⚠️ **Custom")]
    assert len(custom) == 1 and "declared in this change" in custom[0]
    alarms = [line for line in run.stdout.splitlines() if line.startswith("> 🚨")]
    assert len(alarms) == 1
    assert "New in prod" in alarms[0] and OPS_GROUP in alarms[0] and "Contributor" in alarms[0]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    summary = {row.split("|")[1].strip(): row for row in rows if "`" in row.split("|")[1]}
    assert "no change" in summary["✅ `preprod` (staging)"]


def test_the_repository_is_left_as_it_was(repo):
    before = git(repo, "status", "--porcelain"), git(repo, "worktree", "list")
    assert blueprint("plan", repo, "--against", "main", "--env", "preprod").exit_code == 0
    assert (git(repo, "status", "--porcelain"), git(repo, "worktree", "list")) == before


def test_an_environment_new_in_this_change_is_all_added(repo, tmp_path):
    project = shutil.copytree(repo, tmp_path / "churn")
    infra = project / ".cloud/infra"
    shutil.copy(infra / "Pulumi.preprod.yaml", infra / "Pulumi.qa.yaml")
    text = (infra / "Pulumi.qa.yaml").read_text()
    (infra / "Pulumi.qa.yaml").write_text(text.replace('environment: "preprod"',
                                                       'environment: "qa"'))
    run = blueprint("plan", project, "--against", "main", "--env", "qa", "--format", "json")
    assert run.exit_code == 0, run.stderr
    [qa] = json.loads(run.stdout)["environments"]
    assert qa["status"] == "added" and qa["resources"]["added"] and not qa["resources"]["removed"]
    assert qa["monthly_cost"]["before"] == 0 and qa["monthly_cost"]["delta"] > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--against", "no-such-branch"], "no such commit, branch or tag"),
        (["--against", "main", "--format", "mermaid"], "not mermaid"),
        (["--against", "--all"], "not a git ref"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(repo, args, expected):
    run = blueprint("plan", repo, *args)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and expected in run.error_lines[0], run.stderr


def test_a_project_outside_git_or_a_folder_that_is_no_project_is_refused(fresh_project, tmp_path):
    outside = shutil.copytree(fresh_project, tmp_path / "churn")
    for folder, expected in ((outside, "not in a git repository"),
                             (tmp_path, "not a generated project")):
        run = blueprint("plan", folder, "--against", "main")
        assert run.exit_code == 2
        assert len(run.error_lines) == 1 and expected in run.error_lines[0], run.stderr


def test_an_environment_this_change_deletes_is_shown_removed(repo, tmp_path):
    project = shutil.copytree(repo, tmp_path / "churn")
    (project / ".cloud/infra/Pulumi.preprod.yaml").unlink()
    run = blueprint("plan", project, "--against", "main", "--env", "preprod", "--format", "json")
    assert run.exit_code == 0, run.stderr
    [preprod] = json.loads(run.stdout)["environments"]
    assert preprod["status"] == "removed" and preprod["passed"]
    assert preprod["resources"]["removed"] and not preprod["resources"]["added"]
    assert preprod["role_assignments"]["revoked"]
    assert preprod["monthly_cost"]["after"] == 0 and preprod["monthly_cost"]["delta"] < 0


def test_an_old_version_that_cannot_be_read_is_reported_and_all_counts_as_added(repo, tmp_path):
    project = shutil.copytree(repo, tmp_path / "churn")
    answers = project / ".copier-answers.yml"
    good = answers.read_text()
    answers.write_text("project_slug: [unclosed\n")
    git(project, "commit", "-q", "-am", "broken answers")
    answers.write_text(good)
    run = blueprint("plan", project, "--against", "HEAD", "--env", "dev", "--format", "json")
    assert run.exit_code == 0, run.stderr
    [dev] = json.loads(run.stdout)["environments"]
    assert dev["status"] == "added" and "is not valid YAML" in dev["before_error"]
    assert "HEAD:" in dev["before_error"] and "blueprint-against-" not in dev["before_error"]
