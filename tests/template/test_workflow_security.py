"""What a reviewer of the generated CI/CD checks first, on the parsed files of every answer
combination: prod is reachable only from main, through the approval gate, with OIDC and no
secret; the pull-request preview never touches prod; no plain Azure DevOps job in a pull-request
build can name a prod service connection; tools are pinned; the setup scripts make the calls
that hold all of this in place."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml
from jinja2_ansible_filters import AnsibleCoreFiltersExtension
from template_cases import COMBINATIONS

from blueprint_infra import naming
from mlops_blueprint.ci_files import (
    CIFileError,
    ado_jobs,
    called_jobs,
    expand,
    is_reusable,
    job_steps,
    load,
    steps_using,
    triggers,
    workflows,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
COPIER = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
PULUMI_VERSION = COPIER["pulumi_version"]["default"]
PULUMI_SHA256 = COPIER["pulumi_linux_x64_sha256"]["default"]
ON_MAIN = "github.ref == 'refs/heads/main'"
SHA_PIN = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*\s*$")

GITHUB = [name for name, answers in COMBINATIONS.items() if answers["ci_provider"] == "github"]
ADO = [name for name, answers in COMBINATIONS.items() if answers["ci_provider"] != "github"]


def deploy_order(environments: list[str]) -> list[str]:
    return ["dev", *[e for e in environments if e not in ("dev", "prod")], "prod"]


@pytest.fixture(params=GITHUB, scope="module")
def github(request, rendered_project):
    project = rendered_project(**COMBINATIONS[request.param])
    return project, load(project / ".copier-answers.yml")


@pytest.fixture(params=ADO, scope="module")
def ado(request, rendered_project):
    project = rendered_project(**COMBINATIONS[request.param])
    return project, load(project / ".copier-answers.yml")


def environment_jobs(project: Path) -> list[tuple[str, str, dict, dict]]:
    """(workflow, caller job name, caller job, job that runs) for every job of the callers."""
    out = []
    for name, workflow in workflows(project).items():
        if is_reusable(workflow):
            continue
        for job_name, job in workflow["jobs"].items():
            runs = called_jobs(project, job) if "uses" in job else [job]
            out += [(name, job_name, job, run) for run in runs]
    return out


# --- GitHub: pinning and least privilege ------------------------------------------------------

def test_every_action_is_pinned_by_commit_sha_with_its_version(github):
    project, _ = github
    seen = set()
    for path in sorted((project / ".github").rglob("*.yml")):
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(-\s+)?uses:", line) and "./.github/workflows/" not in line:
                match = SHA_PIN.match(line)
                assert match, f"{path.name}: not pinned by a 40-hex commit SHA: {line.strip()}"
                seen.add(match.group(1))
    assert {"actions/checkout", "actions/setup-python", "azure/login", "pulumi/actions"} <= seen


def test_checkouts_keep_no_credentials_and_jobs_hold_least_permissions(github):
    project, _ = github
    for name, workflow in workflows(project).items():
        assert workflow["permissions"] == {}, f"{name}: the workflow grants a default"
        for job_name, job in workflow["jobs"].items():
            permissions = job.get("permissions")
            assert isinstance(permissions, dict), f"{name}:{job_name} has no explicit permissions"
            writes = {scope for scope, level in permissions.items() if level == "write"}
            assert writes <= {"id-token", "pull-requests"}, f"{name}:{job_name}: {writes}"
            if "pull-requests" in writes:  # the comment job: no code, no cloud identity
                assert "id-token" not in writes and not steps_using(job, "actions/checkout")
            for step in steps_using(job, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False, f"{name}:{job_name}"


def test_no_secrets_anywhere_sign_in_is_oidc(github):
    project, _ = github
    text = "".join(p.read_text() for p in (project / ".github").rglob("*.yml"))
    assert not re.search(r"\$\{\{[^}]*\bsecrets\.", text)
    for workflow in workflows(project).values():
        assert all("secrets" not in job for job in workflow["jobs"].values())
    for _, _, _, job in environment_jobs(project):
        for step in steps_using(job, "azure/login"):
            assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}
            assert job["permissions"]["id-token"] == "write"


def test_pulumi_cli_version_is_pinned(github):
    project, _ = github
    steps = [step for _, _, _, job in environment_jobs(project)
             for step in steps_using(job, "pulumi/actions")]
    assert steps
    assert {str(step["with"]["pulumi-version"]) for step in steps} == {PULUMI_VERSION}


def test_blueprint_package_never_comes_from_an_extra_index(github, ado):
    for project, _ in (github, ado):
        for path in project.rglob("*"):
            if path.suffix in (".yml", ".txt", ".py", ".toml", ".cfg") and ".git" not in path.parts:
                for line in path.read_text().splitlines():
                    if not line.lstrip().startswith("#"):
                        assert "extra-index-url" not in line.lower(), f"{path}: {line}"
                        assert "PIP_EXTRA_INDEX_URL" not in line, f"{path}: {line}"


# --- GitHub: the paths to each environment -----------------------------------------------------

def test_a_pull_request_is_judged_by_the_blueprint_its_base_branch_pins(github):
    """Every job that runs `blueprint check` installs the blueprint from the base branch's
    requirements on a pull request (the merge commit's first parent, which the checkout
    fetches), never from the requirements the change itself brings."""
    project, _ = github
    judged = 0
    for name, workflow in workflows(project).items():
        for job_name, job in workflow["jobs"].items():
            steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
            if not any("blueprint check" in str(s.get("run", "")) for s in steps):
                continue
            judged += 1
            install = next(s for s in steps if "pip install -r" in str(s.get("run", "")))
            script = install["run"]
            assert "git show HEAD^1:.cloud/infra/requirements.txt" in script, (name, job_name)
            assert 'pip install -r "$RUNNER_TEMP/judge-requirements.txt"' in script
            assert "pip install -r .cloud/infra/requirements.txt" not in script
            assert install["env"]["EVENT"] == "${{ github.event_name }}"
            checkout = steps_using(job, "actions/checkout")[0]
            depth = checkout["with"].get("fetch-depth", 1)
            assert depth == 0 or depth >= 2, (name, job_name)
    assert judged == 2  # ci.yml's infra job and infra.yml's check job


def test_every_job_bound_to_an_environment_is_main_only_and_uses_its_identity(github):
    project, answers = github
    bound = [(w, name, caller, job) for w, name, caller, job in environment_jobs(project)
             if "environment" in job]
    assert {job["environment"] for *_, job in bound} == set(answers["environments"])
    for workflow, name, caller, job in bound:
        where = f"{workflow}:{name}"
        # the caller runs only on main, never for a pull request ...
        assert ON_MAIN in caller["if"], where
        assert "pull_request'" not in caller["if"].replace("!= 'pull_request'", ""), where
        # ... and the job refuses any other ref itself, before it checks anything out
        first = job["steps"][0]
        assert first["if"] == "github.ref != 'refs/heads/main'" and "exit 1" in first["run"]
        assert job["permissions"] == {"contents": "read", "id-token": "write"}, where
        (login,) = steps_using(job, "azure/login")
        assert login["with"]["client-id"] == "${{ vars.AZURE_CLIENT_ID }}", where


def test_prod_jobs_bind_the_prod_environment(github):
    project, _ = github
    prod = [(w, n, job) for w, n, _, job in environment_jobs(project)
            if job.get("environment") == "prod"]
    assert {(w, n) for w, n, _ in prod} == {("infra.yml", "deploy-prod"),
                                             ("model.yml", "deploy-prod")}
    # nothing else signs in with an environment's deploy identity outside an environment
    for workflow, name, _, job in environment_jobs(project):
        if "${{ vars.AZURE_CLIENT_ID }}" in json.dumps(job):
            assert "environment" in job, f"{workflow}:{name}"


def test_pull_request_preview_never_touches_prod(github):
    project, answers = github
    infra = workflows(project)["infra.yml"]
    order = deploy_order(answers["environments"])
    non_prod = [e for e in order if naming.environment_kind(e) != "prod"]
    previews = {n: j for n, j in infra["jobs"].items() if n.startswith("preview-")}
    assert sorted(previews) == sorted(f"preview-{e}" for e in non_prod)
    for name, caller in previews.items():
        assert caller["if"] == "github.event_name == 'pull_request'"
        (job,) = called_jobs(project, caller)
        env = name.removeprefix("preview-")
        assert "environment" not in job  # the preview identity trusts the PR subject only
        assert job["env"]["ARM_CLIENT_ID"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
        (login,) = steps_using(job, "azure/login")
        assert login["with"]["client-id"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
        assert job["env"]["PULUMI_BACKEND_URL"].startswith(f"azblob://pulumi-state-{env}?")
        assert job["env"]["PULUMI_SECRETS_PROVIDER"].endswith(f"/keys/pulumi-secrets-{env}")
        (preview,) = [s for s in steps_using(job, "pulumi/actions") if "command" in s["with"]]
        assert preview["with"]["command"] == "preview" and preview["with"]["upsert"] is False
    # the reusable preview refuses prod itself
    guard = load(project / ".github/workflows/pulumi-preview.yml")["jobs"]["preview"]["steps"][0]
    allowed = re.search(r"^\s*([\w|]+)\)", guard["run"], re.MULTILINE).group(1).split("|")
    assert sorted(allowed) == sorted(non_prod)
    # every job a pull request can start is offline or the read-only preview
    for name, caller in infra["jobs"].items():
        if "pull_request'" in caller.get("if", "").replace("!= 'pull_request'", "") or (
                "if" not in caller):
            for job in (called_jobs(project, caller) if "uses" in caller else [caller]):
                assert "environment" not in job, name
                assert "AZURE_CLIENT_ID }}" not in json.dumps(job), name


def test_infra_deploys_in_order_and_plans_on_pull_requests(github):
    project, answers = github
    infra = workflows(project)["infra.yml"]
    order = deploy_order(answers["environments"])
    for i, env in enumerate(order):
        caller = infra["jobs"][f"deploy-{env}"]
        assert caller["uses"] == "./.github/workflows/pulumi-up.yml"
        assert caller["with"] == {"environment": env}
        assert caller["needs"] == (["check"] if i == 0 else [f"deploy-{order[i - 1]}"])
    check = infra["jobs"]["check"]
    runs = [s.get("run", "") for s in check["steps"]]
    assert runs[-1] == "blueprint check"
    (plan,) = [r for r in runs if "blueprint plan" in r]
    assert "--format markdown" in plan and "--against origin/main" in plan
    comment = infra["jobs"]["comment"]
    assert comment["needs"] == ["check"] and comment["permissions"] == {"pull-requests": "write"}


def test_model_workflow_trains_on_its_triggers_and_releases_in_order(github):
    project, answers = github
    model = workflows(project)["model.yml"]
    on = triggers(model)
    assert on["push"] == {"branches": ["main"], "paths": ["code/**", "pipelines/**"]}
    assert on["schedule"] and "workflow_dispatch" in on
    assert on["repository_dispatch"] == {"types": ["model-drift"]}
    assert model["concurrency"]["cancel-in-progress"] is False
    train = model["jobs"]["train"]
    assert train["uses"] == "./.github/workflows/model-train.yml"
    assert train["with"] == {"environment": "dev"}
    (train_job,) = called_jobs(project, train)
    runs = [s.get("run", "") for s in train_job["steps"]]
    assert "python pipelines/cicd.py train --wait" in runs
    assert 'python pipelines/cicd.py promote --job-name "$JOB_NAME"' in runs
    order = deploy_order(answers["environments"])
    for i, env in enumerate(order):
        caller = model["jobs"][f"deploy-{env}"]
        assert caller["needs"] == (["train"] if i == 0 else ["train", f"deploy-{order[i - 1]}"])
        assert "needs.train.outputs.promoted == 'true'" in caller["if"]
        assert caller["with"]["model-uri"] == "${{ needs.train.outputs.model-uri }}"
        assert caller["with"]["kubernetes"] is bool(answers["aks_cluster_id"])
        (job,) = called_jobs(project, caller)
        script = "\n".join(s.get("run", "") for s in job["steps"])
        for command in ("deploy", "deploy-batch", "monitor"):
            assert f"python pipelines/cicd.py {command} --environment \"$ENVIRONMENT\"" in script


def test_workflow_files_and_setup_script_are_owned_by_the_platform_team(github):
    project, answers = github
    rules = {}
    for line in (project / ".github/CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pattern, *owners = line.split()
            rules[pattern] = owners
    for pattern in ("/.github/", "/.github/workflows/", "/.github/scripts/", "/.cloud/infra/"):
        assert rules[pattern] == [answers["platform_team"]]


def dry_run(script: Path) -> list[dict]:
    result = subprocess.run([sys.executable, str(script), "--dry-run"],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_github_setup_script_sets_branch_policies_and_prod_reviewers(github):
    project, answers = github
    calls = dry_run(project / ".github/scripts/protect_environments.py")
    repo = answers["repository"]
    puts = {c["path"].rsplit("/", 1)[1]: c["body"] for c in calls
            if c["method"] == "PUT" and "/environments/" in c["path"]}
    assert sorted(puts) == sorted(answers["environments"])
    for env, body in puts.items():
        assert body["deployment_branch_policy"] == {
            "protected_branches": False, "custom_branch_policies": True}
        assert ("reviewers" in body) is (env == "prod")
    team = answers["platform_team"]
    assert puts["prod"]["reviewers"] == [{"type": "Team", "id": f"<id of {team}>"}]
    assert puts["prod"]["prevent_self_review"] is True
    rules = [(c["path"], c["body"]) for c in calls if c["method"] == "POST"]
    assert rules == [(f"repos/{repo}/environments/{env}/deployment-branch-policies",
                      {"name": "main", "type": "branch"}) for env in deploy_order(
                          answers["environments"])]
    (protection,) = [c["body"] for c in calls if c["path"].endswith("/branches/main/protection")]
    assert protection["required_pull_request_reviews"]["require_code_owner_reviews"] is True
    assert protection["enforce_admins"] is True


# --- Azure DevOps ----------------------------------------------------------------------------

def connection_of(step: dict) -> str | None:
    return step.get("inputs", {}).get("azureSubscription")


def test_prod_service_connection_only_in_main_deployment_jobs(ado):
    project, answers = ado
    slug = answers["project_slug"]
    deploy_connections = {f"{slug}-{e}" for e in answers["environments"]}
    for pipeline in ("ci.yml", "infra.yml", "model.yml"):
        for stage, job in ado_jobs(expand(project, pipeline)):
            connections = {connection_of(s) for s in job_steps(job)} - {None}
            condition = stage.get("condition", "")
            pull_requests = "ne(variables['Build.Reason'], 'PullRequest')" not in condition
            where = f"{pipeline}:{stage.get('stage')}"
            if pull_requests:  # a job a pull-request build can run: offline or preview only
                assert connections <= {f"{slug}-preview"}, where
            if connections & deploy_connections:
                assert "eq(variables['Build.SourceBranch'], 'refs/heads/main')" in condition
            if f"{slug}-prod" in connections:
                assert job.get("environment") == f"{slug}-prod", where
                assert "deployment" in job, where
            if "environment" in job:
                env = job["environment"].removeprefix(f"{slug}-")
                assert connections == {f"{slug}-{env}"}, where
    stages = [s["stage"] for s, _ in ado_jobs(expand(project, "infra.yml"))]
    assert "preview_prod" not in stages


def test_preview_template_refuses_prod_at_compile_time(ado, tmp_path):
    project, _ = ado
    pipeline = tmp_path / ".ado/infra.yml"
    pipeline.parent.mkdir(parents=True)
    for template in (project / ".ado/templates").glob("*.yml"):
        (tmp_path / ".ado/templates").mkdir(exist_ok=True)
        (tmp_path / ".ado/templates" / template.name).write_text(template.read_text())
    pipeline.write_text(yaml.safe_dump({"stages": [
        {"template": "templates/pulumi-preview.yml", "parameters": {"environment": "prod"}}]}))
    with pytest.raises(CIFileError, match="is not one of"):
        expand(tmp_path, "infra.yml")


def test_ado_infra_and_model_stages_in_order(ado):
    project, answers = ado
    order = deploy_order(answers["environments"])
    infra = {s["stage"]: s for s, _ in ado_jobs(expand(project, "infra.yml"))}
    for i, env in enumerate(order):
        assert infra[f"deploy_{env}"]["dependsOn"] == (
            ["check"] if i == 0 else [f"deploy_{order[i - 1]}"])
    model = {s["stage"]: (s, j) for s, j in ado_jobs(expand(project, "model.yml"))}
    for i, env in enumerate(order):
        stage, job = model[f"release_{env}"]
        assert stage["dependsOn"] == (["train"] if i == 0 else ["train", f"release_{order[i - 1]}"])
        promoted = "eq(dependencies.train.outputs['train.train.promoted'], 'true')"
        assert promoted in stage["condition"]
        script = job_steps(job)[-1]["inputs"]["inlineScript"]
        for command in ("deploy", "deploy-batch", "monitor"):
            assert f"python pipelines/cicd.py {command} --environment" in script
    raw = load(project / ".ado/model.yml")
    assert raw["pr"] == "none" and raw["trigger"]["paths"]["include"] == ["code", "pipelines"]
    assert raw["schedules"][0]["branches"]["include"] == ["main"]


def test_ado_checkouts_and_pulumi_cli_are_pinned(ado):
    project, _ = ado
    for pipeline in ("ci.yml", "infra.yml", "model.yml"):
        for _, job in ado_jobs(expand(project, pipeline)):
            steps = job_steps(job)
            checkouts = [s for s in steps if "checkout" in s]
            assert checkouts, f"{pipeline}: a job without an explicit checkout"
            assert all(s["persistCredentials"] == "false" for s in checkouts)
    code = [line for p in (project / ".ado").rglob("*.yml") for line in p.read_text().splitlines()
            if not line.lstrip().startswith("#")]
    assert not [line for line in code if re.search(r"\|\s*(ba)?sh\b", line)]
    install = load(project / ".ado/templates/install-pulumi.yml")["steps"][0]["script"]
    assert f'version="{PULUMI_VERSION}"' in install
    assert f'expected="{PULUMI_SHA256}"' in install
    assert "sha256sum --check --strict" in install
    assert install.index("sha256sum") < install.index("tar -xzf")


def test_ado_setup_script_puts_checks_on_the_service_connections(ado):
    project, answers = ado
    slug = answers["project_slug"]
    calls = dry_run(project / ".ado/scripts/protect_connections.py")
    added = [c["body"] for c in calls
             if c["method"] == "POST" and c["url"].split("?")[0].endswith(
                 "/pipelines/checks/configurations")]
    checks: dict[tuple[str, str], set[str]] = {}
    for body in added:
        resource = body["resource"]
        checks.setdefault((resource["type"], resource["name"]), set()).add(body["type"]["name"])
        if body["type"]["name"] == "Task Check":
            assert body["settings"]["inputs"]["allowedBranches"] == "refs/heads/main"
            assert body["settings"]["definitionRef"]["name"] == "evaluatebranchProtection"
        else:
            assert body["settings"]["requesterCannotBeApprover"] is True
    expected = {}
    for env in answers["environments"]:
        kinds = {"Task Check", "Approval"} if env == "prod" else {"Task Check"}
        expected[("endpoint", f"{slug}-{env}")] = kinds
        expected[("environment", f"{slug}-{env}")] = kinds
    assert checks == expected  # nothing on the preview connection: pull requests use it


# --- the blueprint package's source -------------------------------------------------------------

REQUIREMENTS = REPO_ROOT / "template/.cloud/infra/requirements.txt.jinja"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def requirement_for(src_path: str, commit: str | None) -> str:
    env = jinja2.Environment(extensions=[AnsibleCoreFiltersExtension], keep_trailing_newline=True)
    text = env.from_string(REQUIREMENTS.read_text()).render(
        _copier_answers={"_src_path": src_path}, _copier_conf={"vcs_ref_hash": commit})
    (line,) = [line for line in text.splitlines() if line and not line.startswith("#")]
    return line


@pytest.mark.parametrize(("src", "url"), [
    ("gh:platform/mlops-blueprint", "https://github.com/platform/mlops-blueprint"),
    ("https://git.example.com/platform/mlops-blueprint.git",
     "https://git.example.com/platform/mlops-blueprint.git"),
    ("git@github.com:platform/mlops-blueprint.git",
     "ssh://git@github.com/platform/mlops-blueprint.git"),
    ("git+https://dev.azure.com/contoso/platform/_git/mlops-blueprint",
     "https://dev.azure.com/contoso/platform/_git/mlops-blueprint"),
])
def test_blueprint_is_pinned_to_the_template_commit_of_the_platform_repository(src, url):
    assert requirement_for(src, COMMIT) == f"mlops-blueprint @ git+{url}@{COMMIT}"


@pytest.mark.parametrize(("src", "commit"), [
    ("/home/me/mlops-blueprint", COMMIT),  # a local copy: CI cannot install from it
    ("gh:platform/mlops-blueprint", None),  # no commit known
    ("gh:platform/mlops-blueprint", "v0.1.0"),  # a tag can move
])
def test_an_unpinnable_source_fails_the_install_instead_of_asking_an_index(src, commit):
    line = requirement_for(src, commit)
    assert line.startswith("mlops-blueprint @ git+https://")
    assert ".invalid/" in line


# --- the setup scripts against a fake CLI (the real path: lookups, replacement, ids) -----------

FAKE_CLI = '''#!{python}
import json, sys
args = sys.argv[1:]
body = sys.stdin.read() if "--input" in args else None
if "--body" in args:
    body = args[args.index("--body") + 1]
with open({log!r}, "a") as log:
    log.write(json.dumps({{"args": args, "body": json.loads(body) if body else None}}) + "\\n")
url = next((a for a in args if "/" in a and not a.startswith("Accept")), "")
method = args[args.index("--method") + 1]
answers = {answers!r}
for needle, answer in answers:
    if needle in url and method == "GET":
        print(json.dumps(answer))
        break
else:
    if method == "POST" and url.split("?")[0].endswith("/distributedtask/environments"):
        print(json.dumps({{"id": 77}}))
'''


def run_with_fake_cli(script: Path, tool: str, answers: list, tmp_path: Path) -> list[dict]:
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "bin" / tool
    fake.parent.mkdir()
    fake.write_text(FAKE_CLI.format(python=sys.executable, log=str(log), answers=answers))
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_github_setup_script_replaces_other_branch_rules_and_uses_the_team_id(github, tmp_path):
    project, answers = github
    repo = answers["repository"]
    calls = run_with_fake_cli(
        project / ".github/scripts/protect_environments.py", "gh",
        [("/teams/", {"id": 4242}),
         ("/environments/prod/deployment-branch-policies",
          {"branch_policies": [{"id": 7, "name": "release/*", "type": "branch"},
                               {"id": 8, "name": "main", "type": "branch"}]}),
         ("/deployment-branch-policies", {"branch_policies": []})],
        tmp_path)
    by = {(c["args"][2], c["args"][3]): c["body"] for c in calls}
    assert by[("PUT", f"repos/{repo}/environments/prod")]["reviewers"] == [
        {"type": "Team", "id": 4242}]
    # prod: the stray rule goes, main (already there) stays; the others get main added
    assert ("DELETE", f"repos/{repo}/environments/prod/deployment-branch-policies/7") in by
    assert ("DELETE", f"repos/{repo}/environments/prod/deployment-branch-policies/8") not in by
    posts = [k[1] for k in by if k[0] == "POST"]
    assert posts == [f"repos/{repo}/environments/{e}/deployment-branch-policies"
                     for e in deploy_order(answers["environments"]) if e != "prod"]


def test_ado_setup_script_replaces_its_checks_on_the_real_ids(ado, tmp_path):
    project, answers = ado
    slug = answers["project_slug"]
    calls = run_with_fake_cli(
        project / ".ado/scripts/protect_connections.py", "az",
        [("/_apis/identities", {"value": [{"id": "group-1"}]}),
         ("/serviceendpoint/endpoints", {"value": [{"id": "endpoint-1"}]}),
         ("/distributedtask/environments", {"value": []}),
         ("/pipelines/checks/configurations?resourceType=endpoint",
          {"value": [{"id": 9, "type": {"name": "Approval"}},
                     {"id": 10, "type": {"name": "ExclusiveLock"}}]}),
         ("/pipelines/checks/configurations", {"value": []})],
        tmp_path)

    def url(call):
        return call["args"][call["args"].index("--url") + 1]

    for call in calls:
        assert call["args"][call["args"].index("--resource") + 1] == (
            "499b84ac-1321-427f-aa17-267ca6975798")
    created = [c["body"] for c in calls if c["args"][2] == "POST"
               and "/checks/configurations" in url(c)]
    approvals = [b for b in created if b["type"]["name"] == "Approval"]
    assert {(b["resource"]["type"], b["resource"]["id"]) for b in approvals} == {
        ("endpoint", "endpoint-1"), ("environment", "77")}
    assert all(b["settings"]["approvers"] == [{"id": "group-1"}] for b in approvals)
    # environments that did not exist were created; only this script's kinds of check replaced
    assert sum(1 for c in calls if c["args"][2] == "POST"
               and url(c).split("?")[0].endswith("/distributedtask/environments")) == len(
        answers["environments"])
    deleted = {url(c).split("?")[0].rsplit("/", 1)[1] for c in calls if c["args"][2] == "DELETE"}
    assert deleted == {"9"}
    assert f"{slug}-preview" not in json.dumps(created)
