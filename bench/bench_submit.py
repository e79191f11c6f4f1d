"""Bench: `make submit` (stack already up) against a bare `spark-submit` of the same job and
arguments, interleaved in one run; and the share of the job's wall time spent logging artifacts.

Goals: make submit / bare spark-submit <= 1.1x; log_artifacts share < 10%.
Run with `make bench BENCH=submit` (about 4-6 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import MASTER_URL, MLFLOW_URL, ROOT, WORK_DIR, env, make  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
JOB_ARGS = "--folds 2 --reg-params 0.01,0.1 --elastic-net-params 0.0 --max-iter 20"


def spark_home() -> Path:
    return next((ROOT / ".venv" / "lib").glob("python3*/site-packages/pyspark"))


def bare_submit() -> tuple[float, str]:
    """spark-submit with only what the job needs set by hand: what a user would type."""
    python = str(ROOT / ".venv" / "bin" / "python")
    tmp = WORK_DIR / "tmp"
    (tmp / "dfs").mkdir(parents=True, exist_ok=True)
    job_env = env(
        MLFLOW_TRACKING_URI=MLFLOW_URL,
        MLFLOW_DFS_TMP=str(tmp / "dfs"),
        TMPDIR=str(tmp),
        OUTPUT_DIR=str(WORK_DIR / "output"),
        PYSPARK_PYTHON=python,
        PYSPARK_DRIVER_PYTHON=python,
        SPARK_CONF_DIR=str(ROOT / "conf" / "spark"),
        GIT_PYTHON_REFRESH="quiet",
        EXPERIMENT="bench-submit",
    )
    cmd = [
        str(spark_home() / "bin" / "spark-submit"),
        "--master",
        MASTER_URL,
        "--driver-memory",
        "1g",
        "--executor-memory",
        "768m",
        str(ROOT / "jobs" / "train_classifier.py"),
        *JOB_ARGS.split(),
    ]
    started = time.monotonic()
    done = subprocess.run(
        cmd, env=job_env, check=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    return time.monotonic() - started, done.stdout


def run_id_of(stdout: str) -> str:
    return json.loads(re.search(r"^RESULT_JSON (\{.*\})$", stdout, re.M).group(1))["run_id"]


def artifact_share(run_id: str) -> tuple[float, float]:
    """(log_artifacts seconds, share of the job's total) as the job logged them."""
    url = f"{MLFLOW_URL}/api/2.0/mlflow/runs/get"
    metrics = requests.get(url, params={"run_id": run_id}, timeout=10).json()["run"]["data"]
    values = {m["key"]: m["value"] for m in metrics["metrics"]}
    logging = values["log_artifacts_seconds"]
    return logging, logging / values["total_seconds"]


def main() -> int:
    make("up")
    print(f"bench_submit: {ROUNDS} interleaved rounds, job args: {JOB_ARGS}")
    print(f"{'round':>5}  {'make submit':>11}  {'bare spark-submit':>17}  {'ratio':>6}")
    ratios, shares = [], []
    try:
        for i in range(1, ROUNDS + 1):
            wrapped, out_wrapped = make(
                "submit", capture=True, EXPERIMENT="bench-submit", ARGS=JOB_ARGS
            )
            bare, out_bare = bare_submit()
            ratios.append(wrapped / bare)
            for out in (out_wrapped, out_bare):
                shares.append(artifact_share(run_id_of(out)))
            print(f"{i:>5}  {wrapped:>10.1f}s  {bare:>16.1f}s  {wrapped / bare:>6.2f}")
    finally:
        make("down")
    seconds = [s for s, _ in shares]
    share = [p for _, p in shares]
    ratio = statistics.median(ratios)
    print(f"make submit / bare spark-submit: median {ratio:.2f}x (goal <= 1.1x)")
    print(
        f"log_artifacts: median {statistics.median(seconds):.2f}s, "
        f"{100 * statistics.median(share):.1f}% of the job's wall time, "
        f"max {100 * max(share):.1f}% (goal < 10%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
