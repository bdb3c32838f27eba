"""Rehearse the whole model chain on this machine, offline, before CI runs it in Azure.

    python pipelines/rehearse.py [--output-dir out/rehearsal]

1. train: the pipeline's steps with the components' own command lines (run_locally.py);
2. evaluate against the local champion: the latest version in the project's local MLflow
   registry (the `mlruns/` store every local run uses), scored on the same test split;
3. register the candidate there only if it beats the champion, with its lineage tags;
4. serve the champion (the new model if it won) with `azmlinfsrv`, the HTTP server Azure ML's
   managed deployments run, on 127.0.0.1 and a free port, with code/score/score.py;
5. send the smoke-test request CD sends (code/score/sample-request.json) and check the answer
   the way CD does (smoke.py): schema, no NaN, latency budget.

It ends with the served model's answer, or one line naming what failed (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import run_locally
import smoke
import training_pipeline
from workspace import PROJECT_ROOT, StageError, one_line

STORE = PROJECT_ROOT / "mlruns"
SCORE_SCRIPT = PROJECT_ROOT / "code" / "score" / "score.py"
#: Seconds the server may take to start (it imports MLflow and scikit-learn first).
STARTUP_TIMEOUT = 90.0


class RehearsalFailed(StageError):
    """A step of the rehearsal failed."""


def use_local_store(store: Path = STORE, environ=os.environ) -> str:
    """One MLflow store for tracking and the model registry: every local run uses it."""
    uri = environ.get("MLFLOW_TRACKING_URI") or store.resolve().as_uri()
    environ["MLFLOW_TRACKING_URI"] = uri
    environ["MLFLOW_REGISTRY_URI"] = uri
    environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Ids of another store's experiment or run would send the steps' runs astray.
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        environ.pop(name, None)
    return uri


def local_champion(name: str) -> str | None:
    """The latest registered version of `name` in the local registry; None before the first."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        versions = MlflowClient().search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    latest = max((int(v.version) for v in versions), default=None)
    return None if latest is None else str(latest)


def download(name: str, version: str, destination: Path) -> Path:
    import mlflow

    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    return Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(destination))
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


#: Requests to the local server never go through a proxy.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    with DIRECT.open(request, timeout=timeout) as response:
        return response.status, response.read()


def start_server(model_dir: Path, port: int, log_file: Path) -> subprocess.Popen:
    server = shutil.which("azmlinfsrv", path=str(Path(sys.executable).parent)) or shutil.which(
        "azmlinfsrv"
    )
    if server is None:
        raise RehearsalFailed(
            'azmlinfsrv not found: install the dev extra (pip install -e ".[dev]")'
        )
    command = [
        server,
        "--entry_script",
        str(SCORE_SCRIPT),
        "--model_dir",
        str(model_dir),
        "--port",
        str(port),
    ]
    environment = {**os.environ, "AZUREML_MODEL_DIR": str(model_dir)}
    log = log_file.open("w")
    return subprocess.Popen(
        command, cwd=SCORE_SCRIPT.parent, env=environment, stdout=log, stderr=subprocess.STDOUT
    )


def wait_until_ready(process: subprocess.Popen, port: int, log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_file.read_text()[-600:].strip().splitlines()
            raise RehearsalFailed(
                f"azmlinfsrv exited with {process.returncode}: {tail[-1] if tail else ''} "
                f"(log: {log_file})"
            )
        try:
            status, _ = http("GET", f"http://127.0.0.1:{port}/", timeout=2.0)
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RehearsalFailed(f"azmlinfsrv did not answer within {STARTUP_TIMEOUT:.0f}s ({log_file})")


def smoke_test(port: int, budget: float = smoke.LATENCY_BUDGET) -> dict:
    """The request CD sends to a new deployment, sent to the local server, checked alike."""
    request = smoke.sample_request()
    started = time.monotonic()
    try:
        _, body = http("POST", f"http://127.0.0.1:{port}/score", json.dumps(request).encode())
    except urllib.error.HTTPError as error:
        raise smoke.SmokeTestFailed(
            f"the server answered {error.code}: {error.read()[:200]!r}"
        ) from None
    return smoke.check_response(request, body, time.monotonic() - started, budget)


def rehearse(output_dir: Path, *, in_process: bool = False) -> dict:
    """Run the chain; returns what happened (versions, the served answer)."""
    use_local_store()
    output_dir = output_dir.resolve()
    name = training_pipeline.default_model_name()
    champion = local_champion(name)
    champion_dir = download(name, champion, output_dir / "champion") if champion else None
    started = time.monotonic()
    print(f"1/4 champion: {f'{name} v{champion}' if champion else 'none yet'}", flush=True)
    shutil.rmtree(output_dir / "run", ignore_errors=True)  # the steps write fresh folders
    try:
        produced = run_locally.run_locally(
            output_dir / "run",
            in_process=in_process,
            model_name=name,
            champion_model=champion_dir,
            lineage={"reference_data": "local-reference:1", "git_commit": "local"},
        )
    except run_locally.StepFailed as error:
        raise RehearsalFailed(str(error)) from None
    info = json.loads((produced["model_info"] / "model_info.json").read_text())
    served = info["version"] if info["registered"] else champion
    print(
        f"2/4 evaluate + register ({time.monotonic() - started:.0f}s): {info['reason']}; "
        f"{'registered v' + info['version'] if info['registered'] else 'nothing registered'}",
        flush=True,
    )
    if served is None:
        raise RehearsalFailed("no model to serve: the first candidate was not registered")
    model_dir = download(name, served, output_dir / "serving" / "model")
    port = free_port()
    log_file = output_dir / "serving" / "azmlinfsrv.log"
    print(f"3/4 serving {name} v{served} with azmlinfsrv on 127.0.0.1:{port}", flush=True)
    process = start_server(model_dir, port, log_file)
    try:
        wait_until_ready(process, port, log_file)
        print(f"    ready after {time.monotonic() - started:.0f}s", flush=True)
        answer = smoke_test(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print(f"4/4 the served model answered the smoke test: {json.dumps(answer)}", flush=True)
    return {
        "model": name,
        "champion": champion,
        "registered": info["version"],
        "served": served,
        "answer": answer,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=PROJECT_ROOT / "out" / "rehearsal",
        help="where step outputs, the served model and the server log go",
    )
    args = parser.parse_args(argv)
    try:
        rehearse(args.output_dir)
    except StageError as error:
        print(f"error: rehearsal: {one_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
