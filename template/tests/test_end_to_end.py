"""The steps chain end to end, run with the exact command lines of the Azure ML components.

pipelines/run_locally.py fills each component's `command` the way Azure ML does (inputs and
outputs become local folders, optional inputs without a value are dropped) and runs it as a
process in the step's folder. A renamed option, a wrong output name or a step that does not
write what the next one reads fails here, not in the cloud.
"""

import importlib
import json
from pathlib import Path

import pandas as pd
import pytest
from azure.ai.ml import load_component

from run_locally import StepFailed, fill_command, plan, run_locally, run_step, step_command

CLOUD_DIR = Path(__file__).resolve().parents[1] / ".cloud"
CODE_DIR = CLOUD_DIR.parent / "code"
STEPS = ["prep", "train", "evaluate", "register"]


def test_prep_train_evaluate_register_chain_locally(tmp_path):
    produced = run_locally(tmp_path, in_process=True)
    info = json.loads((produced["model_info"] / "model_info.json").read_text())
    evaluation = json.loads((produced["evaluation"] / "metrics.json").read_text())
    component = load_component(source=CLOUD_DIR / "components" / "register.yml")
    assert info["name"] == component.inputs["model_name"].default
    assert info["registered"] is False  # no Azure here
    assert info["metrics"] == evaluation["candidate"]
    assert evaluation["passed"] is True
    assert (produced["model"] / "MLmodel").is_file()


def test_a_model_that_loses_to_the_champion_is_not_registered(tmp_path):
    champion = tmp_path / "champion.json"
    champion.write_text(json.dumps({"accuracy": 1.0, "f1": 1.0, "roc_auc": 1.0}))
    produced = run_locally(tmp_path / "out", champion_metrics=champion, in_process=True)
    info = json.loads((produced["model_info"] / "model_info.json").read_text())
    assert info["registered"] is False and info["approved"] is False
    assert "champion" in info["reason"]


def test_the_chain_stops_at_evaluate_when_the_model_is_broken(tmp_path, monkeypatch):
    import evaluate

    # A model no better than always guessing the majority class: a failed step.
    perfect = {"accuracy": 1.0, "f1": 1.0, "roc_auc": 1.0}
    monkeypatch.setattr(evaluate, "majority_baseline", lambda data_dir: perfect)
    with pytest.raises(StepFailed, match="evaluate exited with 1: .*majority"):
        run_locally(tmp_path / "out", in_process=True)
    assert (tmp_path / "out" / "evaluation" / "metrics.json").is_file()
    assert not (tmp_path / "out" / "model_info").exists(), "register ran after a failed gate"


def test_prep_writes_the_raw_training_rows_as_the_reference_data(tmp_path):
    from prep import load_raw_data

    produced = run_locally(tmp_path, until="prep", in_process=True)
    reference = pd.read_csv(produced["reference_data"] / "train.csv")
    assert list(reference.columns) == list(load_raw_data().columns), "clients send raw columns"
    assert len(reference) == len(pd.read_csv(produced["prepared_data"] / "train.csv"))
    assert "train.csv" in (produced["reference_data"] / "MLTable").read_text()


def test_a_step_runs_as_its_own_process_in_its_folder(tmp_path):
    # What Azure ML does: `python prep.py ...` in code/prep, a fresh interpreter.
    produced = run_locally(tmp_path, until="prep")
    assert list(produced) == ["prepared_data", "reference_data"]
    assert (produced["prepared_data"] / "train.csv").is_file()
    with pytest.raises(StepFailed, match="prep exited with 2: .*required: --output-dir"):
        run_step("prep", ["python", "prep.py"], CODE_DIR)
    with pytest.raises(ValueError, match="until"):
        run_locally(tmp_path, until="deploy")


def test_the_local_plan_feeds_the_same_inputs_as_the_azure_ml_pipeline(tmp_path):
    from training_pipeline import build_pipeline

    job = build_pipeline()._to_dict()["jobs"]
    for step, inputs, _ in plan(tmp_path, model_name="m"):
        assert set(inputs) == set(job[step]["inputs"]), step


def test_optional_inputs_are_passed_only_when_given():
    command = "python evaluate.py $[[--baseline-metrics ${{inputs.baseline_metrics}}]] --x 1"
    assert fill_command(command, {}) == ["python", "evaluate.py", "--x", "1"]
    assert fill_command(command, {"baseline_metrics": "m.json"})[2:4] == [
        "--baseline-metrics",
        "m.json",
    ]


def test_an_unknown_port_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no port"):
        step_command("train", {"prepared": tmp_path}, {"model": tmp_path})


@pytest.mark.parametrize("step", STEPS)
def test_every_component_command_is_accepted_by_its_script(step, tmp_path):
    _, inputs, outputs = next(item for item in plan(tmp_path) if item[0] == step)
    argv = step_command(step, inputs, outputs)
    assert argv[:2] == ["python", f"{step}.py"]
    parsed = importlib.import_module(step).build_parser().parse_args(argv[2:])
    for name, value in outputs.items():
        assert Path(value) in vars(parsed).values(), f"{step}: output {name} not passed"


@pytest.mark.parametrize("step", STEPS)
def test_every_component_runs_its_own_folder(step):
    component = load_component(source=CLOUD_DIR / "components" / f"{step}.yml")
    code = (CLOUD_DIR / "components" / component.code).resolve()
    assert code == (CLOUD_DIR.parent / "code" / step).resolve()
    assert (code / f"{step}.py").is_file()


def test_prep_reads_a_raw_csv_when_given_one(tmp_path):
    from prep import load_raw_data
    from prep import main as prep_main

    raw = tmp_path / "raw.csv"
    load_raw_data().head(120).to_csv(raw, index=False)
    outputs = {"prepared_data": tmp_path / "out", "reference_data": tmp_path / "reference"}
    argv = step_command("prep", {"raw_data": raw}, outputs)
    prep_main(argv[2:])
    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    assert sum(schema["rows"].values()) == 120
    assert len(pd.read_csv(tmp_path / "out" / "test.csv")) == 24
