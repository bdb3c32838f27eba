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

import gc
import importlib
import os
import sys
import types

#: Modules every preview needs; imported by the forkserver before it forks a worker.
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
#: Collect cycles after this many previews (the collector is off in between).
COLLECT_EVERY = 8


def warm() -> None:
    """Import what a preview needs, including the pulumi-azure-native submodules the blueprint's
    programs name (they load lazily, on first attribute access, which is most of a first
    preview's time), then freeze the heap so no collection walks it again. The collector stays
    off during the imports too (they allocate much and free little: measured, about a tenth of
    the imports' CPU) and in the worker after them."""
    gc.disable()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the preview that needs it will say what is wrong
            continue
    # Extra modules of the blueprint (guardrails, ...) are found by walking the package.
    for module in [m for n, m in list(sys.modules.items()) if n.startswith("blueprint_infra")]:
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType) and value.__name__.startswith(
                "pulumi_azure_native."
            ):
                getattr(value, "__all__", None)  # any attribute loads a lazy module
    # No gc.collect() first: it costs a tenth of the warm-up (measured) to free the little
    # garbage imports leave, which then stays in the frozen generation, shared by the forks.
    gc.freeze()


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
            # After a failed program the runtime's state is suspect: a fresh fork takes over.
            keep = not isinstance(outcome, previews.PreviewFailure)
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

