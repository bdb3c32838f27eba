"""The `blueprint` command. Commands arrive one module each under `mlops_blueprint.commands`.

Only typer is imported here: each command imports copier, pulumi, azure-ai-ml or rich inside its
function, so `blueprint --help` and `blueprint plan --help` return at once.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from mlops_blueprint.commands import check, fleet, new, plan, request_env


class _OneLineErrors(TyperGroup):
    """Show a usage mistake (bad option value, missing argument) as one `error:` line, exit 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from typer import Abort
        from typer._click.exceptions import NoArgsIsHelpError, UsageError

        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as error:
            typer.echo(error.format_message())
            sys.exit(0)
        except UsageError as error:
            hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx else ""
            message = " ".join(error.format_message().split())
            typer.echo(f"error: {message}{hint}", err=True)
            sys.exit(error.exit_code)
        except Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="blueprint",
    cls=_OneLineErrors,
    help="Stamp out, preview and check locked-down Azure Machine Learning projects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Stamp out, preview and check locked-down Azure Machine Learning projects.

    Exit codes: 0 ok, 1 a policy is violated or a check failed, 2 bad input.
    """


app.command("new")(new.new)
app.command("plan")(plan.plan)
app.command("check")(check.check)
app.command("request-env")(request_env.request_env)
app.command("fleet")(fleet.fleet)


def main() -> None:
    app()
