"""CT: train in the dev workspace, gate against the champion, register only a winner.

    python pipelines/cicd.py train [--wait]

1. The champion is the project registry's latest version of the model (AZUREML_REGISTRY);
   none on the first run.
2. The training pipeline (training_pipeline.py) is submitted to the dev workspace with the
   champion, the git commit and a new reference data version; the step environments are
   created or updated first.
3. With --wait its status is streamed until it ends; a failed step fails this stage.
4. The model version the job registered (tag `pipeline_job`) is looked up: `promoted=true`
   and its `model_uri`, or `promoted=false` when the candidate did not beat the champion.

Outputs: job_name, promoted, model_name, model_version, model_uri, reference_data.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping

import registry
import training_pipeline
import workspace
from workspace import StageError

FINISHED_OK = "Completed"
#: Where CI providers put the commit being built.
COMMIT_VARIABLES = ("GITHUB_SHA", "BUILD_SOURCEVERSION")


class TrainingFailed(StageError):
    """The training pipeline ended in another state than Completed."""


def git_commit(environ: Mapping[str, str] = os.environ) -> str:
    """The commit being trained: from CI, else from git; `unknown` outside a repository."""
    for name in COMMIT_VARIABLES:
        if environ.get(name):
            return environ[name]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def reference_version(clock=time.gmtime) -> str:
    """A new, sortable version for the reference data this run registers."""
    return time.strftime("%Y%m%d%H%M%S", clock())


def build_job(registry_client, registry_name: str, environ: Mapping[str, str], **parameters):
    """The pipeline job with the champion and the lineage filled in."""
    model_name = training_pipeline.default_model_name()
    champion = registry.champion(registry_client, registry_name, model_name)
    print(f"champion: {champion.uri() if champion else 'none yet (first model)'}", flush=True)
    job = training_pipeline.build_pipeline(
        champion_model=champion.uri() if champion else None,
        git_commit=git_commit(environ),
        reference_version=reference_version(),
        **parameters,
    )
    return job, model_name


def train(ml_client, registry_client, registry_name: str, environ, *, wait: bool, **parameters):
    job, model_name = build_job(registry_client, registry_name, environ, **parameters)
    submitted = training_pipeline.submit(ml_client, job, wait=False)
    outputs = {"job_name": submitted.name}
    if not wait:
        return outputs
    try:
        ml_client.jobs.stream(submitted.name)
    except Exception as error:  # noqa: BLE001 - azure-ai-ml raises JobException and others
        print(f"streaming stopped: {workspace.one_line(error)}")
    status = ml_client.jobs.get(submitted.name).status
    if status != FINISHED_OK:
        raise TrainingFailed(
            f"training pipeline {submitted.name} ended {status}: open {submitted.studio_url} "
            "and fix the failed step"
        )
    model = registry.model_of_job(ml_client, model_name, submitted.name)
    outputs["promoted"] = model is not None
    outputs["model_name"] = model_name
    if model is None:
        print(f"{submitted.name}: the candidate did not beat the champion; nothing to promote")
        return outputs
    ref = registry.AssetRef(model.name, str(model.version))
    outputs.update(
        model_version=ref.version,
        model_uri=ref.uri(),
        reference_data=(model.tags or {}).get(registry.REFERENCE_DATA_TAG, ""),
    )
    return outputs


def add_arguments(parser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
    parser.add_argument("--test-size", type=float, default=0.2, help="share of rows held out")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--gate-metric", default="roc_auc", choices=training_pipeline.GATE_METRICS)
    parser.add_argument("--training-data", help="data asset to train on, as name:version")


def run(args, environ) -> dict:
    ml_client = workspace.get_ml_client(workspace.require_workspace(environ))
    registry_name = workspace.registry_from_env(environ)
    registry_client = workspace.get_registry_client(registry_name)
    return train(
        ml_client,
        registry_client,
        registry_name,
        environ,
        wait=args.wait,
        test_size=args.test_size,
        c=args.c,
        gate_metric=args.gate_metric,
        training_data=args.training_data,
    )
