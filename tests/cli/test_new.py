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
    assert f"blueprint plan {dest}" in run.stdout
    assert "blueprint request-env" in run.stdout
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
