"""Wall-clock figures for the commands users wait on (not a test). Writes benchmarks/RESULTS.md.

    python benchmarks/bench.py [--repeat N]      (or: make bench)

Measures, each over a few repetitions, as a user runs them (a fresh process every time):
- `blueprint --help` and `blueprint plan --help` (should answer at once),
- one `copier copy --defaults` of this template (three environments),
- `blueprint plan --env ENV --format json` for each environment of that project, with the preview
  server running (as every command after a workstation's first), and for dev also as the first
  command (it starts the server) and with the server off (`BLUEPRINT_PREVIEW_SERVER=off`, as
  under CI: the command's own pool),
- `blueprint plan --format json` of all environments in one process, server running and off,
- the preview of each environment inside one warm process (what a worker pays per stack once
  the imports are paid), with Python's cyclic garbage collector as it is by default and as the
  workers run it (heap frozen after the imports, collector off between previews),
- `blueprint check` of the project, server running and off,
- the generated project's local rehearsal (`python pipelines/rehearse.py`: train, gate, register,
  serve with azmlinfsrv, smoke test), first run (no champion) and a run against that champion,
  in a virtualenv with the project installed (`--project-venv`, created once when missing),
- `blueprint plan --against HEAD` of that project with one stack value changed,
- `blueprint fleet` over 10, 50 and 100 projects (three stacks each), and how its time grows
  (server off: its CPU figures count the command's own processes).

The preview server's sockets live in `.bench/run` (`BLUEPRINT_RUNTIME_DIR`), so the runs neither
use nor stop a server of the user's own.

`--only fleet` runs the last two alone (`--fleet-sizes 10,50` for fewer projects), `--only plan`
the help, copy, plan and check rows;
`--skip-rehearsal` leaves the rehearsal out.
The machine's core count and load average (before and after) are recorded with the figures:
other work on the machine slows every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".bench"
RESULTS = Path(__file__).with_name("RESULTS.md")
#: RESULTS.md keeps everything from this line on (notes, one-off comparisons) when rewritten.
KEEP_MARKER = "<!-- bench.py keeps what follows -->"
ENVIRONMENTS = ["dev", "preprod", "prod"]
#: Lines printed under the table (how the fleet's time grows).
NOTES: list[str] = []


def tool(name: str) -> str:
    """The console script next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"bench: {name} not found; run `make setup` first")
    return found


#: The environment of a command run with the preview server off (as under CI).
SERVER_OFF = {"BLUEPRINT_PREVIEW_SERVER": "off"}


def timed(argv: list[str], *, ok_codes=(0,), env: dict[str, str] | None = None,
          before=None) -> float:
    if before is not None:
        before()
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env=None if env is None else os.environ | env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise SystemExit(f"bench: {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return elapsed


def measure(argv: list[str], repeat: int, **kwargs) -> list[float]:
    return [timed(argv, **kwargs) for _ in range(repeat)]


def stop_preview_servers() -> None:
    """Stop the bench's preview servers (a server leaves when its socket goes) and wait until
    they are gone, so the next command starts one."""
    run_dir = Path(os.environ["BLUEPRINT_RUNTIME_DIR"])
    for sock in run_dir.glob("preview-*.sock"):
        sock.unlink(missing_ok=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = []
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                argv = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"mlops_blueprint.preview_server" in argv and str(run_dir).encode() in argv:
                alive.append(entry.name)
        if not alive:
            return
        time.sleep(0.05)


def copier_copy(dst: Path) -> float:
    if dst.exists():
        shutil.rmtree(dst)
    return timed([
        tool("copier"), "copy", "--trust", "--defaults", "--quiet", "--vcs-ref", "HEAD",
        "--data", "project_name=Bench Churn", "--data", f"environments=[{', '.join(ENVIRONMENTS)}]",
        str(REPO), str(dst),
    ])


#: Runs in a fresh interpreter: warm up as a preview worker does, then time each environment's
#: preview (the EnvironmentPlan, cost and policies included) REPEAT times. argv: project,
#: repeat, gc mode (default | frozen). Prints {env: [seconds...]} as JSON.
_IN_PROCESS = r"""
import gc, json, os, sys, time
from mlops_blueprint import preview_worker, previews
from mlops_blueprint.project import load_project
project_dir, repeat, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
preview_worker.warm() if mode == "frozen" else None
project = load_project(project_dir)
names = project.stack_names()
for name in names:  # the first preview pays the lazy imports a warm worker paid already
    previews.preview(project, project.stack(name), None)
if mode == "frozen":
    gc.collect(); gc.freeze(); gc.disable()
times = {name: [] for name in names}
for _ in range(repeat):
    for name in names:
        start = time.perf_counter()
        previews.preview(project, project.stack(name), None)
        times[name].append(time.perf_counter() - start)
print(json.dumps(times))
"""


def in_process(project: Path, repeat: int, mode: str) -> dict[str, list[float]]:
    import json

    proc = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(project), str(repeat), mode],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench: in-process previews failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"

def rehearsal_rows(project: Path, repeat: int, project_venv: Path) -> list[str]:
    """The local rehearsal's wall-clock time, as a user runs it in the generated project."""
    python = project_venv / "bin" / "python"
    if not python.exists():
        print(f"creating {project_venv} (pip install -e '.[dev]', once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(project_venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-U", "pip"], check=True)
    # Editable, so every new project (each bench run copies one) is what the venv runs.
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{project}[dev]"], check=True
    )
    rehearse = [str(python), str(project / "pipelines" / "rehearse.py")]
    shutil.rmtree(project / "mlruns", ignore_errors=True)
    first = timed(rehearse)  # no champion yet: registers version 1 and serves it
    again = measure(rehearse, repeat)  # a tie with the champion: nothing registered
    return [
        row("`python pipelines/rehearse.py` (first run, no champion)", [first],
            "train, register v1, azmlinfsrv up, smoke request answered"),
        row("`python pipelines/rehearse.py` (against the champion)", again,
            "same data: the champion keeps serving"),
    ]


def row(what: str, times: list[float], note: str = "") -> str:
    return (
        f"| {what} | {len(times)} | {min(times):.2f} | {statistics.median(times):.2f} | "
        f"{max(times):.2f} | {note} |"
    )


# --- plan --against and fleet -------------------------------------------------------------------


def git(cwd: Path, *args: str) -> None:
    env = os.environ | {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                        "GIT_COMMITTER_NAME": "bench",
                        "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def bench_plan_against(blueprint: str, template_project: Path, repeat: int) -> list[str]:
    """`plan --against HEAD` (both versions of three stacks) after a change to dev's stack."""
    project = WORK / "against"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(template_project, project)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "bench")
    stack = project / ".cloud/infra/Pulumi.dev.yaml"
    slug = yaml.safe_load((project / ".copier-answers.yml").read_text())["project_slug"]
    stack.write_text(stack.read_text().replace(f'# {slug}:computeMaxNodes: "2"',
                                               f'{slug}:computeMaxNodes: "4"'))
    print("blueprint plan --against HEAD ...", flush=True)
    times = measure([blueprint, "plan", str(project), "--against", "HEAD", "--format",
                     "markdown"], repeat)
    return [row("`blueprint plan --against HEAD --format markdown` (3 environments, both "
                "versions)", times, "6 previews in one pool")]


def make_fleet(template_project: Path, count: int) -> list[Path]:
    """`count` projects copied from one generated project, each with its own slug (answers,
    Pulumi project name, stack keys) and every fifth with its prod deployer filled in."""
    source_slug = yaml.safe_load((template_project / ".copier-answers.yml").read_text())[
        "project_slug"]
    fleet = WORK / "fleet"
    fleet.mkdir(exist_ok=True)
    projects = []
    for index in range(count):
        folder = fleet / f"p{index:03}"
        projects.append(folder)
        if folder.exists():
            continue
        shutil.copytree(template_project, folder)
        slug = f"{source_slug}-{index:03}"
        files = [folder / ".copier-answers.yml", *(folder / ".cloud/infra").rglob("Pulumi*.yaml")]
        for path in files:
            path.write_text(path.read_text().replace(source_slug, slug))
        if index % 5 == 0:
            prod = folder / ".cloud/infra/Pulumi.prod.yaml"
            prod.write_text(prod.read_text().replace(
                f'{slug}:deployerObjectId: "00000000-0000-0000-0000-000000000000"',
                f'{slug}:deployerObjectId: "9d2b1c3e-5f60-4a7b-8c9d-{index:012}"'))
    return projects


CPU_PER_STACK = """
import gc, sys, time
from mlops_blueprint import previews, project as projects
stacks = [(p, p.stack(e)) for p in map(projects.load_project, sys.argv[1:])
          for e in p.stack_names()]
previews.preview(*stacks[0], None)  # warm: imports and the program's first run
gc.disable()  # as the pool's workers run
start = time.process_time()
for project, stack in stacks[1:]:
    previews.preview(project, stack, None)
print((time.process_time() - start) / (len(stacks) - 1))
"""


def cpu_per_stack(projects: list[Path]) -> float:
    """CPU seconds one preview costs in a warm process: what the load of the machine does not
    change, so the fleet's time on idle cores can be told from a busy machine's figures."""
    proc = subprocess.run([sys.executable, "-c", CPU_PER_STACK, *map(str, projects)],
                          capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


FLEET_WITH_CPU = """
import os, resource, sys, time
sys.argv = ["blueprint", "fleet", *sys.argv[1:], "--format", "json"]
start = time.perf_counter()
from mlops_blueprint.cli import main
real, sys.stdout = sys.stdout, open(os.devnull, "w")
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
sys.stdout = real
wall = time.perf_counter() - start
from multiprocessing import forkserver
forkserver._forkserver._stop()  # reap the warm process: its workers' CPU then counts here
used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(code, wall, sum(u.ru_utime + u.ru_stime for u in used))
"""


def fleet_run(projects: list[Path]) -> tuple[float, float]:
    """`blueprint fleet PROJECTS --format json` in a fresh process, as a user runs it: its
    wall-clock seconds and the CPU seconds of the whole run (the command, the warm process and
    every worker), which the machine's other load does not change."""
    proc = subprocess.run([sys.executable, "-c", FLEET_WITH_CPU, *map(str, projects)],
                          capture_output=True, text=True, check=False,
                          env=os.environ | SERVER_OFF)
    last = (proc.stdout.strip().splitlines() or ["?"])[-1].split()
    if proc.returncode != 0 or len(last) != 3 or last[0] not in ("0", "1"):
        raise SystemExit(f"bench: blueprint fleet failed:\n{proc.stdout}\n{proc.stderr}")
    return float(last[1]), float(last[2])


def bench_fleet(template_project: Path, sizes: list[int], repeat: int) -> list[str]:
    """`blueprint fleet` over growing fleets: the time per stack should stay flat (linear)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, cores or 1)
    rows, per_stack, cpu_per = [], [], []
    for size in sizes:
        projects = make_fleet(template_project, size)
        print(f"blueprint fleet over {size} projects ...", flush=True)
        runs = [fleet_run(projects) for _ in range(1 if size >= 50 else repeat)]
        times = [wall for wall, _ in runs]
        cpu = statistics.median(c for _, c in runs)
        stacks = size * len(ENVIRONMENTS)
        per_stack.append(statistics.median(times) / stacks)
        cpu_per.append(cpu / stacks)
        rows.append(row(
            f"`blueprint fleet` over {size} projects ({stacks} stacks)", times,
            f"{per_stack[-1] * 1000:.0f} ms per stack; {cpu:.0f} CPU s in all, so about "
            f"{cpu / cores:.0f} s on {cores} idle cores"))
    if len(sizes) > 1:
        def growth(values: list[float]) -> str:
            return ", ".join(f"{sizes[0]}→{size}: ×{values[0] and v / values[0]:.2f}"
                             for size, v in zip(sizes[1:], values[1:], strict=True))

        NOTES.append(
            f"How `blueprint fleet` grows, per stack relative to {sizes[0]} projects (1.00 = "
            f"linear, below 1 = fixed costs spread): CPU {growth(cpu_per)} "
            f"({', '.join(f'{c * 1000:.0f}' for c in cpu_per)} ms per stack); wall-clock "
            f"{growth(per_stack)} (the machine's other load moves these)."
        )
        print(NOTES[-1])
    cpu = cpu_per_stack(make_fleet(template_project, 10))
    NOTES.append(
        f"One preview costs {cpu * 1000:.0f} ms of CPU in a warm process (garbage collector off, "
        f"as in the pool's workers). The fleet rows' CPU seconds cover the whole run (the "
        f"command, the warm process, every worker): divided by the {cores} cores they give the "
        "time on an idle machine, whatever else the machine was doing while they were measured."
    )
    print(NOTES[-1])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure")
    parser.add_argument(
        "--project-venv", type=Path, default=WORK / "project-venv",
        help="virtualenv for the generated project's rehearsal (created when missing)",
    )
    parser.add_argument("--skip-rehearsal", action="store_true", help="skip the rehearsal rows")

    parser.add_argument("--only", choices=["fleet", "plan"],
                        help="only plan --against and fleet, or only plan and check")
    parser.add_argument("--fleet-sizes", default="10,50,100",
                        help="projects per fleet run, comma-separated (default 10,50,100)")
    args = parser.parse_args()
    repeat = max(1, args.repeat)
    sizes = [int(n) for n in args.fleet_sizes.split(",") if n.strip()]
    os.environ.setdefault("COPIER_SETTINGS_PATH", str(WORK / "no-copier-settings.yml"))
    WORK.mkdir(exist_ok=True)
    os.environ["BLUEPRINT_RUNTIME_DIR"] = str(WORK / "run")  # the bench's own preview servers
    os.environ.setdefault("BLUEPRINT_PREVIEW_SERVER", "on")
    blueprint = tool("blueprint")
    rows = []
    load_before = load_average()
    if args.only == "fleet":
        print("copier copy ...", flush=True)
        copier_copy(WORK / "project")
        rows += bench_plan_against(blueprint, WORK / "project", repeat)
        rows += bench_fleet(WORK / "project", sizes, repeat)
        stop_preview_servers()
        write_results(rows, repeat, load_before, keep_other_rows=True,
                      only="`plan --against` and `fleet`")
        return 0

    print("blueprint --help ...", flush=True)
    rows.append(row("`blueprint --help`", measure([blueprint, "--help"], repeat + 2)))
    rows.append(row("`blueprint plan --help`", measure([blueprint, "plan", "--help"], repeat + 2)))

    print("copier copy ...", flush=True)
    project = WORK / "project"
    copies = [copier_copy(WORK / f"copy-{i}") for i in range(repeat)]
    rows.append(row("`copier copy --defaults` (3 environments)", copies))
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(WORK / "copy-0", project)

    timed([blueprint, "plan", str(project), "--env", "dev"])  # starts the preview server
    for env in ENVIRONMENTS:
        print(f"blueprint plan --env {env} ...", flush=True)
        times = measure([blueprint, "plan", str(project), "--env", env, "--format", "json"],
                        repeat)
        rows.append(row(f"`blueprint plan --env {env} --format json`", times,
                        "preview server running (every command after the first)"))
    dev = [blueprint, "plan", str(project), "--env", "dev", "--format", "json"]
    print("blueprint plan --env dev, the first command ...", flush=True)
    rows.append(row("`blueprint plan --env dev --format json`, the first command", measure(
        dev, repeat, before=stop_preview_servers), "it starts the preview server"))
    print("blueprint plan --env dev, server off ...", flush=True)
    rows.append(row("`blueprint plan --env dev --format json`, server off", measure(
        dev, repeat, env=SERVER_OFF), "the command's own pool, as under CI"))
    print("blueprint plan (all) ...", flush=True)
    every = [blueprint, "plan", str(project), "--format", "json"]
    for label, env, note in (("", None, "preview server running"),
                             (", server off", SERVER_OFF, "the command's own pool")):
        times = measure(every, repeat, env=env)
        per_env = [t / len(ENVIRONMENTS) for t in times]
        rows.append(row(f"`blueprint plan --format json` (all 3 environments){label}", times,
                        f"{note}; {statistics.median(per_env):.2f} s per environment"))
    for mode, label, note in (
            ("default", "", "collector as Python sets it"),
            ("frozen", ", as a worker", "heap frozen, collector off")):
        print(f"previews in one process ({mode} gc) ...", flush=True)
        for env, times in in_process(project, max(3, repeat), mode).items():
            rows.append(row(f"preview of {env} inside one warm process{label}", times, note))
    print("blueprint check ...", flush=True)
    check = [blueprint, "check", str(project)]
    rows.append(row("`blueprint check`", measure(check, repeat), "preview server running"))
    rows.append(row("`blueprint check`, server off", measure(check, repeat, env=SERVER_OFF),
                    "the command's own pool"))

    if args.only == "plan":
        stop_preview_servers()
        write_results(rows, repeat, load_before, keep_other_rows=True, only="`plan` and `check`")
        return 0
    if not args.skip_rehearsal:
        print("python pipelines/rehearse.py ...", flush=True)
        rows += rehearsal_rows(project, repeat, args.project_venv)

    rows += bench_plan_against(blueprint, project, repeat)
    rows += bench_fleet(project, sizes, repeat)

    for i in range(repeat):
        shutil.rmtree(WORK / f"copy-{i}", ignore_errors=True)
    stop_preview_servers()
    write_results(rows, repeat, load_before)
    return 0


def write_results(rows: list[str], repeat: int, load_before: str, *,
                  keep_other_rows: bool = False, only: str = "") -> None:
    """Write RESULTS.md; with `keep_other_rows`, rows of earlier runs that this run did not
    measure stay (a partial run updates its own rows only)."""
    if keep_other_rows and RESULTS.exists():
        def key(line: str) -> str:
            return line.split("|")[1].strip()

        fresh = {key(r): r for r in rows}
        table = RESULTS.read_text(encoding="utf-8").split(KEEP_MARKER)[0]
        old = [line for line in table.splitlines()
               if line.startswith("| ") and not line.startswith("| command |")]
        rows = [fresh.pop(key(line), line) for line in old] + list(fresh.values())
        NOTES.append(f"This run measured {only} only (`--only`): the date, repetitions and "
                     "load above are this run's; the other rows are kept from the previous run.")
    cpu = platform.processor() or platform.machine()
    load = load_average()
    text = "\n".join([
        "# Benchmarks",
        "",
        "Recorded by `python benchmarks/bench.py` (`make bench`): wall-clock seconds of each",
        "command run as a user runs it, a fresh process every time (so every figure includes",
        "Python's start-up and the command's imports).",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- repetitions: {repeat} (help: {repeat + 2}); load average (1, 5, 15 min) at the "
        f"start: {load_before}, at the end: {load} (other work on the machine slows every "
        "figure)",
        "",
        "| command | runs | min s | median s | max s | note |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *(f"{note}\n" for note in NOTES),
    ])
    kept = ""
    if RESULTS.exists():
        old = RESULTS.read_text(encoding="utf-8")
        if KEEP_MARKER in old:
            kept = "\n" + old[old.index(KEEP_MARKER):]
    RESULTS.write_text(text + kept, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
