"""Guardrails that hold inside Azure, whatever a program or a deploy identity does.

Two halves, created by different identities on purpose:

- `EnvironmentGuardrails` (`blueprint:index:EnvironmentGuardrails`), created by the BOOTSTRAP
  (platform admin) once per environment at that environment's resource group: Azure Policy
  assignments of the built-in definitions for what the blueprint promises (`PROMISED`), in
  prod-kind environments also the custom "deny write roles to anything but a service principal"
  definition and the Microsoft cloud security benchmark initiative, and a policy exemption, with
  its reason, for every deliberate deviation. The deploy identities hold no policy-write right,
  so a compromised one cannot lift its own guardrails.
- `ResourceLogs` (`blueprint:index:ResourceLogs`) and `PrivateInbound`
  (`blueprint:index:PrivateInbound`), created by the ENVIRONMENT program: diagnostic settings
  that send the resource logs of the workspace, key vault, storage (blob service) and container
  registry to the environment's own Log Analytics workspace, and private endpoints in a
  platform-provided subnet (`<project>:privateEndpointSubnetId`), unless the stack opts out
  (`<project>:privateEndpointOptOut: <reason>`). `run_environment()` calls
  `private_inbound_check` before registering anything, then `protect_environment`.

Definition ids are the built-ins' real names (checked against the Azure/azure-policy repository,
Microsoft cloud security benchmark initiative version 57.56.0); `tests/infra/test_guardrails.py`
encodes, per id, the property its rule reads and asserts the prod program complies.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
from pulumi_azure_native import authorization, monitor, network

from blueprint_infra import roles
from blueprint_infra.settings import PLACEHOLDER_SUBNET_ID

if TYPE_CHECKING:
    from blueprint_infra.components import MlEnvironment
    from blueprint_infra.naming import EnvironmentNames
    from blueprint_infra.settings import EnvironmentSettings

BUILTIN_DEFINITION = "/providers/Microsoft.Authorization/policyDefinitions/{}"
BUILTIN_SET_DEFINITION = "/providers/Microsoft.Authorization/policySetDefinitions/{}"
#: Microsoft cloud security benchmark (Defender for Cloud's default initiative).
BENCHMARK_INITIATIVE = "1f3afdf9-d0c9-4c3d-847f-89da613e70a8"
BENCHMARK_ASSIGNMENT = "mcsb"
DENY_HUMAN_WRITE_ASSIGNMENT = "deny-non-sp-write-roles"
_NAMESPACE = uuid.UUID("b7d0c1e4-6a55-4f0e-8c3a-2d9f1e6b4a70")


@dataclass(frozen=True)
class BuiltinPolicy:
    """A built-in definition the bootstrap assigns at every environment's resource group."""

    assignment: str  # assignment name at the resource group (<= 64 characters)
    definition: str  # the built-in's name (a GUID)
    display_name: str
    effect: str  # Deny where the definition allows it; AuditIfNotExists for existence rules
    reads: str  # the alias (or existence condition) its rule reads
    public_network: bool = False  # non-prod environments are public by design: exempted there


PROMISED: tuple[BuiltinPolicy, ...] = (
    BuiltinPolicy("storage-no-shared-key", "8c6a50c6-9ffd-4ae7-986f-5fa6111f9a54",
                  "Storage accounts should prevent shared key access", "Deny",
                  "Microsoft.Storage/storageAccounts/allowSharedKeyAccess"),
    BuiltinPolicy("storage-no-blob-public-access", "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751",
                  "Storage account public access should be disallowed", "Deny",
                  "Microsoft.Storage/storageAccounts/allowBlobPublicAccess"),
    BuiltinPolicy("storage-no-public-network", "b2982f36-99f2-4db5-8eff-283140c09693",
                  "Storage accounts should disable public network access", "Deny",
                  "Microsoft.Storage/storageAccounts/publicNetworkAccess", public_network=True),
    BuiltinPolicy("kv-purge-protection", "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53",
                  "Key vaults should have deletion protection enabled", "Deny",
                  "Microsoft.KeyVault/vaults/enablePurgeProtection"),
    BuiltinPolicy("kv-rbac-model", "12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5",
                  "Azure Key Vault should use RBAC permission model", "Deny",
                  "Microsoft.KeyVault/vaults/enableRbacAuthorization"),
    BuiltinPolicy("kv-no-public-network", "405c5871-3e91-4644-8a63-58e19d68ff5b",
                  "Azure Key Vault should disable public network access", "Deny",
                  "Microsoft.KeyVault/vaults/publicNetworkAccess", public_network=True),
    BuiltinPolicy("kv-resource-logs", "cf820ca0-f99e-4f3e-84fb-66e913812d21",
                  "Resource logs in Key Vault should be enabled", "AuditIfNotExists",
                  "Microsoft.Insights/diagnosticSettings/logs[*].enabled"),
    BuiltinPolicy("acr-no-admin-user", "dc921057-6b28-4fbe-9b83-f7bec05db6c2",
                  "Container registries should have local admin account disabled", "Deny",
                  "Microsoft.ContainerRegistry/registries/adminUserEnabled"),
    BuiltinPolicy("acr-no-public-network", "0fdf0491-d080-4575-b627-ad0e843cba0f",
                  "Public network access should be disabled for Container registries", "Deny",
                  "Microsoft.ContainerRegistry/registries/publicNetworkAccess",
                  public_network=True),
    BuiltinPolicy("mlw-no-public-network", "438c38d2-3772-465a-a9cc-7a6666a275ce",
                  "Azure Machine Learning Workspaces should disable public network access",
                  "Deny", "Microsoft.MachineLearningServices/workspaces/publicNetworkAccess",
                  public_network=True),
    BuiltinPolicy("mlw-resource-logs", "afe0c3be-ba3b-4544-ba52-0c99672a8ad6",
                  "Resource logs in Azure Machine Learning Workspaces should be enabled",
                  "AuditIfNotExists", "Microsoft.Insights/diagnosticSettings/logs[*].enabled"),
    BuiltinPolicy("mlc-no-local-auth", "e96a9a5f-07ca-471b-9bc5-6a0f33cbd68f",
                  "Azure Machine Learning Computes should have local authentication methods "
                  "disabled", "Deny",
                  "Microsoft.MachineLearningServices/workspaces/computes/disableLocalAuth"),
)

NON_PROD_PUBLIC_NETWORK_REASON = (
    "Deliberate: non-prod environments keep public network access so data scientists reach "
    "their workspace, storage, key vault and registry without a private network; they hold no "
    "prod data (models reach prod only through the registry). Prod denies public access."
)


@dataclass(frozen=True)
class BenchmarkDeviation:
    """A benchmark definition the prod program does not meet, on purpose."""

    reference_id: str  # policyDefinitionReferenceId inside the benchmark initiative
    definition: str
    display_name: str
    category: str  # Waiver | Mitigated
    reason: str


BENCHMARK_DEVIATIONS: tuple[BenchmarkDeviation, ...] = (
    BenchmarkDeviation(
        "storageAccountsShouldUseCustomerManagedKeyForEncryptionMonitoringEffect",
        "6fac406b-40ca-413b-bf8e-0bf964659c25",
        "Storage accounts should use customer-managed key for encryption", "Waiver",
        "Encrypted at rest with Microsoft-managed keys. A customer-managed key needs a key, an "
        "identity with crypto rights and a rotation owner; adopt it when the data "
        "classification demands it (the initiative ships this check Disabled)."),
    BenchmarkDeviation(
        "containerRegistriesShouldBeEncryptedWithACustomerManagedKeyMonitoringEffect",
        "5b9159ae-1701-4a6f-9a7a-aa9c8ddd0580",
        "Container registries should be encrypted with a customer-managed key", "Waiver",
        "Images are encrypted at rest with Microsoft-managed keys; a registry's key can only be "
        "chosen at creation. Same decision as storage (the initiative ships this check "
        "Disabled)."),
    BenchmarkDeviation(
        "azureMachineLearningWorkspacesShouldBeEncryptedWithACustomerManagedKeyMonitoringEffect",
        "ba769a63-b8cc-4b2d-abf6-ac33c7204be8",
        "Azure Machine Learning workspaces should be encrypted with a customer-managed key",
        "Waiver",
        "The prod workspace is an HBI workspace (hbiWorkspace: true) with Microsoft-managed "
        "keys; a customer-managed key can only be set when a workspace is created and adds "
        "billed Cosmos DB, Search and Storage resources (the initiative ships this check "
        "Disabled)."),
    BenchmarkDeviation(
        "azureMachineLearningComputesShouldBeInAVirtualNetwork",
        "7804b5c7-01dc-4723-969b-ae300cc07ff1",
        "Azure Machine Learning Computes should be in a virtual network", "Mitigated",
        "The cluster runs in the workspace's managed virtual network (isolation mode "
        "AllowOnlyApprovedOutbound in prod), Microsoft's replacement for a customer subnet; "
        "the rule predates managed networks and only looks for subnet.id."),
)


def assignment_id(scope: str, name: str) -> str:
    return f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}"


def read_only_role_guids() -> list[str]:
    return sorted(roles.READ_ONLY_ROLES)


def deny_non_service_principal_rule(read_only_guids: Sequence[str]) -> dict:
    """Deny a role assignment of any role outside `read_only_guids` to a principal whose
    declared type is not ServicePrincipal. A request without a principal type is denied too:
    Azure Policy only sees the type the request declares (the Azure/azure-policy README lists
    `roleAssignments/principalType` among properties a request may leave out). Comparisons in
    Azure Policy are case-insensitive, so `servicePrincipal` matches and `group` does not."""
    principal_type = "Microsoft.Authorization/roleAssignments/principalType"
    role = "Microsoft.Authorization/roleAssignments/roleDefinitionId"
    return {
        "if": {"allOf": [
            {"field": "type", "equals": "Microsoft.Authorization/roleAssignments"},
            {"anyOf": [
                {"field": principal_type, "exists": "false"},
                {"field": principal_type, "notEquals": "ServicePrincipal"},
            ]},
            {"value": f"[last(split(field('{role}'), '/'))]", "notIn": list(read_only_guids)},
        ]},
        "then": {"effect": "deny"},
    }


# --- bootstrap side: policy at each environment's resource group ------------------------------

@dataclass
class EnvironmentGuardrailsArgs:
    slug: str
    environment: str
    kind: str  # dev | staging | prod (naming.environment_kind)
    subscription_id: str
    resource_group_name: str
    #: resources the assignments wait for, e.g. the environment's resource group
    after: list[pulumi.Resource] = field(default_factory=list)

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group_name}"


class EnvironmentGuardrails(pulumi.ComponentResource):
    """Azure Policy at one environment's resource group (created by the bootstrap)."""

    def __init__(self, name: str, args: EnvironmentGuardrailsArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:EnvironmentGuardrails", name, None, opts)
        scope = args.resource_group_id
        prod = args.kind == "prod"
        label = f"{args.slug} {args.environment}"

        def child(*after: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *after])

        self.assignments: dict[str, authorization.PolicyAssignment] = {}
        self.exemptions: dict[str, authorization.PolicyExemption] = {}
        for policy in PROMISED:
            assignment = authorization.PolicyAssignment(
                f"{name}-{policy.assignment}",
                policy_assignment_name=policy.assignment,
                scope=scope,
                policy_definition_id=BUILTIN_DEFINITION.format(policy.definition),
                display_name=f"{label}: {policy.display_name}"[:128],
                description="MLOps Blueprint guardrail, assigned by the project's bootstrap.",
                parameters={"effect": authorization.ParameterValuesValueArgs(value=policy.effect)},
                non_compliance_messages=[authorization.NonComplianceMessageArgs(
                    message=f"MLOps Blueprint guardrail of {label}: {policy.display_name}.",
                )],
                opts=child(),
            )
            self.assignments[policy.assignment] = assignment
            if policy.public_network and not prod:
                self._exempt(f"{name}-{policy.assignment}", scope, policy.assignment, "Waiver",
                             NON_PROD_PUBLIC_NETWORK_REASON, label, assignment)

        self.definition: authorization.PolicyDefinition | None = None
        if prod:
            definition_name = str(uuid.uuid5(
                _NAMESPACE, f"{args.subscription_id}|{args.slug}|{args.environment}|deny-non-sp"
            ))
            self.definition = authorization.PolicyDefinition(
                f"{name}-deny-non-sp-definition",
                policy_definition_name=definition_name,
                policy_type="Custom",
                mode="All",
                display_name=f"{label}: write roles only for service principals"[:128],
                description=(
                    "Denies role assignments whose principal type is not ServicePrincipal for "
                    "any role that is not read-only (MLOps Blueprint, prod)."
                ),
                metadata={"category": "Authorization", "createdBy": "mlops-blueprint"},
                policy_rule=deny_non_service_principal_rule(read_only_role_guids()),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.assignments[DENY_HUMAN_WRITE_ASSIGNMENT] = authorization.PolicyAssignment(
                f"{name}-{DENY_HUMAN_WRITE_ASSIGNMENT}",
                policy_assignment_name=DENY_HUMAN_WRITE_ASSIGNMENT,
                scope=scope,
                policy_definition_id=(
                    f"/subscriptions/{args.subscription_id}/providers/Microsoft.Authorization/"
                    f"policyDefinitions/{definition_name}"
                ),
                display_name=f"{label}: write roles only for service principals"[:128],
                description="No user or group gets a write role in prod (MLOps Blueprint).",
                non_compliance_messages=[authorization.NonComplianceMessageArgs(
                    message=f"{label}: only service principals (the deploy identity, the "
                    "workspace's identity) may hold a role that writes; humans get read-only "
                    "roles.",
                )],
                opts=child(self.definition),
            )
            # The benchmark itself, so its findings and our deviations show in this scope.
            benchmark = authorization.PolicyAssignment(
                f"{name}-{BENCHMARK_ASSIGNMENT}",
                policy_assignment_name=BENCHMARK_ASSIGNMENT,
                scope=scope,
                policy_definition_id=BUILTIN_SET_DEFINITION.format(BENCHMARK_INITIATIVE),
                display_name=f"{label}: Microsoft cloud security benchmark",
                description="Audit only (the initiative's defaults); deviations are exempted "
                "with their reasons.",
                opts=child(),
            )
            self.assignments[BENCHMARK_ASSIGNMENT] = benchmark
            for deviation in BENCHMARK_DEVIATIONS:
                self._exempt(
                    f"{name}-{BENCHMARK_ASSIGNMENT}-{deviation.definition[:8]}", scope,
                    BENCHMARK_ASSIGNMENT, deviation.category, deviation.reason, label, benchmark,
                    reference_ids=[deviation.reference_id],
                    exemption_name=f"mcsb-{deviation.definition}",
                )
        self.register_outputs({
            "assignments": sorted(self.assignments),
            "exemptions": sorted(self.exemptions),
        })

    def _exempt(self, resource_name: str, scope: str, assignment: str, category: str,
                reason: str, label: str, after: pulumi.Resource, *,
                reference_ids: list[str] | None = None,
                exemption_name: str | None = None) -> None:
        exemption_name = exemption_name or f"{assignment}-exemption"
        self.exemptions[exemption_name] = authorization.PolicyExemption(
            f"{resource_name}-exemption",
            policy_exemption_name=exemption_name,
            scope=scope,
            policy_assignment_id=assignment_id(scope, assignment),
            policy_definition_reference_ids=reference_ids,
            exemption_category=category,
            display_name=f"{label}: {category.lower()} of {assignment}"[:128],
            description=reason,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[after]),
        )


# --- environment side: resource logs -----------------------------------------------------------

@dataclass
class ResourceLogsArgs:
    #: label (workspace, key_vault, storage_blob, container_registry) -> resource id
    sources: Mapping[str, pulumi.Input[str]]
    log_analytics_workspace_id: pulumi.Input[str]
    setting_name: str  # the diagnostic setting's name on every source
    after: list[pulumi.Resource] = field(default_factory=list)


class ResourceLogs(pulumi.ComponentResource):
    """Every resource log category (category group `allLogs`) of each source to the
    environment's own Log Analytics workspace."""

    def __init__(self, name: str, args: ResourceLogsArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:ResourceLogs", name, None, opts)
        self.settings: dict[str, monitor.DiagnosticSetting] = {}
        for label, resource_id in args.sources.items():
            self.settings[label] = monitor.DiagnosticSetting(
                f"{name}-{label.replace('_', '-')}",
                name=args.setting_name,
                resource_uri=resource_id,
                workspace_id=args.log_analytics_workspace_id,
                logs=[monitor.DiagnosticsLogSettingsArgs(category_group="allLogs", enabled=True)],
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.after),
            )
        self.register_outputs({"sources": sorted(self.settings)})


def blob_service_id(storage_account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Blob logs are emitted by the account's blob service sub-resource, not the account."""
    return pulumi.Output.concat(storage_account_id, "/blobServices/default")


# --- environment side: the private inbound path ------------------------------------------------

#: target label -> (private link group id, DNS zone the platform's resolver must serve)
PRIVATE_ENDPOINT_GROUPS: dict[str, tuple[str, str]] = {
    "workspace": ("amlworkspace", "privatelink.api.azureml.ms, privatelink.notebooks.azure.net"),
    "storage": ("blob", "privatelink.blob.core.windows.net"),
    "key_vault": ("vault", "privatelink.vaultcore.azure.net"),
    "container_registry": ("registry", "privatelink.azurecr.io"),
}


@dataclass
class PrivateInboundArgs:
    subnet_id: str
    #: target label of PRIVATE_ENDPOINT_GROUPS -> (resource name, resource id)
    targets: Mapping[str, tuple[str, pulumi.Input[str]]]
    resource_group_name: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    after: list[pulumi.Resource] = field(default_factory=list)


class PrivateInbound(pulumi.ComponentResource):
    """A private endpoint per target in the platform's subnet: the workspace (`amlworkspace`)
    and, so that a runner in that network can upload, read secrets and push images, the
    storage account's blob service, the key vault and the container registry."""

    def __init__(self, name: str, args: PrivateInboundArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:PrivateInbound", name, None, opts)
        self.endpoints: dict[str, network.PrivateEndpoint] = {}
        self.endpoint_names: dict[str, str] = {}
        for label, (resource_name, resource_id) in args.targets.items():
            group_id = PRIVATE_ENDPOINT_GROUPS[label][0]
            endpoint_name = f"pe-{resource_name}-{group_id}"[:80]
            self.endpoint_names[label] = endpoint_name
            self.endpoints[label] = network.PrivateEndpoint(
                f"{name}-{label.replace('_', '-')}",
                private_endpoint_name=endpoint_name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                subnet=network.SubnetArgs(id=args.subnet_id),
                custom_network_interface_name=f"nic-{endpoint_name}"[:80],
                private_link_service_connections=[network.PrivateLinkServiceConnectionArgs(
                    name=endpoint_name,
                    private_link_service_id=resource_id,
                    group_ids=[group_id],
                )],
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.after),
            )
        self.register_outputs({"endpoints": sorted(self.endpoints)})


def private_inbound_check(settings: EnvironmentSettings,
                          dry_run: bool) -> tuple[str, str | None]:
    """Which subnet the private endpoints go to, and a one-line report.

    Returns `(subnet_id, warning)`; `subnet_id` is "" when none are created. A prod-kind stack
    must set `privateEndpointSubnetId` or `privateEndpointOptOut`: a real update without either
    raises `pulumi.RunError`; a preview warns and shows the endpoints in a placeholder subnet,
    so a project generated with `--defaults` previews the shape it will have.
    """
    subnet = settings.private_endpoint_subnet_id
    if subnet:
        return subnet, None
    if not settings.is_prod:
        return "", None
    if settings.private_endpoint_opt_out:
        return "", (
            f"{settings.project}:privateEndpointOptOut is set "
            f"({settings.private_endpoint_opt_out!r}): the prod workspace gets no private "
            "endpoint from this program"
        )
    problem = (
        f"{settings.project}:privateEndpointSubnetId is empty: set it to the platform's "
        "private-endpoint subnet (ARM id), or set privateEndpointOptOut to the reason the prod "
        "workspace needs no private endpoint"
    )
    if dry_run:
        return PLACEHOLDER_SUBNET_ID, f"preview only: {problem}; a real update would be refused"
    raise pulumi.RunError(f"refusing to deploy prod stack {settings.environment!r}: {problem}")


# --- the environment program's hook ----------------------------------------------------------

@dataclass
class EnvironmentProtection:
    resource_logs: ResourceLogs
    private_inbound: PrivateInbound | None
    #: target label -> private endpoint name (what the platform's DNS must resolve)
    private_endpoints: dict[str, str]


def protect_environment(settings: EnvironmentSettings, names: EnvironmentNames,
                        env: MlEnvironment, private_subnet_id: str) -> EnvironmentProtection:
    """Resource logs and (when `private_subnet_id` is set) private endpoints for one
    environment; `env` is the program's `MlEnvironment`, `names` its `EnvironmentNames`."""
    after = [env.workspace, env.key_vault, env.storage_account, env.container_registry,
             env.log_analytics]
    logs = ResourceLogs(
        f"{settings.environment}-resource-logs",
        ResourceLogsArgs(
            sources={
                "workspace": env.workspace.id,
                "key_vault": env.key_vault.id,
                "storage_blob": blob_service_id(env.storage_account.id),
                "container_registry": env.container_registry.id,
            },
            log_analytics_workspace_id=env.log_analytics.id,
            setting_name=f"to-{names.log_analytics}",
            after=after,
        ),
    )
    inbound = None
    endpoints: dict[str, str] = {}
    if private_subnet_id:
        inbound = PrivateInbound(
            f"{settings.environment}-private",
            PrivateInboundArgs(
                subnet_id=private_subnet_id,
                targets={
                    "workspace": (names.workspace, env.workspace.id),
                    "storage": (names.storage_account, env.storage_account.id),
                    "key_vault": (names.key_vault, env.key_vault.id),
                    "container_registry": (names.container_registry,
                                           env.container_registry.id),
                },
                resource_group_name=names.resource_group,
                location=settings.location,
                tags=settings.tags,
                after=after,
            ),
        )
        endpoints = dict(inbound.endpoint_names)
    return EnvironmentProtection(resource_logs=logs, private_inbound=inbound,
                                 private_endpoints=endpoints)
