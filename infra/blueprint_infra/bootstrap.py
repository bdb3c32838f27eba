"""The bootstrap program: run once per project by a platform admin (`.cloud/infra/bootstrap/`).

The generated `bootstrap/__main__.py` is only::

    from blueprint_infra.bootstrap import run_bootstrap
    run_bootstrap()

It creates, in the project's platform resource group (names from `naming.project_names`):

- `StateBackend` (`blueprint:index:StateBackend`): the Pulumi state backend, an Azure Blob
  container, and a Key Vault key as the secrets provider.
- `DeployIdentities` (`blueprint:index:DeployIdentities`): one user-assigned managed identity per
  environment with OIDC federated credentials and no secret, a separate read-only identity for
  previews on pull requests, and their role assignments (`rbac.BOOTSTRAP_GRANTS`).
- the project's Azure ML registry (unless `sharedRegistryId` names a shared one), through which
  models move from dev to prod;
- when `aksClusterId` is set, the AzureML extension on that cluster, once (the environment stacks
  only attach it).

Why the deploy identities hold their roles at subscription scope: an environment stack creates
its own resource group, and creating a resource group needs rights above it. The alternative,
pre-creating every environment's resource group here and granting the identities rights on that
group only, would make the environment stacks adopt (import) a group they did not create; see
docs/infra-engineers.md for the trade-off.

Invokes: `azure-native:authorization:getClientConfig` (tenant and subscription).
"""

from __future__ import annotations

import uuid
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
SECRETS_KEY_NAME = "pulumi-secrets"
AZUREML_EXTENSION_NAME = "azureml"


def _child(parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def oidc_subject(settings: BootstrapSettings, environment: str | None) -> str:
    """The federated credential subject; `environment=None` is the pull-request preview."""
    if settings.ci_provider == "github":
        if environment is None:
            return f"repo:{settings.repository}:pull_request"
        return f"repo:{settings.repository}:environment:{environment}"
    organization, _, project = settings.repository.partition("/")
    connection = f"{settings.slug}-{environment or 'preview'}"
    return f"sc://{organization}/{project}/{connection}"


def oidc_issuer(settings: BootstrapSettings) -> str:
    if settings.ci_provider == "github":
        return GITHUB_ISSUER
    return ADO_ISSUER.format(organization_id=settings.ado_organization_id)


# --- state backend ---------------------------------------------------------------------------

@dataclass
class StateBackendArgs:
    settings: BootstrapSettings
    names: naming.ProjectNames
    tenant_id: str
    resource_group_name: pulumi.Input[str]
    after: list[pulumi.Resource] = field(default_factory=list)  # e.g. the resource group


class StateBackend(pulumi.ComponentResource):
    """Blob container for Pulumi state (versioned, soft delete) and a Key Vault key as the
    secrets provider. Both are protected: losing them loses every stack."""

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
        self.container = storage.BlobContainer(
            f"{name}-container",
            account_name=n.state_storage_account,
            resource_group_name=args.resource_group_name,
            container_name=n.state_container,
            public_access="None",
            opts=_child(self, protect=True, depends_on=[self.storage_account]),
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
        self.key = keyvault.Key(
            f"{name}-key",
            key_name=SECRETS_KEY_NAME,
            vault_name=n.secrets_key_vault,
            resource_group_name=args.resource_group_name,
            properties=keyvault.KeyPropertiesArgs(
                kty="RSA", key_size=2048, key_ops=["encrypt", "decrypt", "wrapKey", "unwrapKey"]
            ),
            tags=s.tags,
            opts=_child(self, protect=True, depends_on=[self.key_vault]),
        )
        self.backend_url = pulumi.Output.concat(
            "azblob://", n.state_container, "?storage_account=", n.state_storage_account
        )
        self.secrets_provider = pulumi.Output.concat(
            "azurekeyvault://", n.secrets_key_vault, ".vault.azure.net/keys/", SECRETS_KEY_NAME
        )
        self.container_scope = pulumi.Output.concat(
            self.storage_account.id, "/blobServices/default/containers/", n.state_container
        )
        self.register_outputs({
            "backend_url": self.backend_url,
            "secrets_provider": self.secrets_provider,
        })


# --- deploy identities -----------------------------------------------------------------------

@dataclass
class DeployIdentitiesArgs:
    settings: BootstrapSettings
    names: naming.ProjectNames
    subscription_id: str
    resource_group_name: pulumi.Input[str]
    state_container_scope: pulumi.Input[str]
    secrets_key_vault_scope: pulumi.Input[str]
    after: list[pulumi.Resource] = field(default_factory=list)  # e.g. the resource group


class DeployIdentities(pulumi.ComponentResource):
    """Per-environment deploy identities and the read-only preview identity, trusted through
    OIDC federation (no secrets), with the bootstrap's rows of the RBAC table."""

    def __init__(self, name: str, args: DeployIdentitiesArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("blueprint:index:DeployIdentities", name, None, opts)
        s, n = args.settings, args.names
        subscription = f"/subscriptions/{args.subscription_id}"

        # Lets the prod deploy identity keep the CanNotDelete lock; nothing else.
        lock_role_guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription}|{s.slug}|locks"))
        self.lock_role = authorization.RoleDefinition(
            f"{name}-lock-operator",
            role_definition_id=lock_role_guid,
            role_name=f"{s.slug} resource lock operator",
            description="Create and delete management locks (blueprint deploy identities).",
            scope=subscription,
            assignable_scopes=[subscription],
            permissions=[authorization.PermissionArgs(actions=list(rbac.LOCK_OPERATOR_ACTIONS))],
            opts=_child(self),
        )
        role_ids: dict[str, pulumi.Input[str]] = {
            role: roles.role_definition_id(args.subscription_id, role)
            for role in {g.role for g in rbac.BOOTSTRAP_GRANTS if g.role in roles.ROLE_IDS}
        }
        role_ids[rbac.LOCK_OPERATOR_ROLE] = self.lock_role.id
        scopes: dict[str, pulumi.Input[str]] = {
            "subscription": subscription,
            "state_container": args.state_container_scope,
            "secrets_key_vault": args.secrets_key_vault_scope,
        }
        issuer = oidc_issuer(s)

        self.identities: dict[str, managedidentity.UserAssignedIdentity] = {}
        self.subjects: dict[str, str] = {}
        self.assignments: list[authorization.RoleAssignment] = []
        principals = [(env, n.deploy_identity(env), "deploy_identity") for env in s.environments]
        principals.append(("preview", n.preview_identity, "preview_identity"))
        for key, identity_name, principal in principals:
            identity = managedidentity.UserAssignedIdentity(
                f"{name}-{key}",
                resource_name_=identity_name,
                resource_group_name=args.resource_group_name,
                location=s.location,
                tags={**s.tags, "environment": key},
                opts=_child(self, depends_on=args.after),
            )
            subject = oidc_subject(s, None if principal == "preview_identity" else key)
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
            kind = None if principal == "preview_identity" else naming.environment_kind(key)
            for grant in rbac.bootstrap_grants_for(principal, kind):
                self.assignments.append(self._assign(
                    f"{name}-{key}", grant, identity, role_ids[grant.role], scopes[grant.scope],
                ))
        self.register_outputs({
            "principal_ids": {k: i.principal_id for k, i in self.identities.items()},
        })

    def _assign(self, prefix: str, grant: rbac.Grant,
                identity: managedidentity.UserAssignedIdentity,
                role_definition_id: pulumi.Input[str],
                scope: pulumi.Input[str]) -> authorization.RoleAssignment:
        name = pulumi.Output.all(scope, identity.principal_id, role_definition_id).apply(
            lambda v: rbac.assignment_name(v[0] or "", v[1] or "", v[2] or "")
        )
        conditional = grant.role == "Role Based Access Control Administrator"
        role_slug = "".join(c if c.isalnum() else "-" for c in grant.role.lower()).strip("-")
        return authorization.RoleAssignment(
            f"{prefix}-{grant.scope.replace('_', '-')}-{role_slug}".replace("--", "-"),
            role_assignment_name=name,
            principal_id=identity.principal_id,
            principal_type=grant.principal_type,
            role_definition_id=role_definition_id,
            scope=scope,
            description=grant.why,
            condition=rbac.abac_condition() if conditional else None,
            condition_version="2.0" if conditional else None,
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

    group = resources.ResourceGroup(
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
        notes="Holds the project's Pulumi state, secrets key, deploy identities and registry.",
        opts=pulumi.ResourceOptions(depends_on=[group]),
    )
    backend = StateBackend(
        "state",
        StateBackendArgs(settings=settings, names=names, tenant_id=client.tenant_id,
                         resource_group_name=names.resource_group, after=[group]),
    )
    identities = DeployIdentities(
        "identities",
        DeployIdentitiesArgs(
            settings=settings,
            names=names,
            subscription_id=client.subscription_id,
            resource_group_name=names.resource_group,
            state_container_scope=backend.container_scope,
            secrets_key_vault_scope=backend.key_vault.id,
            after=[group],
        ),
    )

    for env in settings.environments:
        # Azure Policy at the environment's resource group, created here so that no deploy
        # identity can lift it (guardrails.py).
        guardrails.EnvironmentGuardrails(
            f"{env}-guardrails",
            guardrails.EnvironmentGuardrailsArgs(
                slug=settings.slug,
                environment=env,
                kind=naming.environment_kind(env),
                subscription_id=client.subscription_id,
                resource_group_name=naming.environment_names(
                    settings.slug, env, client.tenant_id).resource_group,
            ),
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
            opts=pulumi.ResourceOptions(protect=True, depends_on=[group]),
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

    deploy = {env: identities.identities[env] for env in settings.environments}
    preview = identities.identities["preview"]
    pulumi.export("tenantId", client.tenant_id)
    pulumi.export("subscriptionId", client.subscription_id)
    pulumi.export("resourceGroupName", names.resource_group)
    pulumi.export("registryId", registry_id)
    pulumi.export("stateBackendUrl", backend.backend_url)
    pulumi.export("secretsProvider", backend.secrets_provider)
    pulumi.export("deployIdentities", {
        env: {"name": i.name, "clientId": i.client_id, "principalId": i.principal_id,
              "oidcSubject": identities.subjects[env]}
        for env, i in deploy.items()
    })
    pulumi.export("previewIdentity", {
        "name": preview.name, "clientId": preview.client_id,
        "principalId": preview.principal_id, "oidcSubject": identities.subjects["preview"],
    })
    # Hand-over: what each environment stack's config needs from here.
    pulumi.export("stackConfig", {
        env: {f"{settings.slug}:deployerObjectId": i.principal_id,
              f"{settings.slug}:registryId": registry_id}
        for env, i in deploy.items()
    })
