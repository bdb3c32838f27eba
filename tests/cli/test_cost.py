"""The idle cost estimate: computed from the dated price table, on recorded inventories.

The default environments come from the real environment program run offline
(`blueprint_infra.preview.preview_stack`) with the stack config a `--defaults` project gets;
the extra pieces (private endpoints, firewall rules, registries) are recorded from the real SDK
under Pulumi's mocks. Expected amounts are computed from prices.json, never typed in.
"""

from __future__ import annotations

import datetime
import json
import textwrap
from pathlib import Path

import pytest
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import network
from recording import record

from blueprint_infra import naming
from blueprint_infra.policies import Resource
from blueprint_infra.preview import preview_stack
from mlops_blueprint import cost

SLUG = "churn-model"
HOURS = cost.price_table()["hours_per_month"]


def stack_file(env: str) -> str:
    kind = naming.environment_kind(env)
    return textwrap.dedent(f"""\
        config:
          azure-native:location: westeurope
          {SLUG}:projectSlug: {SLUG}
          {SLUG}:environment: {env}
          {SLUG}:kind: {kind}
          {SLUG}:costCenter: CC-0000
          {SLUG}:dataScientistsGroupId: "{naming.PLACEHOLDER_GUID}"
          {SLUG}:readersGroupId: ""
          {SLUG}:deployerObjectId: "{naming.PLACEHOLDER_GUID if kind == 'prod' else ''}"
          {SLUG}:aksClusterId: ""
          {SLUG}:publicNetworkAccess: {"Disabled" if kind == "prod" else "Enabled"}
        """)


@pytest.fixture(scope="module")
def default_inventories(tmp_path_factory) -> dict[str, list[Resource]]:
    """The resources of a default dev and prod environment, from the real program."""
    infra = tmp_path_factory.mktemp("infra")
    (infra / "Pulumi.yaml").write_text(f"name: {SLUG}\nruntime: python\n", encoding="utf-8")
    (infra / "__main__.py").write_text(
        "from blueprint_infra.program import run_environment\n\nrun_environment()\n",
        encoding="utf-8")
    inventories = {}
    for env in ("dev", "prod"):
        (infra / f"Pulumi.{env}.yaml").write_text(stack_file(env), encoding="utf-8")
        result = preview_stack(infra, env)
        assert result.error is None, result.error
        inventories[env] = list(result.resources)
    return inventories


def approved_outbound_workspace(name="mlw", *, fqdn_rules=0, firewall_sku=None,
                                mode="AllowOnlyApprovedOutbound", public="Disabled"):
    rules = {f"fqdn{i}": ml.FqdnOutboundRuleArgs(type="FQDN", destination=f"host{i}.example.org")
             for i in range(fqdn_rules)}
    return ml.Workspace(
        name, workspace_name=f"mlw-{SLUG}-x", resource_group_name="rg",
        public_network_access=public,
        managed_network=ml.ManagedNetworkSettingsArgs(
            isolation_mode=mode, outbound_rules=rules or None, firewall_sku=firewall_sku),
    )


def items_named(estimate, fragment):
    return [i for i in estimate.items if fragment in i["resource"]]


# --- the default environments ------------------------------------------------------------------

def test_default_dev_idle_cost_is_positive_and_items_sum_to_total(default_inventories):
    estimate = cost.estimate(default_inventories["dev"], location="westeurope")
    assert estimate.currency == "USD" and estimate.total > 0
    assert estimate.total == pytest.approx(sum(i["monthly"] for i in estimate.items), abs=0.005)
    for item in estimate.items:
        assert set(item) == {"resource", "type", "monthly", "note"} and item["note"]
    assert "ESTIMATE" in estimate.label and estimate.as_of == cost.price_table()["as_of"]


def test_default_dev_costs_what_its_registry_and_logs_cost(default_inventories):
    estimate = cost.estimate(default_inventories["dev"], location="eastus")
    by_type = {}
    for item in estimate.items:
        by_type.setdefault(item["type"], []).append(item)
    [registry] = by_type[cost.CONTAINER_REGISTRY]
    assert registry["monthly"] == round(cost.daily("container_registry_basic_per_day"), 2)
    [cluster] = by_type[cost.ML_COMPUTE]
    assert cluster["monthly"] == 0.0 and "scales to 0" in cluster["note"]
    # Dev keeps its resources public: no managed-network private endpoints, no firewall.
    assert cost.MANAGED_NETWORK_PRIVATE_ENDPOINTS not in by_type
    assert cost.MANAGED_NETWORK_FIREWALL not in by_type


def test_default_prod_pays_for_private_endpoints_and_premium_registry(default_inventories):
    dev = cost.estimate(default_inventories["dev"], location="westeurope")
    prod = cost.estimate(default_inventories["prod"], location="westeurope")
    [endpoints] = [i for i in prod.items if i["type"] == cost.MANAGED_NETWORK_PRIVATE_ENDPOINTS]
    required = cost.price_table()["managed_network"]["required_private_endpoints"]
    expected_count = sum(required.values())  # workspace, storage (2), key vault, registry
    assert endpoints["resource"].endswith(f"{expected_count} private endpoints")
    assert endpoints["monthly"] == round(
        expected_count * cost.hourly("private_endpoint_per_hour"), 2)
    [registry] = [i for i in prod.items if i["type"] == cost.CONTAINER_REGISTRY]
    assert registry["monthly"] == round(cost.daily("container_registry_premium_per_day"), 2)
    assert prod.total > dev.total


# --- what network isolation adds ---------------------------------------------------------------

def test_a_private_endpoint_adds_its_hourly_price(default_inventories):
    base = cost.estimate(default_inventories["dev"], location="westeurope")
    endpoint = record(lambda: [network.PrivateEndpoint(
        "pe-blob", private_endpoint_name="pe-blob", resource_group_name="rg",
        subnet=network.SubnetArgs(id="/subnets/pe"))])
    more = cost.estimate([*default_inventories["dev"], *endpoint], location="westeurope")
    added = round(cost.hourly("private_endpoint_per_hour"), 2)
    assert added > 0
    assert more.total == pytest.approx(base.total + added, abs=0.005)


@pytest.mark.parametrize("firewall_sku,price_key", [
    (None, "firewall_standard_per_hour"),
    ("Standard", "firewall_standard_per_hour"),
    ("Basic", "firewall_basic_per_hour"),
])
def test_fqdn_outbound_rules_add_a_firewall(firewall_sku, price_key):
    without = cost.estimate(record(lambda: [approved_outbound_workspace()]), location="eastus")
    with_rules = cost.estimate(
        record(lambda: [approved_outbound_workspace(fqdn_rules=2, firewall_sku=firewall_sku)]),
        location="eastus")
    [firewall] = [i for i in with_rules.items if i["type"] == cost.MANAGED_NETWORK_FIREWALL]
    assert firewall["monthly"] == round(cost.hourly(price_key), 2)
    assert "2 FQDN outbound rule(s)" in firewall["note"]
    assert with_rules.total == pytest.approx(without.total + firewall["monthly"], abs=0.005)


def test_fqdn_rules_in_internet_outbound_mode_add_no_firewall():
    estimate = cost.estimate(
        record(lambda: [approved_outbound_workspace(fqdn_rules=1, mode="AllowInternetOutbound")]),
        location="eastus")
    assert not [i for i in estimate.items if i["type"] == cost.MANAGED_NETWORK_FIREWALL]


def test_fqdn_rule_as_its_own_resource_adds_a_firewall():
    def build():
        workspace = approved_outbound_workspace()
        rule = ml.ManagedNetworkSettingsRule(
            "pypi", rule_name="pypi", resource_group_name="rg", workspace_name="mlw",
            properties=ml.FqdnOutboundRuleArgs(type="FQDN", destination="pypi.org"))
        return [workspace, rule]

    estimate = cost.estimate(record(build), location="eastus")
    assert [i["monthly"] for i in estimate.items if i["type"] == cost.MANAGED_NETWORK_FIREWALL] == [
        round(cost.hourly("firewall_standard_per_hour"), 2)]


def test_workspace_private_endpoint_is_counted_only_when_public_access_is_off():
    public = cost.estimate(record(lambda: [approved_outbound_workspace(public="Enabled")]),
                           location="eastus")
    private = cost.estimate(record(lambda: [approved_outbound_workspace(public="Disabled")]),
                            location="eastus")
    per_workspace = cost.price_table()["managed_network"]["required_private_endpoints"][
        "workspace"]
    assert private.total - public.total == pytest.approx(
        round(per_workspace * cost.hourly("private_endpoint_per_hour"), 2), abs=0.005)


# --- compute and registries --------------------------------------------------------------------

def cluster(min_nodes: int, vm_size: str):
    return ml.Compute(
        "cpu", compute_name="cpu-cluster", resource_group_name="rg", workspace_name="mlw",
        properties=ml.AmlComputeArgs(
            compute_type="AmlCompute",
            properties=ml.AmlComputePropertiesArgs(
                vm_size=vm_size,
                scale_settings=ml.ScaleSettingsArgs(min_node_count=min_nodes,
                                                    max_node_count=4))))


def test_always_on_nodes_are_billed_every_hour():
    [item] = cost.estimate(record(lambda: [cluster(2, "Standard_DS3_v2")]),
                           location="eastus").items
    assert item["monthly"] == round(2 * cost.hourly("vm_standard_ds3_v2_per_hour"), 2)


def test_always_on_nodes_of_an_unpriced_size_are_named_not_guessed():
    [item] = cost.estimate(record(lambda: [cluster(1, "Standard_NC24ads_A100_v4")]),
                           location="eastus").items
    assert item["monthly"] == 0.0
    assert "Standard_NC24ads_A100_v4" in item["note"] and "not in the price table" in item["note"]


def test_ml_registry_pays_for_its_system_created_registry_and_storage():
    def build():
        return [ml.Registry(
            "mlr", registry_name=f"mlr-{SLUG}-abc123", resource_group_name="rg",
            location="westeurope", public_network_access="Disabled",
            region_details=[ml.RegistryRegionArmDetailsArgs(
                location="westeurope",
                acr_details=[ml.AcrDetailsArgs(
                    system_created_acr_account=ml.SystemCreatedAcrAccountArgs(
                        acr_account_sku="Premium"))],
                storage_account_details=[ml.StorageAccountDetailsArgs(
                    system_created_storage_account=ml.SystemCreatedStorageAccountArgs(
                        storage_account_type="Standard_LRS"))])])]

    estimate = cost.estimate(record(build), location="westeurope")
    [acr] = items_named(estimate, "container registry")
    [storage] = items_named(estimate, "system-created storage")
    assert acr["monthly"] == round(cost.daily("container_registry_premium_per_day"), 2)
    assert storage["monthly"] == round(
        cost.assumption("registry_storage_gb") * cost.price("storage_hot_lrs_per_gb_month"), 2)


# --- the table and the shapes it is read in ----------------------------------------------------

def test_price_table_is_dated_sourced_and_labelled_an_estimate():
    table = json.loads(cost.PRICE_TABLE.read_text(encoding="utf-8"))
    datetime.date.fromisoformat(table["as_of"])
    assert "ESTIMATE" in table["label"]
    for key, entry in table["prices"].items():
        assert entry["amount"] >= 0 and entry["source"].strip(), key
        datetime.date.fromisoformat(entry["checked"])
    for key, entry in table["usage_rates"].items():
        assert entry["amount"] > 0 and entry["source"].strip(), key


def test_plan_shaped_dicts_give_the_same_estimate(default_inventories):
    inventory = default_inventories["prod"]
    as_dicts = [{"type": r.type, "name": r.name, "properties": r.properties} for r in inventory]
    assert (cost.estimate(as_dicts, location="westeurope").as_dict()
            == cost.estimate(inventory, location="westeurope").as_dict())


def test_another_region_is_flagged_in_the_label(default_inventories):
    region = cost.price_table()["reference_region"]
    assert "may differ" not in cost.estimate([], location=region).label
    assert "westeurope may differ" in cost.estimate([], location="westeurope").label
    assert cost.estimate([], location=region).total == 0


# --- docs/cost.md stays in step with the table and the defaults --------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cost.md"


def test_cost_docs_list_every_price_with_its_amount_and_date():
    docs = DOCS.read_text(encoding="utf-8")
    table = cost.price_table()
    assert f"**{table['as_of']}**" in docs
    rows = {cells[0].strip("`"): cells[1] for cells in _table_rows(docs) if cells[0][:1] == "`"}
    for key, entry in table["prices"].items():
        assert key in rows, key
        assert rows[key].startswith(f"{entry['amount']:g}"), (key, rows[key])


def test_cost_docs_state_the_default_idle_totals(default_inventories):
    stated = {cells[0]: cells[1] for cells in _table_rows(DOCS.read_text(encoding="utf-8"))}
    for env in ("dev", "prod"):
        total = cost.estimate(default_inventories[env], location="westeurope").total
        assert stated[env] == f"**${total:,.2f}**", env


def _table_rows(markdown: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("|")]
