"""`blueprint new`: stamp out a project with copier, then tell each user what to do next."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_blueprint.errors import UsageError, one_line_errors

#: Questions checked with the shared naming rules before copier writes anything.
_GUID_QUESTIONS = ("data_scientists_group_id", "prod_deployer_object_id")
_OPTIONAL_GUID_QUESTIONS = ("prod_readers_group_id",)
_STRUCTURED_TYPES = ("yaml", "json", "int", "float", "bool")
_COPIER_VALIDATION = re.compile(r"Validation error for question '([^']+)':\s*(.*)", re.DOTALL)


@one_line_errors
def new(
    dest: Annotated[
        Path, typer.Argument(
            metavar="DEST", help="Directory to create the project in; must be new or empty."
        )
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            "-d",
            metavar="KEY=VALUE",
            help="Answer a question, e.g. -d project_name='Churn' -d 'environments=[dev, "
            "preprod, prod]'. Values of list questions are YAML. Repeatable.",
        ),
    ] = None,
    defaults: Annotated[
        bool,
        typer.Option(
            "--defaults",
            help="Do not prompt: use the default for every question not given with --data "
            "(project_name defaults to DEST's folder name).",
        ),
    ] = False,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="SRC",
            help="Template to use instead of the bundled one: a path or a git URL.",
        ),
    ] = None,
    vcs_ref: Annotated[
        str | None,
        typer.Option(
            "--vcs-ref",
            metavar="REF",
            help="Git tag, branch or commit of the template (default: the checkout's HEAD, or "
            "the latest tag of a git URL).",
        ),
    ] = None,
) -> None:
    """Create a project from the template: answers are validated first, nothing is written when
    one breaks a rule. Prints the next steps for the platform team, infra engineers and project
    teams."""
    src, default_ref = (template, None) if template else bundled_template()
    questions = read_questions(src)
    answers = parse_data(data or [], questions)
    if defaults and "project_name" not in answers and "project_name" in questions:
        # The one question without a default: name the project after its folder.
        answers["project_name"] = dest.resolve().name
    validate_answers(answers)
    _refuse_non_empty(dest)
    if not defaults and not sys.stdin.isatty():
        raise UsageError(
            "no terminal to ask the questions in: pass --defaults (and answers with --data "
            "KEY=VALUE)"
        )

    _run_copy(src, dest, answers, defaults=defaults, vcs_ref=vcs_ref or default_ref)

    from mlops_blueprint.project import ANSWERS_FILE, load_yaml

    final = load_yaml(dest / ANSWERS_FILE, "answers file") or {}
    print_next_steps(dest, final)


# --- template ---------------------------------------------------------------------------------


def bundled_template() -> tuple[str, str | None]:
    """The template shipped with this package, and the git ref to render.

    From a source checkout (copier.yml next to generator/) that is the checkout itself at HEAD,
    so uncommitted template changes are used; from a wheel, the bundled copy."""
    package = Path(__file__).resolve().parent.parent
    checkout = package.parent.parent
    if (checkout / "copier.yml").is_file() and (checkout / "generator").is_dir():
        return str(checkout), ("HEAD" if (checkout / ".git").exists() else None)
    bundled = package / "_bundled"
    if (bundled / "copier.yml").is_file():
        return str(bundled), None
    raise UsageError(
        "the bundled template is missing from this installation; reinstall mlops-blueprint or "
        "pass --template SRC"
    )


def read_questions(src: str) -> dict[str, str]:
    """Question name -> type from a local template's copier.yml; empty for a remote template."""
    import yaml

    root = Path(src).expanduser()
    config = next((root / n for n in ("copier.yml", "copier.yaml") if (root / n).is_file()), None)
    if config is None:
        if root.exists():
            raise UsageError(f"--template {src}: no copier.yml there")
        return {}
    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"template {config} is not valid YAML: {error}") from error
    return {
        name: (spec.get("type", "str") if isinstance(spec, dict) else "str")
        for name, spec in loaded.items()
        if not name.startswith("_")
    }


# --- answers ----------------------------------------------------------------------------------


def parse_data(items: list[str], questions: dict[str, str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs as answers; list/number/bool questions parse their value as YAML."""
    import yaml

    answers: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--data {item!r}: expected KEY=VALUE")
        if questions and key not in questions:
            raise UsageError(
                f"--data {key}: no such question (questions: {', '.join(questions)})"
            )
        kind = questions.get(key) or ("yaml" if raw.lstrip().startswith(("[", "{")) else "str")
        if kind in _STRUCTURED_TYPES:
            try:
                answers[key] = yaml.safe_load(raw)
            except yaml.YAMLError as error:
                problem = getattr(error, "problem", None) or "not valid YAML"
                raise UsageError(f"--data {key}: {problem} in {raw!r}") from error
        else:
            answers[key] = raw
    return answers


def validate_answers(answers: dict[str, Any]) -> None:
    """Apply the shared naming rules to the answers given; raises naming.InvalidAnswer, which
    names the question and the rule."""
    from blueprint_infra import naming

    checks = {
        "project_slug": naming.validate_slug,
        "azure_location": naming.validate_location,
        "environments": naming.validate_environments,
        "aks_cluster_id": naming.validate_aks_cluster_id,
    }
    for question, check in checks.items():
        if question in answers:
            check(answers[question])
    for question in _GUID_QUESTIONS:
        if question in answers:
            naming.validate_guid(answers[question], question)
    for question in _OPTIONAL_GUID_QUESTIONS:
        if question in answers:
            naming.validate_guid(answers[question], question, allow_empty=True)
    if "project_name" in answers and "project_slug" not in answers:
        naming.validate_slug(naming.slugify(str(answers["project_name"])))


def _refuse_non_empty(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty; choose a new directory")


def _run_copy(
    src: str, dest: Path, answers: dict[str, Any], *, defaults: bool, vcs_ref: str | None
) -> None:
    import warnings

    import copier
    from copier.errors import CopierError, DirtyLocalWarning, MissingSettingsWarning

    try:
        with warnings.catch_warnings():
            # A dirty template checkout is normal while developing it; no settings file is
            # the normal case, whatever COPIER_SETTINGS_PATH says.
            warnings.simplefilter("ignore", DirtyLocalWarning)
            warnings.simplefilter("ignore", MissingSettingsWarning)
            copier.run_copy(
                src,
                dest,
                data=answers,
                defaults=defaults,
                unsafe=True,
                vcs_ref=vcs_ref,
                quiet=True,
            )
    except ValueError as error:
        match = _COPIER_VALIDATION.match(str(error))
        if match:
            question, rule = match.groups()
            rule = rule.strip()
            if rule.startswith(f"{question} "):
                rule = rule[len(question) + 1 :]
            raise UsageError(f"{question}: {rule}") from error
        raise UsageError(f"copier: {error}") from error
    except CopierError as error:
        raise UsageError(f"copier: {error}") from error
    except OSError as error:
        if dest.exists() and not any(dest.iterdir()):
            dest.rmdir()
        raise UsageError(f"cannot write {dest}: {error.strerror or error}") from error


# --- next steps -------------------------------------------------------------------------------


def print_next_steps(dest: Path, answers: dict[str, Any]) -> None:
    from rich.console import Console

    from blueprint_infra import naming

    console = Console(highlight=False, soft_wrap=True)
    envs = answers.get("environments") or []
    github = answers.get("ci_provider", "github") == "github"
    ci_dir = ".github/workflows" if github else ".ado"
    slug = answers.get("project_slug", dest.name)
    placeholders = [
        q
        for q in (*_GUID_QUESTIONS, *_OPTIONAL_GUID_QUESTIONS)
        if naming.is_placeholder(answers.get(q))
    ]

    console.print(
        f"[bold green]Created[/] {slug} in {dest} with environments {', '.join(envs)}."
    )
    console.print("\n[bold]Platform team[/] (you own .cloud/infra/ in CODEOWNERS)")
    console.print(f"  cd {dest} && git init -b main && git add -A && git commit -m 'New project'")
    console.print("  push it, then as a platform admin create the deploy identities and registry:")
    console.print("  cd .cloud/infra/bootstrap && pulumi stack init platform && pulumi up")
    if placeholders:
        console.print(
            "  replace the placeholder ids (all zeros) with the bootstrap's outputs and your "
            f"groups: {', '.join(placeholders)} (in .cloud/infra/Pulumi.<env>.yaml)"
        )
    console.print("\n[bold]Infra engineers[/]")
    console.print(f"  blueprint plan {dest}            preview every environment offline")
    console.print(f"  blueprint check {dest}           what CI runs on every pull request")
    console.print("  cd .cloud/infra && pulumi stack select dev && pulumi up")
    console.print(f"  prod is deployed only by its service principal, from {ci_dir}")
    console.print("\n[bold]Project teams[/]")
    console.print("  put each pipeline step under code/<step>/, notebooks under notebooks/<you>/")
    console.print(
        "  need another environment? blueprint request-env preprod  (opens a reviewable change)"
    )
