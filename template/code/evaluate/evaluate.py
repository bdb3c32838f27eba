"""Evaluate the trained model on the test split and stop the pipeline if it is not good enough.

Baselines: a majority-class model fitted on the same training data, and, when
`--baseline-metrics` is given, the current champion's metrics (a metrics.json written by an
earlier run of this step). The candidate must reach every baseline on the gate metric;
otherwise this step exits non-zero, so the register step never runs.

Writes `metrics.json` into `--output-dir` either way, so a failed gate can be inspected.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

METRICS = ("accuracy", "f1", "roc_auc")

#: Local runs only: in Azure ML the job decides the experiment.
LOCAL_EXPERIMENT = "local-training"


class ModelBelowBaseline(RuntimeError):
    """The candidate scores below a baseline on the gate metric."""


def configure_tracking(local_store: Path = Path("mlruns")) -> str:
    """Use MLFLOW_TRACKING_URI when set (Azure ML sets it); otherwise a local file store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or local_store.resolve().as_uri()
    if uri.startswith("file:"):
        # MLflow 3 only accepts a file store when asked to explicitly.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        if not (os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID")):
            mlflow.set_experiment(LOCAL_EXPERIMENT)
    return uri


def load_split(data_dir: Path, part: str) -> tuple[pd.DataFrame, pd.Series]:
    schema = json.loads((data_dir / "schema.json").read_text())
    frame = pd.read_csv(data_dir / f"{part}.csv")
    return frame[schema["features"]], frame[schema["target"]]


def score(model, features: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    """accuracy, f1 and ROC AUC of a fitted classifier."""
    predictions = model.predict(features)
    probabilities = model.predict_proba(features)[:, 1]
    return {
        "accuracy": float(accuracy_score(target, predictions)),
        "f1": float(f1_score(target, predictions, zero_division=0)),
        "roc_auc": float(roc_auc_score(target, probabilities)),
    }


def majority_baseline(data_dir: Path) -> dict[str, float]:
    """Metrics of always predicting the training set's most frequent class."""
    features, target = load_split(data_dir, "train")
    dummy = DummyClassifier(strategy="most_frequent").fit(features, target)
    return score(dummy, *load_split(data_dir, "test"))


def gate(
    candidate: dict[str, float],
    baselines: dict[str, dict[str, float]],
    metric: str = "roc_auc",
    tolerance: float = 0.0,
) -> list[str]:
    """Every baseline the candidate falls below on `metric`, as readable lines."""
    return [
        f"{metric} {candidate[metric]:.4f} is below the {name} baseline {values[metric]:.4f}"
        for name, values in baselines.items()
        if candidate[metric] < values[metric] - tolerance
    ]


def evaluate(
    model_dir: Path,
    data_dir: Path,
    output_dir: Path,
    baseline_metrics: Path | None = None,
    metric: str = "roc_auc",
    tolerance: float = 0.0,
) -> dict:
    """Run the whole step; raises ModelBelowBaseline after writing metrics.json."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)} (got {metric})")
    model = mlflow.sklearn.load_model(str(model_dir))
    candidate = score(model, *load_split(data_dir, "test"))
    baselines = {"majority": majority_baseline(data_dir)}
    if baseline_metrics is not None:
        champion = json.loads(baseline_metrics.read_text())
        # Either an earlier metrics.json of this step or a flat {"roc_auc": ...} mapping.
        baselines["champion"] = champion.get("candidate", champion)
    failures = gate(candidate, baselines, metric=metric, tolerance=tolerance)
    report = {
        "gate_metric": metric,
        "tolerance": tolerance,
        "candidate": candidate,
        "baselines": baselines,
        "passed": not failures,
        "failures": failures,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    configure_tracking()
    with mlflow.start_run():
        mlflow.log_metrics({f"test_{name}": value for name, value in candidate.items()})
        mlflow.log_param("gate_passed", not failures)
    if failures:
        raise ModelBelowBaseline("; ".join(failures))
    return report


def build_parser() -> argparse.ArgumentParser:
    """The command line; the component in .cloud/components/ calls it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="the train step's model")
    parser.add_argument("--data-dir", type=Path, required=True, help="the prep step's output")
    parser.add_argument("--output-dir", type=Path, required=True, help="where metrics.json goes")
    parser.add_argument("--baseline-metrics", type=Path, help="champion metrics.json (optional)")
    parser.add_argument("--metric", default="roc_auc", choices=METRICS, help="gate metric")
    parser.add_argument("--tolerance", type=float, default=0.0, help="allowed shortfall")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        report = evaluate(
            args.model_dir,
            args.data_dir,
            args.output_dir,
            baseline_metrics=args.baseline_metrics,
            metric=args.metric,
            tolerance=args.tolerance,
        )
    except ModelBelowBaseline as error:
        sys.exit(f"evaluation failed: {error}")
    print(json.dumps(report["candidate"]))


if __name__ == "__main__":
    main()
