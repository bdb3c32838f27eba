"""tasks/write_stacks.py on its own: the task copier runs after every copy and update."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TASK = REPO_ROOT / "tasks/write_stacks.py"
ANSWERS = {
    "project_slug": "customer-churn",
    "azure_location": "westeurope",
    "cost_center": "CC-0000",
    "environments": ["dev", "preprod", "prod"],
    "data_scientists_group_id": "00000000-0000-0000-0000-000000000000",
    "prod_readers_group_id": "",
    "prod_deployer_object_id": "c0ffee00-1234-4abc-9def-0123456789ab",
    "aks_cluster_id": "",
}
KINDS = "dev=dev,preprod=staging,prod=prod"


def run_task(infra: Path, answers=ANSWERS, kinds=KINDS) -> subprocess.CompletedProcess:
    # -I: isolated, as under copier's Python nothing from this repository is importable.
    return subprocess.run(
        [sys.executable, "-I", str(TASK), "--infra-dir", str(infra),
         "--answers", json.dumps(answers), "--kinds", kinds],
        capture_output=True, text=True, check=False,
    )


def test_writes_every_missing_stack_and_never_overwrites_one(tmp_path):
    infra = tmp_path / ".cloud/infra"
    infra.mkdir(parents=True)
    edited = "config:\n  customer-churn:kind: prod\n  # the infra team's file\n"
    (infra / "Pulumi.prod.yaml").write_text(edited)

    result = run_task(infra)

    assert result.returncode == 0, result.stderr
    assert (infra / "Pulumi.prod.yaml").read_text() == edited
    assert sorted(p.name for p in infra.glob("Pulumi.*.yaml")) == [
        "Pulumi.dev.yaml", "Pulumi.preprod.yaml", "Pulumi.prod.yaml",
    ]
    written = {p.name for p in infra.iterdir()}
    before = {name: (infra / name).read_text() for name in written}
    assert run_task(infra).returncode == 0  # a second run (copier update) changes nothing
    assert {name: (infra / name).read_text() for name in written} == before


def test_stack_values_survive_yaml_quoting(tmp_path):
    """Values a YAML reader could misread (numbers, booleans, colons) stay strings."""
    answers = {**ANSWERS, "cost_center": "1e3", "project_slug": "yes-no"}
    assert run_task(tmp_path, answers).returncode == 0
    config = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())["config"]
    assert config["yes-no:costCenter"] == "1e3"
    assert config["yes-no:projectSlug"] == "yes-no"
    answers = {**ANSWERS, "cost_center": "Finance: ML/2024 #1"}
    assert run_task(tmp_path / "b", answers).returncode == 0
    config = yaml.safe_load((tmp_path / "b/Pulumi.prod.yaml").read_text())["config"]
    assert config["customer-churn:costCenter"] == "Finance: ML/2024 #1"


def test_refuses_an_environment_without_a_known_kind(tmp_path):
    missing = run_task(tmp_path, kinds="dev=dev,prod=prod")
    assert missing.returncode != 0 and "preprod" in missing.stderr
    unknown = run_task(tmp_path, kinds="dev=dev,preprod=qa,prod=prod")
    assert unknown.returncode != 0 and "unknown kind 'qa'" in unknown.stderr
    assert list(tmp_path.glob("Pulumi.*.yaml")) == []


def test_a_prod_kind_environment_other_than_prod_gets_the_placeholder_deployer(tmp_path):
    """`sandbox` is an unknown name, so prod-kind; it is deployed by its own identity, never
    prod's, so its deployer is the placeholder until someone sets it."""
    answers = {**ANSWERS, "environments": ["dev", "sandbox", "prod"],
               "prod_deployer_object_id": "33333333-3333-4333-8333-333333333333"}
    done = run_task(tmp_path, answers=answers, kinds="dev=dev,sandbox=prod,prod=prod")
    assert done.returncode == 0, done.stderr
    slug = ANSWERS["project_slug"]
    sandbox = yaml.safe_load((tmp_path / "Pulumi.sandbox.yaml").read_text())["config"]
    prod = yaml.safe_load((tmp_path / "Pulumi.prod.yaml").read_text())["config"]
    assert sandbox[f"{slug}:kind"] == "prod"
    assert sandbox[f"{slug}:deployerObjectId"] == "00000000-0000-0000-0000-000000000000"
    assert prod[f"{slug}:deployerObjectId"] == "33333333-3333-4333-8333-333333333333"
