"""Write `.cloud/infra/Pulumi.<env>.yaml` for every environment that has no stack file yet.

copier runs this after rendering a project, on `copier copy` and on every `copier update`
(see `_tasks` in copier.yml). A stack file is the infra engineers' to edit, so an existing one
is never touched: adding an environment to the answers (what `blueprint request-env` does)
writes the new environment's file and leaves the others alone.

It runs under copier's own Python, so it imports only the standard library. copier.yml hands
it the answers as JSON and each environment's kind as `env=kind` pairs, computed in Jinja by
the rule of `blueprint_infra.naming.environment_kind` (dev -> dev, a known pre-production name
such as preprod, test or qa -> staging, prod and any other name -> prod, the strictest);
tests/template/test_questions.py keeps the two in step.

A prod-kind environment other than `prod` itself (say `sandbox`) gets the placeholder deployer
id, not prod's: each environment is deployed by its own identity, and the placeholder makes
`blueprint plan` say so until someone fills it in.

Usage: write_stacks.py --infra-dir DIR --answers JSON --kinds dev=dev,preprod=staging,prod=prod
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PLACEHOLDER_GUID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_NOTE = "PLACEHOLDER: replace before a real deployment"
KINDS = ("dev", "staging", "prod")


def scalar(value: object) -> str:
    """A YAML scalar for a config value: JSON's quoting is valid YAML and keeps ids strings."""
    return json.dumps(value, ensure_ascii=False)


def stack_config(env: str, kind: str, answers: dict) -> list[tuple[str, object, str]]:
    """(key, value, comment) rows of one environment's stack config, in file order."""
    slug = answers["project_slug"]
    readers = answers.get("prod_readers_group_id") or ""
    deployer = answers.get("prod_deployer_object_id") or ""

    def ns(key: str) -> str:
        return f"{slug}:{key}"

    rows: list[tuple[str, object, str]] = [
        ("azure-native:location", answers["azure_location"], ""),
        (ns("projectSlug"), slug, ""),
        (ns("environment"), env, ""),
        (ns("kind"), kind, {
            "dev": "data scientists work here",
            "staging": "data scientists read; deployed by the pipeline or the platform team",
            "prod": "no human write access; only deployerObjectId may deploy",
        }[kind]),
        (ns("costCenter"), answers["cost_center"], "cost-center tag on every resource"),
        (
            ns("dataScientistsGroupId"),
            answers["data_scientists_group_id"],
            {
                "dev": "Entra group: works in this workspace",
                "staging": "Entra group: reads this workspace",
                "prod": "Entra group: gets no role in prod (the policy checks use it)",
            }[kind],
        ),
    ]
    if kind == "dev":
        # No readersGroupId: the readers group gets roles in staging and prod only (rbac.py).
        rows.append((
            ns("deployerObjectId"),
            "",
            "optional: dev is deployed by the pipeline's dev identity or by the platform team",
        ))
    else:
        rows.append((ns("readersGroupId"), readers, "Entra group with read-only roles, or empty"))
        if kind == "prod":
            rows.append((
                ns("deployerObjectId"),
                deployer if env == "prod" else PLACEHOLDER_GUID,
                "the ONLY identity allowed to `pulumi up` prod: the principal id of the "
                "bootstrap's prod deploy identity",
            ))
        else:
            rows.append((
                ns("deployerObjectId"),
                "",
                "optional: set it to lock this environment to one deploy identity",
            ))
    rows.append((
        ns("aksClusterId"),
        answers.get("aks_cluster_id") or "",
        "shared AKS cluster attached as Kubernetes compute; empty: none",
    ))
    rows.append((
        ns("publicNetworkAccess"),
        "Disabled" if kind == "prod" else "Enabled",
        "workspace network access",
    ))
    if kind == "prod":
        rows.append((
            ns("privateEndpointSubnetId"),
            "",
            "REQUIRED before the first real `pulumi up`: the platform's private-endpoint subnet "
            "(ARM id .../virtualNetworks/<vnet>/subnets/<subnet>), or instead set "
            "privateEndpointOptOut to the reason prod needs none",
        ))
    return rows


def render_stack(env: str, kind: str, answers: dict) -> str:
    slug = answers["project_slug"]
    lines = [
        f"# Pulumi stack config: environment {env!r} (kind {kind}) of {slug}.",
        "# Written once by the MLOps Blueprint template; yours to edit. `copier update` and",
        "# `blueprint request-env` never overwrite it. Keys: .cloud/infra/README.md.",
        "config:",
    ]
    for key, value, comment in stack_config(env, kind, answers):
        if comment:
            lines.append(f"  # {comment}")
        if isinstance(value, str) and value.lower() == PLACEHOLDER_GUID:
            lines.append(f"  # {PLACEHOLDER_NOTE}")
        lines.append(f"  {key}: {scalar(value)}")
    lines += [
        "  # Optional, with their defaults:",
        f"  # {slug}:computeVmSize: Standard_DS3_v2",
        f'  # {slug}:computeMaxNodes: "2"',
        f"  # {slug}:registryId: \"\"  # empty: the bootstrap's Azure ML registry",
    ]
    if kind == "prod":
        lines.append(f"  # {slug}:privateEndpointOptOut: \"\"  # why prod needs no private "
                     "endpoint (instead of privateEndpointSubnetId)")
    return "\n".join(lines) + "\n"


def parse_kinds(text: str) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for pair in filter(None, text.split(",")):
        env, _, kind = pair.partition("=")
        if kind not in KINDS:
            raise SystemExit(f"write_stacks: environment {env!r} has unknown kind {kind!r}")
        kinds[env] = kind
    return kinds


def write_stacks(infra_dir: Path, answers: dict, kinds: dict[str, str]) -> list[Path]:
    """Write the missing stack files; return the paths written."""
    infra_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for env in answers["environments"]:
        path = infra_dir / f"Pulumi.{env}.yaml"
        if path.exists():
            continue
        path.write_text(render_stack(env, kinds[env], answers), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--infra-dir", type=Path, required=True)
    parser.add_argument("--answers", required=True, help="the answers as a JSON object")
    parser.add_argument("--kinds", required=True, help="env=kind pairs, comma-separated")
    args = parser.parse_args(argv)
    answers = json.loads(args.answers)
    kinds = parse_kinds(args.kinds)
    missing = [env for env in answers["environments"] if env not in kinds]
    if missing:
        raise SystemExit(f"write_stacks: no kind given for {', '.join(missing)}")
    written = write_stacks(args.infra_dir, answers, kinds)
    if renders_the_real_project(Path.cwd(), os.environ.get("COPIER_OPERATION")):
        for path in written:
            print(f"wrote {path.as_posix()}", file=sys.stderr)
    return 0


def renders_the_real_project(destination: Path, operation: str | None) -> bool:
    """Whether copier runs this task in the project itself rather than in a throwaway render.

    `copier update` renders the old and the new template version into temporary folders (to
    compute the template's diff) and runs the task there too; saying "wrote ..." for those files
    would announce stack files that never reach the project. The project being updated is
    always inside a git work tree (copier requires it); copier's temporary renders are not until
    after their tasks have run. `copier copy` writes only into the destination.
    """
    if operation != "update":
        return True
    return any((folder / ".git").exists() for folder in (destination, *destination.parents))


if __name__ == "__main__":
    sys.exit(main())
