"""Data safety on real processes: backup of a live server, restore, clean-data.

A stack of its own (WORK_DIR work/test-data-safety/stack, ports 21555/21077/21080/21081, one
worker) for what needs a server; scratch WORK_DIRs beside it for what needs only folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import signal
import sqlite3
import subprocess
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import datasafety
import pytest
import requests
from conftest import DERIVED, PYTHON, ROOT, poll

BASE = ROOT / "work" / "test-data-safety"
STACK_WORK_DIR = BASE / "stack"
DATA = STACK_WORK_DIR / "mlflow"
MLFLOW_URL = "http://127.0.0.1:21555"
SETTINGS = {
    "RUNTIME": "local",
    "WORK_DIR": str(STACK_WORK_DIR),
    "MLFLOW_PORT": "21555",
    "SPARK_MASTER_PORT": "21077",
    "SPARK_MASTER_UI_PORT": "21080",
    "SPARK_WORKER_UI_BASE_PORT": "21081",
    "WORKERS": "1",
    "BIND_HOST": "127.0.0.1",
    "GIT_PYTHON_REFRESH": "quiet",
}
# Inputs of the scripts under test: never inherited from the caller's shell.
INPUTS = ["TO", "FROM", "CONFIRM"]


@pytest.fixture(scope="session", autouse=True)
def _stop_stack_at_end():
    """Overrides conftest's fixture of that name: this module never stops the work/test stack
    (another suite may be using it); it stops only its own, in `stack` below."""
    yield


def env_for(work_dir: Path = STACK_WORK_DIR, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DERIVED and k not in INPUTS}
    env.update(SETTINGS, WORK_DIR=str(work_dir), **extra)
    return env


def run(args: list[str], work_dir: Path = STACK_WORK_DIR, timeout: float = 300, **extra: str):
    return subprocess.run(
        args,
        cwd=ROOT,
        env=env_for(work_dir, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def script(name: str, *args: str, work_dir: Path = STACK_WORK_DIR, **extra: str):
    return run([str(ROOT / "scripts" / name), *args], work_dir, **extra)


def make(*args: str, timeout: float = 300):
    result = run(["make", "--no-print-directory", *args], timeout=timeout)
    assert result.returncode == 0, f"make {args}:\n{result.stdout}\n{result.stderr}"
    return result


def error_lines(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if "error:" in line]


def run_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0] for row in conn.execute("SELECT run_uuid FROM runs")}
    finally:
        conn.close()


def file_map(root: Path) -> dict[str, str]:
    """Every file under root -> sha256 of its content."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under root with size and mtime: what 'nothing changed' compares."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


# A client that logs runs until STOP exists or it logged MAX; each run's files hold its index,
# so the test can tell a complete artifact from a half-written or missing one.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import mlflow

    url, experiment, stop, most = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment)
    for i in range(most):
        if stop.exists():
            break
        with mlflow.start_run():
            mlflow.log_param("i", i)
            mlflow.log_metric("m", i)
            mlflow.log_text(f"run {i}\\n" * 200, "notes/a.txt")
            mlflow.log_dict({"i": i}, "d.json")
        print(i, flush=True)
    """
)


class Writer:
    def __init__(self, experiment: str, most: int = 10_000):
        BASE.mkdir(parents=True, exist_ok=True)
        self.stop_file = BASE / f"stop-{experiment}"
        self.stop_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [PYTHON, "-c", WRITER, MLFLOW_URL, experiment, str(self.stop_file), str(most)],
            env=env_for(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def finish(self, timeout: float = 120, stop: bool = True) -> tuple[int, str, str]:
        """Stop the writer (or let it log all its runs) and wait for it."""
        if stop:
            self.stop_file.touch()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.stop_file.unlink(missing_ok=True)
        return self.proc.returncode, out, err


def stack_down() -> None:
    make("down")


def stack_up() -> None:
    make("up", timeout=400)


@pytest.fixture(scope="module")
def stack():
    """The module's stack, from empty data (earlier sessions leave none behind); stopped at the
    end whatever happened."""
    BASE.mkdir(parents=True, exist_ok=True)
    stack_down()
    for old in [DATA, *STACK_WORK_DIR.glob("mlflow.before-restore-*")]:
        shutil.rmtree(old, ignore_errors=True)
    yield
    run(["make", "--no-print-directory", "down"])


@pytest.fixture(scope="module")
def populated(stack) -> None:
    """The stack's data holds finished runs with artifacts (logged by a real client)."""
    if DATA.joinpath("mlflow.db").exists() and len(run_ids(DATA / "mlflow.db")) >= 6:
        return
    stack_up()
    code, _, err = Writer("populate", most=6).finish(timeout=300, stop=False)
    assert code == 0, err[-3000:]


@pytest.fixture
def scratch(request) -> Path:
    """A WORK_DIR of its own for the test, emptied first."""
    folder = BASE / "scratch" / "".join(c if c.isalnum() else "-" for c in request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="module")
def good_backup(populated) -> Path:
    """A verified backup of the stack's data (taken up or down: both are supported)."""
    to = BASE / "good-backup"
    shutil.rmtree(to, ignore_errors=True)
    result = script("backup.sh", TO=str(to))
    assert result.returncode == 0, result.stderr
    return to


# --- backup -----------------------------------------------------------------------------------


def check_live_copy(to: Path, runs_before: set[str], runs_after: set[str], files_before: int):
    """One backup taken while the writer ran: intact, between the two counts, consistent."""
    copy = to / "mlflow.db"
    conn = sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute(
            "SELECT r.run_uuid, r.status, r.artifact_uri, p.value FROM runs r "
            "JOIN params p ON p.run_uuid = r.run_uuid AND p.key = 'i' "
            "JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE e.name = 'live-backup'"
        ).fetchall()
    finally:
        conn.close()
    copied = run_ids(copy)
    # The copy is the database at one moment between the two counts.
    assert runs_before <= copied <= runs_after
    manifest = json.loads((to / "backup.json").read_text())
    assert manifest["database"]["runs"] == len(copied)
    assert manifest["database"]["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert manifest["artifacts"]["files"] >= files_before
    files, nbytes = datasafety.totals(datasafety.listing(to / "artifacts"))
    assert (manifest["artifacts"]["files"], manifest["artifacts"]["bytes"]) == (files, nbytes)
    # Consistency: every run the copy calls FINISHED has its complete files in the backup.
    finished = [row for row in rows if row[1] == "FINISHED"]
    assert len(finished) >= 5
    for _, _, artifact_uri, index in finished:
        rel = Path(artifact_uri).relative_to(DATA / "artifacts")
        notes = to / "artifacts" / rel / "notes" / "a.txt"
        assert notes.read_text() == f"run {index}\n" * 200, notes
        assert json.loads((to / "artifacts" / rel / "d.json").read_text()) == {"i": int(index)}
    check = run([PYTHON, str(ROOT / "tools" / "datasafety.py"), "check", str(to)])
    assert check.returncode == 0, check.stderr


def test_backup_of_a_live_server_while_runs_are_logged(stack):
    stack_up()
    db = DATA / "mlflow.db"
    folder = BASE / "live-backups"
    shutil.rmtree(folder, ignore_errors=True)
    attempts = []
    writer = Writer("live-backup")
    try:
        first = len(run_ids(db)) if db.exists() else 0
        poll("the writer's first runs", lambda: len(run_ids(db)) >= first + 5, timeout=180)
        # A backup takes about 0.15 s, a run about 0.1 s: back up until the database changed
        # while one ran (a backup that saw no write proves nothing about concurrency).
        for n in range(40):
            runs_before = run_ids(db)
            files_before = datasafety.totals(datasafety.listing(DATA / "artifacts"))[0]
            result = script("backup.sh", TO=str(folder / str(n)))
            runs_after = run_ids(db)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == str(folder / str(n))
            attempts.append((folder / str(n), runs_before, runs_after, files_before))
            if runs_after != runs_before:
                break
        assert script("check-stopped.sh").returncode == 1  # it was a live server indeed
        # The writer goes on after the backups: their locks never made MLflow fail.
        last = len(run_ids(db))
        poll("runs after the backups", lambda: len(run_ids(db)) >= last + 3, timeout=120)
    finally:
        code, _, err = writer.finish()
    assert code == 0, err[-3000:]
    assert attempts[-1][1] != attempts[-1][2], f"no write overlapped any of {len(attempts)} backups"
    for attempt in attempts:
        check_live_copy(*attempt)


# A writer killed inside a big transaction: SQLite has spilled pages to the file and left a hot
# journal that only a read-write connection may roll back.
CRASHED_WRITER = textwrap.dedent(
    """
    import os, signal, sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA cache_size = 5")
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE filler (x)")
    conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(500),) for _ in range(4000)])
    conn.execute("DELETE FROM runs")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_backup_after_a_writer_died_mid_transaction_rolls_the_journal_back(good_backup, scratch):
    data = scratch / "mlflow"
    shutil.copytree(good_backup, data, symlinks=True)
    (data / "backup.json").unlink()
    runs = run_ids(data / "mlflow.db")
    subprocess.run([PYTHON, "-c", CRASHED_WRITER, str(data / "mlflow.db")], timeout=60)
    assert (data / "mlflow.db-journal").stat().st_size > 0
    result = script("backup.sh", work_dir=scratch, TO=str(scratch / "copy"))
    assert result.returncode == 0, result.stderr
    assert "hot journal" in result.stderr
    copy = scratch / "copy" / "mlflow.db"
    assert run_ids(copy) == runs
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "filler" not in tables


def test_backup_refuses_a_folder_that_exists_and_writes_nothing(populated, scratch):
    target = scratch / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    before = tree_state(scratch)
    result = script("backup.sh", TO=str(target))
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and "exists already" in error_lines(result)[0]
    assert tree_state(scratch) == before


def test_backup_without_data_is_one_line_exit_2(scratch):
    result = script("backup.sh", work_dir=scratch)
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and "nothing to back up" in error_lines(result)[0]
    assert list(scratch.iterdir()) == []


# --- restore ----------------------------------------------------------------------------------


def test_restore_brings_back_exactly_the_runs_and_artifacts_and_keeps_the_old_data(populated):
    stack_down()
    to = BASE / "restore-backup"
    shutil.rmtree(to, ignore_errors=True)
    assert script("backup.sh", TO=str(to)).returncode == 0
    runs, files = run_ids(DATA / "mlflow.db"), file_map(DATA / "artifacts")
    assert len(runs) >= 6 and len(files) >= 12

    # Damage: runs deleted, a folder of artifacts gone, a file changed, a stranger added.
    conn = sqlite3.connect(DATA / "mlflow.db")
    with conn:
        conn.execute("DELETE FROM runs WHERE rowid % 2 = 0")
    conn.close()
    some_run_dir = next((DATA / "artifacts").glob("*/*/artifacts"))
    shutil.rmtree(some_run_dir)
    changed = next((DATA / "artifacts").rglob("a.txt"))
    changed.write_text("changed\n")
    (DATA / "artifacts" / "stranger.txt").write_text("not from the backup\n")
    damaged_runs, damaged_files = run_ids(DATA / "mlflow.db"), file_map(DATA / "artifacts")
    assert damaged_runs < runs and damaged_files != files
    asides_before = set(STACK_WORK_DIR.glob("mlflow.before-restore-*"))

    result = script("restore.sh", str(to))
    assert result.returncode == 0, result.stderr
    assert run_ids(DATA / "mlflow.db") == runs
    assert file_map(DATA / "artifacts") == files
    # The data it replaced is kept, as it was, and the output says where.
    (aside,) = set(STACK_WORK_DIR.glob("mlflow.before-restore-*")) - asides_before
    assert aside.name in result.stderr
    assert run_ids(aside / "mlflow.db") == damaged_runs
    assert file_map(aside / "artifacts") == damaged_files
    assert not list(STACK_WORK_DIR.glob(".mlflow.restoring-*"))

    # The server takes the restored database: every run is there again through the REST API.
    stack_up()
    answer = requests.post(
        f"{MLFLOW_URL}/api/2.0/mlflow/experiments/search",
        json={"max_results": 1000, "view_type": "ALL"},
        timeout=10,
    )
    experiment_ids = [e["experiment_id"] for e in answer.json()["experiments"]]
    answer = requests.post(
        f"{MLFLOW_URL}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": experiment_ids, "max_results": 1000, "run_view_type": "ALL"},
        timeout=10,
    )
    answer.raise_for_status()
    assert {r["info"]["run_id"] for r in answer.json()["runs"]} == runs


def test_restore_and_clean_data_refuse_while_the_stack_runs(good_backup):
    stack_up()
    before = file_map(DATA), sorted(p.name for p in STACK_WORK_DIR.iterdir())
    for result in (
        script("restore.sh", str(good_backup)),
        script("clean-data.sh", CONFIRM="yes"),
    ):
        assert result.returncode == 1, result.stderr
        (line,) = error_lines(result)
        assert "stop the stack first: make down" in line
        assert "mlflow-server" in line
    assert (file_map(DATA), sorted(p.name for p in STACK_WORK_DIR.iterdir())) == before


def _replace_manifest_sha(folder: Path) -> None:
    manifest = json.loads((folder / "backup.json").read_text())
    manifest["database"]["sha256"] = hashlib.sha256((folder / "mlflow.db").read_bytes()).hexdigest()
    (folder / "backup.json").write_text(json.dumps(manifest))


def _corrupt_pages(folder: Path) -> None:
    db = folder / "mlflow.db"
    raw = bytearray(db.read_bytes())
    page = 4096
    raw[page : 4 * page] = os.urandom(3 * page)  # b-tree pages after the header page
    db.write_bytes(bytes(raw))
    _replace_manifest_sha(folder)


def _set(key_path: tuple[str, ...], value):
    def damage(folder: Path) -> None:
        manifest = json.loads((folder / "backup.json").read_text())
        target = manifest
        for key in key_path[:-1]:
            target = target[key]
        target[key_path[-1]] = value
        (folder / "backup.json").write_text(json.dumps(manifest))

    return damage


# (case id, damage done to a copy of a good backup, words of the one error line)
NOT_A_BACKUP = [
    ("no backup.json", lambda f: (f / "backup.json").unlink(), "no backup.json"),
    ("backup.json not JSON", lambda f: (f / "backup.json").write_text("{oops"), "JSON"),
    ("backup.json of something else", lambda f: (f / "backup.json").write_text("[]"), "not a"),
    ("another format version", _set(("format_version",), 99), "format_version"),
    ("manifest without sha256", _set(("database",), {"runs": 1}), "sha256"),
    ("mlflow.db missing", lambda f: (f / "mlflow.db").unlink(), "no mlflow.db"),
    (
        "mlflow.db changed after the backup",
        lambda f: (f / "mlflow.db").write_bytes((f / "mlflow.db").read_bytes() + b"\0" * 4096),
        "sha256",
    ),
    ("mlflow.db corrupt", _corrupt_pages, "integrity check"),
    (
        "mlflow.db not a database",
        lambda f: ((f / "mlflow.db").write_text("hello\n"), _replace_manifest_sha(f)),
        "integrity check",
    ),
    (
        "an artifact file missing",
        lambda f: next(p for p in (f / "artifacts").rglob("*") if p.is_file()).unlink(),
        "artifacts/ holds",
    ),
    ("a folder that does not exist", lambda f: shutil.rmtree(f), "not a folder"),
]


@pytest.mark.parametrize(
    ("damage", "words"), [pytest.param(*case[1:], id=case[0]) for case in NOT_A_BACKUP]
)
def test_restore_refuses_a_folder_that_is_not_a_backup_and_changes_nothing(
    good_backup, scratch, damage, words
):
    work = scratch / "work"
    shutil.copytree(good_backup, work / "mlflow", symlinks=True)
    (work / "mlflow" / "backup.json").unlink()
    (work / "logs").mkdir()
    bad = scratch / "bad-backup"
    shutil.copytree(good_backup, bad, symlinks=True)
    damage(bad)
    before = tree_state(work)
    result = script("restore.sh", str(bad), work_dir=work)
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result)
    assert words in line
    assert tree_state(work) == before


def test_restore_without_from_is_one_line_exit_2():
    result = script("restore.sh")
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "FROM=" in line


def test_restore_into_an_empty_work_dir(good_backup, scratch):
    result = script("restore.sh", str(good_backup), work_dir=scratch)
    assert result.returncode == 0, result.stderr
    assert "nothing to move aside" in result.stderr
    assert file_map(scratch / "mlflow" / "artifacts") == file_map(good_backup / "artifacts")
    assert run_ids(scratch / "mlflow" / "mlflow.db") == run_ids(good_backup / "mlflow.db")


# --- clean-data -------------------------------------------------------------------------------


@pytest.fixture
def doomed(good_backup, scratch) -> Path:
    """A WORK_DIR holding MLflow data and other things clean-data must leave alone."""
    shutil.copytree(good_backup, scratch / "mlflow", symlinks=True)
    shutil.copytree(good_backup, scratch / "backups" / "one", symlinks=True)
    (scratch / "mlflow.before-restore-20250101T000000Z").mkdir()
    (scratch / "mlflow.before-restore-20250101T000000Z" / "mlflow.db").write_text("old\n")
    (scratch / "logs").mkdir()
    (scratch / "logs" / "mlflow-server.log").write_text("a log\n")
    (scratch / "mlflow-notes.txt").write_text("a sibling whose name starts like the data\n")
    return scratch


def others(work: Path) -> dict[str, tuple[int, int]]:
    return {k: v for k, v in tree_state(work).items() if k.split("/")[0] != "mlflow"}


@pytest.mark.parametrize("confirm", ["", "no", "YES"])
def test_clean_data_without_a_terminal_refuses_unless_confirm_yes(doomed, confirm):
    before = tree_state(doomed)
    result = script("clean-data.sh", work_dir=doomed, CONFIRM=confirm)
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "CONFIRM=yes" in line
    assert tree_state(doomed) == before


def with_terminal(work: Path, answer: str) -> tuple[int, str]:
    """Run clean-data with a pseudo-terminal as stdin and type ANSWER."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "clean-data.sh")],
            cwd=ROOT,
            env=env_for(work),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    return proc.returncode, out + err


def test_clean_data_on_a_terminal_asks_for_the_folder_name(doomed):
    before = tree_state(doomed)
    code, output = with_terminal(doomed, "yes")
    assert code == 1, output
    assert "Type the folder name (mlflow)" in output
    assert tree_state(doomed) == before

    code, output = with_terminal(doomed, "mlflow")
    assert code == 0, output
    assert not (doomed / "mlflow").exists()


def test_clean_data_with_confirm_removes_only_the_mlflow_data(doomed):
    files = sum(1 for p in (doomed / "mlflow").rglob("*") if not p.is_dir())
    kept = others(doomed)
    result = script("clean-data.sh", work_dir=doomed, CONFIRM="yes")
    assert result.returncode == 0, result.stderr
    assert not (doomed / "mlflow").exists()
    assert others(doomed) == kept
    assert f"{files} files" in result.stderr
    again = script("clean-data.sh", work_dir=doomed, CONFIRM="yes")
    assert again.returncode == 0 and "nothing to remove" in again.stderr


# --- the pure parts ---------------------------------------------------------------------------


def test_compare_copy_tolerates_only_files_changed_after_the_database_copy():
    since = 10_000_000_000
    old, new = since - 2 * datasafety.CTIME_SLACK_NS, since + 1
    source = {"a": (3, old), "b": (5, old), "c": (7, new), "d": (1, old)}
    copy = {"a": (3, 0), "b": (4, 0), "c": (2, 0), "e": (1, 0)}
    diff = datasafety.compare_copy(source, copy, since)
    assert diff.missing == ["d"]
    assert diff.changed == ["b"]
    assert diff.newer == ["c"]
    assert diff.gone == ["e"]
    assert datasafety.compare_copy(source, dict(source), since).missing == []


def test_manifest_problem_names_what_is_wrong():
    good = datasafety.make_manifest(
        created=datetime(2025, 1, 1, tzinfo=timezone.utc),
        source="/x",
        runtime="local",
        mlflow_version="3",
        db={"sha256": "0", "bytes": 1, "runs": 1, "experiments": 1},
        files=0,
        nbytes=0,
        newer=0,
    )
    assert datasafety.manifest_problem(good) is None
    assert "format_version" in datasafety.manifest_problem({**good, "format_version": 2})
    assert "runs" in datasafety.manifest_problem({**good, "database": {"sha256": "0", "bytes": 1}})
    assert datasafety.manifest_problem({"kind": "other"}) is not None
