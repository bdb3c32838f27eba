"""Online scoring script for the managed online deployment (`init()` once, `run()` per request).

The deployment uploads the whole `code/` folder, so this script computes features with the
very function the prep step used (`code/prep/prep.py`).

Request:  {"data": [{"mean radius": 17.99, "mean texture": 10.38, ...}, ...]}
Response: {"predictions": [0, ...], "probabilities": [0.02, ...]}

Model inputs are collected for drift monitoring when `azureml-ai-monitoring` is installed
(the score environment installs it; local runs and tests do not need it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "prep"))

from prep import engineer_features  # noqa: E402

model = None
inputs_collector = None


def find_model_dir(root: Path) -> Path:
    """The folder holding the MLmodel file: Azure ML mounts the model one level down."""
    candidates = sorted(path.parent for path in root.rglob("MLmodel"))
    if not candidates:
        raise FileNotFoundError(f"no MLflow model (MLmodel file) under {root}")
    return candidates[0]


def init() -> None:
    global model, inputs_collector
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(str(find_model_dir(Path(os.environ["AZUREML_MODEL_DIR"]))))
    try:
        from azureml.ai.monitoring import Collector

        inputs_collector = Collector(name="model_inputs")
    except ImportError:
        inputs_collector = None


def parse_request(raw_data: str | bytes | dict) -> pd.DataFrame:
    payload = json.loads(raw_data) if isinstance(raw_data, (str, bytes)) else raw_data
    rows = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError('request must be {"data": [{feature: value, ...}, ...]}')
    return pd.DataFrame(rows)


def run(raw_data: str | bytes | dict) -> dict:
    if model is None:
        raise RuntimeError("init() has not run")
    raw = parse_request(raw_data)
    if inputs_collector is not None:
        inputs_collector.collect(raw)
    features = engineer_features(raw)[list(model.feature_names_in_)]
    probabilities = model.predict_proba(features)[:, 1]
    return {
        "predictions": [int(label) for label in model.predict(features)],
        "probabilities": [round(float(p), 6) for p in probabilities],
    }
