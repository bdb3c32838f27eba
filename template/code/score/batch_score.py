"""Batch scoring script for the batch endpoint (`init()` once, `run(mini_batch)` per batch).

Each file of the mini-batch is a CSV of raw rows, the columns a client sends (the reference
data asset has that shape). Features are computed with the prep step's own function, as in
score.py. Run as a script, it scores a folder of CSVs the same way (the scheduled batch job).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "prep"))

from prep import TARGET, engineer_features  # noqa: E402

model = None


def load(model_dir: Path):
    import mlflow.sklearn

    candidates = sorted(path.parent for path in model_dir.rglob("MLmodel"))
    if not candidates:
        raise FileNotFoundError(f"no MLflow model (MLmodel file) under {model_dir}")
    return mlflow.sklearn.load_model(str(candidates[0]))


def init() -> None:
    global model
    model = load(Path(os.environ["AZUREML_MODEL_DIR"]))


def score_frame(fitted, raw: pd.DataFrame) -> pd.DataFrame:
    """One row per input row: the prediction and the probability of class 1."""
    features = engineer_features(raw.drop(columns=[TARGET], errors="ignore"))
    features = features[list(fitted.feature_names_in_)]
    return pd.DataFrame(
        {
            "prediction": fitted.predict(features).astype(int),
            "probability": fitted.predict_proba(features)[:, 1].round(6),
        }
    )


def run(mini_batch: list[str]) -> pd.DataFrame:
    if model is None:
        raise RuntimeError("init() has not run")
    scored = []
    # A table folder also holds its MLTable file: only the CSVs are rows.
    for path in (p for p in mini_batch if str(p).endswith(".csv")):
        frame = score_frame(model, pd.read_csv(path))
        frame.insert(0, "file", Path(path).name)
        scored.append(frame)
    return pd.concat(scored, ignore_index=True) if scored else pd.DataFrame()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Score every CSV in a folder with a model.")
    parser.add_argument("--model-dir", type=Path, required=True, help="an MLflow model folder")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder of raw-row CSVs")
    parser.add_argument("--output-dir", type=Path, required=True, help="predictions.csv goes here")
    args = parser.parse_args(argv)
    fitted = load(args.model_dir)
    files = sorted(str(path) for path in args.data_dir.rglob("*.csv"))
    global model
    model = fitted
    args.output_dir.mkdir(parents=True, exist_ok=True)
    run(files).to_csv(args.output_dir / "predictions.csv", index=False)


if __name__ == "__main__":
    main()
