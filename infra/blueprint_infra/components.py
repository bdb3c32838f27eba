"""The environment program's components: one per concern.

- `MlEnvironment` (`blueprint:index:MlEnvironment`): storage, key vault, Log Analytics,
  Application Insights, container registry, the Azure ML workspace wired to them, a CPU cluster
  that scales to zero, and in prod `protect`. All in the environment's resource group, which the
  bootstrap created (with prod's CanNotDelete lock): this program only uses it by name, so the
  deploy identity needs no rights above its own group.
- `AccessControl` (`blueprint:index:AccessControl`): the role assignments of `rbac.py` for the
  environment's kind, with deterministic names.
- `KubernetesAttach` (`blueprint:index:KubernetesAttach`): a shared AKS cluster attached as
  compute type `Kubernetes` in the environment's own namespace.

Components take plain validated settings and names; they never read config or compute names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    authorization,
    containerregistry,
    keyvault,
    operationalinsights,
    storage,
)
from pulumi_azure_native import (
    machinelearningservices as ml,
)

from blueprint_infra import rbac, roles
from blueprint_infra.naming import EnvironmentNames
from blueprint_infra.settings import EnvironmentSettings


def _child(parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


# --- the workspace and what it depends on ----------------------------------------------------

@dataclass
class MlEnvironmentArgs:
    settings: EnvironmentSettings
    names: EnvironmentNames
    tenant_id: str
    subscription_id: str


class MlEnvironment(pulumi.ComponentResource):
    """One environment's Azure ML workspace and everything it is wired to."""

    def __init__(self, name: str, args: MlEnvironmentArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:MlEnvironment", name, None, opts)
        s, n = args.settings, args.names
        prod = s.is_prod
        private = s.public_network_access == "Disabled"
        tags = s.tags
        # Children take names, not the parents' Outputs, plus an explicit dependency: the inputs
        # are then known in every preview and under any mock engine.
        def in_group(*after: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
            return _child(self, depends_on=list(after), **kwargs)

        # Stateful resources in prod cannot be deleted by a `pulumi up` or `destroy` by mistake.

        # The bootstrap created the group (and prod's lock); it is used here by name only.
        rg_name = n.resource_group
        self.resource_group_id = (
            f"/subscriptions/{args.subscription_id}/resourceGroups/{rg_name}"
        )

        self.storage_account = storage.StorageAccount(
            f"{name}-storage",
            account_name=n.storage_account,
            resource_group_name=rg_name,
            location=s.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name="Standard_ZRS" if prod else "Standard_LRS"),
            allow_blob_public_access=False,
            allow_shared_key_access=False,  # the workspace uses identity-based datastores
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            public_network_access=s.public_network_access,
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action="Deny" if private else "Allow", bypass="AzureServices"
            ),
            tags=tags,
            opts=in_group(protect=prod),
        )
        self.blob_container = storage.BlobContainer(
            f"{name}-data",
            account_name=n.storage_account,
            resource_group_name=rg_name,
            container_name=n.blob_container,
            public_access="None",
            opts=in_group(self.storage_account),
        )

        self.key_vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=n.key_vault,
            resource_group_name=rg_name,
            location=s.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=90 if prod else 7,
                enable_purge_protection=True,  # cannot be turned off once on
                public_network_access=s.public_network_access,
                network_acls=keyvault.NetworkRuleSetArgs(
                    default_action="Deny" if private else "Allow", bypass="AzureServices"
                ),
            ),
            tags=tags,
            opts=in_group(protect=prod),
        )

        self.log_analytics = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=n.log_analytics,
            resource_group_name=rg_name,
            location=s.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=90 if prod else 30,
            tags=tags,
            opts=in_group(protect=prod),
        )
        self.app_insights = applicationinsights.Component(
            f"{name}-appi",
            resource_name_=n.app_insights,
            resource_group_name=rg_name,
            location=s.location,
            kind="web",
            application_type="web",
            workspace_resource_id=self.log_analytics.id,
            ingestion_mode="LogAnalytics",
            tags=tags,
            opts=in_group(),
        )

        # A registry without public access needs Premium (private link for the managed network).
        self.container_registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=n.container_registry,
            resource_group_name=rg_name,
            location=s.location,
            sku=containerregistry.SkuArgs(name="Premium" if private else "Basic"),
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            public_network_access=s.public_network_access,
            tags=tags,
            opts=in_group(protect=prod),
        )

        self.workspace = ml.Workspace(
            f"{name}-workspace",
            workspace_name=n.workspace,
            resource_group_name=rg_name,
            location=s.location,
            friendly_name=f"{s.slug} {s.environment}",
            description=f"Azure ML workspace of {s.slug}, environment {s.environment} "
            f"({s.kind})",
            sku=ml.SkuArgs(name="Basic", tier="Basic"),
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            storage_account=self.storage_account.id,
            key_vault=self.key_vault.id,
            application_insights=self.app_insights.id,
            container_registry=self.container_registry.id,
            system_datastores_auth_mode="identity",
            public_network_access=s.public_network_access,
            managed_network=ml.ManagedNetworkSettingsArgs(
                # Approved outbound only, without FQDN rules (those provision an Azure Firewall).
                isolation_mode="AllowOnlyApprovedOutbound" if private else "AllowInternetOutbound",
            ),
            hbi_workspace=prod,
            v1_legacy_mode=False,
            tags=tags,
            opts=in_group(protect=prod),
        )
        self.workspace_principal_id: pulumi.Output[str] = self.workspace.identity.apply(
            lambda identity: (identity.principal_id if identity else None) or ""
        )

        self.compute_cluster = ml.Compute(
            f"{name}-cpu",
            compute_name=n.compute_cluster,
            workspace_name=n.workspace,
            resource_group_name=rg_name,
            location=s.location,
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                disable_local_auth=True,
                description="CPU cluster; scales to zero when idle",
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=s.compute_vm_size,
                    vm_priority="Dedicated",
                    os_type="Linux",
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=0,
                        max_node_count=s.compute_max_nodes,
                        node_idle_time_before_scale_down="PT120S",
                    ),
                    enable_node_public_ip=False,  # the managed network carries the traffic
                    remote_login_port_public_access="Disabled",
                ),
            ),
            tags=tags,
            opts=in_group(self.workspace),
        )

        self.register_outputs({
            "resource_group_name": rg_name,
            "workspace_name": n.workspace,
            "workspace_id": self.workspace.id,
            "workspace_principal_id": self.workspace_principal_id,
        })

    def scopes(self) -> dict[str, pulumi.Input[str]]:
        """The RBAC table's environment scopes, as resource ids."""
        return {
            "resource_group": self.resource_group_id,
            "workspace": self.workspace.id,
            "storage_account": self.storage_account.id,
            "key_vault": self.key_vault.id,
            "container_registry": self.container_registry.id,
        }


# --- role assignments ------------------------------------------------------------------------

@dataclass
class AccessControlArgs:
    kind: str
    subscription_id: str
    #: scope key of rbac.SCOPE_LABELS -> resource id; a scope left out skips its rows
    scopes: Mapping[str, pulumi.Input[str]]
    #: principal key of rbac.PRINCIPAL_TYPES -> object id; a principal left out skips its rows
    principals: Mapping[str, pulumi.Input[str]]
    description_prefix: str = ""
    grants: list[rbac.Grant] = field(default_factory=list)  # default: rbac.grants_for(kind)


class AccessControl(pulumi.ComponentResource):
    """Creates the role assignments of the RBAC table that apply to this environment."""

    def __init__(self, name: str, args: AccessControlArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:AccessControl", name, None, opts)
        self.assignments: dict[tuple[str, str, str], authorization.RoleAssignment] = {}
        for grant in args.grants or rbac.grants_for(args.kind):
            scope = args.scopes.get(grant.scope)
            principal_id = args.principals.get(grant.principal)
            if scope is None or principal_id is None:
                continue
            role_definition_id = roles.role_definition_id(args.subscription_id, grant.role)
            assignment_name = pulumi.Output.all(scope, principal_id).apply(
                lambda values, rd=role_definition_id: rbac.assignment_name(
                    values[0] or "", values[1] or "", rd
                )
            )
            key = (grant.principal, grant.scope, grant.role)
            self.assignments[key] = authorization.RoleAssignment(
                f"{name}-{grant.principal}-{grant.scope}-{_slug(grant.role)}".replace("_", "-"),
                role_assignment_name=assignment_name,
                principal_id=principal_id,
                principal_type=grant.principal_type,
                role_definition_id=role_definition_id,
                scope=scope,
                description=f"{args.description_prefix}{grant.why}"[:1024],
                opts=_child(self),
            )
        self.register_outputs({"count": len(self.assignments)})

    def on_scope(self, scope: str) -> list[authorization.RoleAssignment]:
        return [a for (_, s, _), a in self.assignments.items() if s == scope]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


# --- shared AKS cluster ----------------------------------------------------------------------

@dataclass
class KubernetesAttachArgs:
    settings: EnvironmentSettings
    names: EnvironmentNames
    workspace_name: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class KubernetesAttach(pulumi.ComponentResource):
    """Attaches the project's shared AKS cluster as compute type `Kubernetes` (not the legacy
    `AKS` type: one cluster serves several workspaces, each in its own namespace). The AzureML
    cluster extension is installed once per cluster by the bootstrap."""

    def __init__(self, name: str, args: KubernetesAttachArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:KubernetesAttach", name, None, opts)
        s, n = args.settings, args.names
        self.compute = ml.Compute(
            f"{name}-compute",
            compute_name=n.kubernetes_compute,
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            location=s.location,
            properties=ml.KubernetesArgs(
                compute_type="Kubernetes",
                disable_local_auth=True,  # Entra ID only (policy compute-local-auth-disabled)
                resource_id=s.aks_cluster_id,
                description=f"Shared AKS cluster, namespace {n.kubernetes_namespace}",
                properties=ml.KubernetesPropertiesArgs(
                    namespace=n.kubernetes_namespace,
                    default_instance_type="defaultinstancetype",
                ),
            ),
            tags=s.tags,
            opts=_child(self, depends_on=args.depends_on),
        )
        self.namespace = n.kubernetes_namespace
        self.register_outputs({"compute_name": n.kubernetes_compute, "namespace": self.namespace})
