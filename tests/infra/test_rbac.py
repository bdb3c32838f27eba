"""The RBAC table: the rules a reviewer cares about, and docs/rbac.md rendered from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from blueprint_infra import rbac, roles

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


def test_abac_condition_lists_exactly_the_assignable_roles():
    condition = rbac.abac_condition()
    for guid in rbac.assignable_role_ids():
        assert condition.count(guid) == 2
    assert roles.ROLE_IDS["Owner"] not in condition
    assert roles.ROLE_IDS["User Access Administrator"] not in condition


def test_assignment_names_are_stable_guids():
    a = rbac.assignment_name("/subscriptions/x/rg", "P1", roles.ROLE_IDS["Reader"])
    reader_id = "/x/roleDefinitions/" + roles.ROLE_IDS["Reader"]
    b = rbac.assignment_name("/subscriptions/X/RG", "p1", reader_id)
    assert a == b
    assert a != rbac.assignment_name("/subscriptions/x/rg", "p2", roles.ROLE_IDS["Reader"])
