"""A generated project on disk: its answers, its Pulumi stacks and their config.

Every command starts here, so every user mistake about *which* project (a directory that is not
one, an unreadable answers file, an unknown or malformed stack) becomes one `UsageError` line.
Imports only PyYAML (through `load_yaml`) and the naming rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_blueprint.errors import UsageError

ANSWERS_FILE = ".copier-answers.yml"
INFRA_DIR = Path(".cloud") / "infra"
BOOTSTRAP_DIR = "bootstrap"
#: `--env bootstrap` selects the once-per-project bootstrap program and its one stack.
BOOTSTRAP_ENV = "bootstrap"
BOOTSTRAP_STACK = "platform"


def load_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file, or raise a one-line UsageError naming the file and the problem."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror or error}") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"{what} {path} is not valid YAML{where}: {problem}") from error


@dataclass
class Stack:
    """One Pulumi stack of the project: `.cloud/infra/Pulumi.<name>.yaml`."""

    environment: str  # the name `--env` takes (the stack name; "bootstrap" for the bootstrap)
    stack: str  # the Pulumi stack name
    program_dir: Path  # the folder with Pulumi.yaml and __main__.py
    config_file: Path
    config: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, namespace: str | None = None) -> Any:
        """A config value by bare key (`kind`) in the project namespace, or a full key."""
        if ":" in key or namespace is None:
            return self.config.get(key)
        return self.config.get(f"{namespace}:{key}")


@dataclass
class Project:
    root: Path
    answers: dict[str, Any]
    infra_dir: Path
    pulumi_project: str  # `name:` in .cloud/infra/Pulumi.yaml (= the config namespace)

    @property
    def slug(self) -> str:
        return str(self.answers.get("project_slug") or self.pulumi_project)

    @property
    def answered_environments(self) -> list[str]:
        envs = self.answers.get("environments")
        return [str(e) for e in envs] if isinstance(envs, list) else []

    def stack_names(self) -> list[str]:
        """Stacks present in `.cloud/infra/`, in the answers' order, then any others by name."""
        present = sorted(
            p.name[len("Pulumi.") : -len(".yaml")]
            for p in self.infra_dir.glob("Pulumi.*.yaml")
            if p.is_file()
        )
        ordered = [e for e in self.answered_environments if e in present]
        return ordered + [s for s in present if s not in ordered]

    def stack(self, environment: str) -> Stack:
        """The parsed stack for an environment name, or a UsageError naming the choices."""
        if environment == BOOTSTRAP_ENV and environment not in self.stack_names():
            program_dir = self.infra_dir / BOOTSTRAP_DIR
            stack_name = BOOTSTRAP_STACK
        else:
            program_dir = self.infra_dir
            stack_name = environment
        config_file = program_dir / f"Pulumi.{stack_name}.yaml"
        if not config_file.is_file():
            known = ", ".join(self.stack_names()) or "none"
            raise UsageError(
                f"unknown environment {environment!r}: no {self._rel(config_file)} "
                f"(environments: {known})"
            )
        data = load_yaml(config_file, "stack file")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UsageError(
                f"stack file {self._rel(config_file)} must be a mapping with a config: section"
            )
        config = data.get("config", {})
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise UsageError(
                f"stack file {self._rel(config_file)}: config: must be a mapping of keys to values"
            )
        return Stack(environment, stack_name, program_dir, config_file, dict(config))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def find_root(path: Path) -> Path:
    """`path`, or the nearest folder above it that holds a generated project (so commands work
    from inside one, e.g. from `.cloud/infra`, as git does)."""
    start = path.resolve()
    for folder in (start, *start.parents):
        if (folder / ANSWERS_FILE).is_file() and (folder / INFRA_DIR / "Pulumi.yaml").is_file():
            return folder if folder != start else path
    return path


def load_project(path: str | Path) -> Project:
    """The generated project at (or above) `path`, or a one-line UsageError saying why there
    is none."""
    root = Path(path)
    if not root.exists():
        raise UsageError(f"no such directory: {root}")
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    root = find_root(root)
    answers_file = root / ANSWERS_FILE
    pulumi_file = root / INFRA_DIR / "Pulumi.yaml"
    if not answers_file.is_file() and not pulumi_file.is_file():
        raise UsageError(
            f"{root} is not a generated project (no {ANSWERS_FILE}); "
            "create one with `blueprint new DEST`"
        )
    if not answers_file.is_file():
        raise UsageError(f"{root} has no {ANSWERS_FILE}; is it a project made by blueprint?")
    answers = load_yaml(answers_file, "answers file")
    if not isinstance(answers, dict):
        raise UsageError(f"answers file {answers_file} must be a mapping of question: answer")
    if not pulumi_file.is_file():
        raise UsageError(f"{root} is not a generated project (no {INFRA_DIR / 'Pulumi.yaml'})")
    pulumi = load_yaml(pulumi_file, "Pulumi project file")
    if not isinstance(pulumi, dict) or not pulumi.get("name"):
        raise UsageError(f"{pulumi_file} has no name:")
    return Project(root.resolve(), answers, (root / INFRA_DIR).resolve(), str(pulumi["name"]))


@dataclass(frozen=True)
class Refusal:
    """Something in a project that changes what `pulumi up` would run, so no preview of it can
    be trusted."""

    where: str  # the file, relative to the project
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def program_integrity(project: Project, stack: Stack) -> tuple[list[Refusal], str | None]:
    """The refusals that apply to `stack`'s program, and the declared reason when the project
    runs its own program (None for the blueprint's own)."""
    return [], None
