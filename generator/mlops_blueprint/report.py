"""How `blueprint plan` shows its previews: rich tables, JSON, Markdown and Mermaid.

Every renderer first puts a plan in its canonical order (`ordered`): Pulumi registers resources
in whatever order the program's outputs resolve, so the raw preview order changes from run to run
and a pull-request comment built from it would change although nothing else did.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from blueprint_infra.roles import HUMAN_PRINCIPAL_TYPES

if TYPE_CHECKING:
    from mlops_blueprint.previews import EnvironmentPlan

#: Properties that carry a resource's Azure name, by preference.
NAME_KEYS = (
    "resourceGroupName",
    "accountName",
    "vaultName",
    "registryName",
    "workspaceName",
    "computeName",
    "resourceName",
    "containerName",
    "extensionName",
    "resourceName_",
    "lockName",
    "roleAssignmentName",
)
_OWN_NAME_KEY = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:machinelearningservices:Workspace": "workspaceName",
    "azure-native:machinelearningservices:Registry": "registryName",
    "azure-native:machinelearningservices:Compute": "computeName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:applicationinsights:Component": "resourceName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:authorization:ManagementLockAtResourceGroupLevel": "lockName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
    "azure-native:authorization:RoleDefinition": "roleName",
    "azure-native:keyvault:Key": "keyName",
    "azure-native:managedidentity:FederatedIdentityCredential":
        "federatedIdentityCredentialResourceName",
}


#: As `blueprint_infra.policies.ROLE_ASSIGNMENT`, which costs 30 ms to import for one name.
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def _json_default(value: Any) -> Any:
    return repr(value) if type(value).__name__ == "_Unknown" else str(value)


# --- canonical order --------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def sorted_properties(value: Any) -> Any:
    """Mappings with their keys sorted, all the way down (list order is the program's and
    meaningful, so lists keep it)."""
    if isinstance(value, dict):
        return {str(k): sorted_properties(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [sorted_properties(v) for v in value]
    return value


def resource_key(resource: dict[str, Any]) -> tuple[str, str]:
    """A resource's identity within a stack, as Pulumi's: (type token, logical name)."""
    return _text(resource.get("type")), _text(resource.get("name"))


def role_assignment_key(assignment: dict[str, Any]) -> tuple[str, ...]:
    """Humans and groups first (what a reviewer reads first), then by principal, role, scope;
    the logical name last makes the key unique within a stack."""
    return (
        _text(assignment.get("principal_type")),
        _text(assignment.get("principal_id")).lower(),
        _text(assignment.get("role")),
        _text(assignment.get("scope")).lower(),
        _text(assignment.get("name")),
    )


def finding_key(finding: dict[str, Any]) -> tuple[str, str, str]:
    return _text(finding.get("policy")), _text(finding.get("resource")), _text(
        finding.get("message")
    )


def cost_item_key(item: Any) -> tuple[float, str, str]:
    """The dearest first; ties by resource and type."""
    if not isinstance(item, dict):
        return 0.0, _text(item), ""
    monthly = item.get("monthly")
    amount = float(monthly) if isinstance(monthly, (int, float)) else 0.0
    return -amount, _text(item.get("resource")), _text(item.get("type"))


def ordered(plan: EnvironmentPlan) -> EnvironmentPlan:
    """The plan with every list in a stable order and every mapping's keys sorted: the same
    project previews to the same bytes whatever the run (hash seed, event-loop timing)."""
    cost = dict(plan.monthly_cost_estimate)
    if isinstance(cost.get("items"), list):
        cost["items"] = sorted(cost["items"], key=cost_item_key)
    return dataclasses.replace(
        plan,
        resources=[
            {**r, "properties": sorted_properties(r.get("properties") or {})}
            for r in sorted(plan.resources, key=resource_key)
        ],
        role_assignments=sorted(plan.role_assignments, key=role_assignment_key),
        violations=sorted(plan.violations, key=finding_key),
        advisories=sorted(plan.advisories, key=finding_key),
        monthly_cost_estimate=cost,
        principals=dict(sorted(plan.principals.items())),
    )


def ordered_all(plans: Sequence[EnvironmentPlan]) -> list[EnvironmentPlan]:
    """Each plan in canonical order; the environments keep the order asked for (the answers')."""
    return [ordered(p) for p in plans]


def to_json(plans: Sequence[EnvironmentPlan], *, single: bool) -> str:
    data: Any = [p.as_json() for p in ordered_all(plans)]
    if single and len(plans) == 1:
        data = data[0]
    return json.dumps(data, indent=2, default=_json_default)


def print_json(plans: Sequence[EnvironmentPlan], *, single: bool) -> None:
    print(to_json(plans, single=single))


# --- small helpers ----------------------------------------------------------------------------


def short_type(token: str) -> str:
    """`azure-native:storage:StorageAccount` -> `storage:StorageAccount`."""
    return token.split(":", 1)[1] if token.startswith("azure-native:") else token


def azure_name(resource: dict[str, Any]) -> str:
    props = resource.get("properties") or {}
    own = _OWN_NAME_KEY.get(resource.get("type", ""))
    value = props.get(own) if own else None
    if own is None:  # a type we do not know: its own name, never its resource group's
        value = next(
            (props[k] for k in NAME_KEYS[1:] if isinstance(props.get(k), str)), None
        )
    return value if isinstance(value, str) else ""


def short_scope(scope: Any) -> str:
    """The end of an ARM id a reviewer recognises: `storageAccounts/stchurnprod1a2b3c`,
    `resourceGroups/rg-churn-prod`, `subscription`."""
    if not isinstance(scope, str) or not scope.startswith("/"):
        return str(scope)
    parts = [p for p in scope.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" in lowered and len(parts) >= 2:
        return "/".join(parts[-2:])
    if "resourcegroups" in lowered[:-1]:
        return f"resourceGroups/{parts[lowered.index('resourcegroups') + 1]}"
    if lowered and lowered[0] == "subscriptions":
        return "subscription"
    return scope


def azure_resources(plan: EnvironmentPlan) -> list[dict[str, Any]]:
    """The resources Azure would see: not the program's own component resources."""
    return [r for r in plan.resources if str(r.get("type", "")).startswith("azure-native:")]


def who(plan: EnvironmentPlan, principal_id: Any, principal_type: Any = None) -> str:
    """Who a principal is, when the stack config names it; a service principal the config does
    not name is an identity the program creates (a workspace's or a deploy identity)."""
    label = plan.principals.get(str(principal_id).lower())
    if label:
        return label
    return "managed identity" if principal_type == "ServicePrincipal" else ""


def non_rbac_resources(plan: EnvironmentPlan) -> list[dict[str, Any]]:
    """The Azure resources but the role assignments (those are shown as the RBAC matrix)."""
    return [r for r in azure_resources(plan) if r["type"] != ROLE_ASSIGNMENT]


def cost_line(plan: EnvironmentPlan) -> str:
    cost = plan.monthly_cost_estimate
    total = cost.get("total")
    total_text = f"{total:,.2f}" if isinstance(total, (int, float)) else str(total)
    return f"{total_text} {cost.get('currency', '')}/month".strip()


def _item_fields(item: Any) -> tuple[str, str, str]:
    """(what, note, monthly) of a cost item: {"resource", "type", "monthly", "note"}."""
    if not isinstance(item, dict):
        return str(item), "", ""
    what = str(item.get("resource") or item.get("type") or "")
    if item.get("type") and item.get("resource"):
        what = f"{what} ({short_type(str(item['type']))})"
    monthly = item.get("monthly", "")
    monthly_text = f"{monthly:,.2f}" if isinstance(monthly, (int, float)) else str(monthly)
    return what, str(item.get("note", "")), monthly_text


def _console() -> Any:
    """A rich console for the tables; in CI logs and pipes, wide enough for ids."""
    from rich.console import Console

    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


def verdict(plan: EnvironmentPlan) -> str:
    if plan.passed:
        return "all policies pass"
    count = len(plan.violations)
    return f"{count} policy violation{'s' if count != 1 else ''}"


# --- table ------------------------------------------------------------------------------------


def print_tables(plans: Sequence[EnvironmentPlan]) -> None:
    from rich.table import Table

    console = _console()
    for plan in ordered_all(plans):
        style = "green" if plan.passed else "red"
        console.rule(
            f"[bold]{plan.project}[/] / [bold]{plan.environment}[/] ({plan.kind}, "
            f"{plan.location}) [{style}]{verdict(plan)}[/]"
        )

        resources = non_rbac_resources(plan)
        inventory = Table(
            title=f"Resources ({len(resources)}, and {len(plan.role_assignments)} role "
            "assignments below)",
            title_justify="left",
        )
        for column in ("type", "logical name", "Azure name", "protected"):
            inventory.add_column(column)
        for r in resources:
            protected = "yes" if r.get("protect") else ""
            inventory.add_row(short_type(r["type"]), r["name"], azure_name(r), protected)
        console.print(inventory)

        rbac = Table(title="Role assignments (RBAC matrix)", title_justify="left")
        rbac.add_column("principal", no_wrap=True)
        for column in ("who", "type", "role"):
            rbac.add_column(column)
        rbac.add_column("scope", overflow="fold")
        rbac.add_column("assignment", overflow="fold")
        for a in plan.role_assignments:
            human = a.get("principal_type") in HUMAN_PRINCIPAL_TYPES
            rbac.add_row(
                str(a.get("principal_id")),
                who(plan, a.get("principal_id"), a.get("principal_type")),
                f"[bold]{a.get('principal_type')}[/]" if human else str(a.get("principal_type")),
                str(a.get("role")),
                short_scope(a.get("scope")),
                str(a.get("name", "")),
            )
        console.print(rbac)

        if plan.violations:
            violations = Table(title="Policy violations", title_justify="left", style="red")
            for column in ("policy", "resource", "message"):
                violations.add_column(column)
            for v in plan.violations:
                violations.add_row(v["policy"], v["resource"], v["message"])
            console.print(violations)
        else:
            console.print("[green]Policies: all pass[/]")
        for note in plan.advisories:
            console.print(f"[yellow]advisory[/] {note['policy']} ({note['resource']}): "
                          f"{note['message']}")

        cost = Table(title=f"Estimated idle cost: {cost_line(plan)}", title_justify="left")
        for column in ("item", "note", "monthly"):
            cost.add_column(column)
        for item in plan.monthly_cost_estimate.get("items", []):
            cost.add_row(*_item_fields(item))
        console.print(cost)
        if plan.monthly_cost_estimate.get("label"):
            console.print(plan.monthly_cost_estimate["label"], style="dim", markup=False)
        console.print()
    failed = [p.environment for p in plans if not p.passed]
    if failed:
        console.print(f"[red bold]Policy violations in: {', '.join(failed)}[/]")


# --- markdown ---------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def to_markdown(plans: Sequence[EnvironmentPlan]) -> str:
    plans = ordered_all(plans)
    lines: list[str] = []
    if plans:
        ok = all(p.passed for p in plans)
        lines += [
            f"## blueprint plan: {plans[0].project}",
            "",
            ("✅ every policy passes" if ok else "❌ policy violations") + " in "
            + ", ".join(f"`{p.environment}`" for p in plans),
            "",
        ]
    for plan in plans:
        mark = "✅" if plan.passed else "❌"
        lines += [
            f"### {mark} `{plan.environment}` ({plan.kind}): {verdict(plan)}",
            "",
            f"Estimated idle cost: **{cost_line(plan)}** · {len(non_rbac_resources(plan))} "
            "resources · "
            f"{len(plan.role_assignments)} role assignments · `{plan.stack_file}`",
            "",
        ]
        if plan.violations:
            lines += _md_table(
                ("policy", "resource", "message"),
                [(v["policy"], f"`{v['resource']}`", v["message"]) for v in plan.violations],
            )
            lines.append("")
        lines += ["#### Role assignments", ""]
        lines += _md_table(
            ("principal", "who", "type", "role", "scope", "assignment"),
            [
                (
                    f"`{a.get('principal_id')}`",
                    who(plan, a.get("principal_id"), a.get("principal_type")),
                    a.get("principal_type"),
                    a.get("role"),
                    f"`{short_scope(a.get('scope'))}`",
                    a.get("name", ""),
                )
                for a in plan.role_assignments
            ],
        )
        lines += ["", "<details><summary>Resources and cost</summary>", ""]
        lines += _md_table(
            ("type", "logical name", "Azure name"),
            [(f"`{r['type']}`", r["name"], azure_name(r)) for r in non_rbac_resources(plan)],
        )
        lines.append("")
        lines += _md_table(
            ("item", "note", "monthly"),
            [_item_fields(i) for i in plan.monthly_cost_estimate.get("items", [])],
        )
        if plan.monthly_cost_estimate.get("label"):
            lines += ["", f"_{_md(plan.monthly_cost_estimate['label'])}_"]
        if plan.advisories:
            lines += ["", "Advisories:", ""]
            lines += [
                f"- {a['policy']} (`{a['resource']}`): {_md(a['message'])}"
                for a in plan.advisories
            ]
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def print_markdown(plans: Sequence[EnvironmentPlan]) -> None:
    print(to_markdown(plans))


# --- mermaid ----------------------------------------------------------------------------------


def _node_id(*parts: Any) -> str:
    return "n" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:10]


def _label(text: Any) -> str:
    return str(text).replace('"', "#quot;")


def to_mermaid(plans: Sequence[EnvironmentPlan]) -> str:
    """A flowchart: one subgraph per environment with its resources; each principal points at
    the resource (scope) it holds a role on, the edge labelled with the role."""
    plans = ordered_all(plans)
    lines = ["flowchart LR"]
    principals: dict[str, str] = {}
    edges: list[str] = []
    for plan in plans:
        env_id = _node_id("env", plan.environment)
        lines.append(f'  subgraph {env_id}["{_label(plan.environment)} ({plan.kind})"]')
        by_name: dict[str, str] = {}
        for r in non_rbac_resources(plan):
            node = _node_id(plan.environment, r["type"], r["name"])
            name = azure_name(r) or r["name"]
            by_name.setdefault(name.lower(), node)
            lines.append(f'    {node}["{_label(short_type(r["type"]))}<br/>{_label(name)}"]')
        for a in plan.role_assignments:
            scope = a.get("scope")
            tail = str(scope).rstrip("/").rsplit("/", 1)[-1].lower()
            target = by_name.get(tail)
            if target is None:
                target = _node_id(plan.environment, "scope", scope)
                if target not in by_name.values():
                    by_name[f"scope:{scope}"] = target
                    lines.append(f'    {target}["{_label(short_scope(scope))}"]')
            principal = str(a.get("principal_id"))
            if principal not in principals:
                principals[principal] = _node_id("principal", principal)
            style = "==>" if a.get("principal_type") in HUMAN_PRINCIPAL_TYPES else "-->"
            edges.append(f'  {principals[principal]} {style}|"{_label(a.get("role"))}"| {target}')
        lines.append("  end")
    for principal, node in principals.items():
        label = next((p.principals[principal.lower()] for p in plans
                      if principal.lower() in p.principals), "")
        ptype = next(
            (a.get("principal_type") for p in plans for a in p.role_assignments
             if str(a.get("principal_id")) == principal),
            "",
        )
        text = f"{label}<br/>" if label else ""
        lines.append(f'  {node}(["{_label(text)}{_label(ptype)}<br/>{_label(principal)}"])')
    lines += edges
    return "\n".join(lines)


def print_mermaid(plans: Sequence[EnvironmentPlan]) -> None:
    print(to_mermaid(plans))


# --- plan --against: what a change does ---------------------------------------------------------

if TYPE_CHECKING:
    from mlops_blueprint.plan_diff import EnvironmentDiff, PlanDiff


#: Changed inputs listed per resource in a pull-request comment (GitHub caps a comment at
#: 65,536 characters; renaming a project changes every input of every resource).
MARKDOWN_CHANGES_PER_RESOURCE = 12


def diff_to_json(diff: PlanDiff) -> str:
    return json.dumps(diff.as_json(), indent=2, default=_json_default)


def _signed(amount: float) -> str:
    return f"{amount:+,.2f}"


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        # Pulumi passes every number as a double: a node count of 4 arrives as 4.0
        value = int(value)
    text = json.dumps(value, default=_json_default) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def _counts(added: int, removed: int, changed: int | None = None) -> str:
    if not (added or removed or changed):
        return "no change"
    parts = [f"+{added}", f"-{removed}"] + ([f"~{changed}"] if changed is not None else [])
    return " ".join(parts)


def diff_cost_line(env: EnvironmentDiff) -> str:
    currency = env.currency
    if env.before is None or env.after is None:
        return f"{env.cost_before:,.2f} → {env.cost_after:,.2f} {currency}".strip()
    if not env.cost_delta:
        return f"{env.cost_after:,.2f} {currency} (no change)".strip()
    return (f"{env.cost_before:,.2f} → {env.cost_after:,.2f} {currency} "
            f"({_signed(env.cost_delta)})")


def diff_verdict(env: EnvironmentDiff) -> str:
    if env.after is None:
        return "removed"
    count = len(env.after.violations)
    if not count:
        was = " (fixed by this change)" if env.passed_before is False else ""
        return f"passes{was}"
    new = len(env.violations_new)
    text = f"{count} violation{'s' if count != 1 else ''}"
    return text + (f", {new} new" if new else ", none new")


def _grant_line(grant: dict[str, Any]) -> str:
    who_text = f" ({grant['who']})" if grant.get("who") else ""
    return (f"{grant.get('principal_type')} {grant.get('principal_id')}{who_text} gets "
            f"{grant.get('role')} on {short_scope(grant.get('scope'))}")


def _change_line(change: dict[str, Any]) -> str:
    return f"{change['path']}: {_value(change['before'])} → {_value(change['after'])}"


def diff_to_markdown(diff: PlanDiff) -> str:
    envs = diff.environments
    failed = [e.environment for e in envs if not e.passed]
    alarms = sum(len(e.alarms) for e in envs)
    lines = [
        f"## blueprint plan: `{diff.project}` against `{diff.against.ref}` "
        f"(`{diff.against.commit[:12]}`)",
        "",
    ]
    summary = ("❌ policy violations in " + ", ".join(f"`{e}`" for e in failed)) if failed else (
        "✅ every policy passes")
    if alarms:
        summary += f" · 🚨 {alarms} new prod grant{'s' if alarms != 1 else ''} to review"
    if not any(e.changed or e.status in ("added", "removed") for e in envs):
        summary += " · no change to any environment"
    lines += [summary, ""]
    custom = next((e for e in envs if e.custom_program), None)
    if custom:  # project-wide (.cloud/infra/custom-program.yaml): said once
        new = " (declared in this change)" if custom.custom_program_before is None else ""
        lines += [f"> ⚠️ **Custom program**{new}: this project runs its own program "
                  f"({_md(custom.custom_program)}); review its code, not only this preview.", ""]
    lines += _md_table(
        ("environment", "verdict", "resources (+ - ~)", "role assignments (+ -)", "monthly cost"),
        [
            (
                f"{'✅' if e.passed else '❌'} `{e.environment}` ({e.kind})"
                + ("" if e.status in ("changed", "unchanged") else f" {e.status}"),
                diff_verdict(e),
                _counts(len(e.resources_added), len(e.resources_removed),
                        len(e.resources_changed)),
                _counts(len(e.granted), len(e.revoked)),
                diff_cost_line(e),
            )
            for e in envs
        ],
    )
    lines.append("")
    for env in envs:
        if not (env.changed or env.before_error or env.status != "unchanged"):
            continue
        lines += [f"### `{env.environment}` ({env.kind}): {env.status}", ""]
        if env.before_error:
            lines += [f"_At `{diff.against.ref}` it could not be previewed "
                      f"({_md(env.before_error)}); everything counts as added._", ""]
        for grant in env.alarms:
            lines.append(
                f"> 🚨 **New in {env.environment}:** {grant.get('principal_type')} "
                f"`{grant.get('principal_id')}`"
                + (f" ({_md(grant['who'])})" if grant.get("who") else "")
                + f" gets **{_md(grant.get('role'))}** on `{short_scope(grant.get('scope'))}`"
                + f" (`{_md(grant.get('name', ''))}`)"
            )
        if env.alarms:
            lines.append("")
        if env.violations_new or env.violations_resolved:
            lines += _md_table(
                ("policy", "resource", "", "message"),
                [(v["policy"], f"`{v['resource']}`", "❌ new", v["message"])
                 for v in env.violations_new]
                + [(v["policy"], f"`{v['resource']}`", "✅ resolved", v["message"])
                   for v in env.violations_resolved],
            )
            lines.append("")
        if env.granted or env.revoked:
            lines += ["#### Role assignments", ""]
            lines += _md_table(
                ("", "principal", "who", "type", "role", "scope", "assignment"),
                [
                    (
                        ("🚨 granted" if g.get("alarm") else "granted") if sign == "+"
                        else "revoked",
                        f"`{g.get('principal_id')}`", g.get("who", ""), g.get("principal_type"),
                        g.get("role"), f"`{short_scope(g.get('scope'))}`", g.get("name", ""),
                    )
                    for sign, grants in (("+", env.granted), ("-", env.revoked))
                    for g in grants
                ],
            )
            lines.append("")
        if env.resources_added or env.resources_removed or env.resources_changed:
            lines += ["#### Resources", ""]
            rows = []
            for label, items in (("added", env.resources_added),
                                 ("removed", env.resources_removed),
                                 ("changed", env.resources_changed)):
                for r in items:
                    what = label
                    if label == "changed":
                        count = len(r["changes"])
                        what += f" ({count} input{'s' if count != 1 else ''})"
                    rows.append((what, f"`{short_type(str(r['type']))}`", r["name"],
                                 r.get("azure_name", "")))
            lines += _md_table(("", "type", "logical name", "Azure name"), rows)
            lines.append("")
            if env.resources_changed:
                lines += ["<details><summary>Changed inputs</summary>", ""]
                for r in env.resources_changed:
                    for change in r["changes"][:MARKDOWN_CHANGES_PER_RESOURCE]:
                        lines.append(f"- `{r['name']}` `{_md(change['path'])}`: "
                                     f"`{_md(_value(change['before']))}` → "
                                     f"`{_md(_value(change['after']))}`")
                    hidden = len(r["changes"]) - MARKDOWN_CHANGES_PER_RESOURCE
                    if hidden > 0:  # a comment has a size limit; the JSON has them all
                        lines.append(f"- `{r['name']}`: {hidden} more (`--format json` lists "
                                     "every one)")
                lines += ["", "</details>", ""]
    return "\n".join(lines)


def print_diff_tables(diff: PlanDiff) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{diff.project}[/]: this version against [bold]{diff.against.ref}[/] "
                  f"({diff.against.commit[:12]})", markup=True)
    custom = next((e.custom_program for e in diff.environments if e.custom_program), None)
    if custom:
        console.print(f"[yellow bold]custom program:[/] this project runs its own program "
                      f"({escape(custom)}); review its code, not only this preview", markup=True)
    for env in diff.environments:
        style = "green" if env.passed else "red"
        console.rule(f"[bold]{env.environment}[/] ({env.kind}) {env.status}: "
                     f"[{style}]{diff_verdict(env)}[/] · cost {diff_cost_line(env)}")
        if env.before_error:
            console.print(f"[yellow]at {diff.against.ref} it could not be previewed:[/] "
                          f"{escape(env.before_error)}", markup=True)
        if not env.changed and env.status == "unchanged":
            console.print("no change")
            continue
        for grant in env.alarms:
            console.print(f"[red bold]NEW IN {env.environment.upper()}:[/] "
                          f"{escape(_grant_line(grant))}", markup=True)
        for v in env.violations_new:
            console.print(f"[red]new violation[/] {escape(v['policy'])} "
                          f"({escape(v['resource'])}): {escape(v['message'])}")
        for v in env.violations_resolved:
            console.print(f"[green]resolved[/] {escape(v['policy'])} ({escape(v['resource'])})")
        if env.granted or env.revoked:
            table = Table(title="Role assignments", title_justify="left")
            for column in ("", "principal", "who", "type", "role", "scope"):
                table.add_column(column, overflow="fold")
            for g in env.granted:
                mark = "[red bold]+ granted[/]" if g.get("alarm") else "+ granted"
                table.add_row(mark, *_grant_cells(g))
            for g in env.revoked:
                table.add_row("- revoked", *_grant_cells(g))
            console.print(table)
        if env.resources_added or env.resources_removed or env.resources_changed:
            table = Table(title="Resources", title_justify="left")
            for column in ("", "type", "logical name", "Azure name", "inputs"):
                table.add_column(column, overflow="fold")
            for label, items in (("+ added", env.resources_added),
                                 ("- removed", env.resources_removed),
                                 ("~ changed", env.resources_changed)):
                for r in items:
                    changes = "\n".join(_change_line(c) for c in r.get("changes", []))
                    table.add_row(label, *(escape(str(c)) for c in (
                        short_type(str(r["type"])), r["name"], r.get("azure_name", ""), changes)))
            console.print(table)
    failed = [e.environment for e in diff.environments if not e.passed]
    if failed:
        console.print(f"[red bold]Policy violations in: {', '.join(failed)}[/]")


def _grant_cells(grant: dict[str, Any]) -> list[str]:
    from rich.markup import escape

    return [escape(str(c)) for c in (grant.get("principal_id"), grant.get("who", ""),
                                     grant.get("principal_type"), grant.get("role"),
                                     short_scope(grant.get("scope")))]


# --- fleet: many projects ------------------------------------------------------------------------

if TYPE_CHECKING:
    from mlops_blueprint.fleet_view import FleetReport, ProjectStatus


def fleet_to_json(fleet: FleetReport) -> str:
    return json.dumps(fleet.as_json(), indent=2, default=_json_default)


def fleet_template_cell(project: ProjectStatus) -> str:
    t = project.template
    if t is None:
        return ""
    version = t.version or "?"
    if t.error:
        return f"{version} (unknown)"
    if not t.behind:
        return f"{version} (newest)"
    return f"{version} ({t.behind} behind {t.newest})"


def fleet_stacks_cell(project: ProjectStatus, *, marks: tuple[str, str, str]) -> str:
    ok, bad, error = marks
    cells = []
    for s in project.stacks:
        if s.verdict == "error":
            cells.append(f"{s.environment} {error}")
        elif s.verdict == "violates":
            cells.append(f"{s.environment} {bad}{len(s.violations)}")
        else:
            cells.append(f"{s.environment} {ok}")
    return " ".join(cells)


def fleet_findings(project: ProjectStatus) -> list[str]:
    """One line per thing to fix in a project, most urgent first."""
    if project.error:
        return [f"cannot read: {project.error}"]
    lines = [f"{s.environment}: cannot preview: {s.error}" for s in project.stacks if s.error]
    lines += [
        f"{s.environment}: {v['policy']} ({v['resource']}): {v['message']}"
        for s in project.stacks for v in s.violations
    ]
    lines += [f"conflict: {c['file']}" + (f":{c['line']}" if c.get("line") else " (rejected hunk)")
              for c in project.conflicts]
    lines += [f"placeholder: {p['file']} {p['key']}" for p in project.placeholders]
    if project.custom_program:
        lines.append(f"custom program: {project.custom_program} (review its code)")
    t = project.template
    if t and t.error:
        lines.append(f"template: {t.error}")
    elif t and t.behind:
        lines.append(f"template: {t.behind} release{'s' if t.behind != 1 else ''} behind "
                     f"{t.newest} (copier update --vcs-ref {t.newest})")
    return lines


def _fleet_summary_line(fleet: FleetReport) -> str:
    s = fleet.summary()

    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    return (f"{count(s['projects'], 'project')} ({s['unreadable']} unreadable), "
            f"{count(s['stacks'], 'stack')}: "
            f"{s['violating_stacks']} violating, {s['stack_errors']} not previewable; "
            f"{s['behind']} behind the newest template, {s['with_placeholders']} with "
            f"placeholders, {s['with_conflicts']} with conflicts, {s['custom_programs']} running "
            "their own program")


def print_fleet_table(fleet: FleetReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    table = Table(title="Fleet", title_justify="left")
    for column in ("project", "path", "template", "stacks", "placeholders", "conflicts"):
        table.add_column(column, overflow="fold")
    for p in fleet.projects:
        if p.error:
            table.add_row("[red]unreadable[/]", escape(p.path), "", "", "", "")
            continue
        table.add_row(
            escape(p.project or ""), escape(p.path), escape(fleet_template_cell(p)),
            fleet_stacks_cell(p, marks=("[green]ok[/]", "[red]✗[/]", "[red]error[/]")),
            str(len(p.placeholders) or ""), str(len(p.conflicts) or ""),
        )
    console.print(table)
    for p in fleet.projects:
        findings = fleet_findings(p)
        if findings:
            console.print(f"[bold]{escape(p.project or p.path)}[/] ({escape(p.path)})")
            for line in findings:
                console.print(f"  {escape(line)}")
    console.print(_fleet_summary_line(fleet))


def fleet_to_markdown(fleet: FleetReport) -> str:
    lines = ["## blueprint fleet", "", _fleet_summary_line(fleet), ""]
    lines += _md_table(
        ("project", "path", "template", "stacks", "placeholders", "conflicts"),
        [
            ("❓ unreadable", f"`{p.path}`", "", "", "", "") if p.error else (
                ("❌ " if p.violates or any(s.error for s in p.stacks) else "✅ ")
                + (p.project or ""),
                f"`{p.path}`", fleet_template_cell(p),
                fleet_stacks_cell(p, marks=("✅", "❌", "⚠️")),
                len(p.placeholders) or "", len(p.conflicts) or "",
            )
            for p in fleet.projects
        ],
    )
    details = [(p, fleet_findings(p)) for p in fleet.projects]
    details = [(p, found) for p, found in details if found]
    if details:
        lines += ["", "### Findings", ""]
        for p, found in details:
            lines.append(f"- **{_md(p.project or p.path)}** (`{p.path}`)")
            lines += [f"  - {_md(line)}" for line in found]
    return "\n".join(lines) + "\n"
