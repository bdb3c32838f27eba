"""A fake azure-ai-ml MLClient: the Azure boundary of the CI/CD stages, replaced for tests.

It keeps just enough state (endpoints with their traffic, deployments, models, jobs) for the
stages to run against it, records every call in order in `calls` as (operation, details), and
can be told to fail: `client.fail("online_endpoints.invoke", error, after=3)` raises `error`
(or, for invoke, returns it when it is a string: a bad answer) once 3 calls have succeeded.
"""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

from azure.core.exceptions import ResourceNotFoundError


def provisioned(entity, failure):
    """The entity as Azure returns it: provisioning state `failure` (a string) or Succeeded."""
    # azure-ai-ml exposes provisioning_state read-only; the SDK sets the private field.
    entity._provisioning_state = failure if isinstance(failure, str) else "Succeeded"
    return entity


class Poller:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def good_answer(request_file: str) -> str:
    rows = len(json.loads(open(request_file).read())["data"])  # noqa: SIM115
    return json.dumps({"predictions": [1] * rows, "probabilities": [0.9] * rows})


class Group:
    """One operations group (online_endpoints, models, ...) of the fake client."""

    def __init__(self, client: FakeMLClient, name: str):
        self._client = client
        self._name = name

    def _call(self, operation: str, details: dict):
        """Record the call; raise or return the scripted failure when one is due."""
        key = f"{self._name}.{operation}"
        self._client.calls.append((key, details))
        failure = self._client.failures.get(key)
        if failure is None:
            return None
        error, after = failure
        count = self._client.counts[key] = self._client.counts.get(key, 0) + 1
        if count <= after:
            return None
        if isinstance(error, BaseException):
            raise error
        return error


class OnlineEndpoints(Group):
    def get(self, name):
        self._call("get", {"name": name})
        if name not in self._client.online:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return copy.deepcopy(self._client.online[name])

    def begin_create_or_update(self, endpoint):
        traffic = dict(endpoint.traffic or {})
        self._call("begin_create_or_update", {"name": endpoint.name, "traffic": traffic})
        stored = copy.deepcopy(endpoint)
        stored.traffic = traffic
        self._client.online[endpoint.name] = stored
        return Poller(stored)

    def invoke(self, endpoint_name, deployment_name=None, request_file=None, **_):
        bad = self._call("invoke", {"name": endpoint_name, "deployment_name": deployment_name})
        return bad if isinstance(bad, str) else good_answer(request_file)


class OnlineDeployments(Group):
    def begin_create_or_update(self, deployment):
        failure = self._call(
            "begin_create_or_update",
            {
                "name": deployment.name,
                "endpoint": deployment.endpoint_name,
                "model": str(deployment.model),
                "environment": str(deployment.environment),
            },
        )
        stored = provisioned(copy.deepcopy(deployment), failure)
        self._client.deployments[(deployment.endpoint_name, deployment.name)] = stored
        return Poller(stored)

    def begin_delete(self, name, endpoint_name):
        self._call("begin_delete", {"name": name, "endpoint": endpoint_name})
        self._client.deployments.pop((endpoint_name, name), None)
        return Poller(None)

    def get(self, name, endpoint_name):
        self._call("get", {"name": name, "endpoint": endpoint_name})
        return copy.deepcopy(self._client.deployments[(endpoint_name, name)])


class BatchEndpoints(Group):
    def get(self, name):
        self._call("get", {"name": name})
        if name not in self._client.batch:
            raise ResourceNotFoundError(f"batch endpoint {name} not found")
        return copy.deepcopy(self._client.batch[name])

    def begin_create_or_update(self, endpoint):
        from stage_deploy_batch import default_deployment

        default = default_deployment(endpoint)
        self._call("begin_create_or_update", {"name": endpoint.name, "default": default})
        self._client.batch[endpoint.name] = copy.deepcopy(endpoint)
        return Poller(endpoint)

    def invoke(self, endpoint_name, deployment_name=None, inputs=None, **_):
        paths = {key: value.path for key, value in (inputs or {}).items()}
        self._call(
            "invoke", {"name": endpoint_name, "deployment_name": deployment_name, "inputs": paths}
        )
        return SimpleNamespace(name=f"batch-smoke-{deployment_name}")


class BatchDeployments(Group):
    def begin_create_or_update(self, deployment):
        failure = self._call(
            "begin_create_or_update", {"name": deployment.name, "model": str(deployment.model)}
        )
        return Poller(provisioned(copy.deepcopy(deployment), failure))

    def begin_delete(self, name, endpoint_name):
        self._call("begin_delete", {"name": name, "endpoint": endpoint_name})
        return Poller(None)


class Jobs(Group):
    def create_or_update(self, job):
        self._call("create_or_update", {"job": job})
        return SimpleNamespace(name="job-1", studio_url="https://ml.azure.com/runs/job-1")

    def stream(self, name):
        self._call("stream", {"name": name})

    def get(self, name):
        status = self._call("get", {"name": name})
        return SimpleNamespace(name=name, status=status or "Completed")


class Models(Group):
    def get(self, name, version=None, label=None):
        self._call("get", {"name": name, "version": version, "label": label})
        versions = [m for m in self._client.model_versions if m.name == name]
        if label == "latest" and versions:
            return max(versions, key=lambda m: int(m.version))
        for model in versions:
            if str(model.version) == str(version):
                return model
        raise ResourceNotFoundError(f"model {name}:{version or label} not found")

    def list(self, name=None):
        self._call("list", {"name": name})
        return [m for m in self._client.model_versions if name in (None, m.name)]

    def share(self, **kwargs):
        self._call("share", kwargs)


class Assets(Group):
    """environments and data: get, create_or_update, share."""

    def get(self, name, version=None, label=None):
        self._call("get", {"name": name, "version": version})
        if (name, str(version)) not in self._client.assets.get(self._name, set()):
            raise ResourceNotFoundError(f"{name}:{version} not found")
        return SimpleNamespace(name=name, version=version)

    def create_or_update(self, asset):
        self._call("create_or_update", {"name": asset.name, "version": asset.version})
        return asset

    def share(self, **kwargs):
        self._call("share", kwargs)


class Compute(Group):
    def get(self, name):
        self._call("get", {"name": name})
        return SimpleNamespace(name=name, type="amlcompute")


class Schedules(Group):
    def begin_create_or_update(self, schedule):
        self._call("begin_create_or_update", {"name": schedule.name, "schedule": schedule})
        return Poller(schedule)


class FakeMLClient:
    """Stands in for azure.ai.ml.MLClient (a workspace's or a registry's)."""

    def __init__(self, workspace_name: str = "mlw-test", registry_name: str | None = None):
        self.workspace_name = workspace_name
        self.registry_name = registry_name
        self.calls: list[tuple[str, dict]] = []
        self.failures: dict[str, tuple[object, int]] = {}
        self.counts: dict[str, int] = {}
        self.online: dict[str, object] = {}
        self.batch: dict[str, object] = {}
        self.deployments: dict[tuple[str, str], object] = {}
        self.model_versions: list[SimpleNamespace] = []
        self.assets: dict[str, set] = {}
        self.online_endpoints = OnlineEndpoints(self, "online_endpoints")
        self.online_deployments = OnlineDeployments(self, "online_deployments")
        self.batch_endpoints = BatchEndpoints(self, "batch_endpoints")
        self.batch_deployments = BatchDeployments(self, "batch_deployments")
        self.jobs = Jobs(self, "jobs")
        self.models = Models(self, "models")
        self.environments = Assets(self, "environments")
        self.data = Assets(self, "data")
        self.compute = Compute(self, "compute")
        self.schedules = Schedules(self, "schedules")

    def fail(self, operation: str, error: object, *, after: int = 0) -> FakeMLClient:
        """From call `after + 1` on, `operation` raises `error` (or returns it, a string)."""
        self.failures[operation] = (error, after)
        return self

    def add_model(self, name: str, version: str, **tags) -> SimpleNamespace:
        model = SimpleNamespace(name=name, version=version, tags=dict(tags))
        self.model_versions.append(model)
        return model

    def add_asset(self, group: str, name: str, version: str) -> None:
        self.assets.setdefault(group, set()).add((name, str(version)))

    def names(self, prefix: str = "") -> list[str]:
        """The operations called, in order (optionally only those of one group)."""
        return [name for name, _ in self.calls if name.startswith(prefix)]


class FakeEventGridClient:
    """Stands in for azure.mgmt.eventgrid.EventGridManagementClient: records subscriptions."""

    def __init__(self):
        self.subscriptions: dict[tuple[str, str], object] = {}
        self.event_subscriptions = self

    def begin_create_or_update(self, scope, event_subscription_name, event_subscription_info):
        self.subscriptions[(scope, event_subscription_name)] = event_subscription_info
        return Poller(event_subscription_info)
