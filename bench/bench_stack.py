"""Bench: `make up` to healthy against its slowest component's own start to healthy, same run;
and `healthcheck.py status` on a healthy stack.

Each round stops the bench stack, runs `make up`, and meanwhile watches every component: its own
start is when its PID file appears, its healthy moment is when its endpoint first answers as
healthy. The ratio is (make up wall time) / (slowest component's start-to-healthy span).
Goals: ratio <= 1.2; status < 0.5 s. Run with `make bench` (or directly with the venv's Python).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import PORTS, ROOT, WORK_DIR, WORKER_BASE, WORKERS, env  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def make(target: str) -> float:
    return benchlib.make(target)[0]


def healthy(component: str) -> bool:
    """The component's own health, from its own endpoint (no dependence on the tool under test)."""
    try:
        if component == "mlflow-server":
            url = f"http://127.0.0.1:{PORTS['MLFLOW_PORT']}/health"
            return requests.get(url, timeout=1).status_code == 200
        if component == "spark-master":
            url = f"http://127.0.0.1:{PORTS['SPARK_MASTER_UI_PORT']}/json/"
            return requests.get(url, timeout=1).json().get("status") == "ALIVE"
        # A worker is healthy once the master lists its id as ALIVE.
        n = int(component.rsplit("-", 1)[1])
        url = f"http://127.0.0.1:{WORKER_BASE + n - 1}/json/"
        worker_id = requests.get(url, timeout=1).json()["id"]
        url = f"http://127.0.0.1:{PORTS['SPARK_MASTER_UI_PORT']}/json/"
        workers = requests.get(url, timeout=1).json()["workers"]
        return any(w["id"] == worker_id and w["state"] == "ALIVE" for w in workers)
    except (requests.RequestException, ValueError, KeyError):
        return False


def watch(component: str, spans: dict[str, float], stop: threading.Event) -> None:
    pid_file = WORK_DIR / "run" / f"{component}.pid"
    started = None
    while not stop.is_set():
        if started is None and pid_file.exists():
            started = time.monotonic()
        if started is not None and healthy(component):
            spans[component] = time.monotonic() - started
            return
        time.sleep(0.02)


def one_round() -> tuple[float, dict[str, float]]:
    make("down")
    components = ["mlflow-server", "spark-master"] + [
        f"spark-worker-{i}" for i in range(1, WORKERS + 1)
    ]
    spans: dict[str, float] = {}
    stop = threading.Event()
    threads = [threading.Thread(target=watch, args=(c, spans, stop)) for c in components]
    for t in threads:
        t.start()
    try:
        wall = make("up")
    finally:
        stop.set()
        for t in threads:
            t.join()
    return wall, spans


def time_status(runs: int = 7) -> list[float]:
    cmd = [str(ROOT / ".venv/bin/python"), str(ROOT / "tools/healthcheck.py"), "status"]
    e = env()
    e["MLFLOW_URL"] = f"http://127.0.0.1:{PORTS['MLFLOW_PORT']}"
    e["SPARK_MASTER_UI_URL"] = f"http://127.0.0.1:{PORTS['SPARK_MASTER_UI_PORT']}"
    e["SPARK_WORKER_UI_URLS"] = " ".join(
        f"http://127.0.0.1:{WORKER_BASE + i}" for i in range(WORKERS)
    )
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(cmd, env=e, check=True, stdout=subprocess.DEVNULL)
        times.append(time.monotonic() - started)
    return times


def main() -> int:
    print(f"bench_stack: {ROUNDS} rounds of `make up` from stopped ({WORKERS} workers)")
    print(f"{'round':>5}  {'make up':>8}  {'slowest component':>26}  {'ratio':>6}")
    ratios = []
    try:
        for i in range(1, ROUNDS + 1):
            wall, spans = one_round()
            slowest = max(spans, key=spans.get)
            ratio = wall / spans[slowest]
            ratios.append(ratio)
            label = f"{slowest} {spans[slowest]:.2f}s"
            print(f"{i:>5}  {wall:>7.2f}s  {label:>26}  {ratio:>6.2f}")
        status = time_status()
    finally:
        make("down")
    median_ratio = statistics.median(ratios)
    print(f"make up / slowest component: median {median_ratio:.2f}x (goal <= 1.2x)")
    print(
        f"healthcheck.py status: median {statistics.median(status):.3f}s, "
        f"max {max(status):.3f}s (goal < 0.5 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
