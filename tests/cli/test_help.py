"""Every command and option has help, is documented in docs/cli.md, and `--help` stays cheap."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from cli_helpers import REPO_ROOT, blueprint

from mlops_blueprint.cli import app

ROOT = typer.main.get_command(app)
COMMANDS = sorted(ROOT.commands)
DOCS = (REPO_ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def params(name):
    return [p for p in ROOT.commands[name].params if p.name != "help"]


def test_the_five_commands_exist():
    assert COMMANDS == ["check", "fleet", "new", "plan", "request-env"]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_lists_every_option_and_argument_with_help_text(name):
    run = blueprint(name, "--help")
    assert run.exit_code == 0
    assert ROOT.commands[name].help, name
    for param in params(name):
        assert getattr(param, "help", None) or param.param_type_name == "argument", param.name
        if param.param_type_name == "option":
            for opt in param.opts:
                assert re.search(rf"(^|[\s,]){re.escape(opt)}\b", run.stdout), (name, opt)
            assert param.help, (name, param.name)
        else:
            assert param.metavar and param.metavar in run.stdout, (name, param.name)
            assert param.help and param.help.split()[0] in run.stdout, (name, param.name)


def test_root_help_lists_the_commands():
    run = blueprint("--help")
    assert run.exit_code == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", run.stdout, re.MULTILINE), name


def _doc_section(name):
    match = re.search(rf"^## `blueprint {re.escape(name)}`$(.*?)(?=^## |\Z)", DOCS, re.S | re.M)
    assert match, f"docs/cli.md has no section '## `blueprint {name}`'"
    return match.group(1)


@pytest.mark.parametrize("name", COMMANDS)
def test_docs_describe_every_command_and_option(name):
    section = _doc_section(name)
    for param in params(name):
        if param.param_type_name == "option":
            for opt in param.opts:
                assert f"`{opt}" in section or f", `{opt}" in section or f"{opt} " in section, (
                    f"docs/cli.md, blueprint {name}: option {opt} is not documented"
                )
        else:
            assert f"`{param.metavar}`" in section, (
                f"docs/cli.md, blueprint {name}: argument {param.metavar} is not documented"
            )


def test_docs_give_the_exit_codes_and_json_keys():
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in DOCS
    for key in ("project", "environment", "resources", "role_assignments", "violations",
                "monthly_cost_estimate", "principal_id", "principal_type", "role_definition_id"):
        assert f'"{key}"' in DOCS, key


HEAVY = ("copier", "pulumi", "pulumi_azure_native", "azure.ai.ml", "rich", "yaml")


@pytest.mark.parametrize(
    "argv", [["--help"], ["plan", "--help"], ["new", "--help"], ["fleet", "--help"]]
)
def test_help_imports_nothing_heavy(argv):
    script = (
        "import sys\n"
        f"sys.argv = ['blueprint', *{argv!r}]\n"
        "from mlops_blueprint.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
