"""The docker runtime on a real engine: rebuild from nothing (OFFLINE=1), health, the spark-submit
container's MLflow client, both artifact modes, a lost worker, data kept across a rebuild, and
loopback-only, non-root containers.

Skipped when no Docker engine answers; REQUIRE_DOCKER=1 (CI) makes that a failure instead. The
stack is isolated from a developer's: own compose project, ports and data dir (work/test-docker).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from conftest import (
    DERIVED,
    ROOT,
    SMALL_GRID,
    inventory,
    result_of,
    run_make,
    run_through_fault,
    running_run,
    worker_running_an_executor,
)
from conftest import artifact_files as files_of
from conftest import read_versions as versions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

TEST_WORK_DIR = ROOT / "work" / "test-docker"
DATA_DIR = TEST_WORK_DIR / "mlflow"
PROJECT = "spark-mlflow-test"
MLFLOW_PORT = 23555
WORKER_UI_BASE_PORT = 23081
WORKERS = 4
MLFLOW_URL = f"http://127.0.0.1:{MLFLOW_PORT}"
WORKER_UIS = {
    f"spark-worker-{n}": f"http://127.0.0.1:{WORKER_UI_BASE_PORT + n - 1}"
    for n in range(1, WORKERS + 1)
}
# Four grid points: long enough for a fault to land while executors run.
GRID_4 = "--folds 2 --reg-params 0.01,0.1 --elastic-net-params 0.0,0.5 --max-iter 20"
SETTINGS = {
    "RUNTIME": "docker",
    "OFFLINE": "1",
    "WORK_DIR": str(TEST_WORK_DIR),
    "COMPOSE_PROJECT_NAME": PROJECT,
    "BIND_HOST": "127.0.0.1",
    "MLFLOW_PORT": str(MLFLOW_PORT),
    "SPARK_MASTER_UI_PORT": "23080",
    "SPARK_MASTER_PORT": "23077",
    "SPARK_WORKER_UI_BASE_PORT": str(WORKER_UI_BASE_PORT),
    "DOCKER_WORKERS": str(WORKERS),
    "ARTIFACT_MODE": "shared",
}
# Debian keeps locally added CAs here; a TLS-intercepting network (CI here) needs them for pip
# inside image builds. An explicit EXTRA_CA_CERTS wins.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")


def client_image() -> str:
    v = versions()
    return f"{v['IMAGE_PREFIX']}/spark-mlflow:{v['SPARK_VERSION']}-mlflow{v['MLFLOW_VERSION']}"


def docker_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DERIVED}
    env.update(SETTINGS)
    if "EXTRA_CA_CERTS" not in env and any(LOCAL_CA_DIR.glob("*.crt")):
        env["EXTRA_CA_CERTS"] = str(LOCAL_CA_DIR)
    env.update(overrides)
    return env


def make(*args: str, timeout: float = 1500, **overrides: str):
    return run_make(*args, env=docker_env(**overrides), timeout=timeout)


def engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def require_engine() -> None:
    """Skip when no Docker engine answers; fail instead under REQUIRE_DOCKER=1 (CI)."""
    if not engine_answers():
        hint = "start one with scripts/docker-engine.sh start"
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"REQUIRE_DOCKER=1 but no Docker engine answers; {hint}")
        pytest.skip(f"no Docker engine answers ({hint}; REQUIRE_DOCKER=1 fails instead)")


def compose(
    *args: str,
    files: tuple[str, ...] = (),
    settings: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """The compose command of the scripts (v2 plugin or v1) on the project of `settings` (this
    module's by default); `files` are extra compose files layered over docker-compose.yml."""
    extra = [arg for path in files for arg in ("--file", path)]
    script = (
        'source scripts/docker/lib.sh && choose_compose && "${COMPOSE_CMD[@]}" '
        '--project-name "$COMPOSE_PROJECT_NAME" --file "$COMPOSE_FILE_PATH" "$@"'
    )
    return subprocess.run(
        ["bash", "-c", script, "compose", *extra, *args],
        cwd=ROOT,
        env=docker_env(**(settings or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def in_submit(command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a shell command inside the spark-submit container (as its non-root user)."""
    return compose("exec", "-T", "spark-submit", "sh", "-c", command, timeout=timeout)


def containers() -> list[dict]:
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return []
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def project_containers(project: str = PROJECT) -> list[str]:
    """Ids of every container of a compose project, running or not."""
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def rest(method: str, path: str, **kwargs) -> dict:
    resp = requests.request(method, f"{MLFLOW_URL}/api/2.0/mlflow/{path}", timeout=10, **kwargs)
    resp.raise_for_status()
    return resp.json()


def artifact_files(run_id: str) -> set[tuple[str, int]]:
    """Every file of a run, recursively, as (path, size) from the REST API."""
    return set(files_of(MLFLOW_URL, run_id).items())


def status_json() -> tuple[int, dict, str]:
    result = make("status", "ARGS=--json", timeout=120)
    return result.returncode, json.loads(result.stdout), result.stderr


def wait_healthy(timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code, status, _ = status_json()
        if code == 0:
            return
        assert time.monotonic() < deadline, f"stack not healthy after {timeout}s: {status}"
        time.sleep(1)


# A client run as the pipeline's driver does it: python, from the non-root spark-submit container.
LOG_RUN = """
import os, sys, mlflow
mlflow.set_experiment(sys.argv[1])
with open("/tmp/note.txt", "w") as f:
    f.write(sys.argv[2])
with mlflow.start_run() as run:
    mlflow.log_param("mode", sys.argv[2])
    mlflow.log_artifact("/tmp/note.txt", artifact_path="notes")
print(run.info.run_id)
"""

# mlflow.spark on the cluster: a model saved without its data (MLFLOW_DFS_TMP not shared by
# driver and executors) loads but cannot predict, so load it back and predict.
SPARK_MODEL_JOB = """
import sys, mlflow, mlflow.spark
from pyspark.sql import SparkSession
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.linalg import Vectors

spark = SparkSession.builder.appName("docker-model-check").getOrCreate()
rows = [(float(i % 2), Vectors.dense([i % 2 + 0.1 * i, 1.0 - i % 2])) for i in range(40)]
df = spark.createDataFrame(rows, ["label", "features"]).repartition(4)
model = LogisticRegression(maxIter=5).fit(df)
mlflow.set_experiment(sys.argv[1])
with mlflow.start_run() as run:
    mlflow.spark.log_model(model, "model", pip_requirements=["pyspark"])
loaded = mlflow.spark.load_model(f"runs:/{run.info.run_id}/model")
n = loaded.transform(df).filter("prediction = label").count()
print("RUN", run.info.run_id, "CORRECT", n, "OF", df.count())
spark.stop()
"""


@pytest.fixture(scope="module")
def stack():
    require_engine()
    # From nothing: no containers of the test project, an empty data dir.
    make("down", timeout=300)
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    started = time.monotonic()
    result = make("rebuild")
    assert result.returncode == 0, f"make rebuild failed:\n{result.stdout}\n{result.stderr}"
    print(f"make rebuild RUNTIME=docker OFFLINE=1: {time.monotonic() - started:.0f}s")
    yield
    make("down", timeout=300)


@pytest.fixture
def shared_mode(stack):
    """The stack in ARTIFACT_MODE=shared (a test may switch it)."""
    yield
    if current_mode() != "shared":
        result = make("up", ARTIFACT_MODE="shared")
        assert result.returncode == 0, result.stderr


def current_mode() -> str:
    for c in containers():
        if c["Config"]["Labels"].get("com.docker.compose.service") == "mlflow-server":
            env = dict(e.split("=", 1) for e in c["Config"]["Env"])
            return env.get("ARTIFACT_MODE", "")
    return ""


def test_rebuild_from_nothing_gives_a_healthy_stack_with_four_workers(stack):
    result = make("status", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    code, status, _ = status_json()
    assert code == 0 and status["healthy"] is True
    names = {c["name"] for c in status["components"]}
    assert names == {"mlflow-server", "spark-master"} | {
        f"spark-worker-{i}" for i in range(1, WORKERS + 1)
    }
    master = next(c for c in status["components"] if c["name"] == "spark-master")
    assert f"{WORKERS}/{WORKERS}" in master["detail"]


def test_spark_submit_has_the_servers_mlflow_and_is_not_root(stack):
    out = in_submit('python -c "import mlflow; print(mlflow.__version__)"; id -u')
    assert out.returncode == 0, out.stderr
    version, uid = out.stdout.split()[-2:]
    assert version == versions()["MLFLOW_VERSION"]
    assert uid != "0"
    server = requests.get(f"{MLFLOW_URL}/version", timeout=5).text.strip()
    assert server == version


def test_java_client_artifact_command_logs_a_file_that_mlflow_lists(shared_mode):
    exp = rest("POST", "experiments/create", json={"name": f"java-cli-{uuid.uuid4().hex[:8]}"})
    run = rest("POST", "runs/create", json={"experiment_id": exp["experiment_id"]})
    run_id = run["run"]["info"]["run_id"]
    payload = "logged by the Java client's command\n"
    # Exactly what the MLflow Java client runs, with only the tracking URI in the environment.
    command = (
        f"printf %s {shlex.quote(payload)} > /tmp/java-client.txt && "
        'exe="$MLFLOW_PYTHON_EXECUTABLE" && env -i MLFLOW_TRACKING_URI=http://mlflow-server:5000 '
        '"$exe" -m mlflow.store.artifact.cli log-artifact --local-file /tmp/java-client.txt '
        f"--run-id {run_id} --artifact-path from-java"
    )
    out = in_submit(command)
    assert out.returncode == 0, out.stdout + out.stderr
    assert artifact_files(run_id) == {("from-java/java-client.txt", len(payload))}


@pytest.mark.parametrize("mode", ["shared", "served"])
def test_a_run_logged_from_spark_submit_lands_in_both_artifact_modes(shared_mode, mode):
    if current_mode() != mode:
        result = make("up", ARTIFACT_MODE=mode)
        assert result.returncode == 0, result.stdout + result.stderr
    assert current_mode() == mode
    # A new experiment per mode: an experiment keeps the artifact location it was created with.
    experiment = f"docker-{mode}-{uuid.uuid4().hex[:8]}"
    script = shlex.quote(LOG_RUN)
    out = in_submit(f"python -c {script} {experiment} {mode}")
    assert out.returncode == 0, out.stdout + out.stderr
    run_id = out.stdout.split()[-1]
    info = rest("GET", "runs/get", params={"run_id": run_id})["run"]["info"]
    if mode == "served":
        assert info["artifact_uri"].startswith("mlflow-artifacts:/")
    else:
        assert info["artifact_uri"].startswith("/mlflow/artifacts/")
    assert artifact_files(run_id) == {("notes/note.txt", len(mode))}
    # Either way the bytes end up in the shared folder on the host.
    on_host = list((DATA_DIR / "artifacts").rglob(f"{run_id}/artifacts/notes/note.txt"))
    assert [p.read_text() for p in on_host] == [mode]


@pytest.mark.parametrize("mode", ["shared", "served"])
def test_make_submit_and_check_artifacts_agree_across_host_containers_rest(shared_mode, mode):
    """The pipeline through `make submit RUNTIME=docker`, then every view of its artifacts:
    the host folder, /mlflow/artifacts in each container, MLflow's REST API, the manifest."""
    if current_mode() != mode:
        result = make("up", ARTIFACT_MODE=mode)
        assert result.returncode == 0, result.stdout + result.stderr
    experiment = f"docker-submit-{mode}-{uuid.uuid4().hex[:8]}"
    args = "--folds 2 --reg-params 0.1 --elastic-net-params 0.0 --max-iter 10"
    result = make("submit", f"ARGS={args}", EXPERIMENT=experiment, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT_JSON "))
    run_id = json.loads(line.split(" ", 1)[1])["run_id"]
    info = rest("GET", "runs/get", params={"run_id": run_id})["run"]["info"]
    assert info["status"] == "FINISHED"
    prefix = "mlflow-artifacts:/" if mode == "served" else "/mlflow/artifacts/"
    assert info["artifact_uri"].startswith(prefix)

    check = subprocess.run(
        [str(ROOT / "scripts" / "check-artifacts.sh"), "--run-id", run_id, "--checksum", "--json"],
        cwd=ROOT,
        env=docker_env(ARTIFACT_MODE=mode),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    report = json.loads(check.stdout)
    views = {v["name"] for v in report["views"]}
    assert {"manifest", "rest", "folder"} <= views
    container_views = {v for v in views if v.startswith("container:")}
    # spark-submit, mlflow-server and every worker mount the shared folder.
    assert len(container_views) == WORKERS + 2, views
    assert report["counts"]["files"] > 10


def test_spark_model_logged_from_the_cluster_loads_back_and_predicts(shared_mode):
    experiment = f"docker-model-{uuid.uuid4().hex[:8]}"
    write = in_submit(f"cat > /tmp/model_job.py <<'EOF'\n{SPARK_MODEL_JOB}\nEOF")
    assert write.returncode == 0, write.stderr
    # Two one-core executors: on two other containers than the driver, enough to need a shared
    # MLFLOW_DFS_TMP, light enough for a 2-core machine.
    submit = "spark-submit --conf spark.cores.max=2 /tmp/model_job.py"
    out = in_submit(f"{submit} {experiment} 2>/tmp/job.err", timeout=900)
    assert out.returncode == 0, out.stdout + in_submit("tail -n 40 /tmp/job.err").stdout
    words = out.stdout.split()
    correct, total = int(words[words.index("CORRECT") + 1]), int(words[words.index("OF") + 1])
    assert total == 40 and correct >= 30
    run_id = words[words.index("RUN") + 1]
    files = {path for path, _ in artifact_files(run_id)}
    # The model's data files, not only the _SUCCESS markers of an empty save.
    assert any(p.startswith("model/sparkml/") and "/data/part-" in p for p in files), files


def test_stopped_worker_is_named_by_status(stack):
    stopped = compose("stop", "spark-worker-3")
    assert stopped.returncode == 0, stopped.stderr
    try:
        result = make("status", timeout=120)
        assert result.returncode != 0
        out = result.stdout + result.stderr
        failing = [line for line in out.splitlines() if "FAIL" in line]
        assert any(line.startswith("spark-worker-3") for line in failing), out
        assert "stack UNHEALTHY" in out and "spark-worker-3" in out.split("stack UNHEALTHY")[1]
        assert not any(line.startswith("spark-worker-1") for line in failing), out
    finally:
        result = make("up")
        assert result.returncode == 0, result.stdout + result.stderr
    wait_healthy()


def test_a_service_that_does_not_come_up_is_named_with_its_logs(stack):
    # A server image without the server's dependencies: mlflow-server dies at start.
    try:
        result = make("up", MLFLOW_SERVER_IMAGE=client_image(), UP_TIMEOUT="60", timeout=300)
        out = result.stdout + result.stderr
        assert result.returncode != 0, out
        assert "==> mlflow-server: container" in out and "exited" in out, out
        assert "health check: " in out, out
        assert "No module named 'flask'" in out, out  # the tail of its log says why
    finally:
        result = make("up")
        assert result.returncode == 0, result.stdout + result.stderr


def start_submit(experiment: str, args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ROOT / "scripts" / "submit.sh")],
        cwd=ROOT,
        env=docker_env(EXPERIMENT=experiment, ARGS=args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def doctor_json() -> dict:
    result = make("doctor", "ARGS=--json", timeout=300)
    report = json.loads(result.stdout)
    assert (result.returncode == 0) == report["ok"], result.stderr[-2000:]
    return report


def test_doctor_passes_every_check_on_the_healthy_stack(shared_mode):
    report = doctor_json()
    assert report["ok"] is True, [c for c in report["checks"] if c["status"] == "fail"]
    checks = {c["name"]: c for c in report["checks"]}
    services = ["spark-master", "spark-submit", "mlflow-server"]
    services += [f"spark-worker-{n}" for n in range(1, WORKERS + 1)]
    for service in services:
        assert checks[f"container: {service}"]["status"] == "pass", checks
    assert checks["shared folder: same everywhere"]["status"] == "pass"
    assert checks["published ports"]["status"] == "pass"
    assert checks["python in spark-submit"]["status"] == "pass"
    host = checks["host-header protection"]
    assert host["status"] == "pass" and "predates the Host-header middleware" in host["detail"]
    assert "mlflow-server:5000" in host["detail"]


def test_a_worker_container_killed_during_a_submit_is_named_and_the_job_completes(shared_mode):
    experiment = f"docker-fault-worker-{uuid.uuid4().hex[:8]}"
    job = start_submit(experiment, GRID_4)

    def kill_and_look(victim: str) -> None:
        killed = compose("kill", victim)
        assert killed.returncode == 0, killed.stderr
        # While the job goes on: status and doctor name the lost worker, and only it.
        code, status, _ = status_json()
        assert code != 0
        failing = {c["name"] for c in status["components"] if not c["healthy"]}
        # The master counts the worker alive until its heartbeat times out (60 s): it may be
        # named too, but no other worker.
        assert victim in failing and failing - {victim, "spark-master"} == set(), status
        report = doctor_json()
        lost = {c["name"]: c for c in report["checks"]}[f"container: {victim}"]
        assert lost["status"] == "fail" and lost["runbook"].endswith("#worker-lost"), lost

    output, _ = run_through_fault(
        job,
        "an executor of the job on a worker container",
        lambda: worker_running_an_executor(WORKER_UIS),
        kill_and_look,
        poll_timeout=600,
        job_timeout=1200,
    )
    assert job.returncode == 0, output[-3000:]
    run_id = result_of(output)["run_id"]
    assert rest("GET", "runs/get", params={"run_id": run_id})["run"]["info"]["status"] == "FINISHED"
    # The worker back, every view of the run agrees (its container view included).
    result = make("up")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_healthy()
    check = subprocess.run(
        [str(ROOT / "scripts" / "check-artifacts.sh"), "--run-id", run_id, "--checksum"],
        cwd=ROOT,
        env=docker_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]


def test_mlflow_server_stopped_during_a_submit_loses_nothing_and_relog_completes(shared_mode):
    experiment = f"docker-fault-mlflow-{uuid.uuid4().hex[:8]}"
    job = start_submit(experiment, SMALL_GRID)

    def stop_server(_run_id: str) -> None:
        stopped = compose("stop", "mlflow-server")
        assert stopped.returncode == 0, stopped.stderr

    output, run_id = run_through_fault(
        job,
        "the job's run to appear",
        lambda: running_run(MLFLOW_URL, experiment),
        stop_server,
        poll_timeout=600,
        job_timeout=1200,
    )
    assert job.returncode == 4, output[-3000:]
    result = result_of(output)
    assert result["status"] == "pending" and result["run_id"] == run_id
    # The local copy, as the containers and the host see it: complete, and marked pending.
    copy = result["output_dir"]
    assert copy.startswith("/mlflow/output/"), copy
    on_host = DATA_DIR / copy.removeprefix("/mlflow/")
    assert (on_host / "pending.json").is_file()
    manifest = json.loads((on_host / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert (on_host / entry["path"]).stat().st_size == entry["size"]
    assert f"make relog DIR={copy}" in output

    result = make("up")
    assert result.returncode == 0, result.stdout + result.stderr
    relog = make("relog", f"DIR={on_host}", timeout=600)
    assert relog.returncode == 0, relog.stdout[-2000:] + relog.stderr[-2000:]
    assert rest("GET", "runs/get", params={"run_id": run_id})["run"]["info"]["status"] == "FINISHED"
    listed = dict(artifact_files(run_id))
    assert {f["path"]: f["size"] for f in manifest["files"]}.items() <= listed.items()
    assert not (on_host / "pending.json").exists()


@pytest.mark.parametrize(
    "disruption", ["restart the mlflow-server container", "make down then make up", "make rebuild"]
)
def test_runs_and_artifacts_survive(shared_mode, disruption):
    out = in_submit(f"python -c {shlex.quote(LOG_RUN)} docker-keep kept")
    assert out.returncode == 0, out.stderr
    before = inventory(MLFLOW_URL)
    assert out.stdout.split()[-1] in before
    # Pipeline runs of the earlier tests too, each with its model, plots and manifest.
    assert sum(len(run["files"]) > 10 for run in before.values()) >= 2, before
    if disruption == "restart the mlflow-server container":
        result = compose("restart", "mlflow-server")
        assert result.returncode == 0, result.stderr
        wait_healthy()
    elif disruption == "make down then make up":
        for target in ("down", "up"):
            result = make(target, timeout=600)
            assert result.returncode == 0, result.stdout + result.stderr
    else:
        result = make("rebuild")
        assert result.returncode == 0, result.stdout + result.stderr
    assert inventory(MLFLOW_URL) == before


def test_ports_bind_loopback_only_and_containers_are_not_root(stack):
    running = containers()
    services = {c["Config"]["Labels"]["com.docker.compose.service"] for c in running}
    assert {"mlflow-server", "spark-master", "spark-submit"} <= services
    for c in running:
        name = c["Config"]["Labels"]["com.docker.compose.service"]
        for bindings in (c["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", (name, binding)
        uid = subprocess.run(
            ["docker", "exec", c["Id"], "id", "-u"], capture_output=True, text=True, timeout=30
        )
        assert uid.returncode == 0 and uid.stdout.strip() != "0", (name, uid.stdout)


def test_extra_ca_certificates_stay_out_of_the_images(stack):
    """EXTRA_CA_CERTS is for pip inside the build stage: no final image may trust them."""
    ca_dir = docker_env().get("EXTRA_CA_CERTS")
    if not ca_dir:
        pytest.skip("the images were built without EXTRA_CA_CERTS")
    # The base64 body of each certificate, as it would appear in any PEM bundle.
    bodies = {
        path.name: "".join(path.read_text().split("-----")[2].split())
        for path in Path(ca_dir).glob("*.crt")
    }
    v = versions()
    images = [client_image(), f"{v['IMAGE_PREFIX']}/mlflow-server:{v['MLFLOW_VERSION']}"]
    # Every PEM bundle in the image: the system store and certifi's copies.
    find = (
        "find / -xdev \\( -name '*.pem' -o -name '*.crt' \\) -type f 2>/dev/null "
        "| xargs cat 2>/dev/null | tr -d '\\n '"
    )
    for image in images:
        out = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", find],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert len(out.stdout) > 10000  # found the public bundles at least
        leaked = [name for name, body in bodies.items() if body[:200] in out.stdout]
        assert leaked == [], f"{image} carries {leaked}"
