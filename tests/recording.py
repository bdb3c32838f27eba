"""Run Pulumi resource code under mocks and record what the provider would receive.

Shared by the policy, policy-pack and cost tests, which build their fixtures from real SDK
recordings rather than guessed input shapes. (`tests/` is on sys.path through its conftest.py.)
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable

import pulumi

from blueprint_infra.policies import Resource

SUBSCRIPTION = "22222222-2222-2222-2222-222222222222"
TENANT = "33333333-3333-3333-3333-333333333333"
DEPLOYER = "11111111-1111-1111-1111-111111111111"


class _Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Resource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = copy.deepcopy(dict(args.inputs))
        outputs = {**inputs, "id": f"/mock/{args.name}"}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
            outputs["identity"] = {**identity, "principalId": principal_id_of(args.name)}
        if args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            outputs["principalId"] = principal_id_of(args.name)
        self.resources.append(Resource(args.typ, args.name, inputs, outputs=outputs,
                                       custom=bool(args.custom)))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {"clientId": "c", "objectId": DEPLOYER, "subscriptionId": SUBSCRIPTION,
                "tenantId": TENANT}


def principal_id_of(logical_name: str) -> str:
    """The principal id the recorder gives a resource's managed identity."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{logical_name}"))


def record(build: Callable[[], Iterable[pulumi.CustomResource]]) -> list[Resource]:
    """Run `build()` (which creates resources) under mocks; the resources as recorded, with the
    camelCase inputs the provider would receive."""
    recorder = _Recorder()
    pulumi.runtime.set_mocks(recorder, preview=False)

    @pulumi.runtime.test
    def run():
        return pulumi.Output.all(*[r.id for r in build()])

    run()
    return recorder.resources
