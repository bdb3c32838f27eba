"""`blueprint fleet`: many projects at a glance, for the platform team that made them.

Per project: the template version it was made or last updated from (`_commit` in
`.copier-answers.yml`) and how many released tags of the template it is behind, its
environments, each stack's policy verdict and violations, placeholder ids still in its stack
files, and unresolved merge conflicts (`<<<<<<<` lines, `.rej` files) left by an update.

A project that cannot be read is reported as such and the others go on. The previews of all
stacks of all projects go through one `previews.preview_many` call (one pool of workers).
Reports of shards (`--format json`) merge into one (`merge`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_blueprint.errors import UsageError

#: The `fleet --format json` document's version: `--merge` refuses anything else.
REPORT_VERSION = 1
#: Folders no team edits by hand: never searched for conflict markers.
SKIP_DIRS = frozenset({
    ".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".tox", ".pulumi",
})
MAX_SCANNED_BYTES = 1_000_000
CONFLICT_START = re.compile(rb"^<{7}(?: |$)", re.MULTILINE)
DESCRIBE = re.compile(r"^(?P<tag>.+)-(?P<ahead>\d+)-g(?P<sha>[0-9a-f]{4,40})(?:-dirty)?$")
GIT_TIMEOUT = 30


@dataclass
class TemplateStatus:
    source: str | None  # where the tags were read: --template SRC, else the recorded _src_path
    version: str | None  # `_commit`
    newest: str | None = None  # the newest released tag
    behind: int | None = None  # released tags newer than `version`
    error: str | None = None  # unreachable source, unknown version

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "version": self.version, "newest": self.newest,
                "behind": self.behind, "error": self.error}


@dataclass
class StackStatus:
    environment: str
    kind: str
    violations: list[dict[str, Any]] = field(default_factory=list)
    advisories: list[dict[str, Any]] = field(default_factory=list)
    monthly_cost: float | None = None
    error: str | None = None  # the stack could not be previewed

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        return "violates" if self.violations else "passes"

    def as_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "kind": self.kind, "verdict": self.verdict,
                "violations": self.violations, "advisories": self.advisories,
                "monthly_cost": self.monthly_cost, "error": self.error}


@dataclass
class ProjectStatus:
    path: str  # as given on the command line (or in the list file)
    project: str | None = None  # the slug
    error: str | None = None  # not a readable project
    template: TemplateStatus | None = None
    environments: list[str] = field(default_factory=list)
    stacks: list[StackStatus] = field(default_factory=list)
    placeholders: list[dict[str, str]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    custom_program: str | None = None  # the declared reason when it runs its own program
    loaded: Any = None  # the `project.Project` read, for its previews (not reported)

    @property
    def readable(self) -> bool:
        return self.error is None

    @property
    def violates(self) -> bool:
        return any(s.verdict == "violates" for s in self.stacks)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "project": self.project,
            "readable": self.readable,
            "error": self.error,
            "template": self.template.as_json() if self.template else None,
            "environments": self.environments,
            "stacks": [s.as_json() for s in self.stacks],
            "placeholders": self.placeholders,
            "conflicts": self.conflicts,
            "custom_program": self.custom_program,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProjectStatus:
        template = data.get("template")
        return cls(
            path=str(data["path"]),
            project=data.get("project"),
            error=data.get("error"),
            template=TemplateStatus(**template) if template else None,
            environments=list(data.get("environments") or []),
            stacks=[
                StackStatus(**{k: v for k, v in s.items() if k != "verdict"})
                for s in data.get("stacks") or []
            ],
            placeholders=list(data.get("placeholders") or []),
            conflicts=list(data.get("conflicts") or []),
            custom_program=data.get("custom_program"),
        )


@dataclass
class FleetReport:
    projects: list[ProjectStatus]
    template: str | None = None  # --template, when given

    def __post_init__(self) -> None:
        self.projects.sort(key=lambda p: p.path)

    @property
    def unreadable(self) -> list[ProjectStatus]:
        return [p for p in self.projects if not p.readable or any(s.error for s in p.stacks)]

    @property
    def exit_code(self) -> int:
        """2 when a project (or one of its stacks) could not be read, else 1 when a stack
        violates a policy, else 0."""
        from mlops_blueprint.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE

        if self.unreadable:
            return EXIT_USAGE
        return EXIT_FAILED if any(p.violates for p in self.projects) else EXIT_OK

    def summary(self) -> dict[str, int]:
        readable = [p for p in self.projects if p.readable]
        stacks = [s for p in readable for s in p.stacks]
        return {
            "projects": len(self.projects),
            "unreadable": sum(not p.readable for p in self.projects),
            "stacks": len(stacks),
            "violating_stacks": sum(s.verdict == "violates" for s in stacks),
            "stack_errors": sum(s.verdict == "error" for s in stacks),
            "behind": sum(bool(p.template and p.template.behind) for p in readable),
            "with_placeholders": sum(bool(p.placeholders) for p in readable),
            "with_conflicts": sum(bool(p.conflicts) for p in readable),
            "custom_programs": sum(bool(p.custom_program) for p in readable),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "fleet_report": REPORT_VERSION,
            "template": self.template,
            "summary": self.summary(),
            "projects": [p.as_json() for p in self.projects],
        }


# --- which projects ---------------------------------------------------------------------------


def _read_list(list_file: Path) -> list[str]:
    """A file listing project folders, one a line (`#` comments and blank lines skipped);
    relative folders are relative to the file's own folder."""
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise UsageError(f"cannot read the project list {list_file}: {reason}") from error
    if text.lstrip().startswith("{"):
        raise UsageError(f"{list_file} is a JSON document, not a list of project folders "
                         "(a shard's report? merge reports with --merge)")
    folders = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            folder = Path(line).expanduser()
            folders.append(str(folder if folder.is_absolute() else list_file.parent / folder))
    return folders


def project_paths(args: Sequence[str]) -> list[str]:
    """The project folders named by the arguments: folders as given; `@FILE`, or any argument
    that is a file, lists folders."""
    paths: list[str] = []
    for arg in args:
        if arg.startswith("@"):
            paths += _read_list(Path(arg[1:]).expanduser())
        elif Path(arg).is_file():
            paths += _read_list(Path(arg))
        else:
            paths.append(arg)
    if not paths:
        raise UsageError("no project folders given (PATH... or @FILE listing them)")
    return list(dict.fromkeys(paths))


def shard(paths: Sequence[str], spec: str | None) -> list[str]:
    """`K/N`: the K-th of N interleaved shares of the sorted paths (1-based)."""
    if spec is None:
        return list(paths)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"--shard {spec!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    k, n = int(match[1]), int(match[2])
    return [p for i, p in enumerate(sorted(paths)) if i % n == k - 1]


# --- template version -------------------------------------------------------------------------


def _git_url(source: str, project_root: Path) -> str:
    """A template source as git understands it: copier's `gh:`/`gl:` shortcuts expanded, a
    relative path taken from the project's folder."""
    source = source.removeprefix("git+")  # copier's marker for "this is a git URL"
    for prefix, host in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if source.startswith(prefix):
            return host + source[len(prefix):]
    if "://" in source or re.match(r"^[\w.-]+@[\w.-]+:", source):
        return source
    path = Path(source).expanduser()
    return str(path if path.is_absolute() else (project_root / path).resolve())


class TagCache:
    """`git ls-remote --tags` once per template source, however many projects use it."""

    def __init__(self) -> None:
        self._tags: dict[str, dict[str, str] | str] = {}

    def tags(self, url: str) -> dict[str, str] | str:
        """tag -> commit sha, or the reason the source could not be read."""
        if url not in self._tags:
            self._tags[url] = self._ls_remote(url)
        return self._tags[url]

    @staticmethod
    def _ls_remote(url: str) -> dict[str, str] | str:
        env = os.environ | {"GIT_TERMINAL_PROMPT": "0"}
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        try:
            proc = subprocess.run(
                ["git", "ls-remote", "--tags", url], capture_output=True, text=True,
                timeout=GIT_TIMEOUT, env=env, check=False,
            )
        except FileNotFoundError:
            return "git is not on the PATH"
        except subprocess.TimeoutExpired:
            return f"no answer within {GIT_TIMEOUT} s"
        if proc.returncode != 0:
            lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
            fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
            reason = (fatal or lines or [f"git exit {proc.returncode}"])[0]
            return reason.removeprefix("fatal: ").removeprefix("error: ")
        tags: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            name = ref.removeprefix("refs/tags/")
            if name.endswith("^{}"):  # an annotated tag's commit
                tags[name[:-3]] = sha
            else:
                tags.setdefault(name, sha)
        return tags


def _version(tag: str):
    from packaging.version import InvalidVersion, Version

    try:
        return Version(tag)
    except InvalidVersion:
        return None


def template_status(
    answers: dict[str, Any], project_root: Path, override: str | None, cache: TagCache
) -> TemplateStatus:
    version = answers.get("_commit")
    version = str(version) if version not in (None, "") else None
    source = override or answers.get("_src_path")
    status = TemplateStatus(source=str(source) if source else None, version=version)
    if not source:
        status.error = "no _src_path in .copier-answers.yml: pass --template SRC"
        return status
    tags = cache.tags(_git_url(str(source), project_root))
    if isinstance(tags, str):
        status.error = f"template source {source} unreachable: {tags}; pass --template SRC"
        return status
    released = sorted(
        ((v, t) for t in tags if (v := _version(t)) is not None and not v.is_prerelease),
        key=lambda pair: pair[0],
    )
    if not released:
        status.error = f"template source {source} has no version tags"
        return status
    status.newest = released[-1][1]
    if version is None:
        status.error = "no _commit in .copier-answers.yml: the template version is unknown"
        return status
    base = _base_tag(version, tags)
    if base is None:
        status.error = f"template version {version!r} is not a tag of {source}"
        return status
    current = _version(base)
    if current is None:
        status.error = f"template version {version!r} is not a version tag"
        return status
    status.behind = sum(v > current for v, _ in released)
    return status


def _base_tag(version: str, tags: dict[str, str]) -> str | None:
    """The tag a `_commit` is, or is built on: `v1.2.0`; `v1.2.0-3-gabc1234` (copier's
    `git describe` of an untagged commit); a commit sha that a tag points at."""
    version = version.removesuffix("-dirty")
    if version in tags:
        return version
    match = DESCRIBE.match(version)
    if match and match["tag"] in tags:
        return match["tag"]
    if re.fullmatch(r"[0-9a-f]{7,40}", version):
        named = sorted(t for t, sha in tags.items() if sha.startswith(version))
        named = [t for t in named if _version(t) is not None]
        if named:
            return max(named, key=_version)
    return None


# --- what is left in the files ----------------------------------------------------------------


def placeholders(project) -> list[dict[str, str]]:
    """Every stack config value that still holds the all-zeros placeholder id."""
    from blueprint_infra import naming
    from mlops_blueprint.project import load_yaml

    found = []
    for stack_file in sorted(project.infra_dir.rglob("Pulumi.*.yaml")):
        rel = project._rel(stack_file)
        try:
            data = load_yaml(stack_file, "stack file") or {}
        except UsageError:
            continue  # the stack's own error is reported with its preview
        config = data.get("config") if isinstance(data, dict) else None
        for key, value in (config or {}).items() if isinstance(config, dict) else ():
            if naming.PLACEHOLDER_GUID in json.dumps(value, default=str).lower():
                found.append({"file": rel, "key": str(key).split(":", 1)[-1]})
    return found


def conflicts(root: Path) -> list[dict[str, Any]]:
    """Unresolved merges a template update left: `<<<<<<<` lines and `.rej` files."""
    found: list[dict[str, Any]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if name.endswith(".rej"):
                found.append({"file": rel, "line": None})
                continue
            try:
                if path.is_symlink() or path.stat().st_size > MAX_SCANNED_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if b"<<<<<<<" not in data or b"\0" in data:
                continue
            for match in CONFLICT_START.finditer(data):
                found.append({"file": rel, "line": data.count(b"\n", 0, match.start()) + 1})
    return found


# --- the fleet --------------------------------------------------------------------------------


def _preview_all(jobs: Sequence[tuple[Any, str]]) -> list[Any]:
    """Preview every (loaded project, environment) of the fleet in one call, so all stacks of
    all projects share one pool of worker processes. Each result is an EnvironmentPlan, or the
    one-line reason it could not be made."""
    from mlops_blueprint.previews import PreviewFailure, PreviewRequest, preview_many

    outcomes = preview_many([PreviewRequest(project.root, env) for project, env in jobs],
                            projects=[project for project, _ in jobs])
    return [str(o) if isinstance(o, PreviewFailure) else o for o in outcomes]


def inspect(path: str, template: str | None, cache: TagCache) -> ProjectStatus:
    """Everything about one project but its previews."""
    from blueprint_infra import naming
    from mlops_blueprint.project import load_project

    status = ProjectStatus(path=path)
    try:
        project = load_project(Path(path).expanduser())
    except UsageError as error:
        status.error = str(error)
        return status
    status.loaded = project
    status.project = project.slug
    status.environments = project.stack_names()
    status.template = template_status(project.answers, project.root, template, cache)
    status.placeholders = placeholders(project)
    status.conflicts = conflicts(project.root)
    status.stacks = [
        StackStatus(environment=env, kind=naming.environment_kind(env))
        for env in status.environments
    ]
    return status


def build(paths: Iterable[str], *, template: str | None = None) -> FleetReport:
    cache = TagCache()
    if template and Path(template).expanduser().exists():  # a local --template: from here
        template = str(Path(template).expanduser().resolve())
    projects = [inspect(path, template, cache) for path in paths]
    stacks = [(p, s) for p in projects if p.loaded for s in p.stacks]
    results = _preview_all([(p.loaded, s.environment) for p, s in stacks])
    from mlops_blueprint import report

    for (project, stack), result in zip(stacks, results, strict=True):
        if isinstance(result, str):
            stack.error = result
            continue
        plan = report.ordered(result)
        project.custom_program = project.custom_program or getattr(plan, "custom_program", None)
        stack.violations = plan.violations
        stack.advisories = plan.advisories
        total = plan.monthly_cost_estimate.get("total")
        stack.monthly_cost = round(float(total), 2) if isinstance(total, (int, float)) else None
    return FleetReport(projects, template)


def merge(shards: Sequence[str]) -> FleetReport:
    """One report from the JSON reports of shards; a project in two shards counts once (the
    later shard's)."""
    projects: dict[str, ProjectStatus] = {}
    templates = set()
    for shard_file in shards:
        path = Path(shard_file)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise UsageError(f"cannot read shard {path}: {error.strerror or error}") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"shard {path} is not JSON: {error}") from error
        if not isinstance(data, dict) or data.get("fleet_report") != REPORT_VERSION:
            raise UsageError(
                f"shard {path} is not a `blueprint fleet --format json` report "
                f"(fleet_report: {REPORT_VERSION})"
            )
        try:
            for item in data.get("projects") or []:
                status = ProjectStatus.from_json(item)
                projects[status.path] = status
        except (KeyError, TypeError, AttributeError) as error:
            raise UsageError(f"shard {path}: a project entry is malformed ({error})") from error
        templates.add(data.get("template"))
    template = templates.pop() if len(templates) == 1 else None
    return FleetReport(list(projects.values()), template)
