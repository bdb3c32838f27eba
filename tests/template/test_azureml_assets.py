"""Every Azure ML asset a generated project ships loads with azure-ai-ml, and its training
pipeline builds offline with the expected wiring, for every answer combination that matters.

The generated project checks the same in its own suite; this test catches a broken asset in
this repository's fast suite, without installing a project.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from pathlib import Path

import pytest
import yaml
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
from template_cases import COMBINATIONS, UNICODE_NAME

# azure-ai-ml's schemas trip marshmallow's own deprecation notices; they are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

CASES = {
    **COMBINATIONS,
    "unicode-name": {
        "project_name": UNICODE_NAME,
        "ci_provider": "azure-devops",
        "environments": ["dev", "preprod", "prod"],
    },
}

#: .cloud/<folder>/ -> the azure-ai-ml loader for the kind of asset the folder holds.
LOADERS = {
    "compute": load_compute,
    "environments": load_environment,
    "data": load_data,
    "components": load_component,
    "pipelines": load_job,
    "schedules": load_schedule,
}
STEPS = ("prep", "train", "evaluate", "register")
SERVED_STEPS = (*STEPS, "score")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
COMPONENT_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")

#: (step, input) -> its source, as Azure ML receives it.
EXPECTED_WIRING = {
    ("prep", "test_size"): "parent.inputs.test_size",
    ("train", "prepared_data"): "parent.jobs.prep.outputs.prepared_data",
    ("train", "c"): "parent.inputs.c",
    ("evaluate", "model"): "parent.jobs.train.outputs.model",
    ("evaluate", "prepared_data"): "parent.jobs.prep.outputs.prepared_data",
    ("evaluate", "metric"): "parent.inputs.gate_metric",
    ("register", "model"): "parent.jobs.train.outputs.model",
    ("register", "evaluation"): "parent.jobs.evaluate.outputs.evaluation",
    ("register", "model_name"): "parent.inputs.model_name",
    ("register", "c"): "parent.inputs.c",
    ("register", "test_size"): "parent.inputs.test_size",
}


@pytest.fixture(params=list(CASES), scope="module")
def project(request, rendered_project) -> Path:
    return rendered_project(**CASES[request.param])


def answers_of(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def loader_for(cloud: Path, path: Path):
    folder = path.relative_to(cloud).parts[0]
    if folder == "endpoints" and path.stem.startswith("batch-"):
        return load_batch_deployment if path.stem.endswith("deployment") else load_batch_endpoint
    if folder == "endpoints":
        return load_online_deployment if path.stem.endswith("deployment") else load_online_endpoint
    return LOADERS.get(folder)


def wiring(job) -> dict[tuple[str, str], str]:
    wired = {}
    for step, node in job._to_dict()["jobs"].items():
        for name, value in (node.get("inputs") or {}).items():
            binding = value["path"] if isinstance(value, dict) else value
            wired[(step, name)] = str(binding).removeprefix("${{").removesuffix("}}")
    return wired


@contextlib.contextmanager
def project_scripts(project: Path):
    """Import the project's pipelines/ scripts; forget them afterwards (every project has its
    own modules of the same names)."""
    names = ("workspace", "training_pipeline", "endpoints", "registry", "stage_monitor")
    saved_path = list(sys.path)
    for name in names:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(project / "pipelines"))
    try:
        yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.path[:] = saved_path
        for name in names:
            sys.modules.pop(name, None)


def test_every_asset_outside_infra_loads_with_its_loader(project):
    cloud = project / ".cloud"
    assets = [p for p in sorted(cloud.rglob("*.y*ml")) if p.relative_to(cloud).parts[0] != "infra"]
    folders = {p.relative_to(cloud).parts[0] for p in assets}
    assert folders == {*LOADERS, "endpoints"}
    for path in assets:
        loader = loader_for(cloud, path)
        assert loader is not None, f"no azure-ai-ml loader for {path.relative_to(project)}"
        loader(source=path)


def test_assets_are_named_from_the_slug_and_valid_for_azure(project):
    cloud = project / ".cloud"
    slug = answers_of(project)["project_slug"]
    for step in SERVED_STEPS:
        environment = load_environment(source=cloud / "environments" / f"{step}.yml")
        assert environment.name == f"{slug}-{step}"
        assert (project / "code" / step / "environment.yml").is_file()
    for step in STEPS:
        component = load_component(source=cloud / "components" / f"{step}.yml")
        assert COMPONENT_NAME.match(component.name), component.name
        assert component.environment.removeprefix("azureml:") == f"{slug}-{step}@latest"
    endpoint = load_online_endpoint(source=cloud / "endpoints" / "online-endpoint.yml")
    assert ENDPOINT_NAME.match(endpoint.name), endpoint.name
    assert endpoint.auth_mode in ("key", "aml_token")
    # The one free-text answer in the assets survives YAML quoting intact.
    assert endpoint.description == f"Online scoring for {answers_of(project)['project_name']}"
    cluster = load_compute(source=cloud / "compute" / "cpu-cluster.yml")
    assert (cluster.name, cluster.min_instances) == ("cpu-cluster", 0)
    retraining = load_schedule(source=cloud / "schedules" / "retraining.yml")
    assert isinstance(retraining.trigger, CronTrigger)
    monitor = load_schedule(source=cloud / "schedules" / "model-monitor.yml")
    signals = monitor.create_monitor.monitoring_signals.values()
    assert "data_drift" in {signal.type for signal in signals}


def test_kubernetes_endpoint_only_with_an_aks_cluster(project):
    endpoints = project / ".cloud" / "endpoints"
    kubernetes = sorted(p.name for p in endpoints.glob("kubernetes-*"))
    if answers_of(project).get("aks_cluster_id"):
        assert kubernetes == ["kubernetes-deployment.yml", "kubernetes-endpoint.yml"]
        endpoint = load_online_endpoint(source=endpoints / "kubernetes-endpoint.yml")
        assert ENDPOINT_NAME.match(endpoint.name), endpoint.name
        assert endpoint.compute.removeprefix("azureml:").startswith("k8s-")
        with project_scripts(project) as scripts:
            for environment in answers_of(project)["environments"]:
                load = scripts["endpoints"].load_endpoint
                kubernetes_endpoint = load(environment, kubernetes=True)
                assert ENDPOINT_NAME.match(kubernetes_endpoint.name), kubernetes_endpoint.name
                assert kubernetes_endpoint.compute == f"azureml:k8s-{environment}"
                assert kubernetes_endpoint.name != load(environment).name
    else:
        assert kubernetes == []


def test_the_pipeline_builds_offline_wired_like_the_yaml_job(project):
    with project_scripts(project) as scripts:
        job = scripts["training_pipeline"].build_pipeline()
    assert wiring(job) == EXPECTED_WIRING
    assert job.settings.default_compute == "cpu-cluster"
    yaml_job = load_job(source=project / ".cloud" / "pipelines" / "training-pipeline.yml")
    assert wiring(yaml_job) == EXPECTED_WIRING
    slug = answers_of(project)["project_slug"]
    assert job.inputs["model_name"]._data == f"{slug}-model"


def test_every_environment_gets_valid_endpoints_and_monitor_target(project):
    environments = answers_of(project)["environments"]
    with project_scripts(project) as scripts:
        assert scripts["workspace"].known_environments() == sorted(environments)
        for environment in environments:
            endpoint = scripts["endpoints"].load_endpoint(environment)
            batch = scripts["endpoints"].load_batch_endpoint(environment)
            for name in (endpoint.name, batch.name):
                assert ENDPOINT_NAME.match(name) and name.endswith(f"-{environment}"), name
            assert endpoint.name != batch.name
            reference = "azureml://registries/reg/data/ref/versions/3"
            monitor = scripts["stage_monitor"].load_model_monitor(environment, "green", reference)
            target = monitor.create_monitor.monitoring_target.endpoint_deployment_id
            assert target == f"azureml:{endpoint.name}:green"
            drift = [s for s in monitor.create_monitor.monitoring_signals.values()
                     if s.type == "data_drift"]
            assert drift and drift[0].reference_data.input_data.path == reference
        names = {scripts["endpoints"].load_endpoint(e).name for e in environments}
    assert len(names) == len(environments), "two environments would share an endpoint"


def test_staging_and_prod_deploy_registry_assets_only(project):
    """The promotion contract: a workspace model is refused outside dev, and a registry model
    is served with the scoring environment from the same registry."""
    with project_scripts(project) as scripts:
        registry = scripts["registry"]
        slug = answers_of(project)["project_slug"]
        uri = f"azureml://registries/mlr-x/models/{slug}-model/versions/4"
        model = registry.parse_model_uri(uri)
        for environment in answers_of(project)["environments"]:
            assert registry.require_registry_model(model, environment, "mlr-x") == model
            if environment != "dev":
                with pytest.raises(registry.BadModelUri, match="only from the registry"):
                    registry.require_registry_model(
                        registry.parse_model_uri(f"azureml:{slug}-model:4"), environment, "mlr-x"
                    )
        score = registry.scoring_environment_for(model)
        assert score.startswith(f"azureml://registries/mlr-x/environments/{slug}-score/versions/")
