"""Register a trained model and deploy it to the environment's managed online endpoint.

The endpoint and deployment come from .cloud/endpoints/. Endpoint names are unique per Azure
region, so the environment is appended to the name in the YAML (`<name>-dev`, `<name>-prod`).

    python pipelines/deploy_model.py --environment dev --dry-run
    python pipelines/deploy_model.py --environment dev --job-name <training pipeline job>
    python pipelines/deploy_model.py --environment prod            # latest registered model

With `--job-name` the model output of that pipeline job is registered first; without it the
latest registered version (the register step's) is deployed. `--kubernetes` deploys to the
shared AKS cluster instead (projects generated with an AKS cluster id only), on the
environment's attached compute `k8s-<environment>`.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from workspace import CLOUD_DIR, WorkspaceNotConfigured, as_yaml, get_ml_client

ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,9}$")
ENDPOINT_MAX_LENGTH = 32
ENDPOINTS_DIR = CLOUD_DIR / "endpoints"
#: The infra program attaches the shared AKS cluster to each workspace under this name.
KUBERNETES_COMPUTE = "k8s-{environment}"
#: Ends the Kubernetes endpoint's base name in .cloud/endpoints/kubernetes-endpoint.yml.
KUBERNETES_MARKER = "-k8s"


class NoKubernetesEndpoint(FileNotFoundError):
    """The project has no Kubernetes endpoint (it was generated without an AKS cluster)."""


def endpoint_files(kubernetes: bool = False, endpoints_dir: Path = ENDPOINTS_DIR) -> tuple:
    """(endpoint YAML, deployment YAML) for the managed or the Kubernetes endpoint."""
    if not kubernetes:
        return endpoints_dir / "online-endpoint.yml", endpoints_dir / "blue-deployment.yml"
    files = endpoints_dir / "kubernetes-endpoint.yml", endpoints_dir / "kubernetes-deployment.yml"
    if not all(path.exists() for path in files):
        raise NoKubernetesEndpoint(
            "this project has no Kubernetes endpoint: it was generated without aks_cluster_id"
        )
    return files


def endpoint_name(base: str, environment: str) -> str:
    """`<base>-<environment>`, with base trimmed so the whole name stays within 32 chars.

    A Kubernetes base keeps its `-k8s` marker through the trimming, so an environment's
    managed and Kubernetes endpoints never end up with the same name.
    """
    if not ENVIRONMENT_PATTERN.match(environment):
        raise ValueError(
            f"environment must be 2-10 lowercase letters or digits (got {environment!r})"
        )
    marker = KUBERNETES_MARKER if base.endswith(KUBERNETES_MARKER) else ""
    tail = f"{marker}-{environment}"
    stem = base.removesuffix(marker)[: ENDPOINT_MAX_LENGTH - len(tail)]
    return f"{stem.rstrip('-')}{tail}"


def load_endpoint(
    environment: str, *, kubernetes: bool = False, endpoints_dir: Path = ENDPOINTS_DIR
):
    """The environment's endpoint: the base name from the YAML with the environment added."""
    from azure.ai.ml import load_online_endpoint

    source, _ = endpoint_files(kubernetes, endpoints_dir)
    endpoint = load_online_endpoint(source=source)
    endpoint.name = endpoint_name(endpoint.name, environment)
    if kubernetes:
        endpoint.compute = "azureml:" + KUBERNETES_COMPUTE.format(environment=environment)
    return endpoint


def load_deployment(
    environment: str,
    model: str | None = None,
    *,
    kubernetes: bool = False,
    endpoints_dir: Path = ENDPOINTS_DIR,
):
    """The blue deployment for the environment's endpoint, optionally with another model."""
    from azure.ai.ml import load_online_deployment

    _, source = endpoint_files(kubernetes, endpoints_dir)
    deployment = load_online_deployment(source=source)
    deployment.endpoint_name = endpoint_name(deployment.endpoint_name, environment)
    if model is not None:
        deployment.model = model
    return deployment


def model_from_job(job_name: str, model_name: str):
    """A Model entity for the `model` output of a training pipeline job."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    return Model(
        name=model_name,
        path=f"azureml://jobs/{job_name}/outputs/model",
        type=AssetTypes.MLFLOW_MODEL,
        description=f"model output of pipeline job {job_name}",
        tags={"source_job": job_name},
    )


def registered_model_name(deployment) -> str:
    """`azureml:NAME@latest` or `azureml:NAME:VERSION` -> NAME."""
    reference = str(deployment.model).removeprefix("azureml:")
    return re.split(r"[@:]", reference, maxsplit=1)[0]


def deploy(ml_client, endpoint, deployment, *, traffic: int = 100):
    """Create or update the endpoint and deployment, then route `traffic` % to it."""
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    ml_client.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {deployment.name: traffic}
    return ml_client.online_endpoints.begin_create_or_update(endpoint).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Register a model and deploy it online.")
    parser.add_argument("--environment", default="dev", help="environment, e.g. dev or prod")
    parser.add_argument("--job-name", help="register the model output of this pipeline job")
    parser.add_argument("--traffic", type=int, default=100, help="percent of traffic to send")
    parser.add_argument(
        "--kubernetes", action="store_true", help="deploy to the shared AKS cluster instead"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the assets; do not call Azure"
    )
    args = parser.parse_args(argv)
    try:
        endpoint = load_endpoint(args.environment, kubernetes=args.kubernetes)
        deployment = load_deployment(args.environment, kubernetes=args.kubernetes)
    except (ValueError, NoKubernetesEndpoint) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = None
    if args.job_name:
        model = model_from_job(args.job_name, registered_model_name(deployment))
    if args.dry_run:
        for asset in (model, endpoint, deployment):
            if asset is not None:
                print(f"---\n{as_yaml(asset)}", end="")
        return 0
    try:
        ml_client = get_ml_client()
    except WorkspaceNotConfigured as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if model is not None:
        registered = ml_client.models.create_or_update(model)
        deployment.model = f"azureml:{registered.name}:{registered.version}"
    result = deploy(ml_client, endpoint, deployment, traffic=args.traffic)
    print(f"endpoint {result.name}: {result.scoring_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
