"""The MLOps Blueprint policy pack: `pulumi preview --policy-pack infra/policy_pack`.

Only builds the pack (constructing `PolicyPack` starts the analyzer server, so tests never import
this file). Every rule lives in `blueprint_infra.policies`; `blueprint_infra.policy_adapter` turns
pulumi-policy's arguments into the same inputs `blueprint plan` uses. One line per policy in
`blueprint_infra.policies.POLICIES`; tests/infra/test_policy_pack.py keeps the two lists equal.
"""

from pulumi_policy import PolicyPack

from blueprint_infra.policy_adapter import pack_policy

PolicyPack(
    name="mlops-blueprint",
    description="Azure ML environments: prod deployed only by its service principal, no human "
    "write roles in prod, private storage, RBAC key vaults, tags and Azure names.",
    policies=[
        pack_policy("prod-no-human-write-roles"),
        pack_policy("prod-deployer-identity"),
        pack_policy("prod-deployer-placeholder"),
        pack_policy("storage-no-public-blob-access"),
        pack_policy("storage-tls12-https"),
        pack_policy("keyvault-rbac"),
        pack_policy("keyvault-purge-protection-prod"),
        pack_policy("container-registry-admin-user-disabled"),
        pack_policy("container-registry-no-anonymous-pull"),
        pack_policy("prod-workspace-private"),
        pack_policy("prod-workspace-public-opt-out"),
        pack_policy("dev-compute-scales-to-zero"),
        pack_policy("required-tags"),
        pack_policy("azure-resource-names"),
    ],
)
