"""The CI/CD rules `blueprint check` applies to a generated project's pipeline files.

They are what the generated CI/CD promises (docs/platform-teams.md), judged on the files as the
provider will run them (reusable workflows and templates resolved), so a change that weakens one
fails the project's own CI:

- GitHub: every action pinned by a full commit SHA; no checkout keeps the token; no secret and no
  `write-all`; a job bound to a GitHub environment runs only on `refs/heads/main` and never from a
  `pull_request_target` or `workflow_run` workflow; no job signs in as a deploy identity without
  its environment; a job without an environment never deploys and never previews a prod stack;
  the Pulumi CLI version is pinned; CODEOWNERS leaves `.github/` and `.cloud/infra/` to the
  platform team alone.
- Azure DevOps: a job that uses a deploy service connection runs only on main and never for a
  pull request; the prod connection only in a deployment job of the prod environment; a job a
  pull request can run uses no connection but the read-only preview; no checkout keeps
  credentials; no download piped into a shell.
- Both: `mlops-blueprint` is a git reference pinned to a commit, never from an extra index.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path

from mlops_blueprint.ci_files import (
    CIFileError,
    ado_jobs,
    called_jobs,
    environment_name,
    expand,
    is_reusable,
    job_steps,
    steps_using,
    triggers,
    workflows,
)

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
ON_MAIN = "github.ref == 'refs/heads/main'"
ADO_ON_MAIN = "eq(variables['Build.SourceBranch'], 'refs/heads/main')"
ADO_NOT_PR = "ne(variables['Build.Reason'], 'PullRequest')"
PINNED_BLUEPRINT = re.compile(r"^mlops-blueprint\s*@\s*git\+\S+@[0-9a-f]{40}$")
#: Where pip takes packages from, set in a CI file: an index, a link page, a config file.
OTHER_PACKAGE_SOURCE = re.compile(
    r"PIP_INDEX_URL|PIP_FIND_LINKS|PIP_CONFIG_FILE|UV_(DEFAULT_|EXTRA_)?INDEX(_URL)?|"
    r"--index-url|--find-links|\bpip3?\b.*\s-[if]\s|\bpip3?\s+config\b|pip\.conf",
    re.IGNORECASE)
#: Environment variables of the Azure provider (and Azure SDKs) a pipeline file may set; others
#: (ARM_METADATA_HOSTNAME, ARM_ENVIRONMENT, ARM_OIDC_REQUEST_URL, ARM_CLIENT_SECRET,
#: AZURE_AUTHORITY_HOST...) choose where the token is asked for or sent.
ARM_VARIABLE = re.compile(r"\b(ARM_[A-Z_]+|AZURE_AUTHORITY_HOST|AZURE_FEDERATED_TOKEN_FILE)\b")
ARM_VARIABLES_ALLOWED = frozenset({"ARM_USE_OIDC", "ARM_CLIENT_ID", "ARM_TENANT_ID",
                                   "ARM_SUBSCRIPTION_ID", "ARM_OIDC_TOKEN"})
#: Stack config given on the command line or to pulumi/actions instead of the stack file.
PULUMI_CONFIG_OVERRIDE = re.compile(
    r"\bpulumi\b[^|;&]*\s(-c|--config|--config-file|--config-path)([\s=]|$)|"
    r"\bpulumi\s+config\s+(set|set-all|cp|rm)\b|PULUMI_CONFIG\b|^config-map:",
    re.IGNORECASE)
#: An Azure DevOps template or `extends:` from another repository (`file.yml@alias`).
REMOTE_TEMPLATE = re.compile(r"\btemplate:\s*['\"]?[^\s'\"#]+@[\w.-]+")
PIPED_TO_SHELL = re.compile(r"\|\s*(sudo\s+)?(ba|z)?sh\b")
WRITING_COMMANDS = {"up", "destroy", "refresh", "import"}
CONNECTION_INPUTS = ("azureSubscription", "connectedServiceNameARM",
                     "azureResourceManagerConnection", "ConnectedServiceName")

Finding = tuple[str, str]  # (file relative to the project, message)


def _requires(condition: object, term: str) -> bool:
    """True when `condition` requires `term`: nothing can bypass it (no `||`, `!` or
    `or(`/`not(`/`xor(` anywhere), and on GitHub the term is one of the conditions joined by
    `&&` at the top level, word for word (so `term == false`, or the term inside a string
    literal, is not it). A condition that needs an alternative path requires nothing."""
    text = " ".join(str(condition or "").split())
    if re.search(r"\|\||!(?!=)|\b(or|not|xor)\(", text, re.IGNORECASE):
        return False
    if term.startswith("github."):
        text = text.strip()
        if text.startswith("${{") and text.endswith("}}"):
            text = text[3:-2].strip()
        return term in _conjuncts(text)
    return term in text


def _conjuncts(expression: str) -> list[str]:
    """The operands of the top-level `&&`s of a GitHub expression (outside parentheses and
    '...' strings, where '' is a quote), each stripped of enclosing parentheses."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(expression):
        char = expression[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and expression.startswith("&&", i):
            parts.append(expression[start:i])
            start = i + 2
            i += 1
        i += 1
    parts.append(expression[start:])
    out = []
    for part in parts:
        part = part.strip()
        while part.startswith("(") and part.endswith(")") and _conjuncts(part[1:-1]) == [
                part[1:-1].strip()] and part.count("(") == part.count(")"):
            part = part[1:-1].strip()
        out.append(part)
    return out


def _kind(environment: str) -> str:
    from blueprint_infra import naming

    return naming.environment_kind(environment)


def check_ci(root: Path, slug: str, provider: str, platform_team: str = "") -> list[Finding]:
    """Findings for the CI files of `provider` and the blueprint requirement files (and, on
    GitHub with `platform_team` given, the CODEOWNERS rules of the files that decide access)."""
    findings = list(_requirements(root))
    try:
        if provider == "github":
            if platform_team:
                findings += _codeowners(root, platform_team)
            findings += _github(root)
        elif provider == "azure-devops":
            findings += _azure_devops(root, slug)
    except CIFileError as error:
        folder = ".github/workflows" if provider == "github" else ".ado"
        findings.append((folder, str(error)))
    return findings


# --- both ------------------------------------------------------------------------------------

def _requirements(root: Path) -> Iterator[Finding]:
    infra = root / ".cloud/infra"
    for path in sorted(infra.rglob("requirements*.txt")):
        if "venv" in path.relative_to(infra).parts:
            continue
        where = str(path.relative_to(root))
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if "extra-index-url" in line or line.startswith(("--index-url", "-i ", "--find-links")):
                yield where, (f"`{line}`: the blueprint comes from the platform team's git "
                              "repository at a pinned commit, never from a package index")
            elif re.match(r"^mlops[-_.]blueprint\b", line, re.IGNORECASE) and not (
                    PINNED_BLUEPRINT.match(line)):
                yield where, (f"`{line}` can be replaced from a package index: pin it as "
                              "`mlops-blueprint @ git+<platform repository>@<40-hex commit>`")


def _ci_text_findings(where: str, text: str) -> Iterator[Finding]:
    for line in text.splitlines():
        code = line.strip()
        if code.startswith("#"):
            continue
        if "extra-index-url" in code.lower() or "PIP_EXTRA_INDEX_URL" in code:
            yield where, f"`{code}`: never install from an extra package index"
        elif OTHER_PACKAGE_SOURCE.search(code):
            yield where, (f"`{code}`: chooses where pip installs from (the blueprint's "
                          "dependencies run in `pulumi up`); the repository never sets an index")
        for variable in sorted(set(ARM_VARIABLE.findall(code)) - ARM_VARIABLES_ALLOWED):
            yield where, (f"`{code}`: sets {variable}, which points the Azure provider or "
                          "Pulumi at another endpoint, tenant or credential (the deploy "
                          "identity's token would go there); the pipelines set only "
                          f"{', '.join(sorted(ARM_VARIABLES_ALLOWED))}")
        if PULUMI_CONFIG_OVERRIDE.search(code):
            yield where, (f"`{code}`: sets stack config outside the stack files, which `pulumi "
                          "up` would use and no review or preview sees")
        if PIPED_TO_SHELL.search(code):
            yield where, f"`{code}`: a download piped into a shell; install a pinned, verified file"


# --- GitHub ----------------------------------------------------------------------------------

def _github(root: Path) -> list[Finding]:
    findings: list[Finding] = []
    folder = root / ".github"
    actions: list[Finding] = []
    for path in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
        where = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8", errors="replace")
        findings += _ci_text_findings(where, text)
        if re.search(r"\$\{\{[^}]*\bsecrets\b", text):
            findings.append((where,
                             "uses a secret: Azure sign-in is OIDC only, the project keeps none"))
        if path.name in ("action.yml", "action.yaml"):
            actions += _action_findings(where, text)
    findings += actions
    for name, workflow in workflows(root).items():
        where = f".github/workflows/{name}"
        findings += [(where, m) for m in _workflow_findings(workflow)]
        if is_reusable(workflow) and set(triggers(workflow)) == {"workflow_call"}:
            continue  # judged where it is called, with the caller's inputs
        unsafe_triggers = MAIN_REF_TRIGGERS & set(triggers(workflow))
        for job_name, caller in workflow["jobs"].items():
            runs = called_jobs(root, caller) if "uses" in caller else [caller]
            for job in runs:
                findings += [(where, f"{job_name}: {m}")
                             for m in _job_path_findings(caller, job, unsafe_triggers)]
    return findings


#: Files whose owner decides who may do what in Azure and what runs with the deploy identities.
OWNED_PATHS = (".github/workflows/infra.yml", ".github/workflows/pulumi-up.yml",
               ".github/scripts/protect_environments.py", ".github/CODEOWNERS",
               ".github/actions/deploy/action.yml",
               ".cloud/infra/__main__.py", ".cloud/infra/Pulumi.prod.yaml",
               ".cloud/infra/Pulumi.yaml", ".cloud/infra/requirements.txt",
               ".cloud/infra/custom-program.yaml", ".cloud/infra/policy_pack/__main__.py",
               ".cloud/infra/bootstrap/__main__.py", ".cloud/infra/bootstrap/Pulumi.platform.yaml",
               ".copier-answers.yml")


def _codeowners_match(pattern: str, path: str) -> bool:
    """The subset of CODEOWNERS (gitignore-style) patterns that matters here."""
    anchored = pattern.startswith("/")
    pattern = pattern.strip("/") if pattern not in ("*", "/*") else "*"
    if pattern in ("*", "**"):
        return True
    if "*" in pattern:
        candidates = [path] if anchored else [path, *path.split("/")]
        return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)
    return path == pattern or path.startswith(pattern + "/")


def _codeowners(root: Path, team: str) -> Iterator[Finding]:
    where = ".github/CODEOWNERS"
    path = root / where
    if not path.is_file():
        yield where, f"missing: {team} must own .github/ and .cloud/infra/"
        return
    rules = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pattern, *owners = line.split()
            rules.append((pattern, owners))
    for owned in OWNED_PATHS:
        last = [owners for pattern, owners in rules if _codeowners_match(pattern, owned)]
        # the last matching rule wins
        if not last or last[-1] != [team]:
            owner = " ".join(last[-1]) if last and last[-1] else "nobody"
            yield where, f"{owned} is owned by {owner}, not {team} alone (the last match wins)"


def _unpinned(uses: str) -> bool:
    return bool(uses) and not uses.startswith("./") and not SHA_PIN.match(uses) and not (
        uses.startswith("docker://") and "@sha256:" in uses)


def _action_findings(where: str, text: str) -> Iterator[Finding]:
    """A composite action kept in the repository: the actions its steps use are pinned too."""
    import yaml

    try:
        action = yaml.safe_load(text)
    except yaml.YAMLError:
        yield where, "not readable YAML"
        return
    runs = action.get("runs") if isinstance(action, dict) else None
    for step in (runs or {}).get("steps") or [] if isinstance(runs, dict) else []:
        uses = str(step.get("uses", "")) if isinstance(step, dict) else ""
        if _unpinned(uses):
            yield where, f"`{uses}` is not pinned by a full commit SHA"


#: Expressions a pull request's author writes (title, body, branch name, commit messages...):
#: inside a `run:` script GitHub pastes them in before the shell reads it.
UNTRUSTED_EXPRESSION = re.compile(
    r"\$\{\{[^}]*\b(github\.head_ref|github\.event\.(pull_request|issue|comment|review|"
    r"review_comment|head_commit|commits|discussion|pages|workflow_run)\b(?!\.number\b)"
    r"(?!\.(base|head)\.sha\b))[^}]*\}\}")
#: Triggers that run main's workflow with main's ref for an event someone without write access
#: can cause (a fork's pull request, a comment, an issue): `github.ref` is main, so the main-only
#: condition holds, and the job can check out and run the pull request's code.
MAIN_REF_TRIGGERS = {"pull_request_target", "workflow_run", "issue_comment", "issues",
                     "discussion", "discussion_comment"}
#: Triggers a pull request's author controls the code of.
PULL_REQUEST_TRIGGERS = {"pull_request", "pull_request_target", "pull_request_review",
                         "pull_request_review_comment"}


def _workflow_findings(workflow: dict) -> Iterator[str]:
    if workflow.get("permissions") == "write-all":
        yield "permissions: write-all"
    from_pull_requests = bool(PULL_REQUEST_TRIGGERS & set(triggers(workflow)))
    for job_name, job in workflow["jobs"].items():
        if not isinstance(job, dict):
            continue
        runs_on = job.get("runs-on")
        labels = runs_on.get("labels") if isinstance(runs_on, dict) else runs_on
        labels = labels if isinstance(labels, list) else [labels]
        if from_pull_requests and ("self-hosted" in [str(x).lower() for x in labels] or (
                isinstance(runs_on, dict) and runs_on.get("group"))):
            yield (f"{job_name}: a pull request's code runs on a self-hosted runner, where it "
                   "can stay and wait for the next deployment's token; use GitHub-hosted runners "
                   "for pull requests")
        for step in job.get("steps") or []:
            script = str(step.get("run", "")) if isinstance(step, dict) else ""
            for match in UNTRUSTED_EXPRESSION.finditer(script):
                yield (f"{job_name}: `{match.group(0)}` in a run script: its text is pasted "
                       "into the shell (script injection); pass it through env: instead")
        if job.get("permissions") == "write-all":
            yield f"{job_name}: permissions: write-all"
        if job.get("secrets") is not None:
            yield f"{job_name}: passes secrets to a reusable workflow"
        for step in job.get("steps") or []:
            uses = str(step.get("uses", "")) if isinstance(step, dict) else ""
            if _unpinned(uses):
                yield f"{job_name}: `{uses}` is not pinned by a full commit SHA"
        for step in steps_using(job, "actions/checkout"):
            if (step.get("with") or {}).get("persist-credentials") is not False:
                yield f"{job_name}: checkout without `persist-credentials: false`"
        for step in steps_using(job, "pulumi/actions"):
            if not (step.get("with") or {}).get("pulumi-version"):
                yield f"{job_name}: pulumi/actions without a pinned `pulumi-version`"
            if (step.get("with") or {}).get("config-map"):
                yield (f"{job_name}: pulumi/actions with `config-map`: stack config outside "
                       "the stack files, which no review or preview sees")


def _job_path_findings(caller: dict, job: dict, unsafe_triggers: set[str]) -> Iterator[str]:
    environment = environment_name(job)
    text = str(job)
    if environment is not None:
        if not _requires(caller.get("if", ""), ON_MAIN):
            yield (f"bound to environment {environment!r} but not restricted to main "
                   f"(`if:` must contain `{ON_MAIN}`)")
        if unsafe_triggers:
            yield (f"bound to environment {environment!r} in a workflow triggered by "
                   f"{sorted(unsafe_triggers)}, which runs with main's ref")
        return
    if "vars.AZURE_CLIENT_ID" in text:
        yield "signs in as an environment's deploy identity without binding its environment"
    for login in steps_using(job, "azure/login"):
        client = str((login.get("with") or {}).get("client-id", ""))
        if "AZURE_PREVIEW_CLIENT_ID" not in client:
            yield f"signs in as {client!r} without an environment: only the preview identity may"
    for step in steps_using(job, "pulumi/actions"):
        inputs = step.get("with") or {}
        command, stack = str(inputs.get("command", "")), str(inputs.get("stack-name", ""))
        if command in WRITING_COMMANDS:
            yield f"`pulumi {command}` without an environment (deployments bind their environment)"
        if command == "preview" and stack and _kind(stack) == "prod":
            yield f"previews prod stack {stack!r} with a cloud identity: prod is previewed offline"
    env_vars = job.get("env") or {}
    backend = str(env_vars.get("PULUMI_BACKEND_URL", ""))
    match = re.search(r"pulumi-state-([a-z0-9]+)", backend)
    if match and _kind(match.group(1)) == "prod":
        yield f"reads prod's state ({backend}) without an environment"


# --- Azure DevOps ----------------------------------------------------------------------------

def _connections(job: dict) -> set[str]:
    found = set()
    for step in job_steps(job):
        inputs = step.get("inputs") or {} if isinstance(step, dict) else {}
        found |= {str(inputs[key]) for key in CONNECTION_INPUTS if inputs.get(key)}
    return found


def _stacks_named(script: str) -> list[str]:
    """The stacks a shell script names to pulumi (`--stack X`, `--stack=X`, `-s X`,
    `pulumi stack select X`) and the state containers it logs in to (`pulumi-state-X`)."""
    found = []
    for command in re.split(r"[\n|;&]+", script):
        words = command.replace("=", " ").split()
        if "pulumi" not in words:
            continue
        words = words[words.index("pulumi"):]
        for i, word in enumerate(words[:-1]):
            if word in ("--stack", "-s"):
                found.append(words[i + 1])
        if words[1:3] == ["stack", "select"]:
            rest = words[3:]
            found += [w for i, w in enumerate(rest) if not w.startswith("-") and not (
                i and rest[i - 1] in ("--secrets-provider", "--stack", "-s"))]
    found += re.findall(r"pulumi-state-([a-z0-9]+)", script)
    return [s.strip("'\"").rsplit("/", 1)[-1] for s in found]


def _azure_devops(root: Path, slug: str) -> list[Finding]:
    findings: list[Finding] = []
    folder = root / ".ado"
    for path in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
        where = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8", errors="replace")
        findings += _ci_text_findings(where, text)
        for line in text.splitlines():
            if REMOTE_TEMPLATE.search(line.split(" #", 1)[0]):
                findings.append((where, (
                    f"`{line.strip()}`: a template from another repository, which this check "
                    "cannot read; keep the pipeline's templates in .ado/")))
    preview = f"{slug}-preview"
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        where = str(path.relative_to(root))
        pipeline = expand(root, path.name)
        for stage, job in ado_jobs(pipeline):
            name = f"{stage.get('stage') or 'jobs'}/{job.get('job') or job.get('deployment')}"
            condition = f"{stage.get('condition', '')} {job.get('condition', '')}"
            for step in job_steps(job):
                if isinstance(step, dict) and str(step.get("persistCredentials", "")).lower() \
                        == "true":
                    findings.append((where, f"{name}: checkout with persistCredentials: true"))
            for connection in sorted(_connections(job)):
                if re.search(r"\$[({\[]", connection):
                    findings.append((where, (
                        f"{name}: service connection {connection!r} is named by an expression; "
                        "name it literally, so the check (and a reviewer) can tell whose "
                        "identity the job uses")))
                    continue
                connection = connection.strip().lower()
                if connection == preview:
                    for step in job_steps(job):
                        script = str((step.get("inputs") or {}).get("inlineScript", ""))
                        for stack in _stacks_named(script):
                            if _kind(stack) == "prod":
                                findings.append((where, f"{name}: the preview connection "
                                                        f"touches prod stack {stack!r}"))
                    continue
                if not (_requires(condition, ADO_ON_MAIN) and _requires(condition, ADO_NOT_PR)):
                    findings.append((where, (
                        f"{name}: uses service connection {connection!r} but its condition does "
                        f"not restrict it to main outside pull requests (`{ADO_ON_MAIN}` and "
                        f"`{ADO_NOT_PR}`)")))
                env = connection.removeprefix(f"{slug.lower()}-")
                if connection.startswith(f"{slug.lower()}-") and _kind(env) == "prod":
                    bound = job.get("environment")
                    bound = bound.get("name") if isinstance(bound, dict) else bound
                    if "deployment" not in job or str(bound).strip().lower() != connection:
                        findings.append((where, (
                            f"{name}: uses prod's service connection {connection!r} outside a "
                            f"deployment job of environment {connection!r}")))
    return findings
