"""`blueprint plan`: preview environments offline, under Pulumi's mock engine.

For each stack it runs the project's real `.cloud/infra` program with that stack's config (through
`blueprint_infra.preview.preview_stack`, in a pool of child processes: `previews.run_plans`), then
reports what a reviewer needs: the resources, who gets which role where, the policy verdicts and
the idle monthly cost. A project that changes what `pulumi up` would run is refused before any
preview (`project.program_integrity`); one that declares its own program is previewed and says so.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from mlops_blueprint.commands import ProjectDir
from mlops_blueprint.errors import EXIT_FAILED, one_line_errors


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    mermaid = "mermaid"


@one_line_errors
def plan(
    project_dir: ProjectDir = Path("."),
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            metavar="ENV",
            help="Environment (stack) to preview; repeatable. Default: every "
            ".cloud/infra/Pulumi.<env>.yaml. `bootstrap` previews the bootstrap program.",
        ),
    ] = None,
    output_format: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="table (terminal), json (machines; an object for one --env, else a list), "
            "markdown (pull-request comments) or mermaid (a diagram of who gets what).",
            case_sensitive=False,
        ),
    ] = Format.table,
    as_identity: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="OBJECT_ID",
            help="Preview as this deploying identity (Entra object id). Default: each stack's "
            "configured deployerObjectId.",
        ),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="REF",
            help="Compare with the project at this git ref (e.g. origin/main): per environment, "
            "resources added, removed and changed, roles granted and revoked, policy verdicts "
            "and the cost delta. Formats: table, json, markdown.",
        ),
    ] = None,
) -> None:
    """Preview environments offline: resources, RBAC matrix, policy verdicts and idle monthly
    cost. Exit 0 when every policy passes, 1 when one is violated, 2 for bad input.

    The previews run in a warm preview server that the first command starts in the background
    and later ones reuse (yours only; it leaves after 10 idle minutes). It is off under CI;
    BLUEPRINT_PREVIEW_SERVER=off runs them in this command's own processes (docs/cli.md)."""
    from mlops_blueprint.previews import run_plans, start_warming

    start_warming()  # the workers' imports start now, the renderer's below meanwhile
    if against is not None:
        _plan_against(project_dir, against, env or [], output_format, as_identity)
        return
    from mlops_blueprint import report

    plans = run_plans(project_dir, env or [], as_identity=as_identity)

    single = env is not None and len(env) == 1
    if output_format is Format.json:
        report.print_json(plans, single=single)
    elif output_format is Format.markdown:
        report.print_markdown(plans)
    elif output_format is Format.mermaid:
        report.print_mermaid(plans)
    else:
        report.print_tables(plans)
    if not all(p.passed for p in plans):
        raise typer.Exit(EXIT_FAILED)


def _plan_against(
    project_dir: Path, ref: str, envs: list[str], output_format: Format, as_identity: str | None
) -> None:
    """`plan --against REF`: what the change from REF to the project on disk does."""
    from mlops_blueprint.errors import UsageError

    if output_format is Format.mermaid:
        raise UsageError("--against shows a change as table, json or markdown, not mermaid")
    from mlops_blueprint import report
    from mlops_blueprint.plan_diff import plan_against

    diff = plan_against(project_dir, ref, envs, as_identity=as_identity)
    if output_format is Format.json:
        print(report.diff_to_json(diff))
    elif output_format is Format.markdown:
        print(report.diff_to_markdown(diff))
    else:
        report.print_diff_tables(diff)
    if not diff.passed:
        raise typer.Exit(EXIT_FAILED)
