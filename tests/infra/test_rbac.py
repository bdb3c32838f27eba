"""The RBAC table: the rules a reviewer cares about, and docs/rbac.md rendered from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blueprint_infra import rbac, roles
from blueprint_infra.naming import environment_kind

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rbac.md"


def test_docs_page_is_rendered_from_the_table():
    assert DOCS.read_text() == rbac.render_markdown(), (
        "docs/rbac.md is stale: run `python -m blueprint_infra.rbac > docs/rbac.md`"
    )


def test_prod_gives_no_human_principal_a_write_role():
    human = [g for g in rbac.grants_for("prod") if g.principal_type in roles.HUMAN_PRINCIPAL_TYPES]
    assert human, "the readers group should have read-only rows in prod"
    assert all(roles.ROLE_IDS[g.role] in roles.READ_ONLY_ROLES for g in human)
    assert not [g for g in rbac.grants_for("prod") if g.principal == "data_scientists"]


def test_dev_data_scientists_work_in_the_workspace():
    dev = {(g.role, g.scope) for g in rbac.grants_for("dev") if g.principal == "data_scientists"}
    assert ("AzureML Data Scientist", "workspace") in dev
    assert ("AzureML Compute Operator", "workspace") in dev
    assert ("Storage Blob Data Contributor", "storage_account") in dev
    assert ("Key Vault Secrets User", "key_vault") in dev


def test_staging_humans_only_read():
    for g in rbac.grants_for("staging"):
        if g.principal_type in roles.HUMAN_PRINCIPAL_TYPES:
            assert g.read_only, g


@pytest.mark.parametrize("kind", ["staging", "prod"])
def test_only_dev_publishes_to_the_registry(kind):
    on_registry = {g.role for g in rbac.grants_for(kind) if g.scope == "ml_registry"}
    assert on_registry == {"Reader"}
    dev = {g.role for g in rbac.grants_for("dev") if g.scope == "ml_registry"}
    assert dev == {"AzureML Registry User"}


def test_every_role_is_known_and_every_kind_is_covered():
    for g in rbac.ENVIRONMENT_GRANTS:
        assert g.role in roles.ROLE_IDS, g
        assert g.scope in rbac.SCOPE_LABELS and g.principal in rbac.PRINCIPAL_TYPES
    with pytest.raises(ValueError, match="unknown environment kind"):
        rbac.grants_for("qa")


PAIR = re.compile(
    r"\(@(Request|Resource)\[Microsoft\.Authorization/roleAssignments:RoleDefinitionId\] "
    r"ForAnyOfAnyValues:GuidEquals \{([0-9a-f, -]+)\} AND "
    r"@(?:Request|Resource)\[Microsoft\.Authorization/roleAssignments:PrincipalType\] "
    r"ForAnyOfAnyValues:StringEqualsIgnoreCase \{'(\w+)'\}\)"
)
WRITE = "(!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'}))"
DELETE = "(!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'}))"
NEVER_ASSIGNABLE = ("Owner", "User Access Administrator", "Role Based Access Control Administrator",
                    "Contributor", "Key Vault Crypto User", "Storage Blob Data Owner")


def parse_condition(condition: str) -> dict[str, dict[str, set[str]]]:
    """{'Request' | 'Resource': {principal type: role GUIDs}} of an RBAC admin condition."""
    found: dict[str, dict[str, set[str]]] = {"Request": {}, "Resource": {}}
    for source, ids, ptype in PAIR.findall(condition):
        found[source].setdefault(ptype, set()).update(i.strip() for i in ids.split(","))
    return found


def balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("kind", rbac.KINDS)
@pytest.mark.parametrize("scope", ["resource_group", "ml_registry", "aks_cluster"])
def test_rbac_admin_condition_allows_exactly_the_tables_roles_and_principal_types(kind, scope):
    condition = rbac.rbac_admin_condition(kind, scope)
    assert len(condition) <= rbac.CONDITION_MAX_LENGTH and balanced(condition)
    assert condition.startswith(f"({WRITE} OR (") and f") AND ({DELETE} OR (" in condition
    parsed = parse_condition(condition)
    scopes = rbac.IN_RESOURCE_GROUP if scope == "resource_group" else (scope,)
    expected: dict[str, set[str]] = {}
    for g in rbac.grants_for(kind):
        if g.scope in scopes:
            expected.setdefault(g.principal_type, set()).add(roles.ROLE_IDS[g.role])
    # write (request) and delete (existing assignment) are limited the same way
    assert parsed["Request"] == parsed["Resource"] == expected
    allowed = set().union(*expected.values())
    for role in NEVER_ASSIGNABLE:
        assert roles.ROLE_IDS[role] not in allowed, role
    if kind == "prod":  # humans get read-only roles at most; writes go to service principals
        for ptype, ids in expected.items():
            if ptype != "ServicePrincipal":
                assert ids <= roles.READ_ONLY_ROLES, (ptype, ids)


def test_a_prod_row_giving_a_group_a_write_role_cannot_become_a_condition(monkeypatch):
    bad = rbac.Grant("prod", "readers", "Storage Blob Data Contributor", "storage_account", "x")
    monkeypatch.setattr(rbac, "ENVIRONMENT_GRANTS", (*rbac.ENVIRONMENT_GRANTS, bad))
    with pytest.raises(ValueError, match="write role"):
        rbac.rbac_admin_condition("prod", "resource_group")


LAYOUTS = [
    (["dev", "prod"], False),
    (["dev", "prod"], True),
    (["dev", "preprod", "prod"], True),
    (["dev", "test", "uat", "prod"], False),
]


@pytest.mark.parametrize(("environments", "aks"), LAYOUTS)
def test_bootstrap_grants_nothing_at_subscription_scope_and_nothing_of_prod_to_others(
        environments, aks):
    assignments = rbac.bootstrap_assignments(environments, aks=aks)
    assert {a.scope for a in assignments} <= set(rbac.SCOPE_LABELS) - {"subscription"}
    for a in assignments:
        if a.principal == "deploy_identity" and a.environment is not None:
            assert a.environment == a.holder, a  # per-environment scopes: its own only
        if a.role == rbac.RBAC_ADMINISTRATOR:
            assert a.condition, a
    for holder in [*environments, "preview"]:
        in_prod = rbac.rights_in_prod(assignments, holder)
        if holder != "preview" and environment_kind(holder) == "prod":
            assert {(a.role, a.scope) for a in in_prod} >= {
                ("Contributor", "resource_group"), ("Storage Blob Data Contributor",
                                                    "state_container"),
                ("Key Vault Crypto User", "secrets_key")}
        else:
            assert in_prod == [], holder
    preview = [a for a in assignments if a.holder == "preview"]
    assert all(a.role in ("Reader", "Storage Blob Data Reader", "Key Vault Crypto User")
               for a in preview)
    assert {a.environment for a in preview} == {
        e for e in environments if environment_kind(e) != "prod"}


def test_docs_show_that_no_dev_or_staging_identity_holds_anything_in_prod():
    text = DOCS.read_text()
    section = text.split("### Rights in prod", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith(("deploy identity", "preview identity")):
            rows[cells[0]] = cells[1]
    assert set(rows) == {
        "deploy identity of `dev` (dev)", "deploy identity of `preprod` (staging)",
        "deploy identity of `prod` (prod)", "preview identity",
    }
    for holder, rights in rows.items():
        assert (rights != "none") == holder.startswith("deploy identity of `prod`"), holder


def test_assignment_names_are_stable_guids():
    a = rbac.assignment_name("/subscriptions/x/rg", "P1", roles.ROLE_IDS["Reader"])
    reader_id = "/x/roleDefinitions/" + roles.ROLE_IDS["Reader"]
    b = rbac.assignment_name("/subscriptions/X/RG", "p1", reader_id)
    assert a == b
    assert a != rbac.assignment_name("/subscriptions/x/rg", "p2", roles.ROLE_IDS["Reader"])
