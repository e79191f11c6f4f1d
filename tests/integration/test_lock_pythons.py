"""constraints.txt on every Python of LOCK_PYTHONS (network: PyPI; no interpreter of those Pythons).

The Spark+MLflow image installs `mlflow-skinny mlflow-tracing numpy pandas matplotlib` with
`-c constraints.txt` on its base's Python: 3.10 on the Apache image, Bitnami's own 3.11 or 3.12.
For each Python and for MLFLOW_VERSION and NEXT_MLFLOW_VERSION, that set must resolve with
`pip install --dry-run --python-version X --only-binary=:all:` and take the lock's numpy, pandas and
matplotlib for X. And a Python's pin differs from the leading Python's only where the leading pin
has no wheel for it (what scripts/lock.sh promises: no other drift between Pythons).

pip reads the markers of a constraints file for the Python that runs it, not --python-version:
another Python gets the lock rendered for it (tools/lockpins.py render); the Python running the
tests gets constraints.txt itself, so pip's own reading of the markers is checked too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lockpins
import pytest
from conftest import ROOT, VERSIONS
from packaging.utils import canonicalize_name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

LOCK = ROOT / "constraints.txt"
PYTHONS = VERSIONS["LOCK_PYTHONS"].split(",")
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
IMAGE_PACKAGES = ("numpy", "pandas", "matplotlib")  # docker/Dockerfile.spark-mlflow
PIP_TIMEOUT_S = 300


def dry_run(python: str, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """pip install --dry-run for Python `python`. --target: this venv's pip (23.2) refuses
    --python-version without it; a dry run writes nothing there."""
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
        "--disable-pip-version-check", "--quiet", "--target", str(workdir / "target"),
        "--python-version", python, "--only-binary=:all:", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)


def lock_for(python: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    """The constraints file pip gets for `python`, and the lock's pins for it by name."""
    pins = lockpins.render(LOCK.read_text(), python)
    expected = {canonicalize_name(name): version for name, version in pins}
    if python == RUNNING:
        return LOCK, expected
    rendered = workdir / f"constraints-{python}.txt"
    rendered.write_text("".join(f"{name}=={version}\n" for name, version in pins))
    return rendered, expected


@pytest.mark.parametrize("mlflow_key", ["MLFLOW_VERSION", "NEXT_MLFLOW_VERSION"])
@pytest.mark.parametrize("python", PYTHONS)
def test_the_image_install_set_resolves_with_the_lock(python, mlflow_key, tmp_path):
    mlflow = VERSIONS[mlflow_key]
    constraints, expected = lock_for(python, tmp_path)
    report = tmp_path / "report.json"
    proc = dry_run(
        python,
        tmp_path,
        "--report",
        str(report),
        f"mlflow-skinny=={mlflow}",
        f"mlflow-tracing=={mlflow}",
        *IMAGE_PACKAGES,
        "-c",
        str(constraints),
    )
    errors = [line for line in proc.stderr.splitlines() if "is ignored" not in line]
    assert proc.returncode == 0, "\n".join(errors[-15:])
    resolved = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert resolved["mlflow-skinny"] == mlflow
    assert {name: resolved[name] for name in IMAGE_PACKAGES} == {
        name: expected[name] for name in IMAGE_PACKAGES
    }


def test_a_python_departs_from_the_leading_pins_only_where_they_have_no_wheel(tmp_path):
    lead = re.search(r"Python (\d+\.\d+)'s lead", LOCK.read_text())
    assert lead, "constraints.txt's header no longer names the Python whose pins lead"
    text = LOCK.read_text()
    leading = {canonicalize_name(n): (n, v) for n, v in lockpins.render(text, lead.group(1))}
    departures = [
        (python, f"{leading[key][0]}=={leading[key][1]}")
        for python in PYTHONS
        for name, version in lockpins.render(text, python)
        if (key := canonicalize_name(name)) in leading and leading[key][1] != version
    ]

    def has_wheel(python: str, pin: str) -> bool:
        proc = dry_run(python, tmp_path / python / pin, "--no-deps", pin)
        assert proc.returncode == 0 or "No matching distribution" in proc.stderr, proc.stderr
        return proc.returncode == 0

    with ThreadPoolExecutor(max_workers=4) as pool:
        fits = list(pool.map(lambda departure: has_wheel(*departure), departures))
    assert [d for d, fit in zip(departures, fits, strict=True) if fit] == []
