"""Monitoring: the schedules of an environment, from .cloud/schedules/, created or updated.

    python pipelines/cicd.py monitor --environment ENV

Where each belongs:
- dev trains, so dev gets the retraining schedule (retraining.yml).
- every other environment serves real traffic, so it gets the data-drift model monitor
  (model-monitor.yml), pointed at the endpoint's live deployment and at the reference data
  of the model that deployment serves (the `reference_data` tag; in the registry for models
  promoted there).

Where a monitor runs and DRIFT_TRIGGER_URL is set (the retraining trigger's webhook, a secret),
the drift alert's action is wired too: an Event Grid subscription on the workspace that sends
the monitor's breached runs to it (drift_trigger.py; docs/cicd.md). All calls are control-plane.

Outputs: schedules (comma-separated names), drift_trigger (when wired).
"""

from __future__ import annotations

from pathlib import Path

import drift_trigger
import endpoints
import registry
import workspace
from stage_deploy import existing_endpoint, live_deployment
from workspace import CLOUD_DIR, StageError

SCHEDULES_DIR = CLOUD_DIR / "schedules"


class NothingToMonitor(StageError):
    """The environment's endpoint has no live deployment yet."""


def load_schedule(source: Path):
    # Not exported from azure.ai.ml; this is where azure-ai-ml keeps it.
    from azure.ai.ml.entities._load_functions import load_schedule as load

    return load(source=source)


def load_retraining_schedule(schedules_dir: Path = SCHEDULES_DIR):
    return load_schedule(schedules_dir / "retraining.yml")


def load_model_monitor(
    environment: str,
    deployment: str,
    reference_data: str | None = None,
    schedules_dir: Path = SCHEDULES_DIR,
):
    """The drift monitor, watching `deployment` of the environment's endpoint."""
    monitor = load_schedule(schedules_dir / "model-monitor.yml")
    endpoint = endpoints.load_endpoint(environment)
    monitor.name = f"{monitor.name}-{environment}"
    target = monitor.create_monitor.monitoring_target
    target.endpoint_deployment_id = f"azureml:{endpoint.name}:{deployment}"
    if reference_data:
        for signal in monitor.create_monitor.monitoring_signals.values():
            reference = getattr(signal, "reference_data", None)
            if reference is not None and reference.input_data is not None:
                reference.input_data.path = reference_data
    return monitor


def reference_of(ml_client, registry_client, model_uri: str) -> str | None:
    """The reference data URI of the model a deployment serves (its `reference_data` tag)."""
    model = registry.parse_deployed_model(model_uri)
    client = registry_client if model.registry else ml_client
    tags = client.models.get(name=model.name, version=model.version).tags or {}
    reference = tags.get(registry.REFERENCE_DATA_TAG, "")
    if ":" not in reference:
        return None
    name, version = reference.rsplit(":", 1)
    return registry.AssetRef(name, version, model.registry).uri("data")


def live_target(ml_client, environment: str) -> tuple[str, str]:
    """(live deployment, the model URI it serves) of the environment's managed endpoint."""
    name = endpoints.load_endpoint(environment).name
    endpoint = existing_endpoint(ml_client.online_endpoints, name)
    live = live_deployment(endpoint) if endpoint is not None else None
    if live is None:
        raise NothingToMonitor(
            f"endpoint {name} has no live deployment to monitor: run "
            f"`cicd.py deploy --environment {environment}` first"
        )
    deployment = ml_client.online_deployments.get(name=live, endpoint_name=name)
    return live, str(deployment.model)


def schedules_for(ml_client, registry_client, environment: str) -> list:
    if environment == "dev":
        return [load_retraining_schedule()]
    live, model_uri = live_target(ml_client, environment)
    reference = reference_of(ml_client, registry_client, model_uri)
    return [load_model_monitor(environment, live, reference)]


def create_schedules(ml_client, schedules) -> list[str]:
    return [ml_client.schedules.begin_create_or_update(s).result().name for s in schedules]


def add_arguments(parser) -> None:
    parser.add_argument("--environment", required=True, help="environment to monitor")


def run(args, environ) -> dict:
    workspace.check_environment(args.environment)
    target = workspace.require_workspace(environ)
    ml_client = workspace.get_ml_client(target)
    registry_client = None
    if args.environment != "dev":
        registry_client = workspace.get_registry_client(workspace.registry_from_env(environ))
    names = create_schedules(ml_client, schedules_for(ml_client, registry_client, args.environment))
    for name in names:
        print(f"schedule {name} is active")
    outputs = {"schedules": ",".join(names)}
    trigger_url = environ.get(drift_trigger.TRIGGER_VARIABLE, "").strip()
    if trigger_url and args.environment != "dev":
        scope = drift_trigger.workspace_id(
            target.subscription_id, target.resource_group, target.workspace_name
        )
        client = drift_trigger.get_eventgrid_client(target.subscription_id)
        outputs["drift_trigger"] = drift_trigger.wire(client, scope, trigger_url)
        print(f"drift alerts of {target.workspace_name} now trigger retraining")
    return outputs
