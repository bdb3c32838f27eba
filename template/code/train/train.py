"""Train the classifier on the prepared data and save it as an MLflow model.

Reads `train.csv` and `schema.json` from `--data-dir` (the prep step's output), fits a scaled
logistic regression, logs parameters and training metrics with MLflow, and saves the model in
MLflow format to `--model-dir`.

In Azure ML the job sets MLFLOW_TRACKING_URI to the workspace. Run locally, metrics go to a
file store (the project's `mlruns/`, or whatever MLFLOW_TRACKING_URI says); no tracking server
is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

#: Local runs only: in Azure ML the job decides the experiment.
LOCAL_EXPERIMENT = "local-training"


def project_store() -> Path:
    """The project's one local MLflow store (`<project>/mlruns`: runs and the local model
    registry), whatever folder a step runs in. In Azure ML the job sets MLFLOW_TRACKING_URI."""
    return Path(__file__).resolve().parents[2] / "mlruns"


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
    """Features and target of `train` or `test`, in the column order schema.json fixes."""
    schema = json.loads((data_dir / "schema.json").read_text())
    frame = pd.read_csv(data_dir / f"{part}.csv")
    return frame[schema["features"]], frame[schema["target"]]


def build_model(c: float = 1.0, max_iter: int = 1000, seed: int = 42) -> Pipeline:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=c, max_iter=max_iter, random_state=seed)),
        ]
    )


def fit(
    features: pd.DataFrame, target: pd.Series, c: float = 1.0, max_iter: int = 1000
) -> Pipeline:
    """Fit the model; a solver that does not converge is an error, not a warning."""
    model = build_model(c=c, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(features, target)
    probabilities = model.predict_proba(features)
    if not np.isfinite(probabilities).all():
        raise ValueError("the model predicts NaN or infinite probabilities")
    return model


def train(data_dir: Path, model_dir: Path, c: float = 1.0, max_iter: int = 1000) -> dict:
    """Run the whole step; returns the training metrics."""
    features, target = load_split(data_dir, "train")
    configure_tracking()
    with mlflow.start_run():
        mlflow.log_params({"C": c, "max_iter": max_iter, "rows": len(features)})
        model = fit(features, target, c=c, max_iter=max_iter)
        probabilities = model.predict_proba(features)[:, 1]
        metrics = {
            "train_accuracy": float(accuracy_score(target, model.predict(features))),
            "train_log_loss": float(log_loss(target, probabilities)),
            "solver_iterations": int(model.named_steps["classify"].n_iter_.max()),
        }
        mlflow.log_metrics(metrics)
    example = features.head(5)
    mlflow.sklearn.save_model(
        model,
        str(model_dir),
        # cloudpickle loads with every MLflow version the Azure environments use.
        serialization_format="cloudpickle",
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
        # Listed instead of inferred (inference starts a subprocess and guesses); the versions
        # that trained the model are the ones that can load it.
        pip_requirements=[
            f"scikit-learn=={sklearn.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
        ],
    )
    return metrics


def build_parser() -> argparse.ArgumentParser:
    """The command line; the component in .cloud/components/ calls it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the prep step's output")
    parser.add_argument("--model-dir", type=Path, required=True, help="where the model goes")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max-iter", type=int, default=1000, help="solver iteration limit")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    print(json.dumps(train(args.data_dir, args.model_dir, c=args.c, max_iter=args.max_iter)))


if __name__ == "__main__":
    main()
