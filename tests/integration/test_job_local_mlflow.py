"""The training job under spark-submit --master local[2] against a throw-away MLflow server.

No cluster needed: this checks the job itself (what reaches MLflow, that the model loads back
and predicts) and relog.py. Servers run on free ports in 5600-5699 with a temporary SQLite
database and artifact store, each in its own process group that its fixture stops. The job logs
to a server in served-artifacts mode (uploads over HTTP, as in docker); relog is also tried
against a plain-path artifact root (the client writes the files itself).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import artifact_files, poll, rest, result_of

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
JOB = ROOT / "jobs" / "train_classifier.py"
RELOG = ROOT / "jobs" / "relog.py"
sys.path.insert(0, str(ROOT / "jobs"))
import pipeline_lib as lib  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime for Spark"),
]
JOB_ARGS = ["--folds", "2", "--reg-params", "0.01,0.1", "--elastic-net-params", "0.0"]
JOB_ARGS += ["--max-iter", "20", "--experiment", "it-local-job"]


def free_port(first: int = 5600, last: int = 5699) -> int:
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 5600-5699")


def healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_server(base: Path, served: bool):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if served:
        store = ["--serve-artifacts", "--artifacts-destination", str(base / "artifacts"),
                 "--default-artifact-root", "mlflow-artifacts:/"]  # fmt: skip
    else:
        store = ["--default-artifact-root", str(base / "artifacts")]
    log = open(base / "server.log", "wb")  # noqa: SIM115 (closed in teardown)
    server = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{base}/db.sqlite", *store],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own group: the uvicorn child goes down with it
    )  # fmt: skip
    try:
        poll("MLflow /health", lambda: server.poll() is not None or healthy(url), timeout=90)
        assert server.poll() is None, (base / "server.log").read_text()[-2000:]
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        poll("the MLflow server to stop", lambda: not healthy(url), timeout=20)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    yield from start_server(tmp_path_factory.mktemp("mlflow-served"), served=True)


@pytest.fixture(scope="module")
def plain_mlflow_server(tmp_path_factory):
    yield from start_server(tmp_path_factory.mktemp("mlflow-plain"), served=False)


def job_env(tmp: Path, tracking_uri: str) -> dict:
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        MLFLOW_TRACKING_URI=tracking_uri,
        OUTPUT_DIR=str(tmp / "output"),
        MLFLOW_DFS_TMP=str(tmp / "dfs"),
        TMPDIR=str(tmp),
        SPARK_LOCAL_IP="127.0.0.1",
        GIT_PYTHON_REFRESH="quiet",
        PYSPARK_PYTHON=str(VENV_BIN / "python"),
    )
    return env


def local_files(run_dir: Path) -> dict[str, int]:
    manifest = lib.read_json(str(run_dir / "manifest.json"))
    files = {f["path"]: f["size"] for f in manifest["files"]}
    files["manifest.json"] = (run_dir / "manifest.json").stat().st_size
    return files


@pytest.fixture(scope="module")
def job_run(mlflow_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("job")
    started = time.monotonic()
    proc = subprocess.run(
        [str(VENV_BIN / "spark-submit"), "--master", "local[2]", str(JOB), *JOB_ARGS],
        env=job_env(tmp, mlflow_server), capture_output=True, text=True, timeout=900,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = result_of(proc.stdout)
    print(f"job wall time {wall:.1f} s")
    return {**result, "tmp": tmp, "stdout": proc.stdout, "wall": wall}


def test_run_has_params_metrics_tags_and_exactly_the_local_copy(job_run, mlflow_server):
    run = rest(mlflow_server, "runs/get", run_id=job_run["run_id"])["run"]
    assert run["info"]["status"] == "FINISHED"
    run_dir = Path(job_run["output_dir"])
    assert run_dir.parent.name == "it-local-job"
    assert run["info"]["run_name"] == run_dir.name

    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == lib.read_json(str(run_dir / "params.json"))
    assert params["data_format"] == "libsvm"
    assert (params["folds"], params["grid_size"], params["spark_master"]) == ("2", "2", "local[2]")
    assert int(params["rows_train"]) + int(params["rows_test"]) == int(params["rows_total"]) == 100
    assert params["n_features"] == "692"

    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    logged = lib.read_json(str(run_dir / "metrics.json"))
    for key, value in logged.items():
        expected = value[-1] if isinstance(value, list) else value
        assert metrics[key] == pytest.approx(expected), key
    for key in ("test_auc", "test_accuracy", "test_f1", "test_areaUnderPR", "cv_auc_best"):
        assert 0.5 < metrics[key] <= 1.0, key
    for key in ("load", "train", "evaluate", "write_local", "save_model", "log_artifacts", "total"):
        assert metrics[f"{key}_seconds"] >= 0, key
    assert 0 <= metrics["log_artifacts_share"] < 1
    history = requests.get(
        f"{mlflow_server}/api/2.0/mlflow/metrics/get-history",
        params={"run_id": job_run["run_id"], "metric_key": "cv_auc", "max_results": 100},
        timeout=10,
    ).json()["metrics"]
    assert sorted(m["step"] for m in history) == [0, 1]  # one per grid point

    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["runtime"] == os.environ.get("STACK_RUNTIME", "local")
    assert tags["spark_app_id"].startswith("local-")

    # The run's artifacts are the local copy, file for file, and the copy matches its manifest.
    assert artifact_files(mlflow_server, job_run["run_id"]) == local_files(run_dir)
    manifest = lib.read_json(str(run_dir / "manifest.json"))
    assert manifest["run_id"] == job_run["run_id"]
    assert lib.verify_manifest(str(run_dir), manifest) == []
    for path in ("plots/roc_curve.png", "plots/pr_curve.png", "plots/confusion_matrix.png"):
        assert (run_dir / path).read_bytes().startswith(b"\x89PNG")
    assert "RESULT_JSON" in job_run["stdout"] and job_run["ui_url"].endswith(job_run["run_id"])


LOAD_AND_PREDICT = """
import json, os, sys
import mlflow, mlflow.spark
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[1]").getOrCreate()
model = mlflow.spark.load_model(f"runs:/{sys.argv[1]}/models/spark-model")
data = spark.read.format("libsvm").load(sys.argv[2])
out = model.transform(data).select("label", "prediction").collect()
print("PREDICTIONS " + json.dumps({
    "rows": len(out),
    "classes": sorted({r.prediction for r in out}),
    "accuracy": sum(r.label == r.prediction for r in out) / len(out),
}))
spark.stop()
"""


def test_model_loads_from_the_run_and_predicts(job_run, mlflow_server):
    """Only loading the model back catches a model saved without its data (stack-facts)."""
    data = Path(lib.read_json(job_run["output_dir"] + "/params.json")["data_source"])
    tmp = job_run["tmp"]
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", LOAD_AND_PREDICT, job_run["run_id"], str(data)],
        env=job_env(tmp, mlflow_server), capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    found = re.search(r"^PREDICTIONS (.*)$", proc.stdout, re.MULTILINE)
    assert found, proc.stdout[-2000:]
    result = json.loads(found.group(1))
    assert result["rows"] == 100 and set(result["classes"]) <= {0.0, 1.0}
    assert result["accuracy"] > 0.9


def create_run(url: str, experiment_id: str) -> str:
    answer = requests.post(
        f"{url}/api/2.0/mlflow/runs/create",
        json={"experiment_id": experiment_id, "start_time": int(time.time() * 1000)},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["run"]["info"]["run_id"]


def copy_with_pending(job_run, name: str, run_id: str, url: str) -> Path:
    """A local copy as the job leaves it when logging failed: pending.json beside it."""
    copy = job_run["tmp"] / "relog" / name
    shutil.copytree(job_run["output_dir"], copy)
    lib.write_json(
        str(copy / "pending.json"),
        {"run_id": run_id, "tracking_uri": url, "reason": "connection refused"},
    )
    return copy


def run_relog(copy: Path, url: str) -> subprocess.CompletedProcess:
    # No MLFLOW_TRACKING_URI in its environment: --tracking-uri alone must be enough.
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [str(VENV_BIN / "python"), str(RELOG), str(copy), "--tracking-uri", url],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**env, "GIT_PYTHON_REFRESH": "quiet"},
    )  # fmt: skip


def test_relog_fills_the_run_that_never_got_its_artifacts(job_run, mlflow_server):
    run_id = create_run(mlflow_server, job_run["experiment_id"])  # RUNNING, nothing logged
    copy = copy_with_pending(job_run, "existing", run_id, mlflow_server)
    proc = run_relog(copy, mlflow_server)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result_of(proc.stdout)["run_id"] == run_id
    assert not (copy / "pending.json").exists()

    run = rest(mlflow_server, "runs/get", run_id=run_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == lib.read_json(str(copy / "params.json"))
    metric_keys = {m["key"] for m in run["data"]["metrics"]}
    assert set(lib.read_json(str(copy / "metrics.json"))) <= metric_keys
    manifest = lib.read_json(str(copy / "manifest.json"))
    assert manifest["run_id"] == run_id
    assert lib.verify_manifest(str(copy), manifest) == []
    assert artifact_files(mlflow_server, run_id) == local_files(copy)


@pytest.mark.parametrize("server", ["mlflow_server", "plain_mlflow_server"])
def test_relog_makes_a_new_run_when_the_old_one_is_gone(job_run, server, request):
    url = request.getfixturevalue(server)
    gone = "0" * 32
    copy = copy_with_pending(job_run, f"gone-{server}", gone, url)
    proc = run_relog(copy, url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new_id = result_of(proc.stdout)["run_id"]
    assert new_id != gone and "new run" in proc.stdout
    run = rest(url, "runs/get", run_id=new_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    experiments = requests.post(
        f"{url}/api/2.0/mlflow/experiments/search", json={"max_results": 100}, timeout=10
    ).json()["experiments"]
    by_id = {e["experiment_id"]: e["name"] for e in experiments}
    assert by_id[run["info"]["experiment_id"]] == "it-local-job"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["relogged_from_run_id"] == gone
    assert lib.read_json(str(copy / "manifest.json"))["run_id"] == new_id
    assert artifact_files(url, new_id) == local_files(copy)
