"""Read a generated project's CI/CD files the way the CI provider would, for the tests.

GitHub: a caller job that `uses: ./.github/workflows/X.yml` runs the jobs of X with its `with:`
inputs; `called_jobs` returns them with `${{ inputs.NAME }}` replaced by the caller's value, so a
test can ask "which environment does this job bind, with which permissions".
Azure DevOps: `expand` replaces every `- template: FILE` (stage or step templates) with the
template's stages/steps, `${{ parameters.NAME }}` substituted from the call and the defaults,
and checks `values:` restrictions the way Azure DevOps does at compile time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

INPUT = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")
PARAMETER = re.compile(r"\$\{\{\s*parameters\.([A-Za-z0-9_]+)\s*\}\}")


def load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- GitHub ----------------------------------------------------------------------------------

def workflows(project: Path) -> dict[str, dict]:
    return {p.name: load(p) for p in sorted((project / ".github/workflows").glob("*.yml"))}


def triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    return on if isinstance(on, dict) else {name: None for name in ([on] if on else [])}


def is_reusable(workflow: dict) -> bool:
    return "workflow_call" in triggers(workflow)


def called_jobs(project: Path, caller: dict) -> list[dict]:
    """The jobs of the reusable workflow `caller` calls, inputs substituted (strings)."""
    path = caller["uses"]
    assert path.startswith("./.github/workflows/"), path
    text = (project / path[2:]).read_text(encoding="utf-8")
    called = yaml.safe_load(text)
    declared = triggers(called)["workflow_call"].get("inputs", {})
    values = {name: spec.get("default") for name, spec in declared.items()}
    values.update(caller.get("with", {}))
    missing = [n for n, spec in declared.items() if spec.get("required") and n not in values]
    assert not missing, f"{path}: required inputs {missing} not given"

    def substitute(match: re.Match) -> str:
        value = values[match.group(1)]
        return json.dumps(value) if isinstance(value, bool) else str(value)

    return list(yaml.safe_load(INPUT.sub(substitute, text))["jobs"].values())


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if s.get("uses", "").split("@")[0] == action]


def all_steps(project: Path) -> list[tuple[str, dict]]:
    return [(name, step) for name, workflow in workflows(project).items()
            for job in workflow["jobs"].values() for step in job.get("steps", [])]


# --- Azure DevOps ----------------------------------------------------------------------------

def _render_template(path: Path, arguments: dict) -> dict:
    text = path.read_text(encoding="utf-8")
    declared = {p["name"]: p for p in (yaml.safe_load(text).get("parameters") or [])}
    values = {name: spec.get("default") for name, spec in declared.items()}
    values.update(arguments or {})
    for name, spec in declared.items():
        assert values.get(name) is not None, f"{path.name}: parameter {name} not given"
        if "values" in spec:
            assert values[name] in spec["values"], (
                f"{path.name}: {name}={values[name]!r} is not one of {spec['values']}")

    def substitute(match: re.Match) -> str:
        value = values[match.group(1)]
        return json.dumps(value) if isinstance(value, (list, dict)) else str(value)

    return yaml.safe_load(PARAMETER.sub(substitute, text))


def _expand_list(items: list, folder: Path, key: str) -> list:
    out = []
    for item in items:
        if isinstance(item, dict) and "template" in item:
            path = folder / item["template"]
            body = _render_template(path, item.get("parameters", {}))
            out.extend(_expand_list(body[key], path.parent, key))
        else:
            out.append(_expand_item(item, folder))
    return out


def _expand_item(item, folder: Path):
    if isinstance(item, dict):
        expanded = {}
        for key, value in item.items():
            if key in ("stages", "jobs", "steps") and isinstance(value, list):
                expanded[key] = _expand_list(value, folder, key)
            else:
                expanded[key] = _expand_item(value, folder)
        return expanded
    if isinstance(item, list):
        return [_expand_item(v, folder) for v in item]
    return item


def expand(project: Path, pipeline: str) -> dict:
    """The pipeline `.ado/<pipeline>` with every template call expanded."""
    path = project / ".ado" / pipeline
    return _expand_item(load(path), path.parent)


def ado_jobs(pipeline: dict) -> list[tuple[dict, dict]]:
    """(stage, job) pairs; a pipeline with top-level `jobs` has one unnamed stage."""
    stages = pipeline.get("stages") or [{"stage": None, "jobs": pipeline.get("jobs", [])}]
    return [(stage, job) for stage in stages for job in stage.get("jobs", [])]


def job_steps(job: dict) -> list[dict]:
    if "deployment" in job:
        return job["strategy"]["runOnce"]["deploy"]["steps"]
    return job.get("steps", [])
