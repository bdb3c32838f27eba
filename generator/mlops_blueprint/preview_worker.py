"""The child side of `previews.preview_many`: a warm process that previews one stack at a time.

`warm()` runs once per command in the forkserver (`preview_forkserver`, its preload), so pulumi,
pulumi-azure-native's submodules that the blueprint's programs use, the programs themselves and
the policies are imported ONCE, however many stacks run; every worker is a fork of that warm
process. After the imports the heap is frozen (`gc.freeze`) and each worker runs with the
cyclic collector off between collections it schedules itself: the collector otherwise takes
about a third of a preview's CPU walking pulumi's long-lived objects. (Where there is no
forkserver, each spawned worker warms itself.)

A worker answers requests on a pipe until it is sent `None`, then leaves with `os._exit` (no
interpreter shutdown: nothing of value is left to flush). A project's program runs here, not in
the command's own process: a program that calls `os._exit`, raises `SystemExit` or hangs costs a
worker, never the command, and is reported as a failure of that stack.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import sys
import types
from collections.abc import Callable

#: Modules every preview needs; imported by any warm-up before anything else.
WARM_MODULES = (
    "pulumi",
    "pulumi.runtime",
    "pulumi.runtime.mocks",
    "pulumi.runtime.stack",
    "pulumi_azure_native",
    "blueprint_infra.preview",
    "blueprint_infra.program",
    "blueprint_infra.bootstrap",
    "blueprint_infra.policies",
    "mlops_blueprint.previews",
    "mlops_blueprint.cost",
)
#: The pulumi-azure-native subpackages that every environment's preview loads (dev's set): a
#: light warm-up loads these and no more. The others (network for prod's private endpoints,
#: managedidentity and resources for the bootstrap, ...) cost about as much again and are left
#: to the preview that needs them, or to a full warm-up. A test keeps both lists complete.
COMMON_AZURE_PACKAGES = (
    "machinelearningservices",
    "monitor",
    "storage",
    "containerregistry",
    "authorization",
    "keyvault",
    "operationalinsights",
    "applicationinsights",
)
#: Collect cycles after this many previews (the collector is off in between).
COLLECT_EVERY = 8


def warm_steps(*, full: bool = True) -> list[Callable[[], object]]:
    """The warm-up, in steps of one import each (the preview server answers requests between
    them): the modules every preview needs, the common pulumi-azure-native subpackages, then
    (`full`) every other subpackage the blueprint's programs name. pulumi-azure-native loads a
    subpackage lazily, on first attribute access, and then imports every one of its modules:
    that is most of a cold preview's time."""
    steps: list[Callable[[], object]] = [
        functools.partial(_import, name) for name in WARM_MODULES]
    steps += [functools.partial(_load_azure, f"pulumi_azure_native.{name}")
              for name in COMMON_AZURE_PACKAGES]
    if full:
        steps.append(_load_every_named_azure_package)
    return steps


def warm(*, full: bool = True) -> None:
    """Import what a preview needs (`warm_steps`), then freeze the heap so no collection walks
    it again. The collector stays off during the imports too (they allocate much and free
    little: measured, about a tenth of the imports' CPU) and in the worker after them."""
    gc.disable()
    for step in warm_steps(full=full):
        step()
    # No gc.collect() first: it costs a tenth of the warm-up (measured) to free the little
    # garbage imports leave, which then stays in the frozen generation, shared by the forks.
    gc.freeze()


def _import(name: str) -> None:
    # A module that fails to import is the concern of the preview that needs it: it says what
    # is wrong there.
    with contextlib.suppress(Exception):
        importlib.import_module(name)


def _load_azure(name: str) -> None:
    _import(name)
    module = sys.modules.get(name)
    getattr(module, "__all__", None)  # any attribute loads a lazy module


def _load_every_named_azure_package() -> None:
    """Every pulumi-azure-native subpackage a module of the blueprint names (guardrails, ...)."""
    for module in [m for n, m in list(sys.modules.items()) if n.startswith("blueprint_infra")]:
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType) and value.__name__.startswith(
                "pulumi_azure_native."
            ):
                getattr(value, "__all__", None)


def serve(conn) -> None:
    """The worker loop: receive a prepared job, send back its plan or failure, until `None`."""
    from mlops_blueprint import previews

    # A program's print() must not end up in `plan --format json`, nor its tracebacks in the
    # command's one-line errors: what went wrong comes back as the stack's failure.
    # BLUEPRINT_PREVIEW_DEBUG=1 keeps the worker's stderr for debugging the worker itself.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if os.environ.get("BLUEPRINT_PREVIEW_DEBUG") != "1":
        os.dup2(devnull, 2)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the worker
    gc.disable()
    done = 0
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                break
            if job is None:
                break
            outcome = previews.run_job(job)
            # After a failed program the runtime's state is suspect, and a project's own program
            # (custom-program.yaml) may have changed this process for the next project's
            # preview (the policies, the report): either way a fresh fork takes over.
            keep = (not isinstance(outcome, previews.PreviewFailure)
                    and job.custom_program is None)
            try:
                conn.send((outcome, keep))
            except Exception as error:  # noqa: BLE001 - e.g. a program put an unpicklable value
                keep = False
                conn.send((previews.PreviewFailure(
                    job.request, job.stack_file,
                    f"the preview's result cannot be reported: {type(error).__name__}: {error}",
                    "program"), keep))
            if not keep:
                break
            done += 1
            if done % COLLECT_EVERY == 0:
                gc.collect()
    finally:
        conn.close()
        os._exit(0)

