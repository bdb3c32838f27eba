"""`blueprint check`: what a generated project's CI runs on every pull request.

Five checks, each finding names the file it is about:
1. every Azure ML YAML under `.cloud/` (not `.cloud/infra/`) loads with azure-ai-ml's loader for
   its kind (chosen by its `$schema`, else by its folder);
2. the pipeline builds offline (each `pipelines/*.py` imports, and its `build_pipeline()`, if it
   has one, returns a pipeline job);
3. the answers file agrees with the stacks present (one stack per environment, none extra, each
   stack's slug, environment, kind, region and ids as answered);
4. the CI/CD files keep their promises (mlops_blueprint.ci_rules: pinned tools, main-only
   deployments, prod behind its environment or service-connection checks, no secrets);
5. `blueprint plan` passes for every stack (and the project runs the blueprint's own program,
   or says that it does not: see `mlops_blueprint.project.program_integrity`).

Checks 1 and 2 need azure-ai-ml (about two seconds to import) and run the project's own code, so
they run together in ONE child process, started first; checks 3 to 5 run meanwhile (the
previews in their own pool of workers). Bad input (a stack or answers file that cannot be read)
stops the check before anything runs: one line, exit 2.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from mlops_blueprint.commands import ProjectDir
from mlops_blueprint.errors import EXIT_FAILED, UsageError, one_line_errors

#: `$schema` file stem (https://azuremlschemas.azureedge.net/latest/<stem>.schema.json) -> loader.
SCHEMA_LOADERS = {
    "commandJob": "load_job",
    "pipelineJob": "load_job",
    "sweepJob": "load_job",
    "sparkJob": "load_job",
    "commandComponent": "load_component",
    "pipelineComponent": "load_component",
    "parallelComponent": "load_component",
    "sparkComponent": "load_component",
    "amlCompute": "load_compute",
    "computeInstance": "load_compute",
    "kubernetesCompute": "load_compute",
    "vmCompute": "load_compute",
    "environment": "load_environment",
    "data": "load_data",
    "model": "load_model",
    "managedOnlineEndpoint": "load_online_endpoint",
    "kubernetesOnlineEndpoint": "load_online_endpoint",
    "managedOnlineDeployment": "load_online_deployment",
    "kubernetesOnlineDeployment": "load_online_deployment",
    "batchEndpoint": "load_batch_endpoint",
    "batchDeployment": "load_batch_deployment",
    "modelBatchDeployment": "load_batch_deployment",
    "pipelineComponentBatchDeployment": "load_batch_deployment",
    "schedule": "load_schedule",
    "monitorSchedule": "load_schedule",
    "workspace": "load_workspace",
    "registry": "load_registry",
    "azureBlob": "load_datastore",
    "azureDataLakeGen2": "load_datastore",
    "azureFile": "load_datastore",
}
#: Folder under `.cloud/` -> loader, when a file has no `$schema`.
FOLDER_LOADERS = {
    "compute": "load_compute",
    "environments": "load_environment",
    "data": "load_data",
    "components": "load_component",
    "jobs": "load_job",
    "pipelines": "load_job",
    "models": "load_model",
    "schedules": "load_schedule",
    "monitors": "load_schedule",
    "datastores": "load_datastore",
}
_SCHEMA_STEM = re.compile(r"/([A-Za-z0-9]+)\.schema\.json$")


@dataclass(frozen=True)
class Finding:
    where: str  # the file (relative to the project) or check it is about
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@one_line_errors
def check(
    project_dir: ProjectDir = Path("."),
) -> None:
    """Check a generated project as its CI does: Azure ML YAML loads, the pipeline builds
    offline, answers match the stacks, the CI/CD files keep prod behind main and its approval,
    plan passes for every stack. Exit 1 with the list of findings."""
    from rich.console import Console
    from rich.markup import escape

    from mlops_blueprint.previews import start_warming
    from mlops_blueprint.project import load_project

    project = load_project(project_dir)
    _read_every_stack(project)
    start_warming()  # the preview workers' imports overlap with checks 1 to 3
    console = Console(highlight=False, soft_wrap=True)  # one finding per line, for CI logs
    findings: list[Finding] = []
    offline = OfflineBuild.start(project)  # checks 1 and 2, in a child, while 3 and 4 run
    try:
        answers = check_answers(project)
        ci_files = check_ci_files(project)
        plans = check_plans(project)
        yaml_step, pipeline_step = offline.results()
    finally:
        offline.stop()
    steps = (
        ("Azure ML YAML", yaml_step),
        ("pipeline", pipeline_step),
        ("answers and stacks", answers),
        ("CI/CD files", ci_files),
        ("plan", plans),
    )
    for title, (found, summary) in steps:
        mark = "[red]✗[/]" if found else "[green]✓[/]"
        console.print(f"{mark} {title}: {escape(summary)}")
        for finding in found:
            console.print(f"    {finding}", markup=False)
        findings += found
    if findings:
        count = len(findings)
        console.print(f"[red bold]{count} finding{'s' if count != 1 else ''}[/]")
        raise typer.Exit(EXIT_FAILED)
    console.print("[green bold]check passed[/]")


def check_ci_files(project) -> tuple[list[Finding], str]:
    """The rules of mlops_blueprint.ci_rules on the project's CI provider's files."""
    from mlops_blueprint.ci_rules import check_ci

    provider = str(project.answers.get("ci_provider", ""))
    team = str(project.answers.get("platform_team", ""))
    found = [Finding(where, message)
             for where, message in check_ci(project.root, project.slug, provider, team)]
    folder = {"github": ".github", "azure-devops": ".ado"}.get(provider, "no CI folder")
    return found, f"{folder} and the blueprint requirements"


# --- 1. Azure ML YAML -------------------------------------------------------------------------


def azure_ml_files(root: Path) -> list[Path]:
    cloud = root / ".cloud"
    files = [*cloud.rglob("*.yml"), *cloud.rglob("*.yaml")]
    return sorted(p for p in files if "infra" not in p.relative_to(cloud).parts[:1])


def loader_name(path: Path, document: Any, cloud: Path) -> str | None:
    """The azure-ai-ml loader for a YAML document: by `$schema`, else by its folder."""
    if isinstance(document, dict):
        match = _SCHEMA_STEM.search(str(document.get("$schema", "")))
        if match and match.group(1) in SCHEMA_LOADERS:
            return SCHEMA_LOADERS[match.group(1)]
    folder = path.relative_to(cloud).parts[0] if len(path.relative_to(cloud).parts) > 1 else ""
    if folder == "endpoints" and isinstance(document, dict):
        return "load_online_deployment" if "endpoint_name" in document else "load_online_endpoint"
    return FOLDER_LOADERS.get(folder)


def azure_ml_jobs(project) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Each Azure ML YAML file with the loader it needs; findings for those that are not YAML
    or whose kind cannot be told."""
    import yaml

    cloud = project.root / ".cloud"
    findings: list[Finding] = []
    jobs: list[tuple[str, str]] = []
    for path in azure_ml_files(project.root):
        where = str(path.relative_to(project.root))
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            findings.append(Finding(where, f"not valid YAML: {_first_line(error)}"))
            continue
        name = loader_name(path, document, cloud)
        if name is None:
            findings.append(
                Finding(where, "cannot tell which Azure ML asset this is; add its $schema")
            )
            continue
        jobs.append((where, name))
    return findings, jobs


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = text.split(" Visit this link", 1)[0]  # azure-ai-ml appends links to its docs
    return (text[:300] + "...") if len(text) > 300 else (text or type(error).__name__)


# --- 2. pipeline ------------------------------------------------------------------------------

#: Runs in a fresh interpreter with the project root as cwd, the way the project runs its scripts
#: (`python pipelines/<name>.py`: pipelines/ first on sys.path). Reads {"files": [[path, loader]],
#: "modules": [name]} on stdin; loads each Azure ML file with its azure-ai-ml loader, then imports
#: every pipelines/*.py and calls build_pipeline() where there is one (azure-ai-ml is imported
#: once, for both). Prints one JSON line per file and per module.
_BUILD_SCRIPT = r"""
import importlib, json, logging, pathlib, sys, traceback
logging.disable(logging.WARNING)
request = json.load(sys.stdin)
root = pathlib.Path.cwd()

def first_line(error):
    text = " ".join(str(error).split()).split(" Visit this link", 1)[0]
    return (text[:300] + "...") if len(text) > 300 else (text or type(error).__name__)

if request["files"]:
    import azure.ai.ml
    from azure.ai.ml.entities._load_functions import load_schedule
for where, loader in request["files"]:
    result = {"file": where, "loader": loader}
    try:
        load = load_schedule if loader == "load_schedule" else getattr(azure.ai.ml, loader)
        load(source=root / where)
    except BaseException as error:
        result["error"] = first_line(error)
    print(json.dumps(result), flush=True)
sys.path[:0] = [str(root / "pipelines"), str(root)]
for name in request["modules"]:
    result = {"module": name}
    try:
        module = importlib.import_module(name)
        build = getattr(module, "build_pipeline", None)
        if callable(build):
            job = build()
            result["built"] = type(job).__name__
            jobs = getattr(job, "jobs", None)
            result["steps"] = list(jobs) if isinstance(jobs, dict) else None
    except BaseException as error:
        result["error"] = "".join(traceback.format_exception_only(type(error), error)).strip()
    print(json.dumps(result), flush=True)
"""


def pipeline_modules(root: Path) -> list[str]:
    """Module names of pipelines/*.py (not tests, not __init__)."""
    folder = root / "pipelines"
    if not folder.is_dir():
        return []
    return [
        p.stem
        for p in sorted(folder.glob("*.py"))
        if p.stem != "__init__" and not p.stem.startswith(("test_", "conftest"))
    ]


@dataclass
class OfflineBuild:
    """Checks 1 and 2 in one child process (`_BUILD_SCRIPT`), started before the others run."""

    project: Any
    yaml_findings: list[Finding]
    files: list[tuple[str, str]]
    modules: list[str]
    process: Any

    @classmethod
    def start(cls, project) -> OfflineBuild:
        findings, files = azure_ml_jobs(project)
        modules = pipeline_modules(project.root)
        process = subprocess.Popen(
            [sys.executable, "-c", _BUILD_SCRIPT],
            cwd=project.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        try:  # a few hundred bytes: the pipe takes them at once, the child starts importing
            process.stdin.write(json.dumps({"files": files, "modules": modules}))
            process.stdin.close()
        except OSError:
            pass  # the child died at once; results() reports what it printed
        process.stdin = None  # written and closed: communicate() only reads
        return cls(project, findings, files, modules, process)

    def results(self) -> tuple[tuple[list[Finding], str], tuple[list[Finding], str]]:
        try:
            out, err = self.process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        lines = []
        for line in out.splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return self._yaml(lines, tail), self._pipelines(lines, tail)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _yaml(self, lines: list[dict], tail: str) -> tuple[list[Finding], str]:
        findings = list(self.yaml_findings)
        done = {line["file"]: line for line in lines if "file" in line}
        for where, name in self.files:
            line = done.get(where)
            if line is None:
                findings.append(Finding(where, f"{name} did not run: {tail}"))
            elif "error" in line:
                findings.append(Finding(where, f"{name} failed: {line['error']}"))
        count = len(self.files) + len(self.yaml_findings)
        return findings, (f"{count} files loaded" if not findings else f"{count} files")

    def _pipelines(self, lines: list[dict], tail: str) -> tuple[list[Finding], str]:
        if not self.modules:
            return [Finding("pipelines/", "no pipeline module (pipelines/*.py)")], "none found"
        results = [line for line in lines if "module" in line]
        findings: list[Finding] = []
        built = []
        for result in results:
            where = f"pipelines/{result['module']}.py"
            if "error" in result:
                message = result["error"].splitlines()[-1]
                findings.append(Finding(where, f"does not build offline: {message}"))
            elif result.get("built"):
                steps = result.get("steps")
                built.append(f"{where} ({', '.join(steps)})" if steps else where)
        if len(results) < len(self.modules):
            findings.append(Finding("pipelines/", f"the build stopped: {tail}"))
        if not findings and not built:
            findings.append(Finding("pipelines/", "no module defines build_pipeline()"))
        return findings, ("built " + "; ".join(built)) if built else "not built"


# --- 3. answers and stacks --------------------------------------------------------------------


def _read_every_stack(project) -> None:
    """Bad input stops the check with one line (exit 2): every stack file, the bootstrap's
    included, must be readable YAML with unique keys."""
    from mlops_blueprint.project import BOOTSTRAP_DIR, BOOTSTRAP_ENV, BOOTSTRAP_STACK

    for env in project.stack_names():
        project.stack(env)
    bootstrap = project.infra_dir / BOOTSTRAP_DIR / f"Pulumi.{BOOTSTRAP_STACK}.yaml"
    if bootstrap.is_file() or bootstrap.is_symlink():
        project.stack(BOOTSTRAP_ENV)



def check_answers(project) -> tuple[list[Finding], str]:
    from blueprint_infra import naming

    answers = project.answers
    findings: list[Finding] = []
    answers_file = ".copier-answers.yml"
    environments = project.answered_environments
    try:
        naming.validate_environments(answers.get("environments"))
    except naming.InvalidAnswer as error:
        findings.append(Finding(answers_file, str(error)))
    slug = answers.get("project_slug")
    if slug != project.pulumi_project:
        findings.append(
            Finding(
                ".cloud/infra/Pulumi.yaml",
                f"name is {project.pulumi_project!r} but project_slug is {slug!r}",
            )
        )
    present = project.stack_names()
    for env in environments:
        if env not in present:
            findings.append(
                Finding(
                    f".cloud/infra/Pulumi.{env}.yaml",
                    f"missing: environment {env!r} is in {answers_file} but has no stack",
                )
            )
    for env in present:
        if env not in environments:
            findings.append(
                Finding(
                    f".cloud/infra/Pulumi.{env}.yaml",
                    f"stray stack: {env!r} is not in {answers_file} environments "
                    f"({', '.join(environments)}); add it with `blueprint request-env {env}`",
                )
            )
            continue
        try:
            stack = project.stack(env)
        except UsageError as error:
            findings.append(Finding(f".cloud/infra/Pulumi.{env}.yaml", str(error)))
            continue
        findings += _stack_agrees(project, stack)
    bootstrap = project.infra_dir / "bootstrap" / "Pulumi.platform.yaml"
    if not bootstrap.is_file():
        findings.append(Finding(".cloud/infra/bootstrap/Pulumi.platform.yaml", "missing"))
    else:
        findings += _bootstrap_agrees(project)
    summary = f"{len(present)} stacks for environments {', '.join(environments)}"
    return findings, summary


def _stack_agrees(project, stack) -> list[Finding]:
    """Where a stack's config contradicts the answers. Ids answered as the all-zeros
    placeholder, or left empty, may hold anything: the stack is where they are filled in."""
    from blueprint_infra import naming

    answers = project.answers
    ns = project.pulumi_project
    where = f".cloud/infra/Pulumi.{stack.environment}.yaml"
    expected: dict[str, Any] = {
        "azure-native:location": answers.get("azure_location"),
        f"{ns}:projectSlug": answers.get("project_slug"),
        f"{ns}:environment": stack.environment,
    }
    ids = {f"{ns}:dataScientistsGroupId": answers.get("data_scientists_group_id")}
    if stack.environment == "prod":
        ids[f"{ns}:deployerObjectId"] = answers.get("prod_deployer_object_id")
        ids[f"{ns}:readersGroupId"] = answers.get("prod_readers_group_id")
    for key, value in ids.items():
        if value and not naming.is_placeholder(str(value)):
            expected[key] = value
    findings = []
    # The kind follows the stack's name; the stack may repeat it or be stricter, never weaker.
    named_kind = naming.environment_kind(stack.environment)
    declared = stack.config.get(f"{ns}:kind")
    if declared is not None and (
        str(declared) not in naming.KINDS
        or naming.kind_rank(declared) < naming.kind_rank(named_kind)
    ):
        allowed = [k for k in naming.KINDS if naming.kind_rank(k) >= naming.kind_rank(named_kind)]
        findings.append(Finding(
            where, f"{ns}:kind is {declared!r} but {stack.environment!r} is a {named_kind} "
            f"environment by its name; set {' or '.join(allowed)}"))
    for key, value in expected.items():
        actual = stack.config.get(key)
        if actual is None or str(actual).lower() != str(value).lower():
            findings.append(
                Finding(where, f"{key} is {actual!r} but the answers say {value!r}")
            )
    return findings


def _bootstrap_agrees(project) -> list[Finding]:
    """Where the bootstrap's stack contradicts the answers. Its repository and CI provider are
    the subjects the deploy identities trust (a fork's `repo:<other>/<repo>:environment:prod`
    would get the prod identity's token), its environments the identities it creates."""
    from mlops_blueprint.project import BOOTSTRAP_ENV

    answers = project.answers
    stack = project.stack(BOOTSTRAP_ENV)
    ns = f"{answers.get('project_slug') or project.pulumi_project}-bootstrap"
    where = ".cloud/infra/bootstrap/Pulumi.platform.yaml"
    expected: dict[str, Any] = {
        "azure-native:location": answers.get("azure_location"),
        f"{ns}:projectSlug": answers.get("project_slug"),
        f"{ns}:ciProvider": answers.get("ci_provider"),
        f"{ns}:repository": answers.get("repository"),
    }
    if answers.get("aks_cluster_id"):
        expected[f"{ns}:aksClusterId"] = answers.get("aks_cluster_id")
    findings = []
    for key, value in expected.items():
        actual = stack.config.get(key)
        if value is not None and (actual is None or str(actual).lower() != str(value).lower()):
            findings.append(Finding(where, f"{key} is {actual!r} but the answers say {value!r}"))
    environments = stack.config.get(f"{ns}:environments")
    if not isinstance(environments, list) or [str(e) for e in environments] != list(
            project.answered_environments):
        findings.append(Finding(where, f"{ns}:environments is {environments!r} but the answers "
                                f"say {project.answered_environments!r}"))
    return findings


# --- 5. plan ----------------------------------------------------------------------------------


def check_plans(project) -> tuple[list[Finding], str]:
    """Every environment stack and the bootstrap stack, previewed in one pool of workers."""
    from mlops_blueprint.previews import PreviewFailure, PreviewRequest, preview_many

    findings: list[Finding] = []
    passed = []
    names = project.stack_names_with_bootstrap()
    outcomes = preview_many([PreviewRequest(project.root, env) for env in names],
                            projects=[project])
    custom: dict[str, str] = {}
    for env, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, PreviewFailure):
            # A refusal about a shared file (Pulumi.yaml, the policy pack) is listed once.
            for where, message in outcome.refusals or [(outcome.where, outcome.message)]:
                finding = Finding(where, f"plan: {message}")
                if finding not in findings:
                    findings.append(finding)
            continue
        for note in outcome.advisories:
            if note["policy"] == "custom-program":
                custom[note["resource"]] = note["message"]
        where = outcome.stack_file
        for v in outcome.violations:
            findings.append(
                Finding(where, f"plan: policy {v['policy']} on {v['resource']}: {v['message']}")
            )
        if outcome.passed:
            passed.append(env)
    summary = f"passes for {', '.join(passed) or 'no stack'}"
    for program, message in custom.items():  # the platform team's review must see this
        summary += f"\n  ! CUSTOM PROGRAM {program}: {message}"
    return findings, summary
