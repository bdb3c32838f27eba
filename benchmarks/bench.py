"""Wall-clock figures for the commands users wait on (not a test). Writes benchmarks/RESULTS.md.

    python benchmarks/bench.py [--repeat N]      (or: make bench)

Measures, each over a few repetitions, as a user runs them (a fresh process every time):
- `blueprint --help` and `blueprint plan --help` (should answer at once),
- one `copier copy --defaults` of this template (three environments),
- `blueprint plan --env ENV --format json` for each environment of that project,
- `blueprint plan --format json` of all environments in one process,
- the preview of each environment inside one warm process (what a worker pays per stack once
  the imports are paid), with Python's cyclic garbage collector as it is by default and as the
  workers run it (heap frozen after the imports, collector off between previews),
- `blueprint check` of the project,
- the generated project's local rehearsal (`python pipelines/rehearse.py`: train, gate, register,
  serve with azmlinfsrv, smoke test), first run (no champion) and a run against that champion,
  in a virtualenv with the project installed (`--project-venv`, created once when missing).
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

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".bench"
RESULTS = Path(__file__).with_name("RESULTS.md")
#: RESULTS.md keeps everything from this line on (notes, one-off comparisons) when rewritten.
KEEP_MARKER = "<!-- bench.py keeps what follows -->"
ENVIRONMENTS = ["dev", "preprod", "prod"]


def tool(name: str) -> str:
    """The console script next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"bench: {name} not found; run `make setup` first")
    return found


def timed(argv: list[str], *, ok_codes=(0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise SystemExit(f"bench: {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return elapsed


def measure(argv: list[str], repeat: int, **kwargs) -> list[float]:
    return [timed(argv, **kwargs) for _ in range(repeat)]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure")
    parser.add_argument(
        "--project-venv", type=Path, default=WORK / "project-venv",
        help="virtualenv for the generated project's rehearsal (created when missing)",
    )
    parser.add_argument("--skip-rehearsal", action="store_true", help="skip the rehearsal rows")
    args = parser.parse_args()
    repeat = max(1, args.repeat)
    os.environ.setdefault("COPIER_SETTINGS_PATH", str(WORK / "no-copier-settings.yml"))
    WORK.mkdir(exist_ok=True)
    blueprint = tool("blueprint")
    rows = []
    load_before = load_average()

    print("blueprint --help ...", flush=True)
    rows.append(row("`blueprint --help`", measure([blueprint, "--help"], repeat + 2)))
    rows.append(row("`blueprint plan --help`", measure([blueprint, "plan", "--help"], repeat + 2)))

    print("copier copy ...", flush=True)
    project = WORK / "project"
    copies = [copier_copy(WORK / f"copy-{i}") for i in range(repeat)]
    rows.append(row("`copier copy --defaults` (3 environments)", copies))
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(WORK / "copy-0", project)

    for env in ENVIRONMENTS:
        print(f"blueprint plan --env {env} ...", flush=True)
        times = measure([blueprint, "plan", str(project), "--env", env, "--format", "json"], repeat)
        rows.append(row(f"`blueprint plan --env {env} --format json`", times, "one process each"))
    print("blueprint plan (all) ...", flush=True)
    times = measure([blueprint, "plan", str(project), "--format", "json"], repeat)
    per_env = [t / len(ENVIRONMENTS) for t in times]
    rows.append(row("`blueprint plan --format json` (all 3 environments)", times,
                    f"{statistics.median(per_env):.2f} s per environment"))
    for mode, note in (("default", "collector as Python sets it"),
                       ("frozen", "as a worker runs: heap frozen, collector off")):
        print(f"previews in one process ({mode} gc) ...", flush=True)
        for env, times in in_process(project, max(3, repeat), mode).items():
            rows.append(row(f"preview of {env} inside one warm process", times, note))
    print("blueprint check ...", flush=True)
    rows.append(row("`blueprint check`", measure([blueprint, "check", str(project)], repeat)))

    if not args.skip_rehearsal:
        print("python pipelines/rehearse.py ...", flush=True)
        rows += rehearsal_rows(project, repeat, args.project_venv)

    for i in range(repeat):
        shutil.rmtree(WORK / f"copy-{i}", ignore_errors=True)

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
    ])
    kept = ""
    if RESULTS.exists():
        old = RESULTS.read_text(encoding="utf-8")
        if KEEP_MARKER in old:
            kept = "\n" + old[old.index(KEEP_MARKER):]
    RESULTS.write_text(text + kept, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
