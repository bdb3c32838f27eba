"""A previewed environment, and the one function that previews stacks.

`check`, `fleet` and `plan --against` call `preview_many`, `plan` calls `run_plans`; the
renderers in `report.py` take the `EnvironmentPlan`s it returns. Each stack runs the project's real
`.cloud/infra` program under Pulumi's mock engine (`blueprint_infra.preview.preview_stack`) in a
child process: one pool of warm workers per call (see `preview_worker`), never a process per stack
and never the command's own process, so a program that exits, raises `SystemExit`, hangs or
registers nothing is a failure of its stack, reported as such, and the others still run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from mlops_blueprint.errors import UsageError

#: Seconds one stack's preview may take before its worker is stopped and the stack fails.
PREVIEW_TIMEOUT = 120.0

#: Stack config keys (in the project namespace) whose principal ids the RBAC matrix names.
PRINCIPAL_LABELS = {
    "dataScientistsGroupId": "data scientists",
    "readersGroupId": "readers",
    "deployerObjectId": "deployer",
}


@dataclass
class EnvironmentPlan:
    """One environment's preview, as `plan` reports it."""

    project: str
    environment: str
    kind: str
    location: str
    resources: list[dict[str, Any]]
    role_assignments: list[dict[str, Any]]
    violations: list[dict[str, Any]]  # mandatory: any one fails the plan
    monthly_cost_estimate: dict[str, Any]
    advisories: list[dict[str, Any]] = field(default_factory=list)  # reported, never fail
    principals: dict[str, str] = field(default_factory=dict)  # principal id -> who
    stack_file: str = ""
    #: None for the blueprint's own program; else the reason the project declared for running
    #: its own (`.cloud/infra/custom-program.yaml`). Every output shows it as the first
    #: advisory, policy `custom-program`.
    custom_program: str | None = None

    @property
    def passed(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        """The documented JSON object (docs/cli.md). `advisories` has the shape of
        `violations` but never fails the plan (placeholders left in, a prod opt-out)."""
        return {
            "project": self.project,
            "environment": self.environment,
            "resources": self.resources,
            "role_assignments": self.role_assignments,
            "violations": self.violations,
            "advisories": self.advisories,
            "monthly_cost_estimate": self.monthly_cost_estimate,
        }


@dataclass(frozen=True)
class PreviewRequest:
    """One stack to preview: a generated project's folder and an environment name as `--env`
    takes it (`bootstrap` for the bootstrap program's stack)."""

    project_dir: Path
    environment: str
    as_identity: str | None = None  # preview as this deploying identity (Entra object id)


#: Why a stack has no plan: its files cannot be read (`input`), the project changes what
#: `pulumi up` would run (`integrity`), its program failed, exited or registered nothing
#: (`program`), killed its worker (`crashed`) or did not finish in time (`timeout`).
FailureReason = Literal["input", "integrity", "program", "crashed", "timeout"]


@dataclass
class PreviewFailure:
    """A stack that could not be previewed; reported per stack, never stopping the others."""

    request: PreviewRequest
    where: str  # the file it is about, relative to the project (or the project folder)
    message: str  # one line
    reason: FailureReason = "program"
    #: For `integrity`: each refusal as (file, message); `message` joins them.
    refusals: list[tuple[str, str]] = field(default_factory=list)

    passed: ClassVar[bool] = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "project_dir": str(self.request.project_dir),
            "environment": self.request.environment,
            "where": self.where,
            "reason": self.reason,
            "message": self.message,
            "refusals": [{"where": w, "message": m} for w, m in self.refusals],
        }


PreviewOutcome = EnvironmentPlan | PreviewFailure


@dataclass
class _Job:
    """A request whose files were read and judged in the command's process, ready for a worker."""

    index: int
    request: PreviewRequest
    project: Any  # mlops_blueprint.project.Project
    stack: Any  # mlops_blueprint.project.Stack
    stack_file: str
    custom_program: str | None


def preview_many(
    requests: list[PreviewRequest], *, workers: int | None = None,
    timeout: float = PREVIEW_TIMEOUT, projects: Iterable[Any] = (),
) -> list[PreviewOutcome]:
    """Preview every requested stack; one outcome per request, in the requests' order: an
    `EnvironmentPlan`, or a `PreviewFailure` naming the file and the reason. Files are read
    here (a project is loaded once however many of its stacks are asked for; not at all when
    the caller passes it loaded, in `projects`); the programs run in at most `workers` child
    processes (default: the usable CPUs), each a fork of one warm process: the preview
    server's (`preview_server`) or else this command's forkserver."""
    start_warming(full=len(requests) > FULL_WARM_STACKS)
    jobs, outcomes = _prepare(requests, projects)
    outcomes.update(_run_in_pool(jobs, workers=workers, timeout=timeout))
    return [outcomes[i] for i in range(len(requests))]


#: Above this many stacks, the forkserver imports every pulumi-azure-native subpackage the
#: programs name before the first worker forks (each worker would otherwise import the ones its
#: stacks need, network for prod's private endpoints, ...); up to it, the common ones only
#: (`preview_worker.COMMON_AZURE_PACKAGES`), so one environment waits for no more than it uses.
FULL_WARM_STACKS = 6

_server = None  # the preview server's client, once asked for (`_server_client`)


def start_warming(*, full: bool = False) -> None:
    """Start the warm process the workers fork from, without waiting for it: its imports (about
    a second) overlap with the command's own work until the first worker is needed. That is the
    preview server (`preview_server`: started if none answers, reused by later commands) unless
    it is switched off or unreachable, else this command's forkserver. Calling it again is free;
    the first call decides how much the forkserver imports (`full`)."""
    client = _server_client()
    if client is not None:
        client.launch()
        if not client.failed:
            return
    _start_forkserver(full=full)


def _server_client():
    global _server
    if _server is None:
        from mlops_blueprint import preview_server

        _server = preview_server.Client() if preview_server.enabled() else False
    return _server or None


def _start_forkserver(*, full: bool) -> None:
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    _context()
    # The forkserver is a new interpreter started with `-c`, which puts the working directory
    # (often the project) first on sys.path: a project's `yaml.py` would be imported in place
    # of the library by the process that judges it. PYTHONSAFEPATH (-P) leaves it out.
    with _environment(PYTHONSAFEPATH="1", BLUEPRINT_PREVIEW_WARM="full" if full else "common"):
        forkserver.ensure_running()


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the processes started inside the block, then restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _prepare(requests: list[PreviewRequest], loaded_projects: Iterable[Any] = ()
             ) -> tuple[list[_Job], dict[int, PreviewOutcome]]:
    """Read and judge each request's files; `loaded_projects` (`project.Project`s the caller
    has loaded already) are not read again."""
    from blueprint_infra import naming
    from blueprint_infra.naming import InvalidAnswer
    from mlops_blueprint import project as projects

    loaded: dict[Path, Any] = {p.root: p for p in loaded_projects}
    jobs: list[_Job] = []
    failed: dict[int, PreviewOutcome] = {}
    for index, request in enumerate(requests):
        where = str(request.project_dir)
        try:
            key = Path(request.project_dir).absolute()
            if key not in loaded:
                loaded[key] = projects.load_project(request.project_dir)
            project = loaded[key]
            stack = project.stack(request.environment)  # its errors name the file
            where = project._rel(stack.config_file)
            if request.as_identity is not None:
                naming.validate_guid(request.as_identity, "--as")
            refusals, custom_program = projects.program_integrity(project, stack)
        except (UsageError, InvalidAnswer) as error:
            failed[index] = PreviewFailure(request, where, _one_line(error), "input")
            continue
        if refusals:
            first = refusals[0].where
            failed[index] = PreviewFailure(
                request, first,
                "; ".join(r.message if r.where == first else str(r) for r in refusals),
                "integrity", [(r.where, r.message) for r in refusals],
            )
            continue
        jobs.append(_Job(index, request, project, stack, where, custom_program))
    return jobs, failed


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def run_job(job: _Job) -> PreviewOutcome:
    """Preview one prepared stack (in a worker); a failure is returned, never raised."""
    try:
        plan = preview(job.project, job.stack, job.request.as_identity)
    except UsageError as error:
        message = _one_line(error)
        prefix = f"{job.stack_file}: "
        message = message[len(prefix):] if message.startswith(prefix) else message
        return PreviewFailure(job.request, job.stack_file, message, "program")
    except BaseException as error:  # noqa: BLE001 - whatever the program did, one line
        return PreviewFailure(
            job.request, job.stack_file,
            f"the preview failed: {type(error).__name__}: {_one_line(error)}", "program",
        )
    plan.custom_program = job.custom_program
    if job.custom_program is not None:
        plan.advisories.insert(0, custom_program_advisory(job.project, job.stack,
                                                          job.custom_program))
    return plan


def custom_program_advisory(project, stack, reason: str) -> dict[str, Any]:
    """The line every output shows for a project that runs its own program."""
    program = project._rel(stack.program_dir / "__main__.py")
    return {
        "policy": "custom-program",
        "resource": program,
        "message": f"this project runs its own program, not the blueprint's ({reason}); "
        "review what it deploys, not only this preview",
        "enforcement": "advisory",
    }


# --- the pool ---------------------------------------------------------------------------------


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _context():
    """Workers are forks of one forkserver that imported everything a preview needs (where the
    platform has forkserver), else freshly spawned interpreters that import it themselves."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["mlops_blueprint.preview_forkserver"])
        return context
    return multiprocessing.get_context("spawn")


def _worker_main(conn) -> None:
    from mlops_blueprint import preview_worker

    if "mlops_blueprint.preview_forkserver" not in sys.modules:  # spawned, not forked: warm up
        preview_worker.warm()
    preview_worker.serve(conn)


@dataclass
class _Worker:
    process: Any
    conn: Any
    job: _Job | None = None
    started: float = 0.0


def _run_in_pool(jobs: list[_Job], *, workers: int | None, timeout: float
                 ) -> dict[int, PreviewOutcome]:
    """Run the jobs on a pool of workers; a worker that dies or overruns `timeout` fails its
    own job only and is replaced."""
    if not jobs:
        return {}
    pool = _Pool(jobs, timeout)
    try:
        pool.run(min(len(jobs), workers or default_workers()))
    except (OSError, EOFError, RuntimeError) as error:  # the pool itself could not run
        for job in jobs:
            pool.outcomes.setdefault(job.index, PreviewFailure(
                job.request, job.stack_file,
                f"the preview workers could not run: {type(error).__name__}: {error}", "crashed"))
    finally:
        pool.close()
    return pool.outcomes


class _Pool:
    """Workers on pipes: each gets one job at a time; the parent waits on every pipe at once,
    so it knows exactly which job a dead or overrunning worker was running."""

    def __init__(self, jobs: list[_Job], timeout: float):
        self.context = _context()
        self.pending = list(reversed(jobs))
        self.timeout = timeout
        self.outcomes: dict[int, PreviewOutcome] = {}
        self.workers: list[_Worker] = []

    def run(self, size: int) -> None:
        from multiprocessing.connection import wait

        for _ in range(size):
            self.dispatch(self.start())
        while self.workers:
            busy = [w for w in self.workers if w.job is not None]
            deadline = min((w.started + self.timeout for w in busy), default=None)
            wait_for = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([w.conn for w in self.workers], timeout=wait_for)
            for worker in [w for w in self.workers if w.conn in ready]:
                self.receive(worker)
            now = time.monotonic()
            for worker in [w for w in self.workers if w.job is not None]:
                if now - worker.started >= self.timeout:
                    self.lost(worker, f"the program did not finish within {self.timeout:g} s",
                              "timeout")

    def start(self) -> _Worker:
        client = _server_client()
        remote = client.worker() if client is not None else None
        if remote is not None:
            process, conn = remote
            worker = _Worker(process, conn)
            self.workers.append(worker)
            return worker
        _start_forkserver(full=len(self.pending) > FULL_WARM_STACKS)
        parent_end, child_end = self.context.Pipe()
        process = self.context.Process(target=_worker_main, args=(child_end,), daemon=True,
                                       name="blueprint-preview")
        # multiprocessing re-runs the command's __main__ (the console script, or pytest) in
        # each worker; a worker needs nothing from it, so it is shown an empty one.
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            with _environment(PYTHONSAFEPATH="1"):  # a spawned worker (no forkserver) too
                process.start()
        finally:
            sys.modules["__main__"] = main
        child_end.close()
        worker = _Worker(process, parent_end)
        self.workers.append(worker)
        return worker

    def dispatch(self, worker: _Worker) -> None:
        """Give the worker the next job, or let it go; one that cannot take it is replaced."""
        while self.pending:
            job = self.pending.pop()
            try:
                worker.conn.send(job)
            except (BrokenPipeError, EOFError, OSError):
                self.pending.append(job)
                self.retire(worker, kill=True)
                worker = self.start()
                continue
            worker.job, worker.started = job, time.monotonic()
            return
        self.retire(worker)

    def receive(self, worker: _Worker) -> None:
        try:
            outcome, keep = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            self.lost(worker, "the program ended the preview process (exit code "
                      f"{worker.process.exitcode}) instead of registering its resources",
                      "crashed")
            return
        job, worker.job = worker.job, None
        if job is not None:
            self.outcomes[job.index] = outcome
        if keep:
            self.dispatch(worker)
        else:  # the worker leaves after a failed program; a fresh fork takes over
            self.retire(worker)
            if self.pending:
                self.dispatch(self.start())

    def lost(self, worker: _Worker, message: str, reason: FailureReason) -> None:
        job, worker.job = worker.job, None
        self.retire(worker, kill=True)
        if job is not None:
            self.outcomes[job.index] = PreviewFailure(job.request, job.stack_file, message,
                                                      reason)
        if self.pending:
            self.dispatch(self.start())

    def retire(self, worker: _Worker, *, kill: bool = False) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        try:
            if kill:
                worker.process.kill()
            else:
                worker.conn.send(None)
        except (BrokenPipeError, EOFError, OSError):
            pass
        worker.conn.close()
        worker.process.join(timeout=5)

    def close(self) -> None:
        for worker in list(self.workers):
            self.retire(worker, kill=True)


def run_plans(
    project_dir: Path, environments: list[str], *, as_identity: str | None = None
) -> list[EnvironmentPlan]:
    """Preview the named environments of one project (all stacks when none are named) for
    `plan`. Every stack file is read and judged before the first preview runs, so bad input
    fails fast; any stack without a plan is a UsageError naming its file."""
    from blueprint_infra import naming
    from mlops_blueprint.project import load_project

    project = load_project(project_dir)
    if as_identity is not None:
        as_identity = naming.validate_guid(as_identity, "--as")
    names = list(dict.fromkeys(environments)) or project.stack_names()
    if not names:
        raise UsageError(f"{project.root} has no stacks: no .cloud/infra/Pulumi.<env>.yaml")
    requests = [PreviewRequest(project.root, name, as_identity) for name in names]
    jobs, refused = _prepare(requests, [project])
    if refused:  # bad input names its file already; a refusal is "file: why"
        raise UsageError("; ".join(
            f.message if f.reason == "input" else str(f) for f in refused.values()))
    outcomes = _run_in_pool(jobs, workers=None, timeout=PREVIEW_TIMEOUT)
    failures = [o for _, o in sorted(outcomes.items()) if isinstance(o, PreviewFailure)]
    if failures:
        raise UsageError("; ".join(str(f) for f in failures))
    return [outcomes[i] for i in range(len(requests))]  # type: ignore[misc]


def preview(project, stack, as_identity: str | None) -> EnvironmentPlan:
    """Run one stack under the mock engine and shape the result for the report."""
    from blueprint_infra.preview import preview_stack
    from mlops_blueprint.project import BOOTSTRAP_ENV

    stack_file = project._rel(stack.config_file)
    try:
        result = preview_stack(
            stack.program_dir, stack.stack, deploying_object_id=as_identity, dry_run=True
        )
    except UsageError:
        raise
    except Exception as error:  # the project's own program failed: say where, in one line
        raise UsageError(
            f"{stack_file}: the preview failed: {type(error).__name__}: {error}"
        ) from error
    if getattr(result, "error", None):
        raise UsageError(f"{stack_file}: {result.error}")

    location = str(stack.get("azure-native:location") or project.answers.get("azure_location"))
    resources = list(result.resources)
    found = [_violation(v) for v in result.violations]
    violations = [v for v in found if v.get("enforcement") != "advisory"]
    namespace = result.project or project.pulumi_project
    advisories = [v for v in found if v.get("enforcement") == "advisory"]
    advisories += [_violation(v) for v in _advisories(result, stack, namespace)]
    principals = {
        str(stack.get(key, namespace)).lower(): label
        for key, label in PRINCIPAL_LABELS.items()
        if stack.get(key, namespace)
    }
    return EnvironmentPlan(
        project=result.project or project.pulumi_project,
        environment=result.environment or stack.environment,
        kind=result.kind or str(stack.get("kind", namespace) or "")
        or ("platform" if stack.environment == BOOTSTRAP_ENV else ""),
        location=location,
        resources=[
            {"type": r.type, "name": r.name, "properties": r.properties, "protect": r.protect}
            for r in resources
        ],
        role_assignments=[_role_assignment(a) for a in result.role_assignments],
        violations=violations,
        monthly_cost_estimate=_cost(resources, location),
        advisories=advisories,
        principals=principals,
        stack_file=stack_file,
    )


def _advisories(result: Any, stack: Any, namespace: str) -> list[Any]:
    """What the policies advise (placeholders left in, a public prod opt-out, an Azure DevOps
    bootstrap's placeholder organization id): shown, never a failure. Judged with the context
    the preview judged the stack with (its kind from the stack's name)."""
    from blueprint_infra import policies

    context = getattr(result, "policy_context", None)
    if context is None:
        return []
    return policies.advisories(result.resources, context)


def _violation(violation: Any) -> dict[str, Any]:
    return {
        "policy": violation.policy,
        "resource": violation.resource,
        "message": violation.message,
        "enforcement": getattr(violation, "enforcement", "mandatory"),
    }


def _role_assignment(assignment: Any) -> dict[str, Any]:
    keys = ("principal_id", "principal_type", "role", "role_definition_id", "scope")
    if isinstance(assignment, dict):
        return {k: assignment.get(k) for k in keys} | {
            k: v for k, v in assignment.items() if k not in keys
        }
    return {k: getattr(assignment, k, None) for k in keys}


def _cost(resources: list[Any], location: str) -> dict[str, Any]:
    """`mlops_blueprint.cost.estimate` (CostEstimate(currency, total, items)) as plain data."""
    from mlops_blueprint.cost import estimate as estimate_cost

    estimate = estimate_cost(resources, location=location)
    extra = estimate.as_dict() if hasattr(estimate, "as_dict") else {}
    return {
        "currency": estimate.currency,
        "total": estimate.total,
        "items": [_plain(item) for item in estimate.items],
    } | {k: _plain(v) for k, v in extra.items() if k not in ("currency", "total", "items")}


def _plain(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
