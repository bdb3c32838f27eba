"""The MLOps Blueprint policy pack: `pulumi preview --policy-pack infra/policy_pack`.

Every rule lives in `blueprint_infra.policies`; `serve_policy_pack` builds the pack from the
policy registry (the same functions `blueprint plan` runs) and starts the analyzer server, so
tests never import this file. Generated projects carry the same two lines in
`.cloud/infra/policy_pack/`.
"""

from blueprint_infra.policy_adapter import serve_policy_pack

serve_policy_pack()
