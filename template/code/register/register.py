"""Register the candidate, only if evaluation said it beats the champion, with its lineage.

Where it registers: in an Azure ML job (MLFLOW_TRACKING_URI starts with `azureml:`) the
workspace's model registry; when MLFLOW_REGISTRY_URI is set (the local rehearsal sets it to
the project's one local MLflow store) that registry. Anywhere else nothing is registered.

The registered version carries its lineage as tags: git commit, pipeline job, training data
and reference data assets (name:version), the training parameters and the test metrics, and
the champion it beat. Either way `model_info.json` in `--output-dir` records what happened
(`registered`, `version`, `reason`), so CI and tests can read it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def registry_configured() -> bool:
    """An Azure ML job, or an explicitly chosen MLflow model registry."""
    return os.environ.get("MLFLOW_TRACKING_URI", "").startswith("azureml:") or bool(
        os.environ.get("MLFLOW_REGISTRY_URI")
    )


def pipeline_job() -> str:
    """The pipeline job this step runs in (Azure ML sets the root run id); `local` otherwise."""
    return os.environ.get("AZUREML_ROOT_RUN_ID") or os.environ.get("PIPELINE_JOB", "local")


def lineage_tags(report: dict, lineage: dict[str, str]) -> dict[str, str]:
    """The tags a registered version carries: where it came from and how good it is."""
    tags = {key: str(value) for key, value in lineage.items() if value not in (None, "")}
    tags["pipeline_job"] = tags.get("pipeline_job") or pipeline_job()
    tags["gate_metric"] = report["gate_metric"]
    tags["champion"] = report.get("champion_verdict", "")
    tags.update({f"test_{name}": f"{value:.4f}" for name, value in report["candidate"].items()})
    return tags


def register_with_mlflow(model_dir: Path, model_name: str, tags: dict[str, str]) -> str:
    """Log the model to a run and register it in the configured registry; the new version."""
    import mlflow
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(str(model_dir))
    with mlflow.start_run() as run:
        # In an Azure ML pipeline the step's run is a child of the pipeline job's run.
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent and tags.get("pipeline_job") in (None, "local"):
            tags = {**tags, "pipeline_job": parent}
        mlflow.set_tags({f"lineage.{key}": value for key, value in tags.items()})
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
    lineage: dict[str, str] | None = None,
    in_registry: bool | None = None,
) -> dict:
    """Run the whole step; returns what model_info.json holds."""
    if not MODEL_NAME_PATTERN.match(model_name):
        raise ValueError(f"model_name must be letters, digits, '_', '.', '-' (got {model_name!r})")
    if not (model_dir / "MLmodel").exists():
        raise FileNotFoundError(f"{model_dir} is not an MLflow model (no MLmodel file)")
    report = json.loads((evaluation_dir / "metrics.json").read_text())
    approved = report.get("promote", report.get("passed", False))
    reason = "; ".join(report.get("failures") or []) or (
        "" if approved else report.get("champion_verdict", "evaluation did not pass")
    )
    tags = lineage_tags(report, lineage or {}) if "candidate" in report else {}
    in_registry = registry_configured() if in_registry is None else in_registry
    version = None
    if approved and in_registry:
        version = register_with_mlflow(model_dir, model_name, tags)
    info = {
        "name": model_name,
        "version": version,
        "registered": version is not None,
        "approved": bool(approved),
        "reason": reason or report.get("champion_verdict", "passed"),
        "source": str(model_dir),
        "metrics": report.get("candidate", {}),
        "gate_metric": report.get("gate_metric"),
        "tags": tags,
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
    parser.add_argument("--git-commit", default="", help="lineage: the commit that trained it")
    parser.add_argument("--training-data", default="", help="lineage: training data name:version")
    parser.add_argument(
        "--reference-data", default="", help="lineage: drift reference name:version"
    )
    parser.add_argument("--c", default="", help="lineage: the train step's C")
    parser.add_argument("--test-size", default="", help="lineage: the prep step's test size")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    lineage = {
        "git_commit": args.git_commit,
        "training_data": args.training_data,
        "reference_data": args.reference_data,
        "param_c": args.c,
        "param_test_size": args.test_size,
    }
    info = register(
        args.model_dir, args.evaluation_dir, args.output_dir, args.model_name, lineage=lineage
    )
    print(json.dumps({key: info[key] for key in ("name", "version", "registered", "reason")}))


if __name__ == "__main__":
    main()
