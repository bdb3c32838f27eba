"""`blueprint plan --against REF`: what a change does to each environment, previewed offline.

The project as it is on disk (a pull request's checkout) and the project as it was at a git ref
(the target branch) are both previewed with `previews.preview_many`; the difference is reported per
environment: resources added, removed and changed (input by input), role assignments granted and
revoked, policy verdicts and the idle monthly cost. The ref is read with `git archive` into a
temporary folder, so the repository (its index, worktrees, refs) is never written to.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_blueprint.errors import UsageError
from mlops_blueprint.previews import EnvironmentPlan


@dataclass
class Version:
    """The ref a change is compared with, resolved to a commit."""

    ref: str
    commit: str


@dataclass
class EnvironmentDiff:
    """One environment before (at the ref) and after (on disk)."""

    environment: str
    kind: str
    before: EnvironmentPlan | None  # None: the environment is new, or its old version broke
    after: EnvironmentPlan | None  # None: the change removes the environment
    before_error: str | None = None  # why the old version could not be previewed
    resources_added: list[dict[str, Any]] = field(default_factory=list)
    resources_removed: list[dict[str, Any]] = field(default_factory=list)
    resources_changed: list[dict[str, Any]] = field(default_factory=list)
    granted: list[dict[str, Any]] = field(default_factory=list)
    revoked: list[dict[str, Any]] = field(default_factory=list)
    violations_new: list[dict[str, Any]] = field(default_factory=list)
    violations_resolved: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.after is None:
            return "removed"
        if self.before is None:
            return "added"
        return "changed" if self.changed else "unchanged"

    @property
    def changed(self) -> bool:
        return bool(
            self.resources_added or self.resources_removed or self.resources_changed
            or self.granted or self.revoked or self.violations_new or self.violations_resolved
            or self.cost_delta
        )  # a custom program is the project's, not an environment's: shown once, above

    @property
    def passed(self) -> bool:
        """The new version's verdict (a removed environment cannot violate anything)."""
        return self.after is None or self.after.passed

    @property
    def passed_before(self) -> bool | None:
        return None if self.before is None else self.before.passed

    @property
    def custom_program(self) -> str | None:
        """The declared reason when the new version runs the project's own program: its
        preview is evidence, not proof, and the reviewer reads the code."""
        return getattr(self.after, "custom_program", None)

    @property
    def custom_program_before(self) -> str | None:
        return getattr(self.before, "custom_program", None)

    @property
    def alarms(self) -> list[dict[str, Any]]:
        """Grants a prod reviewer must look at: a human principal, or any role that writes."""
        return [g for g in self.granted if g.get("alarm")]

    def _total(self, plan: EnvironmentPlan | None) -> float:
        total = (plan.monthly_cost_estimate.get("total") if plan else 0) or 0
        return float(total) if isinstance(total, (int, float)) else 0.0

    @property
    def cost_before(self) -> float:
        return round(self._total(self.before), 2)

    @property
    def cost_after(self) -> float:
        return round(self._total(self.after), 2)

    @property
    def cost_delta(self) -> float:
        return round(self.cost_after - self.cost_before, 2)

    @property
    def currency(self) -> str:
        plan = self.after or self.before
        return str(plan.monthly_cost_estimate.get("currency", "")) if plan else ""

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "kind": self.kind,
            "status": self.status,
            "passed": self.passed,
            "passed_before": self.passed_before,
            "before_error": self.before_error,
            "custom_program": {"before": self.custom_program_before,
                               "after": self.custom_program},
            "resources": {
                "added": self.resources_added,
                "removed": self.resources_removed,
                "changed": self.resources_changed,
            },
            "role_assignments": {"granted": self.granted, "revoked": self.revoked},
            "violations": {
                "new": self.violations_new,
                "resolved": self.violations_resolved,
                "all": self.after.violations if self.after else [],
            },
            "monthly_cost": {
                "currency": self.currency,
                "before": self.cost_before,
                "after": self.cost_after,
                "delta": self.cost_delta,
            },
        }


@dataclass
class PlanDiff:
    project: str
    against: Version
    environments: list[EnvironmentDiff]

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.environments)

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "against": {"ref": self.against.ref, "commit": self.against.commit},
            "passed": self.passed,
            "environments": [e.as_json() for e in self.environments],
        }


# --- the old version, out of git --------------------------------------------------------------


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, check=False, timeout=120
        )
    except FileNotFoundError as error:
        raise UsageError("--against needs git on the PATH") from error


def _git_text(cwd: Path, *args: str) -> str | None:
    proc = _git(cwd, *args)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


@contextlib.contextmanager
def checkout(project_root: Path, ref: str) -> Iterator[tuple[Version, Path | None]]:
    """The project's folder as it was at `ref`, extracted read-only into a temporary folder
    (removed afterwards), or None when the project did not exist there yet."""
    if ref.startswith("-") or not ref.strip():
        raise UsageError(f"--against {ref!r}: not a git ref (a branch, tag or commit)")
    found = _git(project_root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        reason = found.stderr.decode(errors="replace")
        if "dubious ownership" in reason:  # git's safe.directory check, common in CI containers
            raise UsageError(
                f"git refuses {project_root}: the repository is owned by another user; run "
                f"`git config --global --add safe.directory {project_root}`"
            )
        raise UsageError(
            f"{project_root} is not in a git repository: --against compares with a git ref of "
            "the project's history"
        )
    top = found.stdout.decode().strip()
    prefix = _git_text(project_root, "rev-parse", "--show-prefix") or ""
    commit = _git_text(project_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if not commit:
        raise UsageError(
            f"--against {ref!r}: no such commit, branch or tag in {top} "
            "(in CI, fetch it first: `git fetch origin main`)"
        )
    version = Version(ref, commit)
    exists = _git(project_root, "cat-file", "-e", f"{commit}:{prefix}.copier-answers.yml")
    if exists.returncode != 0:
        yield version, None
        return
    tree = f"{commit}:{prefix}" if prefix else commit
    archive = _git(project_root, "archive", "--format=tar", tree)
    if archive.returncode != 0:
        message = archive.stderr.decode().strip().splitlines()
        raise UsageError(f"--against {ref!r}: git archive failed: {message[-1] if message else ''}")
    with tempfile.TemporaryDirectory(prefix="blueprint-against-") as temp:
        dest = Path(temp) / Path(project_root).name
        dest.mkdir()
        try:
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as error:
            raise UsageError(f"--against {ref!r}: cannot unpack the project: {error}") from error
        yield version, dest


# --- comparing --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as the JSON output shows it (Pulumi's unknowns become text)."""
    from mlops_blueprint.report import _json_default

    return json.loads(json.dumps(value, default=_json_default))


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """`{"a": {"b": [1, {"c": 2}]}}` -> `{"a.b[0]": 1, "a.b[1].c": 2}`: one entry per leaf,
    so a change names the exact input (empty mappings and lists are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value, key=str):
            out.update(flatten(value[key], f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{path}[{index}]"))
        return out
    return {path: value}


def property_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    old, new = flatten(_plain(before)), flatten(_plain(after))
    missing = object()
    changes = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path, missing), new.get(path, missing)
        if a != b:
            changes.append({
                "path": path,
                "before": None if a is missing else a,
                "after": None if b is missing else b,
            })
    return changes


def _resource_summary(resource: dict[str, Any]) -> dict[str, Any]:
    from mlops_blueprint import report

    return {
        "type": resource.get("type"),
        "name": resource.get("name"),
        "azure_name": report.azure_name(resource),
        "protect": bool(resource.get("protect")),
    }


def grant_key(assignment: dict[str, Any]) -> tuple[str, str, str]:
    """What a grant is, whatever its logical name: who, which role, where."""
    from blueprint_infra import roles

    definition = str(assignment.get("role_definition_id") or assignment.get("role") or "")
    return (
        str(assignment.get("principal_id", "")).lower(),
        roles.role_guid(definition) if definition else "",
        str(assignment.get("scope", "")).rstrip("/").lower(),
    )


def is_alarm(assignment: dict[str, Any], kind: str) -> bool:
    """In prod, a grant to a person or group, or of any role that can change something."""
    from blueprint_infra import roles

    if kind != "prod":
        return False
    human = assignment.get("principal_type") in roles.HUMAN_PRINCIPAL_TYPES
    definition = str(assignment.get("role_definition_id") or "")
    read_only = bool(definition) and roles.role_guid(definition) in roles.READ_ONLY_ROLES
    return human or not read_only


def _grant(plan: EnvironmentPlan, assignment: dict[str, Any], kind: str) -> dict[str, Any]:
    from mlops_blueprint import report

    return dict(assignment) | {
        "who": report.who(plan, assignment.get("principal_id"), assignment.get("principal_type")),
        "alarm": is_alarm(assignment, kind),
    }


def _finding_id(finding: dict[str, Any]) -> tuple[str, str]:
    return str(finding.get("policy")), str(finding.get("resource"))


def compare(
    environment: str,
    before: EnvironmentPlan | None,
    after: EnvironmentPlan | None,
    *,
    before_error: str | None = None,
) -> EnvironmentDiff:
    from blueprint_infra import naming
    from mlops_blueprint import report

    before = report.ordered(before) if before else None
    after = report.ordered(after) if after else None
    known = after or before
    kind = (known.kind if known else "") or naming.environment_kind(environment)
    diff = EnvironmentDiff(environment, kind, before, after, before_error)

    def azure(plan: EnvironmentPlan | None) -> dict[tuple[str, str], dict[str, Any]]:
        # the role assignments are shown as grants
        return {report.resource_key(r): r for r in report.non_rbac_resources(plan)} if plan else {}

    old, new = azure(before), azure(after)
    diff.resources_added = [_resource_summary(new[k]) for k in sorted(set(new) - set(old))]
    diff.resources_removed = [_resource_summary(old[k]) for k in sorted(set(old) - set(new))]
    for key in sorted(set(old) & set(new)):
        changes = property_changes(old[key].get("properties") or {},
                                   new[key].get("properties") or {})
        if bool(old[key].get("protect")) != bool(new[key].get("protect")):
            changes.append({"path": "(protect)", "before": bool(old[key].get("protect")),
                            "after": bool(new[key].get("protect"))})
        if changes:
            diff.resources_changed.append(_resource_summary(new[key]) | {"changes": changes})

    old_grants = {grant_key(a): a for a in (before.role_assignments if before else [])}
    new_grants = {grant_key(a): a for a in (after.role_assignments if after else [])}
    diff.granted = [
        _grant(after, a, kind) for k, a in new_grants.items() if k not in old_grants
    ]
    diff.revoked = [
        _grant(before, a, kind) | {"alarm": False}
        for k, a in old_grants.items() if k not in new_grants
    ]
    # humans and write roles in prod first: what the reviewer must see
    diff.granted.sort(key=lambda g: (not g["alarm"], report.role_assignment_key(g)))

    old_found = {_finding_id(v): v for v in (before.violations if before else [])}
    new_found = {_finding_id(v): v for v in (after.violations if after else [])}
    diff.violations_new = [v for k, v in new_found.items() if k not in old_found]
    diff.violations_resolved = [v for k, v in old_found.items() if k not in new_found]
    return diff


# --- the command's work -----------------------------------------------------------------------


def plan_against(
    project_dir: Path, ref: str, environments: Sequence[str], *, as_identity: str | None = None
) -> PlanDiff:
    """Preview the project on disk and at `ref`, and compare them environment by environment.
    Both versions' stacks go through one `preview_many` call (one pool of workers). A stack the
    new version cannot preview is bad input (as in `plan`); one the old version cannot preview
    is reported, and everything in the new one counts as added."""
    from blueprint_infra import naming
    from mlops_blueprint.previews import PreviewFailure, PreviewRequest, preview_many
    from mlops_blueprint.project import BOOTSTRAP_ENV, load_project

    project = load_project(project_dir)
    if as_identity is not None:
        as_identity = naming.validate_guid(as_identity, "--as")
    with checkout(project.root, ref) as (version, old_root):
        old_project, old_error = None, None
        if old_root is not None:
            try:
                old_project = load_project(old_root)
            except UsageError as error:  # e.g. its answers file did not parse: say so, go on
                old_error = str(error).replace(str(old_root), f"{ref}:")
        new_envs = project.stack_names_with_bootstrap()
        old_envs = old_project.stack_names_with_bootstrap() if old_project else []
        wanted = list(dict.fromkeys(environments)) or list(
            dict.fromkeys(e for e in [*new_envs, *old_envs] if e != BOOTSTRAP_ENV)
        )
        for env in wanted:
            if env not in new_envs and env not in old_envs:
                project.stack(env)  # raises the usual one-line "unknown environment"
        new_wanted = [e for e in wanted if e in new_envs]
        old_wanted = [e for e in wanted if e in old_envs]
        outcomes = preview_many(
            [PreviewRequest(project.root, e, as_identity) for e in new_wanted]
            + [PreviewRequest(old_project.root, e, as_identity) for e in old_wanted],
            projects=[project, old_project] if old_project else [project],
        )
    after_outcomes = dict(zip(new_wanted, outcomes[: len(new_wanted)], strict=True))
    before_outcomes = dict(zip(old_wanted, outcomes[len(new_wanted):], strict=True))
    failures = [o for o in after_outcomes.values() if isinstance(o, PreviewFailure)]
    if failures:
        raise UsageError("; ".join(str(f) for f in failures))
    errors = {
        env: str(o) for env, o in before_outcomes.items() if isinstance(o, PreviewFailure)
    } | ({env: old_error for env in wanted} if old_error else {})
    before = {
        env: o for env, o in before_outcomes.items() if not isinstance(o, PreviewFailure)
    }
    diffs = [
        compare(env, before.get(env), after_outcomes.get(env), before_error=errors.get(env))
        for env in wanted
    ]
    return PlanDiff(project.slug, version, diffs)
