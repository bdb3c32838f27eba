"""Build the training pipeline with the azure-ai-ml SDK (offline) and submit it.

prep -> train -> evaluate (fails below the majority baseline; decides whether the candidate
beats the champion) -> register (only a winner, with its lineage). The prep step's raw
training rows become a new version of the drift monitor's reference data asset
(`<project>-reference`). The steps are the command components in .cloud/components/, so this
pipeline and the YAML job in .cloud/pipelines/training-pipeline.yml run the same code.

CI runs it through `python pipelines/cicd.py train` (stage_train.py), which adds the champion
and the lineage. By hand:

    python pipelines/training_pipeline.py --dry-run          # print the pipeline job
    python pipelines/training_pipeline.py --wait             # submit and follow it
"""

# No `from __future__ import annotations`: the @pipeline decorator reads the parameter
# annotations as types.
import argparse
import sys
from pathlib import Path

from workspace import (
    CLOUD_DIR,
    COMPUTE_CLUSTER,
    StageError,
    as_yaml,
    check_compute,
    get_ml_client,
)

STEPS = ("prep", "train", "evaluate", "register")
GATE_METRICS = ("accuracy", "f1", "roc_auc")


def load_components(cloud_dir: Path = CLOUD_DIR) -> dict:
    """The step components, by step name, loaded from their YAML (offline)."""
    from azure.ai.ml import load_component

    return {step: load_component(source=cloud_dir / "components" / f"{step}.yml") for step in STEPS}


def default_model_name(components: dict | None = None) -> str:
    """The registered model name the register component defaults to."""
    components = components or load_components()
    return components["register"].inputs["model_name"].default


def build_pipeline(
    *,
    test_size: float = 0.2,
    c: float = 1.0,
    gate_metric: str = "roc_auc",
    model_name: str | None = None,
    compute: str = COMPUTE_CLUSTER,
    experiment_name: str | None = None,
    champion_metrics: str | None = None,
    champion_model: str | None = None,
    git_commit: str | None = None,
    training_data: str | None = None,
    reference_version: str | None = None,
    cloud_dir: Path = CLOUD_DIR,
):
    """The training PipelineJob, built offline from the component YAML.

    `champion_model` (a model URI, normally the registry's latest version) is scored on the
    same test split and must be beaten; `champion_metrics` (a metrics.json URI) is the older
    way to name a champion by its numbers. `git_commit`, `training_data` and the reference
    data version end up as tags of the registered model. Without `reference_version` Azure ML
    numbers the new reference data version itself.
    """
    from azure.ai.ml import Input
    from azure.ai.ml.dsl import pipeline

    if gate_metric not in GATE_METRICS:
        raise ValueError(f"gate_metric must be one of {', '.join(GATE_METRICS)}")
    components = load_components(cloud_dir)
    model_name = model_name or default_model_name(components)

    @pipeline(
        name="training",
        display_name="training",
        description="prep -> train -> evaluate (gate against baseline and champion) -> register",
    )
    def training(test_size: float, c: float, gate_metric: str, model_name: str):
        raw = {}
        if training_data:
            raw["raw_data"] = Input(type="uri_file", path=f"azureml:{training_data}")
        prep = components["prep"](test_size=test_size, **raw)
        train = components["train"](prepared_data=prep.outputs.prepared_data, c=c)
        champion = {}
        if champion_metrics:
            champion["baseline_metrics"] = Input(type="uri_file", path=champion_metrics)
        if champion_model:
            champion["champion_model"] = Input(type="mlflow_model", path=champion_model)
        evaluate = components["evaluate"](
            model=train.outputs.model,
            prepared_data=prep.outputs.prepared_data,
            metric=gate_metric,
            **champion,
        )
        register = components["register"](
            model=train.outputs.model,
            evaluation=evaluate.outputs.evaluation,
            model_name=model_name,
            c=c,
            test_size=test_size,
            **lineage,
        )
        return {
            "model": train.outputs.model,
            "model_info": register.outputs.model_info,
            "reference_data": prep.outputs.reference_data,
        }

    reference_name = reference_data_name(model_name)
    lineage = {
        "git_commit": git_commit,
        "training_data": training_data,
        "reference_data": f"{reference_name}:{reference_version}" if reference_version else None,
    }
    lineage = {key: value for key, value in lineage.items() if value}
    job = training(test_size=test_size, c=c, gate_metric=gate_metric, model_name=model_name)
    # The reference rows become a data asset version: the drift monitor's baseline.
    reference = job.outputs["reference_data"]
    reference.name = reference_name
    if reference_version:
        reference.version = reference_version
    job.settings.default_compute = compute
    job.settings.continue_on_step_failure = False
    job.experiment_name = experiment_name or f"{model_name.removesuffix('-model')}-training"
    return job


def reference_data_name(model_name: str) -> str:
    """`<project>-reference`: the data asset the drift monitor compares inputs with."""
    return f"{model_name.removesuffix('-model')}-reference"


def ensure_environments(ml_client, cloud_dir: Path = CLOUD_DIR) -> list[str]:
    """Create or update the step environments the components refer to."""
    from azure.ai.ml import load_environment

    created = []
    for source in sorted((cloud_dir / "environments").glob("*.yml")):
        environment = ml_client.environments.create_or_update(load_environment(source=source))
        created.append(f"{environment.name}:{environment.version}")
    return created


def submit(ml_client, job, *, wait: bool = False):
    """Submit the pipeline job; with wait, stream its logs until it ends."""
    check_compute(ml_client, job.settings.default_compute or COMPUTE_CLUSTER)
    ensure_environments(ml_client)
    submitted = ml_client.jobs.create_or_update(job)
    print(f"submitted {submitted.name}: {submitted.studio_url}")
    if wait:
        ml_client.jobs.stream(submitted.name)
    return submitted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build and submit the training pipeline.")
    parser.add_argument("--test-size", type=float, default=0.2, help="share of rows held out")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--gate-metric", default="roc_auc", choices=GATE_METRICS)
    parser.add_argument("--model-name", help="registered model name (default: from the component)")
    parser.add_argument("--compute", default=COMPUTE_CLUSTER, help="compute cluster to run on")
    parser.add_argument(
        "--champion-metrics", help="URI of the champion's metrics.json: a second baseline"
    )
    parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the pipeline job; do not call Azure"
    )
    args = parser.parse_args(argv)
    job = build_pipeline(
        test_size=args.test_size,
        c=args.c,
        gate_metric=args.gate_metric,
        model_name=args.model_name,
        compute=args.compute,
        champion_metrics=args.champion_metrics,
    )
    if args.dry_run:
        print(as_yaml(job), end="")
        return 0
    try:
        submit(get_ml_client(), job, wait=args.wait)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
