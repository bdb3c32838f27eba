"""CD, batch: roll a promoted model out to an environment's batch endpoint, then schedule it.

    python pipelines/cicd.py deploy-batch --environment ENV --model-uri URI

The same rollout as online, with a batch endpoint's notion of traffic (its default deployment):
1. the new deployment is created beside the default one (blue <-> green); the default stays;
2. a deployment that does not provision is deleted and the run stops;
3. smoke job: the new deployment, invoked by name, scores the model's reference data
   (a data asset, nothing uploaded) and must complete;
4. only then does it become the default, and the old deployment is deleted;
5. the scheduled batch job (.cloud/schedules/batch-scoring.yml) is pointed at the model.
A failed smoke job deletes the new deployment and leaves the default untouched.

Outputs: batch_endpoint, batch_deployment, schedule.
"""

from __future__ import annotations

import endpoints
import registry
import workspace
from stage_deploy import DeploymentUnhealthy, existing_endpoint, provision
from stage_monitor import SCHEDULES_DIR, load_schedule
from workspace import StageError


class SmokeJobFailed(StageError):
    """The smoke batch job of the new deployment did not complete."""


def default_deployment(endpoint) -> str | None:
    """The batch endpoint's default deployment (its "traffic"); a dict or a REST object."""
    defaults = getattr(endpoint, "defaults", None)
    if isinstance(defaults, dict):
        return defaults.get("deployment_name") or None
    return getattr(defaults, "deployment_name", None) or None


def set_default(ml_client, name: str, deployment: str) -> None:
    endpoint = ml_client.batch_endpoints.get(name=name)
    endpoint.defaults = {"deployment_name": deployment}
    ml_client.batch_endpoints.begin_create_or_update(endpoint).result()


def smoke_job(ml_client, endpoint: str, deployment: str, data_uri: str) -> None:
    from azure.ai.ml import Input

    job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint,
        deployment_name=deployment,
        inputs={"data": Input(type="uri_folder", path=data_uri)},
    )
    try:
        ml_client.jobs.stream(job.name)
    except Exception as error:  # noqa: BLE001 - the status below decides
        print(f"streaming stopped: {error}")
    status = ml_client.jobs.get(job.name).status
    if status != "Completed":
        raise SmokeJobFailed(f"smoke job {job.name} of {deployment} ended {status}")


def rollout(ml_client, endpoint, deployment, smoke_data: str, *, check=smoke_job) -> dict:
    current = existing_endpoint(ml_client.batch_endpoints, endpoint.name)
    live = default_deployment(current) if current is not None else None
    new = endpoints.next_slot(live)
    deployment.name = new
    if current is None:
        ml_client.batch_endpoints.begin_create_or_update(endpoint).result()
    print(f"[{endpoint.name}] default: {live or 'none'}; creating {new} beside it")

    def remove_new():
        try:
            ml_client.batch_deployments.begin_delete(name=new, endpoint_name=endpoint.name).result()
        except Exception as error:  # noqa: BLE001 - leftover takes no jobs; warn only
            print(f"warning: could not delete {new}: {error}")

    state = provision(ml_client.batch_deployments, deployment)
    if state != "Succeeded":
        remove_new()
        raise DeploymentUnhealthy(
            f"batch deployment {new} of {endpoint.name} did not become healthy: {state} "
            "(the default deployment is unchanged)"
        )
    try:
        check(ml_client, endpoint.name, new, smoke_data)
    except StageError as error:
        remove_new()
        raise SmokeJobFailed(f"{error} (the default deployment is unchanged)") from None
    set_default(ml_client, endpoint.name, new)
    print(f"[{endpoint.name}] {new} is the default")
    if live is not None and live != new:
        ml_client.batch_deployments.begin_delete(name=live, endpoint_name=endpoint.name).result()
    return {"batch_endpoint": endpoint.name, "batch_deployment": new}


def batch_schedule(environment: str, model: registry.AssetRef, scoring_environment: str):
    """The scheduled batch job, scoring with `model` in `scoring_environment`."""
    from azure.ai.ml import Input

    schedule = load_schedule(SCHEDULES_DIR / "batch-scoring.yml")
    schedule.name = f"{schedule.name}-{environment}"
    job = schedule.create_job
    job.inputs["model"] = Input(type="mlflow_model", path=model.uri())
    for step in job.jobs.values():
        step.environment = scoring_environment
    return schedule


def add_arguments(parser) -> None:
    parser.add_argument("--environment", required=True, help="environment to deploy to")
    parser.add_argument("--model-uri", required=True, help="the promote stage's model_uri")
    parser.add_argument(
        "--smoke-data",
        help="data asset URI the smoke job scores (default: the model's reference data)",
    )


def run(args, environ) -> dict:
    workspace.check_environment(args.environment)
    registry_name = workspace.registry_from_env(environ)
    model = registry.require_registry_model(
        registry.parse_model_uri(args.model_uri), args.environment, registry_name
    )
    scoring = registry.scoring_environment_for(model)
    endpoint = endpoints.load_batch_endpoint(args.environment)
    deployment = endpoints.load_batch_deployment(
        args.environment, model=model.uri(), scoring_environment=scoring
    )
    ml_client = workspace.get_ml_client(workspace.require_workspace(environ))
    smoke_data = args.smoke_data
    if not smoke_data:
        from stage_monitor import reference_of

        registry_client = workspace.get_registry_client(registry_name) if model.registry else None
        smoke_data = reference_of(ml_client, registry_client, model.uri())
        if not smoke_data:
            raise StageError(
                f"{model.uri()} has no reference_data tag: pass --smoke-data <data asset URI>"
            )
    outputs = rollout(ml_client, endpoint, deployment, smoke_data)
    schedule = batch_schedule(args.environment, model, scoring)
    outputs["schedule"] = ml_client.schedules.begin_create_or_update(schedule).result().name
    return outputs
