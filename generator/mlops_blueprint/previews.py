"""A previewed environment, and the one function that previews stacks.

`plan`, `check` (and any command that reports on previews) call `run_plans`; the renderers in
`report.py` take the `EnvironmentPlan`s it returns. Each stack runs the project's real
`.cloud/infra` program under Pulumi's mock engine through `blueprint_infra.preview.preview_stack`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_blueprint.errors import UsageError

#: Stack config keys (in the project namespace) whose principal ids the RBAC matrix names.
PRINCIPAL_LABELS = {
    "dataScientistsGroupId": "data scientists",
    "readersGroupId": "readers",
    "deployerObjectId": "deployer",
}


@dataclass
class EnvironmentPlan:
    """One environment's preview, as `plan` reports it."""

    project: str
    environment: str
    kind: str
    location: str
    resources: list[dict[str, Any]]
    role_assignments: list[dict[str, Any]]
    violations: list[dict[str, Any]]  # mandatory: any one fails the plan
    monthly_cost_estimate: dict[str, Any]
    advisories: list[dict[str, Any]] = field(default_factory=list)  # reported, never fail
    principals: dict[str, str] = field(default_factory=dict)  # principal id -> who
    stack_file: str = ""

    @property
    def passed(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        """The documented JSON object (docs/cli.md). `advisories` has the shape of
        `violations` but never fails the plan (placeholders left in, a prod opt-out)."""
        return {
            "project": self.project,
            "environment": self.environment,
            "resources": self.resources,
            "role_assignments": self.role_assignments,
            "violations": self.violations,
            "advisories": self.advisories,
            "monthly_cost_estimate": self.monthly_cost_estimate,
        }


def run_plans(
    project_dir: Path, environments: list[str], *, as_identity: str | None = None
) -> list[EnvironmentPlan]:
    """Preview the named environments (all stacks when none are named). Every stack file is
    read before the first preview runs, so a bad one fails fast with one line."""
    from blueprint_infra import naming
    from mlops_blueprint.project import load_project

    project = load_project(project_dir)
    if as_identity is not None:
        as_identity = naming.validate_guid(as_identity, "--as")
    names = list(dict.fromkeys(environments)) or project.stack_names()
    if not names:
        raise UsageError(f"{project.root} has no stacks: no .cloud/infra/Pulumi.<env>.yaml")
    stacks = [project.stack(name) for name in names]
    return [preview(project, stack, as_identity) for stack in stacks]


def preview(project, stack, as_identity: str | None) -> EnvironmentPlan:
    """Run one stack under the mock engine and shape the result for the report."""
    from blueprint_infra.preview import preview_stack
    from mlops_blueprint.project import BOOTSTRAP_ENV

    stack_file = project._rel(stack.config_file)
    try:
        result = preview_stack(
            stack.program_dir, stack.stack, deploying_object_id=as_identity, dry_run=True
        )
    except UsageError:
        raise
    except Exception as error:  # the project's own program failed: say where, in one line
        raise UsageError(
            f"{stack_file}: the preview failed: {type(error).__name__}: {error}"
        ) from error
    if getattr(result, "error", None):
        raise UsageError(f"{stack_file}: {result.error}")

    location = str(stack.get("azure-native:location") or project.answers.get("azure_location"))
    resources = list(result.resources)
    found = [_violation(v) for v in result.violations]
    violations = [v for v in found if v.get("enforcement") != "advisory"]
    namespace = result.project or project.pulumi_project
    advisories = [v for v in found if v.get("enforcement") == "advisory"]
    advisories += [_violation(v) for v in _advisories(result, stack, namespace)]
    principals = {
        str(stack.get(key, namespace)).lower(): label
        for key, label in PRINCIPAL_LABELS.items()
        if stack.get(key, namespace)
    }
    return EnvironmentPlan(
        project=result.project or project.pulumi_project,
        environment=result.environment or stack.environment,
        kind=result.kind or str(stack.get("kind", namespace) or "")
        or ("platform" if stack.environment == BOOTSTRAP_ENV else ""),
        location=location,
        resources=[
            {"type": r.type, "name": r.name, "properties": r.properties, "protect": r.protect}
            for r in resources
        ],
        role_assignments=[_role_assignment(a) for a in result.role_assignments],
        violations=violations,
        monthly_cost_estimate=_cost(resources, location),
        advisories=advisories,
        principals=principals,
        stack_file=stack_file,
    )


def _advisories(result: Any, stack: Any, namespace: str) -> list[Any]:
    """What the policies advise (placeholders left in, a public prod opt-out, an Azure DevOps
    bootstrap's placeholder organization id): shown, never a failure. Judged with the context
    the preview judged the stack with (its kind from the stack's name)."""
    from blueprint_infra import policies

    context = getattr(result, "policy_context", None)
    if context is None:
        return []
    return policies.advisories(result.resources, context)


def _violation(violation: Any) -> dict[str, Any]:
    return {
        "policy": violation.policy,
        "resource": violation.resource,
        "message": violation.message,
        "enforcement": getattr(violation, "enforcement", "mandatory"),
    }


def _role_assignment(assignment: Any) -> dict[str, Any]:
    keys = ("principal_id", "principal_type", "role", "role_definition_id", "scope")
    if isinstance(assignment, dict):
        return {k: assignment.get(k) for k in keys} | {
            k: v for k, v in assignment.items() if k not in keys
        }
    return {k: getattr(assignment, k, None) for k in keys}


def _cost(resources: list[Any], location: str) -> dict[str, Any]:
    """`mlops_blueprint.cost.estimate` (CostEstimate(currency, total, items)) as plain data."""
    from mlops_blueprint.cost import estimate as estimate_cost

    estimate = estimate_cost(resources, location=location)
    extra = estimate.as_dict() if hasattr(estimate, "as_dict") else {}
    return {
        "currency": estimate.currency,
        "total": estimate.total,
        "items": [_plain(item) for item in estimate.items],
    } | {k: _plain(v) for k, v in extra.items() if k not in ("currency", "total", "items")}


def _plain(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
