"""`preview_many`: every stack's preview in one pool of warm workers; one outcome per request,
in order; a failure is that stack's alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_blueprint.previews import (
    EnvironmentPlan,
    PreviewFailure,
    PreviewRequest,
    preview_many,
)

INFRA = Path(".cloud") / "infra"


def with_program(project: Path, source: str) -> Path:
    (project / INFRA / "__main__.py").write_text(source)
    (project / INFRA / "custom-program.yaml").write_text("reason: test\n")
    return project


def copy(fresh_project: Path, tmp_path: Path, name: str) -> Path:
    import shutil

    return Path(shutil.copytree(fresh_project, tmp_path / name, symlinks=True))


def test_failures_are_per_stack_and_outcomes_keep_the_request_order(fresh_project, tmp_path,
                                                                     preview_mode):
    killer = with_program(copy(fresh_project, tmp_path, "killer"),
                          "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    exiting = with_program(copy(fresh_project, tmp_path, "exiting"), "import sys\nsys.exit(1)\n")
    requests = [
        PreviewRequest(killer, "dev"),
        PreviewRequest(fresh_project, "dev"),
        PreviewRequest(exiting, "prod"),
        PreviewRequest(tmp_path / "missing", "dev"),
        PreviewRequest(fresh_project, "qa"),
        PreviewRequest(fresh_project, "prod"),
        PreviewRequest(fresh_project, "bootstrap"),
    ]
    outcomes = preview_many(requests, workers=2)
    kinds = [o.reason if isinstance(o, PreviewFailure) else o.environment for o in outcomes]
    assert kinds == ["crashed", "dev", "program", "input", "input", "prod", "bootstrap"]
    assert outcomes[0].where == ".cloud/infra/Pulumi.dev.yaml"
    assert "exit code -9" in outcomes[0].message
    assert "sys.exit" in outcomes[2].message
    assert "no such directory" in outcomes[3].message
    assert "unknown environment 'qa'" in outcomes[4].message
    assert all(isinstance(o, EnvironmentPlan) and o.passed for o in outcomes[5:])
    assert json.loads(json.dumps(outcomes[0].as_json()))["reason"] == "crashed"


def test_a_hanging_program_times_out_alone(fresh_project, tmp_path, preview_mode):
    hanging = with_program(copy(fresh_project, tmp_path, "hanging"),
                           "import time\ntime.sleep(600)\n")
    outcomes = preview_many(
        [PreviewRequest(hanging, "dev"), PreviewRequest(fresh_project, "preprod")],
        workers=2, timeout=10,
    )
    assert isinstance(outcomes[0], PreviewFailure) and outcomes[0].reason == "timeout"
    assert isinstance(outcomes[1], EnvironmentPlan) and outcomes[1].environment == "preprod"


def test_one_worker_previews_many_stacks_in_turn(fresh_project, preview_mode):
    names = ["dev", "preprod", "prod", "bootstrap"] * 2
    outcomes = preview_many([PreviewRequest(fresh_project, n) for n in names], workers=1)
    assert [o.environment for o in outcomes] == names
    # the same stack previewed twice in one worker gives the same plan (registration order
    # may differ between runs: pulumi registers concurrently)
    def same(plan):
        return sorted(json.dumps(r, sort_keys=True) for r in plan.as_json()["resources"])

    assert same(outcomes[0]) == same(outcomes[4])
    assert outcomes[3].violations == outcomes[7].violations == []


def test_a_projects_own_program_cannot_change_the_next_projects_preview(
        fresh_project, tmp_path, preview_mode):
    """One worker, two projects: the first runs its own program (declared), which patches the
    preview in its process to drop every violation; the second grants a group Contributor in
    prod. The second is previewed by a fresh fork, so its violation is reported."""
    from test_plan import add_ops_grant

    liar = copy(fresh_project, tmp_path, "liar")
    program = liar / INFRA / "__main__.py"
    program.write_text(program.read_text() + (
        "\nimport blueprint_infra.preview as _preview\n"
        "_real = _preview.preview_stack\n"
        "def _lying(*args, **kwargs):\n"
        "    result = _real(*args, **kwargs)\n"
        "    result.violations = []\n"
        "    return result\n"
        "_preview.preview_stack = _lying\n"
    ))
    (liar / INFRA / "custom-program.yaml").write_text("reason: test\n")
    victim = copy(fresh_project, tmp_path, "victim")
    add_ops_grant(victim)
    outcomes = preview_many([PreviewRequest(liar, "dev"), PreviewRequest(victim, "prod")],
                            workers=1)
    assert isinstance(outcomes[0], EnvironmentPlan)
    assert [v["policy"] for v in outcomes[1].violations] == ["prod-no-human-write-roles"]


def test_an_integrity_refusal_lists_every_file(fresh_project, tmp_path):
    project = copy(fresh_project, tmp_path, "redirected")
    with (project / INFRA / "Pulumi.yaml").open("a") as handle:
        handle.write("main: elsewhere/\n")
    (project / INFRA / "__main__.py").write_text("print('mine')\n")
    (outcome,) = preview_many([PreviewRequest(project, "prod")])
    assert outcome.reason == "integrity"
    assert {where for where, _ in outcome.refusals} == {
        ".cloud/infra/Pulumi.yaml", ".cloud/infra/__main__.py"}


@pytest.mark.parametrize(("full", "stacks"), [
    (True, ["dev", "preprod", "prod", "bootstrap"]),
    (False, ["dev", "preprod"]),  # the common part: what every environment uses, prod's extra
])
def test_the_warm_worker_imported_every_azure_module_a_preview_needs(fresh_project, full,
                                                                     stacks):
    """A preview in a warm worker imports no pulumi-azure-native module (it would cost every
    worker its first preview's time): after the full warm-up none of any stack, after the light
    one (one or a few stacks) none of a non-prod environment. Run in a fresh interpreter to see
    the imports."""
    script = (
        "import sys\n"
        "from mlops_blueprint import preview_worker\n"
        f"preview_worker.warm(full={full})\n"
        "from blueprint_infra.preview import preview_stack\n"
        "before = set(sys.modules)\n"
        f"infra = {str(fresh_project / INFRA)!r}\n"
        f"for stack in {stacks!r}:\n"
        "    where = infra + '/bootstrap' if stack == 'bootstrap' else infra\n"
        "    name = 'platform' if stack == 'bootstrap' else stack\n"
        "    assert preview_stack(where, name).error is None\n"
        "print(sorted(m for m in set(sys.modules) - before\n"
        "             if m.startswith('pulumi_azure_native')))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_project_the_caller_loaded_is_not_read_again(fresh_project, monkeypatch):
    from mlops_blueprint import previews
    from mlops_blueprint import project as projects

    loaded = projects.load_project(fresh_project)
    reads = []
    real = projects.load_project
    monkeypatch.setattr(projects, "load_project", lambda path: reads.append(path) or real(path))
    jobs, failed = previews._prepare(
        [PreviewRequest(loaded.root, "dev"), PreviewRequest(loaded.root, "prod")], [loaded])
    assert not failed and [j.project for j in jobs] == [loaded, loaded]
    assert reads == []
