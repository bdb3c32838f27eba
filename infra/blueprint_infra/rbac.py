"""Who gets which role where: the one RBAC table.

The environment program (`AccessControl`) and the bootstrap (`DeployIdentities`,
`StateBackend`) create exactly the role assignments listed here, `docs/rbac.md` is rendered
from it (`python -m blueprint_infra.rbac > docs/rbac.md`; a test fails when the two differ), and
the policies check the recorded assignments against the same rules.

Azure Machine Learning has no fine-grained RBAC inside a workspace, so the rules are per
environment kind:

- dev: the data scientists' group works (data scientist and compute operator on the workspace,
  blob data and key vault secrets), and may publish models to the project's Azure ML registry.
- staging (any other pre-prod environment): humans may deploy it, the data scientists' group and
  the optional readers group only read.
- prod: no user or group holds a write role; the optional readers group gets read-only roles
  (`roles.READ_ONLY_ROLES`); the deploy identity holds what deployment needs; the workspace
  only reads from the registry.

Imports nothing heavy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from blueprint_infra import roles
from blueprint_infra.naming import KINDS, environment_kind

#: Principals of an environment stack, with the principal type Azure records for them.
PRINCIPAL_TYPES: dict[str, str] = {
    "data_scientists": "Group",
    "readers": "Group",
    "workspace_identity": "ServicePrincipal",
    "deploy_identity": "ServicePrincipal",
    # bootstrap principals
    "preview_identity": "ServicePrincipal",
}

PRINCIPAL_LABELS: dict[str, str] = {
    "data_scientists": "data scientists' group (`dataScientistsGroupId`)",
    "readers": "readers group (`readersGroupId`, optional)",
    "workspace_identity": "workspace managed identity (system-assigned)",
    "deploy_identity": "the environment's deploy identity (`deployerObjectId`)",
    "preview_identity": "read-only preview identity (pull requests)",
}

#: Example environments for the generated per-identity tables of docs/rbac.md.
EXAMPLE_ENVIRONMENTS = ("dev", "preprod", "prod")

#: Scopes, in the order the table lists them.
SCOPE_LABELS: dict[str, str] = {
    "resource_group": "environment resource group",
    "workspace": "Azure ML workspace",
    "storage_account": "storage account",
    "key_vault": "key vault",
    "container_registry": "container registry",
    "ml_registry": "project Azure ML registry",
    "aks_cluster": "shared AKS cluster (when `aksClusterId` is set)",
    # bootstrap scopes
    "state_container": "the environment's Pulumi state container (`pulumi-state-<env>`)",
    "secrets_key": "the environment's Pulumi secrets key (`pulumi-secrets-<env>`)",
    "deploy_identity_resource": "the deploy identity's own managed identity resource",
}


@dataclass(frozen=True)
class Grant:
    """One row: in `kind`, `principal` holds `role` on `scope`, because `why`."""

    kind: str
    principal: str
    role: str
    scope: str
    why: str

    @property
    def principal_type(self) -> str:
        return PRINCIPAL_TYPES[self.principal]

    @property
    def read_only(self) -> bool:
        return roles.ROLE_IDS.get(self.role) in roles.READ_ONLY_ROLES


def _rows(kinds: tuple[str, ...], principal: str, role: str, scope: str, why: str) -> list[Grant]:
    return [Grant(kind, principal, role, scope, why) for kind in kinds]


_ALL = KINDS
_PRE_PROD = ("staging", "prod")

ENVIRONMENT_GRANTS: tuple[Grant, ...] = tuple(
    # --- dev: the data scientists work ------------------------------------------------------
    _rows(("dev",), "data_scientists", "AzureML Data Scientist", "workspace",
          "run jobs, register models, deploy endpoints (no workspace or compute writes)")
    + _rows(("dev",), "data_scientists", "AzureML Compute Operator", "workspace",
            "create and stop their own compute")
    + _rows(("dev",), "data_scientists", "Reader", "resource_group",
            "see the environment's resources in the portal")
    + _rows(("dev",), "data_scientists", "Storage Blob Data Contributor", "storage_account",
            "read and write data through identity-based datastores")
    + _rows(("dev",), "data_scientists", "Key Vault Secrets User", "key_vault",
            "read connection secrets in notebooks and jobs")
    + _rows(("dev",), "data_scientists", "AzureML Registry User", "ml_registry",
            "publish models to the project registry for promotion")
    # --- staging: humans read --------------------------------------------------------------
    + _rows(("staging",), "data_scientists", "Reader", "resource_group",
            "inspect jobs, models and endpoints; no changes")
    + _rows(("staging",), "data_scientists", "Monitoring Reader", "resource_group",
            "read metrics and logs")
    # --- readers group (optional): read-only, staging and prod -----------------------------
    + _rows(_PRE_PROD, "readers", "Reader", "resource_group",
            "read-only view of the environment")
    + _rows(_PRE_PROD, "readers", "Monitoring Reader", "resource_group",
            "read metrics and logs")
    # --- the workspace's managed identity: the data plane it needs -------------------------
    + _rows(_ALL, "workspace_identity", "Storage Blob Data Contributor", "storage_account",
            "identity-based datastores (shared keys are off)")
    + _rows(_ALL, "workspace_identity", "Key Vault Administrator", "key_vault",
            "the workspace keeps its connection secrets in an RBAC-mode vault")
    + _rows(_ALL, "workspace_identity", "AcrPush", "container_registry",
            "build and push environment images")
    + _rows(("dev",), "workspace_identity", "AzureML Registry User", "ml_registry",
            "dev publishes models and environments to the registry")
    + _rows(_PRE_PROD, "workspace_identity", "Reader", "ml_registry",
            "staging and prod only read promoted models from the registry")
    + _rows(_ALL, "workspace_identity", "Reader", "aks_cluster",
            "Kubernetes compute attach (user guide: Reader on the cluster)")
    + _rows(_ALL, "workspace_identity", "Kubernetes Extension Contributor", "aks_cluster",
            "Kubernetes compute attach uses the AzureML cluster extension")
    + _rows(_ALL, "workspace_identity", "Azure Kubernetes Service Cluster Admin Role",
            "aks_cluster", "Kubernetes compute attach deploys into its namespace")
    # --- the deploy identity (CI): what deployment needs beyond its subscription roles -----
    + _rows(_ALL, "deploy_identity", "Storage Blob Data Contributor", "storage_account",
            "upload data and model assets (identity-based datastores)")
    + _rows(_ALL, "deploy_identity", "Key Vault Secrets Officer", "key_vault",
            "set the secrets deployments read")
    + _rows(("dev",), "deploy_identity", "AzureML Registry User", "ml_registry",
            "dev CI publishes the trained model to the registry")
    + _rows(_PRE_PROD, "deploy_identity", "Reader", "ml_registry",
            "deploy promoted models; never publish")
)

#: Scopes of the environment program's own rows that lie inside the environment's resource
#: group (the deploy identity's Role Based Access Control Administrator there covers them).
IN_RESOURCE_GROUP = ("resource_group", "workspace", "storage_account", "key_vault",
                     "container_registry")
#: Scopes that belong to one environment (its resource group, state container, secrets key and
#: its deploy identity's own resource); the others (registry, AKS cluster) are shared.
PER_ENVIRONMENT_SCOPES = ("resource_group", "state_container", "secrets_key",
                          "deploy_identity_resource")

RBAC_ADMINISTRATOR = "Role Based Access Control Administrator"

#: Role assignments the bootstrap makes (a platform admin, once per project). A row's `kind`
#: says to which environments it applies: "all" (every environment's deploy identity, each on
#: ITS OWN environment's scopes only), or one kind. Nothing is granted at subscription scope.
#: The Role Based Access Control Administrator rows carry an ABAC condition (see
#: `rbac_admin_condition`): only the roles, and only the principal types, that the
#: environment's own rows of ENVIRONMENT_GRANTS use at that scope. The preview identity holds
#: read rights on dev and staging environments only; prod is previewed offline on pull requests.
BOOTSTRAP_GRANTS: tuple[Grant, ...] = (
    Grant("all", "deploy_identity", "Contributor", "resource_group",
          "create and update the environment's resources, in its own resource group only"),
    Grant("all", "deploy_identity", RBAC_ADMINISTRATOR, "resource_group",
          "create the environment's role assignments; ABAC condition: only the table's roles "
          "and principal types for this kind"),
    Grant("all", "deploy_identity", RBAC_ADMINISTRATOR, "ml_registry",
          "the environment's rows on the registry; same kind of ABAC condition"),
    Grant("all", "deploy_identity", RBAC_ADMINISTRATOR, "aks_cluster",
          "the workspace identity's rows on the cluster; same kind of ABAC condition"),
    Grant("all", "deploy_identity", "Reader", "aks_cluster",
          "attach the cluster as Kubernetes compute (reads the cluster)"),
    Grant("all", "deploy_identity", "Storage Blob Data Contributor", "state_container",
          "read and write its own environment's Pulumi state (and the update lock)"),
    Grant("all", "deploy_identity", "Key Vault Crypto User", "secrets_key",
          "encrypt and decrypt its own environment's stack secrets"),
    Grant("prod", "deploy_identity", "Reader", "deploy_identity_resource",
          "the prod deployer check looks this identity up in Azure by name"),
) + tuple(
    _rows(("dev", "staging"), "preview_identity", "Reader", "resource_group",
          "`pulumi preview` on pull requests reads live resources; no writes")
    + _rows(("dev", "staging"), "preview_identity", "Storage Blob Data Reader",
            "state_container", "read the Pulumi state; `pulumi preview` takes no lock")
    + _rows(("dev", "staging"), "preview_identity", "Key Vault Crypto User", "secrets_key",
            "decrypt the stack's secrets during a preview (non-prod keys only)")
)


def bootstrap_grants_for(principal: str, environment_kind: str | None = None) -> list[Grant]:
    """The bootstrap rows of one principal for an environment of the given kind."""
    return [
        g for g in BOOTSTRAP_GRANTS
        if g.principal == principal and g.kind in ("all", environment_kind)
    ]


@dataclass(frozen=True)
class BootstrapAssignment:
    """One role assignment the bootstrap makes: `holder` (an environment's deploy identity, or
    "preview") holds `role` on `scope`, which belongs to `environment` (None: a shared scope)."""

    holder: str
    principal: str  # deploy_identity | preview_identity
    role: str
    scope: str
    environment: str | None
    why: str
    condition: str | None = None


def bootstrap_assignments(environments: list[str], *, aks: bool) -> list[BootstrapAssignment]:
    """Every role assignment the bootstrap makes for these environments, in order. The
    bootstrap creates exactly these; docs/rbac.md shows them; tests compare the two."""
    found: list[BootstrapAssignment] = []
    for env in environments:
        kind = environment_kind(env)
        for g in bootstrap_grants_for("deploy_identity", kind):
            if g.scope == "aks_cluster" and not aks:
                continue
            condition = (rbac_admin_condition(kind, g.scope)
                         if g.role == RBAC_ADMINISTRATOR else None)
            owner = env if g.scope in PER_ENVIRONMENT_SCOPES else None
            found.append(BootstrapAssignment(env, g.principal, g.role, g.scope, owner, g.why,
                                             condition))
    for env in environments:
        for g in bootstrap_grants_for("preview_identity", environment_kind(env)):
            found.append(BootstrapAssignment("preview", g.principal, g.role, g.scope, env, g.why))
    return found


def grants_for(kind: str) -> list[Grant]:
    """The environment grants of one kind, in table order."""
    if kind not in KINDS:
        raise ValueError(f"unknown environment kind {kind!r}; expected one of {', '.join(KINDS)}")
    return [g for g in ENVIRONMENT_GRANTS if g.kind == kind]


def assignable_role_ids() -> list[str]:
    """Every role GUID some environment's deploy identity may assign somewhere."""
    return sorted({roles.ROLE_IDS[g.role] for g in ENVIRONMENT_GRANTS})


def assignable(kind: str, scope: str) -> dict[str, list[str]]:
    """What the deploy identity of a `kind` environment may assign at a bootstrap `scope`
    (resource_group: everything inside the group; ml_registry; aks_cluster): principal type ->
    role GUIDs, straight from that kind's rows of ENVIRONMENT_GRANTS.

    Raises ValueError if a prod row would let a non-ServicePrincipal hold a write role: the
    condition must never allow what the prod policy forbids."""
    scopes = IN_RESOURCE_GROUP if scope == "resource_group" else (scope,)
    allowed: dict[str, set[str]] = {}
    for g in grants_for(kind):
        if g.scope not in scopes:
            continue
        if kind == "prod" and not g.read_only and g.principal_type != "ServicePrincipal":
            raise ValueError(f"prod row {g} gives a {g.principal_type} a write role")
        allowed.setdefault(g.principal_type, set()).add(roles.ROLE_IDS[g.role])
    return {ptype: sorted(ids) for ptype, ids in sorted(allowed.items())}


def assignment_name(scope: str, principal_id: str, role_definition_id: str) -> str:
    """A deterministic role assignment name (a GUID), so a re-run changes nothing."""
    key = f"{scope.lower()}|{principal_id.lower()}|{roles.role_guid(role_definition_id)}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


# ABAC condition syntax, from Microsoft's "Examples to delegate Azure role assignment management
# with conditions" (learn.microsoft.com/azure/role-based-access-control/
# delegate-role-assignments-examples, "Constrain roles and principal types"): the write action
# is checked on @Request[...] attributes and the delete action on @Resource[...] attributes;
# role ids compare with `ForAnyOfAnyValues:GuidEquals {guid, ...}`, principal types with
# `ForAnyOfAnyValues:StringEqualsIgnoreCase {'User', 'Group'}`
# (`@Request[Microsoft.Authorization/roleAssignments:PrincipalType]`); three or more
# expressions need parentheses (conditions-format, "Grouping and precedence"); condition
# version "2.0"; a condition may be up to 8 KB (conditions-faq). The PrincipalType attribute
# takes User, ServicePrincipal or Group (conditions-authorization-actions-attributes).
CONDITION_VERSION = "2.0"
CONDITION_MAX_LENGTH = 8 * 1024


def abac_condition(allowed: dict[str, list[str]]) -> str:
    """ABAC condition for Role Based Access Control Administrator: it may write or delete only
    assignments whose (principal type, role) pair is in `allowed` (principal type -> role
    GUIDs)."""
    if not allowed:
        raise ValueError("an RBAC Administrator condition needs at least one allowed role")

    def pairs(source: str) -> str:
        attr = f"@{source}[Microsoft.Authorization/roleAssignments:"
        return " OR ".join(
            f"({attr}RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{', '.join(ids)}}} AND "
            f"{attr}PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {{'{ptype}'}})"
            for ptype, ids in allowed.items()
        )

    return (
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
        f"({pairs('Request')})) AND "
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
        f"({pairs('Resource')}))"
    )


def rbac_admin_condition(kind: str, scope: str) -> str:
    """The condition on a `kind` deploy identity's RBAC Administrator assignment at `scope`."""
    return abac_condition(assignable(kind, scope))


# --- the Markdown page ------------------------------------------------------------------------

def _table(grants: list[Grant], *, show_kind: bool = False) -> list[str]:
    lines = [
        "| principal | principal type | role | scope | read-only | why |",
        "|---|---|---|---|---|---|",
    ]
    for g in grants:
        access = "yes" if g.read_only else "no"
        label = PRINCIPAL_LABELS[g.principal]
        if show_kind and g.kind != "all":
            label = f"{label}, {g.kind} only"
        lines.append(
            f"| {label} | {g.principal_type} | {g.role} | "
            f"{SCOPE_LABELS[g.scope]} | {access} | {g.why} |"
        )
    return lines


def render_markdown() -> str:
    """docs/rbac.md, rendered from this module."""
    lines = [
        "# RBAC: who gets which role where",
        "",
        "<!-- Generated by `python -m blueprint_infra.rbac > docs/rbac.md`; do not edit by hand."
        " tests/infra/test_rbac.py fails when this page and infra/blueprint_infra/rbac.py"
        " differ. -->",
        "",
        "Azure Machine Learning has no fine-grained RBAC inside a workspace: anyone with write",
        "access to a workspace can delete its endpoints and pipelines. So each environment gets",
        "its own workspace, and the rules below are per environment kind: `dev`, `staging` (any",
        "other pre-production environment, e.g. `preprod`) and `prod`. Every assignment's name",
        "is a deterministic GUID (uuid5 of scope, principal and role), so a re-run changes",
        "nothing. Rows on the shared AKS cluster apply only when `aksClusterId` is set; rows for",
        "the readers group only when `readersGroupId` is set; rows for the deploy identity only",
        "when `deployerObjectId` is set (always in prod).",
        "",
        "In prod no user or group holds a write role: the only human principal is the optional",
        "readers group, and every role it holds is read-only. \"read-only\" is yes for the roles",
        "in `roles.READ_ONLY_ROLES`; everything else (including Key Vault Secrets User, which",
        "reads secret values) counts as a write role.",
        "",
    ]
    for kind in KINDS:
        lines += [f"## {kind}", ""] + _table(grants_for(kind)) + [""]
    lines += _bootstrap_markdown()
    return "\n".join(lines)


def _bootstrap_markdown() -> list[str]:
    envs = list(EXAMPLE_ENVIRONMENTS)
    assignments = bootstrap_assignments(envs, aks=True)
    lines = [
        "## Bootstrap (once per project, by a platform admin)",
        "",
        "The bootstrap pre-creates every environment's resource group `rg-<slug>-<env>` (prod:",
        "with a CanNotDelete lock), one Pulumi state container and one secrets key per",
        "environment, one deploy identity per environment and a read-only preview identity",
        "(user-assigned managed identities with one OIDC federated credential each, no",
        "secrets). Nothing is granted at subscription scope. Each deploy identity holds rights",
        "on its own environment's resource group, state container and secrets key only, plus",
        "conditioned Role Based Access Control Administrator rights on the shared registry (and",
        "cluster) for its environment's rows there. Every Role Based Access Control",
        "Administrator assignment carries an ABAC condition (version 2.0) that allows writing or",
        "deleting only assignments of the roles AND principal types its environment's rows use",
        "at that scope; in prod every role that is not read-only may go to a ServicePrincipal",
        "only. The preview identity reads dev and staging environments only; prod is previewed",
        "offline (`blueprint plan`) on pull requests.",
        "",
    ] + _table(list(BOOTSTRAP_GRANTS), show_kind=True) + [
        "",
        "### Each identity, for environments " + ", ".join(envs) + " (with a shared AKS cluster)",
        "",
        "Generated from `bootstrap_assignments`, the list the bootstrap program creates.",
        "\"environment\" is whose scope it is; \"shared\" scopes (registry, cluster) belong to no",
        "environment.",
        "",
    ]
    holders = [*envs, "preview"]
    for holder in holders:
        title = "preview identity" if holder == "preview" else (
            f"deploy identity of `{holder}` ({environment_kind(holder)})")
        lines += [
            f"#### {title}",
            "",
            "| role | scope | environment | ABAC condition allows assigning |",
            "|---|---|---|---|",
        ]
        for a in assignments:
            if a.holder != holder:
                continue
            allowed = "; ".join(
                f"{ptype}: " + ", ".join(roles.role_name(i) for i in ids)
                for ptype, ids in (assignable(environment_kind(holder), a.scope).items()
                                   if a.condition else [])
            ) or "-"
            lines.append(f"| {a.role} | {SCOPE_LABELS[a.scope]} | {a.environment or 'shared'} |"
                         f" {allowed} |")
        lines.append("")
    prod_envs = [e for e in envs if environment_kind(e) == "prod"]
    lines += [
        "### Rights in prod",
        "",
        "Every right any bootstrap identity holds on a scope that belongs to a prod environment",
        "(" + ", ".join(f"`{e}`" for e in prod_envs) + "): its resource group, state",
        "container, secrets key or deploy identity. \"none\" means none at all.",
        "",
        "| identity | rights in prod |",
        "|---|---|",
    ]
    for holder in holders:
        label = "preview identity" if holder == "preview" else (
            f"deploy identity of `{holder}` ({environment_kind(holder)})")
        rights = [f"{a.role} on {SCOPE_LABELS[a.scope]} of `{a.environment}`"
                  for a in rights_in_prod(assignments, holder)]
        lines.append(f"| {label} | {'; '.join(rights) or 'none'} |")
    return lines + [""]


def rights_in_prod(assignments: list[BootstrapAssignment],
                   holder: str) -> list[BootstrapAssignment]:
    """The assignments of `holder` on scopes that belong to a prod-kind environment."""
    return [a for a in assignments if a.holder == holder and a.environment is not None
            and environment_kind(a.environment) == "prod"]


if __name__ == "__main__":  # pragma: no cover - the docs page generator
    print(render_markdown(), end="")
