"""`make doctor` and `make check-versions` on a real local stack of their own (own work dir and
ports, so the other integration tests can run at the same time): a healthy stack passes, a lost
worker is named with its runbook section, a version pin that differs is named, and a stopped
stack with a squatted port says both."""

from __future__ import annotations

import json
import socket

import conftest
import pytest
from conftest import ROOT, VERSIONS, port_is_free, run_make, run_script, stack_env

WORK_DIR = ROOT / "work" / "test-doctor"
SETTINGS = {
    "WORK_DIR": str(WORK_DIR),
    "MLFLOW_PORT": "22555",
    "SPARK_MASTER_PORT": "22077",
    "SPARK_MASTER_UI_PORT": "22080",
    "SPARK_WORKER_UI_BASE_PORT": "22081",
}
PORTS = [22555, 22077, 22080, 22081, 22082]
MLFLOW, SPARK = VERSIONS["MLFLOW_VERSION"], VERSIONS["SPARK_VERSION"]


def env(**extra: str) -> dict[str, str]:
    return stack_env(**SETTINGS, **extra)


def make(*args: str, timeout: float = 300, **extra: str):
    return run_make(*args, env=env(**extra), timeout=timeout)


def script(name: str, *args: str, **extra: str):
    """scripts/NAME with its own exit code (make turns every failure into 2)."""
    return run_script(name, *args, timeout=300, **SETTINGS, **extra)


def up() -> None:
    result = make("up", timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def doctor_json() -> tuple[int, dict]:
    result = script("doctor.sh", "--json")
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module", autouse=True)
def own_stack():
    up()
    yield
    result = make("down")
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture
def healthy():
    up()  # again: starts only what an earlier test stopped


def test_doctor_passes_on_a_healthy_stack(healthy):
    result = make("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "doctor: all checks passed" in result.stdout
    assert "FAIL" not in result.stdout
    code, report = doctor_json()
    assert code == 0 and report["ok"] is True and report["failed"] == []
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("health: mlflow-server", "health: spark-worker-2", "artifact CLI", "sqlite"):
        assert checks[name]["status"] == "pass", checks[name]
    # Ports held by this stack's own processes count as fine, and say whose they are.
    assert "held by our mlflow-server" in checks["port 22555"]["detail"]
    assert "held by our spark-worker-2" in checks["port 22082"]["detail"]
    # The Host-header check: the pinned server predates it; MLflow's default list (no list set)
    # admits the URL our clients use for when it is raised.
    host = checks["host-header protection"]
    assert host["status"] == "pass", host
    if tuple(int(p) for p in MLFLOW.split(".")[:2]) < (3, 5):
        assert f"MLflow {MLFLOW} predates the Host-header middleware (3.5)" in host["detail"]
        assert "admits 127.0.0.1:22555 (MLFLOW_URL)" in host["detail"]
    else:
        assert "answers 403 'Invalid Host header' to Host: rebind.invalid" in host["detail"]


def test_check_versions_shows_the_same_versions_everywhere(healthy):
    result = make("check-versions")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"versions agree: MLflow {MLFLOW}, Spark {SPARK}" in result.stdout
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["mlflow-server"][-2:] == [MLFLOW, "-"]
    assert rows["local"][-2:] == [MLFLOW, SPARK]  # the "local venv" row
    assert rows["spark-worker-2"][-2:] == ["-", SPARK]
    code_json = script("check-versions.sh", "--json")
    data = json.loads(code_json.stdout)
    assert code_json.returncode == 0 and data["ok"] and data["differences"] == []
    components = {r["component"] for r in data["rows"]}
    assert {"pinned", "mlflow-server", "local venv", "spark-master", "spark-worker-1"} <= components
    for row in data["rows"]:
        assert row["mlflow"] in (None, MLFLOW) and row["spark"] in (None, SPARK), row


def test_a_pin_that_differs_is_named_with_a_failing_exit(healthy):
    result = script("check-versions.sh", MLFLOW_VERSION="9.9.9")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "versions DIFFER" in out
    assert f"MLflow: mlflow-server (GET /version) has {MLFLOW}, pinned 9.9.9" in out
    assert f"MLflow: local venv (.venv/bin/python) has {MLFLOW}, pinned 9.9.9" in out
    assert "Spark:" not in out  # only what differs is named
    assert "docs/runbook.md#version-mismatch" in out
    assert make("check-versions", MLFLOW_VERSION="9.9.9").returncode != 0
    # The doctor names it too, in its versions check.
    doctor = script("doctor.sh", "--json", MLFLOW_VERSION="9.9.9")
    report = json.loads(doctor.stdout)
    versions = next(c for c in report["checks"] if c["name"] == "versions")
    assert doctor.returncode == 1 and versions["status"] == "fail"
    assert versions["runbook"] == "docs/runbook.md#version-mismatch"


def test_a_server_started_with_the_middleware_disabled_is_named(healthy, monkeypatch):
    """The server inherits make's environment: started with the disabling variable set, the doctor
    reads it from the server's /proc (the doctor's own environment does not have it) and fails
    with the runbook section; restarted without it, the check passes again."""
    monkeypatch.setattr(conftest, "TEST_WORK_DIR", WORK_DIR)
    conftest.stop_component("mlflow-server")
    try:
        result = make("up", timeout=600, MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE="true")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        code, report = doctor_json()
        assert code == 1 and report["failed"] == ["host-header protection"], report["failed"]
        host = next(c for c in report["checks"] if c["name"] == "host-header protection")
        assert host["runbook"] == "docs/runbook.md#host-header-protection"
        assert "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE=true disables" in host["detail"]
    finally:
        conftest.stop_component("mlflow-server")
        up()
    code, report = doctor_json()
    assert code == 0, report["failed"]


def test_a_lost_worker_is_named_with_its_runbook_section(healthy, monkeypatch):
    # conftest.stop_component reads PID files under its TEST_WORK_DIR: point it at our stack.
    monkeypatch.setattr(conftest, "TEST_WORK_DIR", WORK_DIR)
    conftest.stop_component("spark-worker-2")
    result = make("doctor")
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    fail_lines = [i for i, line in enumerate(lines) if line.lstrip().startswith("FAIL")]
    named = [lines[i] for i in fail_lines if "spark-worker-2" in lines[i]]
    assert named, result.stdout
    for i in fail_lines:
        assert lines[i + 1].strip().startswith("-> docs/runbook.md#"), lines[i : i + 2]
    code, report = doctor_json()
    assert code == 1
    assert {"process: spark-worker-2", "health: spark-worker-2"} <= set(report["failed"])
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["process: spark-worker-2"]["runbook"] == "docs/runbook.md#worker-lost"
    assert checks["health: spark-worker-2"]["runbook"] == "docs/runbook.md#worker-lost"
    # The other worker and the server are not blamed.
    assert checks["health: spark-worker-1"]["status"] == "pass"
    assert checks["health: mlflow-server"]["status"] == "pass"
    # The fix the runbook gives: `make up` starts the missing worker; the doctor is happy again.
    up()
    assert doctor_json()[0] == 0


def test_a_stopped_stack_and_a_squatted_port_are_both_named():
    result = make("down")
    assert result.returncode == 0, result.stderr
    assert all(port_is_free(p) for p in PORTS)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 22080))
        squatter.listen()
        code, report = doctor_json()
    checks = {c["name"]: c for c in report["checks"]}
    assert code == 1
    assert checks["stack"]["runbook"] == "docs/runbook.md#stack-not-running"
    assert checks["port 22080"]["runbook"] == "docs/runbook.md#port-taken"
    squatted = checks["port 22080"]["detail"]
    assert squatted.startswith("SPARK_MASTER_UI_PORT: port 22080 is already in use by pid")
    assert checks["port 22555"]["status"] == "pass"  # free
    assert checks["health"]["status"] == "skip"
