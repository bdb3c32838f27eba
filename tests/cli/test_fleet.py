"""`blueprint fleet`: many projects' versions, verdicts, placeholders and conflicts at a glance.

A throwaway template repository is tagged v0.1.0, v0.2.0 and v0.3.0. Project `old` is made at
v0.1.0 and its team granted a group Contributor in prod; project `tidy` says it is at v0.3.0,
has its prod deployer filled in, and carries an unresolved merge (a conflict block and a `.rej`
file); `notes` is a folder that is no project at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import blueprint, git, load_yaml, render
from test_plan import OPS_GROUP, add_ops_grant

from mlops_blueprint import fleet_view

DEPLOYER = "9d2b1c3e-5f60-4a7b-8c9d-0e1f2a3b4c5d"



@pytest.fixture(scope="module")
def template_v3(template_repo, tmp_path_factory) -> Path:
    """The template repository with two more releases after v0.1.0."""
    repo = Path(shutil.copytree(template_repo, tmp_path_factory.mktemp("tpl") / "template"))
    for tag in ("v0.2.0", "v0.3.0"):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"release {tag}")
        git(repo, "tag", tag)
    return repo


@pytest.fixture(scope="module")
def fleet(template_v3, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fleet")
    old = render(root / "old", {"project_name": "Old Churn", "environments": ["dev", "prod"]},
                 src=template_v3, vcs_ref="v0.1.0")
    add_ops_grant(old)

    tidy = render(root / "tidy", {"project_name": "Tidy Churn", "environments": ["dev", "prod"]},
                  src=template_v3, vcs_ref="v0.1.0")
    answers = tidy / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("_commit: v0.1.0", "_commit: v0.3.0"))
    prod = tidy / ".cloud/infra/Pulumi.prod.yaml"
    slug = load_yaml(answers)["project_slug"]
    text = prod.read_text()
    line = next(x for x in text.splitlines() if f"{slug}:deployerObjectId:" in x)
    prod.write_text(text.replace(line, f'  {slug}:deployerObjectId: "{DEPLOYER}"'))
    readme = tidy / "README.md"
    readme.write_text(readme.read_text() + "\n<<<<<<< before updating\nours\n=======\ntheirs\n"
                      ">>>>>>> after updating\n")
    (tidy / "pipelines" / "train.py.rej").write_text("@@ -1 +1 @@\n-a\n+b\n")

    notes = root / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("not a project\n")
    broken = Path(shutil.copytree(tidy, root / "broken"))
    (broken / ".copier-answers.yml").write_text("project_slug: [unclosed\n")
    return {"old": old, "tidy": tidy, "notes": notes, "broken": broken, "root": root}


@pytest.fixture(scope="module")
def report(fleet):
    run = blueprint("fleet", fleet["old"], fleet["tidy"], fleet["notes"], fleet["broken"],
                    "--format", "json")
    assert run.exit_code == 2, run.stderr  # one folder could not be read
    data = json.loads(run.stdout)
    return data, {Path(p["path"]).name: p for p in data["projects"]}


def test_template_versions_and_how_far_behind(report):
    _, by_name = report
    assert by_name["old"]["template"]["version"] == "v0.1.0"
    assert (by_name["old"]["template"]["behind"], by_name["old"]["template"]["newest"]) == (
        2, "v0.3.0")
    assert by_name["tidy"]["template"]["behind"] == 0
    assert by_name["old"]["template"]["error"] is None


def test_each_stack_has_its_verdict_and_the_prod_grant_is_named(report):
    _, by_name = report
    verdicts = {s["environment"]: s["verdict"] for s in by_name["old"]["stacks"]}
    assert verdicts == {"dev": "passes", "prod": "violates"}
    [violation] = next(s for s in by_name["old"]["stacks"] if s["environment"] == "prod")[
        "violations"]
    assert violation["policy"] == "prod-no-human-write-roles" and OPS_GROUP in violation["message"]
    assert {s["verdict"] for s in by_name["tidy"]["stacks"]} == {"passes"}
    assert by_name["old"]["custom_program"] == "the ops group's access"
    assert by_name["tidy"]["custom_program"] is None
    assert by_name["old"]["environments"] == ["dev", "prod"]


def test_placeholders_left_and_conflicts_are_listed(report):
    _, by_name = report
    old = {(Path(p["file"]).name, p["key"]) for p in by_name["old"]["placeholders"]}
    tidy = {(Path(p["file"]).name, p["key"]) for p in by_name["tidy"]["placeholders"]}
    assert ("Pulumi.prod.yaml", "deployerObjectId") in old
    assert ("Pulumi.prod.yaml", "deployerObjectId") not in tidy
    assert by_name["old"]["conflicts"] == []
    conflicts = {(c["file"], c["line"]) for c in by_name["tidy"]["conflicts"]}
    readme_line = (Path(by_name["tidy"]["path"]) / "README.md").read_text().splitlines().index(
        "<<<<<<< before updating") + 1
    assert conflicts == {("README.md", readme_line), ("pipelines/train.py.rej", None)}


def test_unreadable_folders_are_reported_and_the_others_still_run(report):
    data, by_name = report
    assert by_name["notes"]["readable"] is False
    assert "not a generated project" in by_name["notes"]["error"]
    assert by_name["broken"]["readable"] is False
    assert "is not valid YAML" in by_name["broken"]["error"]
    assert ".copier-answers.yml" in by_name["broken"]["error"]
    assert (data["summary"]["projects"], data["summary"]["unreadable"],
            data["summary"]["violating_stacks"]) == (4, 2, 1)


def test_a_list_file_names_the_projects_and_a_violation_exits_1(fleet):
    listing = fleet["root"] / "projects.txt"
    listing.write_text("# the fleet\nold\ntidy  # relative to this file\n\n")
    run = blueprint("fleet", f"@{listing}", "--format", "markdown")
    assert run.exit_code == 1, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 2
    old_row = next(r for r in rows if "old-churn" in r)
    assert "❌" in old_row and "2 behind v0.3.0" in old_row


def test_all_stacks_of_all_projects_are_previewed_in_one_call(fleet, monkeypatch):
    from mlops_blueprint import previews

    calls = []
    real = previews.preview_many

    def spy(requests, **kwargs):
        calls.append([(Path(r.project_dir).name, r.environment) for r in requests])
        return real(requests, **kwargs)

    monkeypatch.setattr(previews, "preview_many", spy)
    result = fleet_view.build([str(fleet["old"]), str(fleet["tidy"])])
    assert calls == [[("old", "dev"), ("old", "prod"), ("tidy", "dev"), ("tidy", "prod")]]
    assert result.exit_code == 1


def test_an_unreachable_template_source_is_reported_not_fatal(fleet, tmp_path):
    run = blueprint("fleet", fleet["tidy"], "--template", tmp_path / "gone", "-f", "json")
    assert run.exit_code == 0, run.stderr
    [project] = json.loads(run.stdout)["projects"]
    assert project["template"]["behind"] is None
    assert "unreachable" in project["template"]["error"]


@pytest.mark.parametrize(
    ("version", "behind", "error"),
    [
        ("v0.2.0", 1, None),
        ("v0.2.0-3-gabc1234", 1, None),  # copier's `git describe` of a commit after v0.2.0
        ("v0.1.0-1-gabc1234-dirty", 2, None),
        ("{sha}", 1, None),  # the commit v0.2.0 points at
        ("v9.9.9", None, "'v9.9.9' is not a tag of"),
        (None, None, "no _commit"),
    ],
)
def test_template_versions_by_tag_describe_or_commit(template_v3, version, behind, error):
    sha = git(template_v3, "rev-parse", "v0.2.0^{commit}").strip()[:10]
    answers = {"_src_path": str(template_v3)}
    if version:
        answers["_commit"] = version.format(sha=sha)
    status = fleet_view.template_status(answers, template_v3, None, fleet_view.TagCache())
    assert (status.behind, status.newest) == (behind, "v0.3.0")
    assert (status.error is None) if error is None else (error in status.error)


def test_shards_merge_into_the_whole_report(report, tmp_path):
    data, _ = report
    projects = data["projects"]
    shards = []
    for index, part in enumerate((projects[:1], projects[1:])):
        shard = tmp_path / f"shard{index}.json"
        shard.write_text(json.dumps(data | {"projects": part}))
        shards.append(shard)
    run = blueprint("fleet", "--merge", *reversed(shards), "--format", "json")
    assert run.exit_code == 2  # the unreadable folder is still in the merged report
    assert json.loads(run.stdout) == data
    table = blueprint("fleet", "--merge", *shards)
    assert table.exit_code == 2
    for line in ("old-churn", "tidy-churn", "unreadable", "2 behind v0.3.0",
                 "placeholder: .cloud/infra/Pulumi.prod.yaml deployerObjectId",
                 "conflict: README.md:", "prod-no-human-write-roles"):
        assert line in table.stdout, line


def test_shard_k_of_n_splits_the_sorted_paths_without_overlap():
    paths = [f"p{i:02}" for i in range(10)]
    parts = [fleet_view.shard(paths, f"{k}/3") for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == paths and parts[0] == ["p00", "p03", "p06", "p09"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "no PATH given"),
        (["@no-such-list.txt"], "cannot read the project list"),
        (["--merge", "{bad}"], "is not JSON"),
        (["--merge", "{other}"], "is not a `blueprint fleet --format json` report"),
        (["x", "--shard", "3/2"], "--shard '3/2'"),
        (["{other}"], "merge reports with --merge"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"project": "churn"}))
    args = [a.format(bad=tmp_path / "bad.json", other=tmp_path / "other.json") for a in args]
    run = blueprint("fleet", *args)
    assert run.exit_code == 2
    assert len(run.error_lines) == 1 and expected in run.error_lines[0], run.stderr


def test_the_summary_line_of_one_project_counts_in_the_singular(fleet):
    run = blueprint("fleet", fleet["tidy"], "--format", "markdown")
    assert "\n1 project (0 unreadable), 2 stacks: " in run.stdout, run.stdout

