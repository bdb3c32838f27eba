"""Shared fixtures: an offline MLflow file store, and the steps run once on the bundled data.

Nothing here talks to Azure or any server: MLflow writes to a temporary folder, its telemetry is
off, and the workspace variables are cleared so no script can reach a real workspace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLOUD_DIR = PROJECT_ROOT / ".cloud"
CODE_DIR = PROJECT_ROOT / "code"

OFFLINE_ENVIRONMENT = {
    "MLFLOW_ALLOW_FILE_STORE": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
WORKSPACE_VARIABLES = (
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "AZUREML_WORKSPACE",
    "AZUREML_REGISTRY",
)


@pytest.fixture(scope="session", autouse=True)
def offline(tmp_path_factory):
    """MLflow tracks to a file store in a temporary folder for the whole session."""
    # A folder MLflow creates itself, so it sets up its default experiment.
    store = tmp_path_factory.mktemp("tracking") / "mlruns"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
        for name, value in OFFLINE_ENVIRONMENT.items():
            patch.setenv(name, value)
        for name in WORKSPACE_VARIABLES:
            patch.delenv(name, raising=False)
        yield store


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory) -> Path:
    from prep import prepare

    output = tmp_path_factory.mktemp("prepared")
    prepare(output)
    return output


@pytest.fixture(scope="session")
def model_dir(prepared_dir, tmp_path_factory) -> Path:
    from train import train

    output = tmp_path_factory.mktemp("trained") / "model"
    train(prepared_dir, output)
    return output


@pytest.fixture(scope="session")
def evaluation_dir(model_dir, prepared_dir, tmp_path_factory) -> Path:
    from evaluate import evaluate

    output = tmp_path_factory.mktemp("evaluation")
    evaluate(model_dir, prepared_dir, output)
    return output
