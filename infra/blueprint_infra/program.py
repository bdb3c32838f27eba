"""The environment program: one stack per environment (`pulumi up` in `.cloud/infra/`).

The generated `.cloud/infra/__main__.py` is only::

    from blueprint_infra.program import run_environment
    run_environment()

Order matters: config is validated, then the deploying identity is checked, and only then is
any Azure resource registered. A refusal or a config error is a `pulumi.RunError` with one line.

The environment's resource group (and prod's CanNotDelete lock) belong to the bootstrap; this
program creates everything inside that group and never the group itself.

Invokes (a preview must answer them, offline too): `azure-native:authorization:getClientConfig`
(tenant for names and the key vault, subscription for role definition ids and the registry id,
object id of the token's caller for the prod deployer check) and, for a prod-kind stack only,
`azure-native:managedidentity:getUserAssignedIdentity` (the bootstrap's deploy identity of this
environment, `id-<slug>-<env>-deploy` in `rg-<slug>-platform`, whose principal id is the only
caller the check accepts). Nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity

from blueprint_infra import guardrails, naming
from blueprint_infra.components import (
    AccessControl,
    AccessControlArgs,
    KubernetesAttach,
    KubernetesAttachArgs,
    MlEnvironment,
    MlEnvironmentArgs,
)
from blueprint_infra.settings import (
    ConfigError,
    EnvironmentSettings,
    load_environment_settings,
    pulumi_config_getter,
)


def load_settings() -> EnvironmentSettings:
    """The stack's config, validated; a bad key stops the program with one line."""
    project = pulumi.get_project()
    get = pulumi_config_getter()
    try:
        settings = load_environment_settings(project, get)
        # The stack is the environment: a prod stack relabelled (environment: prodx, kind: dev)
        # would otherwise be deployed and judged by dev's rules.
        stack = pulumi.get_stack()
        if settings.environment != stack:
            raise ConfigError(
                f"{project}:environment", f"the stack's own name {stack!r}", settings.environment
            )
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None
    return settings


@dataclass(frozen=True)
class ExpectedDeployer:
    """The bootstrap's deploy identity of this environment, as Azure reports it."""

    identity_name: str
    resource_group: str
    principal_id: str  # "" when the lookup failed
    problem: str = ""  # why the lookup failed


def lookup_deployer(settings: EnvironmentSettings, tenant_id: str) -> ExpectedDeployer:
    """Ask Azure (not the stack config) for the principal id of `id-<slug>-<env>-deploy` in
    `rg-<slug>-platform`. A command-line `-c` cannot change what this returns."""
    project = naming.project_names(settings.slug, tenant_id)
    name = project.deploy_identity(settings.environment)
    try:
        found = managedidentity.get_user_assigned_identity(
            resource_group_name=project.resource_group, resource_name=name
        )
        principal = (found.principal_id or "").lower()
        problem = "" if principal else "Azure returned no principal id"
    except Exception as error:  # noqa: BLE001 - any failure means: no proof, so no deployment
        # (Pulumi's SDK also fails the run with the invoke's error; catching it here makes the
        # check refuse before any resource is registered.)
        principal, problem = "", f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return ExpectedDeployer(name, project.resource_group, principal, problem)


def deployer_check(settings: EnvironmentSettings, deploying_object_id: str | None,
                   expected: ExpectedDeployer | None, stack: str, dry_run: bool) -> str:
    """Prod is deployed only by the bootstrap's deploy identity of this environment.

    Three ids must agree: the caller in the token (`deploying_object_id`, from
    `get_client_config`), the principal id Azure reports for the deploy identity the bootstrap
    created (`expected`, looked up by its derived name), and `deployerObjectId` in the stack
    config. Overriding the config (`pulumi up -c <project>:deployerObjectId=<me>`) therefore
    cannot pass: Azure's answer does not change. Returns a one-line report; on a real update
    (not a preview) of a prod stack raises `pulumi.RunError` when they disagree, when the
    lookup failed, or when the configured deployer is the `--defaults` placeholder. Previews
    report instead of refusing.
    """
    deploying = (deploying_object_id or "").lower() or "<unknown>"
    key = f"{settings.project}:deployerObjectId"
    if not settings.is_prod:
        return f"not enforced ({settings.kind} stack); deploying identity {deploying}"
    configured = settings.deployer_object_id
    problem = ""
    if naming.is_placeholder(configured):
        problem = (
            f"{key} is the placeholder {naming.PLACEHOLDER_GUID}; set it to the prod deploy "
            "identity's object id (bootstrap output deployIdentities.<env>.principalId)"
        )
    elif expected is None or not expected.principal_id:
        reason = expected.problem if expected else "not looked up"
        where = (f"{expected.identity_name} in {expected.resource_group}" if expected
                 else "the bootstrap's deploy identity")
        problem = f"could not look up the prod deploy identity {where} in Azure ({reason})"
    elif expected.principal_id != configured:
        problem = (
            f"{key} {configured} is not the principal id of the bootstrap's deploy identity "
            f"{expected.identity_name} ({expected.principal_id}, looked up in Azure)"
        )
    elif deploying != expected.principal_id:
        problem = (
            f"deploying identity {deploying} is not the configured prod deployer {configured} "
            f"({key}; Azure's {expected.identity_name})"
        )
    if problem:
        if dry_run:
            return f"preview: {problem}; a real update would be refused"
        raise pulumi.RunError(
            f"refusing to deploy prod stack {stack!r}: {problem}. Only the prod deploy "
            "identity (CI) may run `pulumi up` on prod."
        )
    return (f"ok: deploying identity {deploying} is the prod deploy identity "
            f"{expected.identity_name} and the configured deployer")


def registry_id(settings: EnvironmentSettings, subscription_id: str, tenant_id: str) -> str:
    """The project's Azure ML registry: `registryId` if set, else the bootstrap's, by name."""
    if settings.registry_id:
        return settings.registry_id
    project = naming.project_names(settings.slug, tenant_id)
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{project.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/registries/{project.ml_registry}"
    )


def run_environment() -> None:
    settings = load_settings()
    client = authorization.get_client_config()
    dry_run = pulumi.runtime.is_dry_run()
    expected = lookup_deployer(settings, client.tenant_id) if settings.is_prod else None
    check = deployer_check(settings, client.object_id, expected, pulumi.get_stack(), dry_run)
    if dry_run and not check.startswith(("ok", "not enforced")):
        pulumi.log.warn(check)
    private_subnet, private_warning = guardrails.private_inbound_check(settings, dry_run)
    if private_warning:
        pulumi.log.warn(private_warning)
    if naming.is_placeholder(settings.data_scientists_group_id) and not settings.is_prod:
        # Not refused (a dev stack may come up before the group exists), but Azure rejects
        # role assignments to a principal that does not exist.
        pulumi.log.warn(
            f"{settings.project}:dataScientistsGroupId is the placeholder "
            f"{naming.PLACEHOLDER_GUID}; its role assignments will fail until it is set to the "
            "data scientists' Entra group id"
        )

    names = naming.environment_names(settings.slug, settings.environment, client.tenant_id)
    broken = naming.check_names(names)
    if broken:  # cannot happen for a slug the template accepts; guard the invariant anyway
        raise pulumi.RunError(f"generated names break Azure's rules: {', '.join(broken)}")

    env = MlEnvironment(
        settings.environment,
        MlEnvironmentArgs(settings=settings, names=names, tenant_id=client.tenant_id,
                          subscription_id=client.subscription_id),
    )
    scopes = dict(env.scopes())
    scopes["ml_registry"] = registry_id(settings, client.subscription_id, client.tenant_id)
    if settings.aks_cluster_id:
        scopes["aks_cluster"] = settings.aks_cluster_id

    principals: dict[str, pulumi.Input[str]] = {
        "data_scientists": settings.data_scientists_group_id,
        "workspace_identity": env.workspace_principal_id,
    }
    if settings.readers_group_id:
        principals["readers"] = settings.readers_group_id
    if settings.deployer_object_id:
        principals["deploy_identity"] = settings.deployer_object_id

    access = AccessControl(
        f"{settings.environment}-rbac",
        AccessControlArgs(
            kind=settings.kind,
            subscription_id=client.subscription_id,
            scopes=scopes,
            principals=principals,
            description_prefix=f"{settings.slug} {settings.environment}: ",
        ),
        opts=pulumi.ResourceOptions(depends_on=[env]),
    )

    protection = guardrails.protect_environment(settings, names, env, private_subnet)

    kubernetes = None
    if settings.aks_cluster_id:
        kubernetes = KubernetesAttach(
            f"{settings.environment}-k8s",
            KubernetesAttachArgs(
                settings=settings,
                names=names,
                workspace_name=names.workspace,
                resource_group_name=names.resource_group,
                depends_on=[env.workspace, *access.on_scope("aks_cluster")],
            ),
        )

    pulumi.export("environment", settings.environment)
    pulumi.export("kind", settings.kind)
    pulumi.export("resourceGroupName", names.resource_group)
    pulumi.export("workspaceName", names.workspace)
    pulumi.export("workspaceId", env.workspace.id)
    pulumi.export("workspacePrincipalId", env.workspace_principal_id)
    pulumi.export("storageAccountName", names.storage_account)
    pulumi.export("keyVaultName", names.key_vault)
    pulumi.export("containerRegistryName", names.container_registry)
    pulumi.export("computeClusterName", names.compute_cluster)
    pulumi.export("registryId", scopes["ml_registry"])
    pulumi.export("publicNetworkAccess", settings.public_network_access)
    pulumi.export("deployerCheck", check)
    pulumi.export("roleAssignmentCount", len(access.assignments))
    pulumi.export("privateEndpoints", protection.private_endpoints)
    if kubernetes is not None:
        pulumi.export("kubernetesComputeName", names.kubernetes_compute)
        pulumi.export("kubernetesNamespace", kubernetes.namespace)
