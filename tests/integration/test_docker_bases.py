"""docker/Dockerfile.spark-mlflow on the layouts of the vendor bases the issue names:
- Bitnami's: Spark at /opt/bitnami/spark, its own Python first on PATH, USER 1001 and no passwd
  entry for 1001 nor 185, no /opt/spark;
- the official Apache image's: /opt/spark/bin NOT on PATH, `python3` only (no `python`), USER 185.

No registry answers here, so each base is a lookalike (docker/lookalike/Dockerfile.*-layout: the
offline base rearranged), not the vendor image. The images are built by the project's own code
(scripts/docker/lib.sh: build lock, EXTRA_CA_CERTS staging), then a master, a worker and a driver
container from the image run a PySpark job on a network of their own; no port is published.
Skipped when no Docker engine answers; REQUIRE_DOCKER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest
from conftest import ROOT
from conftest import read_versions as versions
from test_docker_stack import docker_env, require_engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

PREFIX = versions()["IMAGE_PREFIX"]


@dataclass(frozen=True)
class Layout:
    name: str
    spark_home: str
    # What the lookalike itself must show (`id -u`, `command -v python3`, SPARK_HOME, passwd).
    base_facts: tuple[str, ...]
    java: str  # the java of the executors' launch command

    @property
    def lookalike(self) -> str:
        return f"{PREFIX}/lookalike-{self.name}:{versions()['SPARK_VERSION']}"

    @property
    def image(self) -> str:
        return f"{PREFIX}/spark-mlflow-on-{self.name}-layout:test"


LAYOUTS = [
    Layout(
        "bitnami",
        "/opt/bitnami/spark",
        ("1001", "/opt/bitnami/python/bin/python3", "/opt/bitnami/spark", "no-passwd"),
        '"/opt/bitnami/java/bin/java"',
    ),
    Layout(
        "apache",
        "/opt/spark",
        ("185", "/usr/bin/python3", "/opt/spark", "spark:185", "no-python", "no-spark-submit"),
        '/bin/java"',
    ),
]
# Every container and the network of one test session carry this label (and a unique name).
LABEL = "toolkit.test=docker-bases"

# The offline base (cached), the lookalike on it, then the Spark+MLflow image on the lookalike,
# all under one hold of the build lock (build_images and build-base-image.sh see it held).
BUILD = """
source scripts/docker/lib.sh
hold_build_lock
"$ROOT/scripts/build-base-image.sh"
docker_build "$LOOKALIKE_IMAGE" "$ROOT/docker/lookalike/Dockerfile.$LAYOUT-layout" \
  "$ROOT/docker/lookalike" --build-arg "BASE_IMAGE=$OFFLINE_BASE_IMAGE"
build_images
"""

# Python tasks on the executors (a lambda: the worker runs the image's Python), and where they ran.
JOB = """
import socket
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("base-layout").getOrCreate()
sc = spark.sparkContext
print("MASTER", sc.master)
print("COUNT", sc.parallelize(range(1000), 4).filter(lambda x: x % 3 == 0).count())
print("RANGE", spark.range(100).count())
hosts = sc.parallelize(range(4), 4).map(lambda _: socket.gethostname()).collect()
print("HOSTS", sorted(set(hosts)))
spark.stop()
"""


def docker(*args: str, timeout: float = 120, check: bool = False, **kwargs):
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=kwargs.pop("stdin", subprocess.DEVNULL),
        **kwargs,
    )
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def run_in(image: str, command: str, *options: str) -> subprocess.CompletedProcess:
    """`sh -c COMMAND` in a throwaway container of IMAGE (the image's own user and entrypoint)."""
    return docker("run", "--rm", "--network", "none", *options, image, "sh", "-c", command)


@pytest.fixture(scope="module", params=LAYOUTS, ids=lambda layout: f"{layout.name}-layout")
def layout(request) -> Layout:
    require_engine()
    it = request.param
    env = docker_env(
        OFFLINE="1",
        LAYOUT=it.name,
        SPARK_BASE_IMAGE=it.lookalike,
        SPARK_MLFLOW_IMAGE=it.image,
        LOOKALIKE_IMAGE=it.lookalike,
    )
    build = subprocess.run(
        ["bash", "-c", BUILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        stdin=subprocess.DEVNULL,
    )
    assert build.returncode == 0, f"build failed:\n{build.stdout[-3000:]}\n{build.stderr[-5000:]}"
    return it


def logs(name: str) -> str:
    out = docker("logs", name)
    return out.stdout + out.stderr


def wait_for_log(name: str, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in logs(name):
            return
        state = docker("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state not in ("created", "running"):
            raise AssertionError(f"{name} {state} before {text!r}; its log:\n{logs(name)[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"{name}: no {text!r} within {timeout} s; its log:\n{logs(name)[-4000:]}")


@pytest.fixture(scope="module")
def cluster(layout):
    """Master, one worker and an idle driver (the entrypoint's `submit` role) on their own network,
    small memory; names are network aliases, as in docker/docker-compose.yml."""
    suffix = uuid.uuid4().hex[:8]
    network = f"{layout.name}-layout-{suffix}"
    names = {r: f"{layout.name}-layout-{r}-{suffix}" for r in ("master", "worker", "submit")}
    docker("network", "create", "--label", LABEL, network, check=True)

    def start(role: str, alias: str, *env: str) -> None:
        options = ["--detach", "--init", "--name", names[role], "--label", LABEL]
        options += ["--network", network, "--network-alias", alias, "--hostname", alias]
        for pair in ("SPARK_DAEMON_MEMORY=256m", *env):
            options += ["--env", pair]
        docker("run", *options, layout.image, role, check=True)

    try:
        start("master", "spark-master")
        wait_for_log(names["master"], "I have been elected leader")
        start(
            "worker",
            f"spark-worker-{suffix}",
            "SPARK_MASTER_URL=spark://spark-master:7077",
            "SPARK_WORKER_MEMORY=1g",
            "SPARK_WORKER_CORES=1",
        )
        wait_for_log(names["worker"], "Successfully registered with master")
        # SPARK_HOME emptied: the entrypoint must find the base's Spark by itself.
        start(
            "submit",
            f"spark-submit-{suffix}",
            "SPARK_HOME=",
            "SPARK_MASTER_URL=spark://spark-master:7077",
            "EXECUTOR_MEMORY=512m",
            "DRIVER_MEMORY=512m",
        )
        wait_for_log(names["submit"], "spark-submit container ready")
        yield {"names": names, "worker_host": f"spark-worker-{suffix}"}
    finally:
        docker("rm", "--force", *names.values(), timeout=120)
        docker("network", "rm", network, timeout=60)
    left = docker("ps", "-aq", "--filter", f"name={suffix}").stdout.split()
    assert left == [], f"containers left behind: {left}"


def test_the_lookalike_has_the_vendor_layout(layout):
    # The lookalike itself: if it drifted from the vendor's layout, the tests below prove nothing.
    out = run_in(
        layout.lookalike,
        'id -u; command -v python3; echo "$SPARK_HOME"; '
        'users="$(getent passwd 1001 185 | cut -d: -f1,3)"; echo "${users:-no-passwd}"; '
        "command -v python >/dev/null || echo no-python; "
        "command -v spark-submit >/dev/null || echo no-spark-submit; "
        'if test -e /opt/spark && test /opt/spark != "$SPARK_HOME"; then echo has-opt-spark; fi',
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert tuple(out.stdout.split()) == layout.base_facts


def test_the_image_runs_as_non_root_with_a_passwd_entry(layout):
    uid = run_in(layout.image, "id -u; id -un; echo $HOME; touch $HOME/.probe")
    assert uid.returncode == 0, uid.stdout + uid.stderr
    number, name, home = uid.stdout.split()
    assert number == versions()["STACK_UID"] != "0"
    assert name == "spark"
    assert home == "/var/lib/spark-mlflow/home"
    base = docker(
        "image",
        "inspect",
        "--format",
        '{{index .Config.Labels "org.opencontainers.image.base.name"}}',
        layout.image,
        check=True,
    )
    assert base.stdout.strip() == layout.lookalike


def test_python_and_spark_submit_are_on_path_with_mlflow_and_the_artifact_cli(layout):
    out = run_in(
        layout.image,
        "python -c 'import mlflow; print(mlflow.__version__)' && spark-submit --version 2>&1",
        "--hostname",
        "localhost",  # no network: Spark must still resolve its own host name
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == versions()["MLFLOW_VERSION"]
    assert f"version {versions()['SPARK_VERSION']}" in out.stdout
    cli = run_in(layout.image, '"$MLFLOW_PYTHON_EXECUTABLE" -m mlflow.store.artifact.cli --help')
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "Usage" in cli.stdout


def test_the_entrypoint_finds_the_bases_spark(layout, cluster):
    # Started with SPARK_HOME='' (see the fixture): the path comes from find_spark_home's search.
    assert f"Spark {layout.spark_home}," in logs(cluster["names"]["submit"])


def test_a_pyspark_job_runs_on_the_master_and_worker(layout, cluster):
    submit = cluster["names"]["submit"]
    out = docker(
        "exec",
        "-i",
        submit,
        "sh",
        "-c",
        "cat >/var/lib/spark-mlflow/home/job.py && spark-submit /var/lib/spark-mlflow/home/job.py",
        input=JOB,
        stdin=None,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert lines.get("MASTER") == "spark://spark-master:7077", out.stdout
    assert lines.get("COUNT") == "334", out.stdout
    assert lines.get("RANGE") == "100", out.stdout
    assert lines.get("HOSTS") == repr([cluster["worker_host"]]), out.stdout
    # The executor got the memory asked for (not Spark's 1g default), from the base's java.
    launch = [
        line for line in logs(cluster["names"]["worker"]).splitlines() if "Launch command" in line
    ]
    assert launch, logs(cluster["names"]["worker"])[-3000:]
    assert f"{layout.java}" in launch[0] and '"-Xmx512M"' in launch[0], launch[0]
