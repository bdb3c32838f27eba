"""Policies over recorded resources: plain validator functions, one per policy.

Two runners share these functions:

- `blueprint plan` and `blueprint check`, through the offline preview (`blueprint_infra.preview`),
  call `evaluate(resources, context)` on the resources the program registered under Pulumi's
  mocks;
- `pulumi preview --policy-pack infra/policy_pack` runs them inside a pulumi-policy pack, through
  `blueprint_infra.policy_adapter`.

Every policy has one enforcement level. `mandatory` violations fail `plan` (exit 1) and block a
`pulumi up`; `advisory` ones are reported and never fail anything: `evaluate` returns only the
mandatory ones, `advisories` the advisory ones, `evaluate_all` both. A fresh project made with
`--defaults` carries placeholder ids, which are advisories: its `plan` passes, and says what a
human must fill in before a real deployment.

Resources carry the inputs as the provider receives them (camelCase keys, as pulumi-azure-native
v3 sends them), the outputs where they are known (the mock engine returns them; in the pack's
stack validations the properties are the outputs), `protect` as it was registered, and, in the
pack, which resources each input was computed from. A value that a preview cannot know yet is
`UNKNOWN`. A plain setting that is unknown never fails a policy; who holds which right must be
shown, so an unknown principal, role or subject fails unless its origin proves it harmless (see
`check_prod_role_allow_list`). Imports nothing heavy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from blueprint_infra import naming, roles


@dataclass(frozen=True)
class Resource:
    """One resource as the provider receives it."""

    type: str  # type token, e.g. "azure-native:storage:StorageAccount"
    name: str  # Pulumi logical name
    properties: dict = field(default_factory=dict)  # camelCase inputs, nested dicts/lists
    protect: bool = False  # as registered with the engine
    outputs: dict = field(default_factory=dict)  # what the provider returned, where known
    #: input name -> logical names of the resources its value was computed from (pack only)
    dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    custom: bool = True  # False for component resources (no provider, nothing in Azure)


@dataclass(frozen=True)
class PolicyContext:
    environment: str  # the stack's environment, e.g. "prod", "preprod"; "platform" for bootstrap
    kind: str  # "dev" | "staging" | "prod" (the bootstrap is judged as prod)
    configured_deployer: str | None  # stack config deployerObjectId
    deploying_identity: str | None  # object id the program ran as; None when unknown
    public_network_opt_out: bool = False  # prod stack explicitly set publicNetworkAccess: Enabled
    bootstrap: bool = False  # the project's bootstrap stack (identities, state, registry)
    #: further principal ids that may hold a write role in prod (e.g. a workspace identity the
    #: caller knows); the deployer and the stack's own workspace identities always may
    allowed_principals: frozenset[str] = frozenset()

    @property
    def is_prod_environment(self) -> bool:
        """A prod-kind environment stack (not the bootstrap)."""
        return self.kind == "prod" and not self.bootstrap

    @property
    def prod_or_bootstrap(self) -> bool:
        return self.kind == "prod" or self.bootstrap


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
STORAGE_LOCAL_USER = "azure-native:storage:LocalUser"
KEY_VAULT = "azure-native:keyvault:Vault"
KEY_VAULT_KEY = "azure-native:keyvault:Key"
KEY_VAULT_ACCESS_POLICY = "azure-native:keyvault:AccessPolicy"
LOG_ANALYTICS = "azure-native:operationalinsights:Workspace"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
CONTAINER_REGISTRY = "azure-native:containerregistry:Registry"
ACR_TOKEN = "azure-native:containerregistry:Token"
ACR_SCOPE_MAP = "azure-native:containerregistry:ScopeMap"
ML_WORKSPACE = "azure-native:machinelearningservices:Workspace"
ML_REGISTRY = "azure-native:machinelearningservices:Registry"
ML_COMPUTE = "azure-native:machinelearningservices:Compute"
ML_CONNECTION = "azure-native:machinelearningservices:WorkspaceConnection"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
#: PIM: eligible (activate later) and time-bound assignments. The v3 SDK has
#: PimRoleEligibilitySchedule; the others are the tokens of older SDKs and the REST names.
PIM_TYPES: frozenset[str] = frozenset({
    "azure-native:authorization:PimRoleEligibilitySchedule",
    "azure-native:authorization:RoleEligibilitySchedule",
    "azure-native:authorization:RoleEligibilityScheduleRequest",
    "azure-native:authorization:RoleAssignmentSchedule",
    "azure-native:authorization:RoleAssignmentScheduleRequest",
})
ROLE_MANAGEMENT_POLICY_TYPES: frozenset[str] = frozenset({
    "azure-native:authorization:RoleManagementPolicy",
    "azure-native:authorization:RoleManagementPolicyAssignment",
})
LOCK_TYPES: frozenset[str] = frozenset({
    "azure-native:authorization:ManagementLockAtResourceGroupLevel",
    "azure-native:authorization:ManagementLockByScope",
    "azure-native:authorization:ManagementLockAtResourceLevel",
    "azure-native:authorization:ManagementLockAtSubscriptionLevel",
})

PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"

#: Tags every taggable resource carries (cost reports and ownership depend on them).
REQUIRED_TAGS: tuple[str, ...] = ("project", "environment", "cost-center", "managed-by")

#: Types that take tags. Role assignments, blob containers, extensions, locks and federated
#: credentials do not, so they are not asked to.
TAGGABLE_TYPES: frozenset[str] = frozenset({
    RESOURCE_GROUP, STORAGE_ACCOUNT, KEY_VAULT, LOG_ANALYTICS, APP_INSIGHTS, CONTAINER_REGISTRY,
    ML_WORKSPACE, ML_REGISTRY, ML_COMPUTE, IDENTITY,
})

#: Resources whose loss loses data or trust: in prod and the bootstrap they must be registered
#: with `protect`. (Pulumi state containers are added for the bootstrap.)
STATEFUL_TYPES: frozenset[str] = frozenset({
    RESOURCE_GROUP, STORAGE_ACCOUNT, KEY_VAULT, KEY_VAULT_KEY, LOG_ANALYTICS, CONTAINER_REGISTRY,
    ML_WORKSPACE, ML_REGISTRY,
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

# --- principals and roles --------------------------------------------------------------------

#: Azure's principal types, by their lower-case spelling (Azure compares them case-insensitively).
PRINCIPAL_TYPES: dict[str, str] = {
    t.lower(): t for t in ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
}
HUMAN_TYPES: frozenset[str] = frozenset({"User", "Group", "ForeignGroup"})

#: Roles that can write role assignments: an assignment of one carries an ABAC condition.
ROLE_ADMIN_ROLES: frozenset[str] = frozenset(
    roles.ROLE_IDS[name] for name in
    ("Owner", "User Access Administrator", "Role Based Access Control Administrator")
)
#: The most a human may hold in the bootstrap (control-plane reads).
BOOTSTRAP_HUMAN_ROLES: frozenset[str] = frozenset(
    roles.ROLE_IDS[name] for name in ("Reader", "Monitoring Reader")
)
#: What an environment's deploy identity may hold in the bootstrap, all on its own environment:
#: its resource group (Contributor, conditioned RBAC Administrator, Reader), its own state
#: container and its own secrets key; conditioned RBAC Administrator on the project registry or
#: the shared AKS cluster.
DEPLOY_IDENTITY_ROLES: frozenset[str] = frozenset(
    roles.ROLE_IDS[name] for name in
    ("Contributor", "Role Based Access Control Administrator", "Reader", "Monitoring Reader",
     "Storage Blob Data Contributor", "Storage Blob Data Reader", "Key Vault Crypto User")
)
#: The preview identity's data rights, on non-prod state containers and keys only. Reading the
#: state needs Storage Blob Data Reader; no blob write: the DIY (azblob) backend takes no lock for
#: a preview (pulumi/pulumi#8642, "Allow preview on locked stack", merged 2021), so a preview
#: writes nothing to the container.
PREVIEW_STATE_ROLES: frozenset[str] = frozenset({roles.ROLE_IDS["Storage Blob Data Reader"]})
PREVIEW_KEY_ROLES: frozenset[str] = frozenset({roles.ROLE_IDS["Key Vault Crypto User"]})
STATE_CONTAINER_PREFIX = "pulumi-state-"
SECRETS_KEY_PREFIX = "pulumi-secrets-"

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ROLE_DEFINITION_ID = re.compile(
    rf"^(?:/subscriptions/{_GUID})?/providers/Microsoft\.Authorization/roleDefinitions/"
    rf"({_GUID})$",
    re.IGNORECASE,
)
_BARE_GUID = re.compile(rf"^({_GUID})$")
_SUBSCRIPTION_SCOPE = re.compile(rf"^/subscriptions/{_GUID}/?$", re.IGNORECASE)
_DEPLOY_IDENTITY_NAME = re.compile(r"^id-(?P<slug>.+)-(?P<env>[a-z][a-z0-9]{1,9})-deploy$")
_PREVIEW_IDENTITY_NAME = re.compile(r"^id-(?P<slug>.+)-preview$")
_ENVIRONMENT_GROUP = re.compile(r"^rg-(?P<slug>.+)-(?P<env>[a-z][a-z0-9]{1,9})$", re.IGNORECASE)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_ADO_ISSUER = re.compile(rf"^https://vstoken\.dev\.azure\.com/({_GUID})$", re.IGNORECASE)
OIDC_AUDIENCE = "api://AzureADTokenExchange"


def parse_role_id(value: object) -> str | _Unknown | None:
    """The role GUID (lower-case) of a role definition id, strictly.

    Accepts `/subscriptions/<guid>/providers/Microsoft.Authorization/roleDefinitions/<guid>`,
    `/providers/Microsoft.Authorization/roleDefinitions/<guid>` or a bare GUID; returns UNKNOWN
    for a value a preview cannot know, None for anything else (never a guess).
    """
    if value is UNKNOWN:
        return UNKNOWN
    if not isinstance(value, str):
        return None
    match = _ROLE_DEFINITION_ID.match(value) or _BARE_GUID.match(value)
    return match.group(1).lower() if match else None


def principal_type(value: object) -> str | None:
    """Azure's spelling of a principal type compared case-insensitively; None when the value is
    missing, empty, unknown or not one of Azure's types."""
    if not isinstance(value, str):
        return None
    return PRINCIPAL_TYPES.get(value.strip().lower())


def canonical_type(token: str) -> str:
    """A type token without an API-version module (`azure-native:authorization/v20220401:X` is
    `azure-native:authorization:X`), so older SDKs' tokens are judged like the current ones."""
    package, _, rest = token.partition(":")
    module, _, name = rest.partition(":")
    return f"{package}:{module.split('/', 1)[0]}:{name}" if name else token


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
    wanted = set(types)
    return (r for r in resources if canonical_type(r.type) in wanted)


def _known_values(
    resources: Iterable[Resource], *types: str, at: str
) -> Iterator[tuple[Resource, object]]:
    """Each resource of the types with its value at the dotted input path `at`, where the
    preview knows it: a plain setting that is unknown never fails a policy."""
    for r in _of_type(resources, *types):
        value = _get(r.properties, *at.split("."))
        if value is not UNKNOWN:
            yield r, value


def _truthy(value: object) -> bool:
    """True for an explicit true (bools, or the strings some providers echo back)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _explicitly_false(value: object) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _as_list(value: object) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _stack_file(context: PolicyContext) -> str:
    return f"Pulumi.{context.environment}.yaml"


def _role_label(guid: str | _Unknown | None, raw: object) -> str:
    if isinstance(guid, str):
        return roles.role_name(guid)
    return "a role unknown until deployment" if guid is UNKNOWN else repr(raw)


def _scope_text(scope: object) -> str:
    return "" if scope in (None, UNKNOWN) else f" at scope {scope}"


_READ_ONLY_NAMES = ", ".join(sorted(roles.role_name(g) for g in roles.READ_ONLY_ROLES))


def _by_name(resources: Sequence[Resource]) -> dict[str, list[Resource]]:
    index: dict[str, list[Resource]] = {}
    for r in resources:
        index.setdefault(r.name, []).append(r)
    return index


def _sources(r: Resource, key: str, resources: Sequence[Resource]) -> list[Resource]:
    """The resources an unknown input was computed from (the pack knows; the mock never needs
    to, since every value is known there)."""
    index = _by_name(resources)
    return [s for name in r.dependencies.get(key, ()) for s in index.get(name, [])]


def _system_identity(r: Resource) -> bool:
    identity_type = _get(r.properties, "identity", "type")
    return isinstance(identity_type, str) and "systemassigned" in identity_type.lower()


def workspace_principal_ids(resources: Sequence[Resource]) -> set[str]:
    """The principal ids of the stack's own workspaces' system-assigned identities, where known.

    Read from the outputs only (what Azure, or the mock engine, returned), never from the
    inputs, where a program could write any id.
    """
    found = set()
    for r in _of_type(resources, ML_WORKSPACE):
        if not _system_identity(r):
            continue
        value = _get(r.outputs, "identity", "principalId")
        if isinstance(value, str) and _BARE_GUID.match(value):
            found.add(value.lower())
    return found


Finding = tuple[str, str]  # (resource logical name, message naming the fix)


# --- validators: deployer and secure defaults -----------------------------------------------

def check_prod_deployer_identity(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Prod names its deploy identity, and the program ran as that identity."""
    if not context.is_prod_environment:
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
    if context.is_prod_environment and naming.is_placeholder(context.configured_deployer):
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
    for r, value in _known_values(resources, STORAGE_ACCOUNT, at="allowBlobPublicAccess"):
        if not _explicitly_false(value):
            yield r.name, (
                f"storage account '{r.name}' does not disable public blob access "
                f"(allowBlobPublicAccess={value!r}). Fix: set allow_blob_public_access=False."
            )
    for r, value in _known_values(resources, BLOB_CONTAINER, at="publicAccess"):
        if value not in (None, "None"):
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
    for r, value in _known_values(resources, KEY_VAULT, at="properties.enableRbacAuthorization"):
        if not _truthy(value):
            yield r.name, (
                f"key vault '{r.name}' uses access policies (enableRbacAuthorization="
                f"{value!r}), which bypass the reviewed role assignments. Fix: set "
                f"properties.enable_rbac_authorization=True and grant Key Vault roles instead."
            )


def check_keyvault_purge_protection_prod(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod, key vaults keep deleted secrets: soft delete on and purge protection on."""
    if not context.prod_or_bootstrap:
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
    for r, value in _known_values(resources, ML_WORKSPACE, at="publicNetworkAccess"):
        if value != "Disabled":
            yield r, value


def check_prod_workspace_private(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod the workspace is reachable only privately, unless the stack opted out."""
    if not context.is_prod_environment or context.public_network_opt_out:
        return
    for r, value in _public_workspaces(resources):
        shown = "unset, which Azure treats as Enabled" if value is None else repr(value)
        yield r.name, (
            f"workspace '{r.name}' in prod allows public network access ({shown}). Fix: set "
            f"public_network_access='Disabled', or opt out explicitly with "
            f"<project>:publicNetworkAccess: Enabled in {_stack_file(context)}."
        )




def _data_services_public(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str, object]]:
    """Storage accounts, key vaults and container registries whose public network access is not
    Disabled (unset means Enabled in Azure)."""
    for r, value in _known_values(resources, STORAGE_ACCOUNT, CONTAINER_REGISTRY,
                                  at="publicNetworkAccess"):
        if value != "Disabled":
            yield r, "public_network_access='Disabled'", value
    for r, value in _known_values(resources, KEY_VAULT, at="properties.publicNetworkAccess"):
        if not (isinstance(value, str) and value.lower() == "disabled"):
            yield r, "properties.public_network_access='Disabled'", value


def check_prod_workspace_public_opt_out(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Advisory: the prod stack opted out of private networking; say so on every plan."""
    if not context.is_prod_environment or not context.public_network_opt_out:
        return
    for r, _value in _public_workspaces(resources):
        yield r.name, (
            f"workspace '{r.name}' in prod is reachable from public networks because "
            f"{_stack_file(context)} sets publicNetworkAccess: Enabled. Fix when you can: remove "
            f"that key so the workspace is private again."
        )
    for r, _fix, _value in _data_services_public(resources):
        yield r.name, (
            f"'{r.name}' ({canonical_type(r.type).rsplit(':', 1)[-1]}) in prod is reachable from "
            f"public networks because {_stack_file(context)} sets publicNetworkAccess: Enabled. "
            f"Fix when you can: remove that key."
        )


def check_prod_data_services_private(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod, storage accounts, key vaults and container registries disable public network
    access, unless the stack opted out (then `prod-workspace-public-opt-out` says so)."""
    if not context.is_prod_environment or context.public_network_opt_out:
        return
    for r, fix, value in _data_services_public(resources):
        shown = "unset, which Azure treats as Enabled" if value is None else repr(value)
        yield r.name, (
            f"'{r.name}' ({canonical_type(r.type).rsplit(':', 1)[-1]}) in prod allows public "
            f"network access ({shown}). Fix: set {fix} (the workspace reaches it through its "
            f"managed network), or opt out explicitly with <project>:publicNetworkAccess: "
            f"Enabled in {_stack_file(context)}."
        )


def check_storage_no_shared_key(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Storage accounts turn shared key access off, so neither account keys nor the SAS tokens
    signed with them work: every access is Entra ID and RBAC."""
    for r, value in _known_values(resources, STORAGE_ACCOUNT, at="allowSharedKeyAccess"):
        if not _explicitly_false(value):
            shown = "unset, which Azure treats as true" if value is None else repr(value)
            yield r.name, (
                f"storage account '{r.name}' allows shared key access ({shown}): its account "
                f"keys and any SAS signed with them bypass RBAC. Fix: set "
                f"allow_shared_key_access=False (identity-based datastores need no keys)."
            )


def _compute_kind(r: Resource) -> object:
    return _get(r.properties, "properties", "computeType")


def check_compute_local_auth_disabled(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Azure ML computes disable local authentication (keys), so only Entra ID signs in."""
    for r, value in _known_values(resources, ML_COMPUTE, at="properties.disableLocalAuth"):
        if not _truthy(value):
            yield r.name, (
                f"compute '{r.name}' ({_compute_kind(r)}) keeps local authentication "
                f"(disableLocalAuth={value!r}). Fix: set disable_local_auth=True on its "
                f"properties."
            )


def check_compute_no_public_ssh_or_ip(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Clusters and compute instances have no public SSH port and no public node IPs."""
    for r in _of_type(resources, ML_COMPUTE):
        kind = _compute_kind(r)
        inner = _get(r.properties, "properties", "properties")
        if kind not in ("AmlCompute", "ComputeInstance") or inner is UNKNOWN:
            continue
        public_ip = _get(inner, "enableNodePublicIp")
        if public_ip is not UNKNOWN and not _explicitly_false(public_ip):
            shown = "unset, which Azure treats as true" if public_ip is None else repr(public_ip)
            yield r.name, (
                f"compute '{r.name}' ({kind}) gives its nodes public IPs ({shown}). Fix: set "
                f"enable_node_public_ip=False (the managed network carries the traffic)."
            )
        if kind == "AmlCompute":
            ssh = _get(inner, "remoteLoginPortPublicAccess")
            if ssh is not UNKNOWN and ssh != "Disabled":
                shown = "unset (NotSpecified)" if ssh is None else repr(ssh)
                yield r.name, (
                    f"compute cluster '{r.name}' may open its SSH port to the internet "
                    f"(remoteLoginPortPublicAccess {shown}). Fix: set "
                    f"remote_login_port_public_access='Disabled'."
                )
        else:
            ssh = _get(inner, "sshSettings", "sshPublicAccess")
            if isinstance(ssh, str) and ssh.lower() == "enabled":
                yield r.name, (
                    f"compute instance '{r.name}' opens SSH to the internet "
                    f"(sshSettings.sshPublicAccess='Enabled'). Fix: set ssh_public_access="
                    f"'Disabled' (or leave ssh_settings out)."
                )


def _warm_nodes(r: Resource) -> float:
    """How many nodes a cluster keeps running when idle (its known minNodeCount), else 0."""
    low = _get(r.properties, "properties", "properties", "scaleSettings", "minNodeCount")
    return low if isinstance(low, (int, float)) and not isinstance(low, bool) and low > 0 else 0


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
    if context.kind != "dev" or context.bootstrap:
        return
    for r in _of_type(resources, ML_COMPUTE):
        compute_type = _compute_kind(r)
        if compute_type == "AmlCompute":
            if low := _warm_nodes(r):
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


#: The tag that keeps a prod cluster's nodes warm on purpose; its value says why.
ALWAYS_ON_TAG = "always-on-reason"


def check_prod_compute_min_nodes(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod, clusters scale to zero nodes unless the cluster's `always-on-reason` tag says
    why it keeps nodes warm."""
    if not context.is_prod_environment:
        return
    for r in _of_type(resources, ML_COMPUTE):
        low = _warm_nodes(r)
        if not low:
            continue
        reason = _get(r.properties, "tags", ALWAYS_ON_TAG)
        if isinstance(reason, str) and reason.strip():
            continue
        yield r.name, (
            f"compute cluster '{r.name}' in prod keeps {int(low)} node(s) running when idle, "
            f"billed around the clock, without saying why. Fix: set "
            f"scale_settings.min_node_count=0, or tag the cluster '{ALWAYS_ON_TAG}' with the "
            f"reason (e.g. a latency target) so the review sees it."
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
    entry = NAME_INPUTS.get(canonical_type(r.type))
    if entry is None:
        return None
    key, rule = entry
    if canonical_type(r.type) == ML_COMPUTE and _compute_kind(r) == "Kubernetes":
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
        token = canonical_type(r.type)
        if token == ML_COMPUTE:
            namespace = _get(r.properties, "properties", "properties", "namespace")
            rule = naming.AZURE_NAME_RULES["kubernetes_namespace"]
            if isinstance(namespace, str) and not rule.match(namespace):
                yield r.name, (
                    f"'{r.name}' uses the Kubernetes namespace '{namespace}', which breaks "
                    f"Kubernetes' rule: {_NAME_RULE_TEXT['kubernetes_namespace']}. Fix: derive it "
                    f"from blueprint_infra.naming."
                )
        if token == ROLE_ASSIGNMENT:
            value = r.properties.get("roleAssignmentName")
            if isinstance(value, str) and not naming.GUID_PATTERN.match(value):
                yield r.name, (
                    f"role assignment '{r.name}' is named '{value}', but Azure requires a GUID. "
                    f"Fix: derive it with uuid5 from scope, principal and role."
                )


# --- validators: locks and protect --------------------------------------------------------------

LOCK_LEVELS = ("CanNotDelete", "ReadOnly")


def _locked_group(lock: Resource) -> str | None:
    """The resource group a lock sits on, lower-case, where the lock is on a whole group."""
    token = canonical_type(lock.type)
    if token == "azure-native:authorization:ManagementLockAtResourceGroupLevel":
        name = lock.properties.get("resourceGroupName")
        return name.lower() if isinstance(name, str) else None
    if token == "azure-native:authorization:ManagementLockByScope":
        scope = lock.properties.get("scope")
        if isinstance(scope, str):
            match = re.match(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)/?$", scope, re.I)
            return match.group(1).lower() if match else None
    return None


def check_prod_lock_level(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod and the bootstrap, locks are CanNotDelete or ReadOnly; the bootstrap locks the
    platform resource group and every prod-kind environment's resource group it creates."""
    if not context.prod_or_bootstrap:
        return
    locks = list(_of_type(resources, *LOCK_TYPES))
    for lock in locks:
        level = lock.properties.get("level")
        if level is UNKNOWN or level in LOCK_LEVELS:
            continue
        yield lock.name, (
            f"lock '{lock.name}' has level {level!r}, which does not stop a deletion. Fix: set "
            f"level='CanNotDelete' (or 'ReadOnly')."
        )
    if not context.bootstrap:
        return
    locked = {_locked_group(lock) for lock in locks
              if lock.properties.get("level") in LOCK_LEVELS}
    for group in _of_type(resources, RESOURCE_GROUP):
        name = group.properties.get("resourceGroupName")
        if not isinstance(name, str):
            continue
        match = _ENVIRONMENT_GROUP.match(name)
        env = match.group("env").lower() if match else None
        if env != "platform" and naming.environment_kind(env) != "prod":
            continue
        if name.lower() not in locked:
            holds = ("the Pulumi state and deploy identities" if env == "platform"
                     else "a prod-kind environment")
            yield group.name, (
                f"resource group '{name}' ('{group.name}') holds {holds} but has no "
                f"CanNotDelete or ReadOnly lock. Fix: add a ManagementLockAtResourceGroupLevel "
                f"with level='CanNotDelete' on it in the bootstrap."
            )


def check_prod_stateful_resources_protected(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod and the bootstrap, stateful resources (resource groups, storage, key vaults and
    keys, Log Analytics, registries, the workspace; the bootstrap's state containers) are
    registered with `protect`, so no `pulumi up` or `destroy` deletes them."""
    if not context.prod_or_bootstrap:
        return
    for r in resources:
        token = canonical_type(r.type)
        stateful = token in STATEFUL_TYPES or (
            context.bootstrap and token == BLOB_CONTAINER
            and str(r.properties.get("containerName", "")).startswith("pulumi-state"))
        if stateful and not r.protect:
            yield r.name, (
                f"'{r.name}' ({token.rsplit(':', 1)[-1]}) in "
                f"{'the bootstrap' if context.bootstrap else 'prod'} is not registered with "
                f"protect, so a `pulumi up` that drops it or a `pulumi destroy` deletes it and "
                f"its data. Fix: pass opts=ResourceOptions(protect=True) (and keep any stack "
                f"transformation from clearing it)."
            )


# --- validators: who holds which right ---------------------------------------------------------

def _allowed_unknown_principal(r: Resource, resources: Sequence[Resource]) -> bool:
    """An unknown principal id passes only when it is computed from exactly the stack's own
    workspace(s) with a system-assigned identity: the workspace identity on its first
    deployment. Every later preview knows the value and judges it by value."""
    sources = _sources(r, "principalId", resources)
    return bool(sources) and all(
        canonical_type(s.type) == ML_WORKSPACE and _system_identity(s) for s in sources
    )


def check_prod_role_allow_list(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod, a role that is not read-only is held only by the configured deployer and the
    workspace's own identity, as ServicePrincipal; every principal type must be Azure's."""
    if not context.is_prod_environment:
        return
    deployer = (context.configured_deployer or "").strip().lower()
    allowed = {p.lower() for p in context.allowed_principals} | workspace_principal_ids(resources)
    if deployer and _BARE_GUID.match(deployer):
        # The --defaults placeholder too: prod-deployer-placeholder says to replace it, and the
        # program refuses a real update until then.
        allowed.add(deployer)
    for r in _of_type(resources, ROLE_ASSIGNMENT):
        raw_role = r.properties.get("roleDefinitionId")
        guid = parse_role_id(raw_role)
        raw_type = r.properties.get("principalType")
        ptype = principal_type(raw_type)
        principal = r.properties.get("principalId")
        shown = "a principal unknown until deployment" if principal is UNKNOWN else principal
        scope = _scope_text(r.properties.get("scope"))
        if guid is None:
            yield r.name, (
                f"role assignment '{r.name}' names the role {raw_role!r}, which is neither a "
                f"role definition id (/subscriptions/<sub>/providers/Microsoft.Authorization/"
                f"roleDefinitions/<guid>) nor a GUID, so nothing shows which role it grants in "
                f"prod. Fix: pass the role's full definition id (roles.role_definition_id)."
            )
            continue
        if ptype is None:
            yield r.name, (
                f"role assignment '{r.name}' gives {shown} '{_role_label(guid, raw_role)}'"
                f"{scope} in prod with principalType {raw_type!r}, which is not one of Azure's "
                f"types (User, Group, ServicePrincipal, ForeignGroup, Device), so nothing proves "
                f"who holds it. Fix: set principalType to the principal's real type."
            )
            continue
        if isinstance(guid, str) and guid in roles.READ_ONLY_ROLES:
            continue
        role = _role_label(guid, raw_role)
        if principal is UNKNOWN:
            if ptype == "ServicePrincipal" and _allowed_unknown_principal(r, resources):
                continue
            yield r.name, (
                f"role assignment '{r.name}' gives {shown} (principalType {ptype}) the role "
                f"'{role}'{scope} in prod; only the deploy identity and the workspace's own "
                f"identity may hold a role that is not read-only, and this principal is not "
                f"computed from the workspace. Fix: remove the assignment, or give a read-only "
                f"role ({_READ_ONLY_NAMES})."
            )
            continue
        key = principal.lower() if isinstance(principal, str) else ""
        if key in allowed and ptype == "ServicePrincipal":
            continue
        if key in allowed:
            yield r.name, (
                f"role assignment '{r.name}' gives {principal} the role '{role}'{scope} in prod "
                f"as principalType {ptype}; the deploy and workspace identities are service "
                f"principals. Fix: set principalType=ServicePrincipal."
            )
            continue
        human = " (a human principal)" if ptype in HUMAN_TYPES else ""
        yield r.name, (
            f"role assignment '{r.name}' gives {ptype} {principal}{human} the role "
            f"'{role}'{scope} in prod, where only the deploy identity (deployerObjectId) and the "
            f"workspace's own identity may hold a role that is not read-only, whatever the "
            f"declared principal type. Fix: remove this assignment, or give a read-only role "
            f"({_READ_ONLY_NAMES}); make changes through the prod pipeline."
        )


def _other_environment_group(scope: object, slug: str, env: str) -> str | None:
    """The resource group of another of the project's environments (`rg-<slug>-<other>`) that
    a scope lies in, lower-case; None when it lies in `env`'s own group, the platform group or
    outside the project's groups. `slug` and `env` are lower-case."""
    match = re.search(r"/resourcegroups/([^/]+)", str(scope or "").lower())
    group = match.group(1) if match else None
    own = {naming.environment_resource_group(slug, e) for e in (env, "platform")}
    if group and group.startswith(f"rg-{slug}-") and group not in own:
        return group
    return None


def check_grants_in_own_environment(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In an environment stack, no role assignment or PIM schedule lies in another
    environment's resource group (`rg-<slug>-<other>`): a dev stack's grant on prod's group
    is a right in prod. The stack's own group is read from what its resources are created in."""
    if context.bootstrap:
        return
    env = context.environment.lower()
    own = {str(v).lower() for r in resources
           if isinstance(v := r.properties.get("resourceGroupName"), str)}
    slugs = {g[3:-len(env) - 1] for g in own if g.startswith("rg-") and g.endswith(f"-{env}")}
    if len(slugs) != 1:
        return
    slug = slugs.pop()
    for r in _of_type(resources, ROLE_ASSIGNMENT, *PIM_TYPES):
        scope = r.properties.get("scope")
        other = _other_environment_group(scope, slug, env)
        if other:
            raw_role = r.properties.get("roleDefinitionId")
            yield r.name, (
                f"'{r.name}' grants '{_role_label(parse_role_id(raw_role), raw_role)}' "
                f"to {r.properties.get('principalId')}{_scope_text(scope)}, in another "
                f"environment's resource group ({other}), from the {env} stack. Fix: "
                f"grant inside rg-{slug}-{env}; another environment's rights are that "
                "environment's stack's to give.")


def check_pim_read_only(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod and the bootstrap, PIM eligibility schedules and schedule requests carry only
    read-only roles (an eligible write role is a write role a human can switch on)."""
    if not context.prod_or_bootstrap:
        return
    allowed = BOOTSTRAP_HUMAN_ROLES if context.bootstrap else roles.READ_ONLY_ROLES
    where = "the bootstrap" if context.bootstrap else "prod"
    for r in _of_type(resources, *PIM_TYPES):
        raw_role = r.properties.get("roleDefinitionId")
        guid = parse_role_id(raw_role)
        if isinstance(guid, str) and guid in allowed:
            continue
        kind = canonical_type(r.type).rsplit(":", 1)[-1]
        yield r.name, (
            f"{kind} '{r.name}' makes {r.properties.get('principalId')} eligible for (or "
            f"assigns) '{_role_label(guid, raw_role)}'{_scope_text(r.properties.get('scope'))} "
            f"in {where}, a role that is not read-only or cannot be read. Fix: remove it; in "
            f"{where} humans get read-only roles and changes go through the pipeline."
        )


def _actions(r: Resource) -> list[tuple[str, object]]:
    found = []
    for permission in _as_list(r.properties.get("permissions")):
        for key in ("actions", "dataActions"):
            value = _get(permission, key)
            if value is UNKNOWN:
                found.append((key, UNKNOWN))
            for action in _as_list(value):
                found.append((key, action))
    return found


def _authorization_write(action: str) -> bool:
    text = action.lower()
    if not text.startswith("microsoft.authorization/"):
        return False
    return not text.endswith("/read")


def _too_broad(action: object) -> bool:
    """A wildcard that is not a read (`*/read` is Reader's), or a Microsoft.Authorization write;
    a value that cannot be read counts as too broad."""
    if not isinstance(action, str):
        return True
    text = action.strip().lower()
    return ("*" in text and not text.endswith("/read")) or _authorization_write(text)


def check_custom_roles_least_privilege(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Custom roles never hold wildcard actions or Microsoft.Authorization writes (role
    assignments, role definitions, locks, policies): those are the keys to every other right."""
    for r in _of_type(resources, ROLE_DEFINITION):
        bad = sorted({str(a) for _, a in _actions(r) if _too_broad(a)})
        if bad:
            yield r.name, (
                f"custom role '{r.name}' ({r.properties.get('roleName')}) allows "
                f"{', '.join(bad)}: a wildcard or a Microsoft.Authorization write lets its "
                f"holder grant itself anything. Fix: list the exact actions it needs, none "
                f"under Microsoft.Authorization but reads; use a built-in role where one fits."
            )


def check_prod_custom_roles_read_only(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod, a custom role only reads: any role humans could be given or activate is
    read-only, and the deploy and workspace identities use built-in roles."""
    if not context.is_prod_environment:
        return
    for r in _of_type(resources, ROLE_DEFINITION):
        writes = sorted({str(a) for _, a in _actions(r)
                         if not isinstance(a, str) or not a.lower().endswith("/read")})
        if writes:
            yield r.name, (
                f"custom role '{r.name}' ({r.properties.get('roleName')}) in prod allows "
                f"{', '.join(writes)}, which are not reads; anyone it is assigned to could "
                f"change prod. Fix: remove the role, or keep only '*/read' actions."
            )


def check_role_admin_conditioned(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Every Owner, User Access Administrator or RBAC Administrator assignment carries an ABAC
    condition (version 2.0) that limits the assignable roles and the principal types, and never
    lets it assign those roles again."""
    for r in _of_type(resources, ROLE_ASSIGNMENT, *PIM_TYPES):
        guid = parse_role_id(r.properties.get("roleDefinitionId"))
        if not isinstance(guid, str) or guid not in ROLE_ADMIN_ROLES:
            continue
        role = roles.role_name(guid)
        condition = r.properties.get("condition")
        version = r.properties.get("conditionVersion")
        text = condition if isinstance(condition, str) else ""
        problems = []
        if not text.strip():
            problems.append("no ABAC condition")
        else:
            if "roledefinitionid" not in text.lower() or "guidequals" not in text.lower():
                problems.append("a condition that does not limit the role ids it may assign")
            if "principaltype" not in text.lower():
                problems.append("a condition that does not limit the principal types")
            listed = {g.lower() for g in re.findall(_GUID, text)}
            escalating = sorted(roles.role_name(g) for g in listed & ROLE_ADMIN_ROLES)
            if escalating:
                problems.append(f"a condition that lets it assign {', '.join(escalating)}")
            if str(version) != "2.0":
                problems.append(f"conditionVersion {version!r} (must be '2.0')")
        if problems:
            yield r.name, (
                f"role assignment '{r.name}' gives {r.properties.get('principalId')} "
                f"'{role}'{_scope_text(r.properties.get('scope'))} with {'; '.join(problems)}. "
                f"Fix: add condition (version 2.0) limiting "
                f"@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] to the RBAC "
                f"table's roles and @Request[Microsoft.Authorization/roleAssignments:"
                f"PrincipalType] (ServicePrincipal only in prod); see rbac.abac_condition."
            )


_CREDENTIAL_FREE_AUTH = frozenset({"aad", "managedidentity", "none"})


def check_prod_no_access_side_doors(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod and the bootstrap, nothing grants access outside the reviewed role assignments:
    key vault access policies, storage local users or SFTP, registry tokens and scope maps,
    workspace connections holding credentials, PIM rule changes, and federated credentials
    outside the bootstrap."""
    if not context.prod_or_bootstrap:
        return
    where = "the bootstrap" if context.bootstrap else "prod"
    for r in resources:
        token = canonical_type(r.type)
        problem = None
        if token == KEY_VAULT and _as_list(_get(r.properties, "properties", "accessPolicies")):
            problem = ("key vault access policies grant secrets outside Azure RBAC",
                       "remove properties.access_policies (RBAC authorization is on)")
        elif token == KEY_VAULT_ACCESS_POLICY:
            problem = ("a key vault access policy grants secrets outside Azure RBAC",
                       "remove it and grant a Key Vault role in the RBAC table")
        elif token == STORAGE_ACCOUNT and (_truthy(r.properties.get("isLocalUserEnabled"))
                                           or _truthy(r.properties.get("isSftpEnabled"))):
            problem = ("storage local users / SFTP sign in with passwords or keys, not Entra ID",
                       "set is_local_user_enabled=False and is_sftp_enabled=False")
        elif token == STORAGE_LOCAL_USER:
            problem = ("a storage local user signs in with a password or key, not Entra ID",
                       "remove it; grant a Storage Blob Data role instead")
        elif token in (ACR_TOKEN, ACR_SCOPE_MAP):
            problem = ("registry tokens and scope maps are passwords outside RBAC",
                       "remove it; grant AcrPull/AcrPush to an identity instead")
        elif token == ML_CONNECTION:
            auth = _get(r.properties, "properties", "authType")
            if not (isinstance(auth, str) and auth.lower() in _CREDENTIAL_FREE_AUTH):
                problem = (f"a workspace connection with authType {auth!r} stores a credential "
                           "anyone using the workspace can use",
                           "use auth_type 'AAD' or 'ManagedIdentity'")
        elif token in ROLE_MANAGEMENT_POLICY_TYPES:
            problem = ("a role management policy changes who may activate PIM roles and how",
                       "leave PIM rules to the platform team, outside this stack")
        elif token == FEDERATED_CREDENTIAL and not context.bootstrap:
            problem = ("a federated credential lets an outside token act as an identity",
                       "only the bootstrap creates federated credentials; remove it")
        if problem:
            what, fix = problem
            yield r.name, f"'{r.name}' in {where}: {what}. Fix: {fix}."


_KNOWN_PACKAGES = frozenset({"azure-native", "pulumi"})


#: Inputs an explicit azure-native provider may set in prod and the bootstrap.
_PROVIDER_INPUTS = frozenset({"location", "version"})


def check_prod_known_providers(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In prod and the bootstrap, every resource comes from the azure-native provider, the one
    whose resources these policies judge (a role assignment made through another provider would
    pass unseen)."""
    if not context.prod_or_bootstrap:
        return
    for r in resources:
        if not r.custom:
            continue
        package = r.type.split(":", 1)[0]
        provider = r.type.split(":")[-1] if r.type.startswith("pulumi:providers:") else None
        if package in _KNOWN_PACKAGES and provider in (None, "azure-native"):
            if provider:
                overrides = sorted(k for k, v in r.properties.items()
                                   if k not in _PROVIDER_INPUTS and v not in (None, "", [], {})
                                   and not (k == "environment" and v == "public"))
                if overrides:
                    yield r.name, (
                        f"azure-native provider '{r.name}' sets {', '.join(overrides)} in "
                        f"{'the bootstrap' if context.bootstrap else 'prod'}: another endpoint "
                        "(metadataHost, environment) receives the deploy identity's token, "
                        "another subscription, tenant or credential acts outside what these "
                        "policies judge. Fix: use the default provider (location only).")
            continue
        yield r.name, (
            f"'{r.name}' is a {r.type} resource in "
            f"{'the bootstrap' if context.bootstrap else 'prod'}; the blueprint's policies "
            f"judge only azure-native resources, so what it grants or opens is unchecked. "
            f"Fix: use the azure-native equivalent, or move it out of this stack."
        )


# --- validators: the bootstrap -------------------------------------------------------------------

@dataclass(frozen=True)
class _Identity:
    """A user-assigned identity, recognised by its Azure name (naming.ProjectNames)."""

    name: str
    role: str  # "deploy", "preview" or "other"
    environment: str | None = None
    slug: str | None = None

    @property
    def label(self) -> str:
        if self.role == "deploy":
            return f"the {self.environment} deploy identity '{self.name}'"
        if self.role == "preview":
            return f"the preview identity '{self.name}'"
        return f"the identity '{self.name}'"


def identity_of(azure_name: object) -> _Identity:
    if not isinstance(azure_name, str):
        return _Identity(repr(azure_name), "other")
    match = _DEPLOY_IDENTITY_NAME.match(azure_name)
    if match:
        return _Identity(azure_name, "deploy", match.group("env"), match.group("slug"))
    match = _PREVIEW_IDENTITY_NAME.match(azure_name)
    if match:
        return _Identity(azure_name, "preview", None, match.group("slug"))
    return _Identity(azure_name, "other")


def _identity_index(resources: Sequence[Resource]) -> tuple[dict[str, _Identity],
                                                             dict[str, _Identity]]:
    """The stack's user-assigned identities by principal id (where known) and logical name."""
    by_principal: dict[str, _Identity] = {}
    by_logical: dict[str, _Identity] = {}
    for r in _of_type(resources, IDENTITY):
        identity = identity_of(r.properties.get("resourceName"))
        by_logical[r.name] = identity
        principal = _get(r.outputs, "principalId")  # what Azure returned, never an input
        if isinstance(principal, str):
            by_principal[principal.lower()] = identity
    return by_principal, by_logical


def _assignee(r: Resource, resources: Sequence[Resource],
              index: tuple[dict[str, _Identity], dict[str, _Identity]]) -> _Identity | None:
    """Which of the stack's identities a role assignment is for, if any."""
    by_principal, by_logical = index
    principal = r.properties.get("principalId")
    if isinstance(principal, str):
        return by_principal.get(principal.lower())
    if principal is UNKNOWN:
        sources = [by_logical[s.name] for s in _sources(r, "principalId", resources)
                   if canonical_type(s.type) == IDENTITY and s.name in by_logical]
        return sources[0] if len(sources) == 1 else None
    return None


def _assignments(resources: Sequence[Resource]) -> Iterator[Resource]:
    return _of_type(resources, ROLE_ASSIGNMENT)


def check_bootstrap_no_human_above_reader(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In the bootstrap, no User, Group or ForeignGroup (any spelling), nor a principal without
    a valid type, holds more than Reader or Monitoring Reader."""
    if not context.bootstrap:
        return
    for r in _assignments(resources):
        raw_type = r.properties.get("principalType")
        ptype = principal_type(raw_type)
        if ptype not in HUMAN_TYPES and ptype is not None:
            continue
        raw_role = r.properties.get("roleDefinitionId")
        guid = parse_role_id(raw_role)
        if isinstance(guid, str) and guid in BOOTSTRAP_HUMAN_ROLES:
            continue
        who = f"{ptype} {r.properties.get('principalId')}" if ptype else (
            f"{r.properties.get('principalId')} (principalType {raw_type!r}, which is not one "
            f"of Azure's types)")
        yield r.name, (
            f"role assignment '{r.name}' gives {who} '{_role_label(guid, raw_role)}'"
            f"{_scope_text(r.properties.get('scope'))} in the bootstrap, which holds every "
            f"environment's identities, state and keys; no human holds more than Reader there. "
            f"Fix: remove it (platform admins act through PIM outside the stack), or give "
            f"Reader."
        )


def check_bootstrap_no_subscription_scope(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In the bootstrap, no role is assigned at a subscription, management group or the root:
    every identity's rights sit on its own environment's resources."""
    if not context.bootstrap:
        return
    for r in _of_type(resources, ROLE_ASSIGNMENT, *PIM_TYPES):
        scope = r.properties.get("scope")
        if not isinstance(scope, str):
            continue  # computed from a resource's id: a resource scope
        broad = (scope.strip() in ("", "/") or _SUBSCRIPTION_SCOPE.match(scope.strip())
                 or "/providers/microsoft.management/managementgroups/" in scope.lower())
        if broad:
            raw_role = r.properties.get("roleDefinitionId")
            yield r.name, (
                f"'{r.name}' grants '{_role_label(parse_role_id(raw_role), raw_role)}' to "
                f"{r.properties.get('principalId')} at {scope}, which covers every environment "
                f"(prod included). Fix: assign it on the environment's own resource group "
                f"(rg-<slug>-<env>), state container or key instead."
            )


def _own_scope(scope: str, identity: _Identity) -> str | None:
    """What a deploy identity's scope is: "group", "state", "key", "shared" (project registry
    or shared AKS cluster), or None when it is not its own environment's."""
    text = scope.lower().rstrip("/")
    env = (identity.environment or "").lower()
    slug = (identity.slug or "").lower()
    # Inside another environment's group nothing is this identity's: a "shared" registry or
    # cluster, a state container or key there would be a right in that environment.
    if _other_environment_group(text, slug, env):
        return None
    if "/containers/" in text:
        return "state" if text.endswith(f"/containers/{STATE_CONTAINER_PREFIX}{env}") else None
    if "/keys/" in text:
        return "key" if text.endswith(f"/keys/{SECRETS_KEY_PREFIX}{env}") else None
    if ("/providers/microsoft.machinelearningservices/registries/" in text
            or "/providers/microsoft.containerservice/managedclusters/" in text):
        return "shared"
    group = f"/resourcegroups/{naming.environment_resource_group(slug, env)}"
    if text.endswith(group) or f"{group}/" in text:
        return "group"
    return None


_STATE_DATA_ROLES = frozenset(roles.ROLE_IDS[n] for n in
                              ("Storage Blob Data Contributor", "Storage Blob Data Reader"))
_KEY_ROLES = frozenset({roles.ROLE_IDS["Key Vault Crypto User"]})


def _deploy_identity_problem(guid: str, scope: object, identity: _Identity,
                             condition: object) -> str | None:
    role = roles.role_name(guid)
    if guid not in DEPLOY_IDENTITY_ROLES:
        return (f"'{role}' is not a role a deploy identity holds (Contributor, conditioned RBAC "
                f"Administrator, Reader, its own state container's blob data role, its own key's "
                f"Key Vault Crypto User)")
    if not isinstance(scope, str):
        return None  # computed from the resource it sits on (a first preview): judged by plan
    if guid in BOOTSTRAP_HUMAN_ROLES:
        # Control-plane reads anywhere below a subscription (e.g. the platform group, where the
        # prod deployer check looks up the deploy identity); they change nothing.
        return None
    where = _own_scope(scope, identity)
    if where is None:
        return (f"its scope {scope} is not {identity.environment}'s own resource group, state "
                f"container ({STATE_CONTAINER_PREFIX}{identity.environment}) or secrets key "
                f"({SECRETS_KEY_PREFIX}{identity.environment})")
    if guid in _STATE_DATA_ROLES and where != "state":
        return f"'{role}' belongs on its own state container only, not {scope}"
    if guid in _KEY_ROLES and where != "key":
        return f"'{role}' belongs on its own secrets key only, not {scope}"
    rbac_admin = roles.ROLE_IDS["Role Based Access Control Administrator"]
    if where == "shared" and guid not in (roles.ROLE_IDS["Reader"], rbac_admin):
        return f"'{role}' on the shared {scope} (only Reader or conditioned RBAC Administrator)"
    if (guid == rbac_admin
            and naming.environment_kind(identity.environment) == "prod"):
        text = condition if isinstance(condition, str) else ""
        admits = re.findall(r"'(user|group|foreigngroup|device)'", text, re.IGNORECASE)
        if "'serviceprincipal'" not in text.lower() or any(
                a.lower() in ("user", "foreigngroup") for a in admits):
            return ("its RBAC Administrator condition does not restrict the assignees of a prod "
                    "identity to ServicePrincipal (and a Group only for read-only roles)")
    return None


def _preview_identity_problem(guid: str, scope: object) -> str | None:
    role = roles.role_name(guid)
    if guid in PREVIEW_STATE_ROLES | PREVIEW_KEY_ROLES:
        if not isinstance(scope, str):
            return f"'{role}' on a scope unknown until deployment"
        text = scope.lower().rstrip("/")
        prefix = "/containers/" + STATE_CONTAINER_PREFIX if guid in PREVIEW_STATE_ROLES \
            else "/keys/" + SECRETS_KEY_PREFIX
        env = text.rsplit(prefix, 1)[1] if prefix in text else None
        if env is None or "/" in env:
            return (f"'{role}' on {scope}, which is not one environment's state container or "
                    f"secrets key")
        if naming.environment_kind(env) == "prod":
            return (f"'{role}' on {env}'s state or key: prod is previewed offline only on pull "
                    f"requests, never with a cloud identity")
        return None
    if guid in roles.READ_ONLY_ROLES and guid not in _STATE_DATA_ROLES:
        return None
    state = ", ".join(roles.role_name(g) for g in sorted(PREVIEW_STATE_ROLES))
    keys = ", ".join(roles.role_name(g) for g in sorted(PREVIEW_KEY_ROLES))
    return (f"'{role}' is not read-only (or reads data): the preview identity reads resources "
            f"(Reader), non-prod state ({state}) and non-prod keys ({keys})")


def check_bootstrap_identity_rights(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """In the bootstrap, each deploy identity holds rights on its own environment only (its
    resource group, its state container, its secrets key; conditioned RBAC Administrator on the
    registry or AKS cluster), the preview identity only reads (never prod's state or key), and no
    other service principal holds more than Reader."""
    if not context.bootstrap:
        return
    index = _identity_index(resources)
    for r in _assignments(resources):
        raw_role = r.properties.get("roleDefinitionId")
        guid = parse_role_id(raw_role)
        ptype = principal_type(r.properties.get("principalType"))
        identity = _assignee(r, resources, index)
        scope = r.properties.get("scope")
        if identity is None or identity.role == "other":
            if ptype in HUMAN_TYPES or ptype is None:
                continue  # bootstrap-no-human-above-reader reports those
            if isinstance(guid, str) and guid in BOOTSTRAP_HUMAN_ROLES:
                continue
            who = identity.label if identity else str(r.properties.get("principalId"))
            yield r.name, (
                f"role assignment '{r.name}' gives {who} '{_role_label(guid, raw_role)}'"
                f"{_scope_text(scope)}; in the bootstrap only the environments' deploy "
                f"identities (id-<slug>-<env>-deploy) and the preview identity hold roles beyond "
                f"Reader. Fix: remove it, or assign the role to the environment's deploy "
                f"identity on its own resources."
            )
            continue
        if not isinstance(guid, str):
            yield r.name, (
                f"role assignment '{r.name}' gives {identity.label} "
                f"'{_role_label(guid, raw_role)}'; its role must be a known role id. Fix: pass "
                f"the role's full definition id."
            )
            continue
        if identity.role == "deploy":
            problem = _deploy_identity_problem(guid, scope, identity,
                                               r.properties.get("condition"))
        else:
            problem = _preview_identity_problem(guid, scope)
        if problem:
            yield r.name, (
                f"role assignment '{r.name}' gives {identity.label} "
                f"'{roles.role_name(guid)}'{_scope_text(scope)}: {problem}. Fix: grant each "
                f"identity only its own environment's rights (docs/rbac.md, bootstrap table)."
            )


def _subject_rule(identity: _Identity) -> tuple[re.Pattern[str], str]:
    """The federated credential subjects an identity may trust, and how to say them."""
    slug = re.escape(identity.slug or "")
    if identity.role == "preview":
        return (re.compile(rf"^(repo:[^:]+:pull_request|sc://[^/]+/[^/]+/{slug}-preview)$"),
                "repo:<org>/<repo>:pull_request (GitHub) or the preview service connection "
                f"sc://<org>/<project>/{identity.slug}-preview (Azure DevOps)")
    env = re.escape(identity.environment or "")
    return (re.compile(rf"^(repo:[^:]+:environment:{env}|sc://[^/]+/[^/]+/{slug}-{env})$"),
            f"repo:<org>/<repo>:environment:{identity.environment} (GitHub) or the service "
            f"connection sc://<org>/<project>/{identity.slug}-{identity.environment} (Azure "
            f"DevOps)")


def check_federated_credential_subjects(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Federated credentials trust only the CI's issuer and the right subject: a deploy identity
    its own environment (never a pull request, branch or tag), the preview identity pull
    requests only."""
    for r in _of_type(resources, FEDERATED_CREDENTIAL):
        identity = identity_of(r.properties.get("resourceName"))
        subject = r.properties.get("subject")
        issuer = r.properties.get("issuer")
        audiences = r.properties.get("audiences")
        if identity.role == "other":
            yield r.name, (
                f"federated credential '{r.name}' trusts tokens for {identity.label}, which is "
                f"neither an environment's deploy identity (id-<slug>-<env>-deploy) nor the "
                f"preview identity (id-<slug>-preview). Fix: remove it; the bootstrap creates "
                f"the only federated credentials."
            )
            continue
        trusted = issuer == GITHUB_ISSUER or (isinstance(issuer, str)
                                              and _ADO_ISSUER.match(issuer))
        if not trusted:
            yield r.name, (
                f"federated credential '{r.name}' of {identity.label} trusts the issuer "
                f"{issuer!r}; only GitHub Actions ({GITHUB_ISSUER}) or Azure DevOps "
                f"(https://vstoken.dev.azure.com/<organization id>) may sign its tokens. Fix: set "
                f"issuer to the CI's own."
            )
        if _as_list(audiences) != [OIDC_AUDIENCE] and audiences is not UNKNOWN:
            yield r.name, (
                f"federated credential '{r.name}' of {identity.label} accepts the audiences "
                f"{audiences!r}. Fix: audiences=['{OIDC_AUDIENCE}']."
            )
        rule, expected = _subject_rule(identity)
        if isinstance(subject, str) and rule.match(subject):
            continue
        why = ""
        if isinstance(subject, str) and "pull_request" in subject and identity.role == "deploy":
            why = " (any pull request, from any branch, could then act as it)"
        elif isinstance(subject, str) and ":ref:" in subject:
            why = " (a branch or tag subject lets any job on that ref act as it, without the " \
                  "environment's approvals)"
        yield r.name, (
            f"federated credential '{r.name}' lets the subject {subject!r} act as "
            f"{identity.label}{why}. Fix: trust only {expected}."
        )


def check_bootstrap_ado_organization_placeholder(
    resources: Sequence[Resource], context: PolicyContext
) -> Iterator[Finding]:
    """Advisory: an Azure DevOps bootstrap still has the placeholder organization id, so its
    federated credentials trust an issuer no organization has."""
    for r in _of_type(resources, FEDERATED_CREDENTIAL):
        issuer = r.properties.get("issuer")
        match = _ADO_ISSUER.match(issuer) if isinstance(issuer, str) else None
        if match and naming.is_placeholder(match.group(1)):
            yield _stack_file(context), (
                f"adoOrganizationId in {_stack_file(context)} is the placeholder "
                f"{naming.PLACEHOLDER_GUID}, so the federated credentials trust an issuer no "
                f"Azure DevOps organization has and a real `pulumi up` of the bootstrap refuses "
                f"to run. Fix before deploying: set <slug>-bootstrap:adoOrganizationId to your "
                f"organization's id (the GUID in a service connection's issuer, "
                f"https://vstoken.dev.azure.com/<id>)."
            )
            return


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
    # who holds which right
    Policy("prod-no-human-write-roles",
           "In prod, a role that is not read-only is held only by the configured deploy identity "
           "and the workspace's own identity, as ServicePrincipal; any other principal, whatever "
           "its declared type, is a violation.", MANDATORY, check_prod_role_allow_list,
           per_resource=False),
    Policy("grants-in-own-environment",
           "An environment stack grants nothing in another environment's resource group.",
           MANDATORY, check_grants_in_own_environment, per_resource=False),
    Policy("prod-pim-read-only",
           "In prod and the bootstrap, PIM eligibility schedules and schedule requests carry only "
           "read-only roles.", MANDATORY, check_pim_read_only),
    Policy("custom-roles-least-privilege",
           "Custom roles hold no wildcard action (but reads) and no Microsoft.Authorization "
           "write.", MANDATORY, check_custom_roles_least_privilege),
    Policy("prod-custom-roles-read-only",
           "In prod, custom role definitions only read.", MANDATORY,
           check_prod_custom_roles_read_only),
    Policy("role-admin-conditioned",
           "Owner, User Access Administrator and RBAC Administrator assignments carry an ABAC "
           "condition limiting the assignable roles and principal types.", MANDATORY,
           check_role_admin_conditioned),
    Policy("prod-no-access-side-doors",
           "In prod and the bootstrap, nothing grants access outside role assignments: no key "
           "vault access policies, storage local users, registry tokens, credential connections, "
           "PIM rule changes or (outside the bootstrap) federated credentials.", MANDATORY,
           check_prod_no_access_side_doors),
    Policy("prod-known-providers",
           "In prod and the bootstrap, every resource comes from the azure-native provider.",
           MANDATORY, check_prod_known_providers),
    Policy("prod-deployer-identity",
           "Prod names its deploy identity (deployerObjectId) and is deployed by it.",
           MANDATORY, check_prod_deployer_identity, per_resource=False),
    Policy("prod-deployer-placeholder",
           "Prod's deployerObjectId is still the --defaults placeholder.",
           ADVISORY, check_prod_deployer_placeholder, per_resource=False),
    # the bootstrap
    Policy("bootstrap-no-human-above-reader",
           "In the bootstrap, no User, Group or ForeignGroup (any spelling) or untyped principal "
           "holds more than Reader.", MANDATORY, check_bootstrap_no_human_above_reader),
    Policy("bootstrap-no-subscription-scope",
           "In the bootstrap, no role is assigned at a subscription, management group or root "
           "scope.", MANDATORY, check_bootstrap_no_subscription_scope),
    Policy("bootstrap-identity-rights",
           "In the bootstrap, each deploy identity holds rights on its own environment only and "
           "the preview identity only reads, never prod's state or key.", MANDATORY,
           check_bootstrap_identity_rights, per_resource=False),
    Policy("federated-credential-subjects",
           "Federated credentials trust the CI's issuer and their identity's own subject: a "
           "deploy identity its environment, the preview identity pull requests only.",
           MANDATORY, check_federated_credential_subjects),
    Policy("bootstrap-ado-organization-placeholder",
           "An Azure DevOps bootstrap's adoOrganizationId is still the placeholder.",
           ADVISORY, check_bootstrap_ado_organization_placeholder, per_resource=False),
    # secure defaults
    Policy("storage-no-public-blob-access",
           "Storage accounts disable public blob access; blob containers are private.",
           MANDATORY, check_storage_no_public_blob_access),
    Policy("storage-no-shared-key",
           "Storage accounts disable shared key access (account keys and SAS).",
           MANDATORY, check_storage_no_shared_key),
    Policy("storage-tls12-https",
           "Storage accounts require TLS 1.2 or newer and HTTPS.",
           MANDATORY, check_storage_tls12_https),
    Policy("keyvault-rbac",
           "Key vaults use Azure RBAC authorization, not access policies.",
           MANDATORY, check_keyvault_rbac),
    Policy("keyvault-purge-protection-prod",
           "In prod and the bootstrap, key vaults have purge protection and soft delete.",
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
    Policy("prod-data-services-private",
           "In prod, storage accounts, key vaults and container registries disable public "
           "network access unless the stack explicitly opts out.", MANDATORY,
           check_prod_data_services_private),
    Policy("prod-workspace-public-opt-out",
           "The prod stack opted out of private networking (publicNetworkAccess: Enabled).",
           ADVISORY, check_prod_workspace_public_opt_out),
    Policy("compute-local-auth-disabled",
           "Azure ML computes disable local authentication.",
           MANDATORY, check_compute_local_auth_disabled),
    Policy("compute-no-public-ssh-or-ip",
           "Clusters and compute instances have no public SSH access and no public node IPs.",
           MANDATORY, check_compute_no_public_ssh_or_ip),

    Policy("prod-workspace-private-endpoint",
           "Prod's private endpoints are not in the placeholder subnet of a preview.",
           ADVISORY, check_prod_workspace_private_endpoint, per_resource=False),
    Policy("dev-compute-scales-to-zero",
           "In dev, compute clusters scale to zero nodes and compute instances shut down when "
           "idle.", MANDATORY, check_dev_compute_scales_to_zero),
    Policy("prod-compute-min-nodes",
           "In prod, compute clusters scale to zero nodes unless an always-on-reason tag says "
           "why not.", MANDATORY, check_prod_compute_min_nodes),
    Policy("prod-lock-level",
           "In prod and the bootstrap, locks are CanNotDelete or ReadOnly, and the bootstrap "
           "locks the platform and prod-kind resource groups.", MANDATORY, check_prod_lock_level,
           per_resource=False),
    Policy("prod-stateful-resources-protected",
           "In prod and the bootstrap, stateful resources are registered with protect.",
           MANDATORY, check_prod_stateful_resources_protected),
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
    project: str | None = None,
    declared_kind: str | None = None,
    declared_environment: str | None = None,
    configured_deployer: str | None = None,
    deploying_identity: str | None = None,
    public_network_access: str | None = None,
    allowed_principals: Iterable[str] = (),
) -> PolicyContext:
    """The one way to build a context, from the stack's name and what its config declares.

    `environment` is the stack's name. The kind is the strictest of
    `naming.environment_kind(environment)`, the kind of the config's `environment`, and the
    config's `kind`: config can make a stack stricter, never weaker. A bootstrap project
    (`<slug>-bootstrap`) is judged as the bootstrap, at prod strictness. A prod stack opts out of
    private networking only by setting publicNetworkAccess to Enabled.
    """
    bootstrap = naming.is_bootstrap_project(project)
    if bootstrap:
        kind = "prod"
    else:
        kind = naming.stricter_kind(
            naming.environment_kind(environment),
            naming.environment_kind(declared_environment) if declared_environment else None,
            declared_kind,
        )
    opt_out = (kind == "prod" and not bootstrap
               and (public_network_access or "").strip().lower() == "enabled")
    return PolicyContext(
        environment=environment,
        kind=kind,
        configured_deployer=configured_deployer or None,
        deploying_identity=deploying_identity or None,
        public_network_opt_out=opt_out,
        bootstrap=bootstrap,
        allowed_principals=frozenset(p.lower() for p in allowed_principals if p),
    )
