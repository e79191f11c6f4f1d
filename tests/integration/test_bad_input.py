"""Bad input: one clear line (what is wrong, how to fix it), a non-zero exit, nothing changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, TEST_WORK_DIR, run_script, stack_env

NOT_A_COPY = TEST_WORK_DIR / "not-a-local-copy"
A_JAR = TEST_WORK_DIR / "bad-input" / "app.jar"
EMPTY_STORE = TEST_WORK_DIR / "bad-input" / "empty-store"

# (case id, script and its arguments, environment, exit code, words the error line must hold)
CASES = [
    ("unknown RUNTIME", ["runtime.sh", "up"], {"RUNTIME": "bogus"}, 2, "RUNTIME='bogus'"),
    ("WORKERS=0", ["runtime.sh", "up"], {"WORKERS": "0"}, 2, "WORKERS='0'"),
    ("WORKERS=abc", ["runtime.sh", "up"], {"WORKERS": "abc"}, 2, "WORKERS='abc'"),
    ("WORKER_CORES=-1", ["runtime.sh", "up"], {"WORKER_CORES": "-1"}, 2, "WORKER_CORES"),
    ("unknown ARTIFACT_MODE", ["runtime.sh", "up"], {"ARTIFACT_MODE": "s3"}, 2, "ARTIFACT_MODE"),
    ("status of unknown RUNTIME", ["runtime.sh", "status"], {"RUNTIME": "k8s"}, 2, "RUNTIME"),
    ("missing job file", ["submit.sh"], {"JOB": "jobs/nope.py"}, 2, "not found"),
    ("JAR job without CLASS", ["submit.sh"], {"JOB": str(A_JAR)}, 2, "CLASS"),
    ("job neither .py nor .jar", ["submit.sh"], {"JOB": "README.md"}, 2, "neither"),
    ("logs of unknown component", ["runtime.sh", "logs", "nope"], {}, 2, "no log for 'nope'"),
    ("relog without DIR", ["relog.sh"], {}, 2, "DIR="),
    ("relog of a folder that is no local copy", ["relog.sh", str(NOT_A_COPY)], {}, 2, "manifest"),
    ("setup with a Python that does not run", ["setup.sh"], {"PYTHON": "nope3"}, 2, "Python"),
    ("setup with no Java", ["setup.sh"], {"JAVA": "/nonexistent/java"}, 2, "Java"),
    ("unknown test suite", ["test.sh", "smoke"], {}, 2, "suite"),
    ("unknown benchmark", ["bench.sh"], {"BENCH": "nope"}, 2, "bench_nope"),
    (
        "RUNTIME=docker and no engine answers",
        ["runtime.sh", "up"],
        {"RUNTIME": "docker", "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        2,
        "no Docker engine answers",
    ),
    (
        "check-artifacts on an empty store",
        ["check-artifacts.sh", "--no-rest"],
        {"WORK_DIR": str(EMPTY_STORE)},
        2,
        "empty artifact store",
    ),
]


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and mtime: what 'nothing changed' compares."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module", autouse=True)
def _inputs():
    NOT_A_COPY.mkdir(parents=True, exist_ok=True)
    (NOT_A_COPY / "notes.txt").write_text("not a submit's local copy\n")
    A_JAR.parent.mkdir(parents=True, exist_ok=True)
    A_JAR.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: enough to be a .jar file
    (EMPTY_STORE / "mlflow" / "artifacts").mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize(
    ("script", "env", "code", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(script, env, code, words):
    before = tree_state(TEST_WORK_DIR / "mlflow"), tree_state(TEST_WORK_DIR / "run")
    result = run_script(*script, timeout=120, **env)
    after = tree_state(TEST_WORK_DIR / "mlflow"), tree_state(TEST_WORK_DIR / "run")
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert result.returncode == code, output[-2000:]
    assert len(errors) == 1, output[-2000:]
    assert words in errors[0]
    assert after == before


def test_healthcheck_with_a_malformed_url_is_one_line_exit_2():
    result = subprocess.run(
        [PYTHON, str(ROOT / "tools/healthcheck.py"), "status", "--mlflow-url", "localhost:5555"],
        env=stack_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--mlflow-url" in result.stderr


def test_make_turns_a_bad_input_into_a_non_zero_exit():
    result = subprocess.run(
        ["make", "--no-print-directory", "up"],
        cwd=ROOT,
        env=stack_env(WORKERS="abc"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "error: WORKERS='abc' is not a positive whole number" in result.stderr
