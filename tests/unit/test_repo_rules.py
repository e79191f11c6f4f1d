"""Rules of the repository that a careless change breaks: pins in one place, runnable scripts,
a README whose first commands are the newcomer's two."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def versions() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / "versions.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def test_mlflow_and_spark_versions_are_written_only_in_versions_env():
    v = versions()
    lock = (ROOT / "constraints.txt").read_text().lower()
    assert not re.search(r"^(mlflow|mlflow-skinny|mlflow-tracing|pyspark)==", lock, re.M)
    assert re.search(r"^sqlalchemy==2\.0\.", lock, re.M), "MLflow 3.4 needs sqlalchemy<2.1"
    for path in [*ROOT.glob("scripts/**/*.sh"), *ROOT.glob("jobs/*.py"), ROOT / "Makefile"]:
        text = path.read_text()
        for key in ("MLFLOW_VERSION", "SPARK_VERSION"):
            assert f"=={v[key]}" not in text, f"{path} pins {key} itself"


def lock_requirements() -> list[Requirement]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_every_lock_line_is_one_exact_pin_with_at_most_a_python_version_marker():
    for req in lock_requirements():
        (spec,) = req.specifier
        assert spec.operator == "==" and "*" not in spec.version, req
        if req.marker is not None:
            assert re.fullmatch(
                r'python_version == "3\.\d+"( or python_version == "3\.\d+")*', str(req.marker)
            ), req


def test_the_lock_gives_every_python_of_lock_pythons_exactly_one_pin_per_package():
    """pip applies every line whose marker holds: two would conflict, none would leave a package
    unlocked on the image's Python (Apache's 3.10, Bitnami's own)."""
    pythons = versions()["LOCK_PYTHONS"].split(",")
    assert versions()["PYTHON_MIN"] in pythons, "setup.sh accepts PYTHON_MIN: lock it too"
    reqs = lock_requirements()
    names = {canonicalize_name(req.name) for req in reqs}
    for python in pythons:
        env = {
            **default_environment(),
            "python_version": python,
            "python_full_version": f"{python}.0",
        }
        pins = Counter(
            canonicalize_name(req.name)
            for req in reqs
            if req.marker is None or req.marker.evaluate(env)
        )
        assert {name: count for name, count in pins.items() if count != 1} == {}, python
        assert set(pins) == names, f"Python {python} has no pin for {names - set(pins)}"


def test_every_script_is_executable_and_strict():
    for path in ROOT.glob("scripts/**/*.sh"):
        text = path.read_text()
        if path.name == "lib.sh":
            assert not path.stat().st_mode & 0o111, f"{path} is sourced, not run"
            continue
        assert path.stat().st_mode & 0o100, f"{path} is not executable"
        assert "set -o errexit -o nounset -o pipefail" in text, path
        header = text.splitlines()[1]
        assert header.startswith("# ") and len(header) > 10, f"{path} has no one-line header"


def test_readme_starts_with_the_two_newcomer_commands():
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"^make (\w[\w-]*)", text, re.M)
    assert commands[:2] == ["submit", "test"]


def test_every_makefile_target_is_documented_in_help():
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY:(.*?)(?<!\\)$", makefile, re.M | re.S).group(1).split())
    phony.discard("\\")
    documented = set(re.findall(r"^([a-z-]+):.*## ", makefile, re.M))
    assert phony == documented


def test_every_fixed_port_lies_below_the_ephemeral_range():
    """Linux hands ports 32768-60999 to outgoing connections: a fixed port there can be taken by
    any client socket at any time (it broke CI once), so defaults, integration tests and benches
    stay below."""
    pattern = re.compile(r"""_PORT["']?\s*[:=]\s*["']?(\d{4,5})\b""")
    files = [ROOT / "versions.env", *ROOT.glob("tests/integration/*.py"), *ROOT.glob("bench/*.py")]
    found = {
        (path.relative_to(ROOT).as_posix(), int(port))
        for path in files
        for port in pattern.findall(path.read_text())
    }
    assert len(found) > 10, "the pattern no longer finds the port settings"
    assert [(path, port) for path, port in sorted(found) if port >= 32768] == []
