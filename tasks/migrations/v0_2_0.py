"""Migration to template 0.2.0: what changes in the files a 0.1.x project owns.

copier runs this once, after `copier update` crosses v0.2.0 (`_migrations` in copier.yml), in
the project's folder. One line per change; the edits are in steps.py (stdlib only).

Adding a change is one line in CHANGES, e.g.
    RenameKey("computeVmSize", "computeSku"),
    DropKey("kind", "the kind follows the stack name", only_if=redundant_kind,
            comments=KIND_COMMENTS),
    MoveFile("pipelines/deploy_model.py", "pipelines/cicd.py"),
"""

from __future__ import annotations

import sys

from steps import Context, DropKey, MoveFile, RenameKey, run  # noqa: F401  (the vocabulary)

#: The comments 0.1.x wrote above `<slug>:kind` (tasks/write_stacks.py at v0.1.0).
KIND_COMMENTS = (
    "data scientists work here",
    "data scientists read; deployed by the pipeline or the platform team",
    "no human write access; only deployerObjectId may deploy",
)


def redundant_kind(env: str, value: str, ctx: Context) -> bool:
    """A stack's `kind` that only repeats what its name implies (so dropping it changes
    nothing); a kind the team made stricter on purpose is kept."""
    return value == ctx.kinds.get(env)


CHANGES = [
    # The model's CD moved to pipelines/cicd.py (issue 8): the online deployment is no longer
    # always "blue" (a new one goes up beside the live one), and deploy_model.py / schedules.py
    # became the endpoint helpers and the monitor stage. A team's edits of the old files are
    # merged into the new ones (conflict markers where they clash), not lost.
    MoveFile(".cloud/endpoints/blue-deployment.yml", ".cloud/endpoints/online-deployment.yml"),
    MoveFile("pipelines/deploy_model.py", "pipelines/endpoints.py"),
    MoveFile("pipelines/schedules.py", "pipelines/stage_monitor.py"),
    # 0.2.0 derives an environment's kind from its stack name (blueprint_infra.naming.
    # environment_kind); when the stack key is no longer read, enable:
    # DropKey("kind", "the kind follows the stack name", only_if=redundant_kind,
    #         comments=KIND_COMMENTS),
]


if __name__ == "__main__":
    sys.exit(run(CHANGES))
