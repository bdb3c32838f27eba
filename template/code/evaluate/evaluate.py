"""Evaluate the candidate on the test split against the baseline and the champion.

Two questions, two outcomes:
- Is the candidate a working model? It must reach the majority-class baseline (a model fitted
  on the same training data) on the gate metric; otherwise this step exits non-zero and the
  pipeline fails: something is broken.
- Is it better than what serves today? `--champion-model` (the registry's latest promoted
  version, scored here on the same test split) or `--baseline-metrics` (a champion's
  metrics.json) is the champion. The candidate must beat it by more than `--min-improvement`.
  A candidate that does not is a normal outcome, not an error: the step succeeds with
  `"promote": false`, and the register step registers nothing.

Writes `metrics.json` into `--output-dir` either way, so every verdict can be inspected.
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


def project_store() -> Path:
    """The project's one local MLflow store (`<project>/mlruns`: runs and the local model
    registry), whatever folder a step runs in. In Azure ML the job sets MLFLOW_TRACKING_URI."""
    return Path(__file__).resolve().parents[2] / "mlruns"


class ModelBelowBaseline(RuntimeError):
    """The candidate scores below a baseline on the gate metric."""


def configure_tracking(local_store: Path | None = None) -> str:
    """Use MLFLOW_TRACKING_URI when set (Azure ML sets it); otherwise the local file store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or (local_store or project_store()).as_uri()
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


def beats(candidate: dict[str, float], champion: dict[str, float] | None, metric: str,
          min_improvement: float = 0.0) -> str | None:
    """None when the candidate beats the champion (or there is none); else the reason."""
    if champion is None or candidate[metric] > champion[metric] + min_improvement:
        return None
    return (
        f"{metric} {candidate[metric]:.4f} does not beat the champion's "
        f"{champion[metric]:.4f} by more than {min_improvement:g}"
    )


def champion_metrics(
    data_dir: Path, champion_model: Path | None, baseline_metrics: Path | None
) -> dict[str, float] | None:
    """The champion scored on this test split, or its recorded metrics; None without one."""
    if champion_model is not None:
        return score(mlflow.sklearn.load_model(str(champion_model)), *load_split(data_dir, "test"))
    if baseline_metrics is not None:
        recorded = json.loads(baseline_metrics.read_text())
        # Either an earlier metrics.json of this step or a flat {"roc_auc": ...} mapping.
        return recorded.get("candidate", recorded)
    return None


def evaluate(
    model_dir: Path,
    data_dir: Path,
    output_dir: Path,
    baseline_metrics: Path | None = None,
    metric: str = "roc_auc",
    tolerance: float = 0.0,
    champion_model: Path | None = None,
    min_improvement: float = 0.0,
) -> dict:
    """Run the whole step; raises ModelBelowBaseline (after writing metrics.json) for a model
    below the majority baseline. Losing to the champion is reported, not raised."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)} (got {metric})")
    model = mlflow.sklearn.load_model(str(model_dir))
    candidate = score(model, *load_split(data_dir, "test"))
    baselines = {"majority": majority_baseline(data_dir)}
    failures = gate(candidate, baselines, metric=metric, tolerance=tolerance)
    champion = champion_metrics(data_dir, champion_model, baseline_metrics)
    if champion is not None:
        baselines["champion"] = champion
    verdict = beats(candidate, champion, metric, min_improvement)
    report = {
        "gate_metric": metric,
        "tolerance": tolerance,
        "min_improvement": min_improvement,
        "candidate": candidate,
        "baselines": baselines,
        "passed": not failures,
        "failures": failures,
        "promote": not failures and verdict is None,
        "champion_verdict": verdict or ("no champion yet" if champion is None else "beaten"),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(report, indent=2))
    configure_tracking()
    with mlflow.start_run():
        mlflow.log_metrics({f"test_{name}": value for name, value in candidate.items()})
        mlflow.log_params({"gate_passed": not failures, "promote": report["promote"]})
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
    parser.add_argument("--champion-model", type=Path, help="champion MLflow model (optional)")
    parser.add_argument(
        "--min-improvement", type=float, default=0.0, help="how much the champion must be beaten"
    )
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
            champion_model=args.champion_model,
            min_improvement=args.min_improvement,
        )
    except ModelBelowBaseline as error:
        sys.exit(f"evaluation failed: {error}")
    print(json.dumps({"promote": report["promote"], "champion": report["champion_verdict"]}))


if __name__ == "__main__":
    main()
