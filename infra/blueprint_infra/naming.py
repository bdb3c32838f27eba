"""Azure resource names and answer rules, in one place.

The CLI (`blueprint new`), the copier questions' validators and the Pulumi programs all follow
these rules, so a project the template accepts always yields names Azure accepts. This module
imports nothing heavy: the CLI loads it on its fast path.

Globally unique names (storage, key vault, container registry) end in a stable six-character
suffix: a hash of the tenant, the project slug and the environment. The same inputs give the
same names on every run; another organisation using the same slug gets different ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: Marks an id that `--defaults` filled in and a human must replace before a real deployment.
PLACEHOLDER_GUID = "00000000-0000-0000-0000-000000000000"

GUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SLUG_MAX_LENGTH = 40
ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,9}$")
AKS_CLUSTER_ID_PATTERN = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.ContainerService/managedClusters/[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]?$",
    re.IGNORECASE,
)
REQUIRED_ENVIRONMENTS = ("dev", "prod")
#: Names the bootstrap uses itself (`rg-<slug>-platform`, the identity `id-<slug>-preview` and
#: the Azure DevOps service connection `<slug>-preview`): an environment may not take them.
RESERVED_ENVIRONMENTS = ("platform", "preview")

#: Public Azure regions that host Azure Machine Learning (programmatic names, `az account
#: list-locations`). copier.yml's `azure_location` validator carries the same list; a test keeps
#: the two equal.
AZURE_REGIONS = (
    "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "canadaeast",
    "centralindia", "centralus", "eastasia", "eastus", "eastus2", "francecentral",
    "germanywestcentral", "italynorth", "japaneast", "japanwest", "koreacentral", "mexicocentral",
    "northcentralus", "northeurope", "norwayeast", "polandcentral", "qatarcentral",
    "southafricanorth", "southcentralus", "southeastasia", "southindia", "spaincentral",
    "swedencentral", "switzerlandnorth", "switzerlandwest", "uaenorth", "uksouth", "ukwest",
    "westcentralus", "westeurope", "westus", "westus2", "westus3",
)

# Azure's own rules, checked on every generated name (see shared reference: resource names).
AZURE_NAME_RULES: dict[str, re.Pattern[str]] = {
    "resource_group": re.compile(r"^[-\w.()]{0,89}[-\w()]$"),
    "storage_account": re.compile(r"^[a-z0-9]{3,24}$"),
    "key_vault": re.compile(r"^(?!.*--)[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$"),
    "container_registry": re.compile(r"^[a-zA-Z0-9]{5,50}$"),
    "log_analytics": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{2,61}[a-zA-Z0-9]$"),
    "app_insights": re.compile(r"^[-\w.()]{1,255}$"),
    "workspace": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{2,32}$"),
    "ml_registry": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$"),
    "compute_cluster": re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$"),
    "kubernetes_compute": re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,14}[a-zA-Z0-9]$"),
    "kubernetes_namespace": re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"),
    "blob_container": re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
    "identity": re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$"),
    "key_vault_key": re.compile(r"^[a-zA-Z0-9-]{1,127}$"),
}


class InvalidAnswer(ValueError):
    """A value breaks a rule; the message names the question (or config key) and the rule."""

    def __init__(self, question: str, rule: str, value: object = None):
        self.question = question
        self.rule = rule
        shown = f" (got {value!r})" if value is not None else ""
        super().__init__(f"{question}: {rule}{shown}")


# --- answers ---------------------------------------------------------------------------------

def slugify(project_name: str) -> str:
    """The default `project_slug` for a project name; copier.yml's default computes the same."""
    slug = re.sub(r"[^a-z0-9]+", "-", project_name.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"ml-{slug}".rstrip("-")
    slug = slug[:SLUG_MAX_LENGTH].rstrip("-")
    return slug if len(slug) >= 3 else f"{slug}-ml"


def validate_slug(slug: str, question: str = "project_slug") -> str:
    if not (3 <= len(slug) <= SLUG_MAX_LENGTH) or not SLUG_PATTERN.fullmatch(slug):
        raise InvalidAnswer(
            question,
            f"3-{SLUG_MAX_LENGTH} lowercase letters, digits and single hyphens, starting with a "
            "letter",
            slug,
        )
    return slug


def validate_guid(value: str, question: str, *, allow_empty: bool = False) -> str:
    if allow_empty and value in ("", None):
        return ""
    if not isinstance(value, str) or not GUID_PATTERN.fullmatch(value):
        rule = "an Entra object id (GUID like 2f1c...-...)" + (", or empty" if allow_empty else "")
        raise InvalidAnswer(question, rule, value)
    return value.lower()


def is_placeholder(value: str | None) -> bool:
    return (value or "").lower() == PLACEHOLDER_GUID


def validate_location(location: str, question: str = "azure_location") -> str:
    if location not in AZURE_REGIONS:
        raise InvalidAnswer(
            question, "an Azure region name such as westeurope or eastus2", location
        )
    return location


def validate_environments(environments: object, question: str = "environments") -> list[str]:
    if not isinstance(environments, list) or not all(isinstance(e, str) for e in environments):
        raise InvalidAnswer(question, "a list of environment names, e.g. [dev, prod]", environments)
    for env in environments:
        if not ENVIRONMENT_PATTERN.fullmatch(env):
            raise InvalidAnswer(
                question,
                "each name is 2-10 lowercase letters or digits, starting with a letter",
                env,
            )
    reserved = [e for e in environments if e in RESERVED_ENVIRONMENTS]
    if reserved:
        raise InvalidAnswer(
            question, "platform and preview are reserved for the bootstrap's own resources",
            reserved[0],
        )
    if len(set(environments)) != len(environments):
        raise InvalidAnswer(question, "names must not repeat", environments)
    missing = [e for e in REQUIRED_ENVIRONMENTS if e not in environments]
    if missing:
        raise InvalidAnswer(question, "must contain dev and prod", environments)
    return list(environments)


def validate_aks_cluster_id(value: str, question: str = "aks_cluster_id") -> str:
    if value in ("", None):
        return ""
    if not AKS_CLUSTER_ID_PATTERN.fullmatch(value):
        raise InvalidAnswer(
            question,
            "empty, or an ARM id /subscriptions/<sub>/resourceGroups/<rg>/providers/"
            "Microsoft.ContainerService/managedClusters/<name>",
            value,
        )
    return value


#: The environment kinds, from the most permissive to the strictest.
KINDS = ("dev", "staging", "prod")

#: Environment names known to be pre-production: they get kind `staging`. copier.yml's `--kinds`
#: Jinja carries the same list (tests/template/test_questions.py keeps the two equal). A name not
#: listed here, `dev` or `prod` is unknown and gets the strictest kind, `prod`.
STAGING_NAMES = (
    "staging", "stage", "stg", "preprod", "pprod", "test", "testing", "tst", "qa", "uat",
    "int", "sit", "perf", "acc", "acceptance",
)

#: The suffix of the bootstrap's Pulumi project name (`<slug>-bootstrap`).
BOOTSTRAP_PROJECT_SUFFIX = "-bootstrap"


def environment_kind(environment: object) -> str:
    """The kind that decides an environment's access rules, from its (stack) name alone.

    The name is normalised (stripped, lower-cased): `dev` is dev, a known pre-production name
    (`STAGING_NAMES`, e.g. preprod, test, qa) is staging, and everything else, `prod` and any
    unknown name (`prodx`, `sandbox`, `""`), is prod, the strictest. The program, the policy
    pack, `blueprint plan` and `blueprint check` all derive the kind here; a stack's `kind`
    config may repeat it or be stricter (`stricter_kind`), never weaker.
    """
    name = environment.strip().lower() if isinstance(environment, str) else ""
    if name == "dev":
        return "dev"
    if name in STAGING_NAMES:
        return "staging"
    return "prod"


def kind_rank(kind: object) -> int:
    """0 for dev, 1 for staging, 2 for prod; anything else ranks as prod (the strictest)."""
    text = kind.strip().lower() if isinstance(kind, str) else ""
    return KINDS.index(text) if text in KINDS else len(KINDS) - 1


def stricter_kind(*kinds: object) -> str:
    """The strictest of the given kinds; None and "" are ignored, anything unknown is prod."""
    given = [k for k in kinds if k not in (None, "")]
    if not given:
        return "prod"
    return KINDS[max(kind_rank(k) for k in given)]


def is_bootstrap_project(project: object) -> bool:
    """True for the bootstrap's Pulumi project (`<slug>-bootstrap`)."""
    return isinstance(project, str) and project.strip().lower().endswith(
        BOOTSTRAP_PROJECT_SUFFIX)


# --- resource names --------------------------------------------------------------------------

def suffix(*parts: str, length: int = 6) -> str:
    """A stable lowercase hex suffix from the parts (tenant, slug, environment)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _compact(slug: str) -> str:
    return slug.replace("-", "")


def _trim(text: str, length: int) -> str:
    return text[:length].rstrip("-")


@dataclass(frozen=True)
class EnvironmentNames:
    """Names of one environment's resources."""

    resource_group: str
    storage_account: str
    blob_container: str
    key_vault: str
    log_analytics: str
    app_insights: str
    container_registry: str
    workspace: str
    compute_cluster: str
    kubernetes_compute: str
    kubernetes_namespace: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ProjectNames:
    """Names of the resources the bootstrap creates once per project. Each environment has its
    own Pulumi state container and secrets key (so no identity of one environment can read or
    write another's state or secrets), and its own deploy identity; the bootstrap also
    pre-creates each environment's resource group (`environment_names(...).resource_group`)."""

    slug: str
    resource_group: str
    ml_registry: str
    state_storage_account: str
    secrets_key_vault: str
    preview_identity: str

    def deploy_identity(self, environment: str) -> str:
        return f"id-{self.slug}-{environment}-deploy"

    def state_container(self, environment: str) -> str:
        return f"pulumi-state-{environment}"

    def secrets_key(self, environment: str) -> str:
        return f"pulumi-secrets-{environment}"

    def environment_resource_group(self, environment: str) -> str:
        return environment_resource_group(self.slug, environment)

    def as_dict(self) -> dict[str, str]:
        names = {k: v for k, v in self.__dict__.items() if k != "slug"}
        # the longest environment name the template accepts, for the length rules
        longest = "p" * 10
        names["deploy_identity_prod"] = self.deploy_identity("prod")
        names["deploy_identity_longest"] = self.deploy_identity(longest)
        names["state_container_longest"] = self.state_container(longest)
        names["secrets_key_longest"] = self.secrets_key(longest)
        names["environment_resource_group_longest"] = self.environment_resource_group(longest)
        return names


def environment_resource_group(slug: str, environment: str) -> str:
    """`rg-<slug>-<env>`: created by the bootstrap, used (never created) by the environment."""
    return f"rg-{slug}-{environment}"


def environment_names(slug: str, environment: str, tenant_id: str) -> EnvironmentNames:
    tag = suffix(tenant_id.lower(), slug, environment)
    env4 = environment[:4]
    compact = _compact(slug)
    return EnvironmentNames(
        resource_group=environment_resource_group(slug, environment),
        storage_account=f"st{compact[: 24 - 2 - len(env4) - 6]}{env4}{tag}",
        blob_container="data",
        key_vault=f"kv{compact[: 24 - 2 - len(env4) - 6]}{env4}{tag}",
        log_analytics=f"log-{slug}-{environment}",
        app_insights=f"appi-{slug}-{environment}",
        container_registry=f"cr{compact[: 50 - 2 - len(environment) - 6]}{environment}{tag}",
        workspace=f"mlw-{_trim(slug, 33 - 4 - 1 - len(environment))}-{environment}",
        compute_cluster="cpu-cluster",
        kubernetes_compute=f"k8s-{environment}",
        kubernetes_namespace=f"{_trim(slug, 63 - 1 - len(environment))}-{environment}",
    )


def project_names(slug: str, tenant_id: str) -> ProjectNames:
    tag = suffix(tenant_id.lower(), slug)
    compact = _compact(slug)
    return ProjectNames(
        slug=slug,
        resource_group=f"rg-{slug}-platform",
        ml_registry=f"mlr-{_trim(slug, 33 - 4 - 1 - 6)}-{tag}",
        state_storage_account=f"st{compact[: 24 - 2 - 5 - 6]}state{tag}",
        secrets_key_vault=f"kv{compact[: 24 - 2 - 3 - 6]}sec{tag}",
        preview_identity=f"id-{slug}-preview",
    )


def check_names(names: EnvironmentNames | ProjectNames) -> list[str]:
    """Every name that breaks Azure's rules, as 'field: name'. Empty when all are valid."""
    broken = []
    for field, value in names.as_dict().items():
        rule = AZURE_NAME_RULES.get(field) or AZURE_NAME_RULES.get(_RULE_ALIASES.get(field, ""))
        if rule is not None and not rule.fullmatch(value):
            broken.append(f"{field}: {value}")
    return broken


_RULE_ALIASES = {
    "state_storage_account": "storage_account",
    "state_container_longest": "blob_container",
    "secrets_key_vault": "key_vault",
    "secrets_key_longest": "key_vault_key",
    "preview_identity": "identity",
    "deploy_identity_prod": "identity",
    "deploy_identity_longest": "identity",
    "environment_resource_group_longest": "resource_group",
}
