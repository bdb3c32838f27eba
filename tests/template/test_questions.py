"""copier.yml's questions follow the same rules as blueprint_infra.naming.

copier cannot import the naming module, so copier.yml repeats its rules in Jinja. These tests
evaluate copier's own defaults and validators (with copier's Jinja environment, the way copier
does: render, strip, an empty result means valid) on many values and compare the verdicts.
A few bad answers also go through `copier.run_copy` end to end.
"""

from __future__ import annotations

import ast
import re
import string
import warnings
from pathlib import Path

import copier
import pytest
import yaml
from copier._main import Worker
from hypothesis import given, settings
from hypothesis import strategies as st

from blueprint_infra import naming
from blueprint_infra.settings import COST_CENTER_PATTERN, REPOSITORY_PATTERN

REPO_ROOT = Path(__file__).resolve().parents[2]
GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
AKS_ID = (
    "/subscriptions/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/resourceGroups/rg-shared.aks(1)"
    "/providers/Microsoft.ContainerService/managedClusters/aks-shared-01"
)


@pytest.fixture(scope="module")
def copier_template():
    """copier's Jinja environment, questions and tasks for this checkout's copier.yml."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        warnings.simplefilter("ignore", copier.errors.MissingSettingsWarning)
        with Worker(
            src_path=str(REPO_ROOT), dst_path="unused", vcs_ref="HEAD", defaults=True,
            unsafe=True, quiet=True,
        ) as worker:
            yield worker.jinja_env, worker.template.questions_data, worker.template.tasks


def copier_error(copier_template, question: str, value: object, **context: object) -> str:
    """copier's verdict on an answer: the validator's message, empty when valid."""
    env, questions, _ = copier_template
    validator = questions[question]["validator"]
    return env.from_string(validator).render({**context, question: value}).strip()


def naming_accepts(check, value) -> bool:
    try:
        check(value)
    except naming.InvalidAnswer:
        return False
    return True


def agree(copier_template, question, check, values, **context):
    for value in values:
        copier_ok = copier_error(copier_template, question, value, **context) == ""
        assert copier_ok == naming_accepts(check, value), (question, value)


# --- defaults -------------------------------------------------------------------------------

project_names = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=80,
).filter(lambda name: name.strip())

NAMES = [
    "Customer Churn", "customer-churn", "  Spaces  around  ", "42 is the answer", "---",
    "ÉÀ", "a", "ab", "Ünïcödé Ñame 🚀", "x" * 80, "A" + "-b" * 39, "3D", "ML", "_private_",
    "Fraud/Detection v2.1 (EU)", "a" * 39 + "-b", "données", "ｆｕｌｌｗｉｄｔｈ",
]


def copier_default_slug(copier_template, project_name: str) -> str:
    env, questions, _ = copier_template
    return env.from_string(questions["project_slug"]["default"]).render(project_name=project_name)


@pytest.mark.parametrize("name", NAMES)
def test_default_slug_is_naming_slugify(copier_template, name):
    slug = copier_default_slug(copier_template, name)
    assert slug == naming.slugify(name)
    assert copier_error(copier_template, "project_slug", slug) == ""


@settings(max_examples=300, deadline=None)
@given(name=project_names)
def test_default_slug_is_naming_slugify_for_any_name(copier_template, name):
    assert copier_default_slug(copier_template, name) == naming.slugify(name)


def test_copier_copy_with_defaults_and_no_data_names_the_project_after_its_folder(
    tmp_path, render_template, monkeypatch
):
    """`copier copy --trust --defaults SRC dst` with no --data: the folder names the project."""
    project = render_template(tmp_path / "Fraud Detection", {})
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "Fraud Detection"
    assert answers["project_slug"] == naming.slugify("Fraud Detection") == "fraud-detection"
    stack = yaml.safe_load((project / ".cloud/infra/Pulumi.dev.yaml").read_text())["config"]
    assert stack["fraud-detection:projectSlug"] == "fraud-detection"

    # `copier copy SRC .` from inside the new folder: the folder's name, not "."
    here = tmp_path / "42"
    here.mkdir()
    monkeypatch.chdir(here)
    render_template(Path("."), {})
    answers = yaml.safe_load((here / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "42"
    assert answers["project_slug"] == naming.slugify("42") == "ml-42"


# --- validators -----------------------------------------------------------------------------

SLUGS = [
    "customer-churn", "abc", "ab", "a" * 40, "a" * 41, "my project", "My-Project", "1abc",
    "abc-", "-abc", "a--b", "a-b-c", "abc123", "ab_c", "", "a" * 39 + "-", "é-abc", "abc\n",
]


def test_slug_validator_agrees_with_naming(copier_template):
    agree(copier_template, "project_slug", naming.validate_slug, SLUGS)


@settings(max_examples=200, deadline=None)
@given(slug=st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,45}", fullmatch=True),
    st.text(alphabet=string.ascii_letters + string.digits + "-_ ", max_size=45),
))
def test_slug_validator_agrees_with_naming_for_any_text(copier_template, slug):
    agree(copier_template, "project_slug", naming.validate_slug, [slug])


def test_region_lists_are_equal(copier_template):
    _, questions, _ = copier_template
    validator = questions["azure_location"]["validator"]
    listed = ast.literal_eval(re.search(r"not in (\[.*?\])", validator).group(1))
    assert listed == list(naming.AZURE_REGIONS)
    agree(
        copier_template, "azure_location", naming.validate_location,
        [*naming.AZURE_REGIONS, "mars", "West Europe", "WESTEUROPE", "", "westeurope "],
    )


GUIDS = [
    GUID, GUID.upper(), naming.PLACEHOLDER_GUID, "", "not-a-guid", GUID[:-1], GUID + "0",
    "{" + GUID + "}", GUID.replace("-", ""), "3f2504e0-4f89-11d3-9a0c-0305e82c330g",
]


@pytest.mark.parametrize(
    "question,allow_empty",
    [
        ("data_scientists_group_id", False),
        ("prod_deployer_object_id", False),
        ("prod_readers_group_id", True),
    ],
)
def test_guid_validators_agree_with_naming(copier_template, question, allow_empty):
    agree(
        copier_template, question,
        lambda v: naming.validate_guid(v, question, allow_empty=allow_empty), GUIDS,
    )


ENVIRONMENT_LISTS = [
    ["dev", "prod"], ["dev", "preprod", "prod"], ["prod", "dev"], ["dev", "qa", "test", "prod"],
    ["dev"], ["prod"], [], ["dev", "prod", "dev"], ["dev", "Prod"], ["dev", "prod", "pre-prod"],
    ["dev", "prod", "x"], ["dev", "prod", "abcdefghijk"], ["dev", "prod", "2nd"],
    ["dev", "prod", 3], "dev, prod", {"dev": 1, "prod": 2}, None, 5, ["dev", "prod", "end"],
    ["dev", "prod", "platform"], ["dev", "preview", "prod"],  # the bootstrap's own names
]


def test_environments_validator_agrees_with_naming(copier_template):
    agree(copier_template, "environments", naming.validate_environments, ENVIRONMENT_LISTS)


AKS_IDS = [
    "", AKS_ID, AKS_ID.lower(), AKS_ID.replace("managedClusters", "virtualMachines"),
    AKS_ID.replace("Microsoft.ContainerService", "Microsoft.Compute"),
    AKS_ID + "/agentPools/np1", AKS_ID.replace("/subscriptions/0b1c", "/subscriptions/zzzz"),
    "aks-shared-01", AKS_ID.replace("aks-shared-01", "a" * 64),
    AKS_ID.replace("Microsoft.ContainerService", "MicrosoftXContainerService"),
]


def test_aks_validator_agrees_with_naming(copier_template):
    agree(copier_template, "aks_cluster_id", naming.validate_aks_cluster_id, AKS_IDS)


def test_cost_center_and_repository_validators_agree_with_the_stack_checks(copier_template):
    """These two rules live in blueprint_infra.settings (the stack config checks)."""
    for value in ["CC-0000", "Finance: ML/2024", "", "x" * 256, "x" * 257, "CC#1", "ça"]:
        copier_ok = copier_error(copier_template, "cost_center", value) == ""
        assert copier_ok == bool(COST_CENTER_PATTERN.match(value)), value
    for value in ["my-org/churn", "Org/My Project", "org", "org/repo/extra", "", "o/r?"]:
        copier_ok = copier_error(copier_template, "repository", value) == ""
        assert copier_ok == bool(REPOSITORY_PATTERN.match(value)), value


def test_environment_kinds_follow_naming_environment_kind(copier_template):
    env, questions, _ = copier_template
    environments = ["dev", "prod", *naming.STAGING_NAMES, "prodx", "sandbox", "dev2", "live",
                    "Preprod", " qa "]
    rendered = env.from_string(questions["environment_kinds"]["default"]).render(
        environments=environments)
    assert dict(pair.split("=") for pair in rendered.split(",")) == {
        e: naming.environment_kind(e) for e in environments
    }


def test_the_task_and_every_migration_take_environment_kinds(copier_template):
    """A migration decides what a stack's kind is by the same rule as the task that wrote it."""
    _, questions, tasks = copier_template
    (task,) = tasks
    assert questions["environment_kinds"]["when"] is False  # computed, never asked or recorded
    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
    commands = [task.cmd] + [migration["command"] for migration in config["_migrations"]]
    for command in commands:
        assert command[command.index("--kinds") + 1] == "{{ environment_kinds }}", command


# --- bad answers end to end -----------------------------------------------------------------

BAD_ANSWERS = {
    "project_slug": "my project",
    "azure_location": "mars-central",
    "data_scientists_group_id": "not-a-guid",
    "prod_deployer_object_id": GUID[:-1],
    "environments": ["dev", "preprod"],
    "aks_cluster_id": AKS_ID.replace(
        "Microsoft.ContainerService/managedClusters", "Microsoft.Compute/virtualMachines"
    ),
}


@pytest.mark.parametrize("question", list(BAD_ANSWERS))
def test_a_bad_answer_names_the_question_and_writes_nothing(tmp_path, render_template, question):
    dst = tmp_path / "project"
    with pytest.raises(ValueError, match=f"Validation error for question '{question}'"):
        render_template(dst, {"project_name": "Customer Churn", question: BAD_ANSWERS[question]})
    assert not dst.exists()
    assert list(tmp_path.iterdir()) == []


# --- the platform teams' page documents every question --------------------------------------

def test_every_question_is_documented(copier_template):
    _, questions, _ = copier_template
    asked = {name for name, q in questions.items() if q.get("when", True) is not False}
    page = (REPO_ROOT / "docs/platform-teams.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", page, flags=re.MULTILINE))
    assert documented == asked


def test_files_cited_by_the_template_config_exist():
    """copier.yml and the tasks point readers at tests and scripts; each must exist."""
    cited = set()
    for source in [REPO_ROOT / "copier.yml", *sorted((REPO_ROOT / "tasks").rglob("*.py")),
                   REPO_ROOT / "tasks/README.md"]:
        cited |= set(re.findall(r"\b((?:tests|tasks)/[\w/]+\.(?:py|md))\b", source.read_text()))
    assert "tests/template/test_render.py" in cited
    missing = sorted(path for path in cited if not (REPO_ROOT / path).is_file())
    assert missing == []
