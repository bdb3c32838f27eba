"""The once-per-project bootstrap a platform admin runs (stack `platform`).

It creates what the environment stacks need before their first `pulumi up`: each environment's
resource group (prod: locked), the Pulumi state storage and secrets key vault (one container
and one key per environment), the project's Azure ML registry, the read-only preview identity
and one deploy identity per environment with its OIDC trust and rights on its own environment
only. See ../README.md.
"""

from blueprint_infra.bootstrap import run_bootstrap

run_bootstrap()
