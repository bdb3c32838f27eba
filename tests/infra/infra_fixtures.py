"""Constants and builders for throwaway `.cloud/infra` projects (see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

SLUG = "churn-model"
SUBSCRIPTION = "5f2c7b1e-0000-4000-8000-000000000002"
SCIENTISTS = "11111111-1111-4111-8111-111111111111"
READERS = "22222222-2222-4222-8222-222222222222"
DEPLOYER = "33333333-3333-4333-8333-333333333333"
STRANGER = "44444444-4444-4444-8444-444444444444"
AKS_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-shared-aks/providers/"
    "Microsoft.ContainerService/managedClusters/aks-shared"
)
#: the platform's private-endpoint subnet a prod stack names (guardrails.private_inbound_check)
PE_SUBNET = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-hub-network/providers/"
    "Microsoft.Network/virtualNetworks/vnet-hub/subnets/snet-private-endpoints"
)
ENV_MAIN = "from blueprint_infra.program import run_environment\n\nrun_environment()\n"
BOOTSTRAP_MAIN = "from blueprint_infra.bootstrap import run_bootstrap\n\nrun_bootstrap()\n"


def stack_config(env: str, stack_kind: str, *, slug: str = SLUG, aks: bool = False,
                 readers: bool = True, deployer: str | None = DEPLOYER,
                 **overrides: object) -> dict:
    config: dict[str, object] = {
        "azure-native:location": "westeurope",
        f"{slug}:projectSlug": slug,
        f"{slug}:environment": env,
        f"{slug}:kind": stack_kind,
        f"{slug}:costCenter": "CC-1234",
        f"{slug}:dataScientistsGroupId": SCIENTISTS,
        f"{slug}:readersGroupId": READERS if readers else "",
        f"{slug}:aksClusterId": AKS_ID if aks else "",
    }
    if deployer is not None:
        config[f"{slug}:deployerObjectId"] = deployer
    if stack_kind == "prod":
        config[f"{slug}:privateEndpointSubnetId"] = PE_SUBNET
    for key, value in overrides.items():
        full = key if ":" in key else f"{slug}:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    return config


def write_project(root: Path, stacks: dict[str, dict], *, slug: str = SLUG,
                  bootstrap: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    name = f"{slug}-bootstrap" if bootstrap else slug
    (root / "Pulumi.yaml").write_text(yaml.safe_dump({"name": name, "runtime": "python"}))
    (root / "__main__.py").write_text(BOOTSTRAP_MAIN if bootstrap else ENV_MAIN)
    for stack, config in stacks.items():
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return root
