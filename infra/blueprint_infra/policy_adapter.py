"""Run `blueprint_infra.policies` inside a pulumi-policy pack.

The pack (`infra/policy_pack/__main__.py`) calls `resource_policy(name)` or `stack_policy(name)`
for each entry of `policies.POLICIES`; the functions here turn pulumi-policy's arguments into
the same `Resource` and `PolicyContext` that `blueprint plan` builds, run the one validator, and
report each finding against the resource's URN. No rule lives here.

The context comes, in this order, from the policy's own config (`--policy-pack-config`), the
stack's config (policy packs can read it: `<project>:kind`, `environment`, `deployerObjectId`,
`publicNetworkAccess`) and the stack name. Pulumi does not tell a policy pack who is deploying,
so the deploying identity is unknown unless the config names it (`deployingObjectId`); the
program itself refuses a wrong prod deployer before it touches a resource.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)

from blueprint_infra import naming, policies
from blueprint_infra.policies import UNKNOWN, PolicyContext, Resource

_UNKNOWN_SENTINELS = frozenset({
    UNKNOWN_ARCHIVE_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE,
})

#: Keys a policy's config may set; the same names as the stack config keys they override.
CONTEXT_KEYS = ("kind", "environment", "deployerObjectId", "deployingObjectId",
                "publicNetworkAccess")

CONFIG_SCHEMA = PolicyConfigSchema(properties={
    "kind": {"type": "string", "enum": ["dev", "staging", "prod"]},
    "environment": {"type": "string"},
    "deployerObjectId": {"type": "string"},
    "deployingObjectId": {"type": "string"},
    "publicNetworkAccess": {"type": "string", "enum": ["Enabled", "Disabled"]},
})

_LEVELS = {policies.MANDATORY: EnforcementLevel.MANDATORY,
           policies.ADVISORY: EnforcementLevel.ADVISORY}

StackSettings = Callable[[], tuple[Mapping[str, Any], str | None]]


def plain(value: Any) -> Any:
    """pulumi-policy's property proxies as plain dicts and lists; unknowns become UNKNOWN.

    The proxies raise on reading an unknown value; reading through `"__target"` does not, so a
    validator sees every known value and decides for itself what an unknown means.
    """
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        target = value["__target"] if _is_proxy(value) else value
        return {key: plain(target[key]) for key in target}
    if isinstance(value, Sequence):
        target = value["__target"] if _is_proxy(value) else value
        return [plain(item) for item in target]
    return value


def _is_proxy(value: Any) -> bool:
    return type(value).__name__ in ("_DictProxy", "_ListProxy", "_DictSecretsProxy",
                                    "_ListSecretsProxy")


def to_resource(resource: Any) -> Resource:
    """A pulumi-policy resource (`ResourceValidationArgs` or `PolicyResource`) as a Resource."""
    options = getattr(resource, "opts", None)
    return Resource(
        type=resource.resource_type,
        name=resource.name,
        properties=plain(resource.props),
        protect=bool(getattr(options, "protect", False)),
    )


def context_from(
    policy_config: Mapping[str, Any] | None,
    stack_config: Mapping[str, Any] | None,
    stack_name: str | None,
) -> PolicyContext:
    """The policy context: policy config first, then the stack's config, then its name.

    `stack_config` holds the stack's keys without the project namespace (`kind`, not
    `churn-model:kind`).
    """
    merged: dict[str, Any] = {}
    for source in (stack_config or {}, policy_config or {}):
        merged.update({k: v for k, v in source.items() if k in CONTEXT_KEYS and v not in ("",
                                                                                        None)})
    environment = str(merged.get("environment") or stack_name or "unknown")
    kind = str(merged.get("kind") or naming.environment_kind(environment))
    opt_out = kind == "prod" and str(merged.get("publicNetworkAccess", "")).lower() == "enabled"
    return PolicyContext(
        environment=environment,
        kind=kind,
        configured_deployer=merged.get("deployerObjectId"),
        deploying_identity=merged.get("deployingObjectId"),
        public_network_opt_out=opt_out,
    )


def runtime_stack_settings() -> tuple[dict[str, Any], str | None]:
    """The running stack's config (namespace stripped) and name, as pulumi-policy exposes them.

    Outside a real `pulumi preview` (tests, imports) there is no stack: empty config, no name.
    """
    try:
        import pulumi

        project = pulumi.get_project()
        stack = pulumi.get_stack()
    except Exception:  # no engine attached: nothing to read
        return {}, None
    config = pulumi.Config(project)
    return {key: config.get(key) for key in CONTEXT_KEYS}, stack


def _report(
    findings: Sequence[policies.Violation],
    report_violation: ReportViolation,
    urns: Mapping[str, str],
) -> None:
    for finding in findings:
        report_violation(finding.message, urns.get(finding.resource))


def resource_policy(
    name: str, settings: StackSettings = runtime_stack_settings
) -> ResourceValidationPolicy:
    """The registry's policy `name` as a resource validation (runs before Azure sees it)."""
    policy = policies.POLICIES[name]

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        stack_config, stack_name = settings()
        context = context_from(args.get_config(), stack_config, stack_name)
        resource = to_resource(args)
        _report(policies.run_policy(policy, [resource], context), report_violation,
                {resource.name: args.urn})

    return ResourceValidationPolicy(
        name=policy.name, description=policy.description, validate=validate,
        enforcement_level=_LEVELS[policy.enforcement], config_schema=CONFIG_SCHEMA,
    )


def stack_policy(
    name: str, settings: StackSettings = runtime_stack_settings
) -> StackValidationPolicy:
    """The registry's policy `name` as a stack validation (sees every resource at once)."""
    policy = policies.POLICIES[name]

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stack_config, stack_name = settings()
        context = context_from(args.get_config(), stack_config, stack_name)
        resources = [to_resource(r) for r in args.resources]
        urns = {r.name: r.urn for r in args.resources}
        _report(policies.run_policy(policy, resources, context), report_violation, urns)

    return StackValidationPolicy(
        name=policy.name, description=policy.description, validate=validate,
        enforcement_level=_LEVELS[policy.enforcement], config_schema=CONFIG_SCHEMA,
    )


def pack_policy(
    name: str, settings: StackSettings = runtime_stack_settings
) -> ResourceValidationPolicy | StackValidationPolicy:
    """The right kind of pulumi-policy policy for the registry entry `name`."""
    if policies.POLICIES[name].per_resource:
        return resource_policy(name, settings)
    return stack_policy(name, settings)


PACK_NAME = "mlops-blueprint"
PACK_DESCRIPTION = (
    "Azure ML environments: prod deployed only by its service principal, no human write roles in "
    "prod, private storage, RBAC key vaults, tags and Azure names."
)


def serve_policy_pack() -> None:
    """Build the pack from every policy in the registry and serve it to the Pulumi CLI.

    Only a pack's `__main__.py` calls this: constructing `PolicyPack` starts the analyzer server.
    The pack in this repository (`infra/policy_pack/`) and the one every generated project
    carries (`.cloud/infra/policy_pack/`) are both this call, so they cannot drift apart.
    """
    from pulumi_policy import PolicyPack

    PolicyPack(
        name=PACK_NAME,
        description=PACK_DESCRIPTION,
        policies=[pack_policy(name) for name in policies.POLICIES],
    )
