"""The bootstrap program under mocks: deploy identities with OIDC trust and no secrets, a
read-only preview identity, their role assignments, the state backend, the registry."""

from __future__ import annotations

import pytest
from infra_fixtures import AKS_ID, SLUG, SUBSCRIPTION

from blueprint_infra import naming, rbac, roles
from blueprint_infra.preview import FAKE_TENANT_ID, preview_stack

AZ = "azure-native:"
IDENTITY = f"{AZ}managedidentity:UserAssignedIdentity"
FEDERATED = f"{AZ}managedidentity:FederatedIdentityCredential"
ASSIGNMENT = f"{AZ}authorization:RoleAssignment"
SUBSCRIPTION_SCOPE = f"/subscriptions/{SUBSCRIPTION}"
ADO_ORG = "abcdef01-2345-4678-9abc-def012345678"


def bootstrap_config(**overrides) -> dict:
    ns = f"{SLUG}-bootstrap"
    config = {
        "azure-native:location": "westeurope",
        f"{ns}:projectSlug": SLUG,
        f"{ns}:costCenter": "CC-1234",
        f"{ns}:environments": ["dev", "preprod", "prod"],
        f"{ns}:ciProvider": "github",
        f"{ns}:repository": "contoso/churn-model",
        f"{ns}:aksClusterId": "",
    }
    for key, value in overrides.items():
        if value is None:
            config.pop(f"{ns}:{key}", None)
        else:
            config[f"{ns}:{key}"] = value
    return config


def run(project, *, dry_run=False, **overrides):
    infra = project({"platform": bootstrap_config(**overrides)}, bootstrap=True)
    return preview_stack(infra, "platform", dry_run=dry_run)


def identities(result) -> dict[str, str]:
    """identity name -> principal id (as the mock engine assigned it)."""
    return {
        d["name"]: d["principalId"]
        for d in [*result.outputs["deployIdentities"].values(), result.outputs["previewIdentity"]]
    }


def test_one_deploy_identity_per_environment_and_a_preview_identity(project):
    result = run(project)
    assert result.error is None
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    created = {r.properties["resourceName"] for r in result.of_type(IDENTITY)}
    assert created == {names.deploy_identity(e) for e in ("dev", "preprod", "prod")} | {
        names.preview_identity}
    for name in created:
        assert naming.AZURE_NAME_RULES["identity"].match(name)


def test_github_oidc_subjects_and_no_secrets(project):
    result = run(project)
    creds = {r.properties["federatedIdentityCredentialResourceName"]: r.properties
             for r in result.of_type(FEDERATED)}
    subjects = {c["subject"] for c in creds.values()}
    assert subjects == {
        "repo:contoso/churn-model:environment:dev",
        "repo:contoso/churn-model:environment:preprod",
        "repo:contoso/churn-model:environment:prod",
        "repo:contoso/churn-model:pull_request",
    }
    for cred in creds.values():
        assert cred["issuer"] == "https://token.actions.githubusercontent.com"
        assert cred["audiences"] == ["api://AzureADTokenExchange"]
    # no password, certificate or app registration secret anywhere
    for r in result.resources:
        assert "secret" not in r.type.lower() and "password" not in str(r.properties).lower()
    assert result.outputs["previewIdentity"]["oidcSubject"].endswith(":pull_request")


def test_azure_devops_service_connections(project):
    result = run(project, ciProvider="azure-devops", repository="contoso/Churn Model",
                 adoOrganizationId=ADO_ORG)
    assert result.error is None
    creds = [r.properties for r in result.of_type(FEDERATED)]
    assert {c["issuer"] for c in creds} == {f"https://vstoken.dev.azure.com/{ADO_ORG}"}
    assert {c["subject"] for c in creds} == {
        f"sc://contoso/Churn Model/{SLUG}-{e}" for e in ("dev", "preprod", "prod", "preview")
    }


def test_azure_devops_placeholder_org_is_refused_for_real_only(project):
    real = run(project, ciProvider="azure-devops", adoOrganizationId=naming.PLACEHOLDER_GUID)
    assert real.error and f"{SLUG}-bootstrap:adoOrganizationId" in real.error
    assert not [r for r in real.resources if r.type.startswith(AZ)]
    preview = run(project, ciProvider="azure-devops", dry_run=True)
    assert preview.error is None and any("adoOrganizationId" in w for w in preview.warnings)


def test_deploy_identity_roles_and_the_abac_condition(project):
    result = run(project)
    ids = identities(result)
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    prod = ids[names.deploy_identity("prod")]
    at_subscription = {a["role"] for a in result.role_assignments
                       if a["principal_id"] == prod and a["scope"] == SUBSCRIPTION_SCOPE}
    assert at_subscription == {
        "Contributor", "Role Based Access Control Administrator",
        f"{SLUG} resource lock operator",
    }
    rbac_admin = next(
        r.properties for r in result.of_type(ASSIGNMENT)
        if r.properties["principalId"] == prod and roles.role_guid(
            r.properties["roleDefinitionId"]) == roles.ROLE_IDS[
                "Role Based Access Control Administrator"]
    )
    assert rbac_admin["conditionVersion"] == "2.0"
    condition = rbac_admin["condition"]
    for role in ("Owner", "User Access Administrator", "Role Based Access Control Administrator",
                 "Contributor"):
        assert roles.ROLE_IDS[role] not in condition, role
    for guid in rbac.assignable_role_ids():
        assert guid in condition
    lock_role = one_type(result, f"{AZ}authorization:RoleDefinition")
    assert lock_role["permissions"] == [{"actions": ["Microsoft.Authorization/locks/*"]}]
    assert lock_role["assignableScopes"] == [SUBSCRIPTION_SCOPE]


def test_preview_identity_only_reads_azure(project):
    result = run(project)
    preview = result.outputs["previewIdentity"]["principalId"]
    mine = [a for a in result.role_assignments if a["principal_id"] == preview]
    assert {a["principal_type"] for a in mine} == {"ServicePrincipal"}
    at_subscription = {a["role"] for a in mine if a["scope"] == SUBSCRIPTION_SCOPE}
    assert at_subscription == {"Reader"}
    # beyond that only the state container and the secrets key, nothing on resources
    others = {a["scope"] for a in mine if a["scope"] != SUBSCRIPTION_SCOPE}
    assert all("/containers/pulumi-state" in s or "/Microsoft.KeyVault/vaults/" in s
               for s in others)


def test_state_backend_is_private_and_protected(project):
    result = run(project)
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    storage = next(r for r in result.of_type(f"{AZ}storage:StorageAccount"))
    assert storage.properties["accountName"] == names.state_storage_account
    assert storage.properties["allowBlobPublicAccess"] is False
    assert storage.properties["allowSharedKeyAccess"] is False
    assert storage.properties["minimumTlsVersion"] == "TLS1_2"
    assert storage.protect
    vault = next(r for r in result.of_type(f"{AZ}keyvault:Vault"))
    assert vault.properties["properties"]["enableRbacAuthorization"] is True
    assert vault.properties["properties"]["enablePurgeProtection"] is True
    assert vault.protect
    assert result.outputs["stateBackendUrl"] == (
        f"azblob://{names.state_container}?storage_account={names.state_storage_account}")
    assert result.outputs["secretsProvider"] == (
        f"azurekeyvault://{names.secrets_key_vault}.vault.azure.net/keys/pulumi-secrets")


def test_registry_is_created_unless_shared(project):
    own = run(project)
    registry = one_type(own, f"{AZ}machinelearningservices:Registry")
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    assert registry["registryName"] == names.ml_registry
    assert registry["resourceGroupName"] == names.resource_group
    assert own.outputs["registryId"].endswith(f"/registries/{names.ml_registry}")
    shared_id = (f"{SUBSCRIPTION_SCOPE}/resourceGroups/rg-ml/providers/"
                 "Microsoft.MachineLearningServices/registries/mlr-shared")
    shared = run(project, sharedRegistryId=shared_id)
    assert not shared.of_type(f"{AZ}machinelearningservices:Registry")
    assert shared.outputs["registryId"] == shared_id
    # hand-over: every environment stack gets the deployer and the registry
    config = shared.outputs["stackConfig"]
    assert set(config) == {"dev", "preprod", "prod"}
    assert config["prod"][f"{SLUG}:registryId"] == shared_id
    assert config["prod"][f"{SLUG}:deployerObjectId"] == (
        shared.outputs["deployIdentities"]["prod"]["principalId"])


def test_azureml_extension_is_installed_once_when_aks_is_set(project):
    without = run(project)
    assert not without.of_type(f"{AZ}kubernetesconfiguration:Extension")
    result = run(project, aksClusterId=AKS_ID)
    ext = one_type(result, f"{AZ}kubernetesconfiguration:Extension")
    assert ext["extensionType"] == "Microsoft.AzureML.Kubernetes"
    assert ext["clusterName"] == "aks-shared" and ext["resourceGroupName"] == "rg-shared-aks"
    assert set(result.outputs["kubernetesNamespaces"]) == {"dev", "preprod", "prod"}


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("environments", ["dev"], "must contain dev and prod"),
    ("ciProvider", "jenkins", "github or azure-devops"),
    ("repository", "not a repo", "ORG/REPO"),
    ("aksClusterId", "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/a",
     "managedClusters"),
    ("projectSlug", "other-model", "churn-model-bootstrap"),
    ("sharedRegistryId",
     "/subscriptions/5f2c7b1e-0000-4000-8000-000000000002/resourceGroups/rg/providers/"
     "Microsoft.ContainerRegistry/registries/notml",
     "Microsoft.MachineLearningServices/registries/<name>"),
])
def test_bad_bootstrap_config_is_one_line(project, key, value, expected):
    result = run(project, **{key: value})
    assert result.error and "\n" not in result.error
    assert f"{SLUG}-bootstrap:{key}" in result.error and expected in result.error
    assert not [r for r in result.resources if r.type.startswith(AZ)]


def one_type(result, token):
    found = result.of_type(token)
    assert len(found) == 1, token
    return found[0].properties


def test_only_the_prod_identity_may_manage_locks(project):
    result = run(project)
    ids = identities(result)
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    lock_role = f"{SLUG} resource lock operator"
    holders = {a["principal_id"] for a in result.role_assignments if a["role"] == lock_role}
    assert holders == {ids[names.deploy_identity("prod")]}
    dev = ids[names.deploy_identity("dev")]
    assert {a["role"] for a in result.role_assignments
            if a["principal_id"] == dev and a["scope"] == SUBSCRIPTION_SCOPE} == {
        "Contributor", "Role Based Access Control Administrator"}
