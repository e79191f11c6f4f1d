"""Rules of the repository that a careless change breaks: pins in one place, runnable scripts,
a README whose first commands are the newcomer's two."""

from __future__ import annotations

import re
from pathlib import Path

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
