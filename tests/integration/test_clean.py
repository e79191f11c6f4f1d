"""`make clean` removes what the stack can make again and keeps what it cannot."""

from __future__ import annotations

import subprocess

from conftest import ROOT, stack_env


def test_clean_keeps_user_data_and_local_copies_waiting_for_relog(tmp_path):
    work = tmp_path / "work"
    files = {
        "mlflow/mlflow.db": "db",
        "mlflow/artifacts/1/r/artifacts/a.csv": "a",
        "backups/20261203T000000Z/backup.json": "{}",
        "output/exp/logged-run/manifest.json": "{}",
        "output/exp/pending-run/manifest.json": "{}",
        "output/exp/pending-run/pending.json": "{}",
        "logs/mlflow-server.log": "log",
        "tmp/dfs/x": "x",
        "spark/worker-1/app/stderr": "e",
    }
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    done = subprocess.run(
        ["make", "--no-print-directory", "clean"],
        cwd=ROOT,
        env=stack_env(WORK_DIR=str(work)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    left = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    assert left == sorted(
        [
            "backups/20261203T000000Z/backup.json",
            "mlflow/artifacts/1/r/artifacts/a.csv",
            "mlflow/mlflow.db",
            "output/exp/pending-run/manifest.json",
            "output/exp/pending-run/pending.json",
        ]
    )
    assert "make relog DIR=" in done.stderr


def test_clean_refuses_while_the_stack_runs(tmp_path):
    run = tmp_path / "work" / "run"
    run.mkdir(parents=True)
    (run / "mlflow-server.pid").write_text("1")
    (tmp_path / "work" / "logs").mkdir()
    done = subprocess.run(
        [str(ROOT / "scripts" / "clean.sh")],
        cwd=ROOT,
        env=stack_env(WORK_DIR=str(tmp_path / "work")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "make down" in done.stderr
    assert (tmp_path / "work" / "logs").is_dir()
