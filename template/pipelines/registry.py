"""Model and environment references, and where a model comes from.

Dev registers; the project's Azure ML registry holds what was promoted; staging and prod only
ever deploy registry references:

    azureml://registries/<registry>/models/<name>/versions/<n>      (staging, prod, dev)
    azureml:<name>:<n>                                               (dev workspace only)

The champion is the registry's latest version of the model: every version there was promoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workspace import CLOUD_DIR, StageError

REGISTRY_URI = re.compile(
    r"^azureml://registries/(?P<registry>[A-Za-z0-9][A-Za-z0-9_-]*)"
    r"/(?P<kind>models|environments|data)/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)"
    r"/versions/(?P<version>[A-Za-z0-9_.-]+)$"
)
WORKSPACE_URI = re.compile(r"^azureml:(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<version>[\w.-]+)$")

#: Lineage tags register.py writes on every model it registers.
JOB_TAG = "pipeline_job"
REFERENCE_DATA_TAG = "reference_data"


class BadModelUri(StageError):
    """The model URI is neither a registry nor a workspace reference."""


@dataclass(frozen=True)
class AssetRef:
    name: str
    version: str
    registry: str | None = None  # None: the workspace's own asset

    def uri(self, kind: str = "models") -> str:
        if self.registry:
            return (
                f"azureml://registries/{self.registry}/{kind}/{self.name}/versions/{self.version}"
            )
        return f"azureml:{self.name}:{self.version}"


def parse_model_uri(uri: str) -> AssetRef:
    """An AssetRef for a registry or workspace model URI; BadModelUri otherwise."""
    registry = REGISTRY_URI.match(uri or "")
    if registry and registry["kind"] == "models":
        return AssetRef(registry["name"], registry["version"], registry["registry"])
    workspace = WORKSPACE_URI.match(uri or "")
    if workspace:
        return AssetRef(workspace["name"], workspace["version"])
    raise BadModelUri(
        f"--model-uri {uri!r} is not azureml://registries/<registry>/models/<name>/versions/<n> "
        "(or azureml:<name>:<n> in dev): pass the model_uri output of the promote stage"
    )


DEPLOYED_MODEL = re.compile(
    r"(?:/registries/(?P<registry>[^/]+))?.*/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$"
)


def parse_deployed_model(text: str) -> AssetRef:
    """The model a deployment serves, from any form Azure returns it in (URI or ARM id)."""
    try:
        return parse_model_uri(text)
    except BadModelUri:
        match = DEPLOYED_MODEL.search(text or "")
        if not match:
            raise
        return AssetRef(match["name"], match["version"], match["registry"])


def require_registry_model(model: AssetRef, environment: str, registry: str) -> AssetRef:
    """Staging and prod deploy only what was promoted to the project's registry."""
    if environment != "dev" and model.registry is None:
        raise BadModelUri(
            f"{environment} deploys only from the registry: pass "
            f"azureml://registries/{registry}/models/{model.name}/versions/<n> "
            "(the promote stage's model_uri), never a workspace model"
        )
    if model.registry is not None and model.registry != registry:
        raise BadModelUri(
            f"the model is in registry {model.registry!r} but AZUREML_REGISTRY is {registry!r}: "
            "deploy from the project's registry"
        )
    return model


def scoring_environment(cloud_dir: Path = CLOUD_DIR) -> AssetRef:
    """Name and version of the scoring environment (.cloud/environments/score.yml)."""
    from azure.ai.ml import load_environment

    environment = load_environment(source=cloud_dir / "environments" / "score.yml")
    return AssetRef(environment.name, str(environment.version))


def scoring_environment_for(model: AssetRef, cloud_dir: Path = CLOUD_DIR) -> str:
    """The scoring environment from where the model comes from: the registry or the workspace."""
    score = scoring_environment(cloud_dir)
    return AssetRef(score.name, score.version, model.registry).uri("environments")


def latest_version(client, name: str):
    """The latest version of model `name` in the client's workspace or registry; None if none."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return client.models.get(name=name, label="latest")
    except ResourceNotFoundError:
        return None


def champion(registry_client, registry: str, name: str) -> AssetRef | None:
    """The current champion: the registry's latest (promoted) version of the model."""
    model = latest_version(registry_client, name)
    return None if model is None else AssetRef(model.name, str(model.version), registry)


def model_of_job(ml_client, name: str, job_name: str):
    """The model version the training pipeline `job_name` registered; None when it registered
    none (the candidate did not beat the champion)."""
    for model in ml_client.models.list(name=name):
        if (model.tags or {}).get(JOB_TAG) == job_name:
            return model
    return None
