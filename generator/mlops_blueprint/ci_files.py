"""Read a generated project's CI/CD files the way the CI provider runs them.

GitHub: a caller job that `uses: ./.github/workflows/X.yml` runs the jobs of X with its `with:`
inputs; `called_jobs` returns them with `${{ inputs.NAME }}` replaced by the caller's value, so a
rule can ask "which environment does this job bind, with which permissions".
Azure DevOps: `expand` replaces every `- template: FILE` (stage, job or step templates) with the
template's items, `${{ parameters.NAME }}` substituted from the call and the defaults, and checks
`values:` restrictions the way Azure DevOps does when it compiles the pipeline.
`blueprint check` (ci_rules.py) and this repository's tests read the files through here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

INPUT = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")
PARAMETER = re.compile(r"\$\{\{\s*parameters\.([A-Za-z0-9_]+)\s*\}\}")


class CIFileError(ValueError):
    """A CI file that cannot be read or resolved; the message names the file."""


def load(path: Path) -> Any:
    return _read(path)[1]


def _read(path: Path) -> tuple[str, Any]:
    """A CI file's text (its `${{ ... }}` are substituted in it) and its parsed YAML."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0]
        raise CIFileError(f"{path.name}: not readable YAML ({first})") from None


# --- GitHub ----------------------------------------------------------------------------------

def workflows(project: Path) -> dict[str, dict]:
    folder = project / ".github/workflows"
    found = {}
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        workflow = load(path)
        if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
            raise CIFileError(f"{path.name}: not a workflow (no `jobs:` mapping)")
        found[path.name] = workflow
    return found


def triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    if isinstance(on, dict):
        return on
    return {name: None for name in (on if isinstance(on, list) else [on] if on else [])}


def is_reusable(workflow: dict) -> bool:
    return "workflow_call" in triggers(workflow)


def called_jobs(project: Path, caller: dict) -> list[dict]:
    """The jobs of the local reusable workflow `caller` calls, inputs substituted."""
    path = str(caller["uses"])
    if not path.startswith("./.github/workflows/"):
        raise CIFileError(f"{path}: not a reusable workflow of this repository")
    file = project / path[2:]
    if not file.is_file():
        raise CIFileError(f"{path}: no such file")
    text, called = _read(file)
    declared = (triggers(called).get("workflow_call") or {}).get("inputs") or {}
    values = {name: (spec or {}).get("default") for name, spec in declared.items()}
    values.update(caller.get("with") or {})
    missing = [name for name, spec in declared.items()
               if (spec or {}).get("required") and name not in values]
    if missing:
        raise CIFileError(f"{path}: required inputs {missing} not given")

    def substitute(match: re.Match) -> str:
        value = values.get(match.group(1))
        return json.dumps(value) if isinstance(value, bool) else str(value)

    return list(yaml.safe_load(INPUT.sub(substitute, text))["jobs"].values())


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps") or []
            if isinstance(s, dict)
            and str(s.get("uses", "")).split("@")[0].lower() == action.lower()]


def environment_name(job: dict) -> str | None:
    env = job.get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return None if env is None else str(env)


# --- Azure DevOps ----------------------------------------------------------------------------

def _render_template(path: Path, arguments: dict) -> dict:
    if not path.is_file():
        raise CIFileError(f"{path.name}: template not found")
    text, body = _read(path)
    body = body or {}
    declared = {p["name"]: p for p in (body.get("parameters") or []) if isinstance(p, dict)}
    values = {name: spec.get("default") for name, spec in declared.items()}
    values.update(arguments or {})
    for name, spec in declared.items():
        if values.get(name) is None:
            raise CIFileError(f"{path.name}: parameter {name} not given")
        if "values" in spec and values[name] not in spec["values"]:
            raise CIFileError(
                f"{path.name}: {name}={values[name]!r} is not one of {spec['values']}")

    def substitute(match: re.Match) -> str:
        value = values.get(match.group(1))
        return json.dumps(value) if isinstance(value, (list, dict)) else str(value)

    return yaml.safe_load(PARAMETER.sub(substitute, text))


def _expand_list(items: list, folder: Path, key: str, depth: int) -> list:
    if depth > 20:
        raise CIFileError(f"templates under {folder.name}/ include each other without end")
    out = []
    for item in items:
        if isinstance(item, dict) and "template" in item:
            path = folder / str(item["template"])
            body = _render_template(path, item.get("parameters") or {})
            out.extend(_expand_list(body.get(key) or [], path.parent, key, depth + 1))
        else:
            out.append(_expand_item(item, folder, depth))
    return out


def _expand_item(item: Any, folder: Path, depth: int = 0) -> Any:
    if isinstance(item, dict):
        return {key: (_expand_list(value, folder, key, depth)
                      if key in ("stages", "jobs", "steps") and isinstance(value, list)
                      else _expand_item(value, folder, depth))
                for key, value in item.items()}
    if isinstance(item, list):
        return [_expand_item(v, folder, depth) for v in item]
    return item


def expand(project: Path, pipeline: str) -> dict:
    """The pipeline `.ado/<pipeline>` with every template call expanded."""
    path = project / ".ado" / pipeline
    body = load(path)
    if not isinstance(body, dict):
        raise CIFileError(f"{pipeline}: not a pipeline")
    return _expand_item(body, path.parent)


def ado_jobs(pipeline: dict) -> list[tuple[dict, dict]]:
    """(stage, job) pairs; a pipeline with top-level `jobs` has one unnamed stage."""
    stages = pipeline.get("stages") or [{"stage": None, "jobs": pipeline.get("jobs") or []}]
    if not stages and pipeline.get("steps"):
        stages = [{"stage": None, "jobs": [{"job": None, "steps": pipeline["steps"]}]}]
    return [(stage, job) for stage in stages for job in stage.get("jobs") or []]


def job_steps(job: dict) -> list[dict]:
    if "deployment" in job:
        strategy = job.get("strategy") or {}
        steps = []
        for hooks in strategy.values():
            for hook in (hooks or {}).values():
                steps += (hook or {}).get("steps") or []
        return steps
    return job.get("steps") or []
