"""Run `blueprint_infra.policies` inside a pulumi-policy pack.

The pack (`infra/policy_pack/__main__.py`) calls `resource_policy(name)` or `stack_policy(name)`
for each entry of `policies.POLICIES`; the functions here turn pulumi-policy's arguments into
the same `Resource` and `PolicyContext` that `blueprint plan` builds, run the one validator, and
report each finding against the resource's URN. No rule lives here.

The context is built by `policies.context_for`, as `blueprint plan` builds it: the kind is the
strictest of what the stack's NAME implies (`naming.environment_kind`), the `environment` and
`kind` in the stack's config, and the `kind` in the policy's own config (`--policy-pack-config`):
config can make a stack stricter, never weaker. A `<slug>-bootstrap` project is judged as the
bootstrap. Pulumi does not tell a policy pack who is deploying, so the deploying identity is
unknown unless the config names it (`deployingObjectId`); the program itself refuses a wrong
prod deployer before it touches a resource.

Stack validations see every resource's outputs and which resources each input was computed
from (`property_dependencies`): that is how an unknown principal id is traced to the workspace
whose identity it is (see `policies.check_prod_role_allow_list`).
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

#: () -> (the stack's config without namespace, the stack's name, the project's name); a
#: two-item tuple (no project) is accepted too.
StackSettings = Callable[[], tuple]


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


def to_resource(resource: Any, *, outputs: bool = False) -> Resource:
    """A pulumi-policy resource (`ResourceValidationArgs` or `PolicyResource`) as a Resource.

    `outputs`: the properties are the resource's outputs (stack validations), so they are
    recorded as outputs too.
    """
    options = getattr(resource, "opts", None)
    properties = plain(resource.props)
    dependencies = {
        key: tuple(dep.name for dep in deps)
        for key, deps in (getattr(resource, "property_dependencies", None) or {}).items()
    }
    token = resource.resource_type
    custom = getattr(resource, "provider", None) is not None or token.startswith(
        ("pulumi:providers:", "azure-native:"))
    return Resource(
        type=token,
        name=resource.name,
        properties=properties,
        protect=bool(getattr(options, "protect", False)),
        outputs=properties if outputs else {},
        dependencies=dependencies,
        custom=custom,
    )


def context_from(
    policy_config: Mapping[str, Any] | None,
    stack_config: Mapping[str, Any] | None,
    stack_name: str | None,
    project: str | None = None,
) -> PolicyContext:
    """The policy context (see the module docstring): never weaker than the stack's name says.

    `stack_config` holds the stack's keys without the project namespace (`kind`, not
    `churn-model:kind`); the policy's config overrides it for the deployer keys.
    """
    stack_values = {k: v for k, v in (stack_config or {}).items()
                    if k in CONTEXT_KEYS and v not in ("", None)}
    policy_values = {k: v for k, v in (policy_config or {}).items()
                     if k in CONTEXT_KEYS and v not in ("", None)}
    merged = {**stack_values, **policy_values}
    declared_environment = stack_values.get("environment")
    environment = str(stack_name or declared_environment or policy_values.get("environment")
                      or "unknown")
    return policies.context_for(
        environment,
        project=project,
        declared_kind=naming.stricter_kind(stack_values.get("kind"), policy_values.get("kind"))
        if ("kind" in stack_values or "kind" in policy_values) else None,
        declared_environment=str(declared_environment) if declared_environment else None,
        configured_deployer=merged.get("deployerObjectId"),
        deploying_identity=merged.get("deployingObjectId"),
        public_network_access=str(merged.get("publicNetworkAccess") or ""),
    )


def runtime_stack_settings() -> tuple[dict[str, Any], str | None, str | None]:
    """The running stack's config (namespace stripped), its name and its project's name, as
    pulumi-policy exposes them.

    Outside a real `pulumi preview` (tests, imports) there is no stack: empty config, no names.
    """
    try:
        import pulumi

        project = pulumi.get_project()
        stack = pulumi.get_stack()
    except Exception:  # no engine attached: nothing to read
        return {}, None, None
    config = pulumi.Config(project)
    return {key: config.get(key) for key in CONTEXT_KEYS}, stack, project


def _context(args: Any, settings: StackSettings) -> PolicyContext:
    stack_config, stack_name, *rest = settings()
    return context_from(args.get_config(), stack_config, stack_name, rest[0] if rest else None)


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
        context = _context(args, settings)
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
        context = _context(args, settings)
        resources = [to_resource(r, outputs=True) for r in args.resources]
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
    "Azure ML environments and their bootstrap: in prod only the deploy and workspace identities "
    "write, identities scoped to their environment, no access side doors, private and protected "
    "data services, tags and Azure names."
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
