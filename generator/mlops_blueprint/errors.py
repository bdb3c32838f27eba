"""The one error type the CLI turns into `error: ...` on stderr and exit code 2.

Raise `UsageError` for a user's mistake (a path that is not a project, an unknown environment, a
malformed file). The message is one line that says what is wrong and, where it helps, the fix.
"""

from __future__ import annotations

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAILED = 1  # a policy is violated or a check found something
EXIT_USAGE = 2  # bad input


class UsageError(Exception):
    """A user mistake, shown as one line and exit code 2, never a traceback."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str):
        # One line, whatever the underlying library put in its message.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


def one_line_errors(command):
    """Decorate a command so a UsageError (or a naming rule's InvalidAnswer) prints
    `error: <message>` on stderr and exits 2 instead of raising."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import typer

        from blueprint_infra.naming import InvalidAnswer

        try:
            return command(*args, **kwargs)
        except (UsageError, InvalidAnswer) as error:
            message = " ".join(str(error).split())
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(EXIT_USAGE) from None

    return wrapper
