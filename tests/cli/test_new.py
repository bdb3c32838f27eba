"""`blueprint new`: a project on the answers given, or one line and nothing written."""

from __future__ import annotations

import pytest
from cli_helpers import blueprint, load_yaml

from blueprint_infra import naming


def test_new_with_defaults_creates_the_layout_and_prints_next_steps(tmp_path):
    dest = tmp_path / "churn"
    run = blueprint(
        "new", dest, "--defaults",
        "--data", "project_name=Customer Churn",
        "--data", "environments=[dev, preprod, prod]",
    )
    assert run.exit_code == 0, run.stderr

    answers = load_yaml(dest / ".copier-answers.yml")
    assert answers["project_slug"] == naming.slugify("Customer Churn")
    assert answers["environments"] == ["dev", "preprod", "prod"]
    infra = dest / ".cloud" / "infra"
    assert load_yaml(infra / "Pulumi.yaml")["name"] == answers["project_slug"]
    slug = answers["project_slug"]
    for env in answers["environments"]:
        config = load_yaml(infra / f"Pulumi.{env}.yaml")["config"]
        assert config[f"{slug}:environment"] == env
        assert config[f"{slug}:kind"] == naming.environment_kind(env)
    assert (infra / "bootstrap" / "Pulumi.platform.yaml").is_file()
    assert (dest / "pipelines").is_dir() and (dest / "code").is_dir()

    for user in ("Platform team", "Infra engineers", "Project teams"):
        assert user in run.stdout
    # One `cd` into the project, then every command runs from there (no `blueprint plan DEST`
    # after telling the user to cd into DEST).
    assert f"cd {dest}" in run.stdout
    commands = [line.split()[:2] for line in run.stdout.splitlines() if "blueprint " in line]
    assert ["blueprint", "plan"] in commands and ["blueprint", "check"] in commands
    assert str(dest) not in "".join(line for line in run.stdout.splitlines()
                                    if "blueprint plan" in line or "blueprint check" in line)
    # The suggested new environment is one the project does not have yet.
    (suggested,) = [line.split("request-env ")[1].split()[0]
                    for line in run.stdout.splitlines() if "request-env " in line]
    assert suggested not in answers["environments"]
    naming.validate_environments(["dev", suggested, "prod"])  # raises when not a valid name
    # Project teams learn how to get the `blueprint` command.
    assert "pip install -r .cloud/infra/requirements.txt" in run.stdout
    assert "package feed" not in run.stdout  # that file pins a commit of a git repository
    # --defaults leaves placeholder ids; the next steps say which ones to fill in.
    assert "prod_deployer_object_id" in run.stdout


def test_new_passes_typed_answers_to_copier(tmp_path):
    dest = tmp_path / "p"
    group = "2f1c0b7e-5d3a-4c8e-9b1f-0a2b3c4d5e6f"
    run = blueprint(
        "new", dest, "--defaults",
        "-d", "project_name=Fraud Model", "-d", "project_slug=fraud",
        "-d", "azure_location=northeurope", "-d", f"data_scientists_group_id={group}",
        "-d", "ci_provider=azure-devops",
    )
    assert run.exit_code == 0, run.stderr
    answers = load_yaml(dest / ".copier-answers.yml")
    assert answers["project_slug"] == "fraud"
    assert answers["azure_location"] == "northeurope"
    assert answers["data_scientists_group_id"] == group
    assert answers["environments"] == ["dev", "prod"]
    dev = load_yaml(dest / ".cloud/infra/Pulumi.dev.yaml")["config"]
    assert dev["fraud:dataScientistsGroupId"] == group
    assert dev["azure-native:location"] == "northeurope"


@pytest.mark.parametrize(
    ("data", "question"),
    [
        ("environments=[dev, preprod]", "environments"),  # prod missing
        ("environments=[dev, Pre-Prod, prod]", "environments"),
        ("environments=dev", "environments"),  # not a list
        ("project_slug=Churn_Model", "project_slug"),
        ("azure_location=mars", "azure_location"),
        ("data_scientists_group_id=data-scientists", "data_scientists_group_id"),
        ("prod_readers_group_id=readers", "prod_readers_group_id"),
        ("aks_cluster_id=my-aks", "aks_cluster_id"),
        ("repository=not a repository", "repository"),  # checked by copier's validator
        ("no_such_question=1", "no_such_question"),
        ("project_name", "project_name"),  # no '='
    ],
)
def test_bad_answer_is_one_line_naming_the_question_and_writes_nothing(tmp_path, data, question):
    dest = tmp_path / "p"
    run = blueprint("new", dest, "--defaults", "--data", data)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].startswith("error: ")
    assert question in run.error_lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert not dest.exists()


def test_refuses_a_non_empty_destination(tmp_path):
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine\n")
    run = blueprint("new", dest, "--defaults")
    assert run.exit_code == 2
    assert run.error_lines == [f"error: {dest} is not empty; choose a new directory"]
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]


def test_unknown_template_path_is_one_line(tmp_path):
    empty = tmp_path / "not-a-template"
    empty.mkdir()
    run = blueprint("new", tmp_path / "p", "--defaults", "--template", empty)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and "copier.yml" in run.error_lines[0]

    run = blueprint("new", tmp_path / "p", "--defaults", "--template", tmp_path / "typo")
    assert run.exit_code == 2  # not "is not a git repository ... pass --template-source"
    (line,) = run.error_lines
    assert "no such folder" in line and "--template-source" not in line
    assert not (tmp_path / "p").exists()


def test_hidden_question_is_not_offered_nor_accepted(tmp_path):
    dest = tmp_path / "p"
    run = blueprint("new", dest, "--defaults", "--data", "project_slug=Bad Slug!")
    assert run.exit_code == 2
    run = blueprint("new", dest, "--defaults", "--data", "blueprint_version=9.9.9")
    assert run.exit_code == 2
    (line,) = run.error_lines
    assert line.startswith("error: --data blueprint_version: no such question")
    listed = line.split("(questions: ")[1].rstrip(")").split(", ")
    assert "blueprint_version" not in listed and "project_name" in listed
    assert not dest.exists()


def test_next_steps_on_azure_devops_name_the_branch_policy_not_codeowners(tmp_path):
    dest = tmp_path / "p"
    run = blueprint(
        "new", dest, "--defaults", "-d", "ci_provider=azure-devops", "-d", "repository=c/p"
    )
    assert run.exit_code == 0, run.stderr
    assert "CODEOWNERS" not in run.stdout
    assert "branch policy" in run.stdout
    assert "request-env preprod" in run.stdout  # [dev, prod]: preprod is the natural next one


def test_next_steps_print_a_destination_with_brackets_as_is(tmp_path):
    dest = tmp_path / "[ml] churn"
    run = blueprint("new", dest, "--defaults", "-d", "project_name=Churn")
    assert run.exit_code == 0, run.stderr
    assert f"in {dest} with environments" in run.stdout


def test_template_source_is_recorded_without_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("BLUEPRINT_TEMPLATE_SOURCE", "https://git.example.com/p/mlops-blueprint.git")
    dest = tmp_path / "env"
    run = blueprint("new", dest, "--defaults")
    assert run.exit_code == 0, run.stderr
    answers = load_yaml(dest / ".copier-answers.yml")
    assert answers["_src_path"] == "https://git.example.com/p/mlops-blueprint.git"
    assert answers["_commit"]  # the checkout's HEAD, which the git URL is expected to have

    dest = tmp_path / "option"
    url = "https://ci-bot:s3cret@git.example.com/platform/mlops-blueprint.git"
    run = blueprint("new", dest, "--defaults", "--template-source", url)
    assert run.exit_code == 0, run.stderr
    text = (dest / ".copier-answers.yml").read_text()
    assert load_yaml(dest / ".copier-answers.yml")["_src_path"] == (
        "https://git.example.com/platform/mlops-blueprint.git"
    )
    assert "s3cret" not in text and "s3cret" not in run.stdout

    # a URL copier would take for a folder (no .git): recorded with git+, as copier needs it
    dest = tmp_path / "ado"
    ado = "https://dev.azure.com/contoso/platform/_git/mlops-blueprint"
    run = blueprint("new", dest, "--defaults", "--template-source", ado)
    assert run.exit_code == 0, run.stderr
    assert load_yaml(dest / ".copier-answers.yml")["_src_path"] == f"git+{ado}"


def test_a_plain_folder_template_needs_a_source_to_record(tmp_path):
    import shutil

    from cli_helpers import REPO_ROOT

    plain = tmp_path / "plain-template"
    plain.mkdir()
    shutil.copy2(REPO_ROOT / "copier.yml", plain / "copier.yml")
    for folder in ("template", "tasks"):
        shutil.copytree(REPO_ROOT / folder, plain / folder)
    dest = tmp_path / "p"
    run = blueprint("new", dest, "--defaults", "--template", plain)
    assert run.exit_code == 2
    (line,) = run.error_lines
    assert "--template-source" in line and "BLUEPRINT_TEMPLATE_SOURCE" in line
    assert not dest.exists()

    url = "git@git.example.com:platform/mlops-blueprint.git"
    run = blueprint("new", dest, "--defaults", "--template", plain, "--template-source", url)
    assert run.exit_code == 0, run.stderr
    answers = load_yaml(dest / ".copier-answers.yml")
    version = load_yaml(REPO_ROOT / "copier.yml")["blueprint_version"]["default"]
    assert (answers["_src_path"], answers["_commit"]) == (url, f"v{version}")


def test_a_local_template_repository_records_the_source_given(template_repo, tmp_path):
    """A clone of the template on this machine renders fine, but its path is no use to
    `copier update` elsewhere: the --template-source given is what the project records."""
    url = "https://git.example.com/platform/mlops-blueprint.git"
    dest = tmp_path / "p"
    run = blueprint("new", dest, "--defaults", "--template", template_repo, "--vcs-ref", "v0.1.0",
                    "--template-source", url)
    assert run.exit_code == 0, run.stderr
    answers = load_yaml(dest / ".copier-answers.yml")
    assert (answers["_src_path"], answers["_commit"]) == (url, "v0.1.0")
    assert "a folder on this machine" not in run.stdout

    dest = tmp_path / "q"  # without a source: the repository, as copier records it
    run = blueprint("new", dest, "--defaults", "--template", template_repo, "--vcs-ref", "v0.1.0")
    assert run.exit_code == 0, run.stderr
    assert load_yaml(dest / ".copier-answers.yml")["_src_path"] == str(template_repo)
    assert "a folder on this machine" in run.stdout


def test_the_checkout_origin_is_recorded_without_credentials(tmp_path):
    from cli_helpers import git

    from mlops_blueprint.commands import new

    repo = tmp_path / "checkout"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", "https://bot:t0ken@dev.azure.com/c/p/_git/mlops-blueprint")
    origin = new._origin_url(repo)
    assert origin == "https://dev.azure.com/c/p/_git/mlops-blueprint"
    assert new._for_copier(origin) == "git+https://dev.azure.com/c/p/_git/mlops-blueprint"
    assert new._for_copier("git@host:platform/mlops-blueprint.git") == (
        "git@host:platform/mlops-blueprint.git")
    assert new._origin_url(tmp_path) is None  # no repository, no origin
    for url, clean in [
        ("git+https://ci:s3cret@host/p/mlops-blueprint.git", "git+https://host/p/mlops-blueprint.git"),
        ("https://ghp_token@github.com/org/mlops-blueprint", "https://github.com/org/mlops-blueprint"),
        ("ssh://git:pw@host/p/mlops-blueprint.git", "ssh://git@host/p/mlops-blueprint.git"),
        ("ssh://git@host/p/mlops-blueprint.git", "ssh://git@host/p/mlops-blueprint.git"),
    ]:
        assert new._clean_url(url) == clean
