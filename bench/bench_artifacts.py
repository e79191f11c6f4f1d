"""Bench: the artifact-store diff (tools/artifacts.py) against the bare tools, side by side.

1. Two synthetic artifact roots of 100,000 small files across 1,000 runs (the second with a few
   differences), kept in work/bench/artifacts/ and reused. Timed in the same run:
   - FolderView diff of both (list A, list B, diff) vs `find A B -type f -printf '%s %P\\n'`
     (goal: ratio <= 2);
   - the same with --checksum vs `find A B -type f -exec sha256sum {} +` (goal: ratio <= 1.2).
   Each timing is the best of ROUNDS runs after a warm-up (page cache warm for both sides).
2. The REST view against a real MLflow server (own port 56xx, temp sqlite and artifact root):
   20 runs x 50 files; seconds per run and per file, with and without checksums.
Run with `make bench` or `.venv/bin/python bench/bench_artifacts.py` (about 1-2 minutes).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import artifacts as A  # noqa: E402  (tools/ is not a package)

DATA = ROOT / "work" / "bench" / "artifacts"
RUNS, FILES_PER_RUN = 1000, 100
REST_RUNS, REST_FILES = 20, 50
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MLFLOW = ROOT / ".venv" / "bin" / "mlflow"


def build_tree(root: Path) -> None:
    """1,000 runs x 100 files (20-200 bytes) in 4 experiments, nested like real runs."""
    for r in range(RUNS):
        run = f"{r:032x}"
        base = root / str(r % 4 + 1) / run / "artifacts"
        for sub in ("metrics", "reports", "model/data", "model/meta"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for f in range(FILES_PER_RUN):
            sub = ("metrics", "reports", "model/data", "model/meta")[f % 4]
            (base / sub / f"part-{f:03d}.txt").write_bytes(b"%d,%d\n" % (r, f) * (f % 30 + 2))


def apply_differences(root: Path) -> list[str]:
    """A few differences of every kind in copy B; returns what was done."""
    run = lambda r: root / str(r % 4 + 1) / f"{r:032x}" / "artifacts"  # noqa: E731
    (run(10) / "metrics/part-000.txt").unlink()  # missing
    (run(20) / "reports/part-001.txt").write_bytes(b"short")  # size
    p = run(30) / "model/data/part-002.txt"
    data = bytearray(p.read_bytes())
    data[0] ^= 1
    p.write_bytes(bytes(data))  # checksum (same size)
    (run(40) / "metrics/extra.txt").write_bytes(b"new")  # extra
    return ["missing", "size", "checksum", "extra"]


def ensure_data() -> tuple[Path, Path]:
    a, b = DATA / "a", DATA / "b"
    marker = DATA / f".complete-{RUNS}x{FILES_PER_RUN}"
    if marker.exists():
        return a, b
    shutil.rmtree(DATA, ignore_errors=True)
    a.mkdir(parents=True)
    t = time.monotonic()
    build_tree(a)
    subprocess.run(["cp", "-a", str(a), str(b)], check=True)
    apply_differences(b)
    marker.write_text("ok\n")
    print(f"built {2 * RUNS * FILES_PER_RUN} files in {time.monotonic() - t:.1f} s")
    return a, b


def best(fn, rounds: int = ROUNDS) -> tuple[float, object]:
    fn()  # warm-up: same page cache for every contender
    times, result = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def py_diff(a: Path, b: Path, checksum: bool):
    la = A.FolderView(str(a), name="a").list(checksum=checksum)
    lb = A.FolderView(str(b), name="b").list(checksum=checksum)
    return A.diff([la, lb])


def sh(cmd: list[str]):
    return lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)


def free_port() -> int:
    for port in range(5660, 5700):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise SystemExit("no free port in 5660-5699")


def bench_rest(rows: list) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-artifacts-", dir=DATA))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(MLFLOW),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{tmp}/mlflow.db",
        "--default-artifact-root",
        str(tmp / "artifacts"),
    ]
    with open(tmp / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"mlflow server did not start: see {tmp}/server.log")
            time.sleep(0.2)
        os.environ["GIT_PYTHON_REFRESH"] = "quiet"
        import mlflow

        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("bench-artifacts")
        src = tmp / "src"
        for f in range(REST_FILES):
            p = src / ("metrics", "reports", "model/data")[f % 3] / f"f{f:02d}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x" * (f * 10))
        for r in range(REST_RUNS):
            with mlflow.start_run(run_name=f"bench-{r}"):
                mlflow.log_artifacts(str(src))

        def rest(checksum: bool):
            view = A.RestView(url)
            return view.list(view.resolve(), checksum=checksum)

        for checksum in (False, True):
            secs, lst = best(lambda c=checksum: rest(c))
            files = len(lst.sizes)
            assert files == REST_RUNS * REST_FILES, files
            label = "rest view" + (" --checksum" if checksum else "")
            rows.append(
                (
                    f"{label} ({REST_RUNS} runs x {REST_FILES} files)",
                    secs,
                    f"{secs / REST_RUNS * 1000:.1f} ms/run, {secs / files * 1000:.2f} ms/file",
                )
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the whole group: uvicorn outlives its launcher
        proc.wait(30)
        deadline = time.monotonic() + 20
        with socket.socket() as s:
            while s.connect_ex(("127.0.0.1", port)) == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    started = time.monotonic()
    a, b = ensure_data()
    rows = []
    t_find, _ = best(sh(["find", str(a), str(b), "-type", "f", "-printf", "%s %P\n"]))
    t_diff, findings = best(lambda: py_diff(a, b, False))
    got = sorted({f.kind for f in findings})
    assert got == ["extra", "missing", "size"], got  # no checksum: the altered byte is unseen
    rows += [
        ("find -printf (2 x 100k files)", t_find, ""),
        ("FolderView diff (2 x 100k files)", t_diff, f"{len(findings)} differences"),
    ]
    t_sha, _ = best(sh(["find", str(a), str(b), "-type", "f", "-exec", "sha256sum", "{}", "+"]))
    t_diff_sha, findings = best(lambda: py_diff(a, b, True))
    got = sorted({f.kind for f in findings})
    assert got == ["checksum", "extra", "missing", "size"], got
    rows += [
        ("find -exec sha256sum (2 x 100k)", t_sha, ""),
        ("FolderView diff --checksum", t_diff_sha, f"{len(findings)} differences"),
    ]
    bench_rest(rows)

    print(f"{'measure':<44} {'seconds':>8}  note")
    for name, secs, note in rows:
        print(f"{name:<44} {secs:>8.3f}  {note}")
    r1, r2 = t_diff / t_find, t_diff_sha / t_sha
    print(f"ratio diff / find            = {r1:.2f}  (goal <= 2.0)  {'OK' if r1 <= 2 else 'MISS'}")
    print(
        f"ratio diff --checksum / sha256sum = {r2:.2f}  (goal <= 1.2)  "
        f"{'OK' if r2 <= 1.2 else 'MISS'}"
    )
    print(f"bench total {time.monotonic() - started:.0f} s (best of {ROUNDS} after a warm-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
