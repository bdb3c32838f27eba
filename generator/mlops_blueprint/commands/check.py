"""`blueprint check`: what a generated project's CI runs on every pull request.

Four checks, each finding names the file it is about:
1. every Azure ML YAML under `.cloud/` (not `.cloud/infra/`) loads with azure-ai-ml's loader for
   its kind (chosen by its `$schema`, else by its folder);
2. the pipeline builds offline (each `pipelines/*.py` imports, and its `build_pipeline()`, if it
   has one, returns a pipeline job);
3. the answers file agrees with the stacks present (one stack per environment, none extra, each
   stack's slug, environment, kind, region and ids as answered);
4. `blueprint plan` passes for every stack.
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
    offline, answers match the stacks, plan passes for every stack. Exit 1 with the list of
    findings."""
    from rich.console import Console

    from mlops_blueprint.project import load_project

    project = load_project(project_dir)
    console = Console(highlight=False, soft_wrap=True)  # one finding per line, for CI logs
    findings: list[Finding] = []
    steps = (
        ("Azure ML YAML", check_azure_ml_yaml),
        ("pipeline", check_pipelines),
        ("answers and stacks", check_answers),
        ("plan", check_plans),
    )
    for title, step in steps:
        found, summary = step(project)
        mark = "[red]✗[/]" if found else "[green]✓[/]"
        console.print(f"{mark} {title}: {summary}")
        for finding in found:
            console.print(f"    {finding}", markup=False)
        findings += found
    if findings:
        count = len(findings)
        console.print(f"[red bold]{count} finding{'s' if count != 1 else ''}[/]")
        raise typer.Exit(EXIT_FAILED)
    console.print("[green bold]check passed[/]")


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


def _loader(name: str):
    if name == "load_schedule":
        from azure.ai.ml.entities._load_functions import load_schedule

        return load_schedule
    import azure.ai.ml

    return getattr(azure.ai.ml, name)


def check_azure_ml_yaml(project) -> tuple[list[Finding], str]:
    import yaml

    _quiet_azure()
    cloud = project.root / ".cloud"
    findings: list[Finding] = []
    files = azure_ml_files(project.root)
    for path in files:
        where = str(path.relative_to(project.root))
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            findings.append(Finding(where, f"not valid YAML: {_first_line(error)}"))
            continue
        name = loader_name(path, document, cloud)
        if name is None:
            findings.append(
                Finding(where, "cannot tell which Azure ML asset this is; add its $schema")
            )
            continue
        try:
            _loader(name)(source=path)
        except Exception as error:  # azure-ai-ml raises many types; each is a finding
            findings.append(Finding(where, f"{name} failed: {_first_line(error)}"))
    return findings, f"{len(files)} files loaded" if not findings else f"{len(files)} files"


def _quiet_azure() -> None:
    """azure-ai-ml logs a warning per experimental class it meets; a check has no use for them."""
    import logging

    import azure.ai.ml  # noqa: F401  (registers its loggers)

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("azure"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = text.split(" Visit this link", 1)[0]  # azure-ai-ml appends links to its docs
    return (text[:300] + "...") if len(text) > 300 else (text or type(error).__name__)


# --- 2. pipeline ------------------------------------------------------------------------------

#: Runs in a fresh interpreter with the project root as cwd, the way the project runs its scripts
#: (`python pipelines/<name>.py`: pipelines/ first on sys.path): import every pipelines/*.py and
#: call build_pipeline() where there is one. Prints one JSON line per module.
_BUILD_SCRIPT = r"""
import importlib, json, logging, pathlib, sys, traceback
logging.disable(logging.WARNING)
root = pathlib.Path.cwd()
sys.path[:0] = [str(root / "pipelines"), str(root)]
for name in sys.argv[1:]:
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


def check_pipelines(project) -> tuple[list[Finding], str]:
    modules = pipeline_modules(project.root)
    if not modules:
        return [Finding("pipelines/", "no pipeline module (pipelines/*.py)")], "none found"
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, *modules],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    results = []
    for line in proc.stdout.splitlines():
        try:
            results.append(json.loads(line))
        except json.JSONDecodeError:
            continue
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
    if len(results) < len(modules):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        findings.append(Finding("pipelines/", f"the build stopped: {tail}"))
    if not findings and not built:
        findings.append(Finding("pipelines/", "no module defines build_pipeline()"))
    return findings, ("built " + "; ".join(built)) if built else "not built"


# --- 3. answers and stacks --------------------------------------------------------------------


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
        f"{ns}:kind": naming.environment_kind(stack.environment),
    }
    ids = {f"{ns}:dataScientistsGroupId": answers.get("data_scientists_group_id")}
    if stack.environment == "prod":
        ids[f"{ns}:deployerObjectId"] = answers.get("prod_deployer_object_id")
        ids[f"{ns}:readersGroupId"] = answers.get("prod_readers_group_id")
    for key, value in ids.items():
        if value and not naming.is_placeholder(str(value)):
            expected[key] = value
    findings = []
    for key, value in expected.items():
        actual = stack.config.get(key)
        if actual is None or str(actual).lower() != str(value).lower():
            findings.append(
                Finding(where, f"{key} is {actual!r} but the answers say {value!r}")
            )
    return findings


# --- 4. plan ----------------------------------------------------------------------------------


def check_plans(project) -> tuple[list[Finding], str]:
    """Every environment stack and the bootstrap stack, previewed in one pool of workers."""
    from mlops_blueprint.previews import PreviewFailure, PreviewRequest, preview_many
    from mlops_blueprint.project import BOOTSTRAP_DIR, BOOTSTRAP_ENV, BOOTSTRAP_STACK

    findings: list[Finding] = []
    passed = []
    names = project.stack_names()
    bootstrap = project.infra_dir / BOOTSTRAP_DIR / f"Pulumi.{BOOTSTRAP_STACK}.yaml"
    if bootstrap.is_file() and BOOTSTRAP_ENV not in names:
        names.append(BOOTSTRAP_ENV)
    outcomes = preview_many([PreviewRequest(project.root, env) for env in names])
    for env, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, PreviewFailure):
            findings.append(Finding(outcome.where, f"plan: {outcome.message}"))
            continue
        where = outcome.stack_file
        for v in outcome.violations:
            findings.append(
                Finding(where, f"plan: policy {v['policy']} on {v['resource']}: {v['message']}")
            )
        if outcome.passed:
            passed.append(env)
    return findings, f"passes for {', '.join(passed) or 'no stack'}"
