"""The CI/CD stages (pipelines/cicd.py) against a fake MLClient: the Azure boundary only.

What a reviewer cares about: no traffic ever reaches a deployment before it answered the smoke
test; a failed check puts all traffic back on the old deployment and fails the run; staging and
prod deploy only registry assets; only a winner is promoted; every bad input is one line, exit 1.
"""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError

import cicd
import endpoints
import registry
import stage_deploy
import training_pipeline
import workspace
from fake_azure import FakeEventGridClient, FakeMLClient

REGISTRY = "mlr-test"
ENVIRON = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_RESOURCE_GROUP": "rg-test-prod",
    "AZUREML_WORKSPACE": "mlw-test-prod",
    "AZUREML_REGISTRY": REGISTRY,
}
BAD_ANSWER = json.dumps({"predictions": [1, 0, 1], "probabilities": [0.9, float("nan"), 0.2]})


@pytest.fixture
def model_name() -> str:
    return training_pipeline.default_model_name()


@pytest.fixture
def registry_uri(model_name) -> str:
    return f"azureml://registries/{REGISTRY}/models/{model_name}/versions/7"


@pytest.fixture
def clients(monkeypatch):
    """The workspace and registry clients every stage gets, both fakes."""
    ml_client, registry_client = FakeMLClient(), FakeMLClient(registry_name=REGISTRY)
    monkeypatch.setattr(workspace, "get_ml_client", lambda *a, **k: ml_client)
    monkeypatch.setattr(workspace, "get_registry_client", lambda name: registry_client)
    return ml_client, registry_client


def run(argv: list[str], environ: dict | None = None) -> int:
    return cicd.main(argv, {**ENVIRON, **(environ or {})})


def traffic_updates(client: FakeMLClient) -> list[dict]:
    return [
        d["traffic"]
        for name, d in client.calls
        if name == "online_endpoints.begin_create_or_update"
    ]


def assert_no_traffic_before_a_smoke_test(client: FakeMLClient, live: set[str]) -> None:
    """Every deployment that gets traffic was live already, or was invoked by name before."""
    verified = set(live)
    for name, details in client.calls:
        if name == "online_endpoints.invoke":
            verified.add(details["deployment_name"])
        if name == "online_endpoints.begin_create_or_update":
            receiving = {d for d, share in details["traffic"].items() if share}
            assert receiving <= verified, f"traffic to unverified {receiving - verified}"


def with_live_blue(client: FakeMLClient, environment: str = "prod") -> str:
    """An endpoint whose `blue` deployment takes all traffic; returns its name."""
    endpoint = endpoints.load_endpoint(environment)
    endpoint.traffic = {"blue": 100}
    client.online[endpoint.name] = endpoint
    client.deployments[(endpoint.name, "blue")] = endpoints.load_deployment(environment)
    return endpoint.name


# --- deploy: the safe rollout -----------------------------------------------------------------


def test_first_deployment_goes_live_only_after_its_smoke_test(clients, registry_uri, capsys):
    ml_client, _ = clients
    assert run(["deploy", "--environment", "prod", "--model-uri", registry_uri]) == 0
    names = ml_client.names()
    created = names.index("online_deployments.begin_create_or_update")
    first_invoke = names.index("online_endpoints.invoke")
    assert names.index("online_endpoints.begin_create_or_update") < created < first_invoke
    assert traffic_updates(ml_client)[-1] == {"blue": 100}
    assert_no_traffic_before_a_smoke_test(ml_client, live=set())
    assert "deployment=blue" in capsys.readouterr().out


def test_a_new_model_goes_beside_the_live_one_then_replaces_it(clients, registry_uri):
    ml_client, _ = clients
    name = with_live_blue(ml_client)
    assert run(["deploy", "--environment", "prod", "--model-uri", registry_uri]) == 0
    (created,) = [d for n, d in ml_client.calls if n == "online_deployments.begin_create_or_update"]
    assert created["name"] == "green" and created["endpoint"] == name
    canary = 100 - stage_deploy.CANARY_PERCENT
    assert traffic_updates(ml_client) == [
        {"blue": canary, "green": stage_deploy.CANARY_PERCENT},
        {"green": 100},
    ]
    assert ml_client.names()[-1] == "online_deployments.begin_delete"
    assert ml_client.calls[-1][1]["name"] == "blue"
    assert_no_traffic_before_a_smoke_test(ml_client, live={"blue"})
    invoked = {d["deployment_name"] for n, d in ml_client.calls if n == "online_endpoints.invoke"}
    assert invoked == {"green"}, "the smoke test must call the new deployment by name"


def test_a_failed_check_under_canary_traffic_rolls_back_and_fails(clients, registry_uri, capsys):
    ml_client, _ = clients
    with_live_blue(ml_client)
    # The smoke test passes (3 requests); the check under canary traffic gets a NaN.
    ml_client.fail("online_endpoints.invoke", BAD_ANSWER, after=stage_deploy.CHECK_REQUESTS)
    assert run(["deploy", "--environment", "prod", "--model-uri", registry_uri]) == 1
    assert traffic_updates(ml_client)[-1] == {"blue": 100, "green": 0}
    deleted = [d["name"] for n, d in ml_client.calls if n == "online_deployments.begin_delete"]
    assert deleted == ["green"], "the old deployment must survive a failed rollout"
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "NaN" in error and "traffic is back on blue" in error


def test_a_failed_smoke_test_moves_no_traffic(clients, registry_uri, capsys):
    ml_client, _ = clients
    with_live_blue(ml_client)
    ml_client.fail("online_endpoints.invoke", json.dumps({"unexpected": True}))
    assert run(["deploy", "--environment", "prod", "--model-uri", registry_uri]) == 1
    assert traffic_updates(ml_client) == []
    assert ml_client.online[endpoints.load_endpoint("prod").name].traffic == {"blue": 100}
    assert "traffic unchanged" in capsys.readouterr().err


def test_a_slow_deployment_fails_its_latency_budget(clients):
    ml_client, _ = clients
    ticks = iter(range(0, 100, 5))  # every request "takes" 5 s
    with pytest.raises(stage_deploy.smoke.SmokeTestFailed, match="budget"):
        stage_deploy.probe(ml_client, "e", "green", clock=lambda: next(ticks))


def test_an_unhealthy_deployment_stops_the_run_without_traffic(clients, registry_uri, capsys):
    ml_client, _ = clients
    with_live_blue(ml_client)
    ml_client.fail(
        "online_deployments.begin_create_or_update", HttpResponseError("ImagePullFailed")
    )
    assert run(["deploy", "--environment", "prod", "--model-uri", registry_uri]) == 1
    assert traffic_updates(ml_client) == []
    assert "online_endpoints.invoke" not in ml_client.names()
    error = capsys.readouterr().err
    assert "did not become healthy" in error and "get-logs" in error


def test_prod_deploys_the_registry_model_and_its_registry_environment(clients, registry_uri):
    ml_client, _ = clients
    assert run(["deploy", "--environment", "prod", "--model-uri", registry_uri]) == 0
    (created,) = [d for n, d in ml_client.calls if n == "online_deployments.begin_create_or_update"]
    score = registry.scoring_environment()
    assert created["model"] == registry_uri
    assert created["environment"] == (
        f"azureml://registries/{REGISTRY}/environments/{score.name}/versions/{score.version}"
    )


@pytest.mark.parametrize("environment", ["prod"])
def test_prod_refuses_a_workspace_model(clients, model_name, environment, capsys):
    ml_client, _ = clients
    code = run(["deploy", "--environment", environment, "--model-uri", f"azureml:{model_name}:3"])
    assert code == 1
    assert ml_client.calls == [], "nothing may be called before the input is checked"
    assert "deploys only from the registry" in capsys.readouterr().err


def test_a_model_from_another_registry_is_refused(clients, model_name, capsys):
    uri = f"azureml://registries/someone-else/models/{model_name}/versions/1"
    assert run(["deploy", "--environment", "prod", "--model-uri", uri]) == 1
    assert "AZUREML_REGISTRY" in capsys.readouterr().err


def test_dev_may_deploy_its_own_workspace_model(clients, model_name):
    ml_client, _ = clients
    assert run(["deploy", "--environment", "dev", "--model-uri", f"azureml:{model_name}:3"]) == 0
    (created,) = [d for n, d in ml_client.calls if n == "online_deployments.begin_create_or_update"]
    assert created["model"] == f"azureml:{model_name}:3"
    assert (
        created["environment"].startswith("azureml:") and "registries" not in created["environment"]
    )


# --- bad input: one line, exit 1 --------------------------------------------------------------


@pytest.mark.parametrize("missing", ["AZUREML_WORKSPACE", "AZUREML_REGISTRY"])
def test_a_missing_variable_is_named(clients, registry_uri, missing, capsys):
    environ = {k: v for k, v in ENVIRON.items() if k != missing}
    code = cicd.main(["deploy", "--environment", "prod", "--model-uri", registry_uri], environ)
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and missing in error


def test_an_unknown_environment_is_named_with_the_known_ones(clients, registry_uri, capsys):
    assert run(["deploy", "--environment", "qa", "--model-uri", registry_uri]) == 1
    error = capsys.readouterr().err
    assert "unknown environment 'qa'" in error and "dev" in error and "request-env" in error


def test_an_azure_error_is_one_line_not_a_traceback(clients, registry_uri, capsys):
    ml_client, _ = clients
    refused = HttpResponseError("AuthorizationFailed: no access\nmore")
    ml_client.fail("online_endpoints.get", refused)
    assert run(["deploy", "--environment", "prod", "--model-uri", registry_uri]) == 1
    error = capsys.readouterr().err.strip()
    assert error == "error: deploy: Azure refused: AuthorizationFailed: no access"


def test_a_malformed_model_uri_is_refused(clients, capsys):
    assert run(["deploy", "--environment", "prod", "--model-uri", "model.pkl"]) == 1
    assert "promote stage" in capsys.readouterr().err


def test_outputs_reach_github_and_azure_devops(clients, registry_uri, tmp_path, capsys):
    output = tmp_path / "github_output"
    argv = ["deploy", "--environment", "prod", "--model-uri", registry_uri]
    assert run(argv, {"GITHUB_OUTPUT": str(output), "TF_BUILD": "True"}) == 0
    assert "deployment=blue" in output.read_text().splitlines()
    assert (
        "##vso[task.setvariable variable=deployment;isOutput=true]blue" in capsys.readouterr().out
    )


# --- train: champion gate -----------------------------------------------------------------------


def test_train_gates_against_the_registry_champion_and_reports_the_winner(
    clients, model_name, capsys
):
    ml_client, registry_client = clients
    registry_client.add_model(model_name, "4")
    registry_client.add_model(model_name, "6")
    ml_client.add_model(model_name, "12", pipeline_job="job-1", reference_data="ref:20250101")
    assert run(["train", "--wait"], {"GITHUB_SHA": "abc123"}) == 0
    (submitted,) = [d["job"] for n, d in ml_client.calls if n == "jobs.create_or_update"]
    evaluate = submitted._to_dict()["jobs"]["evaluate"]["inputs"]
    assert evaluate["champion_model"]["path"] == (
        f"azureml://registries/{REGISTRY}/models/{model_name}/versions/6"
    )
    register = submitted._to_dict()["jobs"]["register"]["inputs"]
    assert register["git_commit"] == "abc123"
    out = capsys.readouterr().out.splitlines()
    assert "promoted=true" in out and f"model_uri=azureml:{model_name}:12" in out


def test_a_candidate_that_loses_is_not_promoted_and_the_run_succeeds(clients, model_name, capsys):
    ml_client, registry_client = clients
    registry_client.add_model(model_name, "6")
    ml_client.add_model(model_name, "11", pipeline_job="an-older-job")
    assert run(["train", "--wait"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "promoted=false" in out and not any(line.startswith("model_uri=") for line in out)


def test_the_first_model_has_no_champion(clients):
    ml_client, _ = clients
    assert run(["train", "--wait"]) == 0
    (submitted,) = [d["job"] for n, d in ml_client.calls if n == "jobs.create_or_update"]
    assert "champion_model" not in submitted._to_dict()["jobs"]["evaluate"]["inputs"]


def test_a_failed_training_step_fails_train(clients, capsys):
    ml_client, _ = clients
    ml_client.fail("jobs.get", "Failed")
    assert run(["train", "--wait"]) == 1
    error = capsys.readouterr().err
    assert "ended Failed" in error and "https://ml.azure.com/runs/job-1" in error


# --- promote: through the registry --------------------------------------------------------------


def test_promote_shares_model_environment_and_reference_data(clients, model_name, capsys):
    ml_client, registry_client = clients
    ml_client.add_model(model_name, "12", pipeline_job="job-9", reference_data="ref:20250101")
    assert run(["promote", "--job-name", "job-9"]) == 0
    shared = {name.split(".")[0]: d for name, d in ml_client.calls if name.endswith(".share")}
    assert set(shared) == {"models", "environments", "data"}
    assert shared["models"]["registry_name"] == REGISTRY
    assert (shared["models"]["name"], shared["models"]["version"]) == (model_name, "12")
    assert shared["data"]["name"] == "ref"
    out = capsys.readouterr().out.splitlines()
    assert f"model_uri=azureml://registries/{REGISTRY}/models/{model_name}/versions/12" in out


def test_promote_is_idempotent(clients, model_name):
    ml_client, registry_client = clients
    ml_client.add_model(model_name, "12", pipeline_job="job-9")
    registry_client.add_model(model_name, "12")
    score = registry.scoring_environment()
    registry_client.add_asset("environments", score.name, score.version)
    assert run(["promote", "--job-name", "job-9"]) == 0
    assert not [name for name, _ in ml_client.calls if name.endswith(".share")]


def test_nothing_to_promote_when_the_job_registered_no_model(clients, capsys):
    assert run(["promote", "--job-name", "job-that-lost"]) == 1
    assert "did not beat the champion" in capsys.readouterr().err


# --- monitor ------------------------------------------------------------------------------------


def test_dev_gets_the_retraining_schedule(clients):
    ml_client, _ = clients
    assert run(["monitor", "--environment", "dev"]) == 0
    (created,) = [
        d["schedule"] for n, d in ml_client.calls if n == "schedules.begin_create_or_update"
    ]
    assert set(created.create_job.jobs) == {"prep", "train", "evaluate", "register"}


def test_prod_monitors_the_live_deployment_against_its_models_reference(
    clients, model_name, registry_uri
):
    ml_client, registry_client = clients
    name = with_live_blue(ml_client)
    ml_client.deployments[(name, "blue")].model = registry_uri
    registry_client.add_model(model_name, "7", reference_data=f"{model_name[:-6]}-reference:42")
    assert run(["monitor", "--environment", "prod"]) == 0
    (monitor,) = [
        d["schedule"] for n, d in ml_client.calls if n == "schedules.begin_create_or_update"
    ]
    assert monitor.create_monitor.monitoring_target.endpoint_deployment_id == f"azureml:{name}:blue"
    drift = next(
        s for s in monitor.create_monitor.monitoring_signals.values() if s.type == "data_drift"
    )
    assert drift.reference_data.input_data.path == (
        f"azureml://registries/{REGISTRY}/data/{model_name[:-6]}-reference/versions/42"
    )


def test_the_drift_alert_is_wired_to_the_retraining_trigger(
    clients, model_name, registry_uri, monkeypatch, capsys
):
    import drift_trigger

    ml_client, registry_client = clients
    eventgrid = FakeEventGridClient()
    monkeypatch.setattr(drift_trigger, "get_eventgrid_client", lambda subscription: eventgrid)
    name = with_live_blue(ml_client)
    ml_client.deployments[(name, "blue")].model = registry_uri
    registry_client.add_model(model_name, "7")
    url = "https://prod-00.logic.azure.com/workflows/x/triggers/manual/run?sig=secret"
    assert run(["monitor", "--environment", "prod"], {"DRIFT_TRIGGER_URL": url}) == 0
    ((scope, _), subscription), = eventgrid.subscriptions.items()
    assert scope.endswith(f"/workspaces/{ENVIRON['AZUREML_WORKSPACE']}")
    assert subscription.destination.endpoint_url == url
    assert subscription.filter.included_event_types == [drift_trigger.RUN_STATUS_CHANGED]
    keys = {f.key: f.values for f in subscription.filter.advanced_filters}
    assert keys["data.RunStatus"] == ["Failed"] and drift_trigger.BREACHED_TAG in keys
    assert "drift_trigger=model-drift-retrain" in capsys.readouterr().out.splitlines()
    # dev trains but serves no real traffic: no drift trigger there.
    assert run(["monitor", "--environment", "dev"], {"DRIFT_TRIGGER_URL": url}) == 0
    assert len(eventgrid.subscriptions) == 1


def test_monitoring_before_any_deployment_names_the_fix(clients, capsys):
    assert run(["monitor", "--environment", "prod"]) == 1
    assert "deploy --environment prod" in capsys.readouterr().err


# --- batch --------------------------------------------------------------------------------------


def test_batch_rollout_makes_the_new_deployment_default_only_after_its_smoke_job(
    clients, registry_uri, model_name
):
    ml_client, registry_client = clients
    registry_client.add_model(model_name, "7", reference_data="ref:1")
    assert run(["deploy-batch", "--environment", "prod", "--model-uri", registry_uri]) == 0
    names = ml_client.names()
    assert (
        names.index("batch_deployments.begin_create_or_update")
        < names.index("batch_endpoints.invoke")
        < names.index("jobs.get")
    )
    defaults = [
        d["default"] for n, d in ml_client.calls if n == "batch_endpoints.begin_create_or_update"
    ]
    assert defaults[-1] == "blue"
    invoke = next(d for n, d in ml_client.calls if n == "batch_endpoints.invoke")
    assert invoke["inputs"]["data"] == f"azureml://registries/{REGISTRY}/data/ref/versions/1"
    (created,) = [d for n, d in ml_client.calls if n == "batch_deployments.begin_create_or_update"]
    assert created["model"] == registry_uri
    (schedule,) = [
        d["schedule"] for n, d in ml_client.calls if n == "schedules.begin_create_or_update"
    ]
    assert schedule.create_job.inputs["model"].path == registry_uri


def test_a_failed_batch_smoke_job_keeps_the_default(clients, registry_uri):
    ml_client, _ = clients
    ml_client.batch[endpoints.load_batch_endpoint("prod").name] = _batch_with_default("blue")
    ml_client.fail("jobs.get", "Failed")
    argv = [
        "deploy-batch",
        "--environment",
        "prod",
        "--model-uri",
        registry_uri,
        "--smoke-data",
        "azureml:sample:1",
    ]
    assert run(argv) == 1
    defaults = [
        d["default"] for n, d in ml_client.calls if n == "batch_endpoints.begin_create_or_update"
    ]
    assert defaults == []
    deleted = [d["name"] for n, d in ml_client.calls if n == "batch_deployments.begin_delete"]
    assert deleted == ["green"]


def _batch_with_default(name: str):
    endpoint = endpoints.load_batch_endpoint("prod")
    endpoint.defaults = {"deployment_name": name}
    return endpoint
