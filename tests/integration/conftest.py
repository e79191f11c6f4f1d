"""Fixtures for tests on the real stack: an isolated local stack (own ports, own work dir)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

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


def run_script(name: str, *args: str, timeout: float = 600, **env: str):
    """Run scripts/NAME directly: make turns every failure into exit 2, the scripts keep
    their own exit codes (e.g. check-artifacts: 1 differences, 2 a view cannot be read)."""
    return subprocess.run(
        [str(ROOT / "scripts" / name), *args],
        cwd=ROOT,
        env=stack_env(**env),
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


def stop_component(name: str, sig: int = 15, timeout: float = 30) -> None:
    """Stop one component of the test stack behind the scripts' back (a fault), and wait
    until its whole process group is gone."""
    import time

    pid = int((TEST_WORK_DIR / "run" / f"{name}.pid").read_text())
    os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} (group {pid}) still running {timeout} s after signal {sig}")


_USED_THE_STACK = []  # set once this session brought the test stack up


def ensure_up() -> None:
    _USED_THE_STACK.append(True)
    result = run_make("up")
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"


def ensure_down() -> None:
    result = run_make("down")
    assert result.returncode == 0, f"make down failed:\n{result.stdout}\n{result.stderr}"


SMALL_GRID = "--folds 2 --reg-params 0.1 --elastic-net-params 0.0 --max-iter 20"
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def result_of(stdout: str) -> dict:
    match = re.search(r"^RESULT_JSON (\{.*\})$", stdout, re.MULTILINE)
    assert match, f"no RESULT_JSON line in:\n{stdout[-3000:]}"
    return json.loads(match.group(1))


def rest(mlflow_url: str, endpoint: str, **params) -> dict:
    answer = requests.get(f"{mlflow_url}/api/2.0/mlflow/{endpoint}", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()


def artifact_files(mlflow_url: str, run_id: str, path: str = "") -> dict[str, int]:
    """Every file of a run as MLflow's REST API lists it: path -> size (0 when absent)."""
    files: dict[str, int] = {}
    listing = rest(mlflow_url, "artifacts/list", run_id=run_id, path=path)
    for entry in listing.get("files", []):
        if entry["is_dir"]:
            files.update(artifact_files(mlflow_url, run_id, entry["path"]))
        else:
            files[entry["path"]] = int(entry.get("file_size", 0))
    return files


def inventory(mlflow_url: str) -> dict[str, dict]:
    """Every run the server knows, with its status and its artifact files (path -> size)."""
    found: dict[str, dict] = {}
    experiments = requests.post(
        f"{mlflow_url}/api/2.0/mlflow/experiments/search", json={"max_results": 1000}, timeout=10
    ).json()["experiments"]
    ids = [e["experiment_id"] for e in experiments]
    page_token = None
    while True:
        body = {"experiment_ids": ids, "max_results": 1000}
        if page_token:
            body["page_token"] = page_token
        answer = requests.post(
            f"{mlflow_url}/api/2.0/mlflow/runs/search", json=body, timeout=30
        ).json()
        for run in answer.get("runs", []):
            run_id = run["info"]["run_id"]
            found[run_id] = {
                "status": run["info"]["status"],
                "files": artifact_files(mlflow_url, run_id),
            }
        page_token = answer.get("next_page_token")
        if not page_token:
            return found


def poll(what: str, predicate, timeout: float = 180, interval: float = 0.2, job=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if job is not None and job.poll() is not None:
            raise AssertionError(f"the job ended (exit {job.returncode}) before {what}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_through_fault(
    job: subprocess.Popen,
    awaited: str,
    predicate,
    fault,
    poll_timeout: float = 180,
    job_timeout: float = 900,
) -> tuple[str, object]:
    """Wait for `awaited` (predicate's first truthy value) while the job runs, apply fault(value),
    then let the job end; returns its output and the value. The job never outlives the test."""
    try:
        value = poll(awaited, predicate, timeout=poll_timeout, job=job)
        fault(value)
        output, _ = job.communicate(timeout=job_timeout)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    return output, value


def worker_running_an_executor(worker_uis: dict[str, str]) -> str | None:
    """A worker (name -> UI URL) that runs an executor right now, asked of each worker's own UI."""
    for name, url in worker_uis.items():
        try:
            if requests.get(f"{url}/json/", timeout=2).json()["executors"]:
                return name
        except (requests.RequestException, ValueError, KeyError):
            continue
    return None


def running_run(mlflow_url: str, experiment: str) -> str | None:
    try:
        answer = requests.get(
            f"{mlflow_url}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": experiment},
            timeout=2,
        )
        if answer.status_code != 200:
            return None
        exp_id = answer.json()["experiment"]["experiment_id"]
        runs = requests.post(
            f"{mlflow_url}/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [exp_id], "max_results": 5},
            timeout=2,
        ).json()
        return next((r["info"]["run_id"] for r in runs.get("runs", [])), None)
    except (requests.RequestException, ValueError, KeyError):
        return None


@pytest.fixture(scope="session")
def _submitted_once() -> dict:
    ensure_up()
    result = run_make("submit", "EXPERIMENT=it-submit", f"ARGS={SMALL_GRID}", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result_of(result.stdout) | {"stdout": result.stdout}


@pytest.fixture
def submitted(_submitted_once) -> dict:
    """One real submit of the pipeline with a small grid (made once per session), on a stack
    that is up again if an earlier test stopped it."""
    ensure_up()
    return _submitted_once


@pytest.fixture(scope="session", autouse=True)
def _stop_stack_at_end():
    yield
    # Only a session that used the stack stops it: another suite may be using it right now.
    if _USED_THE_STACK and (TEST_WORK_DIR / "run").is_dir():
        run_make("down")


@pytest.fixture
def running_stack() -> dict[str, str]:
    """The isolated local stack, up and healthy; returns its environment."""
    ensure_up()
    return stack_env()


@pytest.fixture
def mlflow_url() -> str:
    return f"http://127.0.0.1:{STACK_SETTINGS['MLFLOW_PORT']}"
