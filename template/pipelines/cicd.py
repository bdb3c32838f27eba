"""The model's CI/CD/CT entry point: one subcommand per stage, called by the CI workflows.

    python pipelines/cicd.py train [--wait]                       # dev: train, gate, register
    python pipelines/cicd.py promote --job-name JOB               # dev -> the project registry
    python pipelines/cicd.py deploy --environment ENV --model-uri URI [--kubernetes]
    python pipelines/cicd.py deploy-batch --environment ENV --model-uri URI
    python pipelines/cicd.py monitor --environment ENV            # schedules and drift monitor

The workspace comes from AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZUREML_WORKSPACE, the
registry from AZUREML_REGISTRY; credentials from DefaultAzureCredential (OIDC in CI). A stage's
outputs go to $GITHUB_OUTPUT (GitHub) or `##vso[task.setvariable]` (Azure DevOps). Any failure
prints one line naming what to fix and exits 1. docs/cicd.md describes every stage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

import stage_deploy
import stage_deploy_batch
import stage_monitor
import stage_promote
import stage_train
from workspace import StageError, one_line, write_outputs

STAGES = {
    "train": stage_train,
    "promote": stage_promote,
    "deploy": stage_deploy,
    "deploy-batch": stage_deploy_batch,
    "monitor": stage_monitor,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cicd.py", description="Run one stage of the model's CI/CD/CT."
    )
    commands = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, module in STAGES.items():
        summary = module.__doc__.splitlines()[0]
        stage = commands.add_parser(name, help=summary, description=summary)
        module.add_arguments(stage)
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = build_parser().parse_args(argv)
    try:
        outputs = STAGES[args.stage].run(args, environ)
    except StageError as error:
        print(f"error: {args.stage}: {one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - an Azure error is one line, not a traceback
        from azure.ai.ml.exceptions import MlException
        from azure.core.exceptions import AzureError, ClientAuthenticationError

        if isinstance(error, ClientAuthenticationError):
            print(
                f"error: {args.stage}: not signed in to Azure ({one_line(error)}); CI signs "
                "in with OIDC, a laptop with `az login`",
                file=sys.stderr,
            )
            return 1
        if isinstance(error, (AzureError, MlException)):
            print(f"error: {args.stage}: Azure refused: {one_line(error)}", file=sys.stderr)
            return 1
        raise
    write_outputs(outputs, environ)
    return 0


if __name__ == "__main__":
    sys.exit(main())
