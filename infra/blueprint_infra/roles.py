"""Azure built-in role definitions the blueprint assigns, by name and GUID.

GUIDs from the shared Azure reference (Microsoft's built-in roles list); Kubernetes Extension
Contributor and Monitoring Reader checked against the same list. Imports nothing heavy.
"""

from __future__ import annotations

ROLE_IDS: dict[str, str] = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "AzureML Compute Operator": "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815",
    "AzureML Registry User": "1823dd4f-9b8c-4ab6-ab4e-7397a3684615",
    "AzureML Metrics Writer (preview)": "635dd51f-9968-44d3-b7fb-6d9a6bd613ae",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Azure Kubernetes Service Cluster Admin Role": "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
    "Azure Kubernetes Service Cluster User Role": "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
    "Kubernetes Extension Contributor": "85cb6faf-e071-4c9b-8136-154b5a04f717",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
    # Added for the bootstrap's Pulumi secrets provider (encrypt/decrypt with a vault key).
    "Key Vault Crypto User": "12338af0-0e69-4776-bea7-57ae8d297424",
}

ROLE_NAMES: dict[str, str] = {guid: name for name, guid in ROLE_IDS.items()}

#: Roles that only read. Anything else counts as a write role for the prod policy. Key Vault
#: Secrets User reads secret values, so it is not here: prod humans get none of it.
READ_ONLY_ROLES: frozenset[str] = frozenset(
    ROLE_IDS[name]
    for name in ("Reader", "Storage Blob Data Reader", "AcrPull", "Monitoring Reader")
)

HUMAN_PRINCIPAL_TYPES: frozenset[str] = frozenset({"User", "Group", "ForeignGroup"})


def role_definition_id(subscription_id: str, role_name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{ROLE_IDS[role_name]}"
    )


def role_guid(role_definition_id_or_guid: str) -> str:
    """The GUID at the end of a role definition id (or the GUID itself), lowercased."""
    return role_definition_id_or_guid.rstrip("/").rsplit("/", 1)[-1].lower()


def role_name(role_definition_id_or_guid: str) -> str:
    guid = role_guid(role_definition_id_or_guid)
    return ROLE_NAMES.get(guid, guid)
