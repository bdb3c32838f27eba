"""The bootstrap program under mocks: every environment's resource group (prod: locked), deploy
identities with OIDC trust and no secrets, each holding rights on its own environment only, a
read-only preview identity for dev and staging, per-environment state containers and secrets
keys, the registry. Assertions are on the recorded role assignments: principal, role, scope,
condition."""

from __future__ import annotations

import pytest
from infra_fixtures import AKS_ID, SLUG, SUBSCRIPTION

from blueprint_infra import naming, rbac, roles
from blueprint_infra.preview import FAKE_TENANT_ID, preview_stack

AZ = "azure-native:"
IDENTITY = f"{AZ}managedidentity:UserAssignedIdentity"
FEDERATED = f"{AZ}managedidentity:FederatedIdentityCredential"
ASSIGNMENT = f"{AZ}authorization:RoleAssignment"
RESOURCE_GROUP = f"{AZ}resources:ResourceGroup"
LOCK = f"{AZ}authorization:ManagementLockAtResourceGroupLevel"
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


def test_one_deploy_identity_per_environment_and_a_preview_identity(project):
    result = run(project)
    assert result.error is None
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    created = {r.properties["resourceName"] for r in result.of_type(IDENTITY)}
    assert created == {names.deploy_identity(e) for e in ("dev", "preprod", "prod")} | {
        names.preview_identity}
    for name in created:
        assert naming.AZURE_NAME_RULES["identity"].match(name)


def credentials_by_identity(result) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for r in result.of_type(FEDERATED):
        found.setdefault(r.properties["resourceName"], []).append(r.properties)
    return found


def test_github_oidc_subjects_and_no_secrets(project):
    result = run(project)
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    creds = credentials_by_identity(result)
    # exactly one credential per identity: prod's trusts only jobs in the `prod` environment,
    # the preview identity only pull requests
    assert {name: [c["subject"] for c in cs] for name, cs in creds.items()} == {
        names.deploy_identity("dev"): ["repo:contoso/churn-model:environment:dev"],
        names.deploy_identity("preprod"): ["repo:contoso/churn-model:environment:preprod"],
        names.deploy_identity("prod"): ["repo:contoso/churn-model:environment:prod"],
        names.preview_identity: ["repo:contoso/churn-model:pull_request"],
    }
    for cred in (c for cs in creds.values() for c in cs):
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
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    creds = credentials_by_identity(result)
    assert {c["issuer"] for cs in creds.values() for c in cs} == {
        f"https://vstoken.dev.azure.com/{ADO_ORG}"}
    assert {name: [c["subject"] for c in cs] for name, cs in creds.items()} == {
        **{names.deploy_identity(e): [f"sc://contoso/Churn Model/{SLUG}-{e}"]
           for e in ("dev", "preprod", "prod")},
        names.preview_identity: [f"sc://contoso/Churn Model/{SLUG}-preview"],
    }


def test_azure_devops_placeholder_org_is_refused_for_real_only(project):
    real = run(project, ciProvider="azure-devops", adoOrganizationId=naming.PLACEHOLDER_GUID)
    assert real.error and f"{SLUG}-bootstrap:adoOrganizationId" in real.error
    assert not [r for r in real.resources if r.type.startswith(AZ)]
    preview = run(project, ciProvider="azure-devops", dry_run=True)
    assert preview.error is None and any("adoOrganizationId" in w for w in preview.warnings)


# --- who holds what where: every assignment, in every layout the template offers -------------

SHARED_REGISTRY = (f"{SUBSCRIPTION_SCOPE}/resourceGroups/rg-ml/providers/"
                   "Microsoft.MachineLearningServices/registries/mlr-shared")
LAYOUTS = {
    "github-3envs": {},
    "github-3envs-aks-shared-registry": {"aksClusterId": AKS_ID,
                                        "sharedRegistryId": SHARED_REGISTRY},
    "ado-3envs-aks": {"ciProvider": "azure-devops", "adoOrganizationId": ADO_ORG,
                      "aksClusterId": AKS_ID},
    "github-2envs": {"environments": ["dev", "prod"]},
    "github-4envs-aks": {"environments": ["dev", "test", "uat", "prod"], "aksClusterId": AKS_ID},
}


def holders(result) -> dict[str, str]:
    """principal id -> holder: the environment of a deploy identity, or "preview"."""
    found = {d["principalId"]: env for env, d in result.outputs["deployIdentities"].items()}
    found[result.outputs["previewIdentity"]["principalId"]] = "preview"
    return found


def scope_owner(scope: str, result, environments: list[str]) -> tuple[str, str | None]:
    """(scope key, environment it belongs to or None when shared), from the ARM id alone."""
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    rg = f"{SUBSCRIPTION_SCOPE}/resourceGroups/"
    for env in environments:
        if scope == rg + naming.environment_resource_group(SLUG, env):
            return "resource_group", env
        if scope.endswith(f"/storageAccounts/{names.state_storage_account}/blobServices/"
                          f"default/containers/{names.state_container(env)}"):
            return "state_container", env
        if scope.endswith(f"/vaults/{names.secrets_key_vault}/keys/{names.secrets_key(env)}"):
            return "secrets_key", env
        if scope.endswith(f"/userAssignedIdentities/{names.deploy_identity(env)}"):
            return "deploy_identity_resource", env
    if scope == result.outputs["registryId"]:
        return "ml_registry", None
    if scope == AKS_ID:
        return "aks_cluster", None
    raise AssertionError(f"unexpected scope {scope}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_assignment_is_scoped_to_its_own_environment(project, layout):
    overrides = LAYOUTS[layout]
    result = run(project, **overrides)
    assert result.error is None, result.error
    environments = overrides.get("environments", ["dev", "preprod", "prod"])
    who = holders(result)
    recorded = []
    for a in result.role_assignments:
        # nothing at subscription scope, nothing above a resource group
        assert a["scope"].startswith(f"{SUBSCRIPTION_SCOPE}/resourceGroups/"), a
        assert a["principal_type"] == "ServicePrincipal", a
        holder = who[a["principal_id"]]
        key, owner = scope_owner(a["scope"], result, environments)
        recorded.append((holder, a["role"], key, owner))
        if owner is not None and holder != "preview":
            assert owner == holder, a  # a deploy identity only on its own environment
        if owner is not None and naming.environment_kind(owner) == "prod":
            assert holder == owner, a  # nobody else holds anything of prod
        if holder == "preview":
            assert a["role"] in ("Reader", "Storage Blob Data Reader", "Key Vault Crypto User"), a
            assert naming.environment_kind(owner) != "prod", a
    # the program creates exactly the assignments docs/rbac.md is generated from
    expected = [(x.holder, x.role, x.scope, x.environment)
                for x in rbac.bootstrap_assignments(environments,
                                                    aks="aksClusterId" in overrides)]
    assert sorted(recorded, key=str) == sorted(expected, key=str)
    assert not result.of_type(f"{AZ}authorization:RoleDefinition")  # no custom roles


@pytest.mark.parametrize("layout", ["github-3envs", "github-4envs-aks"])
def test_rbac_administrator_carries_its_abac_condition(project, layout):
    overrides = LAYOUTS[layout]
    result = run(project, **overrides)
    environments = overrides.get("environments", ["dev", "preprod", "prod"])
    who = holders(result)
    rbac_admin = roles.ROLE_IDS[rbac.RBAC_ADMINISTRATOR]
    seen = set()
    for r in result.of_type(ASSIGNMENT):
        p = r.properties
        if roles.role_guid(p["roleDefinitionId"]) != rbac_admin:
            assert "condition" not in p or p["condition"] is None, r.name
            continue
        holder = who[p["principalId"]]
        key, _ = scope_owner(p["scope"], result, environments)
        kind = naming.environment_kind(holder)
        assert p["conditionVersion"] == "2.0"
        assert p["condition"] == rbac.rbac_admin_condition(kind, key)
        assert "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]" in p["condition"]
        seen.add((holder, key))
    assert {h for h, _ in seen} == set(environments)


def test_environment_resource_groups_are_the_bootstraps_with_a_lock_on_prod(project):
    result = run(project)
    groups = {r.properties["resourceGroupName"]: r for r in result.of_type(RESOURCE_GROUP)}
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    assert set(groups) == {names.resource_group} | {
        naming.environment_resource_group(SLUG, e) for e in ("dev", "preprod", "prod")}
    assert all(g.protect for g in groups.values())
    locks = {r.properties["resourceGroupName"]: r.properties for r in result.of_type(LOCK)}
    assert set(locks) == {names.resource_group, f"rg-{SLUG}-prod"}
    assert {lock["level"] for lock in locks.values()} == {"CanNotDelete"}
    environments = result.outputs["environments"]
    assert environments["prod"]["resourceGroupId"] == (
        f"{SUBSCRIPTION_SCOPE}/resourceGroups/rg-{SLUG}-prod")
    assert {e: v["kind"] for e, v in environments.items()} == {
        "dev": "dev", "preprod": "staging", "prod": "prod"}


def test_preview_identity_only_reads_and_never_prod(project):
    result = run(project)
    preview = result.outputs["previewIdentity"]["principalId"]
    mine = [a for a in result.role_assignments if a["principal_id"] == preview]
    assert {a["principal_type"] for a in mine} == {"ServicePrincipal"}
    names = naming.project_names(SLUG, FAKE_TENANT_ID)
    by_scope = {a["scope"]: a["role"] for a in mine}
    for env in ("dev", "preprod"):
        assert by_scope[f"{SUBSCRIPTION_SCOPE}/resourceGroups/rg-{SLUG}-{env}"] == "Reader"
        [blob] = [r for s, r in by_scope.items() if s.endswith(names.state_container(env))]
        assert blob == "Storage Blob Data Reader"  # no write: `pulumi preview` takes no lock
        [key] = [r for s, r in by_scope.items()
                 if s.endswith(f"/keys/{names.secrets_key(env)}")]
        assert key == "Key Vault Crypto User"
    assert not [s for s in by_scope if s.rsplit("/", 1)[-1].endswith("-prod")]
    assert len(mine) == 6
    assert result.outputs["previewIdentity"]["environments"] == ["dev", "preprod"]
    assert set(result.outputs["previewIdentity"]["ciVariables"]) == {"dev", "preprod"}
    for env, variables in result.outputs["previewIdentity"]["ciVariables"].items():
        assert variables == {k: result.outputs["ciVariables"][env][k]
                             for k in ("PULUMI_BACKEND_URL", "PULUMI_SECRETS_PROVIDER")}


def test_state_backend_is_per_environment_private_and_protected(project):
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
    containers = result.of_type(f"{AZ}storage:BlobContainer")
    keys = result.of_type(f"{AZ}keyvault:Key")
    envs = ("dev", "preprod", "prod")
    assert {c.properties["containerName"] for c in containers} == {
        names.state_container(e) for e in envs}
    assert {k.properties["keyName"] for k in keys} == {names.secrets_key(e) for e in envs}
    assert all(c.protect and c.properties["publicAccess"] == "None" for c in containers)
    assert all(k.protect for k in keys)
    for env in envs:
        out = result.outputs["environments"][env]
        variables = result.outputs["ciVariables"][env]
        backend = (f"azblob://{names.state_container(env)}"
                   f"?storage_account={names.state_storage_account}")
        provider = (f"azurekeyvault://{names.secrets_key_vault}.vault.azure.net/keys/"
                    f"{names.secrets_key(env)}")
        assert out["backendUrl"] == variables["PULUMI_BACKEND_URL"] == backend
        assert out["secretsProvider"] == variables["PULUMI_SECRETS_PROVIDER"] == provider
        assert variables["AZURE_CLIENT_ID"] == out["deployIdentityClientId"] == (
            result.outputs["deployIdentities"][env]["clientId"])
        assert variables["AZURE_RESOURCE_GROUP"] == out["resourceGroupName"] == f"rg-{SLUG}-{env}"
        assert variables["AZUREML_WORKSPACE"] == naming.environment_names(
            SLUG, env, FAKE_TENANT_ID).workspace


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
