"""The environment's endpoints and deployments, loaded from .cloud/endpoints/ (offline).

Endpoint names are unique per Azure region, so the environment is appended to the base name in
the YAML (`<name>-dev`, `<name>-prod`). A new model never replaces the live deployment in
place: it goes into a second deployment beside it (`blue` <-> `green`), and the rollout in
stage_deploy.py moves traffic only once the new one has answered correctly.
"""

from __future__ import annotations

import re
from pathlib import Path

from workspace import CLOUD_DIR

ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,9}$")
ENDPOINT_MAX_LENGTH = 32
ENDPOINTS_DIR = CLOUD_DIR / "endpoints"
#: The infra program attaches the shared AKS cluster to each workspace under this name.
KUBERNETES_COMPUTE = "k8s-{environment}"
#: Ends the Kubernetes endpoint's base name in .cloud/endpoints/kubernetes-endpoint.yml.
KUBERNETES_MARKER = "-k8s"
#: Ends the batch endpoint's base name in .cloud/endpoints/batch-endpoint.yml.
BATCH_MARKER = "-batch"
#: The two deployment slots of an endpoint: a new model goes into the one that is not live.
SLOTS = ("blue", "green")

ONLINE_FILES = ("online-endpoint.yml", "online-deployment.yml")
KUBERNETES_FILES = ("kubernetes-endpoint.yml", "kubernetes-deployment.yml")
BATCH_FILES = ("batch-endpoint.yml", "batch-deployment.yml")


class NoKubernetesEndpoint(FileNotFoundError):
    """The project has no Kubernetes endpoint (it was generated without an AKS cluster)."""


def endpoint_files(kubernetes: bool = False, endpoints_dir: Path = ENDPOINTS_DIR) -> tuple:
    """(endpoint YAML, deployment YAML) for the managed or the Kubernetes endpoint."""
    if not kubernetes:
        return tuple(endpoints_dir / name for name in ONLINE_FILES)
    files = tuple(endpoints_dir / name for name in KUBERNETES_FILES)
    if not all(path.exists() for path in files):
        raise NoKubernetesEndpoint(
            "this project has no Kubernetes endpoint: it was generated without aks_cluster_id"
        )
    return files


def endpoint_name(base: str, environment: str) -> str:
    """`<base>-<environment>`, with base trimmed so the whole name stays within 32 chars.

    A Kubernetes or batch base keeps its `-k8s` / `-batch` marker through the trimming, so an
    environment's endpoints never end up with the same name.
    """
    if not ENVIRONMENT_PATTERN.match(environment):
        raise ValueError(
            f"environment must be 2-10 lowercase letters or digits (got {environment!r})"
        )
    marker = next((m for m in (KUBERNETES_MARKER, BATCH_MARKER) if base.endswith(m)), "")
    tail = f"{marker}-{environment}"
    stem = base.removesuffix(marker)[: ENDPOINT_MAX_LENGTH - len(tail)]
    return f"{stem.rstrip('-')}{tail}"


def next_slot(live: str | None) -> str:
    """The deployment name a new model goes into: the slot that is not live."""
    return SLOTS[1] if live == SLOTS[0] else SLOTS[0]


def load_endpoint(
    environment: str, *, kubernetes: bool = False, endpoints_dir: Path = ENDPOINTS_DIR
):
    """The environment's online endpoint: the base name from the YAML plus the environment."""
    from azure.ai.ml import load_online_endpoint

    source, _ = endpoint_files(kubernetes, endpoints_dir)
    endpoint = load_online_endpoint(source=source)
    endpoint.name = endpoint_name(endpoint.name, environment)
    if kubernetes:
        endpoint.compute = "azureml:" + KUBERNETES_COMPUTE.format(environment=environment)
    return endpoint


def load_deployment(
    environment: str,
    *,
    name: str = SLOTS[0],
    model: str | None = None,
    scoring_environment: str | None = None,
    kubernetes: bool = False,
    endpoints_dir: Path = ENDPOINTS_DIR,
):
    """A deployment of the environment's online endpoint, in slot `name`, serving `model`."""
    from azure.ai.ml import load_online_deployment

    _, source = endpoint_files(kubernetes, endpoints_dir)
    deployment = load_online_deployment(source=source)
    deployment.endpoint_name = endpoint_name(deployment.endpoint_name, environment)
    deployment.name = name
    if model is not None:
        deployment.model = model
    if scoring_environment is not None:
        deployment.environment = scoring_environment
    return deployment


def load_batch_endpoint(environment: str, endpoints_dir: Path = ENDPOINTS_DIR):
    from azure.ai.ml import load_batch_endpoint

    endpoint = load_batch_endpoint(source=endpoints_dir / BATCH_FILES[0])
    endpoint.name = endpoint_name(endpoint.name, environment)
    return endpoint


def load_batch_deployment(
    environment: str,
    *,
    name: str = SLOTS[0],
    model: str | None = None,
    scoring_environment: str | None = None,
    endpoints_dir: Path = ENDPOINTS_DIR,
):
    """A model batch deployment of the environment's batch endpoint, in slot `name`.

    The YAML uses the flat batchDeployment schema (the one `blueprint check` loads); Azure ML
    wants a ModelBatchDeployment (the flat class is deprecated), so it is rebuilt as one.
    """
    import warnings

    from azure.ai.ml import load_batch_deployment
    from azure.ai.ml.entities import ModelBatchDeployment, ModelBatchDeploymentSettings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "direct usage is deprecated"
        flat = load_batch_deployment(source=endpoints_dir / BATCH_FILES[1])
    return ModelBatchDeployment(
        name=name,
        endpoint_name=endpoint_name(flat.endpoint_name, environment),
        description=flat.description,
        tags=flat.tags,
        model=model if model is not None else flat.model,
        environment=scoring_environment if scoring_environment is not None else flat.environment,
        code_configuration=flat.code_configuration,
        compute=flat.compute,
        resources=flat.resources,
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=flat.mini_batch_size,
            max_concurrency_per_instance=flat.max_concurrency_per_instance,
            output_action=flat.output_action,
            output_file_name=flat.output_file_name,
            retry_settings=flat.retry_settings,
            error_threshold=flat.error_threshold,
        ),
    )
