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

KINDS = ("dev", "staging", "prod")

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
    "subscription": "subscription",
    "state_container": "Pulumi state blob container",
    "secrets_key_vault": "Pulumi secrets key vault",
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

#: Role assignments the bootstrap makes (a platform admin, once per project). `kind` says whose:
#: "all" rows apply to every environment's deploy identity (and the preview identity), "prod"
#: rows only to the identity of the prod-kind environment. The Role Based Access Control
#: Administrator row carries an ABAC condition: it may only assign the roles of
#: ENVIRONMENT_GRANTS. "Resource Lock Operator (custom)" is a custom role with only
#: Microsoft.Authorization/locks/*, so the prod deploy identity can keep the CanNotDelete lock
#: and no other identity can lift it.
BOOTSTRAP_GRANTS: tuple[Grant, ...] = (
    Grant("all", "deploy_identity", "Contributor", "subscription",
          "create the environment's resource group and resources"),
    Grant("all", "deploy_identity", "Role Based Access Control Administrator",
          "subscription",
          "create the role assignments of this table; ABAC condition limits the roles"),
    Grant("prod", "deploy_identity", "Resource Lock Operator (custom)", "subscription",
          "create the CanNotDelete lock on the prod resource group (prod identity only)"),
    Grant("all", "deploy_identity", "Storage Blob Data Contributor", "state_container",
          "read and write the Pulumi state"),
    Grant("all", "deploy_identity", "Key Vault Crypto User", "secrets_key_vault",
          "encrypt and decrypt stack secrets"),
    Grant("all", "preview_identity", "Reader", "subscription",
          "`pulumi preview` on pull requests reads live resources; no writes"),
    Grant("all", "preview_identity", "Storage Blob Data Contributor", "state_container",
          "read the Pulumi state and take its lock during a preview"),
    Grant("all", "preview_identity", "Key Vault Crypto User", "secrets_key_vault",
          "decrypt stack secrets during a preview"),
)


def bootstrap_grants_for(principal: str, environment_kind: str | None = None) -> list[Grant]:
    """The bootstrap rows for one identity: `deploy_identity` of an environment of the given
    kind, or `preview_identity` (kind None)."""
    return [
        g for g in BOOTSTRAP_GRANTS
        if g.principal == principal and g.kind in ("all", environment_kind)
    ]


#: The custom role BOOTSTRAP_GRANTS refers to.
LOCK_OPERATOR_ROLE = "Resource Lock Operator (custom)"
LOCK_OPERATOR_ACTIONS = ("Microsoft.Authorization/locks/*",)


def grants_for(kind: str) -> list[Grant]:
    """The environment grants of one kind, in table order."""
    if kind not in KINDS:
        raise ValueError(f"unknown environment kind {kind!r}; expected one of {', '.join(KINDS)}")
    return [g for g in ENVIRONMENT_GRANTS if g.kind == kind]


def assignable_role_ids() -> list[str]:
    """The role GUIDs the deploy identity may assign (its ABAC condition lists exactly these)."""
    return sorted({roles.ROLE_IDS[g.role] for g in ENVIRONMENT_GRANTS})


def assignment_name(scope: str, principal_id: str, role_definition_id: str) -> str:
    """A deterministic role assignment name (a GUID), so a re-run changes nothing."""
    key = f"{scope.lower()}|{principal_id.lower()}|{roles.role_guid(role_definition_id)}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def abac_condition(role_ids: list[str] | None = None) -> str:
    """ABAC condition (version 2.0) for Role Based Access Control Administrator: it may only
    write or delete assignments of the listed roles."""
    ids = ", ".join(role_ids or assignable_role_ids())
    return (
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
        "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
        f"ForAnyOfAnyValues:GuidEquals {{{ids}}})) AND "
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
        "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] "
        f"ForAnyOfAnyValues:GuidEquals {{{ids}}}))"
    )


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
    lines += [
        "## Bootstrap (once per project, by a platform admin)",
        "",
        "Each environment's deploy identity and the read-only preview identity are user-assigned",
        "managed identities with OIDC federated credentials (no secrets). The Role Based Access",
        "Control Administrator assignment carries an ABAC condition that lets it assign only",
        "these roles: "
        + ", ".join(sorted({g.role for g in ENVIRONMENT_GRANTS}))
        + ".",
        "",
    ] + _table(list(BOOTSTRAP_GRANTS), show_kind=True) + [""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the docs page generator
    print(render_markdown(), end="")
