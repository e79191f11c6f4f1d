"""Bench: the docker runtime's figures (issue 6), each measured side by side in one run.

1. Cached image build with nothing changed: the build step of `make rebuild` alone (the scripts'
   own build_images), goal < 10 s, timed after one warm-up build (which may rebuild when another
   checkout built the images last). BENCH_COLD=1 makes that first build a cold one (NO_CACHE=1:
   debootstrap and every image; minutes).
2. Size the MLflow layer adds to the Spark base, against a plain `pip install mlflow==VERSION`
   (the seed's way) on the same base, built with the same builder and CA handling; goal <= 0.35x.
   The comparison image is cached (rebuilt only when missing or its base changed).
3. `make rebuild RUNTIME=docker` until healthy against `compose up -d --wait` of the same stack,
   each after a `down`, interleaved (BENCH_ROUNDS=4 rounds, order alternating, median ratio); goal
   <= 1.1x. Compose v1 has no --wait: `up -d` plus polling
   Docker's health states instead (said in the output).
4. Peak memory of the whole stack (sum of `docker stats` over the project's containers, sampled
   every second) during `make submit RUNTIME=docker` with a small grid.

An isolated stack: compose project spark-mlflow-bench, ports 36xxx, data in work/bench/docker,
OFFLINE=1. Skips (exit 0) when no Docker engine answers. The bench stack is brought down at the
end. Run with `make bench BENCH=docker` (about 4-6 minutes with warm caches).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT  # noqa: E402

PROJECT = "spark-mlflow-bench"
WORK_DIR = ROOT / "work" / "bench" / "docker"
LOG = WORK_DIR / "bench.log"
PORTS = {
    "MLFLOW_PORT": 26555,
    "SPARK_MASTER_UI_PORT": 26080,
    "SPARK_MASTER_PORT": 26077,
    "SPARK_WORKER_UI_BASE_PORT": 26081,
}
CA_DIR = Path("/usr/local/share/ca-certificates")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
BUILD_ROUNDS = int(os.environ.get("BENCH_BUILD_ROUNDS", "3"))
COLD = os.environ.get("BENCH_COLD", "0") == "1"
SUBMIT_ARGS = "--folds 2 --reg-params 0.01,0.1 --elastic-net-params 0.0 --max-iter 20"
GOALS = {"cached build": 10.0, "layer ratio": 0.35, "up ratio": 1.1}

# The plain way, on the same base: one venv, full mlflow, pinned by the same constraints and
# trusting the same extra CAs (install-venv.sh does both), no pip cache (kinder than the seed's
# `RUN pip install`, which keeps one): the baseline is not inflated.
PLAIN_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
LABEL toolkit.stage=bench-plain-mlflow
ARG MLFLOW_VERSION
USER 0
COPY constraints.txt /tmp/build/constraints.txt
COPY docker/extra-ca/ /tmp/build/extra-ca/
COPY docker/install-venv.sh /tmp/build/install-venv.sh
RUN /tmp/build/install-venv.sh /opt/plain-mlflow "mlflow==${MLFLOW_VERSION}" && rm -rf /tmp/build
"""


# --- pure helpers ------------------------------------------------------------------------------
_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str) -> float:
    """'523.4MiB' or '1.2GB' (docker stats units) -> bytes; ValueError on anything else."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]+)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a docker size: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def stats_total(lines: str) -> tuple[float, dict[str, float]]:
    """Sum of `docker stats --format '{{.Name}}\\t{{.MemUsage}}'` lines -> (bytes, per name)."""
    per: dict[str, float] = {}
    for line in lines.splitlines():
        if "\t" not in line:
            continue
        name, usage = line.split("\t", 1)
        used = usage.split("/", 1)[0]
        if used.strip() in ("", "--"):  # a container that just stopped
            continue
        per[name.strip()] = parse_size(used)
    return sum(per.values()), per


def verdict(value: float, goal: float) -> str:
    return "ok" if value <= goal else "MISSED"


def gib(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB"


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


# --- running things ----------------------------------------------------------------------------
def env(**extra: str) -> dict[str, str]:
    """The caller's environment, pointed at the bench's docker stack (derived URLs dropped)."""
    e = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    for key in ("MLFLOW_TRACKING_URI", "NO_CACHE", "SPARK_MLFLOW_IMAGE", "SPARK_BASE_IMAGE"):
        e.pop(key, None)
    e.update({k: str(v) for k, v in PORTS.items()})
    e.update(
        RUNTIME="docker",
        COMPOSE_PROJECT_NAME=PROJECT,
        WORK_DIR=str(WORK_DIR),
        OFFLINE="1",
        EXPERIMENT="bench-docker",
    )
    if "EXTRA_CA_CERTS" not in e and any(CA_DIR.glob("*.crt")):
        e["EXTRA_CA_CERTS"] = str(CA_DIR)
    e.update(extra)
    return e


def run(cmd: list[str], what: str, **extra: str) -> tuple[float, str]:
    """Run CMD on the bench stack; (seconds, stdout). Its stderr goes to the bench log; on
    failure the log's tail is shown and the bench stops."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as log:
        log.write(f"\n### {what}: {shlex.join(cmd)}\n")
        log.flush()
        started = time.monotonic()
        done = subprocess.run(
            cmd, cwd=ROOT, env=env(**extra), text=True, stdout=subprocess.PIPE, stderr=log
        )
        seconds = time.monotonic() - started
        log.write(done.stdout)
    if done.returncode != 0:
        tail = LOG.read_text().splitlines()[-25:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"bench_docker: {what} failed (exit {done.returncode}); log: {LOG}")
    return seconds, done.stdout


def lib(script: str, what: str, **extra: str) -> tuple[float, str]:
    """A bash snippet with scripts/docker/lib.sh sourced: the scripts' functions and settings."""
    return run(["bash", "-c", f"source scripts/docker/lib.sh && {script}"], what, **extra)


def make(target: str, what: str, **extra: str) -> float:
    return run(["make", "--no-print-directory", target], what, **extra)[0]


def engine_answers() -> bool:
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=5)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def settings() -> dict[str, str]:
    """Image names and the compose version as scripts/docker/lib.sh works them out."""
    names = [
        "SPARK_MLFLOW_IMAGE",
        "SPARK_BASE_IMAGE",
        "MLFLOW_SERVER_IMAGE",
        "IMAGE_PREFIX",
        "MLFLOW_VERSION",
    ]
    script = " && ".join(f'echo "{n}=${n}"' for n in names)
    _, out = lib(f'{script} && echo "COMPOSE_V=$(compose_version)"', "settings")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def inspect(image: str, fmt: str) -> str | None:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", fmt, image], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else None


def image_size(image: str) -> float:
    size = inspect(image, "{{.Size}}")
    if size is None:
        raise SystemExit(f"bench_docker: image {image} is missing")
    return float(size)


# --- 1. builds ---------------------------------------------------------------------------------
def build(what: str, **extra: str) -> float:
    return lib("build_images", what, **extra)[0]


# --- 2. the plain-install comparison image -----------------------------------------------------
def plain_image(s: dict[str, str]) -> tuple[str, float | None]:
    """The comparison image, built only when missing or made on another base; (name, build s)."""
    name = f"{s['IMAGE_PREFIX']}/bench-plain-mlflow:{s['MLFLOW_VERSION']}"
    base_id = inspect(s["SPARK_BASE_IMAGE"], "{{.Id}}")
    label = inspect(name, '{{index .Config.Labels "toolkit.bench.base-id"}}')
    if label is not None and label == base_id:
        return name, None
    dockerfile = WORK_DIR / "Dockerfile.plain-mlflow"
    dockerfile.write_text(PLAIN_DOCKERFILE)
    # stage_extra_ca/docker_build: the scripts' CA staging and builder; the staged CAs are
    # removed even when the build fails.
    script = (
        "trap stage_extra_ca_clean EXIT && stage_extra_ca && "
        f'docker_build {shlex.quote(name)} {shlex.quote(str(dockerfile))} "$ROOT" '
        '--build-arg "BASE_IMAGE=$SPARK_BASE_IMAGE" --build-arg "MLFLOW_VERSION=$MLFLOW_VERSION" '
        f"--label toolkit.bench.base-id={shlex.quote(base_id or '')}"
    )
    seconds, _ = lib(script, "plain mlflow image build")
    return name, seconds


# --- 3. up to healthy --------------------------------------------------------------------------
def compose_up(compose_v: str) -> float:
    if compose_v == "2":
        script = 'mkdir -p "$MLFLOW_DATA_DIR" && compose up -d --wait $(stack_services)'
    else:
        # v1 has no --wait: up -d, then poll Docker's health state of every service.
        script = (
            'mkdir -p "$MLFLOW_DATA_DIR" && compose up -d $(stack_services) '
            "&& wait_docker_health $(stack_services)"
        )
    return lib(script, "compose up")[0]


def project_containers(running_only: bool = False) -> list[str]:
    """Ids of the bench project's containers (all, or the running ones)."""
    flag = "-q" if running_only else "-aq"
    filter_ = f"label=com.docker.compose.project={PROJECT}"
    return subprocess.run(
        ["docker", "ps", flag, "--filter", filter_], capture_output=True, text=True
    ).stdout.split()


# --- 4. memory during a submit -----------------------------------------------------------------
def sample_memory(stop: threading.Event, samples: list[tuple[float, dict[str, float]]]) -> None:
    """Every second: the project's containers' memory, summed (docker stats itself takes ~1 s)."""
    while not stop.is_set():
        started = time.monotonic()
        ids = project_containers(running_only=True)
        if ids:
            done = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids],
                capture_output=True,
                text=True,
            )
            if done.returncode == 0:
                samples.append(stats_total(done.stdout))
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def submit_peak() -> tuple[float, float, dict[str, float], int]:
    """(submit seconds, peak bytes, per container at the peak, samples taken)."""
    samples: list[tuple[float, dict[str, float]]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_memory, args=(stop, samples))
    sampler.start()
    try:
        seconds = make("submit", "make submit", ARGS=SUBMIT_ARGS)
    finally:
        stop.set()
        sampler.join()
    if not samples:
        raise SystemExit("bench_docker: docker stats gave no sample during the submit")
    peak, per = max(samples, key=lambda s: s[0])
    return seconds, peak, per, len(samples)


def bring_down() -> None:
    subprocess.run(
        ["make", "--no-print-directory", "down"],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    left = project_containers()
    if left:
        subprocess.run(["docker", "rm", "-f", *left], capture_output=True)


def main() -> int:
    if not engine_answers():
        print("bench_docker: skipped: no Docker engine answers (scripts/docker-engine.sh start)")
        return 0
    # A SIGTERM (CI timeout) still runs the finally below: no stack left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    s = settings()
    compose_v = s.get("COMPOSE_V", "2")
    print(
        f"bench_docker: project {PROJECT}, OFFLINE=1, compose v{compose_v}, "
        f"{env().get('EXTRA_CA_CERTS') or 'no extra CAs'}; log {LOG.relative_to(ROOT)}"
    )
    rows: list[tuple[str, str, str, str]] = []
    try:
        # 1. builds. The first one is not timed against the goal: it brings the images up to this
        # run's inputs (another checkout, CA set or version may have built them last).
        if COLD:
            first = build("cold build", NO_CACHE="1")
            label = "cold build (NO_CACHE=1)"
        else:
            first = build("warm-up build")
            label = "warm-up build (first of the run)"
        print(f"{label}: {first:.1f}s")
        rows.append((label, f"{first:.1f} s", "-", "-"))
        cached = [build(f"cached build {i}") for i in range(1, BUILD_ROUNDS + 1)]
        cached_median = statistics.median(cached)
        print("cached builds: " + ", ".join(f"{t:.2f}s" for t in cached))
        rows.append(
            (
                "cached build, nothing changed",
                f"{cached_median:.2f} s",
                "< 10 s",
                verdict(cached_median, GOALS["cached build"]),
            )
        )

        # 2. sizes, measured against the same base.
        plain, plain_built = plain_image(s)
        if plain_built is not None:
            print(f"built the comparison image {plain} in {plain_built:.0f}s (cached from now on)")
        base = image_size(s["SPARK_BASE_IMAGE"])
        ours = image_size(s["SPARK_MLFLOW_IMAGE"]) - base
        plain_added = image_size(plain) - base
        layer_ratio = ours / plain_added
        print(
            f"base {s['SPARK_BASE_IMAGE']} {mb(base)}; MLflow layer {mb(ours)}; "
            f"plain pip install mlflow=={s['MLFLOW_VERSION']} {mb(plain_added)}"
        )
        server = s["MLFLOW_SERVER_IMAGE"]
        if inspect(server, '{{index .Config.Labels "toolkit.stage"}}') == "mlflow-server":
            print(f"(for reference: the offline server image adds {mb(image_size(server) - base)})")
        rows.append(
            (
                "MLflow layer / plain install",
                f"{mb(ours)} / {mb(plain_added)} = {layer_ratio:.2f}x",
                "<= 0.35x",
                verdict(layer_ratio, GOALS["layer ratio"]),
            )
        )

        # 3. up to healthy, interleaved, each from a stopped stack.
        how = (
            "up -d --wait" if compose_v == "2" else "up -d + Docker health polling (v1: no --wait)"
        )
        print(f"{'round':>5}  {'make rebuild':>12}  {'compose ' + how:>24}  {'ratio':>6}")
        ratios, rebuilds, ups = [], [], []
        for i in range(1, ROUNDS + 1):
            # Alternate which goes first: neither gets the warmer page cache every round.
            for first in ("rebuild", "compose") if i % 2 else ("compose", "rebuild"):
                make("down", f"down before {first} {i}")
                if first == "rebuild":
                    rebuild = make("rebuild", f"make rebuild {i}")
                else:
                    up = compose_up(compose_v)
            rebuilds.append(rebuild)
            ups.append(up)
            ratios.append(rebuild / up)
            print(f"{i:>5}  {rebuild:>11.2f}s  {up:>23.2f}s  {rebuild / up:>6.2f}")
        up_ratio = statistics.median(ratios)
        rows.append(
            (
                f"make rebuild / compose {how.split(' (')[0]}",
                f"{up_ratio:.2f}x (median of {ROUNDS} paired rounds; "
                f"{statistics.median(rebuilds):.1f} s vs {statistics.median(ups):.1f} s)",
                "<= 1.1x",
                verdict(up_ratio, GOALS["up ratio"]),
            )
        )

        # 4. the stack is up (last round): submit and sample memory.
        seconds, peak, per, count = submit_peak()
        top = ", ".join(
            f"{name.removeprefix(PROJECT).strip('-_')} {gib(v)}"
            for name, v in sorted(per.items(), key=lambda kv: -kv[1])[:3]
        )
        print(f"make submit: {seconds:.1f}s, {count} samples, peak {gib(peak)} (top: {top})")
        rows.append(
            ("peak stack memory in a submit", f"{gib(peak)} ({seconds:.0f} s submit)", "-", "-")
        )
    finally:
        bring_down()

    print()
    print(f"{'figure':<38}  {'measured':<58}  {'goal':<9}  result")
    for figure, measured, goal, result in rows:
        print(f"{figure:<38}  {measured:<58}  {goal:<9}  {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
