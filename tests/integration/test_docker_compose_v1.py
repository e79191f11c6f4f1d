"""The docker runtime driven by Compose v1 (`docker-compose` 1.29, COMPOSE=docker-compose): the
same scripts bring the stack up healthy, a run logged from spark-submit lands, check-artifacts
agrees across host, containers and REST, and `make down` leaves no container.

Skipped when no Docker engine answers, or when docker-compose v1 is not installed (REQUIRE_DOCKER=1,
as in CI where scripts/docker-engine.sh installs it, makes both a failure). Its own compose
project, ports and data dir (work/test-docker-v1), one worker.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import uuid

import pytest
from conftest import ROOT, artifact_files
from test_docker_stack import (
    LOG_RUN,
    SETTINGS,
    compose,
    docker_env,
    make,
    project_containers,
    require_engine,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

TEST_WORK_DIR = ROOT / "work" / "test-docker-v1"
PROJECT = "spark-mlflow-v1"
MLFLOW_URL = "http://127.0.0.1:29555"
V1 = {
    "COMPOSE": "docker-compose",
    "RUNTIME": "docker",
    "OFFLINE": "1",
    "WORK_DIR": str(TEST_WORK_DIR),
    "COMPOSE_PROJECT_NAME": PROJECT,
    "BIND_HOST": "127.0.0.1",
    "MLFLOW_PORT": "29555",
    "SPARK_MASTER_UI_PORT": "29080",
    "SPARK_MASTER_PORT": "29077",
    "SPARK_WORKER_UI_BASE_PORT": "29081",
    "DOCKER_WORKERS": "1",
    "ARTIFACT_MODE": "shared",
}
# docker_env() starts from test_docker_stack's SETTINGS: a key left out here would put this stack
# on that project's ports or data.
assert set(SETTINGS) <= set(V1), set(SETTINGS) - set(V1)


def v1_make(*args: str, timeout: float = 900):
    return make(*args, timeout=timeout, **V1)


def compose_v1_version() -> str | None:
    if not shutil.which("docker-compose"):
        return None
    out = subprocess.run(
        ["docker-compose", "version", "--short"], capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="module")
def v1_stack():
    require_engine()
    version = compose_v1_version()
    if not (version or "").startswith("1."):
        why = f"docker-compose v1 is not installed (found {version!r})"
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"REQUIRE_DOCKER=1 but {why}; scripts/docker-engine.sh start installs it")
        pytest.skip(why)
    v1_make("down", timeout=300)
    shutil.rmtree(TEST_WORK_DIR / "mlflow", ignore_errors=True)
    result = v1_make("up", timeout=1800)
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
    yield result
    down = v1_make("down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert project_containers(PROJECT) == []


def test_up_with_compose_v1_is_healthy_and_says_which_compose(v1_stack):
    assert "compose v1" in v1_stack.stderr, v1_stack.stderr[-2000:]
    status = v1_make("status", "ARGS=--json", timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    names = {c["name"] for c in json.loads(status.stdout)["components"]}
    assert names == {"mlflow-server", "spark-master", "spark-worker-1"}


def test_a_run_from_spark_submit_lands_and_check_artifacts_agrees(v1_stack):
    experiment = f"v1-{uuid.uuid4().hex[:8]}"
    out = compose(
        "exec",
        "-T",
        "spark-submit",
        "sh",
        "-c",
        f"python -c {shlex.quote(LOG_RUN)} {experiment} v1",
        settings=V1,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = out.stdout.split()[-1]
    assert artifact_files(MLFLOW_URL, run_id) == {"notes/note.txt": 2}
    check = subprocess.run(
        [str(ROOT / "scripts" / "check-artifacts.sh"), "--run-id", run_id, "--json"],
        cwd=ROOT,
        env=docker_env(**V1),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    views = {v["name"] for v in json.loads(check.stdout)["views"]}
    # spark-submit, mlflow-server and the worker, beside the host folder, REST and manifests.
    assert len({v for v in views if v.startswith("container:")}) == 3, views
