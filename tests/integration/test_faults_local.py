"""Faults on the real local stack, each with its expected outcome: nothing is lost."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    SMALL_GRID,
    STACK_SETTINGS,
    artifact_files,
    ensure_down,
    ensure_up,
    inventory,
    rest,
    result_of,
    run_make,
    run_script,
    run_through_fault,
    running_run,
    stack_env,
    stop_component,
    worker_running_an_executor,
)

WORKER_UI_BASE = int(STACK_SETTINGS["SPARK_WORKER_UI_BASE_PORT"])
WORKER_UIS = {f"spark-worker-{n}": f"http://127.0.0.1:{WORKER_UI_BASE + n - 1}" for n in (1, 2)}
GRID_4 = "--folds 2 --reg-params 0.01,0.1 --elastic-net-params 0.0,0.5 --max-iter 20"


def start_submit(**env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ROOT / "scripts" / "submit.sh")],
        cwd=ROOT,
        env=stack_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def worker_with_an_executor() -> str | None:
    return worker_running_an_executor(WORKER_UIS)


def test_a_worker_killed_during_a_submit_and_the_job_completes_on_the_others(mlflow_url):
    ensure_up()
    job = start_submit(EXPERIMENT="fault-worker", ARGS=GRID_4)
    output, _ = run_through_fault(
        job,
        "an executor of the job on a worker",
        worker_with_an_executor,
        lambda victim: stop_component(victim, sig=9),
    )
    assert job.returncode == 0, output[-3000:]
    run = rest(mlflow_url, "runs/get", run_id=result_of(output)["run_id"])["run"]
    assert run["info"]["status"] == "FINISHED"
    ensure_up()


def test_mlflow_stopped_during_a_submit_loses_nothing_and_relog_completes_the_run(mlflow_url):
    ensure_up()
    experiment = f"fault-mlflow-{int(time.time())}"
    job = start_submit(EXPERIMENT=experiment, ARGS=SMALL_GRID)
    output, run_id = run_through_fault(
        job,
        "the job's run to appear",
        lambda: running_run(mlflow_url, experiment),
        lambda _: stop_component("mlflow-server"),
    )
    assert job.returncode == 4, output[-3000:]
    result = result_of(output)
    assert result["status"] == "pending"
    local = Path(result["output_dir"])
    assert (local / "pending.json").is_file()
    manifest = json.loads((local / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert (local / entry["path"]).stat().st_size == entry["size"]
    assert f"make relog DIR={local}" in output

    ensure_up()
    relog = run_make("relog", f"DIR={local}", timeout=300)
    assert relog.returncode == 0, relog.stdout[-2000:] + relog.stderr[-2000:]
    run = rest(mlflow_url, "runs/get", run_id=run_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    listed = artifact_files(mlflow_url, run_id)
    assert {f["path"]: f["size"] for f in manifest["files"]}.items() <= listed.items()
    assert not (local / "pending.json").exists()
    check = run_script("check-artifacts.sh", "--run-id", run_id, "--checksum", timeout=120)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]


@pytest.mark.parametrize(
    "disruption",
    ["restart mlflow-server", "make down then make up", "make rebuild"],
)
def test_runs_and_artifacts_survive(disruption, submitted, mlflow_url):
    before = inventory(mlflow_url)
    assert submitted["run_id"] in before
    if disruption == "restart mlflow-server":
        stop_component("mlflow-server")
        ensure_up()
    elif disruption == "make down then make up":
        ensure_down()
        ensure_up()
    else:
        result = run_make("rebuild")
        assert result.returncode == 0, result.stderr[-2000:]
    assert inventory(mlflow_url) == before
    check = run_script("check-artifacts.sh", "--checksum", timeout=300)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]


def test_three_submits_at_once_give_three_complete_runs(mlflow_url):
    ensure_up()
    jobs = [start_submit(EXPERIMENT="concurrent", ARGS=SMALL_GRID) for _ in range(3)]
    outputs = [job.communicate(timeout=1200)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0, 0], [o[-1500:] for o in outputs]
    run_ids = {result_of(o)["run_id"] for o in outputs}
    assert len(run_ids) == 3
    args = [a for run_id in sorted(run_ids) for a in ("--run-id", run_id)]
    check = run_script("check-artifacts.sh", "--json", *args, timeout=120)
    assert check.returncode == 0, check.stdout[-3000:]
    report = json.loads(check.stdout)
    assert report["counts"]["runs"] == 3
    manifests = {v["name"]: v for v in report["views"]}["manifest"]
    assert manifests["coverage"].startswith("3 runs")
