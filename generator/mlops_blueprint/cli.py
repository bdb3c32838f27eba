"""The `blueprint` command. Commands arrive one module each under `mlops_blueprint.commands`."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="blueprint",
    help="Stamp out, preview and check locked-down Azure Machine Learning projects.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Stamp out, preview and check locked-down Azure Machine Learning projects."""


def main() -> None:
    app()
