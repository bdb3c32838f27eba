"""Promotion: publish the winner of a training job from dev to the project's Azure ML registry.

    python pipelines/cicd.py promote --job-name JOB

The model version the job registered in dev (tag `pipeline_job`), the scoring environment it
is served with (.cloud/environments/score.yml) and its reference data (tag `reference_data`)
are shared to the registry (AZUREML_REGISTRY) under the same names and versions; anything
already there is left alone, so a re-run is harmless. Staging and prod deploy the printed
`model_uri` and never see a dev workspace asset. All calls are control-plane (ARM).

Outputs: promoted, model_uri, model_name, model_version.
"""

from __future__ import annotations

import registry
import training_pipeline
import workspace
from workspace import StageError


class NothingToPromote(StageError):
    """The job registered no model."""


def in_registry(operations, name: str, version: str) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        operations.get(name=name, version=version)
        return True
    except ResourceNotFoundError:
        return False


def share(
    workspace_operations, registry_operations, ref: registry.AssetRef, registry_name: str, kind: str
) -> str:
    """Share one asset from the workspace to the registry, unless it is already there."""
    target = registry.AssetRef(ref.name, ref.version, registry_name).uri(kind)
    if in_registry(registry_operations, ref.name, ref.version):
        print(f"{target}: already in the registry")
        return target
    workspace_operations.share(
        name=ref.name,
        version=ref.version,
        share_with_name=ref.name,
        share_with_version=ref.version,
        registry_name=registry_name,
    )
    print(f"{target}: shared from the dev workspace")
    return target


def promote(ml_client, registry_client, registry_name: str, job_name: str) -> dict:
    model_name = training_pipeline.default_model_name()
    model = registry.model_of_job(ml_client, model_name, job_name)
    if model is None:
        raise NothingToPromote(
            f"training job {job_name} registered no {model_name} in dev: the candidate did not "
            "beat the champion (train says promoted=false) or the job name is wrong"
        )
    ref = registry.AssetRef(model.name, str(model.version))
    score = registry.scoring_environment()
    share(
        ml_client.environments, registry_client.environments, score, registry_name, "environments"
    )
    reference = (model.tags or {}).get(registry.REFERENCE_DATA_TAG, "")
    if ":" in reference:
        name, version = reference.rsplit(":", 1)
        share(
            ml_client.data,
            registry_client.data,
            registry.AssetRef(name, version),
            registry_name,
            "data",
        )
    model_uri = share(ml_client.models, registry_client.models, ref, registry_name, "models")
    return {
        "promoted": True,
        "model_uri": model_uri,
        "model_name": ref.name,
        "model_version": ref.version,
    }


def add_arguments(parser) -> None:
    parser.add_argument("--job-name", required=True, help="the train stage's job_name output")


def run(args, environ) -> dict:
    ml_client = workspace.get_ml_client(workspace.require_workspace(environ))
    registry_name = workspace.registry_from_env(environ)
    return promote(
        ml_client, workspace.get_registry_client(registry_name), registry_name, args.job_name
    )
