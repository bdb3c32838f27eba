"""Stack config parsing: defaults per kind, placeholders, and one-line errors naming the key."""

from __future__ import annotations

import json

import pytest
from infra_fixtures import DEPLOYER, READERS, SLUG, stack_config

from blueprint_infra import naming
from blueprint_infra.settings import (
    ConfigError,
    load_bootstrap_settings,
    load_environment_settings,
)


def load(env="dev", kind="dev", **overrides):
    config = stack_config(env, kind, **overrides)
    return load_environment_settings(SLUG, config.get)


def test_defaults_follow_the_kind():
    dev, prod = load(), load("prod", "prod")
    assert (dev.public_network_access, prod.public_network_access) == ("Enabled", "Disabled")
    assert dev.compute_max_nodes == 2 and dev.compute_vm_size == "Standard_DS3_v2"
    assert not prod.public_network_opt_out
    assert load("prod", "prod", publicNetworkAccess="Enabled").public_network_opt_out
    assert prod.deployer_object_id == DEPLOYER and prod.readers_group_id == READERS
    assert prod.tags == {"project": SLUG, "environment": "prod", "cost-center": "CC-1234",
                         "managed-by": "pulumi"}


def test_guids_are_normalised_and_a_placeholder_readers_group_means_none():
    settings = load("prod", "prod", deployerObjectId=DEPLOYER.upper(),
                    readersGroupId=naming.PLACEHOLDER_GUID)
    assert settings.deployer_object_id == DEPLOYER
    assert settings.readers_group_id == ""


def test_non_prod_may_leave_the_deployer_empty_prod_may_not():
    assert load(deployer="").deployer_object_id == ""
    with pytest.raises(ConfigError) as error:
        load("prod", "prod", deployer="")
    assert error.value.key == f"{SLUG}:deployerObjectId"


def test_computes_max_nodes_accepts_yaml_ints_and_rejects_zero():
    assert load(computeMaxNodes=5).compute_max_nodes == 5
    with pytest.raises(ConfigError, match=f"{SLUG}:computeMaxNodes: expected a whole number"):
        load(computeMaxNodes="0")


def test_slug_must_match_the_pulumi_project():
    with pytest.raises(ConfigError, match="the Pulumi project name 'churn-model'"):
        load(projectSlug="other-model")


def test_registry_id_must_be_an_azure_ml_registry():
    good = ("/subscriptions/5f2c7b1e-0000-4000-8000-000000000002/resourceGroups/rg/providers/"
            "Microsoft.MachineLearningServices/registries/mlr-shared")
    assert load(registryId=good).registry_id == good
    assert load(registryId="").registry_id == ""
    with pytest.raises(ConfigError, match=f"{SLUG}:registryId: expected empty, or an ARM id"):
        load(registryId="/subscriptions/5f2c7b1e-0000-4000-8000-000000000002/resourceGroups/rg/providers/"
     "Microsoft.ContainerRegistry/registries/notml")



@pytest.mark.parametrize("reserved", ["platform", "preview"])
def test_bootstrap_refuses_an_environment_named_like_its_own_resources(reserved):
    # rg-<slug>-platform is the bootstrap's group; `preview` is the preview identity's name
    config = {
        "azure-native:location": "westeurope",
        "churn-model-bootstrap:projectSlug": "churn-model",
        "churn-model-bootstrap:costCenter": "CC-1",
        "churn-model-bootstrap:environments": json.dumps(["dev", reserved, "prod"]),
        "churn-model-bootstrap:ciProvider": "github",
        "churn-model-bootstrap:repository": "contoso/churn-model",
    }
    with pytest.raises(ConfigError) as raised:
        load_bootstrap_settings("churn-model-bootstrap", config.get)
    assert "churn-model-bootstrap:environments" in str(raised.value)
    assert "reserved" in str(raised.value) and "\n" not in str(raised.value)

@pytest.mark.parametrize(("env", "declared", "kind"), [
    ("preprod", None, "staging"), ("preprod", "prod", "prod"), ("dev", "staging", "staging"),
    ("sandbox", None, "prod"), ("prod", "prod", "prod"),
])
def test_kind_follows_the_name_and_may_only_be_stricter(env, declared, kind):
    config = stack_config(env, declared or "dev", kind=declared)  # None: no kind key
    assert load_environment_settings(SLUG, config.get).kind == kind


@pytest.mark.parametrize(("env", "declared", "allowed"), [
    ("prod", "dev", "prod for the prod environment"),
    ("sandbox", "staging", "prod for the sandbox environment"),
    ("preprod", "dev", "staging or prod for the preprod environment"),
])
def test_a_weaker_kind_is_refused_naming_the_key(env, declared, allowed):
    with pytest.raises(ConfigError, match=f"{SLUG}:kind: expected {allowed}"):
        load(env, declared)
