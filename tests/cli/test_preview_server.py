"""The preview server: later commands reuse one warm process, and what they report is what the
command's own pool reports. Also what a project or another user must not be able to do with it.

Each test runs the real `blueprint` console script in child processes (the server outlives
them) with its own socket folder (`preview_mode`'s, or one made here), and stops the servers it
started. The previews' failures through the server (a program that kills its worker, exits or
hangs) are the parametrised cases of test_previews.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cli_helpers import preview_server_pids, stop_preview_servers

from mlops_blueprint import preview_server

INFRA = Path(".cloud") / "infra"
BLUEPRINT = str(Path(sys.executable).with_name("blueprint"))


@pytest.fixture
def socket_folder():
    folder = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))  # socket paths must be short
    try:
        yield folder
    finally:
        stop_preview_servers(folder)
        shutil.rmtree(folder, ignore_errors=True)


def run(argv, *, folder: Path | None, cwd: Path | None = None, **env: str):
    """`blueprint ARGV` in a child process, through the server of `folder` (None: off)."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("CI", "TF_BUILD", preview_server.RUNTIME_DIR)}
    environ[preview_server.SWITCH] = "off" if folder is None else "on"
    if folder is not None:
        environ[preview_server.RUNTIME_DIR] = str(folder)
    environ.update(env)
    return subprocess.run([BLUEPRINT, *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env=environ, timeout=300, check=False)


def server_pid(folder: Path) -> int:
    """The server itself: the one preview-server process whose parent is not one."""
    pids = preview_server_pids(folder)
    (pid,) = [pid for pid, parent in pids.items() if parent not in pids]
    return pid


def custom_program(project: Path, source: str) -> Path:
    (project / INFRA / "__main__.py").write_text(source)
    (project / INFRA / "custom-program.yaml").write_text("reason: test\n")
    return project


def test_later_commands_reuse_one_server_and_report_what_the_own_pool_reports(
        fresh_project, socket_folder):
    argv = ["plan", fresh_project, "--format", "json"]
    first = run(argv, folder=socket_folder)
    assert first.returncode == 0, first.stderr
    (sock,) = socket_folder.glob("preview-*.sock")
    assert sock.stat().st_mode & 0o777 == 0o600
    assert socket_folder.stat().st_mode & 0o777 == 0o700
    server = server_pid(socket_folder)

    second = run(argv, folder=socket_folder)
    own_pool = run(argv, folder=None)
    assert second.returncode == own_pool.returncode == 0, second.stderr + own_pool.stderr
    assert server_pid(socket_folder) == server  # the same server answered
    assert list(socket_folder.glob("preview-*.sock")) == [sock]
    # byte for byte: resources, role assignments, verdicts and cost of every environment
    assert first.stdout == second.stdout == own_pool.stdout
    assert [p["environment"] for p in json.loads(first.stdout)] == ["dev", "preprod", "prod"]


def test_commands_started_together_start_one_server(fresh_project, socket_folder):
    environ = {**os.environ, preview_server.SWITCH: "on",
               preview_server.RUNTIME_DIR: str(socket_folder)}
    commands = [subprocess.Popen([BLUEPRINT, "plan", str(fresh_project), "--env", "dev",
                                  "--format", "json"], env=environ, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(4)]
    outputs = [command.communicate(timeout=300) for command in commands]
    assert [command.returncode for command in commands] == [0] * 4, outputs
    assert len({stdout for stdout, _ in outputs}) == 1
    server_pid(socket_folder)  # exactly one server
    assert len(list(socket_folder.glob("preview-*.sock"))) == 1


def test_each_worker_runs_with_its_own_commands_environment(project_copy, socket_folder):
    """The server was started by the first command; a later command's variables (the ones a
    program or the Azure SDK may read) are the ones its worker sees, not the first one's."""
    custom_program(project_copy, (
        "import os\n"
        "from pulumi_azure_native import resources\n"
        "resources.ResourceGroup(os.environ['BLUEPRINT_TEST_PROBE'])\n"
    ))
    names = []
    for probe in ("first", "second"):
        done = run(["plan", project_copy, "--env", "dev", "--format", "json"],
                   folder=socket_folder, BLUEPRINT_TEST_PROBE=probe)
        assert done.returncode in (0, 1), done.stderr  # 1: a bare group breaks policies
        names.append([r["name"] for r in json.loads(done.stdout)["resources"]])
    assert names == [["first"], ["second"]]
    assert len([p for p, parent in preview_server_pids(socket_folder).items()
                if parent not in preview_server_pids(socket_folder)]) == 1


@pytest.mark.parametrize("module", ["yaml", "pulumi"])
def test_a_module_in_the_working_folder_never_stands_in_for_a_library(
        project_copy, preview_mode, module):
    """`blueprint plan` is run from the project's root, which a pull request writes. A
    `yaml.py` there must not be imported by the processes that judge the project (the
    forkserver is started with `-c`, which would put the working folder first on sys.path)."""
    marker = project_copy / "IMPORTED"
    (project_copy / f"{module}.py").write_text(
        f"open({str(marker)!r}, 'w').write('the project ran code in the judge')\n")
    done = run(["plan", "--env", "prod", "--format", "json"], folder=preview_mode,
               cwd=project_copy)
    assert not marker.exists()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["violations"] == []


def test_the_server_imports_the_blueprint_the_command_imports(project_copy, socket_folder,
                                                              tmp_path):
    """A relative `PYTHONPATH` (`PYTHONPATH=generator:infra` in a checkout) names folders of the
    command's working folder. The server runs in `/`: told the same relative folders, it would
    import another installation's blueprint (or none) under the command's fingerprint, and
    judge with code the command never checked."""
    import blueprint_infra
    import mlops_blueprint

    custom_program(project_copy, (
        "import blueprint_infra, mlops_blueprint\n"
        "from pulumi_azure_native import resources\n"
        "for module in (mlops_blueprint, blueprint_infra):\n"
        "    resources.ResourceGroup(module.__file__.replace('/', '|'))\n"
    ))
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "gen").symlink_to(Path(mlops_blueprint.__file__).parents[1])
    (checkout / "inf").symlink_to(Path(blueprint_infra.__file__).parents[1])
    expected = sorted(str(checkout / folder / name / "__init__.py").replace("/", "|")
                      for folder, name in (("gen", "mlops_blueprint"),
                                           ("inf", "blueprint_infra")))
    for folder in (None, socket_folder):  # the command's own pool, then the server
        done = run(["plan", project_copy, "--env", "dev", "--format", "json"], folder=folder,
                   cwd=checkout, PYTHONPATH=os.pathsep.join(["gen", "inf"]))
        assert done.returncode in (0, 1), done.stderr  # 1: bare groups break policies
        assert sorted(r["name"] for r in json.loads(done.stdout)["resources"]) == expected
    assert list(socket_folder.glob("preview-*.sock"))  # the server answered


def test_a_server_that_would_not_run_the_fingerprinted_code_does_not_serve(socket_folder):
    """The server checks the fingerprint it was started for against its own view (its
    `sys.path`, the package files it imports): a mismatch leaves at once, and the command
    previews in its own pool."""
    wrong = "0" * 24
    path = preview_server.socket_path(socket_folder, wrong)
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(preview_server.import_path())}
    done = subprocess.run(
        [sys.executable, "-P", "-m", "mlops_blueprint.preview_server", str(path), wrong],
        env=environ, timeout=60, check=False, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert not path.exists()


def test_the_server_keeps_nothing_of_the_environment_of_the_command_that_started_it(
        fresh_project, project_copy, socket_folder):
    """A variable given to one command (`AZURE_CLIENT_SECRET=... blueprint plan`) ends with it
    when previews run in its own pool. The server outlives that command: it must not keep the
    variables, where a later command's program (another project's) reads them, from its own
    process (`/proc/self/environ` is the environment it was started with, whatever
    `os.environ` says) or from the server's."""
    secret = "the-first-commands-secret"
    first = run(["plan", fresh_project, "--env", "dev"], folder=socket_folder,
                BLUEPRINT_TEST_SECRET=secret)
    assert first.returncode == 0, first.stderr
    custom_program(project_copy, (
        "import os\n"
        "from pulumi_azure_native import resources\n"
        "seen = b''\n"
        "for pid in ('self', os.environ['BLUEPRINT_TEST_SERVER']):\n"
        "    with open(f'/proc/{pid}/environ', 'rb') as handle:\n"
        "        seen += handle.read()\n"
        f"resources.ResourceGroup('leaked' if {secret.encode()!r} in seen else 'clean')\n"
    ))
    later = run(["plan", project_copy, "--env", "dev", "--format", "json"],
                folder=socket_folder, BLUEPRINT_TEST_SERVER=str(server_pid(socket_folder)))
    assert later.returncode in (0, 1), later.stderr
    assert [r["name"] for r in json.loads(later.stdout)["resources"]] == ["clean"]


def test_a_command_that_goes_away_takes_its_worker_with_it(project_copy, socket_folder):
    pid_file = project_copy / "worker.pid"
    custom_program(project_copy, (
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n"
    ))
    environ = {**os.environ, preview_server.SWITCH: "on",
               preview_server.RUNTIME_DIR: str(socket_folder)}
    command = subprocess.Popen([BLUEPRINT, "plan", str(project_copy), "--env", "dev"],
                               env=environ, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not pid_file.exists() or not pid_file.read_text():
        assert command.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    assert worker in preview_server_pids(socket_folder)  # the server's fork runs the program
    command.send_signal(signal.SIGKILL)
    command.wait()
    deadline = time.monotonic() + 10
    while worker in preview_server_pids(socket_folder):
        assert time.monotonic() < deadline, "the worker outlived its command"
        time.sleep(0.05)
    assert server_pid(socket_folder)  # the server itself stays for the next command


def test_a_socket_folder_open_to_others_is_not_used(fresh_project, socket_folder):
    socket_folder.chmod(0o755)
    done = run(["plan", fresh_project, "--env", "dev", "--format", "json"],
               folder=socket_folder)
    assert done.returncode == 0, done.stderr  # previewed in the command's own pool
    assert list(socket_folder.iterdir()) == []
    assert preview_server_pids(socket_folder) == {}


SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


@pytest.mark.skipif(os.geteuid() != 0 or SYSTEM_PYTHON is None,
                    reason="needs root, to act as another user, and a python3 it may run")
def test_another_user_cannot_reach_the_server(fresh_project, socket_folder):
    socket_folder.chmod(0o755)  # open to all: the folder the blueprint makes inside is not
    own = socket_folder / "run"
    done = run(["plan", fresh_project, "--env", "dev"], folder=own)
    assert done.returncode == 0, done.stderr
    assert own.stat().st_mode & 0o777 == 0o700
    (sock,) = own.glob("preview-*.sock")
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    s.connect({str(sock)!r})\n"
        "except PermissionError:\n"
        "    sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    nobody = subprocess.run([SYSTEM_PYTHON, "-c", probe], user=65534, timeout=30, check=False)
    assert nobody.returncode == 0
    stop_preview_servers(own)


FAKE_SERVER = """
import builtins, os, pickle, socket, struct, sys

class Payload:
    def __reduce__(self):
        return builtins.exec, (f"open({sys.argv[2]!r}, 'w').write('ran')",)

listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
listener.listen(8)
print("listening", flush=True)
while True:
    conn, _ = listener.accept()
    try:
        if conn.recv(1 << 20):  # the command's hello (a probe sends none)
            body = pickle.dumps(Payload())
            conn.sendall(struct.pack("!i", len(body)) + body)
    except OSError:
        pass
    conn.close()
"""


@pytest.mark.skipif(os.geteuid() != 0 or SYSTEM_PYTHON is None,
                    reason="needs root, to act as another user, and a python3 it may run")
def test_a_socket_another_user_listens_on_is_never_talked_to(fresh_project, socket_folder,
                                                             tmp_path):
    """The folder is the user's own, checked once; a folder given by `BLUEPRINT_RUNTIME_DIR`,
    `XDG_RUNTIME_DIR` or `TMPDIR` under a parent another user may write can be swapped after
    that check. What the command reads from a server it unpickles: it talks only to a server
    of its own user (`SO_PEERCRED`, as the server checks the command)."""
    first = run(["plan", fresh_project, "--env", "dev"], folder=socket_folder)
    assert first.returncode == 0, first.stderr
    (sock,) = socket_folder.glob("preview-*.sock")
    stop_preview_servers(socket_folder)
    theirs = Path(tempfile.mkdtemp(prefix="bp-other-", dir="/tmp"))
    marker = tmp_path / "RAN"
    try:
        os.chown(theirs, 65534, 65534)
        fake = subprocess.Popen(
            [SYSTEM_PYTHON, "-c", FAKE_SERVER, str(theirs / "s"), str(marker)],
            user=65534, stdout=subprocess.PIPE, text=True)
        try:
            assert fake.stdout.readline().strip() == "listening"
            os.rename(theirs / "s", sock)  # the end state of a swapped folder
            done = run(["plan", fresh_project, "--env", "dev", "--format", "json"],
                       folder=socket_folder)
        finally:
            fake.kill()
            fake.wait()
    finally:
        shutil.rmtree(theirs, ignore_errors=True)
    assert not marker.exists(), "the command unpickled another user's message"
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["violations"] == []


def test_a_new_server_for_a_changed_installation_and_the_old_one_leaves(
        fresh_project, socket_folder, tmp_path, monkeypatch):
    package = tmp_path / "probe_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(preview_server, "_PACKAGES", (*preview_server._PACKAGES,
                                                      "probe_package"))
    before = preview_server.fingerprint()
    os.utime(package / "__init__.py", ns=(1, 1))
    edited = preview_server.fingerprint()
    assert edited != before  # an edited file: a new server
    (tmp_path / "pyyaml-9.9.dist-info").mkdir()
    assert preview_server.fingerprint() != edited  # any distribution installed or upgraded

    stale = socket_folder / "preview-0123456789abcdef01234567.sock"
    stale.write_text("")
    done = run(["plan", fresh_project, "--env", "dev"], folder=socket_folder)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()  # the other server's socket is gone, so it leaves
    assert len(list(socket_folder.glob("preview-*.sock"))) == 1


def test_a_command_whose_import_path_repeats_a_folder_is_served(fresh_project, preview_mode,
                                                                monkeypatch):
    """pytest (and a .pth file) can put a folder on sys.path twice; the server's `site` keeps
    it once, and their fingerprints must still agree."""
    from mlops_blueprint.previews import EnvironmentPlan, PreviewRequest, preview_many

    monkeypatch.setattr(sys, "path", [*sys.path, sys.path[-1], sys.path[0]])
    (outcome,) = preview_many([PreviewRequest(fresh_project, "dev")])
    assert isinstance(outcome, EnvironmentPlan)
    # preview_mode checks that the server answered (not the command's own pool)


def test_an_idle_server_leaves(fresh_project, socket_folder):
    done = run(["plan", fresh_project, "--env", "dev"], folder=socket_folder,
               BLUEPRINT_PREVIEW_SERVER_IDLE="1")
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 30
    while preview_server_pids(socket_folder) or list(socket_folder.glob("preview-*.sock")):
        assert time.monotonic() < deadline, "the idle server did not leave"
        time.sleep(0.1)


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, True),
    ({"CI": "true"}, False),  # GitHub Actions
    ({"TF_BUILD": "True"}, False),  # Azure Pipelines
    ({"CI": "true", preview_server.SWITCH: "on"}, True),
    ({preview_server.SWITCH: "off"}, False),
])
def test_on_by_default_except_in_ci(monkeypatch, environ, expected):
    for key in ("CI", "TF_BUILD", preview_server.SWITCH):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert preview_server.enabled() is expected
