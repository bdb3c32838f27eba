"""Every Azure ML asset under .cloud/ (not .cloud/infra/) loads with azure-ai-ml, offline.

Each folder holds one kind of asset and has one loader; a YAML file in a folder without a
loader fails the suite, so nothing under .cloud/ escapes validation.
"""

from pathlib import Path

import pytest
from azure.ai.ml import (
    load_batch_deployment,
    load_batch_endpoint,
    load_component,
    load_compute,
    load_data,
    load_environment,
    load_job,
    load_online_deployment,
    load_online_endpoint,
)
from azure.ai.ml.entities import CronTrigger
from azure.ai.ml.entities._load_functions import load_schedule

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLOUD_DIR = PROJECT_ROOT / ".cloud"

LOADERS = {
    "compute": load_compute,
    "environments": load_environment,
    "data": load_data,
    "components": load_component,
    "pipelines": load_job,
    "schedules": load_schedule,
}


def loader_for(path: Path):
    folder = path.relative_to(CLOUD_DIR).parts[0]
    if folder == "endpoints" and path.stem.startswith("batch-"):
        return load_batch_deployment if path.stem.endswith("deployment") else load_batch_endpoint
    if folder == "endpoints":
        return load_online_deployment if path.stem.endswith("deployment") else load_online_endpoint
    return LOADERS.get(folder)


ASSETS = sorted(
    path for path in CLOUD_DIR.rglob("*.y*ml") if path.relative_to(CLOUD_DIR).parts[0] != "infra"
)


def test_there_are_assets_to_check():
    folders = {path.relative_to(CLOUD_DIR).parts[0] for path in ASSETS}
    assert folders == set(LOADERS) | {"endpoints"}


@pytest.mark.parametrize("path", ASSETS, ids=lambda p: str(p.relative_to(CLOUD_DIR)))
def test_asset_loads_with_its_azure_ai_ml_loader(path):
    loader = loader_for(path)
    assert loader is not None, f"no loader for {path}; add one to LOADERS"
    loader(source=path)


def test_a_wrong_type_is_caught_offline(tmp_path):
    broken = tmp_path / "cluster.yml"
    text = (CLOUD_DIR / "compute" / "cpu-cluster.yml").read_text()
    broken.write_text(text.replace("min_instances: 0", "min_instances: notanumber"))
    with pytest.raises(Exception, match="min_instances"):
        load_compute(source=broken)


def test_the_training_cluster_scales_to_zero():
    cluster = load_compute(source=CLOUD_DIR / "compute" / "cpu-cluster.yml")
    assert cluster.name == "cpu-cluster"
    assert cluster.type == "amlcompute"
    assert cluster.min_instances == 0
    assert cluster.max_instances >= 1


def test_the_batch_deployment_serves_like_the_online_one():
    online = load_online_deployment(source=CLOUD_DIR / "endpoints" / "online-deployment.yml")
    batch = load_batch_deployment(source=CLOUD_DIR / "endpoints" / "batch-deployment.yml")
    endpoint = load_batch_endpoint(source=CLOUD_DIR / "endpoints" / "batch-endpoint.yml")
    assert batch.endpoint_name == endpoint.name and len(endpoint.name) <= 32
    assert (batch.model, batch.environment) == (online.model, online.environment)
    assert batch.compute.removeprefix("azureml:") == "cpu-cluster"
    code = (CLOUD_DIR / "endpoints" / batch.code_configuration.code).resolve()
    assert (code / batch.code_configuration.scoring_script).is_file()
    scoring = load_schedule(source=CLOUD_DIR / "schedules" / "batch-scoring.yml")
    assert isinstance(scoring.trigger, CronTrigger)
    assert scoring.create_job.inputs["model"].path == online.model


@pytest.mark.parametrize("step", ["prep", "train", "evaluate", "register", "score"])
def test_each_step_has_an_environment_built_from_its_conda_file(step):
    environment = load_environment(source=CLOUD_DIR / "environments" / f"{step}.yml")
    assert environment.image.startswith("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04")
    assert environment.name.endswith(f"-{step}")
    dependencies = environment.conda_file["dependencies"]
    pip = next(item["pip"] for item in dependencies if isinstance(item, dict))
    assert any(package.startswith("scikit-learn==") for package in pip)
    assert (PROJECT_ROOT / "code" / step / "environment.yml").is_file()


def test_every_step_pins_the_same_scikit_learn():
    # The score step unpickles what the train step pickled.
    pins = set()
    for step in ("prep", "train", "evaluate", "register", "score"):
        environment = load_environment(source=CLOUD_DIR / "environments" / f"{step}.yml")
        pip = next(i["pip"] for i in environment.conda_file["dependencies"] if isinstance(i, dict))
        pins |= {package for package in pip if package.startswith("scikit-learn")}
    assert len(pins) == 1


@pytest.mark.parametrize("step", ["prep", "train", "evaluate", "register"])
def test_components_use_their_step_environment(step):
    component = load_component(source=CLOUD_DIR / "components" / f"{step}.yml")
    environment = load_environment(source=CLOUD_DIR / "environments" / f"{step}.yml")
    assert component.environment.removeprefix("azureml:") == f"{environment.name}@latest"


def test_the_endpoint_requires_authentication_and_the_deployment_collects_inputs():
    endpoint = load_online_endpoint(source=CLOUD_DIR / "endpoints" / "online-endpoint.yml")
    deployment = load_online_deployment(source=CLOUD_DIR / "endpoints" / "online-deployment.yml")
    assert endpoint.auth_mode in ("key", "aml_token")
    assert len(endpoint.name) <= 32
    assert deployment.endpoint_name == endpoint.name
    assert deployment.data_collector.collections["model_inputs"].enabled in (True, "true", "True")
    code = (CLOUD_DIR / "endpoints" / deployment.code_configuration.code).resolve()
    assert (code / deployment.code_configuration.scoring_script).is_file()
    assert deployment.environment.endswith("-score@latest")


def test_retraining_runs_the_training_pipeline_on_a_cron():
    schedule = load_schedule(source=CLOUD_DIR / "schedules" / "retraining.yml")
    assert isinstance(schedule.trigger, CronTrigger)
    assert len(schedule.trigger.expression.split()) == 5
    assert set(schedule.create_job.jobs) == {"prep", "train", "evaluate", "register"}


def test_the_monitor_watches_data_drift_against_the_reference_data():
    monitor = load_schedule(source=CLOUD_DIR / "schedules" / "model-monitor.yml")
    endpoint = load_online_endpoint(source=CLOUD_DIR / "endpoints" / "online-endpoint.yml")
    target = monitor.create_monitor.monitoring_target
    assert target.endpoint_deployment_id == f"azureml:{endpoint.name}:blue"
    signals = monitor.create_monitor.monitoring_signals
    assert "data_drift" in {signal.type for signal in signals.values()}
    data = load_data(source=CLOUD_DIR / "data" / "reference-data.yml")
    drift = next(signal for signal in signals.values() if signal.type == "data_drift")
    reference = drift.reference_data.input_data.path.removeprefix("azureml:")
    assert reference == f"{data.name}:{data.version}"
