"""CD, online: roll a promoted model out to an environment's endpoint without risking it.

    python pipelines/cicd.py deploy --environment prod \
        --model-uri azureml://registries/<registry>/models/<name>/versions/<n> [--kubernetes]

1. The new deployment is created beside the live one (slot `blue` or `green`, whichever is
   not live). Creating a deployment moves no traffic.
2. If it does not become healthy, it is deleted and the run stops: traffic never moved.
3. Smoke test through the real scoring path: the sample request sent to the new deployment
   by name (schema, no NaN, latency budget). A failure deletes it and stops the run.
4. Canary: a small share of live traffic moves to it and it is checked again. A failed check
   returns all traffic to the old deployment, deletes the new one, and fails the run.
5. 100% to the new deployment, then the old one is deleted.

The first deployment of an endpoint goes straight from the smoke test to 100%. Every step is a
control-plane call except the smoke test, which calls the scoring URI: an endpoint with public
network access disabled must be deployed from a runner inside its network (docs/cicd.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import endpoints
import registry
import smoke
import workspace
from workspace import StageError

#: Share of live traffic the new deployment gets while it is checked.
CANARY_PERCENT = 10
#: Requests sent to the new deployment at each check; their median must meet the budget.
CHECK_REQUESTS = 3


class DeploymentUnhealthy(StageError):
    """The new deployment did not provision successfully."""


@dataclass
class Rollout:
    """What happened, in order: the tests read it, the log prints it."""

    endpoint: str
    new: str
    live: str | None = None
    steps: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.steps.append(message)
        print(f"[{self.endpoint}] {message}", flush=True)


def live_deployment(endpoint) -> str | None:
    """The deployment taking the most traffic; None when nothing takes any."""
    traffic = {name: share for name, share in (endpoint.traffic or {}).items() if share}
    return max(traffic, key=traffic.get) if traffic else None


def provision(operations, deployment) -> str:
    """Create or update `deployment` with `operations` (online or batch deployments) and wait:
    its provisioning state, or `failed (...)` with the first line of the error. Any failure to
    provision counts as unhealthy; the caller decides what that undoes."""
    try:
        created = operations.begin_create_or_update(deployment).result()
    except Exception as error:  # noqa: BLE001 - any failure to provision is "unhealthy"
        return f"failed ({workspace.one_line(error)})"
    return getattr(created, "provisioning_state", "Succeeded") or "Succeeded"


def existing_endpoint(operations, name: str):
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return operations.get(name=name)
    except ResourceNotFoundError:
        return None


def set_traffic(ml_client, name: str, traffic: dict[str, int]) -> None:
    endpoint = ml_client.online_endpoints.get(name=name)
    endpoint.traffic = dict(traffic)
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()


def delete_deployment(ml_client, endpoint: str, name: str, rollout: Rollout) -> None:
    """Best effort: a leftover deployment takes no traffic, so failing to delete is a warning."""
    try:
        ml_client.online_deployments.begin_delete(name=name, endpoint_name=endpoint).result()
        rollout.log(f"deleted deployment {name}")
    except Exception as error:  # noqa: BLE001 - the run's real failure is reported by the caller
        rollout.log(f"warning: could not delete deployment {name}: {error}")


def probe(
    ml_client,
    endpoint: str,
    deployment: str,
    *,
    request_file=smoke.SAMPLE_REQUEST,
    budget: float = smoke.LATENCY_BUDGET,
    requests: int = CHECK_REQUESTS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Send the sample request to `deployment` by name; SmokeTestFailed on any bad answer."""
    from azure.core.exceptions import ServiceRequestError

    request = smoke.sample_request(request_file)
    latencies = []
    for _ in range(requests):
        started = clock()
        try:
            answer = ml_client.online_endpoints.invoke(
                endpoint_name=endpoint, deployment_name=deployment, request_file=str(request_file)
            )
        except ServiceRequestError as error:
            raise smoke.SmokeTestFailed(
                f"cannot reach the scoring URI of {endpoint} from this machine ({error}); a "
                "private endpoint is tested from the self-hosted runner in its network"
            ) from None
        except Exception as error:  # noqa: BLE001 - any failed call is a failed smoke test
            raise smoke.SmokeTestFailed(f"{deployment} answered with an error: {error}") from None
        latencies.append(clock() - started)
        smoke.check_response(request, answer, seconds=0.0)
    median = sorted(latencies)[len(latencies) // 2]
    if median > budget:
        raise smoke.SmokeTestFailed(
            f"{deployment} answers in {median:.2f}s (median), over the {budget:.2f}s budget"
        )


def rollout(
    ml_client,
    endpoint,
    deployment,
    *,
    canary: int = CANARY_PERCENT,
    check: Callable[..., None] = probe,
) -> Rollout:
    """Deploy `deployment` (its name is chosen here) beside the live one; see the module doc."""
    current = existing_endpoint(ml_client.online_endpoints, endpoint.name)
    live = live_deployment(current) if current is not None else None
    result = Rollout(endpoint=endpoint.name, new=endpoints.next_slot(live), live=live)
    deployment.name = result.new
    if current is None:
        result.log("creating the endpoint (no deployment yet)")
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    result.log(f"live: {live or 'none'}; creating {result.new} beside it with 0% traffic")
    state = provision(ml_client.online_deployments, deployment)
    if state != "Succeeded":
        delete_deployment(ml_client, endpoint.name, result.new, result)
        raise DeploymentUnhealthy(
            f"deployment {result.new} of {endpoint.name} did not become healthy: {state}; "
            f"read `az ml online-deployment get-logs -e {endpoint.name} -n {result.new}`"
            " (traffic unchanged)"
        )
    result.log(f"smoke test of {result.new} (by deployment name, 0% traffic)")
    try:
        check(ml_client, endpoint.name, result.new)
    except smoke.SmokeTestFailed as error:
        delete_deployment(ml_client, endpoint.name, result.new, result)
        raise smoke.SmokeTestFailed(f"{result.new}: {error} (traffic unchanged)") from None
    if live is not None:
        result.log(f"canary: {canary}% to {result.new}, {100 - canary}% stays on {live}")
        set_traffic(ml_client, endpoint.name, {live: 100 - canary, result.new: canary})
        try:
            check(ml_client, endpoint.name, result.new)
        except smoke.SmokeTestFailed as error:
            result.log(f"check failed; all traffic back to {live}")
            set_traffic(ml_client, endpoint.name, {live: 100, result.new: 0})
            delete_deployment(ml_client, endpoint.name, result.new, result)
            raise smoke.SmokeTestFailed(
                f"{result.new} failed under canary traffic: {error}; traffic is back on {live}"
            ) from None
    result.log(f"100% to {result.new}")
    set_traffic(ml_client, endpoint.name, {result.new: 100})
    if live is not None:
        delete_deployment(ml_client, endpoint.name, live, result)
    return result


def add_arguments(parser) -> None:
    parser.add_argument("--environment", required=True, help="environment to deploy to")
    parser.add_argument("--model-uri", required=True, help="the promote stage's model_uri")
    parser.add_argument(
        "--kubernetes", action="store_true", help="the endpoint on the shared AKS cluster"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print endpoint and deployment; call no Azure"
    )


def plan(args, environ) -> tuple:
    """The endpoint and the deployment template for this environment and model."""
    workspace.check_environment(args.environment)
    registry_name = workspace.registry_from_env(environ)
    model = registry.require_registry_model(
        registry.parse_model_uri(args.model_uri), args.environment, registry_name
    )
    try:
        endpoint = endpoints.load_endpoint(args.environment, kubernetes=args.kubernetes)
        deployment = endpoints.load_deployment(
            args.environment,
            model=model.uri(),
            scoring_environment=registry.scoring_environment_for(model),
            kubernetes=args.kubernetes,
        )
    except endpoints.NoKubernetesEndpoint as error:
        raise StageError(str(error)) from None
    return endpoint, deployment


def run(args, environ) -> dict:
    endpoint, deployment = plan(args, environ)
    if args.dry_run:
        for entity in (endpoint, deployment):
            print(f"---\n{workspace.as_yaml(entity)}", end="")
        return {}
    ml_client = workspace.get_ml_client(workspace.require_workspace(environ))
    result = rollout(ml_client, endpoint, deployment)
    return {"endpoint": result.endpoint, "deployment": result.new}
