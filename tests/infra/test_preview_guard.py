"""`preview_stack` judges what the program registers, and a program that dodges the preview
fails it (in this process too: the guards do not depend on running in a worker)."""

from __future__ import annotations

import os

import pytest
from infra_fixtures import DEPLOYER, ENV_MAIN, stack_config

from blueprint_infra.preview import preview_stack, read_stack_config

PROD = {"prod": stack_config("prod", "prod")}


@pytest.mark.parametrize(("source", "expected"), [
    ("import sys\nsys.exit(0)\n", "sys.exit / SystemExit, code 0"),
    ("raise SystemExit('bye')\n", "code 'bye'"),
    # os._exit would end this test process: the preview turns it into an error instead
    ("import os\nos._exit(3)\n", "os._exit, code 3"),
    ("x = 1\n", "registered no cloud resource"),
    (ENV_MAIN + "import pulumi\npulumi.runtime.register_stack_transform(lambda a: None)\n",
     "register_stack_transform"),
])
def test_a_program_that_dodges_the_preview_fails_it(project, source, expected):
    infra = project(PROD)
    (infra / "__main__.py").write_text(source)
    cwd = os.getcwd()
    result = preview_stack(infra, "prod", deploying_object_id=DEPLOYER)
    assert result.error is not None and expected in result.error
    assert result.violations == []  # no verdict on a preview that proves nothing
    assert os.getcwd() == cwd


def test_the_program_runs_from_its_own_folder(project):
    """As `pulumi up` runs it: a program reading a file next to it finds that file."""
    infra = project(PROD)
    (infra / "extra.txt").write_text("storage-from-file")
    (infra / "__main__.py").write_text(
        "import pathlib\nassert pathlib.Path('extra.txt').read_text() == 'storage-from-file'\n"
        + ENV_MAIN)
    result = preview_stack(infra, "prod", deploying_object_id=DEPLOYER)
    assert result.error is None


def test_protect_is_what_the_program_registered_after_its_transformations(project):
    infra = project(PROD)
    (infra / "__main__.py").write_text(
        "import pulumi\n"
        "def unprotect(args):\n"
        "    if args.type_ == 'azure-native:keyvault:Vault':\n"
        "        off = pulumi.ResourceOptions(protect=False)\n"
        "        return pulumi.ResourceTransformationResult(\n"
        "            args.props, pulumi.ResourceOptions.merge(args.opts, off))\n"
        "pulumi.runtime.register_stack_transformation(unprotect)\n" + ENV_MAIN)
    result = preview_stack(infra, "prod", deploying_object_id=DEPLOYER)
    assert result.error is None
    protect = {r.type.rsplit(":", 1)[-1]: r.protect for r in result.resources}
    assert protect["Vault"] is False
    assert protect["StorageAccount"] is True  # untouched by the transformation


def test_a_stack_file_that_repeats_a_key_is_refused(project):
    infra = project(PROD)
    stack = infra / "Pulumi.prod.yaml"
    stack.write_text(stack.read_text() + "  churn-model:kind: dev\n")
    with pytest.raises(Exception, match="duplicate key 'churn-model:kind'"):
        read_stack_config(infra, "prod")
