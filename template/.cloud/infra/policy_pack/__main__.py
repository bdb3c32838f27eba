"""The blueprint's policy pack: `pulumi preview --policy-pack policy_pack` (in .cloud/infra).

The rules live in the blueprint package (`blueprint_infra.policies`), the same ones
`blueprint plan` and `blueprint check` run; `serve_policy_pack` builds the pack from them and
starts the analyzer server the Pulumi CLI talks to. CI passes this folder to every preview and
`pulumi up`, so a mandatory violation stops a deployment.
"""

from blueprint_infra.policy_adapter import serve_policy_pack

serve_policy_pack()
