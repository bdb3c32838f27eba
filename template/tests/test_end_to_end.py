"""The steps chain end to end, run with the exact command lines of the Azure ML components.

Each component's `command` is filled in the way Azure ML fills it (inputs and outputs become
local folders, optional inputs without a value are dropped) and handed to the step's own
`main()`. A renamed option, a wrong output name or a step that does not write what the next
one reads fails here, not in the cloud.
"""

import importlib
import json
import re
import shlex
from pathlib import Path

import pytest
from azure.ai.ml import load_component

CLOUD_DIR = Path(__file__).resolve().parents[1] / ".cloud"

PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]")


def fill_command(command: str, values: dict[str, str]) -> list[str]:
    """Azure ML's substitution: optional blocks whose inputs have no value disappear."""

    def optional(match: re.Match) -> str:
        names = [name for _, name in PLACEHOLDER.findall(match.group(1))]
        return match.group(1) if all(name in values for name in names) else ""

    command = OPTIONAL_BLOCK.sub(optional, command)
    return shlex.split(PLACEHOLDER.sub(lambda m: values[m.group(2)], command))


def run_component(step: str, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    component = load_component(source=CLOUD_DIR / "components" / f"{step}.yml")
    values = {
        name: str(spec.default)
        for name, spec in component.inputs.items()
        if spec.default is not None
    }
    values.update(inputs)
    values.update(outputs)
    assert set(outputs) == set(component.outputs), f"{step}: outputs differ from the component"
    argv = fill_command(component.command, values)
    assert argv[:2] == ["python", f"{step}.py"], argv
    importlib.import_module(step).main(argv[2:])


def test_prep_train_evaluate_register_chain_locally(tmp_path, capsys):
    folders = {name: tmp_path / name for name in ("prepared", "model", "evaluation", "info")}
    run_component("prep", {}, {"prepared_data": str(folders["prepared"])})
    run_component(
        "train", {"prepared_data": str(folders["prepared"])}, {"model": str(folders["model"])}
    )
    run_component(
        "evaluate",
        {"model": str(folders["model"]), "prepared_data": str(folders["prepared"])},
        {"evaluation": str(folders["evaluation"])},
    )
    run_component(
        "register",
        {"model": str(folders["model"]), "evaluation": str(folders["evaluation"])},
        {"model_info": str(folders["info"])},
    )
    info = json.loads((folders["info"] / "model_info.json").read_text())
    evaluation = json.loads((folders["evaluation"] / "metrics.json").read_text())
    component = load_component(source=CLOUD_DIR / "components" / "register.yml")
    assert info["name"] == component.inputs["model_name"].default
    assert info["registered"] is False  # no Azure here
    assert info["metrics"] == evaluation["candidate"]
    assert evaluation["passed"] is True


def test_optional_inputs_are_passed_when_given(tmp_path):
    command = "python evaluate.py $[[--baseline-metrics ${{inputs.baseline_metrics}}]] --x 1"
    assert fill_command(command, {}) == ["python", "evaluate.py", "--x", "1"]
    assert fill_command(command, {"baseline_metrics": "m.json"})[2:4] == [
        "--baseline-metrics",
        "m.json",
    ]


def test_prep_reads_a_raw_csv_when_given_one(tmp_path):
    from prep import load_raw_data

    raw = tmp_path / "raw.csv"
    load_raw_data().head(120).to_csv(raw, index=False)
    run_component("prep", {"raw_data": str(raw)}, {"prepared_data": str(tmp_path / "out")})
    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    assert sum(schema["rows"].values()) == 120


@pytest.mark.parametrize("step", ["prep", "train", "evaluate", "register"])
def test_every_component_runs_its_own_folder(step):
    component = load_component(source=CLOUD_DIR / "components" / f"{step}.yml")
    code = (CLOUD_DIR / "components" / component.code).resolve()
    assert code == (CLOUD_DIR.parent / "code" / step).resolve()
    assert (code / f"{step}.py").is_file()
