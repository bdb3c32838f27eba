"""`blueprint fleet`: the state of many generated projects, for the platform team."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from mlops_blueprint.errors import UsageError, one_line_errors


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


@one_line_errors
def fleet(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PATH",
            help="Project folders, or files (also @FILE) listing one folder a line; with "
            "--merge, the JSON reports of shards.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="table (terminal), json (machines; what --merge reads) or markdown.",
            case_sensitive=False,
        ),
    ] = Format.table,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="SRC",
            help="The template's git repository (path or URL) whose tags are the released "
            "versions. Default: each project's recorded _src_path.",
        ),
    ] = None,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Merge the JSON reports of shards (PATH... are those files) into one report.",
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Report only the K-th of N shares of the projects (for a CI matrix).",
        ),
    ] = None,
) -> None:
    """Many projects at a glance: template version and how far behind, environments, each
    stack's policy verdict, placeholder ids and unresolved conflicts. Exit 0 when all is well,
    1 when a stack violates a policy, 2 for bad input or a project that cannot be read."""
    from mlops_blueprint import fleet_view, report

    if not paths:
        raise UsageError("no PATH given: project folders, @FILE listing them, or shard reports "
                         "with --merge")
    if merge:
        if template or shard:
            raise UsageError("--merge reads finished reports: --template and --shard do not apply")
        result = fleet_view.merge(paths)
    else:
        from mlops_blueprint.previews import start_warming

        start_warming(full=True)  # the workers' imports overlap with reading the projects
        selected = fleet_view.shard(fleet_view.project_paths(paths), shard)
        result = fleet_view.build(selected, template=template)
    if output_format is Format.json:
        print(report.fleet_to_json(result))
    elif output_format is Format.markdown:
        print(report.fleet_to_markdown(result))
    else:
        report.print_fleet_table(result)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
