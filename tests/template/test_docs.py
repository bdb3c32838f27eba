"""The generated docs agree with the facts they describe: the access table with the RBAC
table in blueprint_infra.rbac, the Mermaid diagram with the environments answer."""

from __future__ import annotations

import re

import pytest
from template_cases import COMBINATIONS

from blueprint_infra import naming, rbac

# Columns of docs/environments.md's "Who may do what" table and the rbac principals they show.
COLUMNS = {"data scientists": "data_scientists", "readers group": "readers",
           "deploy identity": "deploy_identity"}


def markdown_table(text: str, header_first_cell: str) -> list[dict[str, str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header_first_cell} |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def expected_cell(kind: str, principal: str) -> set[str]:
    return {
        f"{g.role} on {rbac.SCOPE_LABELS[g.scope]}"
        for g in rbac.grants_for(kind)
        if g.principal == principal
    }


@pytest.mark.parametrize("case", ["github-3env-aks", "ado-2env-aks"])
def test_access_table_matches_the_rbac_table(rendered_project, case):
    answers = COMBINATIONS[case]
    text = (rendered_project(**answers) / "docs/environments.md").read_text()
    rows = markdown_table(text, "environment")
    assert sorted(row["environment"] for row in rows) == sorted(answers["environments"])
    for row in rows:
        kind = naming.environment_kind(row["environment"])
        assert row["kind"] == kind
        for column, principal in COLUMNS.items():
            shown = set() if row[column] == "none" else set(row[column].split("; "))
            assert shown == expected_cell(kind, principal), (row["environment"], column)


def test_no_human_write_role_in_prod_per_the_table(rendered_project):
    """What the table promises for prod holds in rbac: humans hold read-only roles only."""
    rows = markdown_table(
        (rendered_project(**COMBINATIONS["github-2env"]) / "docs/environments.md").read_text(),
        "environment",
    )
    (prod,) = [row for row in rows if row["environment"] == "prod"]
    assert prod["data scientists"] == "none"
    human = [g for g in rbac.grants_for("prod") if g.principal in ("data_scientists", "readers")]
    assert human and all(g.read_only for g in human)


EDGE = re.compile(r"^\s*(\w+)\s*(?:--|-\.)\s*\"[^\"]*\"\s*(?:-->|\.->)\s*(\w+)\s*$")
NODE = re.compile(r"^\s*(\w+)[\[(]")


def mermaid(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    block = text.split("```mermaid", 1)[1].split("```", 1)[0]
    nodes, edges = set(), set()
    for line in block.splitlines():
        if match := EDGE.match(line):
            edges.add(match.groups())
        elif (match := NODE.match(line)) and not line.strip().startswith("%%"):
            nodes.add(match.group(1))
    return nodes, edges


@pytest.mark.parametrize("case", ["github-2env", "github-3env-aks"])
def test_mermaid_diagram_follows_the_environments(rendered_project, case):
    environments = COMBINATIONS[case]["environments"]
    text = (rendered_project(**COMBINATIONS[case]) / "docs/environments.md").read_text()
    nodes, edges = mermaid(text)
    assert nodes == {f"env_{e}" for e in environments} | {"registry"}
    staging = [e for e in environments if naming.environment_kind(e) == "staging"]
    # dev publishes to the registry; every other environment deploys from it
    assert ("env_dev", "registry") in edges
    for env in [*staging, "prod"]:
        assert ("registry", f"env_{env}") in edges
    # promotion runs dev -> staging environments -> prod
    chain = [*staging, "prod"]
    assert {e for e in edges if e[0] != "registry" and e[1] != "registry"} == {
        (f"env_{a}", f"env_{b}") for a, b in zip(chain, chain[1:], strict=False)
    }


def test_docs_index_links_resolve(rendered_project):
    project = rendered_project(**COMBINATIONS["github-2env"])
    docs = project / "docs/README.md"
    links = re.findall(r"\]\(([^)#]+)\)", docs.read_text())
    assert links
    for link in links:
        assert (docs.parent / link).resolve().is_file(), link
