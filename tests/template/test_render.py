"""Render the template for the answer combinations that matter and check the parsed result
(the combinations are in template_cases.py)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from template_cases import COMBINATIONS, UNICODE_NAME

from blueprint_infra import naming, rbac
from blueprint_infra.settings import load_bootstrap_settings, load_environment_settings
from mlops_blueprint.ci_files import expand

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ["code", "pipelines", "tests", "notebooks", "docs", ".cloud", ".cloud/infra"]
CI_DIRS = {"github": ".github", "azure-devops": ".ado"}
INSTALL = 'python -m pip install -U pip && python -m pip install -e ".[dev]"'


def blueprint_version() -> str:
    """pyproject.toml's [project] version (a regex: tomllib is not in Python 3.10)."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    project_table = text.split("[project]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version\s*=\s*"([^"]+)"', project_table, re.MULTILINE).group(1)


def deploy_order(environments: list[str]) -> list[str]:
    return ["dev", *[e for e in environments if e not in ("dev", "prod")], "prod"]


def load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(params=list(COMBINATIONS), scope="module")
def case(request, rendered_project):
    project = rendered_project(**COMBINATIONS[request.param])
    return project, load(project / ".copier-answers.yml")


# --- layout ---------------------------------------------------------------------------------

def test_layout_has_every_folder_with_a_readme(case):
    project, answers = case
    for folder in [*LAYOUT, CI_DIRS[answers["ci_provider"]]]:
        assert (project / folder / "README.md").is_file(), f"{folder}/README.md missing"
    assert (project / "README.md").is_file()


def test_only_the_chosen_ci_provider_is_generated(case):
    project, answers = case
    chosen = CI_DIRS[answers["ci_provider"]]
    other = next(d for d in CI_DIRS.values() if d != chosen)
    assert (project / chosen).is_dir()
    assert not (project / other).exists()
    # optional by name: no empty placeholder file or folder left behind
    assert not [p for p in project.rglob("*") if p.name in ("", "None")]


# --- .cloud/infra ---------------------------------------------------------------------------

def stack_config(project: Path, env: str) -> dict:
    return load(project / ".cloud/infra" / f"Pulumi.{env}.yaml")["config"]


def test_one_stack_file_per_environment(case):
    project, answers = case
    stacks = sorted(p.name for p in (project / ".cloud/infra").glob("Pulumi.*.yaml"))
    assert stacks == sorted(f"Pulumi.{env}.yaml" for env in answers["environments"])


def test_stack_config_follows_the_environment_kind(case):
    project, answers = case
    slug = answers["project_slug"]
    for env in answers["environments"]:
        config = stack_config(project, env)
        kind = naming.environment_kind(env)
        assert config[f"{slug}:kind"] == kind
        assert config[f"{slug}:environment"] == env
        assert config[f"{slug}:projectSlug"] == slug
        assert config["azure-native:location"] == answers["azure_location"]
        assert config[f"{slug}:costCenter"] == answers["cost_center"]
        assert config[f"{slug}:dataScientistsGroupId"] == answers["data_scientists_group_id"]
        assert config[f"{slug}:aksClusterId"] == answers["aks_cluster_id"]
        if kind == "prod":
            assert config[f"{slug}:deployerObjectId"] == answers["prod_deployer_object_id"]
            assert config[f"{slug}:readersGroupId"] == answers["prod_readers_group_id"]
            assert config[f"{slug}:publicNetworkAccess"] == "Disabled"
        else:
            # Not locked to one deployer: humans (platform team) may deploy dev and staging.
            assert config.get(f"{slug}:deployerObjectId", "") == ""
            assert config[f"{slug}:publicNetworkAccess"] == "Enabled"
        if kind == "staging":
            assert config[f"{slug}:readersGroupId"] == answers["prod_readers_group_id"]
        if not any(g.principal == "readers" for g in rbac.grants_for(kind)):
            # no key that would suggest the readers group gets something here
            assert f"{slug}:readersGroupId" not in config


def test_stack_files_pass_the_infra_programs_config_checks(case):
    """What the task writes is what blueprint_infra.settings accepts (Pulumi passes strings)."""
    project, answers = case
    slug = answers["project_slug"]
    for env in answers["environments"]:
        config = stack_config(project, env)
        settings = load_environment_settings(slug, lambda key, c=config: c.get(key))
        assert (settings.environment, settings.kind) == (env, naming.environment_kind(env))
        assert settings.public_network_access == ("Disabled" if env == "prod" else "Enabled")


def test_placeholders_are_marked_and_real_ids_are_not(case):
    project, answers = case
    for env in answers["environments"]:
        lines = (project / ".cloud/infra" / f"Pulumi.{env}.yaml").read_text().splitlines()
        for i, line in enumerate(lines):
            if line.lstrip().startswith("#") or ":" not in line:
                continue
            marked = "PLACEHOLDER: replace before a real deployment" in lines[i - 1]
            is_placeholder = naming.PLACEHOLDER_GUID in line
            assert marked == is_placeholder, f"Pulumi.{env}.yaml: {line.strip()}"
        if naming.is_placeholder(answers["prod_deployer_object_id"]) and env == "prod":
            assert any("PLACEHOLDER" in line for line in lines)


def test_pulumi_projects_and_bootstrap_config(case):
    project, answers = case
    slug = answers["project_slug"]
    infra = project / ".cloud/infra"
    main = load(infra / "Pulumi.yaml")
    assert main["name"] == slug
    assert main["runtime"]["name"] == "python"
    assert main["runtime"]["options"]["virtualenv"] == "venv"
    bootstrap = load(infra / "bootstrap/Pulumi.yaml")
    assert bootstrap["name"] == f"{slug}-bootstrap"
    config = load(infra / "bootstrap/Pulumi.platform.yaml")["config"]
    ns = f"{slug}-bootstrap"
    assert config[f"{ns}:environments"] == answers["environments"]
    assert config[f"{ns}:ciProvider"] == answers["ci_provider"]
    assert config[f"{ns}:repository"] == answers["repository"]
    assert config[f"{ns}:aksClusterId"] == answers["aks_cluster_id"]

    def get(key):  # Pulumi hands structured values to the program as JSON
        value = config.get(key)
        return json.dumps(value) if isinstance(value, list) else value

    settings = load_bootstrap_settings(ns, get)
    assert settings.environments == answers["environments"]
    entry_points = {
        "__main__.py": "from blueprint_infra.program import run_environment",
        "bootstrap/__main__.py": "from blueprint_infra.bootstrap import run_bootstrap",
    }
    for path, line in entry_points.items():
        assert line in (infra / path).read_text().splitlines()


def test_infra_requirements_pin_the_blueprint_to_a_commit(case):
    """The blueprint comes from the platform team's git repository at a commit, never from an
    index (these renders come from a local checkout, so the requirement is the deliberate
    `.invalid` placeholder; test_workflow_security.py covers the remote-source forms)."""
    project, _ = case
    lines = (project / ".cloud/infra/requirements.txt").read_text().splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    (requirement,) = requirements
    assert re.fullmatch(r"mlops-blueprint @ git\+https://\S+@[0-9a-f]{40}", requirement)
    pack = project / ".cloud/infra/policy_pack"
    lines = (pack / "requirements.txt").read_text().splitlines()
    pack_requirements = [line for line in lines if line.strip() and not line.startswith("#")]
    assert pack_requirements[0] == "-r ../requirements.txt"
    assert any(line.startswith("pulumi-policy") for line in pack_requirements)
    assert (pack / "PulumiPolicy.yaml").is_file() and (pack / "__main__.py").is_file()


def test_template_blueprint_version_is_the_package_version():
    copier_yml = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
    assert copier_yml["blueprint_version"]["default"] == blueprint_version()


# --- review rules ---------------------------------------------------------------------------

def test_platform_team_owns_cloud_infra(case):
    project, answers = case
    team = answers["platform_team"]
    if answers["ci_provider"] == "github":
        rules = {}
        for line in (project / ".github/CODEOWNERS").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                pattern, *owners = line.split()
                rules[pattern] = owners
        assert rules["/.cloud/infra/"] == [team]
        assert rules["/.github/workflows/"] == [team]
        assert rules["/.github/"] == [team]
    else:
        command = _policy_command(project / ".ado/README.md")
        assert command[:4] == ["az", "repos", "policy", "required-reviewer"]
        options = _options(command)
        assert {"/.cloud/infra/*", "/.ado/*"} <= set(options["--path-filter"].split(";"))
        assert options["--required-reviewer-ids"] == team
        assert options["--blocking"] == "true"
        assert options["--branch"] == "main"


def _policy_command(readme: Path) -> list[str]:
    text = readme.read_text()
    start = text.index("az repos policy required-reviewer create")
    block = text[start : text.index("```", start)]
    return shlex.split(block.replace("\\\n", " "), comments=True)


def _options(command: list[str]) -> dict[str, str]:
    return {
        arg: command[i + 1]
        for i, arg in enumerate(command)
        if arg.startswith("--") and i + 1 < len(command)
    }


# --- CI/CD ----------------------------------------------------------------------------------

def test_ci_installs_lints_tests_and_checks_infra(case):
    project, answers = case
    if answers["ci_provider"] == "github":
        jobs = load(project / ".github/workflows/ci.yml")["jobs"]
        runs = {name: [s.get("run", "") for s in job["steps"]] for name, job in jobs.items()}
        assert runs["test"][-3:] == [INSTALL, "ruff check .", "pytest"]
        infra = runs["infra"]
    else:
        jobs = {j["job"]: j for j in load(project / ".ado/ci.yml")["jobs"]}
        runs = {name: [s.get("script", "") for s in job["steps"]] for name, job in jobs.items()}
        assert runs["test"][-3:] == [INSTALL, "ruff check .", "pytest"]
        infra = runs["infra"]
    # GitHub installs the requirements the base branch pins on a pull request (the change
    # does not choose its own judge; test_workflow_security.py), the project's own otherwise
    assert "-r .cloud/infra/requirements.txt" in infra[-2] or (
        "git show HEAD^1:.cloud/infra/requirements.txt" in infra[-2]
        and "cp .cloud/infra/requirements.txt" in infra[-2])
    assert infra[-1] == "blueprint check"


def cases_of(provider: str) -> list[str]:
    return [name for name, a in COMBINATIONS.items() if a["ci_provider"] == provider]


def render_case(rendered_project, name: str) -> tuple[Path, dict]:
    project = rendered_project(**COMBINATIONS[name])
    return project, load(project / ".copier-answers.yml")


@pytest.mark.parametrize("name", cases_of("github"))
def test_github_infra_workflow_previews_and_deploys_each_environment(rendered_project, name):
    project, answers = render_case(rendered_project, name)
    workflow = load(project / ".github/workflows/infra.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert {"pull_request", "push"} <= set(triggers)
    assert triggers["push"]["branches"] == ["main"]
    assert ".cloud/infra/**" in triggers["pull_request"]["paths"]
    assert workflow["concurrency"]["cancel-in-progress"] is False  # never cancel a pulumi up
    jobs = workflow["jobs"]
    order = deploy_order(answers["environments"])
    previewed = [e for e in order if e != "prod"]  # prod: offline plan only
    assert sorted(jobs) == sorted(
        ["check", "comment", *(f"preview-{e}" for e in previewed),
         *(f"deploy-{e}" for e in order)]
    )
    preview_jobs = called(project, "pulumi-preview.yml")
    up_jobs = called(project, "pulumi-up.yml")
    for i, name in enumerate(order):
        deploy = jobs[f"deploy-{name}"]
        # deployments: main only, one call per environment, in order dev -> staging -> prod
        assert "pull_request" in deploy["if"] and "refs/heads/main" in deploy["if"]
        assert deploy["uses"] == "./.github/workflows/pulumi-up.yml"
        assert deploy["with"] == {"environment": name}
        assert deploy["permissions"]["id-token"] == "write"
        assert deploy["needs"] == (["check"] if i == 0 else [f"deploy-{order[i - 1]}"])
        if name in previewed:
            preview = jobs[f"preview-{name}"]
            assert preview["if"] == "github.event_name == 'pull_request'"
            assert preview["uses"] == "./.github/workflows/pulumi-preview.yml"
            assert preview["with"] == {"environment": name}
    # the reusable workflows: previews with the read-only identity and no GitHub environment,
    # deployments bound to the environment named like the stack
    assert "environment" not in preview_jobs
    assert _login(preview_jobs)["client-id"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
    assert _pulumi(preview_jobs) == {"command": "preview",
                                     "stack-name": "${{ inputs.environment }}"}
    assert _policy_packs(preview_jobs) == ["${{ github.workspace }}/.cloud/infra/policy_pack"]
    assert up_jobs["environment"] == "${{ inputs.environment }}"
    login = _login(up_jobs)
    assert login["client-id"] == "${{ vars.AZURE_CLIENT_ID }}"
    assert {"tenant-id", "subscription-id"} <= set(login)
    assert _pulumi(up_jobs) == {"command": "up", "stack-name": "${{ inputs.environment }}"}
    assert _policy_packs(up_jobs) == ["${{ github.workspace }}/.cloud/infra/policy_pack"]
    assert any("pip install -r policy_pack/requirements.txt" in s.get("run", "")
               for s in up_jobs["steps"])


def called(project: Path, workflow: str) -> dict:
    """The one job of a reusable workflow."""
    (job,) = load(project / ".github/workflows" / workflow)["jobs"].values()
    return job


def _login(job: dict) -> dict:
    (step,) = [s for s in job["steps"] if s.get("uses", "").startswith("azure/login@")]
    return step["with"]


def _pulumi_step(job: dict) -> dict:
    (step,) = [s for s in job["steps"]
               if s.get("uses", "").startswith("pulumi/actions@") and "command" in s["with"]]
    return step


def _policy_packs(job: dict) -> list[str]:
    """The policy packs the job's pulumi step runs (a multiline input, one path a line)."""
    return [line.strip() for line in str(_pulumi_step(job)["with"].get("policyPacks", ""))
            .splitlines() if line.strip()]


def _pulumi(job: dict) -> dict:
    step = _pulumi_step(job)
    assert step["with"]["work-dir"] == ".cloud/infra"
    return {k: step["with"][k] for k in ("command", "stack-name")}


@pytest.mark.parametrize("name", cases_of("azure-devops"))
def test_ado_infra_pipeline_previews_and_deploys_each_environment(rendered_project, name):
    project, answers = render_case(rendered_project, name)
    slug = answers["project_slug"]
    pipeline = expand(project, "infra.yml")
    stages = {s["stage"]: s for s in pipeline["stages"]}
    order = deploy_order(answers["environments"])
    previewed = [e for e in order if e != "prod"]
    assert sorted(stages) == sorted(
        ["check", *(f"preview_{e}" for e in previewed), *(f"deploy_{e}" for e in order)]
    )
    for i, name in enumerate(order):
        if name in previewed:
            preview = stages[f"preview_{name}"]
            assert "eq(variables['Build.Reason'], 'PullRequest')" in preview["condition"]
            (preview_job,) = preview["jobs"]
            assert "deployment" not in preview_job
            cli = _azure_cli(preview_job["steps"])
            assert cli["azureSubscription"] == f"{slug}-preview"
            assert f"pulumi preview --stack {name}" in cli["inlineScript"]
            assert _options(shlex.split(_pulumi_line(cli, "preview")))["--policy-pack"] == (
                "policy_pack")

        deploy = stages[f"deploy_{name}"]
        assert "ne(variables['Build.Reason'], 'PullRequest')" in deploy["condition"]
        assert deploy["dependsOn"] == (["check"] if i == 0 else [f"deploy_{order[i - 1]}"])
        (job,) = deploy["jobs"]
        assert job["environment"] == f"{slug}-{name}"
        cli = _azure_cli(job["strategy"]["runOnce"]["deploy"]["steps"])
        assert cli["azureSubscription"] == f"{slug}-{name}"
        assert cli["addSpnToEnvironment"] is True
        assert f"pulumi up --stack {name} --yes" in cli["inlineScript"]
        assert _options(shlex.split(_pulumi_line(cli, "up")))["--policy-pack"] == "policy_pack"
        assert cli["workingDirectory"] == ".cloud/infra"
        assert 'ARM_OIDC_TOKEN="$idToken"' in cli["inlineScript"]


def _pulumi_line(cli: dict, command: str) -> str:
    (line,) = [line.strip() for line in cli["inlineScript"].splitlines()
               if line.strip().startswith(f"pulumi {command} ")]
    return line


def _azure_cli(steps: list[dict]) -> dict:
    (step,) = [s for s in steps if s.get("task") == "AzureCLI@2"]
    return step["inputs"]


# --- docs -----------------------------------------------------------------------------------

def test_readme_and_docs_name_the_project_and_its_environments(case):
    project, answers = case
    readme = (project / "README.md").read_text()
    assert readme.splitlines()[0] == f"# {answers['project_name']}"
    assert INSTALL in readme
    for env in answers["environments"]:
        assert f"`{env}` ({naming.environment_kind(env)})" in readme


# --- an awkward project name ----------------------------------------------------------------

def test_long_unicode_project_name(rendered_project):
    assert len(UNICODE_NAME) <= 80
    project = rendered_project(project_name=UNICODE_NAME)
    answers = load(project / ".copier-answers.yml")
    slug = answers["project_slug"]
    assert slug == naming.slugify(UNICODE_NAME)
    assert naming.validate_slug(slug)
    assert load(project / ".cloud/infra/Pulumi.yaml")["name"] == slug
    assert UNICODE_NAME in load(project / ".cloud/infra/Pulumi.yaml")["description"]
    assert load(project / ".cloud/infra/bootstrap/Pulumi.yaml")["name"] == f"{slug}-bootstrap"
    assert (project / "README.md").read_text().splitlines()[0] == f"# {UNICODE_NAME}"
    for env in ("dev", "prod"):
        assert stack_config(project, env)[f"{slug}:projectSlug"] == slug


def test_every_ci_variable_is_documented(case):
    """A variable the pipelines read but the setup doc does not list is a failed first run."""
    project, answers = case
    if answers["ci_provider"] == "github":
        text = "".join(p.read_text() for p in (project / ".github/workflows").glob("*.yml"))
        assert "PULUMI_STATE_STORAGE_ACCOUNT" in text
        used = set(re.findall(r"\$\{\{\s*vars\.([A-Z_]+)\s*\}\}", text))
        doc = (project / ".github/README.md").read_text()
    else:
        text = "".join(p.read_text() for p in (project / ".ado").rglob("*.yml"))
        # minus the variables the pipelines define themselves (`- name: X` / `value:`)
        used = set(re.findall(r"\$\(([A-Z_]+)\)", text)) - set(
            re.findall(r"- name: ([A-Z_]+)\n\s+value:", text))
        doc = (project / ".ado/README.md").read_text()
    assert used
    assert {name for name in used if f"`{name}`" not in doc and f"name: {name}" not in doc} == set()


# --- the model's CI/CD stages ---------------------------------------------------------------

def test_every_cicd_stage_is_documented_with_its_drift_trigger(case):
    """docs/cicd.md shows each `pipelines/cicd.py` stage, and the retraining trigger of the
    chosen CI provider (the drift alert's action)."""
    import ast

    project, answers = case
    tree = ast.parse((project / "pipelines/cicd.py").read_text())
    (stages,) = [node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", "") == "STAGES" for t in node.targets)]
    names = [key.value for key in stages.keys]
    assert names == ["train", "promote", "deploy", "deploy-batch", "monitor"]
    doc = (project / "docs/cicd.md").read_text()
    for name in names:
        assert f"python pipelines/cicd.py {name}" in doc, name
    trigger = "repository_dispatch" if answers["ci_provider"] == "github" else "_apis/pipelines/"
    assert trigger in doc
    for env in answers["environments"]:
        assert f"({env})" in doc, f"{env} missing from the flow in docs/cicd.md"
