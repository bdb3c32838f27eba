"""Stack config, read in one place and validated before any resource is registered.

A missing or malformed key raises `ConfigError` whose one-line message names the key (as it
appears in `Pulumi.<stack>.yaml`, e.g. `churn-model:deployerObjectId`) and the expected form.
The programs turn it into `pulumi.RunError`, so the user sees that line and no stack trace.
The parsing is plain Python over a `get(key) -> str | None` function, so tests and the offline
preview can call it without a Pulumi engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from blueprint_infra import naming

KINDS = naming.KINDS
PUBLIC_NETWORK_ACCESS = ("Enabled", "Disabled")
DEFAULT_VM_SIZE = "Standard_DS3_v2"
DEFAULT_MAX_NODES = 2
MAX_NODES_LIMIT = 100

ML_REGISTRY_ID_PATTERN = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.MachineLearningServices/registries/[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$",
    re.IGNORECASE,
)
COST_CENTER_PATTERN = re.compile(r"^[A-Za-z0-9 _.:+=@/-]{1,256}$")
VM_SIZE_PATTERN = re.compile(r"^Standard_[A-Za-z0-9_]+$")
CI_PROVIDERS = ("github", "azure-devops")
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_. -]+$")

ConfigGetter = Callable[[str], "str | None"]


class ConfigError(ValueError):
    """A stack config key is missing or malformed. The message is one line."""

    def __init__(self, key: str, expected: str, value: object = None):
        self.key = key
        self.expected = expected
        shown = f" (got {value!r})" if value not in (None, "") else ""
        super().__init__(f"stack config {key}: expected {expected}{shown}")


@dataclass(frozen=True)
class EnvironmentSettings:
    """One environment stack's validated config."""

    project: str  # Pulumi project name, the config namespace
    slug: str
    environment: str
    kind: str  # dev | staging | prod
    location: str
    cost_center: str
    data_scientists_group_id: str
    readers_group_id: str  # "" when none
    deployer_object_id: str  # "" when none (non-prod only)
    aks_cluster_id: str  # "" when none
    public_network_access: str  # Enabled | Disabled
    public_network_opt_out: bool  # prod stack explicitly set Enabled
    compute_vm_size: str
    compute_max_nodes: int
    registry_id: str  # "" means: the bootstrap's registry, by name
    #: platform subnet (ARM id) for the private endpoints; "" when none
    private_endpoint_subnet_id: str = ""
    #: why a prod stack has no private endpoint (an explicit opt-out); "" when none
    private_endpoint_opt_out: str = ""

    @property
    def is_prod(self) -> bool:
        return self.kind == "prod"

    @property
    def tags(self) -> dict[str, str]:
        return {
            "project": self.slug,
            "environment": self.environment,
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
        }


@dataclass(frozen=True)
class BootstrapSettings:
    """The bootstrap stack's validated config."""

    project: str
    slug: str
    location: str
    cost_center: str
    environments: list[str]
    ci_provider: str
    repository: str  # GitHub ORG/REPO or Azure DevOps ORG/PROJECT
    ado_organization_id: str  # Azure DevOps organization GUID (issuer); "" for GitHub
    shared_registry_id: str  # "" means: create the project's registry
    aks_cluster_id: str  # "" when none; the AzureML extension is installed on it

    @property
    def tags(self) -> dict[str, str]:
        return {
            "project": self.slug,
            "environment": "platform",
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
        }


class _Reader:
    def __init__(self, namespace: str, get: ConfigGetter):
        self.namespace = namespace
        self._get = get

    def key(self, name: str) -> str:
        return name if ":" in name else f"{self.namespace}:{name}"

    def raw(self, name: str) -> str:
        value = self._get(self.key(name))
        return "" if value is None else str(value).strip()

    def required(self, name: str, expected: str) -> str:
        value = self.raw(name)
        if not value:
            raise ConfigError(self.key(name), expected)
        return value

    def checked(self, name: str, check: Callable[[str], str], expected: str,
                *, required: bool = True) -> str:
        value = self.raw(name)
        if not value and required:
            raise ConfigError(self.key(name), expected)
        try:
            return check(value)
        except naming.InvalidAnswer:
            raise ConfigError(self.key(name), expected, value) from None

    # Keys both programs read, with the same rules.
    def location(self) -> str:
        return self.checked(
            "azure-native:location", naming.validate_location,
            "an Azure region name such as westeurope or eastus2",
        )

    def slug(self) -> str:
        return self.checked(
            "projectSlug", naming.validate_slug,
            "3-40 lowercase letters, digits and single hyphens, starting with a letter",
        )

    def registry_id(self, name: str) -> str:
        """An optional Azure ML registry ARM id."""
        value = self.raw(name)
        if value and not ML_REGISTRY_ID_PATTERN.fullmatch(value):
            raise ConfigError(
                self.key(name),
                "empty, or an ARM id /subscriptions/<sub>/resourceGroups/<rg>/providers/"
                "Microsoft.MachineLearningServices/registries/<name>",
                value,
            )
        return value

    def cost_center(self) -> str:
        value = self.required("costCenter", "a cost center, 1-256 letters, digits or _.:+=@/-")
        if not COST_CENTER_PATTERN.fullmatch(value):
            raise ConfigError(
                self.key("costCenter"), "1-256 letters, digits, spaces or _.:+=@/-", value
            )
        return value


GUID_FORM = "an Entra object id, a GUID like 2f1c0b7e-5d3a-4c8e-9b1f-0a2b3c4d5e6f"


def load_environment_settings(project: str, get: ConfigGetter) -> EnvironmentSettings:
    """Validate an environment stack's config; raises ConfigError naming the first bad key."""
    cfg = _Reader(project, get)
    location = cfg.location()
    slug = cfg.slug()
    if slug != project:
        raise ConfigError(cfg.key("projectSlug"), f"the Pulumi project name {project!r}", slug)
    environment = cfg.required("environment", "an environment name such as dev, preprod or prod")
    if not naming.ENVIRONMENT_PATTERN.fullmatch(environment):
        raise ConfigError(
            cfg.key("environment"),
            "2-10 lowercase letters or digits, starting with a letter", environment,
        )
    # The kind comes from the environment's name (naming.environment_kind). `kind` may repeat it
    # or be stricter (a prod-kind preprod), never weaker; left out, it is the derived kind.
    named_kind = naming.environment_kind(environment)
    allowed = [k for k in KINDS if naming.kind_rank(k) >= naming.kind_rank(named_kind)]
    kind = cfg.raw("kind") or named_kind
    if kind not in KINDS:
        raise ConfigError(cfg.key("kind"), "one of dev, staging, prod", kind)
    if kind not in allowed:
        raise ConfigError(
            cfg.key("kind"),
            f"{' or '.join(allowed)} for the {environment} environment (its kind follows its "
            f"name; a stack may only be stricter)", kind,
        )
    cost_center = cfg.cost_center()
    scientists = cfg.checked(
        "dataScientistsGroupId", lambda v: naming.validate_guid(v, "dataScientistsGroupId"),
        GUID_FORM,
    )
    readers = cfg.checked(
        "readersGroupId",
        lambda v: naming.validate_guid(v, "readersGroupId", allow_empty=True),
        GUID_FORM + ", or empty", required=False,
    )
    if naming.is_placeholder(readers):
        readers = ""
    deployer = cfg.checked(
        "deployerObjectId",
        lambda v: naming.validate_guid(v, "deployerObjectId", allow_empty=True),
        "the object id (GUID) of the identity allowed to deploy this stack"
        + ("" if kind == "prod" else ", or empty"),
        required=(kind == "prod"),
    )
    aks = cfg.checked(
        "aksClusterId", naming.validate_aks_cluster_id,
        "empty, or an ARM id /subscriptions/<sub>/resourceGroups/<rg>/providers/"
        "Microsoft.ContainerService/managedClusters/<name>",
        required=False,
    )
    public = cfg.raw("publicNetworkAccess")
    if public and public not in PUBLIC_NETWORK_ACCESS:
        raise ConfigError(cfg.key("publicNetworkAccess"), "Enabled or Disabled", public)
    default_public = "Disabled" if kind == "prod" else "Enabled"
    vm_size = cfg.raw("computeVmSize") or DEFAULT_VM_SIZE
    if not VM_SIZE_PATTERN.fullmatch(vm_size):
        raise ConfigError(cfg.key("computeVmSize"), "a VM size such as Standard_DS3_v2", vm_size)
    max_nodes_raw = cfg.raw("computeMaxNodes") or str(DEFAULT_MAX_NODES)
    if not max_nodes_raw.isdigit() or not 1 <= int(max_nodes_raw) <= MAX_NODES_LIMIT:
        raise ConfigError(
            cfg.key("computeMaxNodes"), f"a whole number from 1 to {MAX_NODES_LIMIT}",
            max_nodes_raw,
        )
    registry_id = cfg.registry_id("registryId")
    subnet_id, opt_out = _private_endpoint_keys(cfg)
    return EnvironmentSettings(
        project=project,
        slug=slug,
        environment=environment,
        kind=kind,
        location=location,
        cost_center=cost_center,
        data_scientists_group_id=scientists,
        readers_group_id=readers,
        deployer_object_id=deployer,
        aks_cluster_id=aks,
        public_network_access=public or default_public,
        public_network_opt_out=(kind == "prod" and public == "Enabled"),
        compute_vm_size=vm_size,
        compute_max_nodes=int(max_nodes_raw),
        registry_id=registry_id,
        private_endpoint_subnet_id=subnet_id,
        private_endpoint_opt_out=opt_out,
    )


#: where a prod preview puts the private endpoints while privateEndpointSubnetId is empty; a real
#: update refuses it (guardrails.private_inbound_check), `plan` reports it as an advisory.
PLACEHOLDER_SUBNET_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-network-placeholder"
    "/providers/Microsoft.Network/virtualNetworks/vnet-placeholder/subnets/snet-private-endpoints"
)
SUBNET_ID_FORM = (
    "empty, or a subnet ARM id /subscriptions/<sub>/resourceGroups/<rg>/providers/"
    "Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>"
)


def _private_endpoint_keys(cfg: _Reader) -> tuple[str, str]:
    """`privateEndpointSubnetId` (where the private endpoints go) and `privateEndpointOptOut`
    (the reason a stack has none); at most one. Whether prod needs one: guardrails.py."""
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id

    subnet = cfg.raw("privateEndpointSubnetId")
    if subnet:
        parts = parse_resource_id(subnet) if is_valid_resource_id(subnet) else {}
        if not (
            str(parts.get("namespace", "")).lower() == "microsoft.network"
            and str(parts.get("type", "")).lower() == "virtualnetworks"
            and str(parts.get("child_type_1", "")).lower() == "subnets"
            and parts.get("last_child_num") == 1
            and naming.GUID_PATTERN.fullmatch(str(parts.get("subscription", "")))
        ):
            raise ConfigError(cfg.key("privateEndpointSubnetId"), SUBNET_ID_FORM, subnet)
    opt_out = cfg.raw("privateEndpointOptOut")
    if opt_out and subnet:
        raise ConfigError(
            cfg.key("privateEndpointOptOut"),
            "empty when privateEndpointSubnetId is set (a stack either has private endpoints "
            "or opts out of them)", opt_out,
        )
    if opt_out and not 10 <= len(opt_out) <= 512:
        raise ConfigError(
            cfg.key("privateEndpointOptOut"),
            "the reason the workspace needs no private endpoint, 10-512 characters", opt_out,
        )
    return subnet, opt_out


def load_bootstrap_settings(project: str, get: ConfigGetter) -> BootstrapSettings:
    """Validate the bootstrap stack's config (namespace: `<slug>-bootstrap`)."""
    cfg = _Reader(project, get)
    location = cfg.location()
    slug = cfg.slug()
    if project != f"{slug}-bootstrap":
        raise ConfigError(
            cfg.key("projectSlug"), f"the slug of the Pulumi project {project!r}", slug
        )
    cost_center = cfg.cost_center()
    envs_raw = cfg.required("environments", "a list of environment names, e.g. [dev, prod]")
    environments = _parse_list(envs_raw)
    try:
        environments = naming.validate_environments(environments, cfg.key("environments"))
    except naming.InvalidAnswer as error:
        raise ConfigError(cfg.key("environments"), error.rule, envs_raw) from None
    ci_provider = cfg.required("ciProvider", "github or azure-devops")
    if ci_provider not in CI_PROVIDERS:
        raise ConfigError(cfg.key("ciProvider"), "github or azure-devops", ci_provider)
    repository = cfg.required("repository", "ORG/REPO (GitHub) or ORG/PROJECT (Azure DevOps)")
    if not REPOSITORY_PATTERN.fullmatch(repository):
        raise ConfigError(
            cfg.key("repository"), "ORG/REPO (GitHub) or ORG/PROJECT (Azure DevOps)", repository
        )
    ado_org_id = cfg.checked(
        "adoOrganizationId",
        lambda v: naming.validate_guid(v, "adoOrganizationId", allow_empty=True),
        "the Azure DevOps organization id (GUID) that issues the OIDC tokens, or empty",
        required=False,
    )
    if ci_provider == "azure-devops" and not ado_org_id:
        # Filled in later; a real update refuses the placeholder (see bootstrap).
        ado_org_id = naming.PLACEHOLDER_GUID
    registry = cfg.registry_id("sharedRegistryId")
    aks = cfg.checked(
        "aksClusterId", naming.validate_aks_cluster_id,
        "empty, or an ARM id /subscriptions/<sub>/resourceGroups/<rg>/providers/"
        "Microsoft.ContainerService/managedClusters/<name>",
        required=False,
    )
    return BootstrapSettings(
        project=project,
        slug=slug,
        location=location,
        cost_center=cost_center,
        environments=environments,
        ci_provider=ci_provider,
        repository=repository,
        ado_organization_id=ado_org_id,
        shared_registry_id=registry,
        aks_cluster_id=aks,
    )


def _parse_list(raw: str) -> object:
    """Pulumi hands object config values over as JSON; accept that or `a,b,c`."""
    import json

    text = raw.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return [part.strip() for part in text.split(",") if part.strip()]


def pulumi_config_getter() -> ConfigGetter:
    """Reads `<project>:<key>` and `azure-native:<key>` from the running stack's config."""
    import pulumi  # the programs' dependency; settings itself stays importable without it

    project = pulumi.Config(pulumi.get_project())
    azure = pulumi.Config("azure-native")

    def get(key: str) -> str | None:
        namespace, _, name = key.partition(":")
        return azure.get(name) if namespace == "azure-native" else project.get(name)

    return get
