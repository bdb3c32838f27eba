"""Offline preview: run a project's real Pulumi program under Pulumi's mock engine.

`preview_stack(infra_dir, stack)` reads `Pulumi.yaml` and `Pulumi.<stack>.yaml`, sets the
stack's config, executes the project's `__main__.py` with `pulumi.runtime.set_mocks`, waits for
every registration, and returns what `pulumi up` would have sent to Azure: every resource (type
token, logical name, camelCase inputs, `protect`), every invoke, the stack outputs, the role
assignments as a matrix, the policy violations, and the refusal or config error if any.

The mock answers `azure-native:authorization:getClientConfig` (the only invoke the programs
make) with the given deploying identity, and returns ARM-like ids so role assignment scopes read
like Azure's. Nothing touches the network. Several stacks can be previewed in one process.

What the preview reports is what the program *registered*: inputs and resource options
(`protect`, `retainOnDelete`, ...) are read from the RegisterResource requests the mock monitor
receives, so after every transformation the program registered. A preview that cannot stand for
`pulumi up` is an error, never a pass: a program that exits (`sys.exit`, `os._exit`), raises
`SystemExit`, registers no cloud resource, or registers what runs only inside the real engine
(transforms, resource hooks, dynamic providers, a plugin from another download URL).
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from blueprint_infra import naming, roles

FAKE_TENANT_ID = "72f988bf-0000-4000-8000-000000000001"
FAKE_SUBSCRIPTION_ID = "5f2c7b1e-0000-4000-8000-000000000002"
#: Who "runs" a preview when no deployer is configured (an infra engineer in dev).
FAKE_ENGINEER_OBJECT_ID = "e7e7e7e7-0000-4000-8000-000000000003"
FAKE_CLIENT_ID = "c1c1c1c1-0000-4000-8000-000000000004"
_NAMESPACE = uuid.UUID("4f6c9a1e-3b52-4d0a-9a57-0d1b5e7c2a10")

CLIENT_CONFIG_TOKEN = "azure-native:authorization:getClientConfig"


@dataclass
class PreviewResult:
    project: str
    stack: str
    environment: str | None
    kind: str | None
    configured_deployer: str | None
    deploying_identity: str
    dry_run: bool
    resources: list = field(default_factory=list)  # policies.Resource
    role_assignments: list[dict[str, str]] = field(default_factory=list)
    violations: list = field(default_factory=list)  # policies.Violation
    outputs: dict[str, Any] = field(default_factory=dict)
    invokes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what `pulumi.log.warn` printed
    error: str | None = None

    def of_type(self, token: str) -> list:
        return [r for r in self.resources if r.type == token]

    def by_name(self, name: str):
        return next(r for r in self.resources if r.name == name)


# --- the mocks -------------------------------------------------------------------------------

# type token -> (input holding the resource's name, ARM id template)
_ARM_IDS: dict[str, tuple[str, str]] = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName", "{rg_scope}"),
    "azure-native:storage:StorageAccount": (
        "accountName", "{rg_scope}/providers/Microsoft.Storage/storageAccounts/{name}"),
    "azure-native:storage:BlobContainer": (
        "containerName",
        "{rg_scope}/providers/Microsoft.Storage/storageAccounts/{accountName}"
        "/blobServices/default/containers/{name}"),
    "azure-native:keyvault:Vault": (
        "vaultName", "{rg_scope}/providers/Microsoft.KeyVault/vaults/{name}"),
    "azure-native:keyvault:Key": (
        "keyName", "{rg_scope}/providers/Microsoft.KeyVault/vaults/{vaultName}/keys/{name}"),
    "azure-native:operationalinsights:Workspace": (
        "workspaceName", "{rg_scope}/providers/Microsoft.OperationalInsights/workspaces/{name}"),
    "azure-native:applicationinsights:Component": (
        "resourceName", "{rg_scope}/providers/Microsoft.Insights/components/{name}"),
    "azure-native:containerregistry:Registry": (
        "registryName", "{rg_scope}/providers/Microsoft.ContainerRegistry/registries/{name}"),
    "azure-native:machinelearningservices:Workspace": (
        "workspaceName",
        "{rg_scope}/providers/Microsoft.MachineLearningServices/workspaces/{name}"),
    "azure-native:machinelearningservices:Compute": (
        "computeName",
        "{rg_scope}/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}"
        "/computes/{name}"),
    "azure-native:machinelearningservices:Registry": (
        "registryName", "{rg_scope}/providers/Microsoft.MachineLearningServices/registries/{name}"),
    "azure-native:authorization:RoleAssignment": (
        "roleAssignmentName", "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
    "azure-native:authorization:RoleDefinition": (
        "roleDefinitionId",
        "{sub_scope}/providers/Microsoft.Authorization/roleDefinitions/{name}"),
    "azure-native:authorization:ManagementLockAtResourceGroupLevel": (
        "lockName", "{rg_scope}/providers/Microsoft.Authorization/locks/{name}"),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "resourceName",
        "{rg_scope}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"),
    "azure-native:managedidentity:FederatedIdentityCredential": (
        "federatedIdentityCredentialResourceName",
        "{rg_scope}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}"
        "/federatedIdentityCredentials/{name}"),
    "azure-native:kubernetesconfiguration:Extension": (
        "extensionName",
        "{cluster_scope}/providers/Microsoft.KubernetesConfiguration/extensions/{name}"),
}


def _stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


class RecordingMocks:
    """Pulumi mocks that answer like Azure would (ids, identities) and record every call."""

    def __init__(self, *, object_id: str, tenant_id: str, subscription_id: str,
                 client_id: str = FAKE_CLIENT_ID):
        self.object_id = object_id
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id
        self.client_id = client_id
        self.resources: list[dict[str, Any]] = []
        self.invokes: list[dict[str, Any]] = []
        #: The resource options of the RegisterResource request being answered on this thread
        #: (set by `_RecordingMonitor`, which sees the request itself).
        self.request_options = threading.local()

    # pulumi.runtime.Mocks interface (duck-typed so this module imports pulumi lazily)
    def new_resource(self, args) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        options = getattr(self.request_options, "value", None) or {}
        self.resources.append({"type": args.typ, "name": args.name, "inputs": inputs,
                               "custom": bool(args.custom), "options": options})
        if not args.typ.startswith("azure-native:"):
            return f"{args.name}-id", inputs
        name_key, template = _ARM_IDS.get(args.typ, ("", ""))
        name = str(inputs.get(name_key) or args.name)
        sub_scope = f"/subscriptions/{self.subscription_id}"
        rg_scope = f"{sub_scope}/resourceGroups/{inputs.get('resourceGroupName', 'unknown')}"
        if template:
            fields = {k: v for k, v in inputs.items() if isinstance(v, str)}
            fields.update(name=name, sub_scope=sub_scope, rg_scope=rg_scope,
                          scope=str(inputs.get("scope", sub_scope)),
                          cluster_scope=(f"{rg_scope}/providers/{inputs.get('clusterRp')}/"
                                         f"{inputs.get('clusterResourceName')}/"
                                         f"{inputs.get('clusterName')}"))
            resource_id = template.format_map(_Default(fields))
        else:
            resource_id = f"{rg_scope}/providers/{args.typ}/{name}"
        outputs = dict(inputs)
        outputs.setdefault("name", name)
        outputs["id"] = resource_id
        identity = inputs.get("identity")
        if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
            outputs["identity"] = {**identity, "principalId": _stable_uuid("mi", resource_id),
                                   "tenantId": self.tenant_id}
        if args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            outputs.update(principalId=_stable_uuid("mi", resource_id),
                           clientId=_stable_uuid("client", resource_id),
                           tenantId=self.tenant_id)
        if args.typ == "azure-native:keyvault:Vault":
            outputs.setdefault("properties", {})
            outputs["properties"] = {**outputs["properties"],
                                     "vaultUri": f"https://{name}.vault.azure.net/"}
        if args.typ == "azure-native:keyvault:Key":
            outputs["keyUri"] = f"https://{inputs.get('vaultName')}.vault.azure.net/keys/{name}"
        if args.typ == "azure-native:kubernetesconfiguration:Extension":
            outputs["aksAssignedIdentity"] = {"principalId": _stable_uuid("ext", resource_id)}
        return resource_id, outputs

    def call(self, args) -> dict:
        self.invokes.append({"token": args.token, "args": dict(args.args)})
        if args.token == CLIENT_CONFIG_TOKEN:
            return {
                "clientId": self.client_id,
                "objectId": self.object_id,
                "subscriptionId": self.subscription_id,
                "tenantId": self.tenant_id,
            }
        return {}


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


# --- running a stack -------------------------------------------------------------------------

def _config_value(value: Any) -> str:
    """A config value as Pulumi hands it to a program: strings, objects as JSON. An encrypted
    (`secure:`) value cannot be decrypted offline and reads as empty."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a mapping that repeats a key is an error (PyYAML keeps
    the last value silently; a reviewer reading the first would be misled)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base loader says so
                    break
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (first at line "
                        f"{first.start_mark.line + 1})", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml_strict(text: str) -> Any:
    """`yaml.safe_load`, rejecting repeated keys (`UniqueKeyLoader`)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_stack_config(infra_dir: Path, stack: str) -> tuple[str, dict[str, str]]:
    """The Pulumi project name and the stack's config as Pulumi hands it to a program."""
    project_file = load_yaml_strict((infra_dir / "Pulumi.yaml").read_text(encoding="utf-8"))
    project = project_file["name"]
    stack_file = infra_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise FileNotFoundError(f"no stack config {stack_file.name} in {infra_dir}")
    data = load_yaml_strict(stack_file.read_text(encoding="utf-8"))
    config: dict[str, str] = {}
    for key, value in ((data or {}).get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        config[full] = _config_value(value)
    return project, config


def _reset_runtime() -> None:
    from pulumi.runtime import settings as runtime_settings

    runtime_settings.ROOT.set(None)
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()


def preview_stack(
    infra_dir: Path | str,
    stack: str,
    *,
    deploying_object_id: str | None = None,
    dry_run: bool = True,
    tenant_id: str = FAKE_TENANT_ID,
    subscription_id: str = FAKE_SUBSCRIPTION_ID,
) -> PreviewResult:
    """Run `infra_dir/__main__.py` for `stack` under mocks; see the module docstring."""
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    infra_dir = Path(infra_dir)
    project, config = read_stack_config(infra_dir, stack)
    configured = config.get(f"{project}:deployerObjectId") or None
    deploying = (deploying_object_id or configured or FAKE_ENGINEER_OBJECT_ID).lower()
    mocks = RecordingMocks(object_id=deploying, tenant_id=tenant_id,
                           subscription_id=subscription_id)

    _reset_runtime()
    pulumi.runtime.set_all_config(config)
    logger = logging.getLogger(f"blueprint_infra.preview.{project}.{stack}")
    logger.propagate = False
    logger.handlers[:] = [_Collect()]
    monitor = _recording_monitor(mocks)
    pulumi_mocks.set_mocks(_MocksAdapter(mocks), project=project, stack=stack, preview=dry_run,
                           logger=logger, monitor=monitor)
    root = pulumi.runtime.get_root_resource()

    error: str | None = None
    main = infra_dir / "__main__.py"
    sys.path.insert(0, str(infra_dir))
    cwd = os.getcwd()
    real_exit = os._exit
    os._exit = _refuse_exit  # a program that ends the process would end the preview with it
    try:
        os.chdir(infra_dir)  # as `pulumi up` runs it: from the folder of Pulumi.yaml
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(main), run_name="__main__")))
    except pulumi.RunError as exc:
        error = str(exc)
    except (SystemExit, _ProgramExit) as exc:
        code = exc.code if isinstance(exc, SystemExit) else exc.args[0]
        how = "os._exit" if isinstance(exc, _ProgramExit) else "sys.exit / SystemExit"
        error = (f"the program exited ({how}, code {code!r}) before `pulumi up` would have "
                 "registered its resources; an offline preview of it proves nothing")
    except Exception as exc:  # noqa: BLE001 - reported, not raised: a preview shows what broke
        error = f"{type(exc).__name__}: {exc}"
    finally:
        os._exit = real_exit
        os.chdir(cwd)
        sys.path.remove(str(infra_dir))

    outputs: dict[str, Any] = {}
    if error is None and root is not None:
        exported = dict(getattr(root, "outputs", {}))
        if exported:
            keys = list(exported)
            values = _sync_await(pulumi.Output.all(*[exported[k] for k in keys]).future())
            outputs = dict(zip(keys, values or [], strict=False))
    _reset_runtime()
    if error is None:
        error = _engine_only(monitor, mocks.resources)
    if error is None and not any(r["custom"] for r in mocks.resources):
        error = ("the program registered no cloud resource: `pulumi up` would deploy nothing "
                 "(or something this preview never saw)")

    result = PreviewResult(
        project=project,
        stack=stack,
        environment=config.get(f"{project}:environment"),
        kind=config.get(f"{project}:kind"),
        configured_deployer=configured.lower() if configured else None,
        deploying_identity=deploying,
        dry_run=dry_run,
        outputs=outputs,
        invokes=mocks.invokes,
        warnings=[m for level, m in logger.handlers[0].records if level >= logging.WARNING],
        error=error,
    )
    result.resources = _to_policy_resources(mocks.resources)
    result.role_assignments = role_matrix(result.resources)
    if error is None and result.kind:
        result.violations = _evaluate(result, config)
    return result


class _ProgramExit(BaseException):
    """Raised instead of ending the process when a previewed program calls `os._exit`."""


def _refuse_exit(code: int = 0) -> None:
    raise _ProgramExit(code)


#: Resource types whose code runs inside `pulumi up` itself, where no preview can judge it.
ENGINE_ONLY_TYPES = ("pulumi-python:dynamic:", "pulumi-nodejs:dynamic:", "command:")


def _recording_monitor(mocks: RecordingMocks):
    """A MockMonitor that hands each RegisterResource request's options to the mocks and
    remembers what only the real engine would run (transforms, hooks)."""
    from pulumi.runtime.mocks import MockMonitor

    class _RecordingMonitor(MockMonitor):
        def __init__(self, inner):
            super().__init__(inner)
            self.engine_only: list[str] = []

        def RegisterResource(self, request):  # noqa: N802 - the gRPC method name
            options = {
                "protect": request.protect if request.HasField("protect") else False,
                "retainOnDelete": (request.retainOnDelete
                                   if request.HasField("retainOnDelete") else False),
                "deleteBeforeReplace": request.deleteBeforeReplace,
                "ignoreChanges": list(request.ignoreChanges),
                "importId": request.importId,
                "pluginDownloadURL": request.pluginDownloadURL,
            }
            if request.transforms:
                self.engine_only.append(
                    f"resource {request.name!r} has `transforms` (resource option)")
            if request.HasField("hooks") and any(
                    getattr(request.hooks, f) for f in request.hooks.DESCRIPTOR.fields_by_name):
                self.engine_only.append(f"resource {request.name!r} has resource hooks")
            if request.pluginDownloadURL:
                self.engine_only.append(
                    f"resource {request.name!r} downloads its provider from "
                    f"{request.pluginDownloadURL}")
            if request.type.startswith(ENGINE_ONLY_TYPES):
                self.engine_only.append(
                    f"resource {request.name!r} is a {request.type} (its code runs during "
                    "`pulumi up`)")
            mocks.request_options.value = options
            try:
                return super().RegisterResource(request)
            finally:
                mocks.request_options.value = None

        def RegisterStackTransform(self, request):  # noqa: N802
            self.engine_only.append("a stack transform (pulumi.runtime.register_stack_transform)")
            return super().RegisterStackTransform(request)

        def RegisterStackInvokeTransform(self, request):  # noqa: N802
            self.engine_only.append(
                "an invoke transform (pulumi.runtime.register_invoke_transform)")
            return super().RegisterStackInvokeTransform(request)

        def RegisterResourceHook(self, request):  # noqa: N802
            self.engine_only.append(f"a resource hook {request.name!r}")
            return super().RegisterResourceHook(request)

        def RegisterErrorHook(self, request):  # noqa: N802
            self.engine_only.append(f"an error hook {request.name!r}")
            return super().RegisterErrorHook(request)

    return _RecordingMonitor(_MocksAdapter(mocks))


def _engine_only(monitor, resources: list[dict[str, Any]]) -> str | None:
    found = list(dict.fromkeys(monitor.engine_only))
    if not found:
        return None
    return ("the program registers what only the real engine runs, so this offline preview "
            "cannot show what `pulumi up` would do: " + "; ".join(found))


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


class _MocksAdapter:
    """Subclass-free adapter: pulumi only calls new_resource and call."""

    def __init__(self, mocks: RecordingMocks):
        self._mocks = mocks

    def new_resource(self, args):
        return self._mocks.new_resource(args)

    def call(self, args):
        return self._mocks.call(args)

    def register_transform(self, transform) -> None:  # recorded by _RecordingMonitor
        pass

    def register_invoke_transform(self, transform) -> None:
        pass


def _to_policy_resources(records: list[dict[str, Any]]) -> list:
    from blueprint_infra.policies import Resource

    return [
        Resource(
            type=r["type"],
            name=r["name"],
            properties=r["inputs"],
            protect=bool(r.get("options", {}).get("protect", False)),
        )
        for r in records
    ]


def role_matrix(resources: list) -> list[dict[str, str]]:
    """Every role assignment as principal, principal type, role name, role id and scope."""
    custom = {
        r.properties.get("roleDefinitionId", "").lower(): r.properties.get("roleName", "")
        for r in resources
        if r.type == "azure-native:authorization:RoleDefinition"
    }
    matrix = []
    for r in resources:
        if r.type != "azure-native:authorization:RoleAssignment":
            continue
        p = r.properties
        definition = str(p.get("roleDefinitionId", ""))
        guid = roles.role_guid(definition) if definition else ""
        matrix.append({
            "name": r.name,
            "principal_id": str(p.get("principalId", "")),
            "principal_type": str(p.get("principalType", "")),
            "role": (custom.get(guid) or roles.role_name(definition)) if definition else "",
            "role_definition_id": definition,
            "scope": str(p.get("scope", "")),
        })
    return matrix


def _evaluate(result: PreviewResult, config: dict[str, str]) -> list:
    try:
        from blueprint_infra import policies
    except ImportError:  # pragma: no cover - the policies module ships with the package
        return []
    context = policies.PolicyContext(
        environment=result.environment or result.stack,
        kind=result.kind or naming.environment_kind(result.stack),
        configured_deployer=result.configured_deployer,
        deploying_identity=result.deploying_identity,
        public_network_opt_out=(
            result.kind == "prod"
            and config.get(f"{result.project}:publicNetworkAccess") == "Enabled"
        ),
    )
    return list(policies.evaluate(result.resources, context))
