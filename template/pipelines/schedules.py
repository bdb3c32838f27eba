"""Create the retraining schedule and the data-drift model monitor for an environment.

Both come from .cloud/schedules/: a weekly cron that runs the training pipeline, and a daily
monitor that compares the inputs the online deployment collected with the training data.
The monitor is pointed at the environment's endpoint (see deploy_model.endpoint_name).

    python pipelines/schedules.py --environment dev --dry-run
    python pipelines/schedules.py --environment dev
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy_model import endpoint_name, load_deployment
from workspace import CLOUD_DIR, WorkspaceNotConfigured, as_yaml, get_ml_client

SCHEDULES_DIR = CLOUD_DIR / "schedules"


def _load_schedule(source: Path):
    # Not exported from azure.ai.ml; this is where azure-ai-ml keeps it.
    from azure.ai.ml.entities._load_functions import load_schedule

    return load_schedule(source=source)


def load_retraining_schedule(schedules_dir: Path = SCHEDULES_DIR):
    return _load_schedule(schedules_dir / "retraining.yml")


def load_model_monitor(environment: str, schedules_dir: Path = SCHEDULES_DIR):
    """The drift monitor, watching the environment's blue deployment."""
    monitor = _load_schedule(schedules_dir / "model-monitor.yml")
    deployment = load_deployment(environment)
    target = monitor.create_monitor.monitoring_target
    target.endpoint_deployment_id = f"azureml:{deployment.endpoint_name}:{deployment.name}"
    return monitor


def create_schedules(ml_client, schedules) -> list[str]:
    created = []
    for schedule in schedules:
        created.append(ml_client.schedules.begin_create_or_update(schedule).result().name)
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Create the retraining schedule and the data-drift model monitor."
    )
    parser.add_argument("--environment", default="dev", help="environment, e.g. dev or prod")
    parser.add_argument("--skip-monitor", action="store_true", help="only the retraining schedule")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the schedules; do not call Azure"
    )
    args = parser.parse_args(argv)
    try:
        endpoint_name("endpoint", args.environment)  # validates the environment name
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    schedules = [load_retraining_schedule()]
    if not args.skip_monitor:
        schedules.append(load_model_monitor(args.environment))
    if args.dry_run:
        for schedule in schedules:
            print(f"---\n{as_yaml(schedule)}", end="")
        return 0
    try:
        ml_client = get_ml_client()
    except WorkspaceNotConfigured as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name in create_schedules(ml_client, schedules):
        print(f"schedule {name} is active")
    return 0


if __name__ == "__main__":
    sys.exit(main())
