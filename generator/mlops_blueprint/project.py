"""A generated project on disk: its answers, its Pulumi stacks and their config.

Every command starts here, so every user mistake about *which* project (a directory that is not
one, an unreadable answers file, an unknown or malformed stack) becomes one `UsageError` line.
Imports only PyYAML (through `load_yaml`, with `blueprint_infra.preview.load_yaml_strict`, which
rejects repeated keys), `packaging` and the naming rules: never pulumi.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_blueprint.errors import UsageError

ANSWERS_FILE = ".copier-answers.yml"
INFRA_DIR = Path(".cloud") / "infra"
BOOTSTRAP_DIR = "bootstrap"
#: `--env bootstrap` selects the once-per-project bootstrap program and its one stack.
BOOTSTRAP_ENV = "bootstrap"
BOOTSTRAP_STACK = "platform"


def load_yaml(path: Path, what: str, shown: str | None = None) -> Any:
    """Parse a YAML file, or raise a one-line UsageError naming the file and the problem: a
    missing, dangling or looping link, bytes that are not UTF-8, invalid YAML, a repeated key."""
    import yaml

    from blueprint_infra.preview import load_yaml_strict

    text = read_text(path, what, shown)
    try:
        return load_yaml_strict(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"{what} {shown or path} is not valid YAML{where}: {problem}") from error


def read_text(path: Path, what: str, shown: str | None = None) -> str:
    """A text file's content, or a one-line UsageError naming it: unreadable, a link that
    leads nowhere or round in a loop, or bytes that are not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {what} {shown or path}: {_why(path, error)}") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(
            f"{what} {shown or path} is not UTF-8 text: byte 0x{data[error.start]:02x} on line "
            f"{line}"
        ) from error


def _why(path: Path, error: OSError) -> str:
    import errno

    if error.errno == errno.ELOOP:
        return "a symbolic link that loops"
    if path.is_symlink() and error.errno == errno.ENOENT:
        return "a symbolic link to nothing (dangling)"
    return error.strerror or str(error)


@dataclass
class Stack:
    """One Pulumi stack of the project: `.cloud/infra/Pulumi.<name>.yaml`."""

    environment: str  # the name `--env` takes (the stack name; "bootstrap" for the bootstrap)
    stack: str  # the Pulumi stack name
    program_dir: Path  # the folder with Pulumi.yaml and __main__.py
    config_file: Path
    config: dict[str, Any] = field(default_factory=dict)
    file_keys: tuple[Any, ...] = ()  # the stack file's top-level keys (config, secretsprovider...)

    def get(self, key: str, namespace: str | None = None) -> Any:
        """A config value by bare key (`kind`) in the project namespace, or a full key."""
        if ":" in key or namespace is None:
            return self.config.get(key)
        return self.config.get(f"{namespace}:{key}")


@dataclass
class Project:
    root: Path
    answers: dict[str, Any]
    infra_dir: Path
    pulumi_project: str  # `name:` in .cloud/infra/Pulumi.yaml (= the config namespace)
    #: Stacks already parsed: like the answers, a stack file is read once per loaded project.
    _stacks: dict[str, Stack] = field(default_factory=dict, init=False, repr=False,
                                      compare=False)

    @property
    def slug(self) -> str:
        return str(self.answers.get("project_slug") or self.pulumi_project)

    @property
    def answered_environments(self) -> list[str]:
        envs = self.answers.get("environments")
        return [str(e) for e in envs] if isinstance(envs, list) else []

    def stack_names(self) -> list[str]:
        """Stacks present in `.cloud/infra/`, in the answers' order, then any others by name."""
        files = sorted(self.infra_dir.glob("Pulumi.*.yaml"))
        for path in files:  # a stack whose file cannot be read is an error, never skipped
            if not path.is_file():
                if path.is_symlink():
                    read_text(path, "stack file", self._rel(path))  # raises: the link and why
                raise UsageError(f"stack file {self._rel(path)} is not a regular file")
        present = [p.name[len("Pulumi.") : -len(".yaml")] for p in files]
        ordered = [e for e in self.answered_environments if e in present]
        return ordered + [s for s in present if s not in ordered]

    def stack_names_with_bootstrap(self) -> list[str]:
        """`stack_names`, then `bootstrap` when the project has the bootstrap program's stack:
        every name `--env` can take (`check` previews them all, `plan --against` compares
        them)."""
        names = self.stack_names()
        bootstrap = self.infra_dir / BOOTSTRAP_DIR / f"Pulumi.{BOOTSTRAP_STACK}.yaml"
        if BOOTSTRAP_ENV not in names and bootstrap.is_file():
            names.append(BOOTSTRAP_ENV)
        return names

    def stack(self, environment: str) -> Stack:
        """The parsed stack for an environment name, or a UsageError naming the choices."""
        if environment not in self._stacks:
            self._stacks[environment] = self._read_stack(environment)
        return self._stacks[environment]

    def _read_stack(self, environment: str) -> Stack:
        if environment == BOOTSTRAP_ENV and environment not in self.stack_names():
            program_dir = self.infra_dir / BOOTSTRAP_DIR
            stack_name = BOOTSTRAP_STACK
        else:
            program_dir = self.infra_dir
            stack_name = environment
        config_file = program_dir / f"Pulumi.{stack_name}.yaml"
        if config_file.is_symlink() and not config_file.is_file():
            read_text(config_file, "stack file", self._rel(config_file))  # dangling or looping
        if not config_file.is_file():
            known = ", ".join(self.stack_names()) or "none"
            raise UsageError(
                f"unknown environment {environment!r}: no {self._rel(config_file)} "
                f"(environments: {known})"
            )
        data = load_yaml(config_file, "stack file", self._rel(config_file))
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UsageError(
                f"stack file {self._rel(config_file)} must be a mapping with a config: section"
            )
        config = data.get("config", {})
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise UsageError(
                f"stack file {self._rel(config_file)}: config: must be a mapping of keys to values"
            )
        return Stack(environment, stack_name, program_dir, config_file, dict(config), tuple(data))

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def find_root(path: Path) -> Path:
    """`path`, or the nearest folder above it that holds a generated project (so commands work
    from inside one, e.g. from `.cloud/infra`, as git does)."""
    start = path.resolve()
    for folder in (start, *start.parents):
        if (folder / ANSWERS_FILE).is_file() and (folder / INFRA_DIR / "Pulumi.yaml").is_file():
            return folder if folder != start else path
    return path


def load_project(path: str | Path) -> Project:
    """The generated project at (or above) `path`, or a one-line UsageError saying why there
    is none."""
    root = Path(path)
    if root.is_symlink() and not root.exists():
        raise UsageError(f"{root} is a symbolic link that loops or leads nowhere")
    if not root.exists():
        raise UsageError(f"no such directory: {root}")
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory")
    root = find_root(root)
    answers_file = root / ANSWERS_FILE
    pulumi_file = root / INFRA_DIR / "Pulumi.yaml"
    for path in (answers_file, pulumi_file):
        if path.is_symlink() and not path.is_file():
            read_text(path, "project file")  # a dangling or looping link: say so
    if not answers_file.is_file() and not pulumi_file.is_file():
        raise UsageError(
            f"{root} is not a generated project (no {ANSWERS_FILE}); "
            "create one with `blueprint new DEST`"
        )
    if not answers_file.is_file():
        raise UsageError(f"{root} has no {ANSWERS_FILE}; is it a project made by blueprint?")
    answers = load_yaml(answers_file, "answers file")
    if not isinstance(answers, dict):
        raise UsageError(f"answers file {answers_file} must be a mapping of question: answer")
    if not pulumi_file.is_file():
        raise UsageError(f"{root} is not a generated project (no {INFRA_DIR / 'Pulumi.yaml'})")
    pulumi = load_yaml(pulumi_file, "Pulumi project file")
    if not isinstance(pulumi, dict) or not pulumi.get("name"):
        raise UsageError(f"{pulumi_file} has no name:")
    return Project(root.resolve(), answers, (root / INFRA_DIR).resolve(), str(pulumi["name"]))


@dataclass(frozen=True)
class Refusal:
    """Something in a project that changes what `pulumi up` would run, so no preview of it can
    be trusted."""

    where: str  # the file, relative to the project
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


#: The file a project adds to declare that it runs its own Pulumi program (see docs/cli.md).
CUSTOM_PROGRAM_FILE = "custom-program.yaml"
POLICY_PACK_DIR = "policy_pack"
#: Pulumi.yaml keys the blueprint writes. Others redirect what runs or with which settings:
#: `main` (another program), `stackConfigDir` (other stack files), `config` (project-wide
#: values the stack files do not show), `plugins`/`packages` (other provider binaries or SDKs),
#: `backend` (other state), `options`, `template`.
PROJECT_KEYS = {"name", "description", "runtime"}
POLICY_PACK_KEYS = {"name", "description", "version", "runtime"}
#: runtime.options the blueprint writes, with the only values it writes: another virtualenv
#: runs other packages; another toolchain installs from other files (poetry, uv: pyproject).
RUNTIME_OPTIONS = {"toolchain": "pip", "virtualenv": "venv"}
#: Top-level keys of a stack file. `environment` imports Pulumi ESC environments, whose values
#: `pulumi up` would use and no reviewer sees.
STACK_FILE_KEYS = {"config", "secretsprovider", "encryptedkey", "encryptionsalt"}
#: Requirement-file options that change where packages come from or what is installed.
_REQUIREMENT_OPTIONS = ("-", "--")
_ALLOWED_REQUIREMENT_OPTIONS = ("--hash",)
#: Packages a program's requirements.txt may name: the blueprint, and for the policy pack the
#: policy SDK. Any other package is code `pulumi up` installs and may run (a `.pth` file runs
#: when Python starts), which no preview has seen.
_OWN_PACKAGES = frozenset({"mlops-blueprint"})
_POLICY_PACK_PACKAGES = frozenset({"mlops-blueprint", "pulumi-policy"})


def program_integrity(project: Project, stack: Stack) -> tuple[list[Refusal], str | None]:
    """The refusals that apply to `stack`'s program, and the declared reason when the project
    runs its own program (None for the blueprint's own).

    Refused: a Pulumi.yaml with keys the blueprint does not write (or runtime options that point
    elsewhere), a second project file (`Pulumi.yml`), stack-file keys beyond config and secrets,
    a requirements.txt that installs from elsewhere, and, unless the project declares a custom
    program in `.cloud/infra/custom-program.yaml`, a `__main__.py` that differs from the
    blueprint's or Python modules beside it (they would shadow the blueprint's package). The
    policy pack is judged for every environment stack and no declaration covers it."""
    refusals: list[Refusal] = []
    custom, declaration_refusals = _custom_program(project)
    refusals += declaration_refusals
    program_dir = stack.program_dir
    template_dir = "bootstrap" if program_dir != project.infra_dir else ""
    refusals += _project_file(project, program_dir / "Pulumi.yaml", PROJECT_KEYS)
    refusals += _stack_file_keys(project, stack, custom)
    refusals += _links(project, program_dir)
    requirements, extra_packages = _requirements(project, program_dir / "requirements.txt")
    refusals += requirements
    refusals += _committed_environment(project, program_dir)
    differs = _program_differs(project, program_dir, template_dir)
    differs += [(project._rel(program_dir / "requirements.txt"), what) for what in extra_packages]
    if differs and custom is None:
        refusals += [
            Refusal(where, f"{what}; a project that runs its own program declares it in "
                    f".cloud/infra/{CUSTOM_PROGRAM_FILE} (reason: ...), and plan and check "
                    "then say so")
            for where, what in differs
        ]
    if template_dir == "":
        refusals += _policy_pack(project)
    return refusals, (custom if differs else None)


def _custom_program(project: Project) -> tuple[str | None, list[Refusal]]:
    path = project.infra_dir / CUSTOM_PROGRAM_FILE
    if not path.exists() and not path.is_symlink():
        return None, []
    where = project._rel(path)
    data = load_yaml(path, "custom program declaration", where)
    reason = data.get("reason") if isinstance(data, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return None, [Refusal(where, "must be a mapping with a non-empty `reason:` saying why "
                              "this project runs its own program")]
    return " ".join(reason.split()), []


def _project_file(project: Project, path: Path, allowed: set[str]) -> list[Refusal]:
    where = project._rel(path)
    refusals = []
    for other in sorted(path.parent.glob("Pulumi.y*ml")):
        if other.name != path.name:
            refusals.append(Refusal(project._rel(other), f"a second project file beside "
                                    f"{path.name}; Pulumi would read one of them"))
    data = load_yaml(path, "Pulumi project file", where)
    if not isinstance(data, dict):
        return [*refusals, Refusal(where, "must be a mapping (name, description, runtime)")]
    for key in sorted(set(data) - allowed, key=str):
        refusals.append(Refusal(where, f"sets {key}:, which the blueprint never writes: it "
                                "changes what `pulumi up` runs or with which settings; remove it"))
    runtime = data.get("runtime")
    if isinstance(runtime, dict):
        name, options = runtime.get("name"), runtime.get("options") or {}
        extra = sorted(set(runtime) - {"name", "options"}, key=str)
    else:
        name, options, extra = runtime, {}, []
    if name != "python":
        refusals.append(Refusal(where, f"runtime is {name!r}; the blueprint's programs run "
                                "on python"))
    if not isinstance(options, dict):
        options = {"options": options}
    for key in extra:
        refusals.append(Refusal(where, f"runtime.{key} is not the blueprint's; remove it"))
    for key, value in options.items():
        if RUNTIME_OPTIONS.get(key) != value:
            refusals.append(Refusal(where, f"runtime.options.{key} is {value!r}; the blueprint "
                                    f"writes {RUNTIME_OPTIONS.get(key, 'nothing')!r} (another "
                                    "value runs other packages)"))
    return refusals


def _stack_file_keys(project: Project, stack: Stack, custom: str | None = None
                     ) -> list[Refusal]:
    where = project._rel(stack.config_file)
    extra = sorted(set(stack.file_keys) - STACK_FILE_KEYS, key=str)
    refusals = [
        Refusal(where, f"sets {key}:, which the blueprint never writes"
                + (" (it imports Pulumi ESC values that `pulumi up` would use and no preview "
                   "sees)" if key == "environment" else "") + "; keep to config:")
        for key in extra
    ]
    # Config of other namespaces configures Pulumi or the providers, not the program:
    # `azure-native:metadataHost` or `environment` send the deploy identity's token to another
    # endpoint, `subscriptionId` deploys elsewhere, `pulumi:disable-default-providers` ...
    namespace = project.pulumi_project if stack.program_dir == project.infra_dir else (
        f"{project.slug}-bootstrap")
    for key, value in stack.config.items():
        key = str(key)
        if not key.startswith(f"{namespace}:") and key not in ALLOWED_OTHER_CONFIG:
            refusals.append(Refusal(where, f"sets {key}: the blueprint's stacks set only "
                                    f"{namespace}:<key> and {', '.join(ALLOWED_OTHER_CONFIG)} "
                                    "(other namespaces configure Pulumi or the Azure provider: "
                                    "another endpoint, subscription or credential)"))
        elif isinstance(value, dict) and custom is None:
            refusals.append(Refusal(where, f"{key} is a {', '.join(map(str, value))} value; the "
                                    "blueprint reads plain values only, and no preview can read "
                                    "an encrypted one"))
    return refusals


#: Config outside the program's namespace that a blueprint stack may set.
ALLOWED_OTHER_CONFIG = ("azure-native:location",)


def _links(project: Project, program_dir: Path) -> list[Refusal]:
    """Symbolic links in the program folder (or the folder itself, or `.cloud`, a link): what
    they point to lives elsewhere in the repository, where CODEOWNERS may give it to others."""
    refusals = []
    chain = [project.root / INFRA_DIR.parent, project.root / INFRA_DIR]
    if program_dir != project.infra_dir:
        chain.append(project.root / INFRA_DIR / program_dir.name)
    for folder in chain:
        if folder.is_symlink():
            refusals.append(Refusal(project._rel(folder), "is a symbolic link: the program's "
                                    "files must live at this path, which CODEOWNERS gives to "
                                    "the platform team"))
    folders = [program_dir] + ([program_dir / POLICY_PACK_DIR] if program_dir
                                == project.infra_dir else [])
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_symlink():
                    refusals.append(Refusal(project._rel(path), "is a symbolic link: keep the "
                                            "file itself here, where CODEOWNERS gives it to "
                                            "the platform team"))
    return refusals


def _requirements(project: Project, path: Path, allowed: frozenset[str] = _OWN_PACKAGES
                  ) -> tuple[list[Refusal], list[str]]:
    """The refusals of a requirements file, which may only name packages from the feed the
    pipeline configures: no index, link, editable, include or URL lines; mlops-blueprint pinned
    to a commit of the template's git repository. And, apart, the lines that install a package
    other than `allowed`: code that `pulumi up` installs beside the program, so a project that
    adds one runs its own program."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    where = project._rel(path)
    if not path.is_file():
        return [Refusal(where, "missing: it pins the blueprint package the program runs")], []
    text = read_text(path, "requirements file", where)
    refusals = []
    extra_packages = []
    pinned = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        # a requirement (which may hold spaces: `name @ URL`), then its `--option`s
        requirement, _, rest = f" {line}".partition(" --")
        requirement = requirement.strip() or parts[0]
        options = [f"--{o}" for o in rest.split(" --") if o] if rest else []
        included = _included(project, path, parts)
        if included is not None:  # `-r ../requirements.txt`: the environments' own file
            nested, _ = _requirements(project, included)
            refusals += [r for r in nested if r.where != project._rel(included)
                         or "must pin" not in r.message]
            pinned = pinned or not any("must pin" in r.message for r in nested)
            continue
        if requirement.startswith(_REQUIREMENT_OPTIONS):
            refusals.append(Refusal(where, f"line {number}: {requirement.split('=')[0]} changes "
                                    "where packages come from; the pipeline sets the feed"))
            continue
        bad = [o for o in options if not o.startswith(_ALLOWED_REQUIREMENT_OPTIONS)]
        if bad:
            refusals.append(Refusal(where, f"line {number}: option {bad[0]} is not allowed"))
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement:
            refusals.append(Refusal(where, f"line {number}: {requirement!r} is not a package "
                                    "requirement (a path or URL installs code from elsewhere)"))
            continue
        name = canonicalize_name(parsed.name)
        if name not in allowed:
            extra_packages.append(
                f"line {number}: installs {name}, code that runs in `pulumi up` and that no "
                "preview ran (a package's .pth file runs when Python starts)")
        is_blueprint = name == "mlops-blueprint"
        if is_blueprint and (parsed.marker is not None or parsed.url is None):
            refusals.append(Refusal(where, f"line {number}: {requirement!r}: mlops-blueprint is "
                                    "required once, without an environment marker, as a git "
                                    "commit (a marker lets pip skip the pin for another line)"))
            pinned = False
        elif is_blueprint:
            # The platform team's git repository at one commit: no index is ever asked for the
            # name, so a same-named package on a public index cannot replace it.
            pinned = bool(parsed.url and _PINNED_GIT_URL.fullmatch(parsed.url))
            source = expected_blueprint_url(project.answers.get("_src_path"))
            if pinned and source and parsed.url.rsplit("@", 1)[0] not in (
                    f"git+{source}", _PLACEHOLDER_BLUEPRINT_URL):
                refusals.append(Refusal(where, f"line {number}: mlops-blueprint comes from "
                                        f"{parsed.url.rsplit('@', 1)[0]!r}, not from the "
                                        f"template's repository git+{source} (_src_path in "
                                        ".copier-answers.yml): another repository runs other "
                                        "code in `pulumi up`"))
        elif parsed.url:
            refusals.append(Refusal(where, f"line {number}: {parsed.name} @ URL installs code "
                                    "from elsewhere"))
    if not pinned:
        refusals.append(Refusal(where, "must pin mlops-blueprint to a commit of the platform "
                                "team's repository (mlops-blueprint @ git+URL@<40-hex commit>), "
                                "the blueprint the program runs"))
    return refusals, extra_packages


def expected_blueprint_url(src_path: object) -> str | None:
    """The git URL the template pins mlops-blueprint to for a project rendered from `src_path`
    (the answers' `_src_path`), as `template/.cloud/infra/requirements.txt.jinja` derives it;
    None when the source is not a remote repository (the template then writes a placeholder
    the team replaces by hand)."""
    src = str(src_path or "")
    for prefix, host in (("gh:", "https://github.com/"), ("gl:", "https://gitlab.com/")):
        if src.startswith(prefix):
            return host + src[len(prefix):]
    if src.startswith(("git+https://", "git+ssh://")):
        return src[4:]
    if src.startswith(("https://", "ssh://")):
        return src
    if re.match(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:", src):
        return "ssh://" + re.sub(r"^([^@:]+@[^:]+):", r"\1/", src)
    return None


#: What the template writes when it cannot name the repository (the install fails on purpose).
_PLACEHOLDER_BLUEPRINT_URL = ("git+https://render-from-the-platform-teams-repository.invalid/"
                              "mlops-blueprint.git")


def _committed_environment(project: Project, program_dir: Path) -> list[Refusal]:
    """A virtualenv committed beside a program: Pulumi creates `venv` only when it is missing
    and pip inside it reads its `pip.conf`, so committed files there (pip.conf, a `.pth` in
    site-packages) decide what `pulumi up` installs and runs. Only files git tracks count (a
    local checkout has its own, untracked virtualenv); outside git nothing can be told."""
    import subprocess

    names = [name for name in ("venv", ".venv") if (program_dir / name).exists()]
    if not names:
        return []
    try:
        listed = subprocess.run(
            ["git", "-C", str(program_dir), "ls-files", "-z", "--", *names],
            capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if listed.returncode != 0:
        return []
    tracked = sorted({f.split("/", 1)[0] for f in listed.stdout.split("\0") if f})
    return [Refusal(project._rel(program_dir / name), "a virtualenv committed to the repository: "
                    "Pulumi would install into it and its pip.conf or .pth files decide what "
                    "`pulumi up` runs; remove it from git (it is created in CI)")
            for name in tracked]


_PINNED_GIT_URL = re.compile(r"git\+(https|ssh)://[^\s@]+(@[^\s@/]+)?[^\s@]*@[0-9a-f]{40}")


def _included(project: Project, path: Path, parts: list[str]) -> Path | None:
    """The file a `-r FILE` line includes, when it is the environments' requirements.txt (which
    is judged itself); None for any other line."""
    if parts[0] in ("-r", "--requirement") and len(parts) == 2:
        target = parts[1]
    elif parts[0].startswith("--requirement=") and len(parts) == 1:
        target = parts[0].split("=", 1)[1]
    else:
        return None
    own = project.infra_dir / "requirements.txt"
    resolved = (path.parent / target).resolve()
    return own if resolved == own.resolve() and path.resolve() != own.resolve() else None


def _program_differs(project: Project, program_dir: Path, template_dir: str
                     ) -> list[tuple[str, str]]:
    """Where the program in `program_dir` is not the blueprint's: its `__main__.py` (compared
    as Python syntax, so comments and layout may differ) and any other Python beside it."""
    differs = []
    main = program_dir / "__main__.py"
    where = project._rel(main)
    own = blueprint_file(".cloud/infra", template_dir, "__main__.py")
    if not main.is_file():
        differs.append((where, "missing"))
    elif own is None:
        differs.append((where, "cannot be compared: the blueprint's own program is missing from "
                        "this installation"))
    elif not same_python(main, own):
        differs.append((where, "differs from the blueprint's own program"))
    differs += [(project._rel(p), "Python code beside the program (it would be imported "
                 "before the installed blueprint package)") for p in _extra_python(program_dir)]
    return differs


def _importable(path: Path) -> bool:
    """A file Python can import or that changes imports: source, bytecode, an extension module
    (`.so`, `.cpython-312-x86_64-linux-gnu.so`), a `.pth` file."""
    from importlib.machinery import all_suffixes

    return path.name.endswith((*all_suffixes(), ".pth"))


def _extra_python(program_dir: Path) -> list[Path]:
    """Python files or packages in the program folder other than `__main__.py` (not in the
    bootstrap and policy pack folders, which are judged as programs of their own), and bytecode
    in `__pycache__` that Python would run without checking it against its source."""
    skip = {"venv", ".venv", "bootstrap", POLICY_PACK_DIR}
    found = []
    for path in sorted(program_dir.iterdir()):
        if path.name in skip:
            continue
        if path.name == "__pycache__" and path.is_dir():
            found += [p for p in sorted(path.rglob("*")) if _unchecked_bytecode(p)]
        elif path.is_dir() and any(_importable(p) for p in path.rglob("*")) or (
                _importable(path) and path.name != "__main__.py"):
            found.append(path)
    return found


def _unchecked_bytecode(path: Path) -> bool:
    """A `.pyc` Python uses without comparing it with its source (PEP 552 hash-based with
    check_source off, or not bytecode at all): committed, it replaces `__main__.py`."""
    if not path.is_file() or not path.name.endswith(".pyc"):
        return False
    try:
        with path.open("rb") as handle:
            header = handle.read(8)
    except OSError:
        return True
    flags = int.from_bytes(header[4:8], "little") if len(header) == 8 else -1
    return flags not in (0, 0b11)  # 0: checked by timestamp, 0b11: checked by hash


def _policy_pack(project: Project) -> list[Refusal]:
    pack = project.infra_dir / POLICY_PACK_DIR
    where = project._rel(pack)
    if not pack.is_dir():
        return [Refusal(where, "missing: the policy pack `pulumi up` runs with is the blueprint's")]
    refusals = _project_file(project, pack / "PulumiPolicy.yaml", POLICY_PACK_KEYS)
    refusals = [r for r in refusals if "second project file" not in r.message]
    requirements, extra_packages = _requirements(project, pack / "requirements.txt",
                                                 _POLICY_PACK_PACKAGES)
    refusals += requirements
    refusals += [Refusal(project._rel(pack / "requirements.txt"), what)
                 for what in extra_packages]
    refusals += _committed_environment(project, pack)
    own = blueprint_file(".cloud/infra", POLICY_PACK_DIR, "__main__.py")
    main = pack / "__main__.py"
    if not main.is_file() or own is None or not same_python(main, own):
        refusals.append(Refusal(project._rel(main), "is not the blueprint's policy pack; a "
                                "project cannot replace the rules it is judged by"))
    refusals += [Refusal(project._rel(p), "Python code beside the policy pack")
                 for p in _extra_python(pack)]
    return refusals


def blueprint_file(*parts: str) -> Path | None:
    """A file of the blueprint's own template (`template/...`): from this source checkout, or
    the copy bundled in the installed package."""
    package = Path(__file__).resolve().parent
    for template in (package.parent.parent / "template", package / "_bundled" / "template"):
        candidate = template.joinpath(*[p for p in parts if p])
        if candidate.is_file():
            return candidate
    return None


def same_python(path: Path, reference: Path) -> bool:
    """Whether two Python files are the same program: equal syntax trees once docstrings are
    dropped (comments, blank lines and quoting do not count)."""
    mine = _syntax(path)
    return mine is not None and mine == _blueprint_syntax(reference)


def _syntax(path: Path) -> str | None:
    import ast

    try:
        module = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(module):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(module, annotate_fields=False)


@functools.cache
def _blueprint_syntax(reference: Path) -> str | None:
    """The blueprint's own files do not change while a command runs (fleet judges hundreds of
    projects against them)."""
    return _syntax(reference)
