"""End to end: render a project with copier, then run its own `.cloud/infra` stacks (and the
bootstrap) under the mock engine with `preview_stack`, the way `pulumi up` would run them."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from infra_fixtures import AKS_ID, DEPLOYER, PE_SUBNET, READERS, SCIENTISTS, STRANGER

from blueprint_infra import roles
from blueprint_infra.preview import preview_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_INFRA = REPO_ROOT / "template" / ".cloud" / "infra"

pytestmark = pytest.mark.skipif(
    not (TEMPLATE_INFRA / "__main__.py").exists(),
    reason="the template has no .cloud/infra/__main__.py yet (template issue)",
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    import copier

    dst = tmp_path_factory.mktemp("rendered") / "churn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(REPO_ROOT), str(dst),
            data={
                "project_name": "Customer Churn",
                "environments": ["dev", "preprod", "prod"],
                "data_scientists_group_id": SCIENTISTS,
                "prod_readers_group_id": READERS,
                "prod_deployer_object_id": DEPLOYER,
                "aks_cluster_id": AKS_ID,
            },
            defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True,
        )
    return dst / ".cloud" / "infra"


def test_every_stack_runs_and_prod_refuses_a_stranger(rendered):
    stacks = sorted(p.name.split(".")[1] for p in rendered.glob("Pulumi.*.yaml"))
    assert stacks == ["dev", "preprod", "prod"]
    # The rendered prod stack leaves the private-endpoint subnet empty: a real update names the
    # key; the infra engineer then sets it (guardrails.private_inbound_check).
    unset = preview_stack(rendered, "prod", deploying_object_id=DEPLOYER, dry_run=False)
    assert unset.error and "privateEndpointSubnetId" in unset.error
    prod_file = rendered / "Pulumi.prod.yaml"
    prod_config = yaml.safe_load(prod_file.read_text())
    key = next(k for k in prod_config["config"] if k.endswith(":privateEndpointSubnetId"))
    assert prod_config["config"][key] == ""
    prod_config["config"][key] = PE_SUBNET
    prod_file.write_text(yaml.safe_dump(prod_config))
    for stack in stacks:
        result = preview_stack(rendered, stack, deploying_object_id=DEPLOYER, dry_run=False)
        assert result.error is None, (stack, result.error)
        assert result.violations == [], (stack, result.violations)
        assert result.of_type("azure-native:machinelearningservices:Workspace")
        kinds = {c.properties["properties"]["computeType"]
                 for c in result.of_type("azure-native:machinelearningservices:Compute")}
        assert kinds == {"AmlCompute", "Kubernetes"}
        if stack == "prod":
            for a in result.role_assignments:
                if a["principal_type"] in roles.HUMAN_PRINCIPAL_TYPES:
                    assert roles.role_guid(a["role_definition_id"]) in roles.READ_ONLY_ROLES
    refused = preview_stack(rendered, "prod", deploying_object_id=STRANGER, dry_run=False)
    assert refused.error and STRANGER in refused.error and DEPLOYER in refused.error
    assert not [r for r in refused.resources if r.type.startswith("azure-native:")]


def test_bootstrap_runs(rendered):
    bootstrap = rendered / "bootstrap"
    project = yaml.safe_load((bootstrap / "Pulumi.yaml").read_text())["name"]
    assert project == f"{yaml.safe_load((rendered / 'Pulumi.yaml').read_text())['name']}-bootstrap"
    result = preview_stack(bootstrap, "platform", dry_run=False)
    assert result.error is None, result.error
    assert set(result.outputs["deployIdentities"]) == {"dev", "preprod", "prod"}
    assert result.of_type("azure-native:kubernetesconfiguration:Extension")


def test_defaults_project_previews_everywhere_but_refuses_a_real_prod_update(tmp_path):
    """`--defaults` leaves placeholder ids: previews work, a real prod update is refused."""
    import copier

    dst = tmp_path / "defaults"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(REPO_ROOT), str(dst),
            data={"project_name": "Fraud Score", "ci_provider": "azure-devops"},
            defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True,
        )
    infra = dst / ".cloud" / "infra"
    dev = preview_stack(infra, "dev", deploying_object_id=STRANGER, dry_run=False)
    assert dev.error is None and dev.of_type("azure-native:machinelearningservices:Workspace")
    assert any("dataScientistsGroupId" in w for w in dev.warnings)
    prod_preview = preview_stack(infra, "prod", dry_run=True)
    assert prod_preview.error is None
    assert "placeholder" in prod_preview.outputs["deployerCheck"]
    prod_real = preview_stack(infra, "prod", dry_run=False)
    assert prod_real.error and "placeholder" in prod_real.error
    assert not [r for r in prod_real.resources if r.type.startswith("azure-native:")]
    bootstrap = preview_stack(infra / "bootstrap", "platform", dry_run=False)
    assert bootstrap.error and "adoOrganizationId" in bootstrap.error
