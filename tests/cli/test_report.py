"""The renderers' canonical order: the same project previews to the same bytes every run, so a
pull-request comment changes only when the project does."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from cli_helpers import REPO_ROOT

from mlops_blueprint import report
from mlops_blueprint.previews import EnvironmentPlan

GROUP = "11111111-2222-3333-4444-555555555555"


def _plan(**overrides) -> EnvironmentPlan:
    fields = dict(
        project="churn", environment="prod", kind="prod", location="westeurope",
        resources=[
            {"type": "azure-native:storage:StorageAccount", "name": "prod-storage",
             "properties": {"tags": {"b": "2", "a": "1"}, "accountName": "stchurn"},
             "protect": True},
            {"type": "azure-native:keyvault:Vault", "name": "prod-kv",
             "properties": {"vaultName": "kv-churn"}, "protect": True},
            {"type": "azure-native:authorization:RoleAssignment", "name": "prod-ops",
             "properties": {"principalId": GROUP}, "protect": False},
        ],
        role_assignments=[
            {"name": "prod-mi", "principal_id": "b" * 8, "principal_type": "ServicePrincipal",
             "role": "Reader", "role_definition_id": "r", "scope": "/s"},
            {"name": "prod-ops", "principal_id": GROUP, "principal_type": "Group",
             "role": "Contributor", "role_definition_id": "c", "scope": "/s"},
        ],
        violations=[
            {"policy": "z-policy", "resource": "a", "message": "m", "enforcement": "mandatory"},
            {"policy": "a-policy", "resource": "b", "message": "m", "enforcement": "mandatory"},
        ],
        monthly_cost_estimate={"currency": "USD", "total": 60.0, "items": [
            {"resource": "prod-kv", "type": "t", "monthly": 10.0, "note": ""},
            {"resource": "prod-acr", "type": "t", "monthly": 50.0, "note": ""},
        ]},
    )
    return EnvironmentPlan(**(fields | overrides))


def test_any_registration_order_renders_the_same_json_and_markdown():
    base = _plan()
    outputs = set()
    rng = random.Random(7)
    for _ in range(6):
        shuffled = _plan(
            resources=rng.sample(base.resources, len(base.resources)),
            role_assignments=rng.sample(base.role_assignments, len(base.role_assignments)),
            violations=rng.sample(base.violations, len(base.violations)),
        )
        outputs.add((report.to_json([shuffled], single=True), report.to_markdown([shuffled])))
    assert len(outputs) == 1


def test_canonical_order_puts_humans_first_dearest_cost_first_and_sorts_keys():
    plan = report.ordered(_plan())
    assert [a["principal_type"] for a in plan.role_assignments] == ["Group", "ServicePrincipal"]
    assert [r["name"] for r in plan.resources] == ["prod-ops", "prod-kv", "prod-storage"]
    assert [v["policy"] for v in plan.violations] == ["a-policy", "z-policy"]
    assert [i["resource"] for i in plan.monthly_cost_estimate["items"]] == ["prod-acr", "prod-kv"]
    storage = plan.resources[-1]["properties"]
    assert list(storage) == ["accountName", "tags"] and list(storage["tags"]) == ["a", "b"]


@pytest.mark.parametrize("fmt", ["json", "markdown"])
def test_two_runs_under_different_hash_seeds_print_identical_bytes(fresh_project, fmt):
    def run(seed: str) -> bytes:
        env = os.environ | {
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO_ROOT / "generator"), str(REPO_ROOT / "infra")]
            ),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "mlops_blueprint", "plan", str(fresh_project), "-f", fmt],
            capture_output=True, env=env, timeout=180, check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout

    outputs = {run(seed) for seed in ("1", "2", "3")}
    assert len(outputs) == 1 and outputs.pop()


def test_a_changed_whole_number_reads_as_one():
    """Pulumi hands the preview every number as a double; `maxNodeCount: 2.0 -> 4.0` in a
    pull-request comment reads as if the template wrote a fraction."""
    from mlops_blueprint.report import _value

    assert (_value(2.0), _value(4), _value(0.5), _value("2.0"), _value(True)) == (
        "2", "4", "0.5", "2.0", "true")

