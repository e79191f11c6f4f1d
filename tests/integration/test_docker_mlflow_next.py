"""The docker stack built with the next MLflow (NEXT_MLFLOW_VERSION in versions.env, a 3.5.x),
once per CI run: a client in spark-submit still reaches the server by its service name.

MLflow 3.5 answers 403 "Invalid Host header" to `Host: mlflow-server:5000` unless
MLFLOW_SERVER_ALLOWED_HOSTS lists it; docker/docker-compose.yml sets it. The negative control
clears it on the server and expects the same call to get that 403.

Skipped when no Docker engine answers; REQUIRE_DOCKER=1 (CI) makes that a failure instead. Its own
compose project, ports and data dir (work/test-docker-next), one worker: it can run beside the
stack of test_docker_stack.py. The two images tagged with the next version are kept for a re-run.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
import uuid

import pytest
import requests
from conftest import ROOT, artifact_files, rest
from test_docker_stack import (
    LOG_RUN,
    SETTINGS,
    docker_env,
    make,
    project_containers,
    require_engine,
    versions,
)
from test_docker_stack import compose as docker_compose

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

PINS = versions()
NEXT_VERSION = PINS["NEXT_MLFLOW_VERSION"]
TEST_WORK_DIR = ROOT / "work" / "test-docker-next"
DATA_DIR = TEST_WORK_DIR / "mlflow"
PROJECT = "spark-mlflow-next"
MLFLOW_PORT = 24555
MLFLOW_URL = f"http://127.0.0.1:{MLFLOW_PORT}"
NEXT = {
    "RUNTIME": "docker",
    "OFFLINE": "1",
    "MLFLOW_VERSION": NEXT_VERSION,
    "WORK_DIR": str(TEST_WORK_DIR),
    "COMPOSE_PROJECT_NAME": PROJECT,
    "BIND_HOST": "127.0.0.1",
    "MLFLOW_PORT": str(MLFLOW_PORT),
    "SPARK_MASTER_UI_PORT": "24080",
    "SPARK_MASTER_PORT": "24077",
    "SPARK_WORKER_UI_BASE_PORT": "24081",
    "DOCKER_WORKERS": "1",
    "ARTIFACT_MODE": "shared",
}
# docker_env() starts from test_docker_stack's SETTINGS: a key left out here would put this stack
# on that project's ports or data.
assert set(SETTINGS) <= set(NEXT), set(SETTINGS) - set(NEXT)

# What "cleared" means on the server: MLflow falls back to its defaults (localhost and private
# IPs). The compose file's `${MLFLOW_ALLOWED_HOSTS:-...}` turns an empty variable into the
# default list, so clearing takes a second compose file.
CLEARED_HOSTS_OVERRIDE = """\
services:
  mlflow-server:
    environment:
      MLFLOW_SERVER_ALLOWED_HOSTS: ""
"""
INVALID_HOST = "Invalid Host header"

# The server's version as the spark-submit container sees it: by service name.
VERSIONS_IN_SUBMIT = """
import mlflow, urllib.request as u
print(mlflow.__version__)
print(u.urlopen("http://mlflow-server:5000/version", timeout=10).read().decode().strip())
"""


def next_make(*args: str, timeout: float = 900, **overrides: str):
    return make(*args, timeout=timeout, **{**NEXT, **overrides})


def compose(*args: str, files: tuple[str, ...] = (), timeout: float = 300):
    return docker_compose(*args, files=files, settings=NEXT, timeout=timeout)


def in_submit(command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return compose("exec", "-T", "spark-submit", "sh", "-c", command, timeout=timeout)


def server_container() -> dict:
    ids = subprocess.run(
        [
            "docker",
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
            "--filter",
            "label=com.docker.compose.service=mlflow-server",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(ids) == 1, f"expected one running mlflow-server, found {ids}"
    out = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def server_env() -> dict[str, str]:
    return dict(e.split("=", 1) for e in server_container()["Config"]["Env"])


def wait_server_health(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{MLFLOW_URL}/health", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"{MLFLOW_URL}/health not OK after {timeout}s"
        time.sleep(0.5)


def venv_mlflow() -> str:
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip()


def timings(stderr: str) -> list[str]:
    """The build and start figures the scripts print (built ... in N s, rebuild to healthy)."""
    keys = ("built ", "stop + build:", "rebuild to healthy:", "up to date", "skipping")
    return [line.strip() for line in stderr.splitlines() if any(k in line for k in keys)]


def log_run(mode: str) -> subprocess.CompletedProcess:
    """LOG_RUN (create a run, log a param and an artifact) from spark-submit, which reaches the
    server at MLFLOW_TRACKING_URI=http://mlflow-server:5000."""
    experiment = f"next-{mode}-{uuid.uuid4().hex[:8]}"
    return in_submit(f"python -c {shlex.quote(LOG_RUN)} {experiment} {mode}")


def set_mode(mode: str) -> None:
    if server_env().get("ARTIFACT_MODE") != mode:
        result = next_make("up", ARTIFACT_MODE=mode)
        assert result.returncode == 0, result.stdout + result.stderr
    assert server_env()["ARTIFACT_MODE"] == mode


@pytest.fixture(scope="module")
def next_stack():
    require_engine()
    # build-base-image.sh runs setup.sh, which would install MLFLOW_VERSION (the next one here)
    # into .venv when its pins stamp is stale: bring it up to date with the real pins first.
    setup = subprocess.run(
        [str(ROOT / "scripts" / "setup.sh")],
        cwd=ROOT,
        env=docker_env(**{**NEXT, "MLFLOW_VERSION": PINS["MLFLOW_VERSION"]}),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    next_make("down", timeout=300)
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    started = time.monotonic()
    result = next_make("rebuild", timeout=1800)
    assert result.returncode == 0, f"make rebuild failed:\n{result.stdout}\n{result.stderr}"
    print(f"make rebuild with MLflow {NEXT_VERSION}: {time.monotonic() - started:.0f}s")
    print("\n".join(timings(result.stderr)))
    assert venv_mlflow() == PINS["MLFLOW_VERSION"], "the project's .venv must keep its own MLflow"
    yield
    down = next_make("down", timeout=300)
    (TEST_WORK_DIR / "cleared-hosts.yml").unlink(missing_ok=True)
    assert down.returncode == 0, down.stdout + down.stderr
    assert project_containers(PROJECT) == []


def test_next_version_is_a_newer_3_5():
    assert NEXT_VERSION.startswith("3.5.")
    have = tuple(int(x) for x in PINS["MLFLOW_VERSION"].split("."))
    assert tuple(int(x) for x in NEXT_VERSION.split(".")) > have


def test_spark_submit_has_the_next_client_and_the_server_reports_it(next_stack):
    out = in_submit(f"python -c {shlex.quote(VERSIONS_IN_SUBMIT)}")
    assert out.returncode == 0, out.stdout + out.stderr
    client, server = out.stdout.split()[-2:]
    assert (client, server) == (NEXT_VERSION, NEXT_VERSION)
    assert requests.get(f"{MLFLOW_URL}/version", timeout=5).text.strip() == NEXT_VERSION
    # The setting under test is what the server runs with.
    assert "mlflow-server:5000" in server_env()["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")


@pytest.mark.parametrize("mode", ["shared", "served"])
def test_a_run_logged_by_service_name_lands(next_stack, mode):
    # served: the artifact upload, too, goes to mlflow-server:5000 and through the Host check.
    set_mode(mode)
    out = log_run(mode)
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = out.stdout.split()[-1]
    run = rest(MLFLOW_URL, "runs/get", run_id=run_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"mode": mode}
    prefix = "mlflow-artifacts:/" if mode == "served" else "/mlflow/artifacts/"
    assert run["info"]["artifact_uri"].startswith(prefix)
    assert artifact_files(MLFLOW_URL, run_id) == {"notes/note.txt": len(mode)}


def host_header_check() -> dict:
    """The doctor's host-header protection check on this stack (the doctor as a whole fails
    here: the project's venv keeps MLFLOW_VERSION, the stack runs the next one)."""
    result = next_make("doctor", "ARGS=--json", timeout=300)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return checks["host-header protection"]


def test_doctor_sees_the_host_header_check_on(next_stack):
    check = host_header_check()
    assert check["status"] == "pass", check
    assert f"MLflow {NEXT_VERSION} answers 403" in check["detail"]


def test_with_allowed_hosts_cleared_the_same_call_gets_403(next_stack):
    override = TEST_WORK_DIR / "cleared-hosts.yml"
    override.write_text(CLEARED_HOSTS_OVERRIDE)
    try:
        up = compose(
            "up", "--detach", "--no-deps", "--no-build", "mlflow-server", files=(str(override),)
        )
        assert up.returncode == 0, up.stdout + up.stderr
        wait_server_health()
        assert server_env()["MLFLOW_SERVER_ALLOWED_HOSTS"] == ""
        out = log_run(server_env()["ARTIFACT_MODE"])
        assert out.returncode != 0, out.stdout
        assert "403" in out.stderr and INVALID_HOST in out.stderr, out.stderr[-2000:]
        # The server itself is up and serving the API: only the service name is refused.
        assert rest(MLFLOW_URL, "experiments/get", experiment_id="0")["experiment"]["name"]
        # The doctor names it before a job does.
        check = host_header_check()
        assert check["status"] == "fail" and "mlflow-server:5000" in check["detail"], check
        assert check["runbook"].endswith("#host-header-protection")
    finally:
        # Back to the compose file alone (the stack's real setting) for whatever runs next.
        restored = next_make("up")
        assert restored.returncode == 0, restored.stdout + restored.stderr
    assert server_env()["MLFLOW_SERVER_ALLOWED_HOSTS"] != ""
