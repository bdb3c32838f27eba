"""Policies over recorded resources: plain validator functions, one per policy.

Two runners share these functions:

- `blueprint plan`, through the offline preview (`blueprint_infra.preview`), calls
  `evaluate(resources, context)` on the resources the program registered under Pulumi's mocks;
- `pulumi preview --policy-pack infra/policy_pack` runs them inside a pulumi-policy pack, through
  `blueprint_infra.policy_adapter`.

Every policy has one enforcement level. `mandatory` violations fail `plan` (exit 1) and block a
`pulumi up`; `advisory` ones are reported and never fail anything: `evaluate` returns only the
mandatory ones, `advisories` the advisory ones, `evaluate_all` both. A fresh project made with
`--defaults` carries placeholder ids, which are advisories: its `plan` passes, and says what a
human must fill in before a real deployment.

Resources carry the inputs as the provider receives them (camelCase keys, as pulumi-azure-native
v3 sends them; the recordings in tests/infra/fixtures come from the real SDK under mocks). A value
that a preview cannot know yet is `UNKNOWN`; validators never fail on it. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from blueprint_infra import naming, roles


@dataclass(frozen=True)
class Resource:
    """One resource as the provider receives it."""

    type: str  # type token, e.g. "azure-native:storage:StorageAccount"
    name: str  # Pulumi logical name
    properties: dict = field(default_factory=dict)  # camelCase inputs, nested dicts/lists
    protect: bool = False


@dataclass(frozen=True)
class PolicyContext:
    environment: str  # e.g. "prod", "preprod"
    kind: str  # "dev" | "staging" | "prod"
    configured_deployer: str | None  # stack config deployerObjectId
    deploying_identity: str | None  # object id the program ran as; None when unknown
    public_network_opt_out: bool = False  # prod stack explicitly set publicNetworkAccess: Enabled


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    message: str  # what is wrong AND the fix
    enforcement: str = "mandatory"  # "mandatory" (fails plan) or "advisory" (reported only)

    def as_dict(self) -> dict[str, str]:
        return {"policy": self.policy, "resource": self.resource, "message": self.message}


class _Unknown:
    """A value a preview cannot know yet (it depends on another resource's output)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()

MANDATORY = "mandatory"
ADVISORY = "advisory"

# --- type tokens -----------------------------------------------------------------------------

RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
KEY_VAULT = "azure-native:keyvault:Vault"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
CONTAINER_REGISTRY = "azure-native:containerregistry:Registry"
ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
ML_REGISTRY = "azure-native:machinelearningservices:Registry"
ML_COMPUTE = "azure-native:machinelearningservices:Compute"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"

#: Tags every taggable resource carries (cost reports and ownership depend on them).
REQUIRED_TAGS: tuple[str, ...] = ("project", "environment", "cost-center", "managed-by")

#: Types that take tags. Role assignments, blob containers, extensions, locks and federated
#: credentials do not, so they are not asked to.
TAGGABLE_TYPES: frozenset[str] = frozenset({
    RESOURCE_GROUP, STORAGE_ACCOUNT, KEY_VAULT, LOG_ANALYTICS, APP_INSIGHTS, CONTAINER_REGISTRY,
    ML_WORKSPACE, ML_REGISTRY, ML_COMPUTE, IDENTITY,
})

#: The input that carries each type's Azure name, and the `naming.AZURE_NAME_RULES` rule for it.
NAME_INPUTS: dict[str, tuple[str, str]] = {
    RESOURCE_GROUP: ("resourceGroupName", "resource_group"),
    STORAGE_ACCOUNT: ("accountName", "storage_account"),
    BLOB_CONTAINER: ("containerName", "blob_container"),
    KEY_VAULT: ("vaultName", "key_vault"),
    LOG_ANALYTICS: ("workspaceName", "log_analytics"),
    APP_INSIGHTS: ("resourceName", "app_insights"),
    CONTAINER_REGISTRY: ("registryName", "container_registry"),
    ML_WORKSPACE: ("workspaceName", "workspace"),
    ML_REGISTRY: ("registryName", "ml_registry"),
    ML_COMPUTE: ("computeName", "compute_cluster"),  # Kubernetes attach: see _name_rule
    IDENTITY: ("resourceName", "identity"),
}

_NAME_RULE_TEXT: dict[str, str] = {
    "resource_group": "1-90 letters, digits, '_-.()', not ending in '.'",
    "storage_account": "3-24 lowercase letters and digits, globally unique",
    "blob_container": "3-63 lowercase letters, digits and single hyphens, starting and ending "
    "with a letter or digit",
    "key_vault": "3-24 letters, digits and single hyphens, starting with a letter, not ending "
    "with a hyphen, globally unique",
    "log_analytics": "4-63 letters, digits and hyphens, starting and ending alphanumeric",
    "app_insights": "1-255 letters, digits, '_-.()'",
    "container_registry": "5-50 letters and digits, globally unique",
    "workspace": "3-33 letters, digits and hyphens, starting alphanumeric",
    "ml_registry": "3-33 letters, digits, '_' and '-', starting alphanumeric",
    "compute_cluster": "3-32 letters, digits and hyphens, starting with a letter",
    "kubernetes_compute": "2-16 letters, digits and hyphens, starting with a letter",
    "kubernetes_namespace": "1-63 lowercase letters, digits and hyphens, starting and ending "
    "alphanumeric",
    "identity": "3-128 letters, digits, '_' and '-', starting alphanumeric",
}


# --- helpers ---------------------------------------------------------------------------------

def _get(properties: object, *path: str) -> object:
    """The value at a nested path, None when any step is missing."""
    value = properties
    for key in path:
        if value is UNKNOWN:
            return UNKNOWN
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _of_type(resources: Iterable[Resource], *types: str) -> Iterator[Resource]:
    return (r for r in resources if r.type in types)


def _truthy(value: object) -> bool:
    """True for an explicit true (bools, or the strings some providers echo back)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _explicitly_false(value: object) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _stack_file(context: PolicyContext) -> str:
    return f"Pulumi.{context.environment}.yaml"


Finding = tuple[str, str]  # (resource logical name, message naming the fix)


# --- validators ------------------------------------------------------------------------------

def check_prod_no_human_write_roles(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod, no User, Group or ForeignGroup holds a role outside roles.READ_ONLY_ROLES."""
    if context.kind != "prod":
        return
    for r in _of_type(resources, ROLE_ASSIGNMENT):
        role_id = r.properties.get("roleDefinitionId")
        principal_type = r.properties.get("principalType")
        if principal_type is UNKNOWN:
            continue
        if role_id is UNKNOWN and principal_type in roles.HUMAN_PRINCIPAL_TYPES:
            # A role computed during the preview (e.g. a custom role being created) cannot be
            # shown to be read-only: a human in prod gets only a known built-in read role.
            principal = r.properties.get("principalId")
            yield r.name, (
                f"role assignment '{r.name}' gives {principal_type} {principal} a role that is "
                f"not known until deployment, in prod. Fix: give humans in "
                f"prod a built-in read-only role by its id, or remove the assignment."
            )
            continue
        if not isinstance(role_id, str):
            continue
        guid = roles.role_guid(role_id)
        if guid in roles.READ_ONLY_ROLES:
            continue
        role = roles.role_name(guid)
        principal = r.properties.get("principalId")
        scope = r.properties.get("scope")
        scope_text = "" if scope in (None, UNKNOWN) else f" at scope {scope}"
        read_roles = ", ".join(sorted(roles.role_name(g) for g in roles.READ_ONLY_ROLES))
        if principal_type in roles.HUMAN_PRINCIPAL_TYPES:
            yield r.name, (
                f"role assignment '{r.name}' gives {principal_type} {principal} the write role "
                f"'{role}'{scope_text} in prod, where only the deploy service principal may "
                f"change anything. Fix: remove this assignment, or give a read-only role "
                f"({read_roles}); make changes through the prod pipeline."
            )
        elif principal_type is None:
            yield r.name, (
                f"role assignment '{r.name}' gives principal {principal} the write role "
                f"'{role}'{scope_text} in prod without a principalType, so nothing proves it is "
                f"not a human. Fix: set principalType (ServicePrincipal for the deploy or "
                f"workload identity), or use a read-only role ({read_roles})."
            )


def check_prod_deployer_identity(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Prod names its deploy identity, and the program ran as that identity."""
    if context.kind != "prod":
        return
    configured = (context.configured_deployer or "").strip()
    where = _stack_file(context)
    if not configured:
        yield where, (
            f"prod stack '{context.environment}' does not set deployerObjectId, so nothing "
            f"stops a human from deploying it. Fix: set <project>:deployerObjectId in {where} to "
            f"the object id of the prod deploy service principal."
        )
        return
    if not naming.GUID_PATTERN.match(configured):
        yield where, (
            f"deployerObjectId '{configured}' in {where} is not an Entra object id. Fix: set it "
            f"to the GUID object id of the prod deploy service principal."
        )
        return
    deploying = context.deploying_identity
    if deploying and deploying.lower() != configured.lower():
        yield where, (
            f"prod stack '{context.environment}' is being deployed by {deploying}, not by the "
            f"configured deploy identity {configured}. Fix: run prod only from the prod pipeline "
            f"as the deploy service principal (or correct deployerObjectId in {where})."
        )


def check_prod_deployer_placeholder(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Advisory: prod still carries the placeholder deployer id that `--defaults` wrote."""
    if context.kind == "prod" and naming.is_placeholder(context.configured_deployer):
        where = _stack_file(context)
        yield where, (
            f"deployerObjectId in {where} is the placeholder {naming.PLACEHOLDER_GUID}; a real "
            f"`pulumi up` of prod will refuse to run. Fix before deploying: set it to the object "
            f"id of the prod deploy service principal (the bootstrap's deploy identity)."
        )


def check_storage_no_public_blob_access(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Storage accounts forbid public blob access; containers are private."""
    for r in _of_type(resources, STORAGE_ACCOUNT):
        value = r.properties.get("allowBlobPublicAccess")
        if value is not UNKNOWN and not _explicitly_false(value):
            yield r.name, (
                f"storage account '{r.name}' does not disable public blob access "
                f"(allowBlobPublicAccess={value!r}). Fix: set allow_blob_public_access=False."
            )
    for r in _of_type(resources, BLOB_CONTAINER):
        value = r.properties.get("publicAccess")
        if value not in (None, UNKNOWN, "None"):
            yield r.name, (
                f"blob container '{r.name}' allows anonymous reads (publicAccess={value!r}). "
                f"Fix: set public_access='None' (or leave it unset)."
            )
    for r in _of_type(resources, ML_REGISTRY):
        for region in _as_list(r.properties.get("regionDetails")):
            for details in _as_list(_get(region, "storageAccountDetails")):
                value = _get(details, "systemCreatedStorageAccount", "allowBlobPublicAccess")
                if _truthy(value):
                    yield r.name, (
                        f"Azure ML registry '{r.name}' asks for a storage account with public "
                        f"blob access. Fix: set allow_blob_public_access=False (or leave it unset)"
                        f" in its system-created storage account."
                    )


def check_storage_tls12_https(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Storage accounts require TLS 1.2 or newer and HTTPS only."""
    for r in _of_type(resources, STORAGE_ACCOUNT):
        tls = r.properties.get("minimumTlsVersion")
        if tls is not UNKNOWN and tls not in ("TLS1_2", "TLS1_3"):
            yield r.name, (
                f"storage account '{r.name}' accepts TLS older than 1.2 "
                f"(minimumTlsVersion={tls!r}). Fix: set minimum_tls_version='TLS1_2'."
            )
        if _explicitly_false(r.properties.get("enableHttpsTrafficOnly")):
            yield r.name, (
                f"storage account '{r.name}' accepts plain HTTP. "
                f"Fix: set enable_https_traffic_only=True."
            )


def check_keyvault_rbac(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Key vaults use Azure RBAC, not access policies, so the RBAC table covers secrets too."""
    for r in _of_type(resources, KEY_VAULT):
        value = _get(r.properties, "properties", "enableRbacAuthorization")
        if value is not UNKNOWN and not _truthy(value):
            yield r.name, (
                f"key vault '{r.name}' uses access policies (enableRbacAuthorization="
                f"{value!r}), which bypass the reviewed role assignments. Fix: set "
                f"properties.enable_rbac_authorization=True and grant Key Vault roles instead."
            )


def check_keyvault_purge_protection_prod(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod, key vaults keep deleted secrets: soft delete on and purge protection on."""
    if context.kind != "prod":
        return
    for r in _of_type(resources, KEY_VAULT):
        purge = _get(r.properties, "properties", "enablePurgeProtection")
        if purge is not UNKNOWN and not _truthy(purge):
            yield r.name, (
                f"key vault '{r.name}' in prod has no purge protection, so a deleted vault or "
                f"secret can be destroyed for good. Fix: set "
                f"properties.enable_purge_protection=True (it cannot be turned off later)."
            )
        if _explicitly_false(_get(r.properties, "properties", "enableSoftDelete")):
            yield r.name, (
                f"key vault '{r.name}' in prod disables soft delete. "
                f"Fix: set properties.enable_soft_delete=True."
            )


def check_container_registry_admin_user(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Container registries keep the shared admin account off."""
    for r in _of_type(resources, CONTAINER_REGISTRY):
        if _truthy(r.properties.get("adminUserEnabled")):
            yield r.name, (
                f"container registry '{r.name}' enables the admin user, a shared password that "
                f"bypasses RBAC. Fix: set admin_user_enabled=False and grant AcrPull/AcrPush."
            )


def check_container_registry_anonymous_pull(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Container registries do not serve images to anonymous callers."""
    for r in _of_type(resources, CONTAINER_REGISTRY):
        if _truthy(r.properties.get("anonymousPullEnabled")):
            yield r.name, (
                f"container registry '{r.name}' lets anyone pull its images. "
                f"Fix: set anonymous_pull_enabled=False."
            )


def _public_workspaces(resources: Sequence[Resource]) -> Iterator[tuple[Resource, object]]:
    for r in _of_type(resources, ML_WORKSPACE):
        value = r.properties.get("publicNetworkAccess")
        if value is not UNKNOWN and value != "Disabled":
            yield r, value


def check_prod_workspace_private(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod the workspace is reachable only privately, unless the stack opted out."""
    if context.kind != "prod" or context.public_network_opt_out:
        return
    for r, value in _public_workspaces(resources):
        shown = "unset, which Azure treats as Enabled" if value is None else repr(value)
        yield r.name, (
            f"workspace '{r.name}' in prod allows public network access ({shown}). Fix: set "
            f"public_network_access='Disabled', or opt out explicitly with "
            f"<project>:publicNetworkAccess: Enabled in {_stack_file(context)}."
        )


def check_prod_workspace_public_opt_out(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Advisory: the prod stack opted out of a private workspace; say so on every plan."""
    if context.kind != "prod" or not context.public_network_opt_out:
        return
    for r, _value in _public_workspaces(resources):
        yield r.name, (
            f"workspace '{r.name}' in prod is reachable from public networks because "
            f"{_stack_file(context)} sets publicNetworkAccess: Enabled. Fix when you can: remove "
            f"that key so the workspace is private again."
        )


def check_prod_workspace_private_endpoint(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Advisory: prod's private endpoints still sit in the placeholder subnet that a preview
    uses while privateEndpointSubnetId is empty; a real update refuses."""
    from blueprint_infra.settings import PLACEHOLDER_SUBNET_ID

    if context.kind != "prod":
        return
    where = _stack_file(context)
    if any(str((r.properties.get("subnet") or {}).get("id", "")).lower()
           == PLACEHOLDER_SUBNET_ID.lower() for r in _of_type(resources, PRIVATE_ENDPOINT)):
        yield where, (
            f"privateEndpointSubnetId in {where} is empty: this preview put the prod private "
            f"endpoints in a placeholder subnet and a real `pulumi up` of prod will refuse to "
            f"run. Fix before deploying: set it to the platform's private-endpoint subnet (ARM "
            f"id), or set privateEndpointOptOut to the reason prod needs none."
        )


def check_dev_compute_scales_to_zero(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In dev, clusters scale to zero nodes and compute instances shut down when idle."""
    if context.kind != "dev":
        return
    for r in _of_type(resources, ML_COMPUTE):
        compute_type = _get(r.properties, "properties", "computeType")
        if compute_type == "AmlCompute":
            low = _get(r.properties, "properties", "properties", "scaleSettings", "minNodeCount")
            if isinstance(low, (int, float)) and not isinstance(low, bool) and low > 0:
                yield r.name, (
                    f"compute cluster '{r.name}' in dev keeps {int(low)} node(s) running when "
                    f"idle, billed around the clock. Fix: set scale_settings.min_node_count=0."
                )
        elif compute_type == "ComputeInstance":
            idle = _get(r.properties, "properties", "properties", "idleTimeBeforeShutdown")
            if idle is None:
                yield r.name, (
                    f"compute instance '{r.name}' in dev runs until someone stops it. Fix: set "
                    f"properties.idle_time_before_shutdown (e.g. 'PT60M')."
                )


def check_required_tags(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Every taggable resource carries project, environment, cost-center and managed-by."""
    for r in _of_type(resources, *TAGGABLE_TYPES):
        tags = r.properties.get("tags")
        if tags is UNKNOWN:
            continue
        tags = tags if isinstance(tags, dict) else {}
        missing = [key for key in REQUIRED_TAGS if tags.get(key) in (None, "")]
        if missing:
            yield r.name, (
                f"'{r.name}' ({r.type.rsplit(':', 1)[-1]}) lacks the tag(s) "
                f"{', '.join(missing)}. Fix: pass tags with {', '.join(REQUIRED_TAGS)} "
                f"(the program's common tags)."
            )


def _name_rule(r: Resource) -> tuple[str, str] | None:
    entry = NAME_INPUTS.get(r.type)
    if entry is None:
        return None
    key, rule = entry
    if r.type == ML_COMPUTE and _get(r.properties, "properties", "computeType") == "Kubernetes":
        rule = "kubernetes_compute"
    return key, rule


def check_azure_names(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Every Azure name the program sets satisfies Azure's rules for its type."""
    for r in resources:
        found = _name_rule(r)
        if found is not None:
            key, rule = found
            # `name` is where a deployed resource's state keeps it (the pack sees state on up).
            value = r.properties.get(key, r.properties.get("name"))
            if isinstance(value, str) and not naming.AZURE_NAME_RULES[rule].match(value):
                yield r.name, (
                    f"'{r.name}' has the Azure name '{value}' ({len(value)} characters), which "
                    f"breaks Azure's rule for this type: {_NAME_RULE_TEXT[rule]}. Fix: derive it "
                    f"from blueprint_infra.naming or shorten the project slug."
                )
        if r.type == ML_COMPUTE:
            namespace = _get(r.properties, "properties", "properties", "namespace")
            rule = naming.AZURE_NAME_RULES["kubernetes_namespace"]
            if isinstance(namespace, str) and not rule.match(namespace):
                yield r.name, (
                    f"'{r.name}' uses the Kubernetes namespace '{namespace}', which breaks "
                    f"Kubernetes' rule: {_NAME_RULE_TEXT['kubernetes_namespace']}. Fix: derive it "
                    f"from blueprint_infra.naming."
                )
        if r.type == ROLE_ASSIGNMENT:
            value = r.properties.get("roleAssignmentName")
            if isinstance(value, str) and not naming.GUID_PATTERN.match(value):
                yield r.name, (
                    f"role assignment '{r.name}' is named '{value}', but Azure requires a GUID. "
                    f"Fix: derive it with uuid5 from scope, principal and role."
                )


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


# --- registry --------------------------------------------------------------------------------

Validator = Callable[[Sequence[Resource], PolicyContext], Iterable[Finding]]


@dataclass(frozen=True)
class Policy:
    """One policy: its name, what it asks, how hard it is enforced, and its validator.

    `per_resource` policies look at one resource at a time (the pack runs them as resource
    validations, before Azure sees the resource); the others look at the stack as a whole.
    """

    name: str
    description: str
    enforcement: str
    check: Validator
    per_resource: bool = True


_POLICY_LIST: tuple[Policy, ...] = (
    Policy("prod-no-human-write-roles",
           "In prod, no User, Group or ForeignGroup principal holds a role other than a "
           "read-only one.", MANDATORY, check_prod_no_human_write_roles),
    Policy("prod-deployer-identity",
           "Prod names its deploy identity (deployerObjectId) and is deployed by it.",
           MANDATORY, check_prod_deployer_identity, per_resource=False),
    Policy("prod-deployer-placeholder",
           "Prod's deployerObjectId is still the --defaults placeholder.",
           ADVISORY, check_prod_deployer_placeholder, per_resource=False),
    Policy("storage-no-public-blob-access",
           "Storage accounts disable public blob access; blob containers are private.",
           MANDATORY, check_storage_no_public_blob_access),
    Policy("storage-tls12-https",
           "Storage accounts require TLS 1.2 or newer and HTTPS.",
           MANDATORY, check_storage_tls12_https),
    Policy("keyvault-rbac",
           "Key vaults use Azure RBAC authorization, not access policies.",
           MANDATORY, check_keyvault_rbac),
    Policy("keyvault-purge-protection-prod",
           "In prod, key vaults have purge protection and soft delete.",
           MANDATORY, check_keyvault_purge_protection_prod),
    Policy("container-registry-admin-user-disabled",
           "Container registries keep the admin user off.",
           MANDATORY, check_container_registry_admin_user),
    Policy("container-registry-no-anonymous-pull",
           "Container registries do not allow anonymous pull.",
           MANDATORY, check_container_registry_anonymous_pull),
    Policy("prod-workspace-private",
           "In prod, the Azure ML workspace disables public network access unless the stack "
           "explicitly opts out.", MANDATORY, check_prod_workspace_private),
    Policy("prod-workspace-public-opt-out",
           "The prod stack opted out of a private workspace (publicNetworkAccess: Enabled).",
           ADVISORY, check_prod_workspace_public_opt_out),
    Policy("prod-workspace-private-endpoint",
           "Prod's private endpoints are not in the placeholder subnet of a preview.",
           ADVISORY, check_prod_workspace_private_endpoint, per_resource=False),
    Policy("dev-compute-scales-to-zero",
           "In dev, compute clusters scale to zero nodes and compute instances shut down when "
           "idle.", MANDATORY, check_dev_compute_scales_to_zero),
    Policy("required-tags",
           "Every taggable resource carries the tags " + ", ".join(REQUIRED_TAGS) + ".",
           MANDATORY, check_required_tags),
    Policy("azure-resource-names",
           "Every Azure name satisfies Azure's naming rules for its resource type.",
           MANDATORY, check_azure_names),
)

#: Every policy by name, in the order they are reported. The pack and docs/policies.md list them.
POLICIES: dict[str, Policy] = {p.name: p for p in _POLICY_LIST}


def run_policy(
    policy: Policy, resources: Sequence[Resource], context: PolicyContext
) -> list[Violation]:
    return [
        Violation(policy.name, resource, message, policy.enforcement)
        for resource, message in policy.check(resources, context)
    ]


def evaluate_all(resources: Sequence[Resource], context: PolicyContext) -> list[Violation]:
    """Every violation, mandatory and advisory, in registry order."""
    found: list[Violation] = []
    for policy in POLICIES.values():
        found.extend(run_policy(policy, resources, context))
    return found


def evaluate(resources: Sequence[Resource], context: PolicyContext) -> list[Violation]:
    """The mandatory violations: any of them fails `blueprint plan` (exit 1)."""
    return [v for v in evaluate_all(resources, context) if v.enforcement == MANDATORY]


def advisories(resources: Sequence[Resource], context: PolicyContext) -> list[Violation]:
    """The advisory findings: reported as warnings, never a failure."""
    return [v for v in evaluate_all(resources, context) if v.enforcement == ADVISORY]


def context_for(
    environment: str,
    *,
    configured_deployer: str | None = None,
    deploying_identity: str | None = None,
    public_network_access: str | None = None,
) -> PolicyContext:
    """A context from stack settings: the kind follows `naming.environment_kind`, and a prod
    stack opts out of a private workspace only by setting publicNetworkAccess to Enabled."""
    kind = naming.environment_kind(environment)
    opt_out = kind == "prod" and (public_network_access or "").lower() == "enabled"
    return PolicyContext(environment, kind, configured_deployer or None,
                         deploying_identity or None, opt_out)

