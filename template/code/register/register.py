"""Register the evaluated model, only if it passed the evaluation gate.

In an Azure ML job (MLFLOW_TRACKING_URI starts with `azureml:`) the model is logged to the
job's run and registered in the workspace under `--model-name`, with the test metrics as
tags. Anywhere else nothing is registered. Either way `model_info.json` in `--output-dir`
records the name, version (null when offline), source and metrics, so later steps and tests
can read what happened.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


class NotApproved(RuntimeError):
    """The evaluation report says the model did not pass the gate."""


def running_in_azure_ml() -> bool:
    return os.environ.get("MLFLOW_TRACKING_URI", "").startswith("azureml:")


def register_in_workspace(model_dir: Path, model_name: str, tags: dict[str, str]) -> str:
    """Log the model to the current run and register it; returns the new version."""
    import mlflow
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(str(model_dir))
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, artifact_path=model_name)
        model_uri = f"runs:/{run.info.run_id}/{model_name}"
    version = mlflow.register_model(model_uri, model_name, tags=tags)
    return str(version.version)


def register(
    model_dir: Path,
    evaluation_dir: Path,
    output_dir: Path,
    model_name: str,
    *,
    in_azure: bool | None = None,
) -> dict:
    """Run the whole step; returns what model_info.json holds."""
    if not MODEL_NAME_PATTERN.match(model_name):
        raise ValueError(f"model_name must be letters, digits, '_', '.', '-' (got {model_name!r})")
    if not (model_dir / "MLmodel").exists():
        raise FileNotFoundError(f"{model_dir} is not an MLflow model (no MLmodel file)")
    report = json.loads((evaluation_dir / "metrics.json").read_text())
    if not report.get("passed"):
        raise NotApproved("; ".join(report.get("failures", [])) or "evaluation did not pass")
    metrics = report["candidate"]
    in_azure = running_in_azure_ml() if in_azure is None else in_azure
    version = None
    if in_azure:
        tags = {f"test_{name}": f"{value:.4f}" for name, value in metrics.items()}
        version = register_in_workspace(model_dir, model_name, tags)
    info = {
        "name": model_name,
        "version": version,
        "registered": version is not None,
        "source": str(model_dir),
        "metrics": metrics,
        "gate_metric": report["gate_metric"],
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "model_info.json").write_text(json.dumps(info, indent=2))
    return info


def build_parser() -> argparse.ArgumentParser:
    """The command line; the component in .cloud/components/ calls it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="the train step's model")
    parser.add_argument(
        "--evaluation-dir", type=Path, required=True, help="the evaluate step's output"
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="where model_info.json goes")
    parser.add_argument("--model-name", required=True, help="registered model name")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    info = register(args.model_dir, args.evaluation_dir, args.output_dir, args.model_name)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
