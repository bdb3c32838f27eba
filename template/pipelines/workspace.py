"""Connect to the project's Azure ML workspace and check that the training cluster exists.

The workspace comes from three environment variables (CI sets them per environment from the
infra stack's outputs):

    AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME

or, when none is set, from a `config.json` downloaded from the workspace's portal page
(searched in the current folder and its parents). Credentials come from
DefaultAzureCredential: `az login` on a laptop, workload identity (OIDC) in CI.

    python pipelines/workspace.py --dry-run     # which workspace, without Azure
    python pipelines/workspace.py               # connect and check the compute
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Every Azure ML asset of the project lives here.
CLOUD_DIR = Path(__file__).resolve().parents[1] / ".cloud"

#: The training cluster the infra program creates in every workspace.
COMPUTE_CLUSTER = "cpu-cluster"

WORKSPACE_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME")


class WorkspaceNotConfigured(RuntimeError):
    """The workspace cannot be determined from the environment."""


class ComputeMissing(RuntimeError):
    """The workspace has no compute of the expected name."""


@dataclass(frozen=True)
class WorkspaceRef:
    subscription_id: str
    resource_group: str
    workspace_name: str


def workspace_from_env(environ: Mapping[str, str] = os.environ) -> WorkspaceRef | None:
    """The workspace the environment variables name; None when none is set."""
    values = [environ.get(name, "").strip() for name in WORKSPACE_VARIABLES]
    if not any(values):
        return None
    missing = [name for name, value in zip(WORKSPACE_VARIABLES, values, strict=True) if not value]
    if missing:
        raise WorkspaceNotConfigured(f"set {', '.join(missing)} as well (or none of them)")
    return WorkspaceRef(*values)


def get_ml_client(workspace: WorkspaceRef | None = None, config_path: Path | None = None):
    """An MLClient for the workspace (from the environment when not given)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    workspace = workspace or workspace_from_env()
    if workspace is None:
        return MLClient.from_config(credential=credential, path=config_path)
    return MLClient(
        credential,
        subscription_id=workspace.subscription_id,
        resource_group_name=workspace.resource_group,
        workspace_name=workspace.workspace_name,
    )


def check_compute(ml_client, name: str = COMPUTE_CLUSTER):
    """The compute named `name`; ComputeMissing (with the fix) when the workspace lacks it."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ml_client.compute.get(name)
    except ResourceNotFoundError as error:
        raise ComputeMissing(
            f"compute '{name}' not found in workspace {ml_client.workspace_name}: run the infra "
            f"stack (pulumi up) or `az ml compute create -f .cloud/compute/{name}.yml`"
        ) from error


def as_yaml(entity) -> str:
    """An azure-ai-ml entity (job, endpoint, schedule, ...) as the YAML Azure ML would get."""
    import yaml

    # The round trip through JSON turns the SDK's OrderedDicts into plain dicts.
    plain = json.loads(json.dumps(entity._to_dict(), default=str))
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Connect to the Azure ML workspace and check the training compute.",
        epilog=f"Workspace from {', '.join(WORKSPACE_VARIABLES)} or config.json.",
    )
    parser.add_argument("--compute", default=COMPUTE_CLUSTER, help="compute to check")
    parser.add_argument("--config", type=Path, help="path to a workspace config.json")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the workspace to use; do not call Azure"
    )
    args = parser.parse_args(argv)
    try:
        workspace = workspace_from_env()
        if args.dry_run:
            shown = workspace or f"config.json ({args.config or 'searched from here upwards'})"
            print(f"workspace: {shown}\ncompute: {args.compute}")
            return 0
        ml_client = get_ml_client(workspace, args.config)
        compute = check_compute(ml_client, args.compute)
    except (WorkspaceNotConfigured, ComputeMissing) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"compute {compute.name} ({compute.type}) is ready in {ml_client.workspace_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
