"""The environment program under the plainest mock engine (outputs echo inputs, ids are
`<name>_id`), without `blueprint_infra.preview`: the program must not depend on how clever the
mocks are, because reviewers run it under their own."""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest
import yaml
from infra_fixtures import AKS_ID, DEPLOYER, SCIENTISTS, STRANGER, stack_config

from blueprint_infra import roles


class EchoMocks(pulumi.runtime.Mocks):
    def __init__(self, object_id: str):
        self.object_id = object_id
        self.resources: list[tuple[str, str, dict]] = []

    def new_resource(self, args):
        self.resources.append((args.typ, args.name, dict(args.inputs)))
        return [f"{args.name}_id", args.inputs]

    def call(self, args):
        # getClientConfig: the caller; getUserAssignedIdentity (prod deployer check): Azure
        # says the prod deploy identity is DEPLOYER.
        return {"objectId": self.object_id, "tenantId": "tenant-1",
                "subscriptionId": "sub-1", "clientId": "client-1", "principalId": DEPLOYER}


def run_plain(infra, stack, object_id, *, preview=False):
    from pulumi.runtime import settings

    settings.ROOT.set(None)
    config = yaml.safe_load((infra / f"Pulumi.{stack}.yaml").read_text())["config"]
    pulumi.runtime.set_all_config(
        {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in config.items()})
    mocks = EchoMocks(object_id)
    project = yaml.safe_load((infra / "Pulumi.yaml").read_text())["name"]
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview)

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(infra / "__main__.py"))

    error = None
    try:
        program()
    except pulumi.RunError as exc:
        error = str(exc)
    finally:
        settings.ROOT.set(None)
    azure = [r for r in mocks.resources if r[0].startswith("azure-native:")]
    return error, azure


@pytest.fixture
def infra(project):
    return project({
        "dev": stack_config("dev", "dev", aks=True),
        "prod": stack_config("prod", "prod", aks=True),
    })


def test_prod_runs_for_the_deployer_and_refuses_a_stranger(infra):
    error, resources = run_plain(infra, "prod", DEPLOYER)
    assert error is None
    types = {t for t, _, _ in resources}
    assert "azure-native:machinelearningservices:Workspace" in types
    # the bootstrap owns the resource group and prod's lock
    assert "azure-native:authorization:ManagementLockAtResourceGroupLevel" not in types
    assert "azure-native:resources:ResourceGroup" not in types
    # every resource carries the resource group's name even though the mock returns no `name`
    for token, name, inputs in resources:
        # (role assignments and diagnostic settings are extension resources: scope, not group)
        if token not in ("azure-native:authorization:RoleAssignment",
                         "azure-native:monitor:DiagnosticSetting",
                         "azure-native:resources:ResourceGroup"):
            assert inputs.get("resourceGroupName") == "rg-churn-model-prod", name
    for token, _, inputs in resources:
        if token == "azure-native:authorization:RoleAssignment" and inputs.get(
                "principalType") in roles.HUMAN_PRINCIPAL_TYPES:
            assert roles.role_guid(inputs["roleDefinitionId"]) in roles.READ_ONLY_ROLES

    error, resources = run_plain(infra, "prod", STRANGER)
    assert error and STRANGER in error and DEPLOYER in error
    assert resources == []

    error, resources = run_plain(infra, "prod", STRANGER, preview=True)
    assert error is None and resources


def test_dev_grants_the_data_scientists_on_the_workspace(infra):
    error, resources = run_plain(infra, "dev", STRANGER)
    assert error is None
    on_workspace = {
        roles.role_name(inputs["roleDefinitionId"])
        for token, _, inputs in resources
        if token == "azure-native:authorization:RoleAssignment"
        and inputs["principalId"] == SCIENTISTS and inputs["scope"] == "dev-workspace_id"
    }
    assert on_workspace == {"AzureML Data Scientist", "AzureML Compute Operator"}
    k8s = [inputs for token, _, inputs in resources
           if token == "azure-native:machinelearningservices:Compute"
           and inputs["properties"]["computeType"] == "Kubernetes"]
    assert k8s and k8s[0]["properties"]["resourceId"] == AKS_ID
