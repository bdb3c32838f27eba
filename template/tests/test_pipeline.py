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
    assert set(pipeline_job.outputs) == {"model", "model_info"}


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


@pytest.mark.parametrize("environment", ["dev", "preprod", "prod"])
def test_deploy_dry_run_names_the_endpoint_per_environment(environment, capsys):
    from deploy_model import main

    model, endpoint, deployment = dry_run(
        main, ["--environment", environment, "--job-name", "job-123"], capsys
    )
    assert endpoint["name"].endswith(f"-{environment}")
    assert 3 <= len(endpoint["name"]) <= 32
    assert endpoint["auth_mode"] in ("key", "aml_token")
    assert deployment["endpoint_name"] == endpoint["name"]
    assert model["path"] == "azureml://jobs/job-123/outputs/model"
    assert model["type"] == "mlflow_model"


def test_endpoint_names_stay_valid_for_long_bases():
    from deploy_model import endpoint_name

    name = endpoint_name("a" * 31 + "-b", "preprod")
    assert len(name) <= 32 and name.endswith("-preprod") and "--" not in name
    kubernetes = endpoint_name("a" * 28 + "-k8s", "preprod")
    assert len(kubernetes) <= 32 and kubernetes.endswith("-k8s-preprod")
    with pytest.raises(ValueError, match="environment"):
        endpoint_name("base", "Prod!")


def test_schedules_dry_run_points_the_monitor_at_the_environment(capsys):
    from schedules import main

    retraining, monitor = dry_run(main, ["--environment", "prod"], capsys)
    assert retraining["trigger"]["type"] == "cron"
    target = monitor["create_monitor"]["monitoring_target"]["endpoint_deployment_id"]
    assert target.endswith("-prod:blue")


def test_workspace_comes_from_all_three_variables_or_none():
    from workspace import WorkspaceNotConfigured, workspace_from_env

    assert workspace_from_env({}) is None
    ref = workspace_from_env(
        {
            "AZURE_SUBSCRIPTION_ID": "sub",
            "AZURE_RESOURCE_GROUP": "rg",
            "AZUREML_WORKSPACE_NAME": "ws",
        }
    )
    assert (ref.subscription_id, ref.resource_group, ref.workspace_name) == ("sub", "rg", "ws")
    with pytest.raises(WorkspaceNotConfigured, match="AZURE_RESOURCE_GROUP"):
        workspace_from_env({"AZURE_SUBSCRIPTION_ID": "sub", "AZUREML_WORKSPACE_NAME": "ws"})


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


@pytest.mark.parametrize(
    "script", ["workspace", "training_pipeline", "deploy_model", "schedules", "run_locally"]
)
def test_every_script_has_help(script, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(script).main(["--help"])
    assert exit_info.value.code == 0
    assert "--dry-run" in capsys.readouterr().out


def generated_with_aks() -> bool:
    answers_file = PROJECT_ROOT / ".copier-answers.yml"
    if not answers_file.exists():
        pytest.skip("no .copier-answers.yml: cannot tell whether the project has an AKS cluster")
    return bool(yaml.safe_load(answers_file.read_text()).get("aks_cluster_id"))


def test_the_kubernetes_endpoint_exists_exactly_when_an_aks_cluster_was_given(capsys):
    from deploy_model import main

    kubernetes_files = sorted(p.name for p in (CLOUD_DIR / "endpoints").glob("kubernetes-*"))
    if not generated_with_aks():
        assert kubernetes_files == []
        assert main(["--kubernetes", "--environment", "dev", "--dry-run"]) == 2
        assert "aks_cluster_id" in capsys.readouterr().err
        return
    assert kubernetes_files == ["kubernetes-deployment.yml", "kubernetes-endpoint.yml"]
    endpoint, deployment = dry_run(main, ["--kubernetes", "--environment", "prod"], capsys)
    assert endpoint["compute"] == "azureml:k8s-prod"
    assert endpoint["name"].endswith("-k8s-prod") and len(endpoint["name"]) <= 32
    assert deployment["endpoint_name"] == endpoint["name"]
    (managed, _) = dry_run(main, ["--environment", "prod"], capsys)
    assert managed["name"] != endpoint["name"], "the two endpoints of prod share a name"


def test_a_champion_becomes_a_second_baseline_of_the_evaluate_step():
    from training_pipeline import build_pipeline

    uri = "azureml://datastores/workspaceblobstore/paths/champion/metrics.json"
    job = build_pipeline(champion_metrics=uri)
    evaluate_inputs = job._to_dict()["jobs"]["evaluate"]["inputs"]
    assert evaluate_inputs["baseline_metrics"]["path"] == uri
    assert evaluate_inputs["baseline_metrics"]["type"] == "uri_file"
    assert "baseline_metrics" not in build_pipeline()._to_dict()["jobs"]["evaluate"]["inputs"]
