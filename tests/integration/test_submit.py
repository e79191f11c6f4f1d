"""`make submit` on the real local stack: params, metrics and every artifact reach MLflow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import (
    PYTHON,
    ROOT,
    TEST_WORK_DIR,
    VERSIONS,
    artifact_files,
    rest,
    result_of,
    run_make,
    run_script,
)


def test_submit_logs_params_metrics_and_prints_the_ui_address(submitted, mlflow_url):
    run = rest(mlflow_url, "runs/get", run_id=submitted["run_id"])["run"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert params["folds"] == "2"
    assert params["grid_size"] == "1"
    assert params["rows_total"] == "100"
    assert params["spark_version"] == VERSIONS["SPARK_VERSION"]
    assert params["mlflow_version"] == VERSIONS["MLFLOW_VERSION"]
    for name in ("test_auc", "test_accuracy", "test_precision", "test_recall", "test_f1"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["test_auc"] > 0.8
    assert "log_artifacts_seconds" in metrics
    assert submitted["ui_url"].startswith(mlflow_url)
    assert submitted["ui_url"] in submitted["stdout"]


def test_every_manifest_file_reached_mlflow_with_its_size(submitted, mlflow_url):
    local = Path(submitted["output_dir"])
    manifest = json.loads((local / "manifest.json").read_text())
    assert manifest["run_id"] == submitted["run_id"]
    listed = artifact_files(mlflow_url, submitted["run_id"])
    assert "manifest.json" in listed
    expected = {f["path"]: f["size"] for f in manifest["files"]}
    assert {p: listed.get(p) for p in expected} == expected
    kinds = {p.split("/")[0] for p in expected}
    assert {"metrics", "models", "plots"} <= kinds
    assert any(p.endswith(".png") for p in expected)


def test_the_logged_model_loads_back_and_predicts(submitted, mlflow_url, tmp_path):
    # A model saved without its data (MLFLOW_DFS_TMP not shared) fails here, not in the manifest.
    script = f"""
import os, mlflow.spark
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
model = mlflow.spark.load_model("runs:/{submitted["run_id"]}/models/spark-model")
data = spark.read.format("libsvm").load(os.path.join(os.environ["SPARK_HOME"],
    "data/mllib/sample_binary_classification_data.txt"))
rows = model.transform(data).select("label", "prediction").collect()
print("PREDICTIONS", len(rows), sum(r.label == r.prediction for r in rows))
"""
    spark_home = next((ROOT / ".venv" / "lib").glob("python3*/site-packages/pyspark"))
    env = os.environ | {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "SPARK_HOME": str(spark_home),
        "TMPDIR": str(tmp_path),
        "MLFLOW_DFS_TMP": str(tmp_path / "dfs"),
        "GIT_PYTHON_REFRESH": "quiet",
    }
    done = subprocess.run(
        [PYTHON, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    total, correct = map(int, re.search(r"PREDICTIONS (\d+) (\d+)", done.stdout).groups())
    assert total == 100
    assert correct / total > 0.8


def test_java_client_artifact_command_logs_a_file(running_stack, mlflow_url, tmp_path):
    """Exactly what the MLflow Java client runs, with only MLFLOW_TRACKING_URI set, into a run of
    its own (a file added to a submitted run after its manifest is rightly reported as extra)."""
    created = requests.post(
        f"{mlflow_url}/api/2.0/mlflow/runs/create",
        json={"experiment_id": "0", "run_name": "java-client-path"},
        timeout=10,
    )
    created.raise_for_status()
    run_id = created.json()["run"]["info"]["run_id"]
    note = tmp_path / "from-java-client.txt"
    note.write_text("logged the Java client's way\n")
    env = {"MLFLOW_TRACKING_URI": mlflow_url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    cmd = [
        PYTHON,
        "-m",
        "mlflow.store.artifact.cli",
        "log-artifact",
        "--local-file",
        str(note),
        "--run-id",
        run_id,
        "--artifact-path",
        "java-client",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    listed = artifact_files(mlflow_url, run_id, "java-client")
    assert listed == {"java-client/from-java-client.txt": note.stat().st_size}


def test_jar_job_logs_through_the_java_client_path(running_stack, mlflow_url):
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-jar-example.sh")],
        env=running_stack,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    jar = built.stdout.strip().splitlines()[-1]
    result = run_make(
        "submit", f"JOB={jar}", "CLASS=toolkit.MlflowArtifactJob", "ARGS=0", timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    run_id = result_of(result.stdout)["run_id"]
    run = rest(mlflow_url, "runs/get", run_id=run_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["multiples_of_seven"] == len(range(0, 100_000, 7))
    listed = artifact_files(mlflow_url, run_id, "jar-job")
    assert len(listed) == 1, listed
    [(path, size)] = listed.items()
    assert path.startswith("jar-job/jar-job-result") and path.endswith(".csv")
    assert size > 0


def test_unreachable_mlflow_fails_fast_before_any_compute(running_stack):
    started = time.monotonic()
    result = run_make(
        "submit", "MLFLOW_TRACKING_URI=http://127.0.0.1:9", "EXPERIMENT=never", timeout=120
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "not reachable" in lines[0], result.stderr
    assert "SparkContext" not in result.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("data", "label", "expected"),
    [
        ("missing.csv", "label", "not found"),
        ("no_label.csv", "label", "label"),
        ("one_class.csv", "y", "class"),
    ],
)
def test_bad_data_gets_one_clear_line_before_training(running_stack, data, label, expected):
    data_dir = TEST_WORK_DIR / "bad-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "no_label.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    (data_dir / "one_class.csv").write_text("x1,x2,y\n1.0,2.0,1\n3.0,4.0,1\n5.0,1.0,1\n")
    result = run_script(
        "submit.sh", DATA=str(data_dir / data), LABEL=label, EXPERIMENT="bad-data", timeout=300
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    # spark-submit merges the Python driver's stderr into its stdout: read both.
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output[-3000:]
    assert expected in errors[0].lower()
    assert "RESULT_JSON" not in result.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
