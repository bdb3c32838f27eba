"""The environment program under Pulumi's mock engine, run as `pulumi up` would run it.

Each test writes a `.cloud/infra` project per the contract, runs its real `__main__.py` through
`blueprint_infra.preview.preview_stack` (mocks answer getClientConfig with the deploying
identity) and checks the recorded resources: inventory, who gets which role where, the secure
settings, the prod deployer refusal, names, and determinism.
"""

from __future__ import annotations

import json
import re

import pytest
from infra_fixtures import (
    AKS_ID,
    DEPLOYER,
    READERS,
    SCIENTISTS,
    SLUG,
    STRANGER,
    SUBSCRIPTION,
    stack_config,
)

from blueprint_infra import naming, roles
from blueprint_infra.preview import FAKE_TENANT_ID, preview_stack

AZ = "azure-native:"
RG = f"{AZ}resources:ResourceGroup"
STORAGE = f"{AZ}storage:StorageAccount"
CONTAINER = f"{AZ}storage:BlobContainer"
VAULT = f"{AZ}keyvault:Vault"
LOGS = f"{AZ}operationalinsights:Workspace"
APPI = f"{AZ}applicationinsights:Component"
ACR = f"{AZ}containerregistry:Registry"
WORKSPACE = f"{AZ}machinelearningservices:Workspace"
COMPUTE = f"{AZ}machinelearningservices:Compute"
ASSIGNMENT = f"{AZ}authorization:RoleAssignment"
LOCK = f"{AZ}authorization:ManagementLockAtResourceGroupLevel"
TAGGABLE = {STORAGE, VAULT, LOGS, APPI, ACR, WORKSPACE, COMPUTE}
STATEFUL = {STORAGE, VAULT, LOGS, ACR, WORKSPACE}
LOOKUP = "azure-native:managedidentity:getUserAssignedIdentity"
PROD_IDENTITY = f"id-{SLUG}-prod-deploy"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KIND_OF = {"dev": "dev", "preprod": "staging", "prod": "prod"}


def run(project, env="dev", *, aks=False, deploying=None, dry_run=False, **overrides):
    infra = project({env: stack_config(env, KIND_OF.get(env, "staging"), aks=aks, **overrides)})
    return preview_stack(infra, env, deploying_object_id=deploying, dry_run=dry_run)


def azure(result):
    return [r for r in result.resources if r.type.startswith(AZ)]


def one(result, token):
    found = result.of_type(token)
    assert len(found) == 1, (token, [r.name for r in found])
    return found[0].properties


def grants(result):
    """{(principal_id, principal_type, role name, scope)} from the recorded assignments."""
    return {(a["principal_id"], a["principal_type"], a["role"], a["scope"])
            for a in result.role_assignments}


def roles_of(result, principal_id, scope=None):
    return {a["role"] for a in result.role_assignments
            if a["principal_id"] == principal_id and (scope is None or a["scope"] == scope)}


# --- inventory -------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ["dev", "preprod", "prod"])
@pytest.mark.parametrize("aks", [False, True], ids=["no-aks", "aks"])
def test_inventory_per_kind(project, env, aks):
    result = run(project, env, aks=aks, deploying=DEPLOYER)
    assert result.error is None
    counts: dict[str, int] = {}
    for r in azure(result):
        counts[r.type] = counts.get(r.type, 0) + 1
    for token in (STORAGE, CONTAINER, VAULT, LOGS, APPI, ACR, WORKSPACE):
        assert counts.get(token) == 1, token
    assert counts[COMPUTE] == (2 if aks else 1)
    # the bootstrap creates the resource group (and prod's lock); the stack only uses it
    assert RG not in counts and LOCK not in counts
    group = naming.environment_names(SLUG, env, FAKE_TENANT_ID).resource_group
    for r in azure(result):
        # role assignments and diagnostic settings are extension resources: a scope, no group
        if r.type not in (ASSIGNMENT, f"{AZ}monitor:DiagnosticSetting"):
            assert r.properties.get("resourceGroupName") == group, r.name
    assert result.outputs["resourceGroupName"] == group
    # the environment stacks never create the registry or the cluster extension (bootstrap's)
    assert not result.of_type(f"{AZ}machinelearningservices:Registry")
    assert not result.of_type(f"{AZ}kubernetesconfiguration:Extension")

    ws = one(result, WORKSPACE)
    assert ws["identity"]["type"] == "SystemAssigned"
    assert ws["systemDatastoresAuthMode"] == "identity"
    # wired to all four dependencies, by the ids the mock engine gave them
    assert ws["storageAccount"].endswith(
        f"/Microsoft.Storage/storageAccounts/{one(result, STORAGE)['accountName']}")
    assert ws["keyVault"].endswith(f"/Microsoft.KeyVault/vaults/{one(result, VAULT)['vaultName']}")
    assert ws["applicationInsights"].endswith(
        f"/Microsoft.Insights/components/{one(result, APPI)['resourceName']}")
    assert ws["containerRegistry"].endswith(
        f"/Microsoft.ContainerRegistry/registries/{one(result, ACR)['registryName']}")
    assert one(result, APPI)["workspaceResourceId"].endswith(one(result, LOGS)["workspaceName"])


def test_aks_is_attached_as_kubernetes_in_its_own_namespace(project):
    dev = run(project, "dev", aks=True)
    prod = run(project, "prod", aks=True, deploying=DEPLOYER)
    namespaces = set()
    for result in (dev, prod):
        computes = {c.properties["properties"]["computeType"]: c.properties
                    for c in result.of_type(COMPUTE)}
        assert set(computes) == {"AmlCompute", "Kubernetes"}  # never the legacy "AKS" type
        k8s = computes["Kubernetes"]["properties"]
        assert k8s["resourceId"] == AKS_ID
        namespaces.add(k8s["properties"]["namespace"])
        assert naming.AZURE_NAME_RULES["kubernetes_namespace"].match(
            k8s["properties"]["namespace"])
    assert len(namespaces) == 2  # dev and prod never share a namespace


# --- RBAC matrix -----------------------------------------------------------------------------

def test_dev_data_scientists_work_and_publish(project):
    result = run(project, "dev", deploying=STRANGER)
    ws_id = result.outputs["workspaceId"]
    assert {"AzureML Data Scientist", "AzureML Compute Operator"} <= roles_of(
        result, SCIENTISTS, ws_id)
    storage_id = next(a["scope"] for a in result.role_assignments
                      if a["scope"].endswith(one(result, STORAGE)["accountName"]))
    assert "Storage Blob Data Contributor" in roles_of(result, SCIENTISTS, storage_id)
    assert "Key Vault Secrets User" in roles_of(result, SCIENTISTS)
    assert roles_of(result, SCIENTISTS, result.outputs["registryId"]) == {"AzureML Registry User"}
    for a in result.role_assignments:
        if a["principal_id"] == SCIENTISTS:
            assert a["principal_type"] == "Group"
    # dev has no readers rows, and the workspace identity publishes to the registry
    assert not roles_of(result, READERS)
    assert roles_of(result, result.outputs["workspacePrincipalId"],
                    result.outputs["registryId"]) == {"AzureML Registry User"}


@pytest.mark.parametrize("aks", [False, True])
def test_prod_no_human_holds_a_write_role(project, aks):
    result = run(project, "prod", aks=aks, deploying=DEPLOYER)
    assert result.error is None and result.role_assignments
    for a in result.role_assignments:
        if a["principal_type"] in roles.HUMAN_PRINCIPAL_TYPES:
            assert roles.role_guid(a["role_definition_id"]) in roles.READ_ONLY_ROLES, a
    assert not roles_of(result, SCIENTISTS)  # the data scientists hold nothing in prod
    assert roles_of(result, READERS) == {"Reader", "Monitoring Reader"}
    # prod only reads from the registry
    registry = result.outputs["registryId"]
    on_registry = {a["role"] for a in result.role_assignments if a["scope"] == registry}
    assert on_registry == {"Reader"}
    # the deploy identity holds what deployment needs, as a service principal
    deployer = {(a["role"], a["principal_type"]) for a in result.role_assignments
                if a["principal_id"] == DEPLOYER}
    assert ("Storage Blob Data Contributor", "ServicePrincipal") in deployer
    assert ("Reader", "ServicePrincipal") in deployer


def test_staging_humans_only_read(project):
    result = run(project, "preprod", deploying=STRANGER)
    assert result.error is None
    human = [a for a in result.role_assignments
             if a["principal_type"] in roles.HUMAN_PRINCIPAL_TYPES]
    assert {a["principal_id"] for a in human} == {SCIENTISTS, READERS}
    for a in human:
        assert roles.role_guid(a["role_definition_id"]) in roles.READ_ONLY_ROLES, a


@pytest.mark.parametrize("env", ["dev", "preprod", "prod"])
def test_workspace_identity_gets_its_data_plane_roles(project, env):
    result = run(project, env, aks=True, deploying=DEPLOYER)
    principal = result.outputs["workspacePrincipalId"]
    assert GUID.match(principal)
    mine = [a for a in result.role_assignments if a["principal_id"] == principal]
    assert {a["principal_type"] for a in mine} == {"ServicePrincipal"}
    by_scope = {}
    for a in mine:
        by_scope.setdefault(a["scope"], set()).add(a["role"])
    storage = next(s for s in by_scope if "/Microsoft.Storage/storageAccounts/" in s)
    vault = next(s for s in by_scope if "/Microsoft.KeyVault/vaults/" in s)
    acr = next(s for s in by_scope if "/Microsoft.ContainerRegistry/registries/" in s)
    assert by_scope[storage] == {"Storage Blob Data Contributor"}
    assert by_scope[vault] == {"Key Vault Administrator"}
    assert by_scope[acr] == {"AcrPush"}
    assert by_scope[AKS_ID] == {
        "Reader", "Kubernetes Extension Contributor",
        "Azure Kubernetes Service Cluster Admin Role",
    }


def test_role_assignments_are_well_formed(project):
    result = run(project, "prod", aks=True, deploying=DEPLOYER)
    names = [a.properties["roleAssignmentName"] for a in result.of_type(ASSIGNMENT)]
    assert names and all(GUID.match(n) for n in names)
    assert len(set(names)) == len(names)
    for a in result.role_assignments:
        assert a["role_definition_id"].startswith(
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/")
        assert a["role"] in roles.ROLE_IDS, a
        assert a["scope"].startswith("/subscriptions/"), a
        assert GUID.match(a["principal_id"]), a


def test_registry_id_defaults_to_the_bootstraps_and_can_be_set(project):
    result = run(project, "dev")
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    assert result.outputs["registryId"].endswith(
        f"/resourceGroups/{names.resource_group}/providers/"
        f"Microsoft.MachineLearningServices/registries/{names.ml_registry}")
    shared = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ml-shared/providers/"
              "Microsoft.MachineLearningServices/registries/mlr-shared")
    result = run(project, "dev", registryId=shared)
    assert result.outputs["registryId"] == shared
    assert roles_of(result, SCIENTISTS, shared) == {"AzureML Registry User"}


# --- the prod deployer -----------------------------------------------------------------------

def test_prod_refuses_a_stranger_on_a_real_update(project):
    result = run(project, "prod", deploying=STRANGER, dry_run=False)
    assert result.error is not None
    assert "\n" not in result.error
    assert STRANGER in result.error and DEPLOYER in result.error
    assert f"{SLUG}:deployerObjectId" in result.error
    assert azure(result) == []  # refused before any Azure resource was registered


def test_prod_accepts_the_configured_deployer(project):
    result = run(project, "prod", deploying=DEPLOYER.upper(), dry_run=False)
    assert result.error is None
    assert result.outputs["deployerCheck"].startswith("ok")
    assert result.of_type(WORKSPACE)


def test_prod_preview_by_a_stranger_reports_instead_of_refusing(project):
    result = run(project, "prod", deploying=STRANGER, dry_run=True)
    assert result.error is None
    assert STRANGER in result.outputs["deployerCheck"]
    assert "refused" in result.outputs["deployerCheck"]
    assert any(STRANGER in w for w in result.warnings)
    assert result.of_type(WORKSPACE)


def test_placeholder_deployer_is_refused_for_real_and_accepted_in_a_preview(project):
    real = run(project, "prod", deployer=naming.PLACEHOLDER_GUID, deploying=naming.PLACEHOLDER_GUID)
    assert real.error and "placeholder" in real.error and not azure(real)
    preview = run(project, "prod", deployer=naming.PLACEHOLDER_GUID, dry_run=True)
    assert preview.error is None and "placeholder" in preview.outputs["deployerCheck"]


ATTACKER = "66666666-6666-4666-8666-666666666666"


@pytest.mark.parametrize("dry_run", [False, True])
def test_overriding_the_configured_deployer_cannot_pass(project, dry_run):
    # `pulumi up -c churn-model:deployerObjectId=<attacker>` run as the attacker: config and
    # caller agree, but Azure still says the prod deploy identity is DEPLOYER.
    infra = project({"prod": stack_config("prod", "prod", deployer=ATTACKER)})
    result = preview_stack(infra, "prod", deploying_object_id=ATTACKER, dry_run=dry_run,
                           azure_identities={PROD_IDENTITY: DEPLOYER})
    if dry_run:
        assert result.error is None
        report = result.outputs["deployerCheck"]
        assert ATTACKER in report and DEPLOYER in report and "refused" in report
        return
    assert result.error is not None and "\n" not in result.error
    assert ATTACKER in result.error and DEPLOYER in result.error
    assert PROD_IDENTITY in result.error and f"{SLUG}:deployerObjectId" in result.error
    assert azure(result) == []


@pytest.mark.parametrize(("azure_says", "caller", "expected"), [
    (STRANGER, DEPLOYER, "is not the principal id of the bootstrap's deploy identity"),
    ("", DEPLOYER, "could not look up the prod deploy identity"),
    (DEPLOYER, STRANGER, "is not the configured prod deployer"),
])
def test_prod_needs_token_azure_and_config_to_agree(project, azure_says, caller, expected):
    infra = project({"prod": stack_config("prod", "prod")})
    result = preview_stack(infra, "prod", deploying_object_id=caller, dry_run=False,
                           azure_identities={PROD_IDENTITY: azure_says})
    assert result.error is not None and expected in result.error, result.error
    assert "\n" not in result.error and azure(result) == []


def test_prod_passes_when_token_azure_and_config_agree(project):
    infra = project({"prod": stack_config("prod", "prod")})
    result = preview_stack(infra, "prod", deploying_object_id=DEPLOYER, dry_run=False,
                           azure_identities={PROD_IDENTITY: DEPLOYER.upper()})
    assert result.error is None
    assert result.outputs["deployerCheck"].startswith("ok") and PROD_IDENTITY in (
        result.outputs["deployerCheck"])


@pytest.mark.parametrize(
    ("environment", "stack_kind", "key", "expected"),
    [
        ("prodx", "prod", "environment", "'prod'"),  # renamed: no longer the stack's name
        ("prodx", "staging", "kind", "prod for the prodx environment"),  # unknown name: prod
        ("prod", "dev", "kind", "prod for the prod environment"),  # relabelled weaker
        ("preprod", "dev", "kind", "staging or prod for the preprod environment"),
    ],
)
def test_a_stack_relabelled_weaker_is_refused_before_any_resource(
    project, environment, stack_kind, key, expected
):
    # A team edits a stack file to escape its environment's rules; the stack's name still says
    # what it is.
    stack = "prod" if environment.startswith("prod") else environment
    infra = project({stack: stack_config(environment, stack_kind)})
    for dry_run in (True, False):
        result = preview_stack(infra, stack, deploying_object_id=STRANGER, dry_run=dry_run)
        assert result.error is not None and "\n" not in result.error
        assert f"{SLUG}:{key}" in result.error and expected in result.error
        assert azure(result) == []


def test_a_stack_may_be_stricter_than_its_name(project):
    infra = project({"preprod": stack_config("preprod", "prod")})
    result = preview_stack(infra, "preprod", deploying_object_id=DEPLOYER, dry_run=False)
    assert result.error is None and result.kind == "prod"
    assert one(result, WORKSPACE)["hbiWorkspace"] is True
    assert one(result, STORAGE) and all(r.protect for r in azure(result) if r.type in STATEFUL)
    # a prod-kind stack is checked against its own environment's deploy identity
    [lookup] = [i for i in result.invokes if i["token"] == LOOKUP]
    assert lookup["args"]["resourceName"] == f"id-{SLUG}-preprod-deploy"


@pytest.mark.parametrize("env", ["dev", "preprod"])
def test_non_prod_stacks_may_be_deployed_by_engineers(project, env):
    result = run(project, env, deploying=STRANGER, dry_run=False)
    assert result.error is None and result.of_type(WORKSPACE)


# --- secure settings -------------------------------------------------------------------------

@pytest.mark.parametrize("env", ["dev", "preprod", "prod"])
def test_secure_defaults(project, env):
    result = run(project, env, deploying=DEPLOYER)
    prod = env == "prod"
    st = one(result, STORAGE)
    assert st["allowBlobPublicAccess"] is False
    assert st["minimumTlsVersion"] == "TLS1_2"
    assert st["allowSharedKeyAccess"] is False
    assert st["enableHttpsTrafficOnly"] is True
    assert one(result, CONTAINER)["publicAccess"] == "None"
    kv = one(result, VAULT)["properties"]
    assert kv["enableRbacAuthorization"] is True and kv["enablePurgeProtection"] is True
    acr = one(result, ACR)
    assert acr["adminUserEnabled"] is False and acr["anonymousPullEnabled"] is False
    ws = one(result, WORKSPACE)
    assert ws["publicNetworkAccess"] == ("Disabled" if prod else "Enabled")
    assert ws["managedNetwork"]["isolationMode"] == (
        "AllowOnlyApprovedOutbound" if prod else "AllowInternetOutbound")
    cluster = next(c.properties["properties"] for c in result.of_type(COMPUTE)
                   if c.properties["properties"]["computeType"] == "AmlCompute")
    assert cluster["disableLocalAuth"] is True
    assert cluster["properties"]["scaleSettings"]["minNodeCount"] == 0
    assert cluster["properties"]["enableNodePublicIp"] is False
    for r in azure(result):
        if r.type in STATEFUL:
            assert r.protect is prod, (r.type, r.protect)
    assert not result.of_type(LOCK)  # prod's lock is the bootstrap's (test_bootstrap.py)


def test_public_network_access_is_configurable_per_environment(project):
    opened = run(project, "prod", deploying=DEPLOYER, publicNetworkAccess="Enabled")
    assert one(opened, WORKSPACE)["publicNetworkAccess"] == "Enabled"
    closed = run(project, "dev", publicNetworkAccess="Disabled")
    ws = one(closed, WORKSPACE)
    assert ws["publicNetworkAccess"] == "Disabled"
    assert ws["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_tags_on_everything_taggable(project, env):
    result = run(project, env, aks=True, deploying=DEPLOYER)
    for r in azure(result):
        if r.type in TAGGABLE:
            assert r.properties.get("tags") == {
                "project": SLUG, "environment": env, "cost-center": "CC-1234",
                "managed-by": "pulumi",
            }, r.name


# --- names -----------------------------------------------------------------------------------

NAME_FIELDS = {
    STORAGE: ("accountName", "storage_account"),
    VAULT: ("vaultName", "key_vault"),
    ACR: ("registryName", "container_registry"),
    WORKSPACE: ("workspaceName", "workspace"),
    LOGS: ("workspaceName", "log_analytics"),
    APPI: ("resourceName", "app_insights"),
    CONTAINER: ("containerName", "blob_container"),
}


@pytest.mark.parametrize("slug", [
    "abc",
    "a" * 40,
    "x1-y2-z3-" + "q" * 31,
    "churn-model-for-the-enterprise-division",
    "m-1-2-3-4-5-6-7-8-9-0-a-b-c-d-e-f-g-h-i",
])
@pytest.mark.parametrize("env", ["dev", "preprod9xy", "prod"])
def test_recorded_names_follow_azure_rules(project, slug, env):
    kind = naming.environment_kind(env)
    infra = project({env: stack_config(env, kind, slug=slug, aks=True)}, slug=slug)
    result = preview_stack(infra, env, deploying_object_id=DEPLOYER, dry_run=True)
    assert result.error is None, result.error
    for token, (key, rule) in NAME_FIELDS.items():
        name = one(result, token)[key]
        assert naming.AZURE_NAME_RULES[rule].match(name), (rule, name)
    assert naming.AZURE_NAME_RULES["resource_group"].match(
        one(result, WORKSPACE)["resourceGroupName"])
    for compute in result.of_type(COMPUTE):
        rule = ("kubernetes_compute" if compute.properties["properties"]["computeType"]
                == "Kubernetes" else "compute_cluster")
        assert naming.AZURE_NAME_RULES[rule].match(compute.properties["computeName"])
    # the program names exactly what the shared naming module names
    assert one(result, STORAGE)["accountName"] == naming.environment_names(
        slug, env, FAKE_TENANT_ID).storage_account


def test_globally_unique_names_differ_between_environments_and_tenants(project):
    dev, prod = run(project, "dev"), run(project, "prod", deploying=DEPLOYER)
    for token, (key, _) in NAME_FIELDS.items():
        if token in (STORAGE, VAULT, ACR):
            assert one(dev, token)[key] != one(prod, token)[key]
    infra = project({"dev": stack_config("dev", "dev")})
    other = preview_stack(infra, "dev", tenant_id="99999999-9999-4999-8999-999999999999")
    assert one(other, STORAGE)["accountName"] != one(dev, STORAGE)["accountName"]


# --- determinism -----------------------------------------------------------------------------

def _snapshot(result):
    return sorted((r.type, r.name, json.dumps(r.properties, sort_keys=True), r.protect)
                  for r in result.resources)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_two_runs_give_identical_inputs(project, env):
    infra = project({e: stack_config(e, KIND_OF[e], aks=True) for e in ("dev", "prod")})
    first = preview_stack(infra, env, deploying_object_id=DEPLOYER, dry_run=False)
    other = preview_stack(infra, "dev" if env == "prod" else env)  # interleave another run
    second = preview_stack(infra, env, deploying_object_id=DEPLOYER, dry_run=False)
    assert first.error is None and other.error is None
    assert _snapshot(first) == _snapshot(second)
    assert first.outputs == second.outputs


@pytest.mark.parametrize("env", ["dev", "preprod", "prod"])
def test_invokes_are_client_config_and_for_prod_the_identity_lookup(project, env):
    result = run(project, env, aks=True, deploying=DEPLOYER)
    tokens = [i["token"] for i in result.invokes]
    if env != "prod":
        assert tokens == ["azure-native:authorization:getClientConfig"]
        return
    assert tokens == ["azure-native:authorization:getClientConfig", LOOKUP]
    assert result.invokes[1]["args"] == {
        "resourceGroupName": naming.project_names(SLUG, FAKE_TENANT_ID).resource_group,
        "resourceName": PROD_IDENTITY,
    }


# --- bad config ------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "key", "value", "expected"), [
    ("dev", "dataScientistsGroupId", "data-scientists", "GUID"),
    ("dev", "dataScientistsGroupId", None, "GUID"),
    ("dev", "kind", "qa", "one of dev, staging, prod"),
    ("prod", "kind", "dev", "prod for the prod environment"),
    ("dev", "aksClusterId",
     f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/"
     "virtualMachines/vm1", "managedClusters"),
    ("prod", "deployerObjectId", None, "object id"),
    ("prod", "deployerObjectId", "ci-bot", "object id"),
    ("dev", "readersGroupId", "readers", "GUID"),
    ("dev", "publicNetworkAccess", "Open", "Enabled or Disabled"),
    ("dev", "computeMaxNodes", "lots", "whole number"),
    ("dev", "costCenter", None, "cost center"),
    ("dev", "projectSlug", "Churn_Model", "lowercase"),
    ("dev", "registryId", "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/x",
     "registries"),
    ("dev", "azure-native:location", "moon-base-1", "Azure region"),
])
def test_bad_config_fails_at_the_start_with_one_line(project, env, key, value, expected):
    result = run(project, env, deploying=DEPLOYER, **{key: value})
    assert result.error is not None
    assert "\n" not in result.error and "Traceback" not in result.error
    full_key = key if ":" in key else f"{SLUG}:{key}"
    assert full_key in result.error
    assert expected in result.error
    assert azure(result) == []


# --- policies over what the program records ----------------------------------------------------

@pytest.mark.parametrize("env", ["dev", "preprod", "prod"])
@pytest.mark.parametrize("aks", [False, True], ids=["no-aks", "aks"])
def test_the_program_passes_the_policies(project, env, aks):
    result = run(project, env, aks=aks, deploying=DEPLOYER)
    assert result.error is None
    assert [v for v in result.violations if v.enforcement == "mandatory"] == []


def test_a_strangers_prod_preview_is_a_policy_violation(project):
    result = run(project, "prod", deploying=STRANGER, dry_run=True)
    assert [v for v in result.violations if STRANGER in v.message]


def test_prod_refuses_when_azure_cannot_be_asked(project, monkeypatch):
    # e.g. the identity was deleted, or the caller may not read it: no proof, no deployment
    from blueprint_infra.preview import RecordingMocks

    answer = RecordingMocks.call

    def forbidden(self, args):
        if args.token == LOOKUP:
            raise RuntimeError("AuthorizationFailed: no read access")
        return answer(self, args)

    monkeypatch.setattr(RecordingMocks, "call", forbidden)
    infra = project({"prod": stack_config("prod", "prod")})
    real = preview_stack(infra, "prod", deploying_object_id=DEPLOYER, dry_run=False)
    # Pulumi's SDK fails the run with Azure's own error; the check refused before registering
    # anything, so no resource reached the engine.
    assert real.error and "AuthorizationFailed" in real.error
    assert azure(real) == []
