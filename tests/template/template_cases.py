"""Answer sets shared by the template tests (rendered once per session by `rendered_project`).

The four combinations cover every pair of (CI provider, environments, AKS on/off) once: a
pairwise design, 4 renders instead of 8. A fifth project has a long, awkward unicode name.
"""

from __future__ import annotations

AKS_ID = (
    "/subscriptions/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/resourceGroups/rg-shared-aks"
    "/providers/Microsoft.ContainerService/managedClusters/aks-shared-01"
)
REAL_IDS = {
    "data_scientists_group_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "prod_readers_group_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "prod_deployer_object_id": "c0ffee00-1234-4abc-9def-0123456789ab",
}

COMBINATIONS = {
    "github-2env": {"ci_provider": "github", "environments": ["dev", "prod"]},
    "github-3env-aks": {
        "ci_provider": "github",
        "environments": ["dev", "preprod", "prod"],
        "aks_cluster_id": AKS_ID,
        **REAL_IDS,
    },
    "ado-2env-aks": {
        "ci_provider": "azure-devops",
        "environments": ["dev", "prod"],
        "aks_cluster_id": AKS_ID,
        **REAL_IDS,
    },
    "ado-3env": {"ci_provider": "azure-devops", "environments": ["dev", "preprod", "prod"]},
}
UNICODE_NAME = "Détection de fraude — l'équipe Données & IA (Zürich-Süd) 🚀 « très long nom »"
