"""One module per `blueprint` command. Each imports its heavy dependencies inside the command
function so that `blueprint --help` stays instant."""

from pathlib import Path
from typing import Annotated

import typer

#: The PROJECT_DIR argument of `plan` and `check` (default: the current folder).
ProjectDir = Annotated[
    Path,
    typer.Argument(
        metavar="PROJECT_DIR",
        help="The generated project (the folder with .copier-answers.yml), or a folder inside it.",
    ),
]

