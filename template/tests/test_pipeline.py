"""The training pipeline builds offline with the expected wiring; the scripts' dry runs work."""

from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_job

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLOUD_DIR = PROJECT_ROOT / ".cloud"

#: (step, input) -> where it comes from. This is the pipeline a reviewer expects.
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


def wiring(job) -> dict[tuple[str, str], str]:
    """(step, input) -> binding, from the job as Azure ML would receive it."""
    wired = {}
    for step, node in job._to_dict()["jobs"].items():
        for name, value in (node.get("inputs") or {}).items():
            binding = value["path"] if isinstance(value, dict) else value
            wired[(step, name)] = str(binding).removeprefix("${{").removesuffix("}}")
    return wired


@pytest.fixture(scope="module")
def pipeline_job():
    from training_pipeline import build_pipeline

    return build_pipeline()


def test_the_pipeline_builds_offline_with_the_expected_wiring(pipeline_job):
    assert wiring(pipeline_job) == EXPECTED_WIRING


def test_the_pipeline_runs_on_the_training_cluster_and_stops_at_a_failed_step(pipeline_job):
    assert pipeline_job.settings.default_compute == "cpu-cluster"
    assert pipeline_job.settings.continue_on_step_failure is False
    assert set(pipeline_job.outputs) == {"model", "model_info", "reference_data"}


def test_every_run_registers_a_new_version_of_the_drift_reference_data(pipeline_job):
    from training_pipeline import build_pipeline, default_model_name

    reference = default_model_name().removesuffix("-model") + "-reference"
    output = build_pipeline(reference_version="20250102030405").outputs["reference_data"]
    assert (output.type, output.name, output.version) == ("mltable", reference, "20250102030405")
    yaml_job = load_job(source=CLOUD_DIR / "pipelines" / "training-pipeline.yml")
    assert yaml_job.outputs["reference_data"].name == reference
    data = yaml.safe_load((CLOUD_DIR / "data" / "reference-data.yml").read_text())
    assert data["name"] == reference


def test_the_lineage_reaches_the_register_step():
    from training_pipeline import build_pipeline

    job = build_pipeline(
        git_commit="abc",
        training_data="raw:3",
        reference_version="9",
        champion_model="azureml://registries/r/models/m/versions/2",
    )._to_dict()["jobs"]
    register = job["register"]["inputs"]
    assert register["git_commit"] == "abc"
    assert register["training_data"] == "raw:3"
    assert register["reference_data"].endswith("-reference:9")
    assert job["evaluate"]["inputs"]["champion_model"]["type"] == "mlflow_model"
    assert job["prep"]["inputs"]["raw_data"]["path"] == "azureml:raw:3"


def test_the_yaml_pipeline_job_is_wired_like_the_python_one(pipeline_job):
    yaml_job = load_job(source=CLOUD_DIR / "pipelines" / "training-pipeline.yml")
    assert wiring(yaml_job) == wiring(pipeline_job)
    assert yaml_job.settings.default_compute.removeprefix("azureml:") == "cpu-cluster"


def test_pipeline_parameters_reach_the_job():
    from training_pipeline import build_pipeline

    job = build_pipeline(test_size=0.3, c=0.1, gate_metric="f1", model_name="other-model")
    assert job.inputs["test_size"]._data == 0.3
    assert job.inputs["c"]._data == 0.1
    assert job.inputs["gate_metric"]._data == "f1"
    assert job.inputs["model_name"]._data == "other-model"


def test_an_unknown_gate_metric_is_refused():
    from training_pipeline import build_pipeline

    with pytest.raises(ValueError, match="gate_metric"):
        build_pipeline(gate_metric="precision")


def dry_run(main, argv, capsys) -> list[dict]:
    assert main([*argv, "--dry-run"]) == 0
    return [doc for doc in yaml.safe_load_all(capsys.readouterr().out) if doc]


def test_training_pipeline_dry_run_prints_the_job(capsys):
    from training_pipeline import main

    (job,) = dry_run(main, ["--c", "0.2"], capsys)
    assert job["type"] == "pipeline"
    assert job["inputs"]["c"] == 0.2
    assert set(job["jobs"]) == {"prep", "train", "evaluate", "register"}


def test_endpoint_names_get_the_environment_within_32_characters():
    from endpoints import endpoint_name

    assert endpoint_name("churn", "dev") == "churn-dev"
    long = endpoint_name("a" * 40, "preprod")
    assert len(long) == 32 and long.endswith("-preprod")
    assert endpoint_name("a" * 40 + "-batch", "prod").endswith("-batch-prod")
    with pytest.raises(ValueError, match="environment"):
        endpoint_name("base", "Prod!")


def test_a_new_model_always_goes_into_the_slot_that_is_not_live():
    from endpoints import next_slot

    assert next_slot(None) == "blue"
    assert next_slot("blue") == "green"
    assert next_slot("green") == "blue"


def test_deploy_dry_run_shows_the_registry_assets_it_would_deploy(capsys, monkeypatch):
    from cicd import main

    uri = "azureml://registries/reg/models/m/versions/3"
    environ = {"AZUREML_REGISTRY": "reg"}
    assert main(["deploy", "--environment", "prod", "--model-uri", uri, "--dry-run"], environ) == 0
    endpoint, deployment = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert deployment["endpoint_name"] == endpoint["name"] and endpoint["name"].endswith("-prod")
    assert deployment["model"] == uri
    assert deployment["environment"].startswith("azureml://registries/reg/environments/")


def test_workspace_comes_from_all_three_variables_or_none():
    from workspace import WorkspaceNotConfigured, workspace_from_env

    assert workspace_from_env({}) is None
    ref = workspace_from_env(
        {
            "AZURE_SUBSCRIPTION_ID": "sub",
            "AZURE_RESOURCE_GROUP": "rg",
            "AZUREML_WORKSPACE": "ws",
        }
    )
    assert (ref.subscription_id, ref.resource_group, ref.workspace_name) == ("sub", "rg", "ws")
    with pytest.raises(WorkspaceNotConfigured, match="AZURE_RESOURCE_GROUP"):
        workspace_from_env({"AZURE_SUBSCRIPTION_ID": "sub", "AZUREML_WORKSPACE": "ws"})


def test_the_environments_are_the_projects_stacks():
    from workspace import check_environment, known_environments

    environments = known_environments()
    assert {"dev", "prod"} <= set(environments)
    for name in environments:
        assert (CLOUD_DIR / "infra" / f"Pulumi.{name}.yaml").is_file()
        assert check_environment(name) == name


def test_check_compute_explains_a_missing_cluster():
    from azure.core.exceptions import ResourceNotFoundError

    from workspace import ComputeMissing, check_compute

    class NoCompute:
        workspace_name = "mlw-x-dev"

        class compute:  # mimics MLClient.compute
            @staticmethod
            def get(name):
                raise ResourceNotFoundError(f"{name} not found")

    with pytest.raises(ComputeMissing, match=r"cpu-cluster.*pulumi up"):
        check_compute(NoCompute())


@pytest.mark.parametrize("script", ["workspace", "training_pipeline", "run_locally"])
def test_every_script_has_help(script, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(script).main(["--help"])
    assert exit_info.value.code == 0
    assert "--dry-run" in capsys.readouterr().out


@pytest.mark.parametrize("stage", ["train", "promote", "deploy", "deploy-batch", "monitor"])
def test_every_stage_has_help(stage, capsys):
    from cicd import main

    with pytest.raises(SystemExit) as exit_info:
        main([stage, "--help"])
    assert exit_info.value.code == 0
    assert "usage: cicd.py " + stage in capsys.readouterr().out


def generated_with_aks() -> bool:
    answers_file = PROJECT_ROOT / ".copier-answers.yml"
    if not answers_file.exists():
        pytest.skip("no .copier-answers.yml: cannot tell whether the project has an AKS cluster")
    return bool(yaml.safe_load(answers_file.read_text()).get("aks_cluster_id"))


def test_the_kubernetes_endpoint_exists_exactly_when_an_aks_cluster_was_given(capsys):
    from cicd import main

    uri = "azureml://registries/reg/models/m/versions/3"
    argv = ["deploy", "--kubernetes", "--environment", "prod", "--model-uri", uri, "--dry-run"]
    kubernetes_files = sorted(p.name for p in (CLOUD_DIR / "endpoints").glob("kubernetes-*"))
    if not generated_with_aks():
        assert kubernetes_files == []
        assert main(argv, {"AZUREML_REGISTRY": "reg"}) == 1
        assert "aks_cluster_id" in capsys.readouterr().err
        return
    assert kubernetes_files == ["kubernetes-deployment.yml", "kubernetes-endpoint.yml"]
    assert main(argv, {"AZUREML_REGISTRY": "reg"}) == 0
    endpoint, deployment = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert endpoint["compute"] == "azureml:k8s-prod"
    assert endpoint["name"].endswith("-k8s-prod") and len(endpoint["name"]) <= 32
    assert deployment["endpoint_name"] == endpoint["name"]
    assert deployment["model"] == uri


def test_a_champion_becomes_a_second_baseline_of_the_evaluate_step():
    from training_pipeline import build_pipeline

    uri = "azureml://datastores/workspaceblobstore/paths/champion/metrics.json"
    job = build_pipeline(champion_metrics=uri)
    evaluate_inputs = job._to_dict()["jobs"]["evaluate"]["inputs"]
    assert evaluate_inputs["baseline_metrics"]["path"] == uri
    assert evaluate_inputs["baseline_metrics"]["type"] == "uri_file"
    assert "baseline_metrics" not in build_pipeline()._to_dict()["jobs"]["evaluate"]["inputs"]
