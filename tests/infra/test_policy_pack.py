"""The pulumi-policy pack runs the same validators as `blueprint plan`.

The pack's `__main__.py` starts a gRPC server when imported, so it is parsed, never imported.
The adapter is exercised through pulumi-policy's own analyzer servicer (the object the server
would dispatch to), fed the wire form the Pulumi engine sends: a protobuf Struct of the
resource's camelCase inputs recorded from the real SDK, with the engine's unknown sentinels.
"""

from __future__ import annotations

import ast
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_azure_native import authorization, storage
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, unknown_checking_proxy
from recording import DEPLOYER, SUBSCRIPTION
from recording import record as record_resources

from blueprint_infra import naming, policies, policy_adapter, roles
from blueprint_infra.policies import UNKNOWN

PACK = Path(__file__).resolve().parents[2] / "infra" / "policy_pack"
#: The pack a generated project carries (its files are copied verbatim, not rendered, but for
#: requirements.txt.jinja's version pin).
PROJECT_PACK = Path(__file__).resolve().parents[2] / "template" / ".cloud" / "infra" / "policy_pack"
PACKS = [PACK, PROJECT_PACK]
GROUP = "44444444-4444-4444-4444-444444444444"
PROD_CONFIG = {"kind": "prod", "environment": "prod", "deployerObjectId": DEPLOYER}


def record(build) -> dict[str, tuple[str, dict]]:
    """The recorded resources by logical name: (type token, camelCase inputs)."""
    return {r.name: (r.type, r.properties) for r in record_resources(build)}


def group_grant(role: str):
    return authorization.RoleAssignment(
        "ds-grant", principal_id=GROUP, principal_type="Group",
        role_definition_id=roles.role_definition_id(SUBSCRIPTION, role),
        scope=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-churn-prod",
        role_assignment_name="55555555-5555-5555-5555-555555555555")


def open_storage():
    return storage.StorageAccount(
        "st", account_name="stchurnprodabc123", resource_group_name="rg", kind="StorageV2",
        sku=storage.SkuArgs(name="Standard_LRS"), allow_blob_public_access=True,
        minimum_tls_version="TLS1_2", enable_https_traffic_only=True,
        allow_shared_key_access=False, public_network_access="Disabled",
        tags={"project": "churn", "environment": "prod", "cost-center": "cc",
              "managed-by": "pulumi"})


def urn(name: str, typ: str) -> str:
    return f"urn:pulumi:prod::churn::{typ}::{name}"


def servicer(stack_config: dict, stack_name: str = "prod",
             project: str = "churn") -> _PolicyAnalyzerServicer:
    def settings():
        return stack_config, stack_name, project

    built = [policy_adapter.pack_policy(name, settings) for name in policies.POLICIES]
    return _PolicyAnalyzerServicer("mlops-blueprint", "0.1.0", built, EnforcementLevel.ADVISORY)


def struct(properties: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(properties, message)
    return message


def analyze(service, name: str, typ: str, properties: dict, *, protect: bool = False):
    request = proto.AnalyzeRequest(type=typ, properties=struct(properties), urn=urn(name, typ),
                                   name=name,
                                   options=proto.AnalyzerResourceOptions(protect=protect))
    return list(service.Analyze(request, None).diagnostics)


# --- the pack's files --------------------------------------------------------------------------

@pytest.mark.parametrize("pack", PACKS, ids=["repository", "generated-project"])
def test_pack_main_only_serves_the_registry_pack(pack):
    tree = ast.parse((pack / "__main__.py").read_text(encoding="utf-8"))
    docstring, imported, call = tree.body
    assert isinstance(docstring.value, ast.Constant)
    assert isinstance(imported, ast.ImportFrom)
    assert imported.module == "blueprint_infra.policy_adapter"
    assert [alias.name for alias in imported.names] == ["serve_policy_pack"]
    assert isinstance(call.value, ast.Call) and call.value.func.id == "serve_policy_pack"


@pytest.mark.parametrize("pack", PACKS, ids=["repository", "generated-project"])
def test_pack_metadata_names_a_python_runtime_and_the_same_pack_name(pack):
    meta = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    runtime = meta["runtime"]
    assert (runtime if isinstance(runtime, str) else runtime["name"]) == "python"
    assert meta["name"] == policy_adapter.PACK_NAME
    assert meta == yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    requirements = next(pack.glob("requirements.txt*")).read_text(encoding="utf-8")
    if "-r ../requirements.txt" in requirements:  # the same pinned blueprint as the stacks
        requirements += next(pack.parent.glob("requirements.txt*")).read_text(encoding="utf-8")
    assert "mlops-blueprint" in requirements and "pulumi-policy" in requirements


def test_every_policy_keeps_its_enforcement_level_and_kind():
    for name, policy in policies.POLICIES.items():
        built = policy_adapter.pack_policy(name, lambda: ({}, None))
        expected = (EnforcementLevel.MANDATORY if policy.enforcement == policies.MANDATORY
                    else EnforcementLevel.ADVISORY)
        assert built.enforcement_level == expected, name
        assert isinstance(built, StackValidationPolicy) == (not policy.per_resource), name
        assert built.description == policy.description


# --- resource validations through the analyzer ------------------------------------------------

@pytest.mark.parametrize("role,expect_violation", [
    ("AzureML Data Scientist", True), ("Contributor", True), ("Reader", False),
])
def test_pack_flags_a_prod_group_write_role_naming_the_assignment(role, expect_violation):
    diagnostics = analyze_stack(servicer(PROD_CONFIG), record(lambda: [group_grant(role)]))
    if not expect_violation:
        assert diagnostics == []
        return
    [diagnostic] = diagnostics
    assert diagnostic.policyName == "prod-no-human-write-roles"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert diagnostic.urn == urn("ds-grant", policies.ROLE_ASSIGNMENT)
    assert "'ds-grant'" in diagnostic.message and role in diagnostic.message


def test_pack_takes_the_kind_from_the_stack_name_and_config_may_only_be_stricter():
    resources = record(lambda: [group_grant("AzureML Data Scientist")])
    assert analyze_stack(servicer({"kind": "dev", "environment": "dev"}, "dev"), resources) == []
    # A stack named "live" (unknown: prod) or relabelled dev by its config is held to prod rules.
    for config, name in [({"deployerObjectId": DEPLOYER}, "live"),
                         ({"kind": "dev", "environment": "dev", "deployerObjectId": DEPLOYER},
                          "prod"),
                         ({"kind": "prod", "deployerObjectId": DEPLOYER}, "dev")]:
        [diagnostic] = analyze_stack(servicer(config, name), resources)
        assert diagnostic.policyName == "prod-no-human-write-roles", (config, name)


def test_pack_policy_config_cannot_weaken_the_kind():
    context = policy_adapter.context_from({"kind": "dev"}, {}, "prod")
    assert context.kind == "prod"
    assert policy_adapter.context_from({"kind": "prod"}, {}, "dev").kind == "prod"


def test_pack_reports_storage_public_access_like_plan():
    typ, inputs = record(lambda: [open_storage()])["st"]
    diagnostics = analyze(servicer(PROD_CONFIG), "st", typ, inputs, protect=True)
    plan_verdicts = policies.evaluate_all(
        [policies.Resource(typ, "st", inputs, protect=True)],
        policy_adapter.context_from(None, PROD_CONFIG, "prod"))
    assert [d.policyName for d in diagnostics] == [v.policy for v in plan_verdicts] == [
        "storage-no-public-blob-access"]
    assert plan_verdicts[0].message in diagnostics[0].message


def test_pack_does_not_fail_on_values_unknown_in_preview():
    typ, inputs = record(lambda: [open_storage()])["st"]
    inputs["allowBlobPublicAccess"] = UNKNOWN_BOOLEAN_VALUE
    inputs["tags"] = {"project": "p", "environment": "prod", "cost-center": "cc",
                      "managed-by": "pulumi"}
    assert analyze(servicer(PROD_CONFIG), "st", typ, inputs, protect=True) == []


# --- stack validations through the analyzer ---------------------------------------------------

def analyze_stack(service, resources: dict[str, tuple[str, dict]],
                  dependencies: dict[str, dict[str, list[str]]] | None = None):
    """AnalyzeStack with the resources' outputs; `dependencies`: resource -> input -> the logical
    names of the resources it was computed from (the engine sends their URNs)."""
    types = {name: typ for name, (typ, _) in resources.items()}

    def deps(name):
        return {key: proto.AnalyzerPropertyDependencies(urns=[urn(d, types[d]) for d in names])
                for key, names in ((dependencies or {}).get(name) or {}).items()}

    request = proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(type=typ, properties=struct(props), urn=urn(name, typ), name=name,
                               propertyDependencies=deps(name))
        for name, (typ, props) in resources.items()
    ])
    return list(service.AnalyzeStack(request, None).diagnostics)


def test_pack_requires_a_prod_deployer_in_the_stack_config():
    resources = record(lambda: [group_grant("Reader")])
    [diagnostic] = analyze_stack(servicer({"kind": "prod", "environment": "prod"}), resources)
    assert diagnostic.policyName == "prod-deployer-identity"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert "deployerObjectId" in diagnostic.message
    assert analyze_stack(servicer(PROD_CONFIG), resources) == []


def test_pack_placeholder_deployer_is_advisory():
    config = {**PROD_CONFIG, "deployerObjectId": naming.PLACEHOLDER_GUID}
    [diagnostic] = analyze_stack(servicer(config), record(lambda: [group_grant("Reader")]))
    assert diagnostic.policyName == "prod-deployer-placeholder"
    assert diagnostic.enforcementLevel == proto.ADVISORY


# --- the adapter's pieces ----------------------------------------------------------------------

def test_plain_unwraps_proxies_and_marks_unknowns():
    props = unknown_checking_proxy({
        "tags": {"project": "p"}, "regionDetails": [{"location": "westeurope"}],
        "allowBlobPublicAccess": UNKNOWN_BOOLEAN_VALUE,
    })
    options = PolicyResourceOptions(True, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs("azure-native:storage:StorageAccount", props, "urn:x", "st",
                                  options, None)
    resource = policy_adapter.to_resource(args)
    assert resource.properties == {"tags": {"project": "p"},
                                   "regionDetails": [{"location": "westeurope"}],
                                   "allowBlobPublicAccess": UNKNOWN}
    assert (resource.type, resource.name, resource.protect) == (
        "azure-native:storage:StorageAccount", "st", True)


def test_context_takes_the_stack_name_then_policy_config_then_stack_config():
    context = policy_adapter.context_from(
        {"deployingObjectId": "99999999-9999-9999-9999-999999999999"},
        {"environment": "prod", "kind": "prod", "deployerObjectId": DEPLOYER,
         "publicNetworkAccess": "Enabled"}, "whatever")
    assert (context.environment, context.kind, context.configured_deployer) == (
        "whatever", "prod", DEPLOYER)
    assert context.deploying_identity == "99999999-9999-9999-9999-999999999999"
    assert context.public_network_opt_out
    by_name = policy_adapter.context_from(None, {}, "preprod")
    assert (by_name.environment, by_name.kind, by_name.deploying_identity) == (
        "preprod", "staging", None)
    assert not policy_adapter.context_from(None, {"publicNetworkAccess": "Enabled"},
                                           "dev").public_network_opt_out



# --- the real pack, as Pulumi starts it --------------------------------------------------------

@pytest.fixture(params=PACKS, ids=["repository", "generated-project"])
def running_pack(request):
    """A pack's `__main__.py` in its own process, as the Pulumi CLI starts it: stack config in
    PULUMI_CONFIG, the analyzer's port on stdout. Yields a gRPC stub."""
    pack = request.param
    env = {
        **os.environ,
        "PULUMI_PROJECT": "churn", "PULUMI_STACK": "live", "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": json.dumps({"churn:kind": "prod", "churn:environment": "prod",
                                     "churn:deployerObjectId": DEPLOYER}),
    }
    process = subprocess.Popen([sys.executable, str(pack / "__main__.py")], cwd=pack, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else b""
        assert line.strip().isdigit(), process.stderr.read1(4000) if not ready else line
        with grpc.insecure_channel(f"127.0.0.1:{int(line)}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_running_pack_serves_every_registry_policy_at_its_level(running_pack):
    info = running_pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlops-blueprint"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels == {
        name: proto.MANDATORY if p.enforcement == policies.MANDATORY else proto.ADVISORY
        for name, p in policies.POLICIES.items()
    }


def test_the_running_pack_reads_the_stack_config_and_flags_a_human_write_role(running_pack):
    typ, inputs = record(lambda: [group_grant("AzureML Data Scientist")])["ds-grant"]
    request = proto.AnalyzeStackRequest(resources=[proto.AnalyzerResource(
        type=typ, properties=struct(inputs), urn=urn("ds-grant", typ), name="ds-grant")])
    [diagnostic] = running_pack.AnalyzeStack(request).diagnostics
    assert diagnostic.policyName == "prod-no-human-write-roles"
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert diagnostic.urn == urn("ds-grant", typ) and "'ds-grant'" in diagnostic.message


# --- the allow-list and the bootstrap through the analyzer ---------------------------------------

WORKSPACE = {"workspaceName": "mlw-churn-prod", "identity": {"type": "SystemAssigned"},
             "publicNetworkAccess": "Disabled",
             "tags": {"project": "churn", "environment": "prod", "cost-center": "cc",
                      "managed-by": "pulumi"}}


def late_grant(role: str = "Key Vault Administrator") -> tuple[str, dict]:
    """A grant whose principal id is unknown in the preview (the engine's sentinel)."""
    return policies.ROLE_ASSIGNMENT, {
        "principalId": proto_unknown_string(), "principalType": "ServicePrincipal",
        "roleDefinitionId": roles.role_definition_id(SUBSCRIPTION, role), "scope": "/kv",
        "roleAssignmentName": "55555555-5555-5555-5555-555555555555"}


def proto_unknown_string() -> str:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    return UNKNOWN_STRING_VALUE


def test_pack_allows_an_unknown_principal_only_when_it_comes_from_the_workspace():
    resources = {"mlw": (policies.ML_WORKSPACE, WORKSPACE), "late": late_grant(),
                 "id": ("azure-native:managedidentity:UserAssignedIdentity",
                        {"resourceName": "id-x", "tags": WORKSPACE["tags"]})}
    from_workspace = {"late": {"principalId": ["mlw"]}}
    from_identity = {"late": {"principalId": ["id"]}}
    assert analyze_stack(servicer(PROD_CONFIG), resources, from_workspace) == []
    [diagnostic] = analyze_stack(servicer(PROD_CONFIG), resources, from_identity)
    assert diagnostic.policyName == "prod-no-human-write-roles"
    assert "unknown until deployment" in diagnostic.message
    [untraced] = analyze_stack(servicer(PROD_CONFIG), resources)
    assert untraced.policyName == "prod-no-human-write-roles"


def test_pack_allows_the_workspace_identity_by_its_known_output():
    principal = "77777777-7777-4777-8777-777777777777"
    workspace = {**WORKSPACE, "identity": {"type": "SystemAssigned", "principalId": principal}}
    _, grant = late_grant()
    resources = {"mlw": (policies.ML_WORKSPACE, workspace),
                 "kv-admin": (policies.ROLE_ASSIGNMENT, {**grant, "principalId": principal})}
    assert analyze_stack(servicer(PROD_CONFIG), resources) == []
    stranger = {**grant, "principalId": "88888888-8888-4888-8888-888888888888"}
    [diagnostic] = analyze_stack(servicer(PROD_CONFIG),
                                 {**resources, "kv-admin": (policies.ROLE_ASSIGNMENT, stranger)})
    assert diagnostic.policyName == "prod-no-human-write-roles"


def test_pack_reads_protect_as_registered():
    typ, inputs = policies.ML_WORKSPACE, WORKSPACE
    [diagnostic] = analyze(servicer(PROD_CONFIG), "mlw", typ, inputs)
    assert diagnostic.policyName == "prod-stateful-resources-protected"
    assert analyze(servicer(PROD_CONFIG), "mlw", typ, inputs, protect=True) == []


def test_pack_judges_a_bootstrap_project_as_the_bootstrap():
    service = servicer({}, "platform", project="churn-bootstrap")
    grant = record(lambda: [authorization.RoleAssignment(
        "dev-contributor", principal_id=GROUP, principal_type="ServicePrincipal",
        role_definition_id=roles.role_definition_id(SUBSCRIPTION, "Contributor"),
        scope=f"/subscriptions/{SUBSCRIPTION}",
        role_assignment_name="55555555-5555-5555-5555-555555555555")])
    typ, inputs = grant["dev-contributor"]
    names = [d.policyName for d in analyze(service, "dev-contributor", typ, inputs)]
    assert names == ["bootstrap-no-subscription-scope"]
    human = {**inputs, "principalType": "group"}
    names = [d.policyName for d in analyze(service, "dev-contributor", typ, human)]
    assert names == ["bootstrap-no-human-above-reader", "bootstrap-no-subscription-scope"]
