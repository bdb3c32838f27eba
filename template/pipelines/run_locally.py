"""Run the training pipeline on this machine, the way Azure ML runs it.

Each step runs as a separate process in its `code/<step>/` folder with the command line of its
component in .cloud/components/, inputs and outputs filled in with local folders, wired like
pipelines/training_pipeline.py. MLflow writes to ./mlruns unless MLFLOW_TRACKING_URI is set.
Nothing is registered unless MLFLOW_REGISTRY_URI names a registry (pipelines/rehearse.py does
that): the register step then only writes model_info.json.

    python pipelines/run_locally.py --output-dir out            # prep -> ... -> register
    python pipelines/run_locally.py --output-dir out --dry-run  # the command lines only
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

from workspace import CLOUD_DIR

PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]")


class StepFailed(RuntimeError):
    """A step exited non-zero (for evaluate: the model is below a baseline)."""


def fill_command(command: str, values: dict[str, str]) -> list[str]:
    """A component command with Azure ML's substitution applied: `${{inputs.x}}` becomes its
    value, and an optional `$[[...]]` block disappears when an input in it has no value."""

    def optional(match: re.Match) -> str:
        names = [name for _, name in PLACEHOLDER.findall(match.group(1))]
        return match.group(1) if all(name in values for name in names) else ""

    command = OPTIONAL_BLOCK.sub(optional, command)
    return shlex.split(PLACEHOLDER.sub(lambda m: values[m.group(2)], command))


def step_command(step: str, inputs: dict, outputs: dict, cloud_dir: Path = CLOUD_DIR) -> list:
    """The filled-in command line of a step's component (defaults for inputs not given)."""
    from azure.ai.ml import load_component

    component = load_component(source=cloud_dir / "components" / f"{step}.yml")
    unknown = (set(inputs) - set(component.inputs)) | (set(outputs) - set(component.outputs))
    if unknown:
        raise ValueError(f"{step}: the component has no port {', '.join(sorted(unknown))}")
    values = {
        name: str(port.default)
        for name, port in component.inputs.items()
        if port.default is not None
    }
    values.update({name: str(value) for name, value in {**inputs, **outputs}.items()})
    return fill_command(component.command, values)


def plan(
    output_dir: Path,
    *,
    test_size: float = 0.2,
    c: float = 1.0,
    gate_metric: str = "roc_auc",
    model_name: str | None = None,
    champion_metrics: Path | None = None,
    champion_model: Path | None = None,
    lineage: dict[str, str] | None = None,
) -> list[tuple[str, dict, dict]]:
    """(step, inputs, outputs) in order, wired like the Azure ML pipeline."""
    folders = {
        name: output_dir / name
        for name in ("prepared_data", "reference_data", "model", "evaluation", "model_info")
    }
    evaluate_inputs = {
        "model": folders["model"],
        "prepared_data": folders["prepared_data"],
        "metric": gate_metric,
    }
    if champion_metrics:
        evaluate_inputs["baseline_metrics"] = Path(champion_metrics).resolve()
    if champion_model:
        evaluate_inputs["champion_model"] = Path(champion_model).resolve()
    register_inputs = {
        "model": folders["model"],
        "evaluation": folders["evaluation"],
        "c": c,
        "test_size": test_size,
        **(lineage or {}),
    }
    if model_name:
        register_inputs["model_name"] = model_name
    prep_outputs = {
        "prepared_data": folders["prepared_data"],
        "reference_data": folders["reference_data"],
    }
    return [
        ("prep", {"test_size": test_size}, prep_outputs),
        ("train", {"prepared_data": folders["prepared_data"], "c": c}, {"model": folders["model"]}),
        ("evaluate", evaluate_inputs, {"evaluation": folders["evaluation"]}),
        ("register", register_inputs, {"model_info": folders["model_info"]}),
    ]


def run_step(step: str, command: list[str], code_dir: Path, *, in_process: bool = False) -> None:
    """Run one filled-in command in the step's folder; StepFailed when it exits non-zero.

    A separate process is what Azure ML does; in_process calls the script's main() instead
    (the same arguments, without paying for a new interpreter: the project's tests use it).
    """
    if not in_process:
        executable = [sys.executable, *command[1:]] if command[0] == "python" else command
        result = subprocess.run(executable, cwd=code_dir / step, capture_output=True, text=True)
        if result.returncode != 0:
            last_line = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise StepFailed(f"{step} exited with {result.returncode}: {last_line}")
        return
    if str(code_dir / step) not in sys.path:
        sys.path.insert(0, str(code_dir / step))
    try:
        importlib.import_module(step).main(command[2:])
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            status = exit_.code if isinstance(exit_.code, int) else 1
            raise StepFailed(f"{step} exited with {status}: {exit_.code}") from None


def run_locally(
    output_dir: Path,
    cloud_dir: Path = CLOUD_DIR,
    *,
    until: str | None = None,
    in_process: bool = False,
    **parameters,
) -> dict[str, Path]:
    """Run the steps in order (up to and including `until`); returns each output folder.
    Raises StepFailed at the first step that exits non-zero."""
    output_dir = output_dir.resolve()
    steps = plan(output_dir, **parameters)
    if until is not None:
        names = [step for step, _, _ in steps]
        if until not in names:
            raise ValueError(f"until must be one of {', '.join(names)} (got {until!r})")
        steps = steps[: names.index(until) + 1]
    produced = {}
    for step, inputs, outputs in steps:
        command = step_command(step, inputs, outputs, cloud_dir)
        run_step(step, command, cloud_dir.parent / "code", in_process=in_process)
        produced.update(outputs)
    return produced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the training pipeline on this machine.")
    parser.add_argument("--output-dir", type=Path, required=True, help="where step outputs go")
    parser.add_argument("--test-size", type=float, default=0.2, help="share of rows held out")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--gate-metric", default="roc_auc", choices=("accuracy", "f1", "roc_auc"))
    parser.add_argument("--model-name", help="model name recorded in model_info.json")
    parser.add_argument(
        "--champion-metrics", type=Path, help="champion's metrics.json: a second baseline"
    )
    parser.add_argument("--champion-model", type=Path, help="champion's MLflow model folder")
    parser.add_argument(
        "--until", choices=("prep", "train", "evaluate", "register"), help="stop after this step"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print each step's command line; run nothing"
    )
    args = parser.parse_args(argv)
    parameters = {
        "test_size": args.test_size,
        "c": args.c,
        "gate_metric": args.gate_metric,
        "model_name": args.model_name,
        "champion_metrics": args.champion_metrics,
        "champion_model": args.champion_model,
    }
    if args.dry_run:
        for step, inputs, outputs in plan(args.output_dir.resolve(), **parameters):
            print(f"code/{step}$ {shlex.join(step_command(step, inputs, outputs))}")
        return 0
    try:
        produced = run_locally(args.output_dir, until=args.until, **parameters)
    except StepFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, folder in produced.items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
