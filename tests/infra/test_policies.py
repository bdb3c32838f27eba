"""The policies, on inputs recorded from the real pulumi-azure-native SDK under Pulumi's mocks.

Each case builds the resources with the SDK classes the program uses, records what the provider
would receive (type token, logical name, camelCase inputs) and runs the validators on that, so a
renamed input key in the SDK breaks these tests instead of silently passing the policy.
"""

from __future__ import annotations

import dataclasses
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
from recording import DEPLOYER, SUBSCRIPTION, TENANT, principal_id_of, record

from blueprint_infra import naming, policies, rbac, roles
from blueprint_infra.policies import UNKNOWN, PolicyContext, Resource

HUMAN_GROUP = "44444444-4444-4444-4444-444444444444"
STRANGER_SP = "66666666-6666-4666-8666-666666666666"
SLUG = "churn-model"
#: The principal id the recorder gives the workspace 'mlw' built by `workspace()`.
WORKSPACE_PRINCIPAL = principal_id_of("mlw")




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
        public_network_access="Disabled" if env == "prod" else "Enabled",
        tags=tag_set if tag_set is not None else tags(env),
    )
    args.update(overrides)
    return storage.StorageAccount("st", **args)


def key_vault(env="dev", *, vault_name=None, **vault_properties):
    props = dict(tenant_id=TENANT, sku=keyvault.SkuArgs(family="A", name="standard"),
                 enable_rbac_authorization=True, enable_soft_delete=True,
                 soft_delete_retention_in_days=90, enable_purge_protection=True,
                 public_network_access="Disabled" if env == "prod" else "Enabled")
    props.update(vault_properties)
    return keyvault.Vault(
        "kv", vault_name=vault_name or naming.environment_names(SLUG, env, TENANT).key_vault,
        resource_group_name="rg", properties=keyvault.VaultPropertiesArgs(**props),
        tags=tags(env),
    )


def container_registry(env="dev", **overrides):
    args = dict(registry_name=naming.environment_names(SLUG, env, TENANT).container_registry,
                resource_group_name="rg", sku=containerregistry.SkuArgs(name="Basic"),
                admin_user_enabled=False, anonymous_pull_enabled=False, tags=tags(env),
                public_network_access="Disabled" if env == "prod" else "Enabled")
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


def cluster(env="dev", *, min_nodes=0, name="cpu-cluster", local_auth_off=True,
            public_ip=False, ssh="Disabled", tag_set=None):
    return ml.Compute(
        "cpu", compute_name=name, resource_group_name="rg", workspace_name="mlw",
        properties=ml.AmlComputeArgs(
            compute_type="AmlCompute", disable_local_auth=local_auth_off,
            properties=ml.AmlComputePropertiesArgs(
                vm_size="Standard_DS3_v2",
                scale_settings=ml.ScaleSettingsArgs(min_node_count=min_nodes, max_node_count=2,
                                                    node_idle_time_before_scale_down="PT120S"),
                enable_node_public_ip=public_ip, remote_login_port_public_access=ssh,
            ),
        ),
        tags=tag_set if tag_set is not None else tags(env),
    )


def kubernetes_compute(env="dev", *, name=None, namespace=None):
    names = naming.environment_names(SLUG, env, TENANT)
    return ml.Compute(
        "k8s", compute_name=name or names.kubernetes_compute, resource_group_name="rg",
        workspace_name="mlw",
        properties=ml.KubernetesArgs(
            compute_type="Kubernetes", disable_local_auth=True,
            resource_id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/aks/providers/"
            "Microsoft.ContainerService/managedClusters/shared",
            properties=ml.KubernetesPropertiesArgs(
                namespace=namespace or names.kubernetes_namespace),
        ),
        tags=tags(env),
    )


def role_assignment(name, principal_type, role, *, principal=HUMAN_GROUP, assignment_name=None,
                    scope=None, role_id=None, **extra):
    return authorization.RoleAssignment(
        name, principal_id=principal, principal_type=principal_type,
        role_definition_id=role_id or roles.role_definition_id(SUBSCRIPTION, role),
        scope=scope or f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{SLUG}-prod",
        role_assignment_name=assignment_name or "55555555-5555-5555-5555-555555555555",
        **extra,
    )


def environment(env: str) -> list[Resource]:
    """A compliant environment, shaped like the one the program creates."""
    names = naming.environment_names(SLUG, env, TENANT)
    own = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{names.resource_group}"

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
                                   principal=DEPLOYER, scope=own)]
        if env == "prod":
            created.append(role_assignment("readers-reader", "Group", "Reader"))
            created.append(role_assignment("mlw-kv-admin", "ServicePrincipal",
                                           "Key Vault Administrator",
                                           principal=WORKSPACE_PRINCIPAL))
        else:
            created.append(role_assignment("ds-data-scientist", "Group",
                                           "AzureML Data Scientist", scope=own))
        return created

    recorded = record(build)
    if env != "prod":
        return recorded
    return [dataclasses.replace(r, protect=r.type in policies.STATEFUL_TYPES) for r in recorded]


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
    """Dev's group grant, public services and unprotected resources are what prod forbids."""
    prod_verdicts = {(v.policy, v.resource) for v in policies.evaluate(dev_env, ctx("prod"))}
    assert prod_verdicts == {
        ("prod-no-human-write-roles", "ds-data-scientist"),
        ("prod-workspace-private", "mlw"),
        *[("prod-data-services-private", name) for name in ("st", "kv", "cr")],
        *[("prod-stateful-resources-protected", r.name) for r in dev_env
          if r.type in policies.STATEFUL_TYPES],
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
    [verdict] = found([grant], ctx("prod"), "prod-no-human-write-roles")
    assert verdict.resource == "unknown-kind" and "User" in verdict.message
    # State seen by the pack may lack the key: still not proof of a service principal.
    stateless = Resource(grant.type, grant.name,
                         {k: v for k, v in grant.properties.items() if k != "principalType"})
    [verdict] = found([stateless], ctx("prod"), "prod-no-human-write-roles")
    assert "principalType" in verdict.message


# --- prod: deployed by the configured deploy identity -----------------------------------------

def test_prod_without_configured_deployer_fails(prod_env):
    verdicts = policies.evaluate(prod_env, ctx("prod", configured_deployer=None))
    # with no deployer configured, nobody but the workspace may hold a write role
    assert {(v.policy, v.resource) for v in verdicts} == {
        ("prod-deployer-identity", "Pulumi.prod.yaml"),
        ("prod-no-human-write-roles", "deployer-contributor")}
    [verdict] = [v for v in verdicts if v.policy == "prod-deployer-identity"]
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
    """A --defaults project: the program grants the placeholder deployer its roles; plan passes
    and says what to fill in."""
    context = ctx("prod", configured_deployer=naming.PLACEHOLDER_GUID,
                  deploying_identity=naming.PLACEHOLDER_GUID)
    placeholder_grant = one(lambda: role_assignment(
        "deployer-contributor", "ServicePrincipal", "Contributor",
        principal=naming.PLACEHOLDER_GUID))
    prod_env = [placeholder_grant if r.name == "deployer-contributor" else r for r in prod_env]
    assert policies.evaluate(prod_env, context) == []
    [advice] = policies.advisories(prod_env, context)
    assert advice.policy == "prod-deployer-placeholder" and advice.enforcement == "advisory"
    assert naming.PLACEHOLDER_GUID in advice.message


def test_prod_deployer_that_is_not_a_guid_fails(prod_env):
    verdicts = policies.evaluate(prod_env, ctx("prod", configured_deployer="deploy-bot",
                                               deploying_identity=None))
    [verdict] = [v for v in verdicts if v.policy == "prod-deployer-identity"]
    assert "deploy-bot" in verdict.message
    # an id that is not a GUID allows nobody
    assert [v.resource for v in verdicts if v.policy == "prod-no-human-write-roles"] == [
        "deployer-contributor"]


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
    vault = dataclasses.replace(vault, protect=True)
    assert [(v.policy, v.resource) for v in found([vault], ctx(env))] == [("keyvault-rbac", "kv")]


def test_key_vault_without_purge_protection_fails_only_in_prod():
    vault = dataclasses.replace(one(lambda: key_vault("prod", enable_purge_protection=None)),
                                protect=True)
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
    registry = one(lambda: container_registry("prod", admin_user_enabled=None))
    assert found([dataclasses.replace(registry, protect=True)], ctx("prod")) == []


def test_registry_anonymous_pull_fails():
    registry = one(lambda: container_registry(anonymous_pull_enabled=True))
    assert [v.policy for v in found([registry], ctx("dev"))] == [
        "container-registry-no-anonymous-pull"]


# --- workspace network -------------------------------------------------------------------------

@pytest.mark.parametrize("access", ["Enabled", None])
def test_prod_public_workspace_fails(access):
    ws = dataclasses.replace(one(lambda: workspace("prod", public_network_access=access)),
                             protect=True)
    [verdict] = policies.evaluate([ws], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-workspace-private", "mlw")
    assert "publicNetworkAccess" in verdict.message


def test_prod_public_workspace_with_explicit_opt_out_is_advisory():
    ws = dataclasses.replace(one(lambda: workspace("prod", public_network_access="Enabled")),
                             protect=True)
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


def test_prod_cluster_keeps_warm_nodes_only_with_a_reason():
    warm = one(lambda: cluster("prod", min_nodes=1))
    [verdict] = found([warm], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-compute-min-nodes", "cpu")
    assert "always-on-reason" in verdict.message and "Fix:" in verdict.message
    explained = one(lambda: cluster("prod", min_nodes=1, tag_set=tags(
        "prod", **{"always-on-reason": "p95 latency target for nightly scoring"})))
    assert found([explained], ctx("prod")) == []
    assert found([warm], ctx("preprod")) == []


def test_dev_compute_instance_without_idle_shutdown_fails():
    def instance(idle):
        return ml.Compute("ci", compute_name="ci-alice", resource_group_name="rg",
                          workspace_name="mlw", tags=tags("dev"),
                          properties=ml.ComputeInstanceArgs(
                              compute_type="ComputeInstance", disable_local_auth=True,
                              properties=ml.ComputeInstancePropertiesArgs(
                                  vm_size="Standard_DS3_v2", idle_time_before_shutdown=idle,
                                  enable_node_public_ip=False)))

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

def test_settings_unknown_in_preview_never_fail():
    unknowns = [
        Resource(policies.STORAGE_ACCOUNT, "st", {"allowBlobPublicAccess": UNKNOWN,
                                                  "minimumTlsVersion": UNKNOWN, "tags": UNKNOWN,
                                                  "accountName": UNKNOWN,
                                                  "allowSharedKeyAccess": UNKNOWN,
                                                  "publicNetworkAccess": UNKNOWN}, protect=True),
        Resource(policies.KEY_VAULT, "kv", {"properties": UNKNOWN, "tags": tags("prod")},
                 protect=True),
        Resource(policies.ML_WORKSPACE, "mlw", {"publicNetworkAccess": UNKNOWN,
                                                "tags": tags("prod")}, protect=True),
    ]
    assert policies.evaluate_all(unknowns, ctx("prod")) == []


def test_a_write_role_for_a_principal_unknown_in_preview_fails_in_prod():
    """Who holds a right must be shown: an unknown principal passes only when traced to the
    stack's own workspace (see the allow-list tests)."""
    grant = Resource(policies.ROLE_ASSIGNMENT, "ra", {
        "principalType": "ServicePrincipal", "principalId": UNKNOWN,
        "roleDefinitionId": roles.role_definition_id(SUBSCRIPTION, "Contributor")})
    [verdict] = policies.evaluate([grant], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-no-human-write-roles", "ra")
    assert "unknown until deployment" in verdict.message


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


BOOTSTRAP_ONLY = {"bootstrap-no-human-above-reader", "bootstrap-no-subscription-scope",
                  "bootstrap-identity-rights"}


def test_a_thoroughly_wrong_prod_stack_trips_every_mandatory_policy(prod_env):
    def build():
        return [
            storage_account("prod", account_name="ST-bad", allow_blob_public_access=True,
                            minimum_tls_version="TLS1_0", tag_set={},
                            allow_shared_key_access=True, public_network_access="Enabled"),
            key_vault("prod", enable_rbac_authorization=False, enable_purge_protection=False,
                      access_policies=[keyvault.AccessPolicyEntryArgs(
                          object_id=HUMAN_GROUP, tenant_id=TENANT,
                          permissions=keyvault.PermissionsArgs(secrets=["get"]))]),
            container_registry("prod", admin_user_enabled=True, anonymous_pull_enabled=True),
            workspace("prod", public_network_access="Enabled"),
            cluster("prod", min_nodes=1, local_auth_off=False, public_ip=True,
                    ssh="Enabled"),
            role_assignment("ds-grant", "Group", "AzureML Data Scientist"),
            resources.ResourceGroup("prod-rg", resource_group_name=f"rg-{SLUG}-prod"),
            role_assignment("in-dev", "ServicePrincipal", "Reader", principal=DEPLOYER,
                            scope=env_rg("dev")),
            role_assignment("deployer-rbac-admin", "ServicePrincipal",
                            "Role Based Access Control Administrator", principal=DEPLOYER),
            authorization.RoleDefinition(
                "god-role", role_name="god", scope=f"/subscriptions/{SUBSCRIPTION}",
                assignable_scopes=[f"/subscriptions/{SUBSCRIPTION}"],
                permissions=[authorization.PermissionArgs(actions=["*"])]),
            authorization.PimRoleEligibilitySchedule(
                "eligible-owner", principal_id=HUMAN_GROUP, scope="/s",
                role_definition_id=roles.role_definition_id(SUBSCRIPTION, "Owner")),
            authorization.ManagementLockAtResourceGroupLevel(
                "weak-lock", resource_group_name="rg", level="NotSpecified"),
            managedidentity.FederatedIdentityCredential(
                "backdoor", resource_name_="id-attacker", resource_group_name="rg",
                issuer="https://attacker.example", subject="anything",
                audiences=["api://AzureADTokenExchange"]),
        ]

    bad = [*record(build), Resource("azure:authorization/assignment:Assignment", "classic",
                                    {"principalId": HUMAN_GROUP, "roleDefinitionName": "Owner"})]
    context = ctx("prod", deploying_identity="99999999-9999-9999-9999-999999999999")
    verdicts = policies.evaluate(bad, context)
    expected = {p.name for p in policies.POLICIES.values()
                if p.enforcement == policies.MANDATORY} - {"dev-compute-scales-to-zero"}
    assert {v.policy for v in verdicts} == expected - BOOTSTRAP_ONLY
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


# --- prod: the allow-list of write-role holders ------------------------------------------------

def grant(principal_type, role="Contributor", *, principal=HUMAN_GROUP, name="grant", **extra):
    return one(lambda: role_assignment(name, principal_type, role, principal=principal, **extra))


@pytest.mark.parametrize(("principal_type", "principal"), [
    ("Group", HUMAN_GROUP),
    ("group", HUMAN_GROUP),
    ("USER", HUMAN_GROUP),
    ("ForeignGroup", HUMAN_GROUP),
    ("ServicePrincipal", HUMAN_GROUP),  # a group relabelled as a service principal
    ("ServicePrincipal", STRANGER_SP),  # a real service principal that is not the deployer
    ("Device", STRANGER_SP),
    ("User", DEPLOYER),  # the deployer's id, declared as something else
    ("Group", WORKSPACE_PRINCIPAL),
], ids=["group", "group-lower", "user-upper", "foreign-group", "relabelled-group",
        "stranger-sp", "device", "deployer-as-user", "workspace-as-group"])
def test_prod_write_role_outside_the_allow_list_fails_whatever_the_type(
        prod_env, principal_type, principal):
    bad = grant(principal_type, principal=principal)
    [verdict] = policies.evaluate([*prod_env, bad], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-no-human-write-roles", "grant")
    assert principal in verdict.message and "Contributor" in verdict.message
    assert "Fix:" in verdict.message


@pytest.mark.parametrize("principal_type", ["", None, "Robot", "service principal",
                                            " ServicePrincipal2"])
def test_prod_empty_missing_or_odd_principal_type_never_passes(prod_env, principal_type):
    props = dict(grant("ServicePrincipal", "Reader", principal=DEPLOYER).properties)
    if principal_type is None:
        props.pop("principalType")
    else:
        props["principalType"] = principal_type
    bad = Resource(policies.ROLE_ASSIGNMENT, "odd", props)
    [verdict] = policies.evaluate([*prod_env, bad], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-no-human-write-roles", "odd")
    assert "not one of Azure's types" in verdict.message


@pytest.mark.parametrize(("principal_type", "principal"), [
    ("ServicePrincipal", DEPLOYER), ("serviceprincipal", DEPLOYER.upper()),
    ("SERVICEPRINCIPAL", WORKSPACE_PRINCIPAL),
])
def test_prod_deployer_and_workspace_identity_may_write(prod_env, principal_type, principal):
    ok = grant(principal_type, "Storage Blob Data Contributor", principal=principal)
    assert policies.evaluate([*prod_env, ok], ctx("prod")) == []


def test_prod_caller_may_name_further_allowed_principals(prod_env):
    ok = grant("ServicePrincipal", principal=STRANGER_SP)
    context = dataclasses.replace(ctx("prod"), allowed_principals=frozenset({STRANGER_SP}))
    assert policies.evaluate([*prod_env, ok], context) == []


def _unknown_principal(depends_on):
    return Resource(policies.ROLE_ASSIGNMENT, "late", {
        "principalId": UNKNOWN, "principalType": "ServicePrincipal",
        "roleDefinitionId": roles.role_definition_id(SUBSCRIPTION, "Key Vault Administrator"),
        "scope": "/kv"}, dependencies={"principalId": depends_on})


def test_prod_unknown_principal_traced_to_the_workspace_passes(prod_env):
    assert policies.evaluate([*prod_env, _unknown_principal(("mlw",))], ctx("prod")) == []


@pytest.mark.parametrize("depends_on", [(), ("id",), ("mlw", "id"), ("nothing-here",)],
                         ids=["untraced", "user-assigned-identity", "workspace-and-identity",
                              "missing"])
def test_prod_unknown_principal_not_from_the_workspace_fails(prod_env, depends_on):
    [verdict] = policies.evaluate([*prod_env, _unknown_principal(depends_on)], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-no-human-write-roles", "late")


@pytest.mark.parametrize("role_id", [
    "Contributor",
    "b24988ac-6180-42a0-ab88-20f7382dd24c/extra",
    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/not-a-guid",
    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
    f"{roles.ROLE_IDS['Reader']}/../{roles.ROLE_IDS['Owner']}",
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Authorization/"
    f"roleDefinitions/{roles.ROLE_IDS['Reader']}",
    f"x{roles.ROLE_IDS['Reader']}",
], ids=["name", "trailing", "not-guid", "dot-dot", "wrong-form", "prefixed"])
def test_prod_role_ids_parse_strictly(role_id):
    bad = grant("Group", role_id=role_id)
    [verdict] = found([bad], ctx("prod"), "prod-no-human-write-roles")
    assert "neither a role definition id" in verdict.message


@pytest.mark.parametrize("role_id", [
    roles.ROLE_IDS["Reader"], roles.ROLE_IDS["Reader"].upper(),
    f"/providers/Microsoft.Authorization/roleDefinitions/{roles.ROLE_IDS['Reader']}",
    f"/SUBSCRIPTIONS/{SUBSCRIPTION}/providers/microsoft.authorization/roleDefinitions/"
    f"{roles.ROLE_IDS['Reader']}",
])
def test_role_id_forms_azure_accepts_are_read(role_id):
    assert policies.parse_role_id(role_id) == roles.ROLE_IDS["Reader"]
    assert found([grant("Group", role_id=role_id)], ctx("prod")) == []


# --- PIM, custom roles, conditions, side doors, providers ---------------------------------------

def pim(role, token="azure-native:authorization:PimRoleEligibilitySchedule"):
    return Resource(token, "pim", {"principalId": HUMAN_GROUP, "scope": "/rg",
                                   "roleDefinitionId": roles.role_definition_id(SUBSCRIPTION,
                                                                                role)})


@pytest.mark.parametrize("token", sorted(policies.PIM_TYPES) + [
    "azure-native:authorization/v20201001:RoleEligibilityScheduleRequest"])
def test_prod_pim_write_role_fails_in_every_form(token):
    [verdict] = found([pim("Contributor", token)], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-pim-read-only", "pim")
    assert found([pim("Reader", token)], ctx("prod")) == []
    assert found([pim("Contributor", token)], ctx("dev")) == []


def test_pim_schedule_is_recorded_with_the_token_the_policy_judges():
    schedule = one(lambda: authorization.PimRoleEligibilitySchedule(
        "pim", principal_id=HUMAN_GROUP, scope="/rg",
        role_definition_id=roles.role_definition_id(SUBSCRIPTION, "Owner")))
    assert [v.policy for v in found([schedule], ctx("prod"))] == [
        "prod-pim-read-only", "role-admin-conditioned"]


def custom_role(actions=(), data_actions=()):
    return one(lambda: authorization.RoleDefinition(
        "custom", role_name="custom", scope=f"/subscriptions/{SUBSCRIPTION}",
        assignable_scopes=[f"/subscriptions/{SUBSCRIPTION}"],
        permissions=[authorization.PermissionArgs(actions=list(actions),
                                                  data_actions=list(data_actions))]))


@pytest.mark.parametrize(("actions", "data_actions"), [
    (["*"], []), (["Microsoft.Authorization/roleAssignments/write"], []),
    (["Microsoft.Authorization/*"], []), (["Microsoft.Authorization/locks/*"], []),
    (["Microsoft.Storage/*"], []), ([], ["*"]),
    (["microsoft.authorization/roledefinitions/write"], []),
])
def test_custom_role_wildcards_and_authorization_writes_fail_everywhere(actions, data_actions):
    role = custom_role(actions, data_actions)
    for env in ("dev", "preprod"):
        assert [v.policy for v in found([role], ctx(env))] == ["custom-roles-least-privilege"]


def test_custom_read_role_passes_and_prod_custom_roles_only_read():
    assert found([custom_role(["*/read", "Microsoft.Authorization/*/read"])], ctx("prod")) == []
    writer = custom_role(["Microsoft.MachineLearningServices/workspaces/jobs/write"])
    assert found([writer], ctx("dev")) == []
    assert [v.policy for v in found([writer], ctx("prod"))] == ["prod-custom-roles-read-only"]


#: The prod deploy identity's own condition: role ids and principal types, from the RBAC table.
ABAC_OK = rbac.rbac_admin_condition("prod", "resource_group")
_IDS = ", ".join(rbac.assignable_role_ids())
#: A condition that limits the roles only (what the bootstrap used to write).
ROLE_ONLY = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    f"(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
    f"ForAnyOfAnyValues:GuidEquals {{{_IDS}}}))"
)


@pytest.mark.parametrize(("condition", "version", "problem"), [
    (None, None, "no ABAC condition"),
    ("", "2.0", "no ABAC condition"),
    (ROLE_ONLY, "2.0", "principal types"),
    ("@Request[Microsoft.Authorization/roleAssignments:PrincipalType] StringEquals "
     "'ServicePrincipal'", "2.0", "role ids"),
    (ABAC_OK.replace(roles.ROLE_IDS["Reader"], roles.ROLE_IDS["Owner"]), "2.0", "Owner"),
    (ABAC_OK, "1.0", "conditionVersion"),
])
@pytest.mark.parametrize("role", ["Role Based Access Control Administrator",
                                  "User Access Administrator", "Owner"])
def test_role_admin_assignments_need_a_constraining_condition(condition, version, problem, role):
    extra = {k: v for k, v in (("condition", condition), ("condition_version", version)) if v}
    admin = grant("ServicePrincipal", role, principal=DEPLOYER, **extra)
    [verdict] = found([admin], ctx("dev"), "role-admin-conditioned")
    assert problem in verdict.message and "Fix:" in verdict.message


def test_role_admin_with_a_full_condition_passes():
    admin = grant("ServicePrincipal", "Role Based Access Control Administrator",
                  principal=DEPLOYER, condition=ABAC_OK, condition_version="2.0")
    assert found([admin], ctx("prod")) == []


SIDE_DOORS = {
    "vault-access-policy": lambda: keyvault.Vault(
        "kv", vault_name="kvchurnprod", resource_group_name="rg", tags=tags("prod"),
        properties=keyvault.VaultPropertiesArgs(
            tenant_id=TENANT, sku=keyvault.SkuArgs(family="A", name="standard"),
            enable_rbac_authorization=True, enable_purge_protection=True,
            public_network_access="Disabled",
            access_policies=[keyvault.AccessPolicyEntryArgs(
                object_id=HUMAN_GROUP, tenant_id=TENANT,
                permissions=keyvault.PermissionsArgs(secrets=["get", "list"]))])),
    "access-policy-resource": lambda: keyvault.AccessPolicy(
        "ap", vault_name="kv", resource_group_name="rg",
        policy=keyvault.AccessPolicyEntryArgs(
            object_id=HUMAN_GROUP, tenant_id=TENANT,
            permissions=keyvault.PermissionsArgs(secrets=["get"]))),
    "storage-local-user": lambda: storage.LocalUser(
        "lu", account_name="st", resource_group_name="rg", username="bob", has_ssh_password=True),
    "storage-sftp": lambda: storage_account("prod", is_sftp_enabled=True,
                                            is_local_user_enabled=True),
    "acr-token": lambda: containerregistry.Token(
        "tok", registry_name="cr", resource_group_name="rg", token_name="ci",
        scope_map_id="/scopemap"),
    "acr-scope-map": lambda: containerregistry.ScopeMap(
        "sm", registry_name="cr", resource_group_name="rg",
        actions=["repositories/*/content/read"]),
    "workspace-connection-key": lambda: ml.WorkspaceConnection(
        "conn", workspace_name="mlw", resource_group_name="rg",
        properties=ml.AccountKeyAuthTypeWorkspaceConnectionPropertiesArgs(
            auth_type="AccountKey", category="AzureBlob", target="https://x",
            credentials=ml.WorkspaceConnectionAccountKeyArgs(key="secret"))),
    "role-management-policy": lambda: authorization.RoleManagementPolicyAssignment(
        "rmp", scope="/rg", policy_id="/p", role_definition_id=roles.ROLE_IDS["Owner"]),
    "federated-credential-in-prod": lambda: managedidentity.FederatedIdentityCredential(
        "fic", resource_name_=f"id-{SLUG}-prod-deploy", resource_group_name="rg",
        issuer=policies.GITHUB_ISSUER, subject="repo:o/r:environment:prod",
        audiences=[policies.OIDC_AUDIENCE]),
}


@pytest.mark.parametrize("build", SIDE_DOORS.values(), ids=SIDE_DOORS.keys())
def test_prod_access_side_doors_fail(build):
    resource = dataclasses.replace(one(build), protect=True)
    verdicts = found([resource], ctx("prod"), "prod-no-access-side-doors")
    assert [v.resource for v in verdicts] == [resource.name]
    assert "Fix:" in verdicts[0].message
    assert found([resource], ctx("dev"), "prod-no-access-side-doors") == []


def test_connection_through_entra_id_is_no_side_door():
    conn = one(lambda: ml.WorkspaceConnection(
        "conn", workspace_name="mlw", resource_group_name="rg",
        properties=ml.AADAuthTypeWorkspaceConnectionPropertiesArgs(
            auth_type="AAD", category="AzureBlob", target="https://x")))
    assert found([conn], ctx("prod")) == []


@pytest.mark.parametrize("token", ["azure:authorization/assignment:Assignment",
                                   "azapi:index/resource:Resource", "pulumi:providers:azure",
                                   "command:local:Command"])
def test_prod_resources_of_other_providers_fail(token):
    other = Resource(token, "other", {"principalId": HUMAN_GROUP})
    assert [v.policy for v in found([other], ctx("prod"))] == ["prod-known-providers"]
    assert found([other], ctx("dev")) == []


def test_components_and_the_azure_native_provider_are_known():
    ok = [Resource("churn:index:Thing", "thing", custom=False),
          Resource("pulumi:providers:azure-native", "provider")]
    assert found(ok, ctx("prod")) == []


@pytest.mark.parametrize("inputs", [
    {"metadataHost": "arm.example"},  # the deploy identity's token goes to another endpoint
    {"environment": "usgovernment"},
    {"subscriptionId": "11111111-1111-1111-1111-111111111111"},
    {"auxiliaryTenantIds": ["11111111-1111-1111-1111-111111111111"]},
    {"clientId": "11111111-1111-1111-1111-111111111111", "useOidc": True},
], ids=lambda inputs: "-".join(inputs))
@pytest.mark.parametrize("env", ["prod", "bootstrap"])
def test_an_azure_native_provider_with_its_own_settings_fails_in_prod(inputs, env):
    provider = Resource("pulumi:providers:azure-native", "other",
                        {"location": "westeurope", "environment": "public", **inputs})
    context = BOOT if env == "bootstrap" else ctx("prod")
    verdicts = found([provider], context)
    assert [(v.policy, v.resource) for v in verdicts] == [("prod-known-providers", "other")]
    assert all(key in verdicts[0].message for key in inputs if key != "environment"
               or inputs[key] != "public")
    assert found([provider], ctx("dev")) == []


def test_versioned_type_tokens_are_judged_like_current_ones():
    admin = dataclasses.replace(grant("Group", "Owner"),
                                type="azure-native:authorization/v20220401:RoleAssignment")
    assert {v.policy for v in found([admin], ctx("prod"))} == {
        "prod-no-human-write-roles", "role-admin-conditioned"}


# --- secure defaults ---------------------------

@pytest.mark.parametrize("value", [True, None])
def test_storage_shared_key_access_must_be_off_everywhere(value):
    account = one(lambda: storage_account(allow_shared_key_access=value))
    [verdict] = found([account], ctx("dev"))
    assert (verdict.policy, verdict.resource) == ("storage-no-shared-key", "st")
    assert "allow_shared_key_access=False" in verdict.message


@pytest.mark.parametrize(("build", "name"), [
    (lambda: storage_account("prod", public_network_access="Enabled"), "st"),
    (lambda: storage_account("prod", public_network_access=None), "st"),
    (lambda: key_vault("prod", public_network_access="Enabled"), "kv"),
    (lambda: key_vault("prod", public_network_access=None), "kv"),
    (lambda: container_registry("prod", public_network_access="Enabled"), "cr"),
])
def test_prod_data_services_must_be_private(build, name):
    resource = dataclasses.replace(one(build), protect=True)
    [verdict] = found([resource], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-data-services-private", name)
    assert found([resource], ctx("prod", public_network_access="Enabled"),
                 "prod-data-services-private") == []
    [advice] = policies.advisories([resource], ctx("prod", public_network_access="Enabled"))
    assert advice.policy == "prod-workspace-public-opt-out"


@pytest.mark.parametrize(("change", "policy"), [
    ({"local_auth_off": False}, "compute-local-auth-disabled"),
    ({"local_auth_off": None}, "compute-local-auth-disabled"),
    ({"public_ip": True}, "compute-no-public-ssh-or-ip"),
    ({"public_ip": None}, "compute-no-public-ssh-or-ip"),
    ({"ssh": "Enabled"}, "compute-no-public-ssh-or-ip"),
    ({"ssh": "NotSpecified"}, "compute-no-public-ssh-or-ip"),
    ({"ssh": None}, "compute-no-public-ssh-or-ip"),
])
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_compute_local_auth_public_ssh_and_ip(change, policy, env):
    compute = one(lambda: cluster(env, **change))
    assert [(v.policy, v.resource) for v in found([compute], ctx(env))] == [(policy, "cpu")]


def test_compute_instance_with_public_ssh_fails():
    instance = one(lambda: ml.Compute(
        "ci", compute_name="ci-alice", resource_group_name="rg", workspace_name="mlw",
        tags=tags("dev"), properties=ml.ComputeInstanceArgs(
            compute_type="ComputeInstance", disable_local_auth=True,
            properties=ml.ComputeInstancePropertiesArgs(
                vm_size="Standard_DS3_v2", idle_time_before_shutdown="PT60M",
                enable_node_public_ip=False,
                ssh_settings=ml.ComputeInstanceSshSettingsArgs(ssh_public_access="Enabled",
                                                               admin_public_key="ssh-rsa x")))))
    assert [v.policy for v in found([instance], ctx("dev"))] == ["compute-no-public-ssh-or-ip"]


@pytest.mark.parametrize("level", ["NotSpecified", None, "cannotdelete"])
def test_prod_lock_level_must_stop_deletion(level):
    lock = Resource("azure-native:authorization:ManagementLockAtResourceGroupLevel", "lock",
                    {"resourceGroupName": "rg", "level": level})
    [verdict] = found([lock], ctx("prod"))
    assert (verdict.policy, verdict.resource) == ("prod-lock-level", "lock")
    for good in policies.LOCK_LEVELS:
        assert found([dataclasses.replace(lock, properties={"level": good})], ctx("prod")) == []


@pytest.mark.parametrize("token", sorted(policies.STATEFUL_TYPES))
def test_prod_stateful_resources_must_be_protected(prod_env, token):
    stripped = [dataclasses.replace(r, protect=False) if r.type == token else r
                for r in prod_env]
    names = {r.name for r in prod_env if r.type == token}
    verdicts = policies.evaluate(stripped, ctx("prod"))
    assert {(v.policy, v.resource) for v in verdicts} == {
        ("prod-stateful-resources-protected", n) for n in names}
    assert found(stripped, ctx("preprod"), "prod-stateful-resources-protected") == []


# --- the bootstrap ------------------------
# Shaped like the bootstrap of decisions.md: per-environment resource groups (prod-kind ones
# locked), state containers pulumi-state-<env>, keys pulumi-secrets-<env>, deploy identities with
# rights on their own environment only, a read-only preview identity.

BOOT_ENVS = ("dev", "preprod", "prod")
PLATFORM_RG = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{SLUG}-platform"
STATE = f"{PLATFORM_RG}/providers/Microsoft.Storage/storageAccounts/stchurnstate/blobServices/" \
        "default/containers/pulumi-state-"
KEYS = f"{PLATFORM_RG}/providers/Microsoft.KeyVault/vaults/kvchurnsec/keys/pulumi-secrets-"
REGISTRY = f"{PLATFORM_RG}/providers/Microsoft.MachineLearningServices/registries/mlr-churn"


def env_rg(env: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{SLUG}-{env}"


def boot_identity_name(key: str) -> str:
    return f"id-{SLUG}-preview" if key == "preview" else f"id-{SLUG}-{key}-deploy"


def boot_principal(key: str) -> str:
    return principal_id_of(f"id-{key}")


def prod_abac() -> str:
    return ABAC_OK


def bootstrap_stack(*, ci="github") -> list[Resource]:
    def build():
        made = []
        for env in (*BOOT_ENVS, "platform"):
            made.append(resources.ResourceGroup(
                f"rg-{env}", resource_group_name=f"rg-{SLUG}-{env}", tags=tags("platform"),
                opts=None))
            if env in ("prod", "platform"):
                made.append(authorization.ManagementLockAtResourceGroupLevel(
                    f"lock-{env}", resource_group_name=f"rg-{SLUG}-{env}", level="CanNotDelete",
                    lock_name="cannot-delete"))
        for key in (*BOOT_ENVS, "preview"):
            made.append(managedidentity.UserAssignedIdentity(
                f"id-{key}", resource_name_=boot_identity_name(key), resource_group_name="rg",
                tags=tags("platform")))
            subject = ("repo:contoso/churn:pull_request" if key == "preview"
                       else f"repo:contoso/churn:environment:{key}")
            issuer = policies.GITHUB_ISSUER
            if ci == "azure-devops":
                subject = f"sc://contoso/churn/{SLUG}-{key}"
                issuer = f"https://vstoken.dev.azure.com/{naming.PLACEHOLDER_GUID}"
            made.append(managedidentity.FederatedIdentityCredential(
                f"fic-{key}", resource_name_=boot_identity_name(key), resource_group_name="rg",
                issuer=issuer, subject=subject, audiences=[policies.OIDC_AUDIENCE]))
        for env in BOOT_ENVS:
            p = boot_principal(env)
            made += [
                role_assignment(f"{env}-contributor", "ServicePrincipal", "Contributor",
                                principal=p, scope=env_rg(env)),
                role_assignment(f"{env}-rbac-admin", "ServicePrincipal",
                                "Role Based Access Control Administrator", principal=p,
                                scope=env_rg(env), condition=prod_abac(),
                                condition_version="2.0"),
                role_assignment(f"{env}-registry-rbac", "ServicePrincipal",
                                "Role Based Access Control Administrator", principal=p,
                                scope=REGISTRY, condition=prod_abac(), condition_version="2.0"),
                role_assignment(f"{env}-state", "ServicePrincipal",
                                "Storage Blob Data Contributor", principal=p,
                                scope=STATE + env),
                role_assignment(f"{env}-key", "ServicePrincipal", "Key Vault Crypto User",
                                principal=p, scope=KEYS + env),
            ]
        p = boot_principal("preview")
        made += [
            role_assignment("preview-reader", "ServicePrincipal", "Reader", principal=p,
                            scope=env_rg("dev")),
            role_assignment("preview-state", "ServicePrincipal", "Storage Blob Data Reader",
                            principal=p, scope=STATE + "dev"),
            role_assignment("preview-key", "ServicePrincipal", "Key Vault Crypto User",
                            principal=p, scope=KEYS + "preprod"),
            role_assignment("admins-reader", "Group", "Reader", scope=PLATFORM_RG),
        ]
        return made

    recorded = record(build)
    return [dataclasses.replace(r, protect=r.type in policies.STATEFUL_TYPES) for r in recorded]


BOOT = policies.context_for("platform", project=f"{SLUG}-bootstrap")


@pytest.fixture(scope="module")
def boot():
    return bootstrap_stack()


def with_(stack: list[Resource], *extra: Resource, drop: str | None = None) -> list[Resource]:
    return [r for r in stack if r.name != drop] + list(extra)


def test_bootstrap_context_is_judged_as_prod_from_the_project_name():
    assert (BOOT.bootstrap, BOOT.kind, BOOT.environment) == (True, "prod", "platform")
    assert not policies.context_for("platform", project=SLUG).bootstrap


def test_a_bootstrap_scoped_per_environment_passes(boot):
    assert policies.evaluate_all(boot, BOOT) == []


def test_environment_policies_do_not_judge_the_bootstrap(boot):
    """The bootstrap is not a prod environment: no deployer, no workspace allow-list."""
    for name in ("prod-no-human-write-roles", "prod-deployer-identity", "prod-workspace-private",
                 "prod-data-services-private"):
        assert policies.run_policy(policies.POLICIES[name], boot, BOOT) == []


@pytest.mark.parametrize("principal_type", ["User", "user", "Group", "GROUP", "ForeignGroup",
                                            "", "Robot"])
@pytest.mark.parametrize("role", ["Owner", "Contributor", "Storage Blob Data Reader",
                                  "Key Vault Crypto User"])
def test_bootstrap_no_human_above_reader(boot, principal_type, role):
    human = grant(principal_type, role, name="human", scope=PLATFORM_RG)
    verdicts = {v.policy for v in policies.evaluate(with_(boot, human), BOOT)}
    assert "bootstrap-no-human-above-reader" in verdicts
    reader = grant(principal_type, "Reader", name="human", scope=PLATFORM_RG)
    assert found(with_(boot, reader), BOOT, "bootstrap-no-human-above-reader") == []


@pytest.mark.parametrize("scope", [f"/subscriptions/{SUBSCRIPTION}",
                                   f"/subscriptions/{SUBSCRIPTION}/", "/",
                                   "/providers/Microsoft.Management/managementGroups/mg"])
def test_bootstrap_no_identity_at_subscription_scope(boot, scope):
    broad = grant("ServicePrincipal", "Reader", principal=boot_principal("preview"),
                  name="broad", scope=scope)
    verdicts = found(with_(boot, broad), BOOT, "bootstrap-no-subscription-scope")
    assert [v.resource for v in verdicts] == ["broad"]


@pytest.mark.parametrize(("key", "role", "scope"), [
    ("dev", "Contributor", env_rg("prod")),  # dev identity on prod's resources
    ("preprod", "Role Based Access Control Administrator", env_rg("prod")),
    ("dev", "Storage Blob Data Contributor", STATE + "prod"),  # dev writes prod state
    ("dev", "Storage Blob Data Contributor", STATE[:-1]),  # one shared state container
    ("dev", "Key Vault Crypto User", KEYS + "prod"),  # dev decrypts prod secrets
    ("dev", "Key Vault Crypto User", KEYS.split("/keys/")[0]),  # the whole vault
    ("dev", "Contributor", PLATFORM_RG),
    ("dev", "Owner", env_rg("dev")),
    ("dev", "User Access Administrator", env_rg("dev")),
    ("dev", "Storage Blob Data Contributor", env_rg("dev")),  # data role beyond its state
    ("preview", "Contributor", env_rg("dev")),
    ("preview", "Storage Blob Data Contributor", STATE + "dev"),  # blob write on state
    ("preview", "Storage Blob Data Reader", STATE + "prod"),  # reads prod state
    ("preview", "Key Vault Crypto User", KEYS + "prod"),  # decrypts prod secrets
    ("preview", "Key Vault Crypto User", KEYS.split("/keys/")[0]),
    ("preview", "Storage Blob Data Reader", STATE.split("/blobServices")[0]),
    # a "shared" registry or cluster (sharedRegistryId, aksClusterId) inside prod's group
    ("dev", "Role Based Access Control Administrator", env_rg("prod")
     + "/providers/Microsoft.MachineLearningServices/registries/mlr-x"),
    ("dev", "Role Based Access Control Administrator", env_rg("prod")
     + "/providers/Microsoft.ContainerService/managedClusters/aks"),
    ("preprod", "Role Based Access Control Administrator", env_rg("prod").upper()
     + "/providers/Microsoft.ContainerService/managedClusters/aks"),
])
def test_bootstrap_identities_hold_rights_on_their_own_environment_only(boot, key, role, scope):
    extra = grant("ServicePrincipal", role, principal=boot_principal(key), name="extra",
                  scope=scope, **({"condition": ABAC_OK, "condition_version": "2.0"}
                                  if role in ("Owner", "User Access Administrator",
                                              "Role Based Access Control Administrator")
                                  else {}))
    verdicts = found(with_(boot, extra), BOOT, "bootstrap-identity-rights")
    assert [v.resource for v in verdicts] == ["extra"]
    assert boot_identity_name(key) in verdicts[0].message and "Fix:" in verdicts[0].message


def test_bootstrap_identities_may_read_below_the_subscription(boot):
    reads = [grant("ServicePrincipal", "Reader", principal=boot_principal(key), name=f"r-{key}",
                   scope=scope)
             for key in ("dev", "prod", "preview") for scope in (PLATFORM_RG, env_rg("prod"))]
    assert policies.evaluate(with_(boot, *reads), BOOT) == []


def test_bootstrap_rights_traced_through_unknown_principal_ids(boot):
    """In a real first preview the identities' principal ids are unknown; the pack traces them
    through the inputs' dependencies."""
    unknown = Resource(policies.ROLE_ASSIGNMENT, "late", {
        "principalId": UNKNOWN, "principalType": "ServicePrincipal", "scope": env_rg("prod"),
        "roleDefinitionId": roles.role_definition_id(SUBSCRIPTION, "Contributor")},
        dependencies={"principalId": ("id-dev",)})
    [verdict] = found(with_(boot, unknown), BOOT, "bootstrap-identity-rights")
    assert verdict.resource == "late" and "dev deploy identity" in verdict.message


def test_bootstrap_other_service_principals_hold_nothing_beyond_reader(boot):
    stranger = grant("ServicePrincipal", "Contributor", principal=STRANGER_SP, name="stranger",
                     scope=env_rg("prod"))
    [verdict] = found(with_(boot, stranger), BOOT, "bootstrap-identity-rights")
    assert verdict.resource == "stranger" and STRANGER_SP in verdict.message


@pytest.mark.parametrize("condition", [
    ROLE_ONLY,  # no principal type at all
    ABAC_OK.replace("{'ServicePrincipal'}", "{'ServicePrincipal', 'User'}"),
    ABAC_OK.replace("'ServicePrincipal'", "'Group'"),
])
def test_bootstrap_prod_identity_may_only_assign_to_service_principals(boot, condition):
    weak = grant("ServicePrincipal", "Role Based Access Control Administrator",
                 principal=boot_principal("prod"), name="prod-rbac-admin", scope=env_rg("prod"),
                 condition=condition, condition_version="2.0")
    verdicts = found(with_(boot, weak, drop="prod-rbac-admin"), BOOT,
                     "bootstrap-identity-rights")
    assert [v.resource for v in verdicts] == ["prod-rbac-admin"]
    assert "ServicePrincipal" in verdicts[0].message


SUBJECTS = {
    "prod-pull-request": ("prod", "repo:contoso/churn:pull_request"),
    "prod-branch": ("prod", "repo:contoso/churn:ref:refs/heads/main"),
    "prod-tag": ("prod", "repo:contoso/churn:ref:refs/tags/v1"),
    "prod-other-env": ("prod", "repo:contoso/churn:environment:dev"),
    "prod-env-prefix": ("prod", "repo:contoso/churn:environment:prodx"),
    "prod-ado-dev-connection": ("prod", f"sc://contoso/churn/{SLUG}-dev"),
    "dev-pull-request": ("dev", "repo:contoso/churn:pull_request"),
    "preview-environment": ("preview", "repo:contoso/churn:environment:prod"),
    "preview-branch": ("preview", "repo:contoso/churn:ref:refs/heads/main"),
    "preview-prod-connection": ("preview", f"sc://contoso/churn/{SLUG}-prod"),
    "wildcard": ("prod", "repo:contoso/churn:*"),
}


@pytest.mark.parametrize(("key", "subject"), SUBJECTS.values(), ids=SUBJECTS.keys())
def test_bootstrap_federated_credential_subjects(boot, key, subject):
    bad = one(lambda: managedidentity.FederatedIdentityCredential(
        "bad-fic", resource_name_=boot_identity_name(key), resource_group_name="rg",
        issuer=policies.GITHUB_ISSUER, subject=subject, audiences=[policies.OIDC_AUDIENCE]))
    [verdict] = policies.evaluate(with_(boot, bad), BOOT)
    assert (verdict.policy, verdict.resource) == ("federated-credential-subjects", "bad-fic")
    assert repr(subject) in verdict.message and "Fix: trust only" in verdict.message


@pytest.mark.parametrize(("identity", "issuer", "audiences", "problem"), [
    (f"id-{SLUG}-prod-deploy", "https://attacker.example", [policies.OIDC_AUDIENCE], "issuer"),
    (f"id-{SLUG}-prod-deploy", policies.GITHUB_ISSUER, ["api://other"], "audiences"),
    ("id-sneaky", policies.GITHUB_ISSUER, [policies.OIDC_AUDIENCE], "neither"),
])
def test_bootstrap_federated_credential_issuer_audience_and_identity(
        boot, identity, issuer, audiences, problem):
    bad = one(lambda: managedidentity.FederatedIdentityCredential(
        "bad-fic", resource_name_=identity, resource_group_name="rg", issuer=issuer,
        subject="repo:contoso/churn:environment:prod", audiences=audiences))
    [verdict] = found(with_(boot, bad), BOOT, "federated-credential-subjects")
    assert problem in verdict.message


def test_azure_devops_bootstrap_passes_and_advises_on_the_placeholder_org():
    stack = bootstrap_stack(ci="azure-devops")
    assert policies.evaluate(stack, BOOT) == []
    [advice] = policies.advisories(stack, BOOT)
    assert advice.policy == "bootstrap-ado-organization-placeholder"
    assert advice.resource == "Pulumi.platform.yaml" and "adoOrganizationId" in advice.message


@pytest.mark.parametrize("drop", ["lock-prod", "lock-platform"])
def test_bootstrap_locks_the_platform_and_prod_kind_groups(boot, drop):
    [verdict] = found(with_(boot, drop=drop), BOOT, "prod-lock-level")
    assert verdict.resource == f"rg-{drop.split('-')[1]}" and "CanNotDelete" in verdict.message


def test_bootstrap_stateful_resources_and_state_containers_are_protected(boot):
    container = one(lambda: storage.BlobContainer(
        "state-prod", account_name="st", resource_group_name="rg",
        container_name="pulumi-state-prod", public_access="None"))
    [verdict] = found(with_(boot, container), BOOT, "prod-stateful-resources-protected")
    assert verdict.resource == "state-prod"
    assert found(with_(boot, dataclasses.replace(container, protect=True)), BOOT) == []


def test_bootstrap_pim_eligibility_above_reader_fails(boot):
    eligible = pim("Contributor")
    assert [v.policy for v in policies.evaluate(with_(boot, eligible), BOOT)] == [
        "prod-pim-read-only"]


# --- the current bootstrap program ----------

def test_the_current_bootstrap_program_is_judged(project):
    """EXPECTED TO CHANGE with the bootstrap rewrite (per-environment groups, containers and
    keys, no subscription scope): the current program's subscription-scope roles, its shared
    state container and vault-wide key rights, its conditions without a principal type and its
    lock-operator custom role are violations. What it already does right passes: subjects,
    locks, protect, no humans, no side doors."""
    from test_bootstrap import bootstrap_config

    from blueprint_infra.preview import preview_stack

    infra = project({"platform": bootstrap_config()}, bootstrap=True)
    result = preview_stack(infra, "platform")
    assert result.error is None and result.policy_context.bootstrap
    policies_hit = {v.policy for v in result.violations}
    assert policies_hit <= {"bootstrap-no-subscription-scope", "bootstrap-identity-rights",
                            "role-admin-conditioned", "custom-roles-least-privilege"}
    for already_compliant in ("federated-credential-subjects", "bootstrap-no-human-above-reader",
                              "prod-lock-level", "prod-stateful-resources-protected",
                              "prod-no-access-side-doors", "prod-known-providers"):
        assert already_compliant not in policies_hit


ATTACKED_BOOTSTRAP = '''
import pulumi
from pulumi_azure_native import authorization, managedidentity

from blueprint_infra.bootstrap import run_bootstrap

run_bootstrap()
authorization.RoleAssignment(
    "my-owner", principal_id="{human}", principal_type="user",
    role_definition_id="/providers/Microsoft.Authorization/roleDefinitions/{owner}",
    scope="/subscriptions/{sub}/resourceGroups/rg-churn-model-prod",
    role_assignment_name="55555555-5555-5555-5555-555555555555")
managedidentity.FederatedIdentityCredential(
    "prod-from-prs", federated_identity_credential_resource_name="github-prod-pr",
    resource_name_="id-churn-model-prod-deploy", resource_group_name="rg-churn-model-platform",
    issuer="https://token.actions.githubusercontent.com",
    subject="repo:contoso/churn-model:pull_request", audiences=["api://AzureADTokenExchange"])
'''


def test_plan_of_the_bootstrap_names_a_human_owner_and_a_pull_request_subject(project):
    """The issue's check: an edited bootstrap that makes a human Owner and lets pull requests
    act as the prod identity is refused by name, whatever else the bootstrap does."""
    from test_bootstrap import bootstrap_config

    from blueprint_infra.preview import preview_stack

    infra = project({"platform": bootstrap_config()}, bootstrap=True)
    (infra / "__main__.py").write_text(ATTACKED_BOOTSTRAP.format(
        human=HUMAN_GROUP, owner=roles.ROLE_IDS["Owner"], sub=SUBSCRIPTION))
    result = preview_stack(infra, "platform")
    assert result.error is None
    named = {(v.policy, v.resource) for v in result.violations}
    assert {("bootstrap-no-human-above-reader", "my-owner"),
            ("role-admin-conditioned", "my-owner"),
            ("federated-credential-subjects", "prod-from-prs")} <= named


ATTACKED_PROD = '''
import pulumi
from pulumi_azure_native import authorization


def unprotect(args):
    if args.type_ == "azure-native:machinelearningservices:Workspace":
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(
                protect=False)))
    return None


pulumi.runtime.register_stack_transformation(unprotect)

from blueprint_infra.program import run_environment

run_environment()
authorization.RoleAssignment(
    "relabelled", principal_id="{group}", principal_type="ServicePrincipal",
    role_definition_id="/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
    "{contributor}", scope="/subscriptions/{sub}/resourceGroups/rg-churn-model-prod",
    role_assignment_name="55555555-5555-5555-5555-555555555555")
'''


def test_plan_of_prod_sees_a_relabelled_group_and_a_cleared_protect(project):
    from infra_fixtures import DEPLOYER as STACK_DEPLOYER
    from infra_fixtures import stack_config

    from blueprint_infra.preview import preview_stack

    infra = project({"prod": stack_config("prod", "prod")})
    clean = preview_stack(infra, "prod", deploying_object_id=STACK_DEPLOYER)
    assert clean.error is None and clean.violations == []
    (infra / "__main__.py").write_text(ATTACKED_PROD.format(
        group=HUMAN_GROUP, sub=SUBSCRIPTION, contributor=roles.ROLE_IDS["Contributor"]))
    result = preview_stack(infra, "prod", deploying_object_id=STACK_DEPLOYER)
    assert result.error is None
    named = {(v.policy, v.resource) for v in result.violations}
    assert named == {("prod-no-human-write-roles", "relabelled"),
                     ("prod-stateful-resources-protected", "prod-workspace")}


def test_a_workspace_principal_id_written_into_the_inputs_allows_nobody(prod_env):
    """Only what Azure returned names the workspace identity, never an id the program wrote."""
    forged = Resource(policies.ML_WORKSPACE, "forged", {
        "workspaceName": "mlw-x", "tags": tags("prod"),
        "identity": {"type": "UserAssigned", "principalId": STRANGER_SP}}, protect=True)
    stranger = grant("ServicePrincipal", principal=STRANGER_SP)
    verdicts = policies.evaluate([*prod_env, forged, stranger], ctx("prod"))
    assert ("prod-no-human-write-roles", "grant") in {(v.policy, v.resource) for v in verdicts}


@pytest.mark.parametrize(("env", "other"), [("dev", "prod"), ("preprod", "prod"),
                                            ("dev", "preprod"), ("prod", "dev")])
@pytest.mark.parametrize("principal_type", ["User", "ServicePrincipal"])
def test_a_stack_grants_nothing_in_another_environments_group(env, other, principal_type):
    """A dev stack's grant on prod's group is a right in prod, whoever holds it."""
    stack = environment(env)
    elsewhere = grant(principal_type, "Contributor", principal=DEPLOYER, name="elsewhere",
                      scope=env_rg(other).upper() if other == "prod" else env_rg(other))
    verdicts = found(with_(stack, elsewhere), ctx(env), "grants-in-own-environment")
    assert [v.resource for v in verdicts] == ["elsewhere"]
    assert f"rg-{SLUG}-{other}" in verdicts[0].message
    assert found(stack, ctx(env), "grants-in-own-environment") == []
    inside = grant(principal_type, "Reader", principal=DEPLOYER, name="inside",
                   scope=env_rg(env) + "/providers/Microsoft.Storage/storageAccounts/st")
    platform = grant(principal_type, "Reader", principal=DEPLOYER, name="platform",
                     scope=env_rg("platform"))
    assert found(with_(stack, inside, platform), ctx(env), "grants-in-own-environment") == []
