"""The local runtime on real processes: up, status, a lost worker, a taken port, down."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

from conftest import (
    STACK_SETTINGS,
    TEST_WORK_DIR,
    ensure_down,
    ensure_up,
    our_processes,
    port_is_free,
    run_make,
    stack_ports,
)

RUN_DIR = TEST_WORK_DIR / "run"


def pid_of(component: str) -> int:
    return int((RUN_DIR / f"{component}.pid").read_text())


def status_json() -> tuple[int, dict]:
    result = run_make("status", "ARGS=--json")
    return result.returncode, json.loads(result.stdout)


def test_taken_port_is_named_and_nothing_starts():
    ensure_down()
    port = int(STACK_SETTINGS["SPARK_MASTER_UI_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_make("up", timeout=120)
    assert result.returncode != 0
    assert f"port {port}" in result.stderr + result.stdout
    assert f"pid {os.getpid()}" in result.stderr + result.stdout
    assert "SPARK_MASTER_UI_PORT" in result.stderr + result.stdout
    assert our_processes() == []
    assert not list(RUN_DIR.glob("*.pid"))


def test_up_gives_a_healthy_stack_with_the_expected_workers():
    ensure_down()
    result = run_make("up")
    assert result.returncode == 0, result.stderr
    code, status = status_json()
    assert code == 0, status
    assert status["healthy"] is True
    names = {c["name"]: c for c in status["components"]}
    assert set(names) == {"mlflow-server", "spark-master", "spark-worker-1", "spark-worker-2"}
    assert all(c["healthy"] for c in names.values())
    assert "2/2" in names["spark-master"]["detail"]


def test_up_twice_is_harmless():
    ensure_up()
    before = {c: pid_of(c) for c in ("mlflow-server", "spark-master", "spark-worker-1")}
    result = run_make("up")
    assert result.returncode == 0, result.stderr
    assert "already up" in result.stderr
    assert {c: pid_of(c) for c in before} == before


def test_a_killed_worker_is_named_within_seconds_and_up_brings_it_back():
    ensure_up()
    os.killpg(pid_of("spark-worker-2"), signal.SIGKILL)
    started = time.monotonic()
    code, status = status_json()
    elapsed = time.monotonic() - started
    assert code != 0
    bad = {c["name"] for c in status["components"] if not c["healthy"]}
    # The worker is named; the master may also flag its alive count (1/2) once it noticed.
    assert "spark-worker-2" in bad
    assert bad <= {"spark-worker-2", "spark-master"}
    # The master still counts the dead worker as ALIVE for 60 s: the direct probe must not wait.
    assert elapsed < 10, f"status took {elapsed:.1f} s"

    result = run_make("up")
    assert result.returncode == 0, result.stderr
    assert "spark-worker-2" in result.stderr
    assert status_json()[0] == 0


def test_down_leaves_no_process_and_frees_every_port():
    ensure_up()
    assert our_processes(), "the stack should be running before down"
    ensure_down()
    assert our_processes() == []
    assert not list(RUN_DIR.glob("*.pid"))
    taken = [p for p in stack_ports() if not port_is_free(p)]
    assert taken == []
    result = run_make("down")
    assert result.returncode == 0
    assert "not running" in result.stderr
