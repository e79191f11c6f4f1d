"""What the stack benches share: an isolated bench stack (own ports, own work dir) and make."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK_DIR = ROOT / "work" / "bench" / "stack"
PORTS = {"MLFLOW_PORT": 25555, "SPARK_MASTER_PORT": 27077, "SPARK_MASTER_UI_PORT": 28080}
WORKER_BASE = 28081
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
MLFLOW_URL = f"http://127.0.0.1:{PORTS['MLFLOW_PORT']}"
MASTER_URL = f"spark://127.0.0.1:{PORTS['SPARK_MASTER_PORT']}"


def env(**extra: str) -> dict[str, str]:
    """The caller's environment, pointed at the bench stack (derived URLs dropped)."""
    e = {k: v for k, v in os.environ.items() if not k.endswith("_URL") and k != "RUNTIME"}
    e.pop("MLFLOW_TRACKING_URI", None)
    e.update({k: str(v) for k, v in PORTS.items()})
    e.update(
        RUNTIME="local",
        WORK_DIR=str(WORK_DIR),
        SPARK_WORKER_UI_BASE_PORT=str(WORKER_BASE),
        WORKERS=str(WORKERS),
    )
    e.update(extra)
    return e


def make(*args: str, capture: bool = False, **extra: str) -> tuple[float, str]:
    """Run `make ARGS` on the bench stack; return (seconds, stdout if captured)."""
    started = time.monotonic()
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env(**extra),
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - started, done.stdout or ""
