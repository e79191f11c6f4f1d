"""Image builds of one checkout take turns (scripts/docker/lib.sh hold_build_lock): they share the
build context, where EXTRA_CA_CERTS is staged and removed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOLD = 'source scripts/docker/lib.sh && hold_build_lock && echo held && exec sleep "$1"'


def holder(lock: Path, seconds: str, timeout: str = "30") -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "-c", HOLD, "hold", seconds],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "BUILD_LOCK_FILE": str(lock), "BUILD_LOCK_TIMEOUT": timeout},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_build_waits_for_the_first_and_then_goes_on(tmp_path):
    lock = tmp_path / "build.lock"
    first = holder(lock, "2")
    assert first.stdout.readline() == "held\n"
    started = time.monotonic()
    second = holder(lock, "0")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0 and out == "held\n", err
    assert f"another image build of this checkout is running (pid {first.pid})" in err
    assert time.monotonic() - started > 0.5  # it did wait for the first
    first.wait(timeout=30)


def test_a_build_that_waits_too_long_says_who_holds_the_lock(tmp_path):
    lock = tmp_path / "build.lock"
    first = holder(lock, "20")
    try:
        assert first.stdout.readline() == "held\n"
        second = holder(lock, "0", timeout="1")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert f"the image build of pid {first.pid} still holds {lock} after 1 s" in err
    finally:
        first.kill()
        first.wait()
    # A child of a holder does not wait for its own parent.
    nested = 'source scripts/docker/lib.sh && hold_build_lock && bash -c "$0"'
    inner = "source scripts/docker/lib.sh && hold_build_lock && echo inner"
    out = subprocess.run(
        ["bash", "-c", nested, inner],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "BUILD_LOCK_FILE": str(lock), "BUILD_LOCK_TIMEOUT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout == "inner\n", out.stderr
