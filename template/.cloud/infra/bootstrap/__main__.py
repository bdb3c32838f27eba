"""The once-per-project bootstrap a platform admin runs (stack `platform`).

It creates what the environment stacks need before their first `pulumi up`: the Pulumi state
storage and secrets key vault, the project's Azure ML registry, the read-only preview identity
and one deploy identity per environment with its OIDC trust. See ../README.md.
"""

from blueprint_infra.bootstrap import run_bootstrap

run_bootstrap()
