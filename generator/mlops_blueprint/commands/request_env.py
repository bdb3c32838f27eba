"""`blueprint request-env`: add an environment through the template, as a reviewable change.

It re-answers one question (`environments`) with `copier update` at the template version the
project is already on, so the only changes are the ones the new environment brings: its stack
file (written by the template's task), its CI/CD stage, the updated answers. Nothing is
committed: the team reviews the working tree, commits it on a branch and opens a pull request
that the platform team (CODEOWNERS of .cloud/infra, or the required-reviewers branch policy on
Azure DevOps) approves.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from mlops_blueprint.errors import EXIT_FAILED, UsageError, one_line_errors


@one_line_errors
def request_env(
    environment: Annotated[
        str,
        typer.Argument(
            metavar="ENV",
            help="Name of the new environment, e.g. preprod: 2-10 lowercase letters or digits, "
            "starting with a letter.",
        ),
    ],
    project_dir: Annotated[
        Path,
        typer.Argument(
            metavar="PROJECT_DIR",
            help="The generated project; a git repository with a clean tree.",
        ),
    ] = Path("."),
) -> None:
    """Add an environment to a project (new stack file, CI/CD stage, answers) with copier
    update at the project's current template version. Leaves the change uncommitted for
    review."""
    from blueprint_infra import naming
    from mlops_blueprint.project import load_project

    project = load_project(project_dir)
    current = project.answered_environments
    if not current:
        raise UsageError(f"{project.root}/.copier-answers.yml has no environments: list")
    if environment in current:
        raise UsageError(
            f"environment {environment!r} already exists (environments: {', '.join(current)})"
        )
    requested = [e for e in current if e != "prod"] + [environment]
    requested += ["prod"] if "prod" in current else []
    naming.validate_environments(requested, question="ENV")
    if (project.infra_dir / f"Pulumi.{environment}.yaml").exists():
        raise UsageError(
            f".cloud/infra/Pulumi.{environment}.yaml already exists but {environment!r} is not "
            "in the answers; remove the file or add the environment with copier update"
        )
    _require_clean_git(project.root)
    _require_git_template(project.answers)
    _require_reachable_local_template(str(project.answers["_src_path"]), project.root)

    _update(
        project.root, requested, str(project.answers["_commit"]), str(project.answers["_src_path"])
    )

    changed = _git(project.root, "status", "--porcelain", "--untracked-files=all").splitlines()
    conflicts = _report(
        project.root,
        environment,
        kind=naming.environment_kind(environment),
        changed=changed,
        reviewers=_reviewers(project.answers),
    )
    if conflicts:
        # The change stays in the tree for review, but a script must not commit the markers.
        raise typer.Exit(EXIT_FAILED)


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, args, result.stdout, result.stderr)
    return result.stdout


def _require_clean_git(root: Path) -> None:
    try:
        _git(root, "rev-parse", "--show-toplevel")
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        raise UsageError(
            f"{root} is not a git repository; commit the project first "
            "(git init && git add -A && git commit -m 'New project')"
        ) from error
    try:
        _git(root, "rev-parse", "--verify", "HEAD")
    except subprocess.CalledProcessError as error:
        raise UsageError(
            f"{root} has no commit yet; commit the project first (git add -A && git commit)"
        ) from error
    try:
        _git(root, "ls-files", "--error-unmatch", ".copier-answers.yml")
    except subprocess.CalledProcessError as error:
        raise UsageError(
            f"{root} is not committed to git (its .copier-answers.yml is untracked, e.g. it sits "
            "inside another repository); git init it and commit the project first"
        ) from error
    if _git(root, "status", "--porcelain").strip():
        raise UsageError(
            f"{root} has uncommitted changes; commit or stash them first so the new environment "
            "arrives as its own reviewable change"
        )


def _require_git_template(answers: dict) -> None:
    src = answers.get("_src_path")
    if not src:
        raise UsageError(
            ".copier-answers.yml has no _src_path, so copier cannot find the template; restore "
            "it (the template's git URL or path) and retry"
        )
    if not answers.get("_commit"):
        raise UsageError(
            f"the project was generated from {src}, which is not a git repository, so copier "
            "cannot update it; set _src_path in .copier-answers.yml to the template's git "
            "repository (and _commit to the tag it was made from), commit, and retry"
        )


def _fix_source_hint(ref: str) -> str:
    return (
        "set _src_path to the platform team's git URL of mlops-blueprint (and _commit to the tag "
        f"the project was made from, now {ref}), commit, and retry"
    )


def _require_reachable_local_template(src: str, root: Path) -> None:
    """A template recorded as a local path must still be a git repository there (copier's own
    message, "only supported in git-tracked templates", does not say what to fix). Remote URLs
    are checked by git when copier clones them."""
    if "://" in src or src.startswith(("gh:", "gl:")) or re.match(r"^[\w.-]+@[\w.-]+:", src):
        return
    path = (root / Path(src).expanduser()).resolve()
    try:
        inside = _git(path, "rev-parse", "--is-inside-work-tree").strip() == "true" or (
            _git(path, "rev-parse", "--is-bare-repository").strip() == "true"
        )
    except (subprocess.CalledProcessError, OSError):
        inside = False
    if not inside:
        raise UsageError(
            f"cannot fetch the template from {src} (_src_path in .copier-answers.yml): not a "
            "git repository there; " + _fix_source_hint("its _commit")
        )


def _update(root: Path, environments: list[str], template_ref: str, src: str) -> None:
    """copier update at the template version the project is on (its `_commit`)."""
    import warnings

    import copier
    from copier.errors import CopierError, DirtyLocalWarning, MissingSettingsWarning
    from plumbum import ProcessExecutionError

    try:
        with warnings.catch_warnings(), _task_output_hidden():
            # A dirty template checkout is normal while developing it; no settings file is
            # the normal case, whatever COPIER_SETTINGS_PATH says.
            warnings.simplefilter("ignore", DirtyLocalWarning)
            warnings.simplefilter("ignore", MissingSettingsWarning)
            copier.run_update(
                root,
                data={"environments": environments},
                vcs_ref=template_ref,
                defaults=True,
                overwrite=True,
                unsafe=True,
                quiet=True,
            )
    except ValueError as error:
        if "Unknown revision" in str(error):
            raise UsageError(
                f"the template at {src} has no {template_ref!r}, the version this project was "
                "made from (made from uncommitted template changes, or the tag is gone); set "
                "_commit in .copier-answers.yml to a tag or commit of the template, commit, and "
                "retry"
            ) from error
        raise UsageError(f"copier: {error}") from error
    except CopierError as error:
        raise UsageError(f"copier update failed: {error}") from error
    except ProcessExecutionError as error:
        detail = (error.stderr or "").strip().splitlines()
        reason = detail[-1] if detail else " ".join(map(str, error.argv))
        raise UsageError(
            f"cannot fetch the template from {src} (_src_path in .copier-answers.yml): "
            f"{reason}; " + _fix_source_hint(template_ref)
        ) from error


@contextlib.contextmanager
def _task_output_hidden():
    """Hide what the template's tasks print while copier renders the old and new versions
    (`wrote .cloud/infra/Pulumi.dev.yaml` from a throwaway copy would mislead); the change is
    reported from `git status` instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException as error:
            failed = type(error).__name__ == "TaskError"  # copier's: a task exited non-zero
            raise
        else:
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:  # what the failing task said is the diagnosis: show it
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))


def _reviewers(answers: dict) -> str:
    """Who approves a change to .cloud/infra, in the words of the project's CI provider."""
    team = answers.get("platform_team") or "the platform team"
    if answers.get("ci_provider") == "azure-devops":
        return f"{team}, the required reviewers of .cloud/infra (branch policy, .ado/README.md)"
    return f"{team}, CODEOWNERS of .cloud/infra"


def _report(
    root: Path, environment: str, *, kind: str, changed: list[str], reviewers: str
) -> list[str]:
    """Prints what changed and the next steps; returns the files left with merge conflicts."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    stack = root / ".cloud" / "infra" / f"Pulumi.{environment}.yaml"
    if not stack.is_file():
        console.print(
            f"[yellow]warning[/]: the template wrote no .cloud/infra/Pulumi.{environment}.yaml; "
            "the infra engineers must add it by hand"
        )
    console.print(
        f"[bold green]Requested[/] environment [bold]{environment}[/] (kind {kind}). Changes, "
        "uncommitted, for review:"
    )
    for line in changed:
        console.print(f"  {line}", markup=False)
    conflicts = [
        line[3:]
        for line in changed
        if line[3:].endswith(".rej")
        or _has_conflict_markers(root / line[3:].strip('"'))
    ]
    if conflicts:
        console.print(
            f"[yellow]Resolve the merge conflicts in: {escape(', '.join(conflicts))}[/] before "
            "committing."
        )
    console.print(
        "\nNext: git diff; blueprint plan --env "
        f"{environment}; git switch -c request-env-{environment} && git add -A && git commit; "
        f"open a pull request for {reviewers} to approve.",
        markup=False,  # an Azure DevOps team is `[Project]\\Team`, not rich markup
    )
    return conflicts


def _has_conflict_markers(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return "\n<<<<<<< " in f"\n{text}" and "\n>>>>>>> " in text
