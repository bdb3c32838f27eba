"""`blueprint new`: stamp out a project with copier, then tell each user what to do next."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_blueprint.errors import UsageError, one_line_errors

#: Questions checked with the shared naming rules before copier writes anything.
_GUID_QUESTIONS = ("data_scientists_group_id", "prod_deployer_object_id")
_OPTIONAL_GUID_QUESTIONS = ("prod_readers_group_id",)
_STRUCTURED_TYPES = ("yaml", "json", "int", "float", "bool")
#: The environment variable (and `--template-source`) naming the template's git URL.
SOURCE_ENV = "BLUEPRINT_TEMPLATE_SOURCE"
#: Written into the wheel at build time (hatch_build.py): {"url": ..., "ref": ...}.
RECORDED_SOURCE_FILE = "template-source.json"
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
            "the latest tag of a git URL; with the bundled template, the tag recorded for "
            "copier update, default v<version>).",
        ),
    ] = None,
    template_source: Annotated[
        str | None,
        typer.Option(
            "--template-source",
            metavar="URL",
            envvar=SOURCE_ENV,
            show_envvar=True,
            help="The platform team's git URL of the template, recorded in the project so "
            "`copier update` and `blueprint request-env` can fetch it later (default: the URL "
            "recorded when the package was built, or the checkout's origin).",
        ),
    ] = None,
) -> None:
    """Create a project from the template: answers are validated first, nothing is written when
    one breaks a rule. Records where the template comes from (a git URL and tag) so the project
    can be updated later. Prints the next steps for the platform team, infra engineers and
    project teams."""
    origin = resolve_template(template, vcs_ref, template_source)
    questions = read_questions(origin.render_src)
    answers = parse_data(data or [], questions)
    if defaults and "project_name" not in answers and "project_name" in questions:
        # copier's default is the folder's name too; set here so the slug is checked up front.
        answers["project_name"] = dest.resolve().name
    validate_answers(answers)
    _refuse_non_empty(dest)
    if not defaults and not sys.stdin.isatty():
        raise UsageError(
            "no terminal to ask the questions in: pass --defaults (and answers with --data "
            "KEY=VALUE)"
        )

    _run_copy(origin.render_src, dest, answers, defaults=defaults, vcs_ref=origin.render_ref)

    from mlops_blueprint.project import ANSWERS_FILE, load_yaml

    if origin.record_src:
        record_template_source(dest / ANSWERS_FILE, origin.record_src, origin.record_ref)
    final = load_yaml(dest / ANSWERS_FILE, "answers file") or {}
    print_next_steps(dest, final)


# --- template ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateOrigin:
    """What copier renders (`render_src` at `render_ref`) and, when that is not a place
    `copier update` can fetch later (the bundled copy, a checkout), what to record instead in
    the project's `.copier-answers.yml` (`_src_path` and `_commit`)."""

    render_src: str
    render_ref: str | None
    record_src: str | None = None
    record_ref: str | None = None


def resolve_template(
    template: str | None, vcs_ref: str | None, source: str | None
) -> TemplateOrigin:
    """Which template to render and which source to record, from the options.

    The recorded source is, in order: `--template-source` / BLUEPRINT_TEMPLATE_SOURCE, the URL
    recorded when the package was built, the checkout's `origin` remote. It is never the
    bundled copy inside the installed package, which `copier update` cannot use."""
    source = _for_copier(_clean_url(source.strip())) if source and source.strip() else None
    if template:
        template = _for_copier(template)
        if _is_git_source(template):
            if source and _is_local(template):
                # A clone on this machine: render it, record the team's URL (and the tag or
                # commit copier records, which that URL is expected to have).
                return TemplateOrigin(template, vcs_ref, source, None)
            # copier records the URL/repository and the commit it rendered: fetchable as is.
            return TemplateOrigin(template, vcs_ref)
        if not Path(template).expanduser().exists():
            raise UsageError(
                f"--template {template}: no such folder (a template is a folder with copier.yml, "
                "a git repository or a git URL)"
            )
        read_questions(template)  # a folder that is no template: say so first
        if source is None:
            raise UsageError(
                f"--template {template} is not a git repository, so copier update could not "
                f"find it later: pass --template-source URL (or set {SOURCE_ENV}) with the "
                "template's git URL, or pass the git repository itself"
            )
        return TemplateOrigin(template, None, source, vcs_ref or _release_tag(template))

    package = Path(__file__).resolve().parent.parent
    checkout = package.parent.parent
    if (checkout / "copier.yml").is_file() and (checkout / "generator").is_dir() and (
        checkout / ".git"
    ).exists():
        # A source checkout: render it at HEAD, uncommitted template changes included. Record
        # the team's URL (or the checkout) and the checkout's own commit: with uncommitted
        # changes copier would record a commit it made in a scratch clone, found nowhere else.
        ref = vcs_ref or "HEAD"
        return TemplateOrigin(
            str(checkout), ref, source or _for_copier(_origin_url(checkout) or "") or str(checkout),
            _describe(checkout, ref),
        )

    bundled = package / "_bundled"
    if not (bundled / "copier.yml").is_file():
        raise UsageError(
            "the bundled template is missing from this installation; reinstall mlops-blueprint "
            "or pass --template SRC"
        )
    recorded = _recorded_source(bundled)
    source = source or _for_copier(_clean_url(recorded.get("url") or "")) or None
    if source is None:
        raise UsageError(
            "no template source to record for copier update: pass --template-source URL or "
            f"set {SOURCE_ENV} to the platform team's git URL of mlops-blueprint"
        )
    ref = vcs_ref or recorded.get("ref") or _release_tag(str(bundled))
    return TemplateOrigin(str(bundled), None, source, ref)


def _is_git_source(src: str) -> bool:
    """A git URL (copier clones it) or a local git repository."""
    if "://" in src or src.startswith(("git@", "gh:", "gl:")) or src.endswith(".git"):
        return True
    path = Path(src).expanduser()
    return path.is_dir() and (path / ".git").exists()


def _is_local(src: str) -> bool:
    """A template on this machine (a folder or `file://`), not one copier can fetch elsewhere."""
    if src.startswith(("git+file://", "file://")):
        return True
    return "://" not in src and not src.startswith(("git@", "gh:", "gl:")) and Path(
        src).expanduser().exists()


def _clean_url(url: str) -> str:
    """The URL without credentials: a remote like https://user:token@host/... must not end up in
    every project's answers file."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme.split("+")[-1] in ("http", "https"):  # a user there is a token or a login
        return urlunsplit(parts._replace(netloc=host))
    if ":" in userinfo:  # ssh://git:password@host/...: keep the user, drop the password
        return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}@{host}"))
    return url


def _for_copier(url: str) -> str:
    """The URL in a form copier takes for a git repository. copier recognises `.git` URLs,
    `git@host:...`, `git://` and GitHub/GitLab https URLs; any other URL (an Azure DevOps
    `https://dev.azure.com/ORG/PROJECT/_git/REPO`, a `file://` URL) needs the `git+` prefix, or
    copier takes it for a local folder (Renovate's copier manager understands `git+` too)."""
    if not url or url.startswith(("git+", "git@", "git://", "gh:", "gl:")) or url.endswith(".git"):
        return url
    if url.startswith(("https://github.com/", "https://gitlab.com/")):
        return url
    if re.match(r"^(https?|ssh|file)://", url):
        return f"git+{url}"
    return url


def _origin_url(checkout: Path) -> str | None:
    url = _git_output(checkout, "remote", "get-url", "origin")
    return _clean_url(url) if url else None


def _describe(checkout: Path, ref: str) -> str | None:
    """`ref` of a checkout the way copier records a template commit (`git describe --tags
    --always`: the tag when the commit has one)."""
    return _git_output(checkout, "describe", "--tags", "--always", ref)


def _git_output(checkout: Path, *args: str) -> str | None:
    """What a git command prints in `checkout`, or None when it fails or prints nothing."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "-C", str(checkout), *args],
            capture_output=True, text=True, check=False, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def _recorded_source(bundled: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads((bundled / RECORDED_SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _release_tag(template: str) -> str:
    """The release tag of a template copy: `v` + its copier.yml `blueprint_version`."""
    try:
        version = _copier_config(template)["blueprint_version"]["default"]
    except (KeyError, TypeError) as error:
        raise UsageError(
            f"{template}/copier.yml has no blueprint_version, so the release tag to record is "
            "unknown; pass --vcs-ref TAG"
        ) from error
    return f"v{version}"


def record_template_source(answers_file: Path, src: str, ref: str | None) -> None:
    """Point `_src_path` (and `_commit`, when given) of a new project's answers file at the
    template's git repository, keeping every other line as copier wrote it."""
    import yaml

    def line(key: str, value: str) -> str:
        return yaml.safe_dump({key: value}, default_flow_style=False, width=10**6).strip()

    wanted = {"_commit": ref, "_src_path": src}
    lines = answers_file.read_text(encoding="utf-8").splitlines()
    for key, value in wanted.items():
        at = next((i for i, ln in enumerate(lines) if ln.startswith(f"{key}:")), None)
        if value is None:
            continue
        if at is None:  # copier records no _commit for a template that is not a git repository
            at = next((i for i, ln in enumerate(lines) if not ln.startswith("#")), len(lines))
            lines.insert(at, line(key, value))
        else:
            lines[at] = line(key, value)
    answers_file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_questions(src: str) -> dict[str, str]:
    """Question name -> type from a local template's copier.yml; empty for a remote template."""
    loaded = _copier_config(src)
    return {
        name: (spec.get("type", "str") if isinstance(spec, dict) else "str")
        for name, spec in loaded.items()
        if not name.startswith("_")
        # A question with `when: false` (blueprint_version) is the template's, not the user's.
        and not (isinstance(spec, dict) and spec.get("when") is False)
    }


def _copier_config(src: str) -> dict[str, Any]:
    """A local template's parsed copier.yml; empty for a remote template."""
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
    if not isinstance(loaded, dict):
        raise UsageError(f"template {config} must be a mapping of questions")
    return loaded


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
    from rich.markup import escape

    from blueprint_infra import naming

    console = Console(highlight=False, soft_wrap=True)
    envs = answers.get("environments") or []
    github = answers.get("ci_provider", "github") == "github"
    ci_dir = ".github/workflows" if github else ".ado"
    owners = "CODEOWNERS" if github else "the branch policy in .ado/README.md"
    slug = answers.get("project_slug", dest.name)
    placeholders = [
        q
        for q in (*_GUID_QUESTIONS, *_OPTIONAL_GUID_QUESTIONS)
        if naming.is_placeholder(answers.get(q))
    ]

    console.print(
        f"[bold green]Created[/] {escape(slug)} in {escape(str(dest))} with environments "
        f"{escape(', '.join(envs))}."
    )
    source = str(answers.get("_src_path") or "")
    console.print(f"Template: {source} at {answers.get('_commit')}", markup=False)
    if source and "://" not in source and not re.match(r"^[\w.-]+@[\w.-]+:", source):
        console.print(
            "  (a folder on this machine: for updates elsewhere and Renovate, set _src_path in "
            ".copier-answers.yml to the template's git URL, or pass --template-source / "
            f"{SOURCE_ENV})"
        )
    console.print(f"Every command below runs in the project: cd {shlex.quote(str(dest))}",
                  markup=False)
    console.print(f"\n[bold]Platform team[/] (you own .cloud/infra/ through {owners})")
    console.print("  git init -b main && git add -A && git commit -m 'New project'")
    console.print("  push it, then as a platform admin create the deploy identities and registry:")
    console.print("  (cd .cloud/infra/bootstrap && pulumi stack init platform && pulumi up)")
    if placeholders:
        console.print(
            "  replace the placeholder ids (all zeros) with the bootstrap's outputs and your "
            f"groups: {', '.join(placeholders)} (in .cloud/infra/Pulumi.<env>.yaml)"
        )
    console.print("\n[bold]Infra engineers[/]")
    console.print("  blueprint plan              preview every environment offline")
    console.print("  blueprint check             what CI runs on every pull request")
    console.print("  (cd .cloud/infra && pulumi stack select dev && pulumi up)")
    console.print(f"  prod is deployed only by its service principal, from {ci_dir}")
    console.print("\n[bold]Project teams[/]")
    console.print("  put each pipeline step under code/<step>/, notebooks under notebooks/<you>/")
    console.print(
        "  install blueprint: python -m pip install -r .cloud/infra/requirements.txt  (from the "
        "platform team's git repository, at the commit this project was rendered from)"
    )
    suggestion = next_environment_name(envs)
    console.print(
        f"  need another environment? blueprint request-env {suggestion}  (opens a reviewable "
        "change)"
    )


#: Names suggested for a project's next environment, in order (all of kind staging).
_SUGGESTED_ENVIRONMENTS = ("preprod", "staging", "qa", "test", "uat")


def next_environment_name(environments: list[str]) -> str:
    """A plausible name for the environment a project does not have yet."""
    return next((e for e in _SUGGESTED_ENVIRONMENTS if e not in environments), "NAME")
