"""`blueprint plan`: offline previews of a generated project's real program.

The project is rendered from this checkout; the prod violation is made the way a team would make
it: by adding a role assignment to the project's own Pulumi program (`.cloud/infra/__main__.py`),
the only place a project can add resources (the stack config has no key that grants roles), and
declaring that it runs its own program (`custom-program.yaml`; undeclared, the edit is refused
before any preview: tests/cli/test_integrity.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from cli_helpers import THREE_ENVS, blueprint, load_yaml

from blueprint_infra import roles

REQUIRED_KEYS = {
    "project", "environment", "resources", "role_assignments", "violations", "advisories",
    "monthly_cost_estimate",
}
OPS_GROUP = "11111111-2222-3333-4444-555555555555"
CONTRIBUTOR = roles.ROLE_IDS["Contributor"]

GRANT_OPS_GROUP_CONTRIBUTOR_IN_PROD = f'''

# Added by the team: the ops group needs to fix things in prod by hand.
import pulumi
from pulumi_azure_native import authorization

if pulumi.get_stack() == "prod":
    client = authorization.get_client_config_output()
    authorization.RoleAssignment(
        "ops-contributor",
        principal_id="{OPS_GROUP}",
        principal_type="Group",
        role_definition_id=client.subscription_id.apply(
            lambda sub: f"/subscriptions/{{sub}}/providers/Microsoft.Authorization/"
            "roleDefinitions/{CONTRIBUTOR}"
        ),
        scope=client.subscription_id.apply(lambda sub: f"/subscriptions/{{sub}}"),
    )
'''


def add_ops_grant(project) -> None:
    """The team's edit: its own program, declared as such."""
    (project / ".cloud/infra/__main__.py").open("a").write(GRANT_OPS_GROUP_CONTRIBUTOR_IN_PROD)
    (project / ".cloud/infra/custom-program.yaml").write_text("reason: the ops group's access\n")


def plan_json(*args) -> tuple[int, object]:
    run = blueprint("plan", *args, "--format", "json")
    assert run.exit_code in (0, 1), run.stderr
    return run.exit_code, json.loads(run.stdout)


def test_json_has_every_environment_with_the_documented_shape(fresh_project):
    code, plans = plan_json(fresh_project)
    assert code == 0
    assert isinstance(plans, list)
    assert [p["environment"] for p in plans] == THREE_ENVS
    slug = load_yaml(fresh_project / ".copier-answers.yml")["project_slug"]
    for plan in plans:
        assert set(plan) == REQUIRED_KEYS
        assert plan["project"] == slug
        assert plan["violations"] == []
        # --defaults leaves the prod deployer a placeholder: advised, never a failure.
        advised = {a["policy"] for a in plan["advisories"]}
        assert ("prod-deployer-placeholder" in advised) == (plan["environment"] == "prod")
        assert plan["resources"], plan["environment"]
        for resource in plan["resources"]:
            assert {"type", "name", "properties"} <= set(resource)
        for assignment in plan["role_assignments"]:
            assert {"principal_id", "principal_type", "role", "role_definition_id", "scope"} <= set(
                assignment
            )
            assert assignment["role_definition_id"].endswith(roles.ROLE_IDS[assignment["role"]])
        cost = plan["monthly_cost_estimate"]
        assert {"currency", "total", "items"} <= set(cost)
        assert cost["total"] == pytest.approx(sum(i["monthly"] for i in cost["items"]), abs=0.05)
    workspaces = {
        p["environment"]: [
            r for r in p["resources"]
            if r["type"] == "azure-native:machinelearningservices:Workspace"
        ]
        for p in plans
    }
    assert all(len(found) == 1 for found in workspaces.values())


def test_one_env_gives_one_object(fresh_project):
    code, plan = plan_json(fresh_project, "--env", "preprod")
    assert code == 0
    assert isinstance(plan, dict) and plan["environment"] == "preprod"


def test_rbac_matrix_data_scientists_work_in_dev_and_hold_nothing_in_prod(fresh_project):
    _, plans = plan_json(fresh_project)
    by_env = {p["environment"]: p for p in plans}
    answers = load_yaml(fresh_project / ".copier-answers.yml")
    group = answers["data_scientists_group_id"]

    def roles_of_group(env):
        return {
            a["role"] for a in by_env[env]["role_assignments"]
            if a["principal_id"] == group and a["principal_type"] == "Group"
        }

    assert "AzureML Data Scientist" in roles_of_group("dev")
    assert roles_of_group("preprod")
    assert roles_of_group("preprod") <= {roles.ROLE_NAMES[g] for g in roles.READ_ONLY_ROLES}
    assert not [
        a for a in by_env["prod"]["role_assignments"]
        if a["principal_type"] in roles.HUMAN_PRINCIPAL_TYPES
    ]


# An independent mock run: Pulumi's public test API, our own mocks, in a fresh interpreter.
INDEPENDENT_RUN = textwrap.dedent('''
    import json, runpy, sys
    from pathlib import Path
    import pulumi, yaml

    infra, stack = Path(sys.argv[1]), sys.argv[2]
    project = yaml.safe_load((infra / "Pulumi.yaml").read_text())["name"]
    config = yaml.safe_load((infra / f"Pulumi.{stack}.yaml").read_text())["config"]
    pulumi.runtime.set_all_config(
        {(k if ":" in k else f"{project}:{k}"): str(v) for k, v in config.items()}
    )

    class Mocks(pulumi.runtime.Mocks):
        def __init__(self):
            self.seen = []

        def new_resource(self, args):
            self.seen.append({"type": args.typ, "name": args.name, "inputs": args.inputs})
            outputs = dict(args.inputs)
            if isinstance(outputs.get("identity"), dict):
                outputs["identity"] = {**outputs["identity"], "principalId": "mi-" + args.name}
            outputs.setdefault("principalId", "mi-" + args.name)
            return "/subscriptions/sub/resourceGroups/rg/providers/x/" + args.name, outputs

        def call(self, args):
            return {"clientId": "c", "objectId": config.get(f"{project}:deployerObjectId") or
                    "e7e7e7e7-0000-4000-8000-000000000003",
                    "subscriptionId": "5f2c7b1e-0000-4000-8000-000000000002",
                    "tenantId": "72f988bf-0000-4000-8000-000000000001"}

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=True)
    sys.path.insert(0, str(infra))

    @pulumi.runtime.test
    def run():
        runpy.run_path(str(infra / "__main__.py"), run_name="__main__")

    run()
    print(json.dumps(mocks.seen, default=str))
''')


def independent_run(project, stack):
    proc = subprocess.run(
        [sys.executable, "-c", INDEPENDENT_RUN, str(project / ".cloud/infra"), stack],
        capture_output=True, text=True, check=True, timeout=300,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _grants(assignments):
    """(principal id, principal type, role GUID) of assignments whose principal is known."""
    return Counter(
        (a["principal_id"], a["principal_type"], a["role_definition_id"].rsplit("/", 1)[-1])
        for a in assignments
        if not a["principal_id"].startswith("mi-")
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_agrees_with_an_independent_mock_run(project_copy, stack):
    add_ops_grant(project_copy)
    seen = independent_run(project_copy, stack)
    _, plan = plan_json(project_copy, "--env", stack)

    assert Counter((r["type"], r["name"]) for r in plan["resources"]) == Counter(
        (r["type"], r["name"]) for r in seen
    )
    independent = [
        {
            "principal_id": r["inputs"].get("principalId", ""),
            "principal_type": r["inputs"].get("principalType", ""),
            "role_definition_id": r["inputs"].get("roleDefinitionId", ""),
        }
        for r in seen
        if r["type"] == "azure-native:authorization:RoleAssignment"
    ]
    # Principals fixed by config or code (groups, the deployer) match one for one; managed
    # identities get mock-specific ids, so only their number is compared.
    static = {a["principal_id"] for a in independent if not a["principal_id"].startswith("mi-")}
    planned = [a for a in plan["role_assignments"] if a["principal_id"] in static]
    assert _grants(planned) == _grants(independent)
    assert len(plan["role_assignments"]) == len(independent)
    if stack == "prod":
        assert (OPS_GROUP, "Group", CONTRIBUTOR) in _grants(planned)


def test_prod_granting_a_group_a_write_role_fails_naming_the_assignment(project_copy):
    add_ops_grant(project_copy)

    run = blueprint("plan", project_copy)
    assert run.exit_code == 1
    assert "ops-contributor" in run.stdout
    assert "prod-no-human-write-roles" in run.stdout

    code, plans = plan_json(project_copy)
    assert code == 1
    by_env = {p["environment"]: p for p in plans}
    assert by_env["dev"]["violations"] == [] and by_env["preprod"]["violations"] == []
    (violation,) = by_env["prod"]["violations"]
    assert violation["resource"] == "ops-contributor"
    assert violation["policy"] == "prod-no-human-write-roles"
    assert OPS_GROUP in violation["message"] and "Contributor" in violation["message"]
    granted = [a for a in by_env["prod"]["role_assignments"] if a["principal_id"] == OPS_GROUP]
    assert [(a["principal_type"], a["role"]) for a in granted] == [("Group", "Contributor")]

    markdown = blueprint("plan", project_copy, "--env", "prod", "--format", "markdown")
    assert markdown.exit_code == 1
    assert any(
        line.startswith("| prod-no-human-write-roles | `ops-contributor` |")
        for line in markdown.stdout.splitlines()
    )


def test_prod_previewed_as_another_identity_fails(project_copy):
    deployer = "0a1b2c3d-0000-4000-8000-00000000abcd"
    stack_file = project_copy / ".cloud/infra/Pulumi.prod.yaml"
    text = stack_file.read_text()
    assert "deployerObjectId" in text
    stack = load_yaml(stack_file)
    key = next(k for k in stack["config"] if k.endswith(":deployerObjectId"))
    stack["config"][key] = deployer
    stack_file.write_text(json.dumps(stack))  # JSON is YAML

    assert blueprint("plan", project_copy, "--env", "prod").exit_code == 0
    other = "99999999-0000-4000-8000-000000000099"
    run = blueprint("plan", project_copy, "--env", "prod", "--as", other, "--format", "json")
    assert run.exit_code == 1
    policies = {v["policy"] for v in json.loads(run.stdout)["violations"]}
    assert "prod-deployer-identity" in policies


def test_mermaid_draws_the_human_write_role(project_copy):
    add_ops_grant(project_copy)
    run = blueprint("plan", project_copy, "--env", "prod", "--format", "mermaid")
    assert run.exit_code == 1
    lines = run.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert any("==>" in line and '"Contributor"' in line for line in lines)


# --- bad input: one line, exit 2 ---------------------------------------------------------------


def assert_one_line_error(run, *needles):
    assert run.exit_code == 2, (run.stdout, run.stderr)
    assert len(run.error_lines) == 1, run.stderr
    line = run.error_lines[0]
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line
    assert run.stdout == ""


def test_unknown_environment(fresh_project):
    run = blueprint("plan", fresh_project, "--env", "qa")
    assert_one_line_error(run, "'qa'", "dev, preprod, prod")


def test_not_a_project(tmp_path):
    assert_one_line_error(blueprint("plan", tmp_path), "not a generated project")
    assert_one_line_error(blueprint("plan", tmp_path / "missing"), "no such directory")


def test_malformed_stack_file(project_copy):
    (project_copy / ".cloud/infra/Pulumi.preprod.yaml").write_text("config:\n  a: [b\n")
    run = blueprint("plan", project_copy)
    assert_one_line_error(run, "Pulumi.preprod.yaml", "not valid YAML")


def test_broken_stack_config_names_the_key(project_copy):
    stack_file = project_copy / ".cloud/infra/Pulumi.dev.yaml"
    stack = load_yaml(stack_file)
    key = next(k for k in stack["config"] if k.endswith(":kind"))
    stack["config"][key] = "sandbox"
    stack_file.write_text(json.dumps(stack))
    run = blueprint("plan", project_copy, "--env", "dev")
    assert_one_line_error(run, "Pulumi.dev.yaml", key)


def test_unreadable_answers_file(project_copy):
    (project_copy / ".copier-answers.yml").write_text("environments: [dev\n")
    assert_one_line_error(blueprint("plan", project_copy), ".copier-answers.yml")


def test_bad_as_identity(fresh_project):
    assert_one_line_error(blueprint("plan", fresh_project, "--as", "me"), "--as")


def test_prod_stack_relabelled_as_dev_is_refused_as_broken_config(project_copy):
    """Editing Pulumi.prod.yaml to call itself a dev environment would give the data scientists'
    group dev's write roles; the program refuses the stack, so plan exits 2 naming the key."""
    stack_file = project_copy / ".cloud/infra/Pulumi.prod.yaml"
    stack = load_yaml(stack_file)
    ns = load_yaml(project_copy / ".copier-answers.yml")["project_slug"]
    stack["config"][f"{ns}:environment"] = "prodx"
    stack["config"][f"{ns}:kind"] = "dev"
    stack_file.write_text(json.dumps(stack))
    result = blueprint("plan", project_copy, "--env", "prod")
    assert_one_line_error(result, f"{ns}:kind", "staging or prod for the prodx environment")

    stack["config"][f"{ns}:kind"] = "staging"
    stack_file.write_text(json.dumps(stack))
    result = blueprint("plan", project_copy, "--env", "prod")
    assert_one_line_error(result, f"{ns}:environment", "'prod'")

    stack["config"][f"{ns}:environment"] = "prod"
    stack["config"][f"{ns}:kind"] = "dev"
    stack_file.write_text(json.dumps(stack))
    result = blueprint("plan", project_copy, "--env", "prod")
    assert_one_line_error(result, f"{ns}:kind")
    assert "prod for the prod environment" in result.stderr


def test_runs_from_inside_the_project(fresh_project):
    code, plan = plan_json(fresh_project / ".cloud" / "infra", "--env", "dev")
    assert code == 0 and plan["environment"] == "dev"
