"""The naming rules: any project the template accepts yields names Azure accepts."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blueprint_infra import naming

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

project_names = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=80,
).filter(lambda name: name.strip())
environment_names = st.from_regex(naming.ENVIRONMENT_PATTERN, fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(project_names)
def test_default_slug_is_always_a_valid_slug(project_name):
    assert naming.validate_slug(naming.slugify(project_name))


@settings(max_examples=300, deadline=None)
@given(project_names, environment_names)
def test_every_environment_name_satisfies_azure_rules(project_name, environment):
    slug = naming.slugify(project_name)
    names = naming.environment_names(slug, environment, TENANT)
    assert naming.check_names(names) == []


@settings(max_examples=200, deadline=None)
@given(project_names)
def test_every_project_name_satisfies_azure_rules(project_name):
    names = naming.project_names(naming.slugify(project_name), TENANT)
    assert naming.check_names(names) == []
    assert naming.AZURE_NAME_RULES["identity"].match(names.deploy_identity("preprod"))


def test_names_are_stable_and_differ_by_tenant_and_environment():
    first = naming.environment_names("customer-churn", "prod", TENANT)
    assert first == naming.environment_names("customer-churn", "prod", TENANT)
    other_tenant = naming.environment_names("customer-churn", "prod", TENANT.replace("7", "8"))
    other_env = naming.environment_names("customer-churn", "dev", TENANT)
    for field in ("storage_account", "key_vault", "container_registry"):
        assert getattr(first, field) != getattr(other_tenant, field), field
        assert getattr(first, field) != getattr(other_env, field), field


def test_truncated_slugs_stay_distinct_through_the_suffix():
    # Two long slugs that share their first 40 characters' compact prefix still get
    # different global names, because the suffix hashes the whole slug.
    a = naming.environment_names("a" * 30 + "-first", "dev", TENANT)
    b = naming.environment_names("a" * 30 + "-second", "dev", TENANT)
    assert a.storage_account != b.storage_account
    assert a.storage_account[:10] == b.storage_account[:10]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Customer Churn", "customer-churn"),
        ("  Fraud -- Detection!! ", "fraud-detection"),
        ("2027 Forecast", "ml-2027-forecast"),
        ("AB", "ab-ml"),
        ("Ünïcode Model", "n-code-model"),
    ],
)
def test_slugify_examples(name, slug):
    assert naming.slugify(name) == slug


@pytest.mark.parametrize(
    ("validator", "value", "question"),
    [
        (naming.validate_slug, "Bad Slug", "project_slug"),
        (naming.validate_slug, "double--hyphen", "project_slug"),
        (lambda v: naming.validate_guid(v, "data_scientists_group_id"), "not-a-guid",
         "data_scientists_group_id"),
        (naming.validate_location, "westeurope2", "azure_location"),
        (naming.validate_environments, ["dev"], "environments"),
        (naming.validate_environments, ["dev", "prod", "Pre-Prod"], "environments"),
        (naming.validate_environments, ["dev", "prod", "dev"], "environments"),
        (naming.validate_aks_cluster_id,
         "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg/providers/"
         "Microsoft.Compute/virtualMachines/vm", "aks_cluster_id"),
    ],
)
def test_bad_answers_name_the_question_and_rule(validator, value, question):
    with pytest.raises(naming.InvalidAnswer) as raised:
        validator(value)
    assert raised.value.question == question
    assert str(raised.value).startswith(f"{question}: ")
    assert raised.value.rule in str(raised.value)


def test_good_answers_pass():
    assert naming.validate_environments(["dev", "preprod", "prod"]) == ["dev", "preprod", "prod"]
    assert naming.validate_guid(TENANT.upper(), "q") == TENANT
    assert naming.validate_guid("", "q", allow_empty=True) == ""
    aks = (
        "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-aks/providers/"
        "Microsoft.ContainerService/managedClusters/shared-aks"
    )
    assert naming.validate_aks_cluster_id(aks) == aks
    assert naming.is_placeholder(naming.PLACEHOLDER_GUID)
    assert not naming.is_placeholder(TENANT)


@pytest.mark.parametrize(
    ("environment", "kind"),
    [("dev", "dev"), ("prod", "prod"), ("preprod", "staging"), ("qa", "staging"),
     ("test", "staging"), ("uat", "staging"), ("staging", "staging"), ("int", "staging"),
     # normalised: stripped and lower-cased
     (" Dev ", "dev"), ("PREPROD", "staging"), ("Prod\n", "prod"),
     # unknown names are the strictest kind
     ("prodx", "prod"), ("sandbox", "prod"), ("live", "prod"), ("dev2", "prod"),
     ("devprod", "prod"), ("", "prod"), (None, "prod")],
)
def test_environment_kind(environment, kind):
    assert naming.environment_kind(environment) == kind


@pytest.mark.parametrize(("kinds", "strictest"), [
    (("dev", "staging"), "staging"), (("prod", "dev"), "prod"), (("dev", None, ""), "dev"),
    (("dev", "superdev"), "prod"), ((), "prod"),
])
def test_stricter_kind_never_weakens(kinds, strictest):
    assert naming.stricter_kind(*kinds) == strictest


def test_bootstrap_projects_are_recognised_by_name():
    assert naming.is_bootstrap_project("churn-model-bootstrap")
    assert not naming.is_bootstrap_project("churn-model") and not naming.is_bootstrap_project(None)


def test_suffix_is_lowercase_hex():
    value = naming.suffix(TENANT, "x", "dev")
    assert len(value) == 6
    assert set(value) <= set(string.hexdigits.lower())


@pytest.mark.parametrize(
    "validator",
    [naming.validate_slug, lambda v: naming.validate_guid(v, "q"), naming.validate_location],
)
def test_a_trailing_newline_is_not_a_valid_answer(validator):
    good = {naming.validate_slug: "churn", naming.validate_location: "westeurope"}.get(
        validator, TENANT
    )
    with pytest.raises(naming.InvalidAnswer):
        validator(good + "\n")
