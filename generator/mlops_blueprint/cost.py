"""The idle monthly cost of the resources a stack creates: an estimate from a dated price table.

`estimate(resources, location=...)` prices what an environment costs when nobody runs anything:
registries by the day, storage and logs at a small assumed baseline, private endpoints and any
firewall by the hour. Compute that scales to zero costs nothing idle; what grows with use (node
hours, data processed, extra storage) is named in the notes, not added. The prices, their
sources and the date they were recorded live next to this module in `prices.json`; every item
is computed from that table, so updating the table updates every estimate.

Resources are the recorded ones (`blueprint_infra.policies.Resource`, or dicts with `type`,
`name` and `properties`): camelCase inputs as the provider receives them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

# The type tokens the policies already name; only the cost-only ones are spelled out below.
from blueprint_infra.policies import (
    APP_INSIGHTS,
    CONTAINER_REGISTRY,
    KEY_VAULT,
    LOG_ANALYTICS,
    ML_COMPUTE,
    ML_REGISTRY,
    ML_WORKSPACE,
    STORAGE_ACCOUNT,
)

PRICE_TABLE = Path(__file__).with_name("prices.json")

ML_OUTBOUND_RULES = ("azure-native:machinelearningservices:ManagedNetworkSettingsRule",
                     "azure-native:machinelearningservices:OutboundRule")
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
FIREWALL = "azure-native:network:AzureFirewall"
EXTENSION = "azure-native:kubernetesconfiguration:Extension"

#: Marks the items that are not resources of their own but what Azure creates for one.
MANAGED_NETWORK_PRIVATE_ENDPOINTS = "Microsoft.Network/privateEndpoints (Azure ML managed network)"
MANAGED_NETWORK_FIREWALL = "Microsoft.Network/azureFirewalls (Azure ML managed network)"


@dataclass(frozen=True)
class CostEstimate:
    """An idle monthly cost estimate. `items` sum to `total` (both rounded to cents)."""

    currency: str
    total: float
    items: list[dict[str, Any]]
    label: str = ""
    as_of: str = ""
    location: str = ""
    scales_with_use: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency, "total": self.total, "items": self.items,
            "label": self.label, "as_of": self.as_of, "location": self.location,
            "scales_with_use": self.scales_with_use,
        }


@cache
def price_table() -> dict[str, Any]:
    """The dated price table (prices.json), parsed once."""
    return json.loads(PRICE_TABLE.read_text(encoding="utf-8"))


def price(key: str) -> float:
    return float(price_table()["prices"][key]["amount"])


def assumption(key: str) -> float:
    return float(price_table()["assumptions"][key]["value"])


def hourly(key: str) -> float:
    """A per-hour price as a monthly one."""
    return price(key) * price_table()["hours_per_month"]


def daily(key: str) -> float:
    """A per-day price as a monthly one."""
    return price(key) * price_table()["hours_per_month"] / 24


# --- reading recorded resources ----------------------------------------------------------------

def _fields(resource: Any) -> tuple[str, str, Mapping[str, Any]]:
    if isinstance(resource, Mapping):
        return resource["type"], resource["name"], resource.get("properties") or {}
    return resource.type, resource.name, resource.properties or {}


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _is_disabled(value: Any) -> bool:
    return isinstance(value, str) and value.lower() == "disabled"


def _sku_name(properties: Mapping[str, Any], default: str) -> str:
    name = _get(properties, "sku", "name")
    return name if isinstance(name, str) else default


# --- pricing one resource ----------------------------------------------------------------------

def _item(name: str, typ: str, monthly: float, note: str) -> dict[str, Any]:
    return {"resource": name, "type": typ, "monthly": round(monthly, 2), "note": note}


_STORAGE_PRICE = {"LRS": "storage_hot_lrs_per_gb_month", "ZRS": "storage_hot_zrs_per_gb_month",
                  "GRS": "storage_hot_grs_per_gb_month"}
_REGISTRY_PRICE = {"basic": "container_registry_basic_per_day",
                   "standard": "container_registry_standard_per_day",
                   "premium": "container_registry_premium_per_day"}


def _storage(name: str, typ: str, props: Mapping[str, Any]) -> dict[str, Any]:
    sku = _sku_name(props, "Standard_LRS")
    redundancy = sku.rsplit("_", 1)[-1].upper()
    # Geo-redundant variants (GRS, RA-GRS, GZRS, RA-GZRS) are priced as GRS: close, not exact.
    key = _STORAGE_PRICE.get(redundancy, _STORAGE_PRICE["GRS"])
    gb = assumption("storage_gb")
    return _item(name, typ, gb * price(key),
                 f"{sku}, {gb:g} GB assumed in the hot tier; grows per GB stored and per "
                 f"operation")


def _registry(name: str, typ: str, props: Mapping[str, Any]) -> dict[str, Any]:
    sku = _sku_name(props, "Basic")
    key = _REGISTRY_PRICE.get(sku.lower(), "container_registry_premium_per_day")
    return _item(name, typ, daily(key),
                 f"{sku} tier, billed per day whether used or not; storage beyond the tier's "
                 f"allowance is extra")


def _ml_registry(name: str, typ: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    regions = [r for r in props.get("regionDetails") or [] if isinstance(r, Mapping)] or [{}]
    items = []
    for region in regions:
        where = region.get("location") or "its region"
        for details in region.get("acrDetails") or [{}]:
            sku = _get(details, "systemCreatedAcrAccount", "acrAccountSku") or "Premium"
            key = _REGISTRY_PRICE.get(str(sku).lower(), "container_registry_premium_per_day")
            items.append(_item(f"{name} (system-created container registry, {where})", typ,
                               daily(key), f"Azure ML registries create their own {sku} "
                               f"container registry, billed per day"))
        gb = assumption("registry_storage_gb")
        items.append(_item(f"{name} (system-created storage, {where})", typ,
                           gb * price("storage_hot_lrs_per_gb_month"),
                           f"{gb:g} GB of models and components assumed"))
    return items


def _compute(name: str, typ: str, props: Mapping[str, Any]) -> dict[str, Any]:
    compute_type = _get(props, "properties", "computeType")
    if compute_type == "Kubernetes":
        return _item(name, typ, 0.0, "attached shared AKS cluster: its nodes are the platform "
                     "team's cost, not this project's; jobs use the cluster's capacity")
    inner = _get(props, "properties", "properties") or {}
    vm_size = inner.get("vmSize") or "the VM size"
    if compute_type == "ComputeInstance":
        return _item(name, typ, 0.0, f"compute instance ({vm_size}): billed per hour while "
                     "running; stopped by its idle shutdown")
    low = _get(inner, "scaleSettings", "minNodeCount") or 0
    low = int(low) if isinstance(low, (int, float)) else 0
    if low <= 0:
        return _item(name, typ, 0.0, f"scales to 0 nodes when idle: costs nothing idle; each "
                     f"running {vm_size} node is billed per hour")
    vm_key = f"vm_{str(vm_size).lower()}_per_hour"
    if vm_key in price_table()["prices"]:
        return _item(name, typ, low * hourly(vm_key),
                     f"{low} {vm_size} node(s) kept running at all times")
    return _item(name, typ, 0.0, f"{low} {vm_size} node(s) kept running at all times: not in "
                 f"the price table, add {low} x {price_table()['hours_per_month']} h x the "
                 f"VM's hourly price")


def _managed_network(
    workspace: str, props: Mapping[str, Any], inventory: Sequence[tuple[str, str, Mapping]]
) -> list[dict[str, Any]]:
    """What Azure creates for a workspace's managed network: private endpoints to the
    workspace's resources that refuse public traffic, and a firewall for FQDN rules."""
    network = props.get("managedNetwork") or {}
    mode = network.get("isolationMode") if isinstance(network, Mapping) else None
    if mode not in ("AllowInternetOutbound", "AllowOnlyApprovedOutbound"):
        return []
    table = price_table()["managed_network"]["required_private_endpoints"]
    endpoints: list[str] = []
    if _is_disabled(props.get("publicNetworkAccess")):
        endpoints += ["workspace"] * table["workspace"]
    kinds = {STORAGE_ACCOUNT: "storage_account", KEY_VAULT: "key_vault",
             CONTAINER_REGISTRY: "container_registry"}
    for typ, _name, other in inventory:
        public = other.get("publicNetworkAccess", _get(other, "properties", "publicNetworkAccess"))
        if typ in kinds and _is_disabled(public):
            endpoints += [kinds[typ]] * table[kinds[typ]]
    rules = _outbound_rules(network, inventory)
    endpoints += ["user rule"] * sum(1 for r in rules if _rule_type(r) == "privateendpoint")
    items = []
    if endpoints:
        counted = ", ".join(f"{endpoints.count(k)} {k}" for k in dict.fromkeys(endpoints))
        items.append(_item(f"{workspace} managed network: {len(endpoints)} private endpoints",
                           MANAGED_NETWORK_PRIVATE_ENDPOINTS,
                           len(endpoints) * hourly("private_endpoint_per_hour"),
                           f"{counted}; billed per hour, plus data processed per GB"))
    fqdn = [r for r in rules if _rule_type(r) == "fqdn"]
    if fqdn and mode == "AllowOnlyApprovedOutbound":
        sku = str(network.get("firewallSku") or "Standard")
        key = "firewall_basic_per_hour" if sku.lower() == "basic" else "firewall_standard_per_hour"
        items.append(_item(f"{workspace} managed network: Azure Firewall ({sku})",
                           MANAGED_NETWORK_FIREWALL, hourly(key),
                           f"{len(fqdn)} FQDN outbound rule(s) make Azure deploy a firewall, "
                           f"billed per hour plus data processed"))
    return items


def _outbound_rules(network: Mapping, inventory: Sequence[tuple[str, str, Mapping]]) -> list:
    inline = network.get("outboundRules") or {}
    rules = list(inline.values()) if isinstance(inline, Mapping) else list(inline)
    rules += [other.get("properties") or {} for typ, _n, other in inventory
              if typ in ML_OUTBOUND_RULES]
    return [r for r in rules if isinstance(r, Mapping)]


def _rule_type(rule: Mapping) -> str:
    return str(rule.get("type") or "").lower()


def _firewall(name: str, typ: str, props: Mapping[str, Any]) -> dict[str, Any]:
    tier = str(_get(props, "sku", "tier") or "Standard")
    key = "firewall_basic_per_hour" if tier.lower() == "basic" else "firewall_standard_per_hour"
    return _item(name, typ, hourly(key), f"Azure Firewall {tier}, billed per hour")


def estimate(resources: Sequence[Any], *, location: str) -> CostEstimate:
    """The idle monthly cost of `resources` (see the module docstring), from prices.json."""
    table = price_table()
    # by type and logical name: the estimate (its notes, its float sums) must not depend on the
    # order in which the program's outputs happened to resolve
    inventory = sorted((_fields(r) for r in resources), key=lambda f: (f[0], f[1]))
    items: list[dict[str, Any]] = []
    for typ, name, props in inventory:
        if typ == STORAGE_ACCOUNT:
            items.append(_storage(name, typ, props))
        elif typ == KEY_VAULT:
            ops = assumption("key_vault_operations")
            items.append(_item(name, typ, ops / 10_000 * price("key_vault_per_10k_operations"),
                               f"{ops:,.0f} operations assumed; billed per operation, no "
                               f"charge while unused"))
        elif typ == LOG_ANALYTICS:
            gb = assumption("log_analytics_gb")
            items.append(_item(name, typ, gb * price("log_analytics_per_gb"),
                               f"{gb:g} GB ingested assumed; grows with every job's logs"))
        elif typ == APP_INSIGHTS:
            gb = assumption("app_insights_gb")
            items.append(_item(name, typ, gb * price("log_analytics_per_gb"),
                               f"{gb:g} GB of telemetry assumed, billed as Log Analytics "
                               f"ingestion"))
        elif typ == CONTAINER_REGISTRY:
            items.append(_registry(name, typ, props))
        elif typ == ML_WORKSPACE:
            items.append(_item(name, typ, price("machine_learning_workspace_per_month"),
                               "no charge for the workspace itself"))
            items.extend(_managed_network(name, props, inventory))
        elif typ == ML_REGISTRY:
            items.extend(_ml_registry(name, typ, props))
        elif typ == ML_COMPUTE:
            items.append(_compute(name, typ, props))
        elif typ == DIAGNOSTIC_SETTING:
            gb = assumption("resource_logs_gb")
            items.append(_item(name, typ, gb * price("log_analytics_per_gb"),
                               f"{gb:g} GB of resource logs assumed, billed as Log Analytics "
                               f"ingestion; grows with use (blob reads and writes, secret "
                               f"reads, image pushes)"))
        elif typ == PRIVATE_ENDPOINT:
            items.append(_item(name, typ, hourly("private_endpoint_per_hour"),
                               "billed per hour, plus data processed per GB"))
        elif typ == FIREWALL:
            items.append(_firewall(name, typ, props))
        elif typ == EXTENSION:
            items.append(_item(name, typ, 0.0, "the AzureML extension runs on the shared "
                               "cluster, whose cost is the platform team's"))
    total = round(sum(item["monthly"] for item in items), 2)
    region = table["reference_region"]
    label = table["label"]
    if location and location != region:
        label += f" Prices are for {region}; {location} may differ."
    return CostEstimate(
        currency=table["currency"], total=total, items=items, label=label,
        as_of=table["as_of"], location=location, scales_with_use=_scales_with_use(),
    )


def _scales_with_use() -> list[str]:
    rates = price_table()["usage_rates"]
    return [
        "compute nodes while jobs run (per node-hour at the VM size's price)",
        "storage beyond the assumed baseline (per GB-month) and storage operations",
        "log and telemetry ingestion beyond the baseline (per GB)",
        f"private endpoint data processed ({rates['private_endpoint_data_per_gb']['amount']} "
        f"per GB)",
        f"firewall data processed ({rates['firewall_data_processed_per_gb']['amount']} per GB)",
        "container registry storage beyond the tier's allowance "
        f"({rates['container_registry_extra_storage_per_gb_month']['amount']} per GB-month)",
    ]
