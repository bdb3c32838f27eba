"""Policies over recorded resources: plain validator functions, one per policy.

`evaluate(resources, context)` is what `blueprint plan` (through the offline preview) and the
pulumi-policy pack in `infra/policy_pack/` both run. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    """One resource as the provider receives it."""

    type: str  # type token, e.g. "azure-native:storage:StorageAccount"
    name: str  # Pulumi logical name
    properties: dict = field(default_factory=dict)  # camelCase inputs, nested dicts/lists
    protect: bool = False


@dataclass(frozen=True)
class PolicyContext:
    environment: str  # e.g. "prod", "preprod"
    kind: str  # "dev" | "staging" | "prod"
    configured_deployer: str | None  # stack config deployerObjectId
    deploying_identity: str | None  # object id the program ran as; None when unknown
    public_network_opt_out: bool = False  # prod stack explicitly set publicNetworkAccess: Enabled


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    message: str  # what is wrong AND the fix
    enforcement: str = "mandatory"  # "mandatory" (fails plan) or "advisory" (reported only)


def evaluate(resources: Sequence[Resource], context: PolicyContext) -> list[Violation]:
    """Every mandatory violation; empty when the resources comply."""
    return []
