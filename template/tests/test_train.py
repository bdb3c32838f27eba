"""Training (code/train): the model converges, predicts no NaN and is logged with MLflow."""

import json

import mlflow
import numpy as np
import pytest
import sklearn
from mlflow.tracking import MlflowClient
from sklearn.exceptions import ConvergenceWarning

from train import fit, load_split, train


def test_training_converges_well_inside_the_iteration_limit(prepared_dir):
    features, target = load_split(prepared_dir, "train")
    model = fit(features, target, max_iter=1000)
    assert model.named_steps["classify"].n_iter_.max() < 1000


def test_the_model_predicts_finite_probabilities_and_learns(prepared_dir):
    model = fit(*load_split(prepared_dir, "train"))
    features, target = load_split(prepared_dir, "test")
    probabilities = model.predict_proba(features)
    assert not np.isnan(probabilities).any()
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (model.predict(features) == target).mean() > 0.9


def test_a_solver_that_does_not_converge_is_an_error(prepared_dir):
    with pytest.raises(ConvergenceWarning):
        fit(*load_split(prepared_dir, "train"), max_iter=1)


def test_train_saves_an_mlflow_model_that_loads_and_predicts(model_dir, prepared_dir):
    assert (model_dir / "MLmodel").is_file()
    # Loading needs the scikit-learn that trained the model; the model says which one.
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    features, _ = load_split(prepared_dir, "test")
    predictions = mlflow.pyfunc.load_model(str(model_dir)).predict(features)
    assert len(predictions) == len(features)
    assert set(np.unique(predictions)) <= {0, 1}


def test_train_logs_parameters_and_metrics_to_the_local_store(prepared_dir, tmp_path):
    metrics = train(prepared_dir, tmp_path / "model", c=0.5)
    assert mlflow.get_tracking_uri().startswith("file:")
    runs = MlflowClient().search_runs(
        experiment_ids=[e.experiment_id for e in MlflowClient().search_experiments()],
        filter_string="params.C = '0.5'",
        max_results=1,
    )
    assert runs, "no MLflow run with C=0.5 in the local file store"
    logged = runs[0].data.metrics
    assert logged["train_accuracy"] == pytest.approx(metrics["train_accuracy"])
    assert 0.9 < logged["train_accuracy"] <= 1.0
    assert np.isfinite(logged["train_log_loss"])
    json.dumps(metrics)  # the step prints its metrics as JSON
