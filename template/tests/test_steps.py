"""Each step writes the artifacts it promises; evaluate and register refuse a bad model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evaluate import ModelBelowBaseline, evaluate, gate
from evaluate import main as evaluate_main
from prep import TARGET, engineer_features, load_raw_data
from register import register
from train import train


def test_prep_writes_the_split_its_schema_and_an_mltable(prepared_dir):
    schema = json.loads((prepared_dir / "schema.json").read_text())
    train_rows = pd.read_csv(prepared_dir / "train.csv")
    test_rows = pd.read_csv(prepared_dir / "test.csv")
    assert schema["target"] == TARGET
    assert TARGET not in schema["features"]
    assert list(train_rows.columns) == list(test_rows.columns)
    assert set(schema["features"]) | {TARGET} == set(train_rows.columns)
    assert schema["rows"] == {"train": len(train_rows), "test": len(test_rows)}
    assert len(train_rows) + len(test_rows) == len(load_raw_data())
    assert "train.csv" in (prepared_dir / "MLTable").read_text()


def test_evaluate_passes_a_good_model_and_reports_both_sides(evaluation_dir):
    report = json.loads((evaluation_dir / "metrics.json").read_text())
    assert report["passed"] is True
    assert report["failures"] == []
    majority = report["baselines"]["majority"]
    assert majority["roc_auc"] == pytest.approx(0.5)
    assert report["candidate"]["roc_auc"] > 0.95
    assert report["candidate"]["accuracy"] > majority["accuracy"]


def test_gate_lists_every_baseline_the_candidate_misses():
    failures = gate(
        {"roc_auc": 0.8},
        {"majority": {"roc_auc": 0.5}, "champion": {"roc_auc": 0.9}},
        metric="roc_auc",
    )
    assert len(failures) == 1
    assert "champion" in failures[0]
    assert gate({"roc_auc": 0.88}, {"champion": {"roc_auc": 0.9}}, tolerance=0.05) == []


@pytest.fixture(scope="module")
def inverted_model(prepared_dir, tmp_path_factory):
    """A model trained on flipped labels: worse than always guessing the majority class."""
    flipped = tmp_path_factory.mktemp("flipped")
    for name in ("schema.json", "test.csv"):
        (flipped / name).write_bytes((prepared_dir / name).read_bytes())
    rows = pd.read_csv(prepared_dir / "train.csv")
    rows[TARGET] = 1 - rows[TARGET]
    rows.to_csv(flipped / "train.csv", index=False)
    model = flipped / "model"
    train(flipped, model)
    return model


def test_evaluate_fails_a_model_below_the_majority_baseline(inverted_model, prepared_dir, tmp_path):
    with pytest.raises(ModelBelowBaseline, match="majority"):
        evaluate(inverted_model, prepared_dir, tmp_path)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["passed"] is False
    assert report["candidate"]["roc_auc"] < 0.5


def test_the_evaluate_command_exits_non_zero_when_the_gate_fails(
    inverted_model, prepared_dir, tmp_path
):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(
            [
                "--model-dir",
                str(inverted_model),
                "--data-dir",
                str(prepared_dir),
                "--output-dir",
                str(tmp_path),
            ]
        )
    assert exit_info.value.code not in (0, None)
    assert "below" in str(exit_info.value.code)


def test_a_candidate_that_does_not_beat_the_champion_is_not_promoted(
    model_dir, prepared_dir, tmp_path
):
    champion = tmp_path / "champion.json"
    champion.write_text(json.dumps({"accuracy": 1.0, "f1": 1.0, "roc_auc": 1.0}))
    report = evaluate(model_dir, prepared_dir, tmp_path / "out", baseline_metrics=champion)
    assert report["passed"] is True, "losing to the champion is not a broken model"
    assert report["promote"] is False
    assert "does not beat the champion" in report["champion_verdict"]


def test_a_tie_with_the_champion_model_is_not_a_win(model_dir, prepared_dir, tmp_path):
    # The champion is the same model, scored on the same split: equal, so not promoted.
    report = evaluate(model_dir, prepared_dir, tmp_path, champion_model=model_dir)
    assert report["baselines"]["champion"] == report["candidate"]
    assert report["promote"] is False


def test_a_candidate_that_beats_the_champion_model_is_promoted(
    model_dir, inverted_model, prepared_dir, tmp_path
):
    report = evaluate(model_dir, prepared_dir, tmp_path, champion_model=inverted_model)
    assert report["promote"] is True and report["champion_verdict"] == "beaten"


def test_register_records_the_lineage_of_a_winner(model_dir, evaluation_dir, tmp_path):
    lineage = {
        "git_commit": "abc123",
        "training_data": "raw:3",
        "reference_data": "ref:7",
        "param_c": "1.0",
    }
    info = register(
        model_dir, evaluation_dir, tmp_path, "my-model", lineage=lineage, in_registry=False
    )
    tags = info["tags"]
    assert {key: tags[key] for key in lineage} == lineage
    assert tags["pipeline_job"] == "local"
    assert float(tags["test_roc_auc"]) == pytest.approx(info["metrics"]["roc_auc"], abs=1e-4)


def test_register_registers_a_winner_in_the_chosen_mlflow_registry(
    model_dir, evaluation_dir, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "registry").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    info = register(
        model_dir, evaluation_dir, tmp_path / "out", "my-model", lineage={"git_commit": "abc123"}
    )
    assert info["registered"] is True
    (version,) = MlflowClient(store, store).search_model_versions("name = 'my-model'")
    assert str(version.version) == info["version"]
    assert version.tags["git_commit"] == "abc123"


def test_register_offline_records_the_model_without_registering(
    model_dir, evaluation_dir, tmp_path
):
    info = register(model_dir, evaluation_dir, tmp_path, "my-model", in_registry=False)
    written = json.loads((tmp_path / "model_info.json").read_text())
    evaluation = json.loads((evaluation_dir / "metrics.json").read_text())
    assert written == info
    assert written["name"] == "my-model"
    assert written["registered"] is False and written["version"] is None
    assert written["metrics"] == evaluation["candidate"]


def test_register_registers_nothing_for_a_model_that_did_not_win(model_dir, tmp_path):
    failed = tmp_path / "evaluation"
    failed.mkdir()
    report = {
        "passed": True,
        "promote": False,
        "failures": [],
        "gate_metric": "roc_auc",
        "candidate": {"roc_auc": 0.9},
        "champion_verdict": "does not beat the champion",
    }
    (failed / "metrics.json").write_text(json.dumps(report))
    info = register(model_dir, failed, tmp_path / "out", "my-model", in_registry=True)
    assert info["registered"] is False and info["version"] is None
    assert "does not beat the champion" in info["reason"]
    assert json.loads((tmp_path / "out" / "model_info.json").read_text()) == info


@pytest.mark.parametrize("name", ["", "has space", "-leading-dash", "x" * 256])
def test_register_rejects_invalid_model_names(model_dir, evaluation_dir, tmp_path, name):
    with pytest.raises(ValueError, match="model_name"):
        register(model_dir, evaluation_dir, tmp_path, name, in_registry=False)


def test_score_serves_raw_requests_like_the_trained_model(model_dir, monkeypatch):
    import mlflow.sklearn

    import score

    # Azure ML mounts the registered model folder one level below AZUREML_MODEL_DIR.
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir.parent))
    score.init()
    raw = load_raw_data().drop(columns=[TARGET]).head(8)
    response = score.run(json.dumps({"data": raw.to_dict(orient="records")}))

    model = mlflow.sklearn.load_model(str(model_dir))
    features = engineer_features(raw)[list(model.feature_names_in_)]
    assert response["predictions"] == [int(p) for p in model.predict(features)]
    assert len(response["probabilities"]) == 8
    assert all(0.0 <= p <= 1.0 for p in response["probabilities"])


@pytest.mark.parametrize("request_body", ['{"data": []}', '{"rows": [{}]}', "[1, 2]"])
def test_score_rejects_malformed_requests(model_dir, monkeypatch, request_body):
    import score

    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir.parent))
    score.init()
    with pytest.raises(ValueError, match="request must be"):
        score.run(request_body)


def test_score_finds_the_prep_features_by_itself(tmp_path):
    # The deployment uploads code/ and runs score/score.py: nothing else puts prep on sys.path.
    score_py = Path(__file__).resolve().parents[1] / "code" / "score" / "score.py"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import runpy, sys; print(runpy.run_path(sys.argv[1])['engineer_features'].__module__)"
    result = subprocess.run(
        [sys.executable, "-c", probe, str(score_py)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "prep"
