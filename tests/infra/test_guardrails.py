"""Guardrails inside Azure: what the bootstrap assigns at each environment's resource group, what
the environment program sends to Log Analytics and puts behind private endpoints, and the prod
program judged against the Microsoft cloud security benchmark's definitions.

The benchmark's JSON stays out of this repository. `BENCHMARK` below encodes, per definition id,
the property its rule reads (as of the initiative's version 57.56.0 in Azure/azure-policy) and
the value that complies; `azure_policy_eval.py` evaluates the real JSON from a local checkout
(the last test, skipped without one).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from azure_policy_eval import (
    MISSING,
    Context,
    Target,
    diagnostic_settings_of,
    evaluate_definition,
    holds,
    targets,
)
from infra_fixtures import PE_SUBNET, SLUG, SUBSCRIPTION, stack_config

from blueprint_infra import guardrails, naming, roles
from blueprint_infra.preview import FAKE_TENANT_ID, preview_stack

AZ = "azure-native:"
POLICY_ASSIGNMENT = f"{AZ}authorization:PolicyAssignment"
POLICY_DEFINITION = f"{AZ}authorization:PolicyDefinition"
POLICY_EXEMPTION = f"{AZ}authorization:PolicyExemption"
DIAGNOSTIC_SETTING = f"{AZ}monitor:DiagnosticSetting"
PRIVATE_ENDPOINT = f"{AZ}network:PrivateEndpoint"
ENVIRONMENTS = ["dev", "preprod", "prod"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "policies.md"


def rg_scope(env: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-{SLUG}-{env}"


# --- bootstrap: Azure Policy at each environment's resource group -------------------------------

@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory):
    from infra_fixtures import write_project
    from test_bootstrap import bootstrap_config

    infra = write_project(tmp_path_factory.mktemp("boot"), {"platform": bootstrap_config()},
                          bootstrap=True)
    result = preview_stack(infra, "platform", dry_run=False)
    assert result.error is None, result.error
    return result


def assignments_at(result, scope: str) -> dict[str, dict]:
    return {
        r.properties["policyAssignmentName"]: r.properties
        for r in result.of_type(POLICY_ASSIGNMENT) if r.properties["scope"] == scope
    }


def exemptions_at(result, scope: str) -> list[dict]:
    return [r.properties for r in result.of_type(POLICY_EXEMPTION)
            if r.properties["scope"] == scope]


#: What the blueprint promises, by built-in id, with the effect the assignment must carry.
PROMISED_EFFECTS = {
    "8c6a50c6-9ffd-4ae7-986f-5fa6111f9a54": "Deny",  # storage: no shared key
    "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751": "Deny",  # storage: no blob public access
    "b2982f36-99f2-4db5-8eff-283140c09693": "Deny",  # storage: no public network
    "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53": "Deny",  # key vault: purge protection
    "12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5": "Deny",  # key vault: RBAC model
    "405c5871-3e91-4644-8a63-58e19d68ff5b": "Deny",  # key vault: no public network
    "cf820ca0-f99e-4f3e-84fb-66e913812d21": "AuditIfNotExists",  # key vault resource logs
    "dc921057-6b28-4fbe-9b83-f7bec05db6c2": "Deny",  # registry: no admin user
    "0fdf0491-d080-4575-b627-ad0e843cba0f": "Deny",  # registry: no public network
    "438c38d2-3772-465a-a9cc-7a6666a275ce": "Deny",  # workspace: no public network
    "afe0c3be-ba3b-4544-ba52-0c99672a8ad6": "AuditIfNotExists",  # workspace resource logs
    "e96a9a5f-07ca-471b-9bc5-6a0f33cbd68f": "Deny",  # computes: no local auth
}
PUBLIC_NETWORK = {"b2982f36-99f2-4db5-8eff-283140c09693", "405c5871-3e91-4644-8a63-58e19d68ff5b",
                  "0fdf0491-d080-4575-b627-ad0e843cba0f", "438c38d2-3772-465a-a9cc-7a6666a275ce"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_gets_the_promised_builtins_at_its_own_group(bootstrap, env):
    assigned = assignments_at(bootstrap, rg_scope(env))
    builtin = {
        p["policyDefinitionId"].rsplit("/", 1)[-1]: p for p in assigned.values()
        if p["policyDefinitionId"].startswith("/providers/Microsoft.Authorization/"
                                              "policyDefinitions/")
    }
    assert {guid: p["parameters"]["effect"]["value"] for guid, p in builtin.items()} == \
        PROMISED_EFFECTS
    for p in builtin.values():
        assert naming.GUID_PATTERN.fullmatch(p["policyDefinitionId"].rsplit("/", 1)[-1])


def test_nothing_is_assigned_above_the_environment_groups(bootstrap):
    scopes = {r.properties["scope"] for r in bootstrap.of_type(POLICY_ASSIGNMENT)}
    scopes |= {r.properties["scope"] for r in bootstrap.of_type(POLICY_EXEMPTION)}
    assert scopes == {rg_scope(env) for env in ENVIRONMENTS}


def test_prod_denies_write_roles_to_anything_but_a_service_principal(bootstrap):
    definitions = bootstrap.of_type(POLICY_DEFINITION)
    assert len(definitions) == 1  # prod only
    definition = definitions[0].properties
    assert definition["mode"] == "All" and definition["policyType"] == "Custom"
    rule = definition["policyRule"]
    assert rule["then"]["effect"].lower() == "deny"
    read_only = next(c["notIn"] for c in rule["if"]["allOf"] if "notIn" in c)
    assert set(read_only) == set(roles.READ_ONLY_ROLES)

    prod = assignments_at(bootstrap, rg_scope("prod"))
    deny = prod[guardrails.DENY_HUMAN_WRITE_ASSIGNMENT]
    assert deny["policyDefinitionId"] == (
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/policyDefinitions/"
        f"{definition['policyDefinitionName']}"
    )
    for env in ("dev", "preprod"):
        assert guardrails.DENY_HUMAN_WRITE_ASSIGNMENT not in assignments_at(bootstrap,
                                                                            rg_scope(env))


def _assignment(principal_type, role: str) -> Target:
    inputs = {"roleDefinitionId": roles.role_definition_id(SUBSCRIPTION, role)}
    if principal_type is not None:
        inputs["principalType"] = principal_type
    return Target("Microsoft.Authorization/roleAssignments", "ra", "id", inputs)


@pytest.mark.parametrize("principal_type, role, denied", [
    ("User", "Contributor", True),
    ("Group", "Key Vault Administrator", True),
    ("group", "AzureML Data Scientist", True),  # Azure Policy compares case-insensitively
    ("ForeignGroup", "Storage Blob Data Contributor", True),
    ("", "Owner", True),
    (None, "Contributor", True),  # a request that leaves the type out
    ("User", "Reader", False),
    ("Group", "Storage Blob Data Reader", False),
    ("ServicePrincipal", "Contributor", False),
    ("servicePrincipal", "Role Based Access Control Administrator", False),
])
def test_the_deny_rule_judges_type_and_role(principal_type, role, denied):
    rule = guardrails.deny_non_service_principal_rule(guardrails.read_only_role_guids())
    assert holds(rule["if"], Context(_assignment(principal_type, role), {})) is denied


def test_deviations_are_exemptions_with_reasons(bootstrap):
    for env in ("dev", "preprod"):
        exempted = {e["policyAssignmentId"].rsplit("/", 1)[-1]: e
                    for e in exemptions_at(bootstrap, rg_scope(env))}
        public = {p.assignment for p in guardrails.PROMISED if p.definition in PUBLIC_NETWORK}
        assert set(exempted) == public
        for e in exempted.values():
            assert e["exemptionCategory"] == "Waiver"
            assert len(e["description"]) > 40 and "prod" in e["description"]
            assert e["policyAssignmentId"].startswith(rg_scope(env) + "/providers/")

    prod = exemptions_at(bootstrap, rg_scope("prod"))
    # prod keeps every public-network denial; its only exemptions are benchmark deviations
    assert {e["policyAssignmentId"].rsplit("/", 1)[-1] for e in prod} == {
        guardrails.BENCHMARK_ASSIGNMENT}
    benchmark = assignments_at(bootstrap, rg_scope("prod"))[guardrails.BENCHMARK_ASSIGNMENT]
    assert benchmark["policyDefinitionId"].endswith(
        "/policySetDefinitions/1f3afdf9-d0c9-4c3d-847f-89da613e70a8")
    assert sorted(ref for e in prod for ref in e["policyDefinitionReferenceIds"]) == sorted(
        d.reference_id for d in guardrails.BENCHMARK_DEVIATIONS)
    for e in prod:
        assert e["exemptionCategory"] in ("Waiver", "Mitigated") and len(e["description"]) > 40


# --- the environment program: resource logs and the private inbound path ----------------------

def run(project, env, *, dry_run=False, **overrides):
    kind = naming.environment_kind(env)
    infra = project({env: stack_config(env, kind, **overrides)})
    return preview_stack(infra, env, dry_run=dry_run)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_resource_logs_go_to_the_environments_own_log_analytics(project, env):
    result = run(project, env)
    assert result.error is None, result.error
    group = rg_scope(env)
    own_logs = f"{group}/providers/Microsoft.OperationalInsights/workspaces/log-{SLUG}-{env}"
    names = naming.environment_names(SLUG, env, FAKE_TENANT_ID)
    expected_sources = {
        f"{group}/providers/Microsoft.MachineLearningServices/workspaces/{names.workspace}",
        f"{group}/providers/Microsoft.KeyVault/vaults/{names.key_vault}",
        f"{group}/providers/Microsoft.Storage/storageAccounts/{names.storage_account}"
        "/blobServices/default",
        f"{group}/providers/Microsoft.ContainerRegistry/registries/{names.container_registry}",
    }
    settings = [r.properties for r in result.of_type(DIAGNOSTIC_SETTING)]
    assert {s["resourceUri"] for s in settings} == expected_sources
    for s in settings:
        assert s["workspaceId"] == own_logs
        assert s["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]
        assert "storageAccountId" not in s and "eventHubAuthorizationRuleId" not in s


def test_prod_puts_the_workspace_and_its_data_plane_behind_private_endpoints(project):
    result = run(project, "prod")
    assert result.error is None, result.error
    group = rg_scope("prod")
    names = naming.environment_names(SLUG, "prod", FAKE_TENANT_ID)
    by_group = {}
    for r in result.of_type(PRIVATE_ENDPOINT):
        p = r.properties
        assert p["subnet"]["id"] == PE_SUBNET
        assert p["resourceGroupName"] == f"rg-{SLUG}-prod"
        (connection,) = p["privateLinkServiceConnections"]
        (group_id,) = connection["groupIds"]
        by_group[group_id] = connection["privateLinkServiceId"]
    assert by_group == {
        "amlworkspace":
            f"{group}/providers/Microsoft.MachineLearningServices/workspaces/{names.workspace}",
        "blob": f"{group}/providers/Microsoft.Storage/storageAccounts/{names.storage_account}",
        "vault": f"{group}/providers/Microsoft.KeyVault/vaults/{names.key_vault}",
        "registry":
            f"{group}/providers/Microsoft.ContainerRegistry/registries/{names.container_registry}",
    }
    assert result.outputs["privateEndpoints"]["workspace"].startswith("pe-mlw-")


def test_dev_has_no_private_endpoint(project):
    result = run(project, "dev")
    assert result.error is None and not result.of_type(PRIVATE_ENDPOINT)


def test_prod_without_subnet_or_opt_out_is_refused_on_update_and_warned_in_preview(project):
    update = run(project, "prod", privateEndpointSubnetId=None)
    assert update.error and "\n" not in update.error
    assert f"{SLUG}:privateEndpointSubnetId is empty" in update.error
    assert not update.resources  # refused before anything is registered

    preview = run(project, "prod", dry_run=True, privateEndpointSubnetId=None)
    assert preview.error is None
    assert any("privateEndpointSubnetId" in w and "would be refused" in w
               for w in preview.warnings)
    subnets = {r.properties["subnet"]["id"] for r in preview.of_type(PRIVATE_ENDPOINT)}
    assert subnets == {guardrails.PLACEHOLDER_SUBNET_ID}


def test_plan_reports_the_placeholder_subnet_as_an_advisory(project):
    from blueprint_infra import policies

    context = policies.context_for("prod")
    unset = run(project, "prod", dry_run=True, privateEndpointSubnetId=None)
    found = [v for v in policies.advisories(unset.resources, context)
             if v.policy == "prod-workspace-private-endpoint"]
    assert [v.resource for v in found] == ["Pulumi.prod.yaml"]
    assert "privateEndpointSubnetId" in found[0].message and "Fix" in found[0].message
    assert all(v.policy != "prod-workspace-private-endpoint"  # never fails a plan
               for v in policies.evaluate(unset.resources, context))
    subnet_set = run(project, "prod", dry_run=True)
    assert not [v for v in policies.advisories(subnet_set.resources, context)
                if v.policy == "prod-workspace-private-endpoint"]


def test_an_explicit_opt_out_is_reported_and_creates_no_endpoint(project):
    reason = "the platform connects this workspace from its hub itself"
    result = run(project, "prod", privateEndpointSubnetId=None, privateEndpointOptOut=reason)
    assert result.error is None
    assert not result.of_type(PRIVATE_ENDPOINT)
    preview = run(project, "prod", dry_run=True, privateEndpointSubnetId=None,
                  privateEndpointOptOut=reason)
    assert any(reason in w for w in preview.warnings)


@pytest.mark.parametrize("overrides, key", [
    ({"privateEndpointSubnetId": "/subscriptions/x/resourceGroups/rg/providers/"
      "Microsoft.Network/virtualNetworks/v/subnets/s"}, "privateEndpointSubnetId"),
    ({"privateEndpointSubnetId": PE_SUBNET.rsplit("/subnets/", 1)[0]},
     "privateEndpointSubnetId"),
    ({"privateEndpointSubnetId": PE_SUBNET.replace("Microsoft.Network", "Microsoft.Storage")},
     "privateEndpointSubnetId"),
    ({"privateEndpointOptOut": "because we want to"}, "privateEndpointOptOut"),  # both set
    ({"privateEndpointSubnetId": None, "privateEndpointOptOut": "no"}, "privateEndpointOptOut"),
])
def test_bad_private_endpoint_keys_are_one_line_config_errors(project, overrides, key):
    result = run(project, "prod", dry_run=True, **overrides)
    assert result.error is not None and "\n" not in result.error
    assert result.error.startswith(f"stack config {SLUG}:{key}: expected")


# --- the prod program against the benchmark ------------------------------------------------------

#: definition id -> (ARM type, alias the rule reads, the value that complies). "logs" means a
#: diagnostic setting on the resource with a log enabled; "private link" an Approved private
#: endpoint connection. Verdicts and reasons: docs/policies.md.
BENCHMARK: dict[str, tuple[str, str, object]] = {
    "34c877ad-507e-4c82-993e-3452a6e0ad3c": ("Microsoft.Storage/storageAccounts",
                                             "networkAcls.defaultAction", "Deny"),
    "404c3081-a854-4457-ae30-26a93ef643f9": ("Microsoft.Storage/storageAccounts",
                                             "supportsHttpsTrafficOnly", True),
    "cf820ca0-f99e-4f3e-84fb-66e913812d21": ("Microsoft.KeyVault/vaults", "logs", True),
    "37e0d2fe-28a5-43d6-a273-67d37d1f5606": ("Microsoft.Storage/storageAccounts", "type",
                                             "Microsoft.Storage/storageAccounts"),
    "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751": ("Microsoft.Storage/storageAccounts",
                                             "allowBlobPublicAccess", False),
    "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53": ("Microsoft.KeyVault/vaults",
                                             "enablePurgeProtection", True),
    "1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d": ("Microsoft.KeyVault/vaults", "enableSoftDelete",
                                             True),
    "2a1a9cdf-e04d-429a-8416-3bfb72a1b26f": ("Microsoft.Storage/storageAccounts",
                                             "networkAcls.defaultAction", "Deny"),
    "db4f9b05-5ffd-4b34-b714-3c710dbb3fd6": ("Microsoft.Storage/storageAccounts",
                                             "networkAcls.defaultAction", "Deny"),
    "d0793b48-0edc-4296-a390-4c75d1bdfd71": ("Microsoft.ContainerRegistry/registries",
                                             "publicNetworkAccess", "Disabled"),
    "e8eef0a8-67cf-4eb4-9386-14b0e78733d4": ("Microsoft.ContainerRegistry/registries",
                                             "private link", True),
    "45e05259-1eb5-4f70-9574-baf73e9d219b": ("Microsoft.MachineLearningServices/workspaces",
                                             "private link", True),
    "55615ac9-af46-4a59-874e-391cc3dfb490": ("Microsoft.KeyVault/vaults", "publicNetworkAccess",
                                             "Disabled"),
    "a6abeaec-4d90-4a02-805f-6b26c4d3fbe9": ("Microsoft.KeyVault/vaults", "private link", True),
    "6edd7eda-6dd8-40f7-810d-67160c639cd9": ("Microsoft.Storage/storageAccounts", "private link",
                                             True),
    "1604f626-4d8d-4124-8bb8-b1e5f95562de": ("Microsoft.Storage/storageAccounts", "private link",
                                             True),
    "afe0c3be-ba3b-4544-ba52-0c99672a8ad6": ("Microsoft.MachineLearningServices/workspaces",
                                             "logs", True),
    "438c38d2-3772-465a-a9cc-7a6666a275ce": ("Microsoft.MachineLearningServices/workspaces",
                                             "publicNetworkAccess", "Disabled"),
    "e96a9a5f-07ca-471b-9bc5-6a0f33cbd68f": (
        "Microsoft.MachineLearningServices/workspaces/computes", "disableLocalAuth", True),
    "f110a506-2dcb-422e-bcea-d533fc8c35e2": (  # compute instances only: the program has none
        "Microsoft.MachineLearningServices/workspaces/computes", "computeType", "AmlCompute"),
    "8c6a50c6-9ffd-4ae7-986f-5fa6111f9a54": ("Microsoft.Storage/storageAccounts",
                                             "allowSharedKeyAccess", False),
    "fd9903f1-38c2-4d36-8e44-5c1c20c561e8": ("Microsoft.Storage/storageAccounts",
                                             "allowSharedKeyAccess", False),
    "12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5": ("Microsoft.KeyVault/vaults",
                                             "enableRbacAuthorization", True),
    # assigned by the bootstrap, not in the benchmark
    "b2982f36-99f2-4db5-8eff-283140c09693": ("Microsoft.Storage/storageAccounts",
                                             "publicNetworkAccess", "Disabled"),
    "405c5871-3e91-4644-8a63-58e19d68ff5b": ("Microsoft.KeyVault/vaults", "publicNetworkAccess",
                                             "Disabled"),
    "dc921057-6b28-4fbe-9b83-f7bec05db6c2": ("Microsoft.ContainerRegistry/registries",
                                             "adminUserEnabled", False),
    "0fdf0491-d080-4575-b627-ad0e843cba0f": ("Microsoft.ContainerRegistry/registries",
                                             "publicNetworkAccess", "Disabled"),
}
#: benchmark definitions the program cannot decide: Defender for Cloud assesses pushed images
OUTSIDE_THE_PROGRAM = {"090c7b07-b4ed-4561-ad20-e9075f3ccaff"}


@pytest.fixture(scope="module")
def prod_resources(tmp_path_factory):
    from infra_fixtures import write_project

    infra = write_project(tmp_path_factory.mktemp("prod"),
                          {"prod": stack_config("prod", "prod")})
    result = preview_stack(infra, "prod", dry_run=False)
    assert result.error is None, result.error
    return result.resources


def _recorded(target: Target, alias: str, resources) -> object:
    if alias == "logs":
        return any(any(log.get("enabled") for log in s.get("logs") or [])
                   for s in diagnostic_settings_of(resources, target.id))
    if alias == "private link":
        return any(c["privateLinkServiceConnectionState"]["status"] == "Approved"
                   for c in target.private_endpoint_connections)
    return target.lookup(alias if alias == "type" else f"{target.arm_type}/{alias}")


@pytest.mark.parametrize("definition", sorted(BENCHMARK))
def test_the_prod_program_complies_with_the_benchmark(prod_resources, definition):
    arm_type, alias, compliant = BENCHMARK[definition]
    found = [t for t in targets(prod_resources) if t.arm_type == arm_type]
    assert found, f"the prod program creates no {arm_type}"
    for target in found:
        value = _recorded(target, alias, prod_resources)
        assert value is not MISSING and value == compliant, (definition, target.name, value)


def test_the_prod_deviations_are_the_exempted_ones_only():
    exempted = {d.definition for d in guardrails.BENCHMARK_DEVIATIONS}
    assert not exempted & set(BENCHMARK)
    for deviation in guardrails.BENCHMARK_DEVIATIONS:
        assert deviation.category in ("Waiver", "Mitigated") and len(deviation.reason) > 80


def test_docs_list_every_evaluated_definition_with_its_verdict():
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### The prod program against the benchmark", 1)[1]
    rows = dict(re.findall(r"^\| `([0-9a-f-]{36})` \|[^|]*\| ([^|]+?) \|", section, re.M))
    evaluated = set(BENCHMARK) | {d.definition for d in guardrails.BENCHMARK_DEVIATIONS}
    evaluated |= OUTSIDE_THE_PROGRAM
    assert set(rows) == evaluated
    for deviation in guardrails.BENCHMARK_DEVIATIONS:
        assert rows[deviation.definition].startswith("exempt")
    for definition in BENCHMARK:
        assert rows[definition].startswith(("compliant", "not applicable")), definition


# --- the real definitions, when a checkout of Azure/azure-policy is at hand -------------------

@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("AZURE_POLICY_CHECKOUT"),
                    reason="set AZURE_POLICY_CHECKOUT to a clone of Azure/azure-policy")
def test_the_real_benchmark_definitions_find_nothing_unexempted(prod_resources):
    import json
    import subprocess

    repo = os.environ["AZURE_POLICY_CHECKOUT"]
    exempt = {d.definition for d in guardrails.BENCHMARK_DEVIATIONS}
    wanted = set(BENCHMARK) | exempt
    patterns = [arg for guid in sorted(wanted) for arg in ("-e", guid)]
    listing = subprocess.run(
        ["git", "-C", repo, "grep", "-l", "-F", *patterns, "HEAD", "--",
         "built-in-policies/policyDefinitions"], capture_output=True, text=True,
    ).stdout.splitlines()
    seen = set()
    for entry in listing:
        if "Azure Government" in entry:
            continue
        raw = subprocess.run(["git", "-C", repo, "show", entry], capture_output=True).stdout
        definition = json.loads(raw.decode("utf-8-sig"))
        if definition.get("name") not in wanted or definition["name"] in seen:
            continue
        seen.add(definition["name"])
        verdict = evaluate_definition(definition, prod_resources)
        if definition["name"] in exempt:
            assert verdict.verdict == "non-compliant", definition["name"]
        else:
            assert verdict.verdict in ("compliant", "not applicable"), (
                definition["name"], verdict)
    assert seen == wanted


# --- the evaluator itself, on rules written here (not fetched) ---------------------------------

PRIVATE_LINK_RULE = {"properties": {
    "displayName": "workspaces use private link (count form)",
    "parameters": {"effect": {"defaultValue": "Audit"}},
    "policyRule": {
        "if": {"allOf": [
            {"field": "type", "equals": "Microsoft.MachineLearningServices/workspaces"},
            {"count": {
                "field": "Microsoft.MachineLearningServices/workspaces/"
                         "privateEndpointConnections[*]",
                "where": {"field": "Microsoft.MachineLearningServices/workspaces/"
                                   "privateEndpointConnections[*].privateLinkServiceConnectionState"
                                   ".status", "equals": "Approved"}},
             "less": 1},
        ]},
        "then": {"effect": "[parameters('effect')]"},
    }}}
LOGS_RULE = {"properties": {
    "displayName": "key vault resource logs (existence form)",
    "parameters": {"effect": {"defaultValue": "AuditIfNotExists"}},
    "policyRule": {
        "if": {"field": "type", "equals": "Microsoft.KeyVault/vaults"},
        "then": {"effect": "[parameters('effect')]", "details": {
            "type": "Microsoft.Insights/diagnosticSettings",
            "existenceCondition": {"count": {
                "field": "Microsoft.Insights/diagnosticSettings/logs[*]",
                "where": {"field": "Microsoft.Insights/diagnosticSettings/logs.enabled",
                          "equals": "true"}}, "greaterOrEquals": 1}}},
    }}}


def test_the_evaluator_sees_private_endpoints_and_diagnostic_settings(prod_resources):
    assert evaluate_definition(PRIVATE_LINK_RULE, prod_resources).verdict == "compliant"
    assert evaluate_definition(LOGS_RULE, prod_resources).verdict == "compliant"
    without = [r for r in prod_resources if r.type not in (PRIVATE_ENDPOINT, DIAGNOSTIC_SETTING)]
    assert evaluate_definition(PRIVATE_LINK_RULE, without).verdict == "non-compliant"
    assert evaluate_definition(LOGS_RULE, without).verdict == "non-compliant"
    others = [r for r in prod_resources if r.type != "azure-native:keyvault:Vault"]
    assert evaluate_definition(LOGS_RULE, others).verdict == "not applicable"
