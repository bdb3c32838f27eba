"""Template upgrades: a project made at the last release, committed and edited by its team, is
updated to this working tree with `copier update`; the edits survive, the release's migration
runs, and the new stacks preview cleanly.

The releases are a throwaway template repository: v0.1.0 is this repository at LAST_RELEASE
(`git archive`, so no tag is needed in the clone running the tests) and v0.2.0 is the working
tree. A third, synthetic release (v0.3.0) renames a file and drops a stack key, to
prove the migration machinery (tasks/migrations/steps.py) on edits 0.2.0 itself does not need.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
import yaml
from copier_helpers import assert_no_conflicts, commit_all, git, render, update
from typer.testing import CliRunner

from mlops_blueprint.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The last landed release (0.1.0), as a commit of this repository.
LAST_RELEASE = "32e59e7"
TEMPLATE_PARTS = ("copier.yml", "template", "tasks")
SLUG = "customer-churn"
ANSWERS = {"project_name": "Customer Churn", "environments": ["dev", "preprod", "prod"]}
TEAM_CODE = (
    "\n\ndef team_feature(x):\n    \"\"\"Added by the project team.\"\"\"\n    return x * 2\n"
)
TEAM_README = "\n## Our team's notes\n\nOn-call: the churn squad.\n"


def replace_template(repo: Path, source: Path) -> None:
    for part in TEMPLATE_PARTS:
        target = repo / part
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (source / part).is_dir():
            shutil.copytree(source / part, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / part, target)


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> Path:
    """A template repository tagged v0.1.0 (LAST_RELEASE) and v0.2.0 (the working tree)."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", LAST_RELEASE,
             *TEMPLATE_PARTS],
            check=True, capture_output=True,
        ).stdout
    except subprocess.CalledProcessError as error:
        pytest.fail(f"this clone lacks commit {LAST_RELEASE} (a shallow clone?): {error.stderr}")
    repo = tmp_path_factory.mktemp("releases") / "mlops-blueprint"
    repo.mkdir()
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(repo, filter="data") if sys.version_info >= (3, 12) else tar.extractall(repo)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "release 0.1.0")
    git(repo, "tag", "v0.1.0")
    replace_template(repo, REPO_ROOT)
    commit_all(repo, "release 0.2.0")
    git(repo, "tag", "v0.2.0")
    return repo


def blueprint(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def made_by_copier(repo: Path, dest: Path) -> Path:
    return render(dest, ANSWERS, src=repo, vcs_ref="v0.1.0")


def made_by_blueprint_new(repo: Path, dest: Path) -> Path:
    code, _, err = blueprint(
        "new", dest, "--defaults", "--template", repo, "--vcs-ref", "v0.1.0",
        "-d", "project_name=Customer Churn", "-d", "environments=[dev, preprod, prod]",
    )
    assert code == 0, err
    return dest


def stack_file(project: Path, env: str) -> Path:
    return project / ".cloud/infra" / f"Pulumi.{env}.yaml"


def team_edits(project: Path) -> dict[Path, str]:
    """Commit the project, then the team's edits (code, a stack file, the README), committed;
    returns the edited files' contents."""
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "New project")
    train = project / "code/train/train.py"
    train.write_text(train.read_text() + TEAM_CODE)
    prod = stack_file(project, "prod")
    text = prod.read_text()
    text = text.replace(f"# {SLUG}:computeVmSize: Standard_DS3_v2",
                        f"{SLUG}:computeVmSize: Standard_D8s_v3  # sized by the infra team")
    text = text.replace('costCenter: "CC-0000"', 'costCenter: "CC-4242"')
    assert "Standard_D8s_v3" in text and "CC-4242" in text
    prod.write_text(text)
    readme = project / "README.md"  # the team's notes at the end, where teams put them
    readme.write_text(readme.read_text() + TEAM_README)
    commit_all(project, "Team edits")
    return {path: path.read_text() for path in (train, prod, readme)}


def answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


@pytest.mark.parametrize("make", [made_by_copier, made_by_blueprint_new],
                         ids=["copier-copy", "blueprint-new"])
def test_upgrade_from_the_last_release_keeps_team_edits_and_previews(releases, tmp_path, make):
    project = make(releases, tmp_path / "churn")
    assert answers(project)["_commit"] == "v0.1.0"
    edited = team_edits(project)

    update(project, vcs_ref="v0.2.0")

    assert_no_conflicts(project)
    assert answers(project)["_commit"] == "v0.2.0"
    assert answers(project)["environments"] == ANSWERS["environments"]
    for path, text in edited.items():
        if path.suffix == ".yaml":  # stack files belong to the team: byte for byte
            assert path.read_text() == text, path
    # the template changed train.py too: the team's code is merged in, after the release's
    assert (project / "code/train/train.py").read_text().endswith(TEAM_CODE)
    readme = (project / "README.md").read_text()  # the team's notes and the template's news
    assert readme.endswith(TEAM_README)
    assert "## The `blueprint` command" in readme
    # the release's own changes arrived: the package pin and the Renovate config
    pin = (project / ".cloud/infra/requirements.txt").read_text()
    # 0.2.0 pins the blueprint to a git commit of the template (never an index version)
    assert re.search(r"^mlops-blueprint @ git\+\S+@[0-9a-f]{40}$", pin, re.MULTILINE), pin
    assert "mlops-blueprint==" not in pin
    assert (project / "renovate.json").is_file()

    code, out, err = blueprint("plan", project, "--format", "json")
    assert code == 0, err + out
    planned = json.loads(out)
    environments = planned["environments"] if isinstance(planned, dict) else planned
    assert sorted(e["environment"] for e in environments) == sorted(ANSWERS["environments"])


# --- the migration machinery, on a synthetic release ----------------------------------------

V0_3_0 = '''
import sys

from steps import DropKey, MoveFile, run

def default_access(env, value, ctx):
    return value == ("Disabled" if ctx.kinds.get(env) == "prod" else "Enabled")

CHANGES = [
    MoveFile("notebooks/README.md", "notebooks/GUIDE.md"),
    DropKey("publicNetworkAccess", "the default follows the kind",
            only_if=default_access, comments=("workspace network access",)),
]

if __name__ == "__main__":
    sys.exit(run(CHANGES))
'''


@pytest.fixture(scope="module")
def release_with_migration(releases, tmp_path_factory) -> Path:
    """releases + v0.3.0: notebooks/README.md renamed (and changed), one stack key dropped
    where it holds the default; the migration says so in three lines."""
    repo = tmp_path_factory.mktemp("release-0.3") / "mlops-blueprint"
    shutil.copytree(releases, repo)
    old = repo / "template/notebooks/README.md"
    new = repo / "template/notebooks/GUIDE.md"
    new.write_text("<!-- Template 0.3.0: renamed from README.md. -->\n" + old.read_text())
    old.unlink()
    (repo / "tasks/migrations/v0_3_0.py").write_text(V0_3_0)
    config = (repo / "copier.yml").read_text()
    entry = config.split("_migrations:\n", 1)[1].split("\n\n", 1)[0]
    config = config.replace(entry, entry + "\n" + entry.replace("0.2.0", "0.3.0").replace(
        "0_2_0", "0_3_0"), 1)
    (repo / "copier.yml").write_text(config)
    versions = [m["version"] for m in yaml.safe_load(config)["_migrations"]]
    assert versions == ["v0.2.0", "v0.3.0"]
    commit_all(repo, "release 0.3.0")
    git(repo, "tag", "v0.3.0")
    return repo


def test_a_release_migration_carries_team_edits_across_a_rename_and_drops_a_default_key(
    release_with_migration, tmp_path, capfd
):
    project = made_by_copier(release_with_migration, tmp_path / "churn")
    team_edits(project)  # each edit is checked below
    smoke = project / "notebooks/README.md"
    smoke.write_text(smoke.read_text() + "\nTeam: notebooks are reviewed like code.\n")
    preprod = stack_file(project, "preprod")
    preprod.write_text(preprod.read_text().replace(
        f'{SLUG}:publicNetworkAccess: "Enabled"', f'{SLUG}:publicNetworkAccess: "Disabled"'))
    commit_all(project, "Team: schedule and preprod network")
    capfd.readouterr()

    update(project, vcs_ref="v0.3.0")

    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("migrate:")]
    assert_no_conflicts(project)
    # the rename: the new template file with the team's edit, the old file gone
    renamed = (project / "notebooks/GUIDE.md").read_text()
    assert renamed.startswith("<!-- Template 0.3.0: renamed from README.md. -->\n")
    assert renamed.endswith("\nTeam: notebooks are reviewed like code.\n")
    assert not smoke.exists()
    # the dropped key: gone where it held the default, kept where the team chose otherwise
    dev = yaml.safe_load(stack_file(project, "dev").read_text())["config"]
    assert f"{SLUG}:publicNetworkAccess" not in dev
    assert "workspace network access" not in stack_file(project, "dev").read_text()
    kept = yaml.safe_load(preprod.read_text())["config"]
    assert kept[f"{SLUG}:publicNetworkAccess"] == "Disabled"
    # the other team edits
    assert (project / "code/train/train.py").read_text().endswith(TEAM_CODE)
    assert (project / "README.md").read_text().endswith(TEAM_README)
    prod = yaml.safe_load(stack_file(project, "prod").read_text())["config"]
    assert f"{SLUG}:publicNetworkAccess" not in prod  # "Disabled" is prod's default (--kinds)
    assert prod[f"{SLUG}:computeVmSize"] == "Standard_D8s_v3"
    assert prod[f"{SLUG}:costCenter"] == "CC-4242"
    assert any("GUIDE.md" in line and "carried over" in line for line in said), said
    assert any("kept" in line and "Pulumi.preprod.yaml" in line for line in said), said

    code, out, err = blueprint("plan", project)
    assert code == 0, err + out


def test_a_fresh_copy_of_a_release_runs_no_migration(release_with_migration, tmp_path, capfd):
    project = tmp_path / "fresh"
    render(project, ANSWERS, src=release_with_migration, vcs_ref="v0.3.0")
    assert "migrate:" not in capfd.readouterr().err
    assert answers(project)["_commit"] == "v0.3.0"
    dev = yaml.safe_load(stack_file(project, "dev").read_text())["config"]
    assert dev[f"{SLUG}:publicNetworkAccess"] == "Enabled"  # written by the task, not migrated


# --- versions stay in step -------------------------------------------------------------------

def test_versions_agree_and_every_migration_has_its_script():
    import blueprint_infra
    import mlops_blueprint

    text = (REPO_ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version\s*=\s*"([^"]+)"', text.split("[project]", 1)[1],
                        re.MULTILINE).group(1)
    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
    assert config["blueprint_version"]["default"] == version
    assert mlops_blueprint.__version__ == blueprint_infra.__version__ == version
    for migration in config["_migrations"]:
        tag = migration["version"]
        assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), tag
        script = f"tasks/migrations/{tag[1:].replace('.', '_').join(['v', '.py'])}"
        assert script in " ".join(migration["command"]), migration
        assert (REPO_ROOT / script).is_file(), script


# --- the edits, one by one, on a generated project's stack files ----------------------------

@pytest.fixture
def steps_module():
    sys.path.insert(0, str(REPO_ROOT / "tasks/migrations"))
    try:
        import steps
        import v0_2_0

        yield steps, v0_2_0
    finally:
        sys.path.remove(str(REPO_ROOT / "tasks/migrations"))


@pytest.fixture
def stacks_project(rendered_project, tmp_path):
    project = shutil.copytree(rendered_project(**ANSWERS), tmp_path / "p")
    return Path(project)


def context(steps, project: Path):
    kinds = {"dev": "dev", "preprod": "staging", "prod": "prod"}
    return steps.Context(project, SLUG, kinds, None, None)


def test_dropping_kind_keeps_a_stricter_kind_and_the_teams_comments(steps_module, stacks_project):
    steps, release = steps_module
    preprod = stack_file(stacks_project, "preprod")
    preprod.write_text(preprod.read_text().replace(
        f'{SLUG}:kind: "staging"', f'{SLUG}:kind: "prod"  # stricter, on purpose'))
    dev = stack_file(stacks_project, "dev")
    dev.write_text(dev.read_text().replace("config:\n", "config:\n  # Team: reviewed 2026-11\n"))
    before = {env: yaml.safe_load(stack_file(stacks_project, env).read_text())["config"]
              for env in ("dev", "preprod", "prod")}
    drop = steps.DropKey("kind", "the kind follows the stack name",
                         only_if=release.redundant_kind, comments=release.KIND_COMMENTS)

    for _ in range(2):  # idempotent
        drop.apply(context(steps, stacks_project))

    for env in ("dev", "preprod", "prod"):
        text = stack_file(stacks_project, env).read_text()
        after = yaml.safe_load(text)["config"]
        expected = {k: v for k, v in before[env].items()
                    if not (k == f"{SLUG}:kind" and env != "preprod")}
        assert after == expected, env
        if env != "preprod":  # the template's comment above a dropped key goes with it
            assert not any(comment in text for comment in release.KIND_COMMENTS), env
    assert "# Team: reviewed 2026-11" in dev.read_text()
    assert "stricter, on purpose" in preprod.read_text()


def test_renaming_a_key_renames_the_commented_example_too(steps_module, stacks_project):
    steps, _ = steps_module
    prod = stack_file(stacks_project, "prod")
    prod.write_text(prod.read_text().replace('costCenter: "CC-0000"', 'costCenter: "CC-4242"'))
    before = yaml.safe_load(prod.read_text())["config"]

    rename = steps.RenameKey("costCenter", "costCentre")
    rename.apply(context(steps, stacks_project))
    rename.apply(context(steps, stacks_project))
    steps.RenameKey("computeVmSize", "computeSku").apply(context(steps, stacks_project))

    after = yaml.safe_load(prod.read_text())["config"]
    assert after.pop(f"{SLUG}:costCentre") == "CC-4242"
    assert after == {k: v for k, v in before.items() if k != f"{SLUG}:costCenter"}
    assert f"# {SLUG}:computeSku: Standard_DS3_v2" in prod.read_text()
    assert "computeVmSize" not in prod.read_text()


def test_moving_a_file_the_template_does_not_render(steps_module, stacks_project):
    steps, _ = steps_module
    notes = stacks_project / "notes/runbook.md"
    notes.parent.mkdir()
    notes.write_text("ours\n")
    steps.MoveFile("notes/runbook.md", "docs/runbook.md").apply(context(steps, stacks_project))
    assert (stacks_project / "docs/runbook.md").read_text() == "ours\n"
    assert not notes.exists()


# --- what the project's README says ----------------------------------------------------------

def test_readme_says_how_to_install_blueprint_and_how_upgrades_arrive(rendered_project):
    project = rendered_project(**ANSWERS)
    readme = (project / "README.md").read_text()
    install = "python -m pip install -r .cloud/infra/requirements.txt"
    assert install in readme
    assert readme.index(install) < readme.index("blueprint plan\n")
    # ... and nothing else: that file pins a git commit, so no package feed or extra index (the
    # generated CI refuses --extra-index-url, and a second index could shadow the package)
    for said in (readme, yaml.safe_load((REPO_ROOT / "copier.yml").read_text())[
            "_message_after_copy"]):
        assert "EXTRA_INDEX" not in said and "package feed" not in said
    # that file installs the distribution whose console script is `blueprint`
    requirements = (project / ".cloud/infra/requirements.txt").read_text().splitlines()
    assert any(line.startswith("mlops-blueprint @ git+") for line in requirements)
    scripts = (REPO_ROOT / "pyproject.toml").read_text().split("[project.scripts]", 1)[1]
    assert re.search(r'^blueprint = "mlops_blueprint\.cli:main"$', scripts, re.MULTILINE)
    assert "renovate.json" in readme and (project / "renovate.json").is_file()
