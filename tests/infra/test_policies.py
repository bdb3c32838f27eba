"""The policies, on inputs recorded from the real pulumi-azure-native SDK under Pulumi's mocks.

Each case builds the resources with the SDK classes the program uses, records what the provider
would receive (type token, logical name, camelCase inputs) and runs the validators on that, so a
renamed input key in the SDK breaks these tests instead of silently passing the policy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi_azure_native import (
    applicationinsights,
    authorization,
    containerregistry,
    keyvault,
    managedidentity,
    operationalinsights,
    resources,
    storage,
)
from pulumi_azure_native import machinelearningservices as ml
from recording import DEPLOYER, SUBSCRIPTION, TENANT, record

from blueprint_infra import naming, policies, roles
from blueprint_infra.policies import UNKNOWN, PolicyContext, Resource

HUMAN_GROUP = "44444444-4444-4444-4444-444444444444"
SLUG = "churn-model"




def one(build) -> Resource:
    [resource] = record(lambda: [build()])
    return resource


def tags(environment: str, **changes) -> dict[str, str]:
    base = {"project": SLUG, "environment": environment, "cost-center": "cc-42",
            "managed-by": "pulumi"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


# --- recorded builders: compliant by default, one keyword makes them non-compliant ------------

def storage_account(env="dev", *, account_name=None, tag_set=None, **overrides):
    args = dict(
        account_name=account_name or naming.environment_names(SLUG, env, TENANT).storage_account,
        resource_group_name="rg", kind="StorageV2", sku=storage.SkuArgs(name="Standard_LRS"),
        allow_blob_public_access=False, minimum_tls_version="TLS1_2",
        allow_shared_key_access=False, enable_https_traffic_only=True,
        tags=tag_set if tag_set is not None else tags(env),
    )
    args.update(overrides)
    return storage.StorageAccount("st", **args)


def key_vault(env="dev", *, vault_name=None, **vault_properties):
    props = dict(tenant_id=TENANT, sku=keyvault.SkuArgs(family="A", name="standard"),
                 enable_rbac_authorization=True, enable_soft_delete=True,
                 soft_delete_retention_in_days=90, enable_purge_protection=True)
    props.update(vault_properties)
    return keyvault.Vault(
        "kv", vault_name=vault_name or naming.environment_names(SLUG, env, TENANT).key_vault,
        resource_group_name="rg", properties=keyvault.VaultPropertiesArgs(**props),
        tags=tags(env),
    )


def container_registry(env="dev", **overrides):
    args = dict(registry_name=naming.environment_names(SLUG, env, TENANT).container_registry,
                resource_group_name="rg", sku=containerregistry.SkuArgs(name="Basic"),
                admin_user_enabled=False, anonymous_pull_enabled=False, tags=tags(env))
    args.update(overrides)
    return containerregistry.Registry("cr", **args)


def workspace(env="dev", **overrides):
    args = dict(
        workspace_name=naming.environment_names(SLUG, env, TENANT).workspace,
        resource_group_name="rg", identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
        storage_account="/st", key_vault="/kv", application_insights="/appi",
        container_registry="/cr",
        public_network_access="Disabled" if env == "prod" else "Enabled",
        managed_network=ml.ManagedNetworkSettingsArgs(isolation_mode="AllowOnlyApprovedOutbound"),
        system_datastores_auth_mode="identity", tags=tags(env),
    )
    args.update(overrides)
    return ml.Workspace("mlw", **args)


def cluster(env="dev", *, min_nodes=0, name="cpu-cluster"):
    return ml.Compute(
        "cpu", compute_name=name, resource_group_name="rg", workspace_name="mlw",
        properties=ml.AmlComputeArgs(
            compute_type="AmlCompute", disable_local_auth=True,
            properties=ml.AmlComputePropertiesArgs(
                vm_size="Standard_DS3_v2",
                scale_settings=ml.ScaleSettingsArgs(min_node_count=min_nodes, max_node_count=2,
                                                    node_idle_time_before_scale_down="PT120S"),
            ),
        ),
        tags=tags(env),
    )


def kubernetes_compute(env="dev", *, name=None, namespace=None):
    names = naming.environment_names(SLUG, env, TENANT)
    return ml.Compute(
        "k8s", compute_name=name or names.kubernetes_compute, resource_group_name="rg",
        workspace_name="mlw",
        properties=ml.KubernetesArgs(
            compute_type="Kubernetes",
            resource_id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/aks/providers/"
            "Microsoft.ContainerService/managedClusters/shared",
            properties=ml.KubernetesPropertiesArgs(
                namespace=namespace or names.kubernetes_namespace),
        ),
        tags=tags(env),
    )


def role_assignment(name, principal_type, role, *, principal=HUMAN_GROUP, assignment_name=None):
    return authorization.RoleAssignment(
        name, principal_id=principal, principal_type=principal_type,
        role_definition_id=roles.role_definition_id(SUBSCRIPTION, role),
        scope=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{SLUG}-prod",
        role_assignment_name=assignment_name or "55555555-5555-5555-5555-555555555555",
    )


def environment(env: str) -> list[Resource]:
    """A compliant environment, shaped like the one the program creates."""
    names = naming.environment_names(SLUG, env, TENANT)

    def build():
        rg = resources.ResourceGroup("rg", resource_group_name=names.resource_group,
                                     location="westeurope", tags=tags(env))
        log = operationalinsights.Workspace(
            "log", workspace_name=names.log_analytics, resource_group_name="rg",
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"), retention_in_days=30,
            tags=tags(env))
        appi = applicationinsights.Component(
            "appi", resource_name_=names.app_insights, resource_group_name="rg", kind="web",
            application_type="web", workspace_resource_id="/log", ingestion_mode="LogAnalytics",
            tags=tags(env))
        container = storage.BlobContainer("data", account_name=names.storage_account,
                                          resource_group_name="rg",
                                          container_name=names.blob_container,
                                          public_access="None")
        identity = managedidentity.UserAssignedIdentity(
            "id", resource_name_=f"id-{SLUG}-{env}", resource_group_name="rg", tags=tags(env))
        lock = authorization.ManagementLockAtResourceGroupLevel(
            "lock", resource_group_name="rg", level="CanNotDelete", lock_name="do-not-delete")
        created = [rg, log, appi, container, identity, lock, storage_account(env), key_vault(env),
                   container_registry(env), workspace(env), cluster(env), kubernetes_compute(env),
                   role_assignment("deployer-contributor", "ServicePrincipal", "Contributor",
                                   principal=DEPLOYER)]
        if env == "prod":
            created.append(role_assignment("readers-reader", "Group", "Reader"))
        else:
            created.append(role_assignment("ds-data-scientist", "Group",
                                           "AzureML Data Scientist"))
        return created

    return record(build)


def ctx(env: str, **changes) -> PolicyContext:
    base = dict(configured_deployer=DEPLOYER if env == "prod" else None,
                deploying_identity=DEPLOYER if env == "prod" else None)
    base.update(changes)
    return policies.context_for(env, **base)


def found(resources_, context, policy=None):
    return [v for v in policies.evaluate_all(resources_, context)
            if policy is None or v.policy == policy]


@pytest.fixture(scope="module")
def dev_env():
    return environment("dev")


@pytest.fixture(scope="module")
def prod_env():
    return environment("prod")


# --- whole environments ------------------------------------------------------------------------

def test_compliant_dev_environment_passes(dev_env):
    assert {r.type for r in dev_env} >= policies.TAGGABLE_TYPES - {policies.ML_REGISTRY}
    assert policies.evaluate_all(dev_env, ctx("dev")) == []


def test_compliant_prod_environment_passes(prod_env):
    assert policies.evaluate_all(prod_env, ctx("prod")) == []


def test_the_dev_environment_itself_fails_prod_rules(dev_env):
    """Dev's group grant and public workspace are exactly what prod forbids."""
    prod_verdicts = policies.evaluate(dev_env, ctx("prod"))
    assert {(v.policy, v.resource) for v in prod_verdicts} == {
        ("prod-no-human-write-roles", "ds-data-scientist"),
        ("prod-workspace-private", "mlw"),
    }


# --- prod: no human holds a write role ---------------------------------------------------------

@pytest.mark.parametrize("principal_type", sorted(roles.HUMAN_PRINCIPAL_TYPES))
def test_prod_human_write_role_fails_naming_the_assignment(prod_env, principal_type):
    grant = one(lambda: role_assignment("ds-grant", principal_type, "AzureML Data Scientist"))
    [verdict] = policies.evaluate([*prod_env, grant], ctx("prod"))
    assert verdict.policy == "prod-no-human-write-roles"
    assert verdict.resource == "ds-grant"
    assert "AzureML Data Scientist" in verdict.message
    assert principal_type in verdict.message and HUMAN_GROUP in verdict.message
    assert "Fix:" in verdict.message


def test_same_human_write_role_is_fine_outside_prod():
    grant = one(lambda: role_assignment("ds-grant", "Group", "AzureML Data Scientist"))
    assert found([grant], ctx("dev")) == [] and found([grant], ctx("preprod")) == []


@pytest.mark.parametrize("role", sorted(roles.ROLE_NAMES[g] for g in roles.READ_ONLY_ROLES))
def test_prod_read_only_roles_for_readers_group_pass(role):
    grant = one(lambda: role_assignment("readers", "Group", role))
    assert found([grant], ctx("prod"), "prod-no-human-write-roles") == []


def test_prod_service_principal_with_contributor_passes():
    grant = one(lambda: role_assignment("deployer", "ServicePrincipal", "Contributor",
                                        principal=DEPLOYER))
    assert found([grant], ctx("prod")) == []


def test_prod_secret_reading_role_counts_as_write_for_humans():
    grant = one(lambda: role_assignment("kv-secrets", "User", "Key Vault Secrets User"))
    assert [v.resource for v in found([grant], ctx("prod"))] == ["kv-secrets"]


def test_prod_write_role_without_principal_type_fails():
    """The SDK sends principalType "User" when the program leaves it out: a human grant."""
    grant = one(lambda: authorization.RoleAssignment(
        "unknown-kind", principal_id=HUMAN_GROUP,
        role_definition_id=roles.role_definition_id(SUBSCRIPTION, "Owner"), scope="/s",
        role_assignment_name="55555555-5555-5555-5555-555555555555"))
    assert grant.properties["principalType"] == "User"
    [verdict] = found([grant], ctx("prod"))
    assert verdict.resource == "unknown-kind" and "User" in verdict.message
    # State seen by the pack may lack the key: still not proof of a service principal.
    stateless = Resource(grant.type, grant.name,
                         {k: v for k, v in grant.properties.items() if k != "principalType"})
    [verdict] = found([stateless], ctx("prod"))
    assert "principalType" in verdict.message


# --- prod: deployed by the configured deploy identity -----------------------------------------

def test_prod_without_configured_deployer_fails(prod_env):
    [verdict] = policies.evaluate(prod_env, ctx("prod", configured_deployer=None))
    assert verdict.policy == "prod-deployer-identity"
    assert verdict.resource == "Pulumi.prod.yaml" and "deployerObjectId" in verdict.message


def test_prod_deployed_by_someone_else_fails(prod_env):
    intruder = "99999999-9999-9999-9999-999999999999"
    [verdict] = policies.evaluate(prod_env, ctx("prod", deploying_identity=intruder))
    assert verdict.policy == "prod-deployer-identity"
    assert intruder in verdict.message and DEPLOYER in verdict.message


def test_prod_deployer_unknown_identity_is_not_a_violation(prod_env):
    assert policies.evaluate(prod_env, ctx("prod", deploying_identity=None)) == []


def test_prod_placeholder_deployer_is_advisory_only(prod_env):
    context = ctx("prod", configured_deployer=naming.PLACEHOLDER_GUID,
                  deploying_identity=naming.PLACEHOLDER_GUID)
    assert policies.evaluate(prod_env, context) == []
    [advice] = policies.advisories(prod_env, context)
    assert advice.policy == "prod-deployer-placeholder" and advice.enforcement == "advisory"
    assert naming.PLACEHOLDER_GUID in advice.message


def test_prod_deployer_that_is_not_a_guid_fails(prod_env):
    [verdict] = policies.evaluate(prod_env, ctx("prod", configured_deployer="deploy-bot",
                                                deploying_identity=None))
    assert verdict.policy == "prod-deployer-identity" and "deploy-bot" in verdict.message


def test_dev_needs_no_deployer(dev_env):
    assert found(dev_env, ctx("dev", deploying_identity=HUMAN_GROUP)) == []


# --- storage -----------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [{"allow_blob_public_access": True},
                                    {"allow_blob_public_access": None}])
def test_storage_public_blob_access_must_be_off(change):
    account = one(lambda: storage_account(**change))
    [verdict] = found([account], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("storage-no-public-blob-access", "st")
    assert "allow_blob_public_access=False" in verdict.message


def test_public_blob_container_fails():
    container = one(lambda: storage.BlobContainer("data", account_name="st", container_name="data",
                                                  resource_group_name="rg", public_access="Blob"))
    [verdict] = found([container], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("storage-no-public-blob-access", "data")


@pytest.mark.parametrize("change", [{"minimum_tls_version": "TLS1_0"},
                                    {"minimum_tls_version": "TLS1_1"},
                                    {"minimum_tls_version": None},
                                    {"enable_https_traffic_only": False}])
def test_storage_needs_tls12_and_https(change):
    account = one(lambda: storage_account(**change))
    [verdict] = found([account], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("storage-tls12-https", "st")
    assert "Fix:" in verdict.message


# --- key vault ---------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ["dev", "prod"])
def test_key_vault_access_policies_fail_everywhere(env):
    vault = one(lambda: key_vault(env, enable_rbac_authorization=False))
    assert [(v.policy, v.resource) for v in found([vault], ctx(env))] == [("keyvault-rbac", "kv")]


def test_key_vault_without_purge_protection_fails_only_in_prod():
    vault = one(lambda: key_vault("prod", enable_purge_protection=None))
    [verdict] = found([vault], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("keyvault-purge-protection-prod", "kv")
    assert found([vault], ctx("dev")) == [] and found([vault], ctx("preprod")) == []


# --- container registry ------------------------------------------------------------------------

def test_registry_admin_user_fails():
    registry = one(lambda: container_registry(admin_user_enabled=True))
    [verdict] = found([registry], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("container-registry-admin-user-disabled", "cr")
    assert "admin_user_enabled=False" in verdict.message


def test_registry_admin_user_left_unset_passes():
    registry = one(lambda: container_registry(admin_user_enabled=None))
    assert found([registry], ctx("prod")) == []


def test_registry_anonymous_pull_fails():
    registry = one(lambda: container_registry(anonymous_pull_enabled=True))
    assert [v.policy for v in found([registry], ctx("dev"))] == [
        "container-registry-no-anonymous-pull"]


# --- workspace network -------------------------------------------------------------------------

@pytest.mark.parametrize("access", ["Enabled", None])
def test_prod_public_workspace_fails(access):
    ws = one(lambda: workspace("prod", public_network_access=access))
    [verdict] = policies.evaluate([ws], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-workspace-private", "mlw")
    assert "publicNetworkAccess" in verdict.message


def test_prod_public_workspace_with_explicit_opt_out_is_advisory():
    ws = one(lambda: workspace("prod", public_network_access="Enabled"))
    context = ctx("prod", public_network_access="Enabled")
    assert context.public_network_opt_out
    assert policies.evaluate([ws], context) == []
    assert [(a.policy, a.resource) for a in policies.advisories([ws], context)] == [
        ("prod-workspace-public-opt-out", "mlw")]


def test_opt_out_exists_only_for_prod():
    assert not ctx("dev", public_network_access="Enabled").public_network_opt_out


def test_public_workspace_is_fine_in_dev():
    ws = one(lambda: workspace("dev", public_network_access="Enabled"))
    assert found([ws], ctx("dev")) == []


# --- compute scales to zero in dev -------------------------------------------------------------

def test_dev_cluster_with_idle_nodes_fails():
    compute = one(lambda: cluster("dev", min_nodes=1))
    [verdict] = found([compute], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("dev-compute-scales-to-zero", "cpu")
    assert "min_node_count=0" in verdict.message


def test_prod_cluster_may_keep_warm_nodes():
    assert found([one(lambda: cluster("prod", min_nodes=1))], ctx("prod")) == []


def test_dev_compute_instance_without_idle_shutdown_fails():
    def instance(idle):
        return ml.Compute("ci", compute_name="ci-alice", resource_group_name="rg",
                          workspace_name="mlw", tags=tags("dev"),
                          properties=ml.ComputeInstanceArgs(
                              compute_type="ComputeInstance",
                              properties=ml.ComputeInstancePropertiesArgs(
                                  vm_size="Standard_DS3_v2", idle_time_before_shutdown=idle)))

    assert [v.resource for v in found([one(lambda: instance(None))], ctx("dev"))] == ["ci"]
    assert found([one(lambda: instance("PT60M"))], ctx("dev")) == []


# --- tags --------------------------------------------------------------------------------------

def test_missing_tags_fail_naming_resource_and_keys():
    account = one(lambda: storage_account(tag_set=tags("dev", **{"cost-center": None,
                                                                 "managed-by": ""})))
    [verdict] = found([account], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("required-tags", "st")
    assert "cost-center" in verdict.message and "managed-by" in verdict.message
    assert "lacks the tag(s) cost-center, managed-by" in verdict.message


def test_untagged_types_are_not_asked_for_tags(dev_env):
    untaggable = [r for r in dev_env if r.type not in policies.TAGGABLE_TYPES]
    assert {r.type for r in untaggable} >= {policies.ROLE_ASSIGNMENT, policies.BLOB_CONTAINER}
    assert all("tags" not in r.properties for r in untaggable)
    assert found(untaggable, ctx("dev"), "required-tags") == []


def test_every_taggable_resource_without_tags_fails(dev_env):
    stripped = [Resource(r.type, r.name, {k: v for k, v in r.properties.items() if k != "tags"})
                for r in dev_env]
    flagged = {v.resource for v in found(stripped, ctx("dev"), "required-tags")}
    assert flagged == {r.name for r in dev_env if r.type in policies.TAGGABLE_TYPES}


# --- names -------------------------------------------------------------------------------------

def test_too_long_storage_account_name_fails():
    long_name = "st" + "a" * 23
    account = one(lambda: storage_account(account_name=long_name))
    [verdict] = found([account], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("azure-resource-names", "st")
    assert long_name in verdict.message and "25 characters" in verdict.message


@pytest.mark.parametrize("build", [
    lambda: storage_account(account_name="StChurnDev"),
    lambda: key_vault(vault_name="kv--churn"),
    lambda: container_registry(registry_name="cr-churn"),
    lambda: workspace(workspace_name="-mlw"),
    lambda: kubernetes_compute(name="k8s-very-long-name"),
    lambda: kubernetes_compute(namespace="Churn_Dev"),
    lambda: role_assignment("r", "ServicePrincipal", "Reader", assignment_name="not-a-guid"),
])
def test_names_that_break_azure_rules_fail(build):
    resource = one(build)
    assert [v.policy for v in found([resource], ctx("dev"))] == ["azure-resource-names"]


def test_a_cluster_may_have_a_name_too_long_for_a_kubernetes_attach():
    name = "k8s-very-long-name"  # 18 characters: fine for AmlCompute (32), not Kubernetes (16)
    assert found([one(lambda: cluster(name=name))], ctx("dev")) == []


def test_names_from_the_naming_module_pass_for_the_longest_slug():
    slug = "a" + "b" * (naming.SLUG_MAX_LENGTH - 1)
    names = naming.environment_names(slug, "preprod", TENANT)
    account = one(lambda: storage_account("preprod", account_name=names.storage_account))
    assert found([account], ctx("preprod")) == []


# --- unknown values, registry ------------------------------------------------------------------

def test_values_unknown_in_preview_never_fail():
    unknowns = [
        Resource(policies.STORAGE_ACCOUNT, "st", {"allowBlobPublicAccess": UNKNOWN,
                                                  "minimumTlsVersion": UNKNOWN, "tags": UNKNOWN,
                                                  "accountName": UNKNOWN}),
        Resource(policies.ROLE_ASSIGNMENT, "ra", {"principalType": "ServicePrincipal",
                                                  "roleDefinitionId": UNKNOWN}),
        Resource(policies.KEY_VAULT, "kv", {"properties": UNKNOWN, "tags": tags("prod")}),
        Resource(policies.ML_WORKSPACE, "mlw", {"publicNetworkAccess": UNKNOWN,
                                                "tags": tags("prod")}),
    ]
    assert policies.evaluate_all(unknowns, ctx("prod")) == []


def test_prod_human_with_a_role_unknown_in_preview_fails():
    """Nothing proves a computed role is read-only, so a prod human may not hold one."""
    grant = Resource(policies.ROLE_ASSIGNMENT, "custom-grant",
                     {"principalType": "Group", "principalId": HUMAN_GROUP,
                      "roleDefinitionId": UNKNOWN})
    [verdict] = policies.evaluate([grant], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-no-human-write-roles", "custom-grant")
    assert policies.evaluate([grant], ctx("dev")) == []


def test_registry_levels_and_names():
    assert set(policies.POLICIES) == {p.name for p in policies.POLICIES.values()}
    for policy in policies.POLICIES.values():
        assert policy.enforcement in (policies.MANDATORY, policies.ADVISORY)
        assert naming.SLUG_PATTERN.match(policy.name), policy.name
        assert policy.description.endswith(".")


def test_a_thoroughly_wrong_prod_stack_trips_every_mandatory_policy(prod_env):
    def build():
        return [
            storage_account("prod", account_name="ST-bad", allow_blob_public_access=True,
                            minimum_tls_version="TLS1_0", tag_set={}),
            key_vault("prod", enable_rbac_authorization=False, enable_purge_protection=False),
            container_registry("prod", admin_user_enabled=True, anonymous_pull_enabled=True),
            workspace("prod", public_network_access="Enabled"),
            role_assignment("ds-grant", "Group", "AzureML Data Scientist"),
        ]

    bad = record(build)
    context = ctx("prod", deploying_identity="99999999-9999-9999-9999-999999999999")
    verdicts = policies.evaluate(bad, context)
    expected = {p.name for p in policies.POLICIES.values()
                if p.enforcement == policies.MANDATORY} - {"dev-compute-scales-to-zero"}
    assert {v.policy for v in verdicts} == expected
    by_name = {r.name for r in bad} | {"Pulumi.prod.yaml"}
    for verdict in verdicts:
        assert verdict.resource in by_name
        assert verdict.resource in verdict.message and "Fix" in verdict.message


def test_docs_describe_every_policy_with_its_level():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "policies.md").read_text(
        encoding="utf-8")
    rows = {}
    for line in docs.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[1] in ("mandatory", "advisory"):
            rows[cells[0].strip("`")] = cells[1]
    assert rows == {name: p.enforcement for name, p in policies.POLICIES.items()}
    for name in policies.POLICIES:
        assert f"### `{name}`" in docs, name
