"""Where the CI/CD stages act: the workspace, the project registry, the environments.

The target workspace comes from three environment variables (CI sets them per environment):

    AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE

and the project's Azure ML registry from AZUREML_REGISTRY. On a laptop, with none of the three
set, a `config.json` downloaded from the workspace's portal page is used instead. Credentials
come from DefaultAzureCredential: `az login` on a laptop, workload identity (OIDC) in CI.

Every stage fails with a StageError: one line naming what to fix (cicd.py prints it, exit 1).

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

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Every Azure ML asset of the project lives here.
CLOUD_DIR = PROJECT_ROOT / ".cloud"
#: One stack file per environment: the list of environments the project has.
STACKS_DIR = CLOUD_DIR / "infra"

#: The training cluster the infra program creates in every workspace.
COMPUTE_CLUSTER = "cpu-cluster"

WORKSPACE_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE")
REGISTRY_VARIABLE = "AZUREML_REGISTRY"


class StageError(RuntimeError):
    """A CI/CD stage cannot go on; the message names what to fix."""


def one_line(error: BaseException) -> str:
    """The error's first line (its type's name when it says nothing): what a stage prints."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


class WorkspaceNotConfigured(StageError):
    """The workspace or registry cannot be determined from the environment."""


class ComputeMissing(StageError):
    """The workspace has no compute of the expected name."""


class UnknownEnvironment(StageError):
    """The environment is not one of the project's."""


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


def require_workspace(environ: Mapping[str, str] = os.environ) -> WorkspaceRef:
    """The workspace from the environment; CI stages never fall back to a config.json."""
    workspace = workspace_from_env(environ)
    if workspace is None:
        raise WorkspaceNotConfigured(
            f"set {', '.join(WORKSPACE_VARIABLES)} to the target workspace"
        )
    return workspace


def registry_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The project's Azure ML registry name (AZUREML_REGISTRY)."""
    name = environ.get(REGISTRY_VARIABLE, "").strip()
    if not name:
        raise WorkspaceNotConfigured(
            f"set {REGISTRY_VARIABLE} to the project's Azure ML registry name "
            "(the bootstrap's registry output)"
        )
    return name


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


def get_registry_client(registry_name: str):
    """An MLClient for the project's Azure ML registry."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), registry_name=registry_name)


def known_environments(stacks_dir: Path = STACKS_DIR) -> list[str]:
    """The project's environments: one `Pulumi.<env>.yaml` stack file each."""
    return sorted(path.name.split(".")[1] for path in stacks_dir.glob("Pulumi.*.yaml"))


def check_environment(environment: str, stacks_dir: Path = STACKS_DIR) -> str:
    """`environment` when the project has it; UnknownEnvironment (naming the fix) otherwise."""
    known = known_environments(stacks_dir)
    if environment not in known:
        raise UnknownEnvironment(
            f"unknown environment {environment!r}: this project has {', '.join(known)} "
            f"(.cloud/infra/Pulumi.<env>.yaml); add one with `blueprint request-env`"
        )
    return environment


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


def write_outputs(outputs: Mapping[str, object], environ: Mapping[str, str] = os.environ) -> None:
    """A stage's outputs for the next stages: `key=value` lines in $GITHUB_OUTPUT on GitHub,
    `##vso[task.setvariable ...]` on Azure DevOps, and `key=value` on stdout always."""
    lines = [
        f"{key}={str(value).lower() if isinstance(value, bool) else value}"
        for key, value in outputs.items()
    ]
    for line in lines:
        print(line)
    if environ.get("GITHUB_OUTPUT"):
        with open(environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as handle:
            handle.writelines(f"{line}\n" for line in lines)
    if environ.get("TF_BUILD"):
        for line in lines:
            key, value = line.split("=", 1)
            print(f"##vso[task.setvariable variable={key};isOutput=true]{value}")


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
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"compute {compute.name} ({compute.type}) is ready in {ml_client.workspace_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
