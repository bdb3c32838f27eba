"""A small evaluator of Azure Policy rules over a previewed program's recorded resources.

It covers the subset of the policy language the Microsoft cloud security benchmark's definitions
use on what an environment creates: `field`/`value`/`count` conditions with `equals`,
`notEquals`, `in`, `notIn`, `exists`, `contains`, `notContains`, `like`, `less`,
`greaterOrEquals` (and the other orderings), `allOf`/`anyOf`/`not`, a handful of template
functions (`parameters`, `field`, `current`, `requestContext().apiVersion`,
`resourcegroup().managedBy`, `empty`, `length`, `padLeft`, `last`, `split`), and
`auditIfNotExists` existence conditions on diagnostic settings and private endpoint connections.

Recorded inputs are Pulumi's (camelCase, sometimes flattened or renamed); `ALIAS_RENAMES` and
the `properties.` fallbacks in `Target.lookup` map an alias onto them. Where Azure itself adds
state, the evaluator models it and says so: a private endpoint created with an (automatically
approved) `privateLinkServiceConnections` entry shows on its target as an Approved
`privateEndpointConnections` element.

As a dev script, it evaluates the real definitions from a local checkout of Azure/azure-policy
(which stays out of this repository) against a prod stack previewed offline:

    python tests/infra/azure_policy_eval.py --azure-policy /path/to/azure-policy \\
        [--infra PROJECT/.cloud/infra --stack prod]

Without `--infra` it renders a `--defaults` project (copier) into a temporary directory first.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any

from blueprint_infra.preview import FAKE_SUBSCRIPTION_ID

MISSING = object()

#: Pulumi type token -> (ARM type, input holding the name, parent name input or None)
ARM_TYPES: dict[str, tuple[str, str, str | None]] = {
    "azure-native:storage:StorageAccount": ("Microsoft.Storage/storageAccounts", "accountName",
                                            None),
    "azure-native:keyvault:Vault": ("Microsoft.KeyVault/vaults", "vaultName", None),
    "azure-native:containerregistry:Registry": ("Microsoft.ContainerRegistry/registries",
                                                "registryName", None),
    "azure-native:machinelearningservices:Workspace": (
        "Microsoft.MachineLearningServices/workspaces", "workspaceName", None),
    "azure-native:machinelearningservices:Compute": (
        "Microsoft.MachineLearningServices/workspaces/computes", "computeName", "workspaceName"),
    "azure-native:operationalinsights:Workspace": ("Microsoft.OperationalInsights/workspaces",
                                                   "workspaceName", None),
    "azure-native:applicationinsights:Component": ("Microsoft.Insights/components",
                                                   "resourceName", None),
    "azure-native:network:PrivateEndpoint": ("Microsoft.Network/privateEndpoints",
                                             "privateEndpointName", None),
}

#: (ARM type, first alias segment) -> the Pulumi input that carries it
ALIAS_RENAMES: dict[tuple[str, str], str] = {
    ("Microsoft.Storage/storageAccounts", "networkAcls"): "networkRuleSet",
    ("Microsoft.Storage/storageAccounts", "supportsHttpsTrafficOnly"): "enableHttpsTrafficOnly",
}

#: The API version azure-native 3.x sends per ARM type (`requestContext().apiVersion`).
API_VERSIONS: dict[str, str] = {
    "Microsoft.Storage/storageAccounts": "2024-01-01",
    "Microsoft.KeyVault/vaults": "2024-11-01",
    "Microsoft.ContainerRegistry/registries": "2023-01-01-preview",
    "Microsoft.MachineLearningServices/workspaces": "2025-12-01",
    "Microsoft.MachineLearningServices/workspaces/computes": "2025-12-01",
}


@dataclass
class Target:
    """One recorded resource as Azure Policy would see it."""

    arm_type: str
    name: str
    id: str
    inputs: dict[str, Any]
    private_endpoint_connections: list[dict] = field(default_factory=list)

    def lookup(self, alias: str) -> Any:
        if alias == "type":
            return self.arm_type
        if alias in ("name", "fullName"):
            return self.name
        if alias == "id":
            return self.id
        if alias in ("kind", "location", "tags"):
            return self.inputs.get(alias, MISSING)
        prefix = self.arm_type + "/"
        if not alias.lower().startswith(prefix.lower()):
            return MISSING  # an alias of another type never matches
        path = alias[len(prefix):]
        first, _, rest = path.partition(".")
        first = first.removesuffix("[*]")
        if first == "privateEndpointConnections":
            return _walk(self.private_endpoint_connections, rest)
        first = ALIAS_RENAMES.get((self.arm_type, first), first)
        for root in (self.inputs, self.inputs.get("properties"),
                     (self.inputs.get("properties") or {}).get("properties")):
            if isinstance(root, dict) and first in root:
                return _walk(root[first], rest)
        return MISSING


def _walk(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        star = part.endswith("[*]")
        part = part.removesuffix("[*]")
        if isinstance(value, list):
            value = [v.get(part, MISSING) if isinstance(v, dict) else MISSING for v in value]
            continue
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
        if star and not isinstance(value, list):
            return MISSING
    return value


def targets(resources: list, subscription_id: str = FAKE_SUBSCRIPTION_ID) -> list[Target]:
    """The policy-relevant resources of a preview, with their ids and Azure-added state."""
    found: list[Target] = []
    for r in resources:
        if r.type not in ARM_TYPES:
            continue
        arm_type, name_key, parent_key = ARM_TYPES[r.type]
        p = r.properties
        group = f"/subscriptions/{subscription_id}/resourceGroups/{p.get('resourceGroupName')}"
        name = str(p.get(name_key) or r.name)
        if parent_key:
            parent_type, child = arm_type.rsplit("/", 1)
            rid = f"{group}/providers/{parent_type}/{p.get(parent_key)}/{child}/{name}"
        else:
            rid = f"{group}/providers/{arm_type}/{name}"
        found.append(Target(arm_type, name, rid, dict(p)))
    by_id = {t.id.lower(): t for t in found}
    for t in found:
        if t.arm_type != "Microsoft.Network/privateEndpoints":
            continue
        for connection in t.inputs.get("privateLinkServiceConnections") or []:
            target = by_id.get(str(connection.get("privateLinkServiceId", "")).lower())
            if target is not None:  # auto-approved: same tenant, the creator has rights
                target.private_endpoint_connections.append({
                    "privateEndpoint": {"id": t.id},
                    "groupIds": connection.get("groupIds"),
                    "privateLinkServiceConnectionState": {"status": "Approved"},
                })
    return found


def diagnostic_settings_of(resources: list, resource_id: str) -> list[dict]:
    return [
        r.properties for r in resources
        if r.type == "azure-native:monitor:DiagnosticSetting"
        and str(r.properties.get("resourceUri", "")).lower() == resource_id.lower()
    ]


# --- conditions --------------------------------------------------------------------------------

class Unsupported(Exception):
    """The rule uses something outside the subset; reported, never guessed."""


@dataclass
class Context:
    target: Target
    parameters: dict[str, Any]
    current: dict[str, Any] = field(default_factory=dict)  # count `name` / alias -> element
    details: dict | None = None  # an existence condition's related resource (raw fields)

    def field_value(self, alias: str) -> Any:
        if alias in self.current:
            return self.current[alias]
        if self.details is not None:
            return _detail_field(self.details, alias, self.current)
        return self.target.lookup(alias)


def _detail_field(related: dict, alias: str, current: dict) -> Any:
    """An alias of the related resource of an existence condition (diagnostic setting or
    private endpoint connection): `Type/path`, where `logs.enabled` means `logs[*].enabled`."""
    namespace_type = "/".join(alias.split("/")[:3]) if alias.count("/") >= 3 else ""
    path = alias[len(namespace_type) + 1:] if namespace_type else alias.split("/", 2)[-1]
    if "logs[*]" in current and path.startswith(("logs[*].", "logs.")):
        element = current["logs[*]"]
        return _walk(element, path.split(".", 1)[1])
    return _walk(related, path)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is MISSING or value is None else str(value)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "exists":
        present = left is not MISSING and left is not None
        return present == (_text(right).lower() == "true")
    if op in ("equals", "notEquals"):
        if isinstance(left, list):
            return op == "notEquals"
        same = left is not MISSING and _text(left).lower() == _text(right).lower()
        return same if op == "equals" else not same
    if op in ("in", "notIn"):
        options = {_text(v).lower() for v in (right or [])}
        inside = left is not MISSING and _text(left).lower() in options
        return inside if op == "in" else not inside
    if op in ("contains", "notContains"):
        inside = _text(right).lower() in _text(left).lower() if left is not MISSING else False
        return inside if op == "contains" else not inside
    if op in ("like", "notLike"):
        matched = fnmatch.fnmatchcase(_text(left).lower(), _text(right).lower())
        return matched if op == "like" else not matched
    if op in ("less", "lessOrEquals", "greater", "greaterOrEquals"):
        if left is MISSING:
            return False
        a, b = (left, right) if all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                    for v in (left, right)) else (_text(left), _text(right))
        return {"less": a < b, "lessOrEquals": a <= b, "greater": a > b,
                "greaterOrEquals": a >= b}[op]
    raise Unsupported(f"operator {op}")


OPERATORS = ("equals", "notEquals", "in", "notIn", "exists", "contains", "notContains", "like",
             "notLike", "less", "lessOrEquals", "greater", "greaterOrEquals")


def _key(condition: dict, name: str) -> Any:
    """Condition keys are case-insensitive in Azure Policy (`anyof` appears in built-ins)."""
    for key, value in condition.items():
        if key.lower() == name.lower():
            return value
    return MISSING


def holds(condition: dict, ctx: Context) -> bool:
    if (branches := _key(condition, "allOf")) is not MISSING:
        return all(holds(c, ctx) for c in branches)
    if (branches := _key(condition, "anyOf")) is not MISSING:
        return any(holds(c, ctx) for c in branches)
    if (inner := _key(condition, "not")) is not MISSING:
        return not holds(inner, ctx)
    op = next((o for o in OPERATORS if _key(condition, o) is not MISSING), None)
    if op is None:
        raise Unsupported(f"condition {json.dumps(condition)[:120]}")
    right = _resolve(_key(condition, op), ctx)
    if (count := _key(condition, "count")) is not MISSING:
        left: Any = _count(count, ctx)
    elif (alias := _key(condition, "field")) is not MISSING:
        left = ctx.field_value(alias)
    elif (value := _key(condition, "value")) is not MISSING:
        left = _resolve(value, ctx)
    else:
        raise Unsupported(f"condition {json.dumps(condition)[:120]}")
    return _compare(op, left, right)


def _count(spec: dict, ctx: Context) -> int:
    if "field" in spec:
        alias = spec["field"]
        items = ctx.field_value(alias)
        key = alias
        if ctx.details is not None:
            key = alias.split("/", 2)[-1] if "diagnosticSettings" in alias else alias
            key = "logs[*]" if key.endswith("logs[*]") else key
    else:
        items = _resolve(spec["value"], ctx)
        key = spec.get("name", "")
    items = [] if items is MISSING or items is None else items
    if not isinstance(items, list):
        items = [items]
    where = spec.get("where")
    if where is None:
        return len(items)
    total = 0
    for item in items:
        inner = Context(ctx.target, ctx.parameters, {**ctx.current, key: item}, ctx.details)
        if key.endswith("[*]") and ctx.details is None:
            # `Type/list[*].x` inside the where reads x of the current element
            inner.current.update(_element_aliases(key, item))
        total += holds(where, inner)
    return total


def _element_aliases(list_alias: str, item: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def visit(prefix: str, value: Any) -> None:
        out[prefix] = value
        if isinstance(value, dict):
            for k, v in value.items():
                visit(f"{prefix}.{k}", v)

    if isinstance(item, dict):
        for k, v in item.items():
            visit(f"{list_alias}.{k}", v)
    return out


_CALL = re.compile(r"^(\w+)\((.*)\)$", re.S)


def _resolve(value: Any, ctx: Context) -> Any:
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")
            and not value.startswith("[[")):
        return value
    return _expr(value[1:-1].strip(), ctx)


def _split_args(text: str) -> list[str]:
    args, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and depth == 0 and ch == ",":
            args.append(text[start:i].strip())
            start = i + 1
    if text.strip():
        args.append(text[start:].strip())
    return args


def _expr(text: str, ctx: Context) -> Any:
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text == "requestContext().apiVersion":
        return API_VERSIONS.get(ctx.target.arm_type, "2024-01-01")
    if text == "resourcegroup().managedBy":
        return ""
    match = _CALL.match(text)
    if not match:
        raise Unsupported(f"expression {text}")
    name, args = match.group(1).lower(), [_expr(a, ctx) for a in _split_args(match.group(2))]
    if name == "parameters":
        return ctx.parameters.get(args[0], MISSING)
    if name == "field":
        return ctx.field_value(args[0])
    if name == "current":
        return ctx.current.get(args[0] if args else next(iter(ctx.current), ""), MISSING)
    if name == "empty":
        return args[0] in (MISSING, None, "", [], {})
    if name == "length":
        return 0 if args[0] in (MISSING, None) else len(args[0])
    if name == "padleft":
        return _text(args[0]).rjust(int(args[1]), str(args[2])[:1])
    if name == "split":
        return _text(args[0]).split(str(args[1]))
    if name == "last":
        return args[0][-1] if args[0] else ""
    raise Unsupported(f"function {name}")


# --- verdicts ----------------------------------------------------------------------------------

@dataclass
class Verdict:
    definition: str
    display_name: str
    verdict: str  # compliant | non-compliant | not applicable | outside the program
    resources: list[str] = field(default_factory=list)  # non-compliant resource names
    note: str = ""


def evaluate_definition(definition: dict, resources: list,
                        parameters: dict[str, Any] | None = None) -> Verdict:
    """One policy definition (its JSON: `name` and `properties`) against a preview."""
    props = definition.get("properties", definition)
    name = definition.get("name", "")
    params = {k: v.get("defaultValue") for k, v in (props.get("parameters") or {}).items()}
    params.update(parameters or {})
    rule = props["policyRule"]
    then = rule["then"]
    effect = str(_resolve(then.get("effect"), Context(Target("", "", "", {}), params)))
    details = then.get("details") or {}
    applicable: list[Target] = []
    failing: list[str] = []
    for target in targets(resources):
        if not _type_applies(rule["if"], target):
            continue
        applicable.append(target)
        if not holds(rule["if"], Context(target, params)):
            continue  # an Audit/Deny rule describes the non-compliant state
        if effect.lower() in ("auditifnotexists", "deployifnotexists"):
            related = _related(details, target, resources)
            if related is None:
                return Verdict(name, props.get("displayName", ""), "outside the program",
                               note=f"existence of {details.get('type')} is decided in Azure")
            condition = details.get("existenceCondition")
            if not any(condition is None or holds(condition, Context(target, params, {}, r))
                       for r in related):
                failing.append(target.name)
        else:
            failing.append(target.name)
    if not applicable:
        return Verdict(name, props.get("displayName", ""), "not applicable")
    verdict = "non-compliant" if failing else "compliant"
    return Verdict(name, props.get("displayName", ""), verdict, sorted(failing))


def _type_applies(condition: Any, target: Target) -> bool:
    """Whether the rule is about the target's resource type (its `field: type` conditions)."""
    types: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if str(_key(node, "field")).lower() == "type":
                for op in ("equals", "in", "like"):
                    value = _key(node, op)
                    if value is not MISSING:
                        types.update(v.lower() for v in (value if isinstance(value, list)
                                                         else [value]))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(condition)
    return not types or target.arm_type.lower() in types


def _related(details: dict, target: Target, resources: list) -> list[dict] | None:
    kind = str(details.get("type", "")).lower()
    if kind == "microsoft.insights/diagnosticsettings":
        return diagnostic_settings_of(resources, target.id)
    if kind == f"{target.arm_type}/privateEndpointConnections".lower():
        return [{"privateLinkServiceConnectionState": c["privateLinkServiceConnectionState"]}
                for c in target.private_endpoint_connections]
    return None


# --- the dev script ---------------------------------------------------------------------------

def _render_defaults_project(tmp: str) -> str:
    import warnings
    from pathlib import Path

    import copier

    root = Path(__file__).resolve().parents[2]
    dst = Path(tmp) / "project"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(root), str(dst), data={"project_name": "Customer Churn"},
                        defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    return str(dst / ".cloud" / "infra")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import subprocess
    import tempfile
    from pathlib import Path

    from blueprint_infra import guardrails
    from blueprint_infra.preview import preview_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--azure-policy", required=True, help="checkout of Azure/azure-policy")
    parser.add_argument("--infra", help="a project's .cloud/infra (default: a --defaults one)")
    parser.add_argument("--stack", default="prod")
    args = parser.parse_args(argv)

    repo = Path(args.azure_policy)

    def show(path: str) -> dict:
        if (repo / ".git").exists() or (repo / "HEAD").exists():
            raw = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"],
                                 capture_output=True, check=True).stdout
        else:
            raw = (repo / path).read_bytes()
        return json.loads(raw.decode("utf-8-sig"))

    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "HEAD",
         "built-in-policies/policyDefinitions"], capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    by_name: dict[str, str] = {}
    for path in listing:
        if path.endswith(".json") and "Azure Government" not in path:
            by_name[path.rsplit("/", 1)[-1]] = path
    initiative = show("built-in-policies/policySetDefinitions/Security Center/"
                      "AzureSecurityCenter.json")
    with tempfile.TemporaryDirectory() as tmp:
        infra = args.infra or _render_defaults_project(tmp)
        result = preview_stack(infra, args.stack)
    if result.error:
        print(f"preview failed: {result.error}")
        return 1
    index = _index_definitions(repo, listing, show)
    exempt = {d.definition: d for d in guardrails.BENCHMARK_DEVIATIONS}
    bad = 0
    for ref in initiative["properties"]["policyDefinitions"]:
        guid = ref["policyDefinitionId"].rsplit("/", 1)[-1].lower()
        definition = show(index[guid])
        try:
            verdict = evaluate_definition(definition, result.resources)
        except Unsupported as error:
            print(f"{guid}  UNSUPPORTED ({error})  {definition['properties']['displayName']}")
            bad += 1
            continue
        if verdict.verdict == "not applicable":
            continue
        note = verdict.note
        if verdict.verdict == "non-compliant" and guid in exempt:
            note = f"exempted ({exempt[guid].category}): {exempt[guid].reason}"
        elif verdict.verdict == "non-compliant":
            bad += 1
        print(f"{guid}  {verdict.verdict:<20} {verdict.display_name}"
              f"{'  ' + ', '.join(verdict.resources) if verdict.resources else ''}"
              f"{'  -- ' + note if note else ''}")
    print(f"{bad} non-compliant without an exemption")
    return 1 if bad else 0


def _index_definitions(repo, listing, show) -> dict[str, str]:
    index: dict[str, str] = {}
    for path in listing:
        if not path.endswith(".json") or "Azure Government" in path:
            continue
        try:
            index[str(show(path).get("name", "")).lower()] = path
        except (ValueError, OSError):
            continue
    return index


if __name__ == "__main__":
    raise SystemExit(main())
