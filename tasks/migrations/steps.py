"""The edits a template release applies to a project during `copier update` (a migration).

A release that renames or moves a file, or renames, removes or changes a stack key, lists its
edits in `tasks/migrations/v<major>_<minor>_<patch>.py` as a few `RenameKey`, `DropKey` and
`MoveFile` lines, and `copier.yml`'s `_migrations` runs that script once, after the update, in
the project (copier runs a migration when the update crosses its version: new >= version > old).

Migrations run under copier's own Python, from the template's clone, so this module imports
only the standard library. Every edit is idempotent and keeps what the team wrote:

- stack files (`.cloud/infra/Pulumi.<env>.yaml`) are edited line by line, so comments, order
  and the team's values stay; a key the team already changed is left alone where the edit says
  so (`DropKey(..., only_if=...)`);
- a file the template renamed gets the team's edits of the old file, merged three ways
  (`git merge-file`: the old template file as base, the team's old file, the new template
  file); overlapping edits are left as conflict markers for the team, never dropped.

Each edit prints one line saying what it did, on stderr, as copier's own tasks do.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

INFRA_DIR = Path(".cloud") / "infra"


@dataclass(frozen=True)
class Context:
    """What an edit knows about the project being migrated."""

    root: Path  # the project (copier runs migrations there)
    slug: str  # the Pulumi config namespace (project_slug)
    kinds: dict[str, str]  # environment -> kind, by the template's rule
    template: Path | None  # the template's clone, at the new version
    version_from: str | None  # the template version the project is updated from (git describe)

    def stacks(self) -> list[tuple[str, Path]]:
        """(environment, stack file) of every environment stack of the project."""
        found = []
        for path in sorted((self.root / INFRA_DIR).glob("Pulumi.*.yaml")):
            env = path.name[len("Pulumi.") : -len(".yaml")]
            found.append((env, path))
        return found


def say(message: str) -> None:
    print(f"migrate: {message}", file=sys.stderr)


def _key_line(slug: str, key: str) -> re.Pattern[str]:
    """A config line `  <slug>:<key>: value`, set or commented out (`  # <slug>:<key>: ...`)."""
    return re.compile(rf"^(?P<lead>\s*(?:#\s*)?){re.escape(slug)}:{re.escape(key)}(?P<rest>:.*)$")


def _value(rest: str) -> str:
    """The scalar after `: ` on a stack line, unquoted, without a trailing comment."""
    text = rest[1:].strip()
    if text[:1] in "\"'":
        quote = text[0]
        end = text.find(quote, 1)
        return text[1:end] if end > 0 else text[1:]
    return text.split(" #", 1)[0].strip()


@dataclass(frozen=True)
class RenameKey:
    """Stack key `<slug>:<old>` is now `<slug>:<new>`, same value (commented examples too)."""

    old: str
    new: str

    def apply(self, ctx: Context) -> None:
        pattern = _key_line(ctx.slug, self.old)
        for _env, path in ctx.stacks():
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            changed = False
            for i, line in enumerate(lines):
                match = pattern.match(line.rstrip("\n"))
                if match:
                    ending = "\n" if line.endswith("\n") else ""
                    lines[i] = f"{match['lead']}{ctx.slug}:{self.new}{match['rest']}{ending}"
                    changed = True
            if changed:
                path.write_text("".join(lines), encoding="utf-8")
                say(f"{path.relative_to(ctx.root)}: {ctx.slug}:{self.old} -> {self.new}")


@dataclass(frozen=True)
class DropKey:
    """Stack key `<slug>:<key>` is gone. `only_if(env, value, ctx)` keeps it where it returns
    False (e.g. a value the team chose on purpose); `comments` are the template's comment
    lines written just above the key, removed with it (the team's own comments stay)."""

    key: str
    reason: str
    only_if: Callable[[str, str, Context], bool] | None = None
    comments: tuple[str, ...] = ()

    def apply(self, ctx: Context) -> None:
        pattern = _key_line(ctx.slug, self.key)
        for env, path in ctx.stacks():
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            keep: list[str] = []
            dropped = kept = False
            for line in lines:
                match = pattern.match(line.rstrip("\n"))
                if not match or "#" in match["lead"]:
                    keep.append(line)
                    continue
                if self.only_if and not self.only_if(env, _value(match["rest"]), ctx):
                    keep.append(line)
                    kept = True
                    continue
                while keep and keep[-1].strip().lstrip("#").strip() in self.comments:
                    keep.pop()
                dropped = True
            if dropped:
                path.write_text("".join(keep), encoding="utf-8")
                say(f"{path.relative_to(ctx.root)}: removed {ctx.slug}:{self.key} ({self.reason})")
            elif kept:
                say(
                    f"{path.relative_to(ctx.root)}: kept {ctx.slug}:{self.key}, a value of your "
                    f"own; {self.reason}"
                )


def _git(cwd: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=check
    )


@dataclass(frozen=True)
class MoveFile:
    """File `old` (project-relative) is now `new`.

    A file the template renders: copier has already written `new` and removed `old`; the team's
    edits of `old` (from the project's last commit) are merged into `new`, three ways, with the
    old template file as the base. A file the template does not render (a stack file, the
    team's own): moved, unless `new` already exists."""

    old: str
    new: str

    def apply(self, ctx: Context) -> None:
        old, new = ctx.root / self.old, ctx.root / self.new
        if old.exists() and not new.exists():
            new.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, new)
            say(f"moved {self.old} -> {self.new}")
            return
        team = _git(ctx.root, "show", f"HEAD:{self.old}")
        if team.returncode != 0 or not new.exists():
            return  # the project never had the old file, or the template dropped both
        base = self._old_template_file(ctx)
        if base is None:
            say(
                f"{self.old} is now {self.new}; carry your edits over by hand "
                f"(git show HEAD:{self.old})"
            )
            return
        if base == team.stdout:
            return  # no team edits to carry
        with tempfile.TemporaryDirectory() as scratch:
            base_file, team_file = Path(scratch, "base"), Path(scratch, "team")
            base_file.write_text(base, encoding="utf-8")
            team_file.write_text(team.stdout, encoding="utf-8")
            merged = _git(
                ctx.root, "merge-file", "-L", f"{self.new} (template)", "-L", "base",
                "-L", f"{self.old} (your edits)", str(new), str(base_file), str(team_file),
            )
        if merged.returncode == 0:
            say(f"{self.old} is now {self.new}; your edits were carried over")
        else:
            say(f"{self.old} is now {self.new}; resolve the conflict markers in {self.new}")

    def _old_template_file(self, ctx: Context) -> str | None:
        """The old template version of the file, when it is a plain (not .jinja) file."""
        if ctx.template is None or not ctx.version_from:
            return None
        shown = _git(ctx.template, "show", f"{ctx.version_from}:template/{self.old}")
        return shown.stdout if shown.returncode == 0 else None


Edit = Union[RenameKey, DropKey, MoveFile]  # noqa: UP007  (copier may run on Python 3.9)


def parse_kinds(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in filter(None, text.split(",")))


def run(edits: Sequence[Edit], argv: list[str] | None = None) -> int:
    """The migration script's main: apply `edits` in order to the project in the current
    folder. Arguments come from copier.yml's `_migrations` entry; copier passes the versions
    as $VERSION_FROM / $VERSION_TO."""
    parser = argparse.ArgumentParser(description="Apply a template release's edits.")
    parser.add_argument("--project-slug", required=True)
    parser.add_argument("--kinds", default="", help="env=kind pairs, comma-separated")
    parser.add_argument("--template", type=Path, default=None, help="the template's clone")
    args = parser.parse_args(argv)
    ctx = Context(
        root=Path.cwd(),
        slug=args.project_slug,
        kinds=parse_kinds(args.kinds),
        template=args.template,
        version_from=os.environ.get("VERSION_FROM"),
    )
    for edit in edits:
        edit.apply(ctx)
    return 0
