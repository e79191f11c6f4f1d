"""Fixtures for tests on the real stack: an isolated local stack (own ports, own work dir)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_WORK_DIR = ROOT / "work" / "test"


def read_versions() -> dict[str, str]:
    """versions.env as a dict (the one place versions are written)."""
    pairs = {}
    for line in (ROOT / "versions.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


VERSIONS = read_versions()

# Ports apart from the defaults, so `make test` never touches a developer's running stack or data.
STACK_SETTINGS = {
    "RUNTIME": "local",
    "WORK_DIR": str(TEST_WORK_DIR),
    "MLFLOW_PORT": "15555",
    "SPARK_MASTER_PORT": "17077",
    "SPARK_MASTER_UI_PORT": "18080",
    "SPARK_WORKER_UI_BASE_PORT": "18081",
    "WORKERS": "2",
    "BIND_HOST": "127.0.0.1",
}
# Derived settings the caller's shell may carry; the scripts derive them again from the ports.
DERIVED = [
    "MLFLOW_URL",
    "MLFLOW_TRACKING_URI",
    "SPARK_MASTER_URL",
    "SPARK_MASTER_UI_URL",
    "SPARK_WORKER_UI_URLS",
    "STACK_LOG_DIR",
]


def stack_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DERIVED}
    env.update(STACK_SETTINGS)
    env.update(overrides)
    return env


def run_make(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
    """Run `make ARGS` at the repo root; return the CompletedProcess (text, both streams)."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env or stack_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def our_processes() -> list[int]:
    """PIDs of processes the test stack started (tagged in their environment)."""
    tag = f"STACK_COMPONENT={TEST_WORK_DIR}:".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(var.startswith(tag) for var in environ.split(b"\0")):
            pids.append(int(entry.name))
    return pids


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def stack_ports() -> list[int]:
    base = int(STACK_SETTINGS["SPARK_WORKER_UI_BASE_PORT"])
    workers = int(STACK_SETTINGS["WORKERS"])
    return [
        int(STACK_SETTINGS["MLFLOW_PORT"]),
        int(STACK_SETTINGS["SPARK_MASTER_PORT"]),
        int(STACK_SETTINGS["SPARK_MASTER_UI_PORT"]),
        *range(base, base + workers),
    ]


def ensure_up() -> None:
    result = run_make("up")
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"


def ensure_down() -> None:
    result = run_make("down")
    assert result.returncode == 0, f"make down failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session", autouse=True)
def _stop_stack_at_end():
    yield
    if (TEST_WORK_DIR / "run").is_dir():
        run_make("down")


@pytest.fixture
def running_stack() -> dict[str, str]:
    """The isolated local stack, up and healthy; returns its environment."""
    ensure_up()
    return stack_env()


@pytest.fixture
def mlflow_url() -> str:
    return f"http://127.0.0.1:{STACK_SETTINGS['MLFLOW_PORT']}"
