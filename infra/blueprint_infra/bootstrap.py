"""The bootstrap program: run once per project by a platform admin (`.cloud/infra/bootstrap/`).

The generated `bootstrap/__main__.py` is only::

    from blueprint_infra.bootstrap import run_bootstrap
    run_bootstrap()

It creates, in the project's platform resource group (names from `naming.project_names`):

- `StateBackend` (`blueprint:index:StateBackend`): the Pulumi state storage account with one
  blob container per environment (`pulumi-state-<env>`), and a key vault with one key per
  environment (`pulumi-secrets-<env>`) as that environment's secrets provider;
- `DeployIdentities` (`blueprint:index:DeployIdentities`): one user-assigned managed identity per
  environment with one OIDC federated credential and no secret, a separate read-only identity
  for previews on pull requests, and their role assignments (`rbac.bootstrap_assignments`);
- the project's Azure ML registry (unless `sharedRegistryId` names a shared one), through which
  models move from dev to prod;
- when `aksClusterId` is set, the AzureML extension on that cluster, once (the environment stacks
  only attach it).

And, per environment, its resource group `rg-<slug>-<env>` (protected; prod-kind: with a
CanNotDelete lock). The environment program uses that group and never creates it, so every
deploy identity holds its rights on its own environment's group only and nothing at
subscription scope: no identity of dev or staging can change anything of prod (resources, state,
secrets key). See docs/infra-engineers.md and docs/rbac.md.

Invokes: `azure-native:authorization:getClientConfig` (tenant and subscription).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import (
    authorization,
    keyvault,
    kubernetesconfiguration,
    managedidentity,
    resources,
    storage,
)
from pulumi_azure_native import (
    machinelearningservices as ml,
)

from blueprint_infra import guardrails, naming, rbac, roles
from blueprint_infra.settings import (
    BootstrapSettings,
    ConfigError,
    load_bootstrap_settings,
    pulumi_config_getter,
)

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
ADO_ISSUER = "https://vstoken.dev.azure.com/{organization_id}"
OIDC_AUDIENCE = "api://AzureADTokenExchange"
AZUREML_EXTENSION_NAME = "azureml"
PREVIEW = "preview"


def _child(parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def oidc_subject(settings: BootstrapSettings, environment: str | None) -> str:
    """The federated credential subject; `environment=None` is the pull-request preview.

    GitHub: a deploy identity trusts only jobs bound to its GitHub environment (whose branch
    policy and reviewers gate them), the preview identity only `pull_request` jobs. Azure
    DevOps: each identity trusts only its own service connection `<slug>-<env>`."""
    if settings.ci_provider == "github":
        if environment is None:
            return f"repo:{settings.repository}:pull_request"
        return f"repo:{settings.repository}:environment:{environment}"
    organization, _, project = settings.repository.partition("/")
    connection = f"{settings.slug}-{environment or PREVIEW}"
    return f"sc://{organization}/{project}/{connection}"


def oidc_issuer(settings: BootstrapSettings) -> str:
    if settings.ci_provider == "github":
        return GITHUB_ISSUER
    return ADO_ISSUER.format(organization_id=settings.ado_organization_id)


# --- each environment's resource group -------------------------------------------------------

@dataclass
class EnvironmentGroup:
    """An environment's resource group as the bootstrap created it."""

    environment: str
    kind: str
    name: str
    id: pulumi.Output[str]
    resource_group: resources.ResourceGroup
    lock: authorization.ManagementLockAtResourceGroupLevel | None


def environment_group(settings: BootstrapSettings, environment: str) -> EnvironmentGroup:
    """`rg-<slug>-<env>`, protected; for a prod-kind environment with a CanNotDelete lock that
    no deploy identity can lift (Contributor and the conditioned RBAC Administrator hold no
    `Microsoft.Authorization/locks/*`)."""
    kind = naming.environment_kind(environment)
    name = naming.environment_resource_group(settings.slug, environment)
    group = resources.ResourceGroup(
        f"{environment}-rg",
        resource_group_name=name,
        location=settings.location,
        tags={**settings.tags, "environment": environment},
        opts=pulumi.ResourceOptions(protect=True),
    )
    lock = None
    if kind == "prod":
        lock = authorization.ManagementLockAtResourceGroupLevel(
            f"{environment}-no-delete",
            lock_name="cannot-delete",
            level="CanNotDelete",
            resource_group_name=name,
            notes="Prod: nothing here is deleted outside a reviewed change of the bootstrap "
            "that removes this lock first.",
            opts=pulumi.ResourceOptions(depends_on=[group]),
        )
    return EnvironmentGroup(environment, kind, name, group.id, group, lock)


# --- state backend ---------------------------------------------------------------------------

@dataclass
class StateBackendArgs:
    settings: BootstrapSettings
    names: naming.ProjectNames
    tenant_id: str
    resource_group_name: pulumi.Input[str]
    after: list[pulumi.Resource] = field(default_factory=list)  # e.g. the resource group


class StateBackend(pulumi.ComponentResource):
    """Pulumi state and secrets, one of each per environment: a blob container
    `pulumi-state-<env>` in one storage account (versioned, soft delete) and a Key Vault key
    `pulumi-secrets-<env>`. Each deploy identity gets data rights on its own container and key
    only. All protected: losing them loses every stack."""

    def __init__(self, name: str, args: StateBackendArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:StateBackend", name, None, opts)
        s, n = args.settings, args.names
        self.storage_account = storage.StorageAccount(
            f"{name}-storage",
            account_name=n.state_storage_account,
            resource_group_name=args.resource_group_name,
            location=s.location,
            kind="StorageV2",
            sku=storage.SkuArgs(name="Standard_ZRS"),
            allow_blob_public_access=False,
            allow_shared_key_access=False,  # Pulumi's azblob backend signs in with Entra ID
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            tags=s.tags,
            opts=_child(self, protect=True, depends_on=args.after),
        )
        self.blob_service = storage.BlobServiceProperties(
            f"{name}-versioning",
            account_name=n.state_storage_account,
            resource_group_name=args.resource_group_name,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(enabled=True, days=30),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=30
            ),
            opts=_child(self, depends_on=[self.storage_account]),
        )
        self.key_vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=n.secrets_key_vault,
            resource_group_name=args.resource_group_name,
            location=s.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family="A", name="standard"),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=90,
                enable_purge_protection=True,
            ),
            tags=s.tags,
            opts=_child(self, protect=True, depends_on=args.after),
        )
        self.containers: dict[str, storage.BlobContainer] = {}
        self.keys: dict[str, keyvault.Key] = {}
        self.backend_urls: dict[str, pulumi.Output[str]] = {}
        self.secrets_providers: dict[str, pulumi.Output[str]] = {}
        self.container_scopes: dict[str, pulumi.Output[str]] = {}
        for env in s.environments:
            container_name, key_name = n.state_container(env), n.secrets_key(env)
            self.containers[env] = storage.BlobContainer(
                f"{name}-{env}-container",
                account_name=n.state_storage_account,
                resource_group_name=args.resource_group_name,
                container_name=container_name,
                public_access="None",
                opts=_child(self, protect=True, depends_on=[self.storage_account]),
            )
            self.keys[env] = keyvault.Key(
                f"{name}-{env}-key",
                key_name=key_name,
                vault_name=n.secrets_key_vault,
                resource_group_name=args.resource_group_name,
                properties=keyvault.KeyPropertiesArgs(
                    kty="RSA", key_size=2048,
                    key_ops=["encrypt", "decrypt", "wrapKey", "unwrapKey"],
                ),
                tags={**s.tags, "environment": env},
                opts=_child(self, protect=True, depends_on=[self.key_vault]),
            )
            self.backend_urls[env] = pulumi.Output.concat(
                "azblob://", container_name, "?storage_account=", n.state_storage_account
            )
            self.secrets_providers[env] = pulumi.Output.concat(
                "azurekeyvault://", n.secrets_key_vault, ".vault.azure.net/keys/", key_name
            )
            # Built from names (not the container's id output) so the scope is known in a
            # preview; the container's ARM id has exactly this form.
            self.container_scopes[env] = pulumi.Output.concat(
                self.storage_account.id, "/blobServices/default/containers/", container_name
            )
        self.register_outputs({
            "backend_urls": self.backend_urls,
            "secrets_providers": self.secrets_providers,
        })


# --- deploy identities -----------------------------------------------------------------------

@dataclass
class DeployIdentitiesArgs:
    settings: BootstrapSettings
    names: naming.ProjectNames
    subscription_id: str
    resource_group_name: pulumi.Input[str]
    #: environment -> scope key of rbac.PER_ENVIRONMENT_SCOPES -> resource id (the deploy
    #: identity's own resource is added here)
    environment_scopes: Mapping[str, Mapping[str, pulumi.Input[str]]]
    #: shared scope key (ml_registry, aks_cluster) -> resource id
    shared_scopes: Mapping[str, pulumi.Input[str]]
    after: list[pulumi.Resource] = field(default_factory=list)  # e.g. the resource groups


class DeployIdentities(pulumi.ComponentResource):
    """Per-environment deploy identities and the read-only preview identity, trusted through
    OIDC federation (no secrets), with exactly the role assignments of
    `rbac.bootstrap_assignments`: each on its own environment's scopes, none at subscription
    scope."""

    def __init__(self, name: str, args: DeployIdentitiesArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:DeployIdentities", name, None, opts)
        s, n = args.settings, args.names
        issuer = oidc_issuer(s)

        self.identities: dict[str, managedidentity.UserAssignedIdentity] = {}
        self.subjects: dict[str, str] = {}
        self.assignments: list[tuple[rbac.BootstrapAssignment, authorization.RoleAssignment]] = []
        holders = [(env, n.deploy_identity(env), env) for env in s.environments]
        holders.append((PREVIEW, n.preview_identity, None))
        for key, identity_name, environment in holders:
            identity = managedidentity.UserAssignedIdentity(
                f"{name}-{key}",
                resource_name_=identity_name,
                resource_group_name=args.resource_group_name,
                location=s.location,
                tags={**s.tags, "environment": key},
                opts=_child(self, depends_on=args.after),
            )
            # One credential per identity: prod's trusts only the prod environment (GitHub) or
            # the prod service connection (Azure DevOps); the preview's only pull requests.
            subject = oidc_subject(s, environment)
            managedidentity.FederatedIdentityCredential(
                f"{name}-{key}-oidc",
                federated_identity_credential_resource_name=f"{s.ci_provider}-{key}",
                resource_name_=identity_name,
                resource_group_name=args.resource_group_name,
                issuer=issuer,
                subject=subject,
                audiences=[OIDC_AUDIENCE],
                opts=pulumi.ResourceOptions(parent=identity, depends_on=[identity]),
            )
            self.identities[key] = identity
            self.subjects[key] = subject

        for assignment in rbac.bootstrap_assignments(s.environments,
                                                     aks="aks_cluster" in args.shared_scopes):
            identity = self.identities[assignment.holder]
            if assignment.environment is None:
                scope = args.shared_scopes[assignment.scope]
            elif assignment.scope == "deploy_identity_resource":
                scope = self.identities[assignment.environment].id
            else:
                scope = args.environment_scopes[assignment.environment][assignment.scope]
            self.assignments.append((assignment, self._assign(
                f"{name}-{assignment.holder}", assignment, identity,
                roles.role_definition_id(args.subscription_id, assignment.role), scope,
            )))
        self.register_outputs({
            "principal_ids": {k: i.principal_id for k, i in self.identities.items()},
        })

    def _assign(self, prefix: str, assignment: rbac.BootstrapAssignment,
                identity: managedidentity.UserAssignedIdentity,
                role_definition_id: str,
                scope: pulumi.Input[str]) -> authorization.RoleAssignment:
        name = pulumi.Output.all(scope, identity.principal_id).apply(
            lambda v: rbac.assignment_name(v[0] or "", v[1] or "", role_definition_id)
        )
        role_slug = "".join(c if c.isalnum() else "-" for c in assignment.role.lower())
        whose = assignment.environment
        whose = f"-{whose}" if whose and not prefix.endswith(f"-{whose}") else ""
        logical = f"{prefix}{whose}-{assignment.scope}-{role_slug}".replace("_", "-")
        while "--" in logical:
            logical = logical.replace("--", "-")
        return authorization.RoleAssignment(
            logical.strip("-"),
            role_assignment_name=name,
            principal_id=identity.principal_id,
            principal_type=rbac.PRINCIPAL_TYPES[assignment.principal],
            role_definition_id=role_definition_id,
            scope=scope,
            description=assignment.why,
            condition=assignment.condition,
            condition_version=rbac.CONDITION_VERSION if assignment.condition else None,
            opts=pulumi.ResourceOptions(parent=identity),
        )


# --- the program -----------------------------------------------------------------------------

def load_settings() -> BootstrapSettings:
    project = pulumi.get_project()
    get = pulumi_config_getter()
    try:
        return load_bootstrap_settings(project, get)
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None


def run_bootstrap() -> None:
    settings = load_settings()
    client = authorization.get_client_config()
    if naming.is_placeholder(settings.ado_organization_id):
        message = (
            f"stack config {settings.project}:adoOrganizationId: expected the Azure DevOps "
            "organization id (GUID) that issues the OIDC tokens, not the placeholder"
        )
        if not pulumi.runtime.is_dry_run():
            raise pulumi.RunError(message)
        pulumi.log.warn(message)
    names = naming.project_names(settings.slug, client.tenant_id)

    platform = resources.ResourceGroup(
        "platform-rg",
        resource_group_name=names.resource_group,
        location=settings.location,
        tags=settings.tags,
        opts=pulumi.ResourceOptions(protect=True),
    )
    authorization.ManagementLockAtResourceGroupLevel(
        "platform-no-delete",
        lock_name="cannot-delete",
        level="CanNotDelete",
        resource_group_name=names.resource_group,
        notes="Holds the project's Pulumi state, secrets keys, deploy identities and registry.",
        opts=pulumi.ResourceOptions(depends_on=[platform]),
    )

    # Every environment's resource group, created here so that each deploy identity needs (and
    # gets) rights on its own group only. Whatever else the bootstrap does per environment
    # group (its Azure-side guardrails) belongs in this loop, next to the group.
    groups: dict[str, EnvironmentGroup] = {}
    for env in settings.environments:
        groups[env] = group = environment_group(settings, env)
        # Azure Policy at the environment's resource group, created here so that no deploy
        # identity can lift it (guardrails.py).
        guardrails.EnvironmentGuardrails(
            f"{env}-guardrails",
            guardrails.EnvironmentGuardrailsArgs(
                slug=settings.slug,
                environment=env,
                kind=group.kind,
                subscription_id=client.subscription_id,
                resource_group_name=group.name,
                after=[group.resource_group],
            ),
        )

    backend = StateBackend(
        "state",
        StateBackendArgs(settings=settings, names=names, tenant_id=client.tenant_id,
                         resource_group_name=names.resource_group, after=[platform]),
    )

    if settings.shared_registry_id:
        registry_id: pulumi.Input[str] = settings.shared_registry_id
    else:
        registry = ml.Registry(
            "registry",
            registry_name=names.ml_registry,
            resource_group_name=names.resource_group,
            location=settings.location,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            sku=ml.SkuArgs(name="Basic", tier="Basic"),
            public_network_access="Enabled",  # shared by every environment's workspace
            region_details=[ml.RegistryRegionArmDetailsArgs(
                location=settings.location,
                acr_details=[ml.AcrDetailsArgs(
                    system_created_acr_account=ml.SystemCreatedAcrAccountArgs(
                        acr_account_sku="Premium"
                    ),
                )],
                storage_account_details=[ml.StorageAccountDetailsArgs(
                    system_created_storage_account=ml.SystemCreatedStorageAccountArgs(
                        storage_account_type="Standard_LRS",
                        allow_blob_public_access=False,
                        storage_account_hns_enabled=False,
                    ),
                )],
            )],
            tags=settings.tags,
            opts=pulumi.ResourceOptions(protect=True, depends_on=[platform]),
        )
        registry_id = registry.id

    if settings.aks_cluster_id:
        parts = settings.aks_cluster_id.split("/")
        kubernetesconfiguration.Extension(
            "azureml-extension",
            extension_name=AZUREML_EXTENSION_NAME,
            cluster_rp="Microsoft.ContainerService",
            cluster_resource_name="managedClusters",
            cluster_name=parts[8],
            resource_group_name=parts[4],
            extension_type="Microsoft.AzureML.Kubernetes",
            auto_upgrade_minor_version=True,
            release_train="stable",
            configuration_settings={
                "enableTraining": "True",
                "enableInference": "True",
                "inferenceRouterServiceType": "LoadBalancer",
                "internalLoadBalancerProvider": "azure",
                "allowInsecureConnections": "False",
                "inferenceRouterHA": "True",
            },
        )
        pulumi.export("kubernetesNamespaces", {
            env: naming.environment_names(settings.slug, env, client.tenant_id)
            .kubernetes_namespace
            for env in settings.environments
        })

    shared_scopes: dict[str, pulumi.Input[str]] = {"ml_registry": registry_id}
    if settings.aks_cluster_id:
        shared_scopes["aks_cluster"] = settings.aks_cluster_id
    identities = DeployIdentities(
        "identities",
        DeployIdentitiesArgs(
            settings=settings,
            names=names,
            subscription_id=client.subscription_id,
            resource_group_name=names.resource_group,
            environment_scopes={
                env: {
                    "resource_group": groups[env].id,
                    "state_container": backend.container_scopes[env],
                    "secrets_key": backend.keys[env].id,
                }
                for env in settings.environments
            },
            shared_scopes=shared_scopes,
            after=[platform],
        ),
    )

    deploy = {env: identities.identities[env] for env in settings.environments}
    preview = identities.identities[PREVIEW]
    pulumi.export("tenantId", client.tenant_id)
    pulumi.export("subscriptionId", client.subscription_id)
    pulumi.export("resourceGroupName", names.resource_group)
    pulumi.export("registryId", registry_id)
    pulumi.export("deployIdentities", {
        env: {"name": i.name, "clientId": i.client_id, "principalId": i.principal_id,
              "oidcSubject": identities.subjects[env]}
        for env, i in deploy.items()
    })
    previewed = [e for e in settings.environments if naming.environment_kind(e) != "prod"]
    pulumi.export("previewIdentity", {
        "name": preview.name, "clientId": preview.client_id,
        "principalId": preview.principal_id, "oidcSubject": identities.subjects[PREVIEW],
        "environments": previewed,
        # A pull-request job runs outside any CI environment (its OIDC subject is
        # `pull_request`), so it reads these per-stack values from repository-level variables.
        "ciVariables": {
            env: {"PULUMI_BACKEND_URL": backend.backend_urls[env],
                  "PULUMI_SECRETS_PROVIDER": backend.secrets_providers[env]}
            for env in previewed
        },
    })
    # Per environment: its resource group, state backend and secrets provider, and the CI
    # variables of its deploy job (GitHub environment variables / Azure DevOps variables).
    pulumi.export("environments", {
        env: {
            "kind": groups[env].kind,
            "resourceGroupName": groups[env].name,
            "resourceGroupId": groups[env].id,
            "backendUrl": backend.backend_urls[env],
            "secretsProvider": backend.secrets_providers[env],
            "deployIdentityClientId": deploy[env].client_id,
            "deployIdentityPrincipalId": deploy[env].principal_id,
        }
        for env in settings.environments
    })
    pulumi.export("ciVariables", {
        env: {
            "PULUMI_BACKEND_URL": backend.backend_urls[env],
            "PULUMI_SECRETS_PROVIDER": backend.secrets_providers[env],
            "AZURE_CLIENT_ID": deploy[env].client_id,
            "AZURE_RESOURCE_GROUP": groups[env].name,
            "AZUREML_WORKSPACE": naming.environment_names(
                settings.slug, env, client.tenant_id).workspace,
        }
        for env in settings.environments
    })
    # Repository-level CI variables: the pull-request preview builds each non-prod stack's
    # backend from the account and vault names; the model pipelines publish to the registry.
    pulumi.export("repositoryVariables", {
        "PULUMI_STATE_STORAGE_ACCOUNT": names.state_storage_account,
        "PULUMI_SECRETS_KEY_VAULT": names.secrets_key_vault,
        "AZUREML_REGISTRY": pulumi.Output.from_input(registry_id).apply(
            lambda rid: str(rid).rstrip("/").rsplit("/", 1)[-1]),
        "AZURE_TENANT_ID": client.tenant_id,
        "AZURE_SUBSCRIPTION_ID": client.subscription_id,
        "AZURE_PREVIEW_CLIENT_ID": preview.client_id,
    })
    # Hand-over: what each environment stack's config needs from here.
    pulumi.export("stackConfig", {
        env: {f"{settings.slug}:deployerObjectId": i.principal_id,
              f"{settings.slug}:registryId": registry_id}
        for env, i in deploy.items()
    })
