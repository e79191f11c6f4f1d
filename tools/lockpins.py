"""Pins per Python for constraints.txt: render the lock for one Python, read pip's reports, merge.

Used by scripts/lock.sh and the lock tests. constraints.txt holds one pin per package, or, where
a Python needs another release (numpy 2.4 needs Python 3.11), one line per distinct pin with a
`python_version == "X.Y"` marker, so that every Python of LOCK_PYTHONS has exactly one pin.

Why this module reads the reports itself: `pip install --python-version X` checks Requires-Python
and wheel tags against X, but evaluates dependency markers (`tomli; python_version < "3.11"`)
against the interpreter that runs pip (pypa/pip#11010, #13296). `needed` walks the report's
dependency graph with the markers of X, so a lock for X gets what X needs and nothing that only
the interpreter running pip needs. The same holds for the markers of a constraints file, hence
`render`: the constraints of one Python, without markers, for pip to read.

Needs click and packaging only. Layout: pure functions on strings and dicts; thin click commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import click
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# A pin: the package's name as pip freeze writes it, and its exact version.
Pin = tuple[str, str]


def environment(python: str) -> dict[str, str]:
    """Marker environment of CPython `python` (X.Y) on this machine's platform. The full version
    is X.Y.0, as pip's --python-version X.Y takes it for Requires-Python."""
    env = dict(default_environment())
    full = f"{python}.0"
    env.update(python_version=python, python_full_version=full, implementation_version=full)
    return env


def applies(req: Requirement, python: str, extras: Iterable[str] = ()) -> bool:
    """True when `req` counts for `python` (and one of the requesting `extras`, if any)."""
    if req.marker is None:
        return True
    env = environment(python)
    return any(req.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


def parse_lock(text: str) -> list[Requirement]:
    """The requirement lines of a constraints file (comments and blank lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line]


def pin_of(req: Requirement) -> Pin:
    """(name, version) of an exact pin `name==version`; ValueError for anything else."""
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
        raise ValueError(f"{req} is not an exact pin (name==version)")
    return req.name, specs[0].version


def render(text: str, python: str) -> list[Pin]:
    """The pins of a constraints file that apply to `python`, markers evaluated."""
    return [pin_of(req) for req in parse_lock(text) if applies(req, python)]


def needed(
    report: Mapping, roots: Sequence[Requirement], python: str
) -> tuple[dict[str, Pin], dict[str, Requirement]]:
    """Walk pip's --report from `roots` with the markers of `python`.

    Returns (pins, missing): pins of the report's packages that `python` needs, by canonical
    name; and what `python` needs that the report lacks or has at a version that a requirement
    of `python` refuses (pip skipped those requirements: their marker is false for the
    interpreter running pip), merged into one requirement per package, without marker."""
    installs = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]
        for item in report.get("install", [])
    }
    extras: dict[str, set[str]] = {}
    missing: dict[str, Requirement] = {}
    queue = [req for req in roots if applies(req, python)]
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        if name not in installs:
            missing[name] = _merged(missing.get(name), req)
            continue
        if not req.specifier.contains(installs[name]["version"], prereleases=True):
            missing[name] = _merged(missing.get(name), req)  # pip never saw this requirement
        known = extras.get(name)
        wanted = {canonicalize_name(extra) for extra in req.extras}
        if known is not None and wanted <= known:
            continue
        extras[name] = (known or set()) | wanted
        for line in installs[name].get("requires_dist") or []:
            dep = Requirement(line)
            if applies(dep, python, extras[name]):
                queue.append(dep)
    pins = {name: (installs[name]["name"], installs[name]["version"]) for name in sorted(extras)}
    return pins, missing


def _merged(old: Requirement | None, new: Requirement) -> Requirement:
    """One requirement asking for both: extras united, specifiers intersected, no marker."""
    merged = Requirement(str(new))
    merged.marker = None
    if old is not None:
        merged.extras |= old.extras
        merged.specifier = old.specifier & new.specifier
    return merged


def merge(base: str, pins: Mapping[str, Sequence[Pin]]) -> list[str]:
    """constraints.txt lines (no header) from each Python's pins: {python: [(name, version)]}.

    A package with one version everywhere gets one plain line. Otherwise one line per version,
    its marker naming the Pythons of that version; a Python that does not install the package
    joins the line of the `base` Python's version (or of the oldest Python that has it): every
    Python gets exactly one pin, and a constraint on an uninstalled package is harmless. Lines
    are sorted like pip freeze (by name, case-insensitive); names are spelt as `base` has them."""
    pythons = sorted(pins, key=Version)
    if base not in pythons:
        raise ValueError(f"base Python {base} is not among {pythons}")
    versions: dict[str, dict[str, str]] = {}
    spelling: dict[str, str] = {}
    for python in [base, *pythons]:
        for name, version in pins[python]:
            key = canonicalize_name(name)
            spelling.setdefault(key, name)
            versions.setdefault(key, {})[python] = version
    lines = []
    for key in sorted(versions, key=lambda key: spelling[key].lower()):
        by_python = versions[key]
        name = spelling[key]
        if len(set(by_python.values())) == 1:
            lines.append(f"{name}=={next(iter(by_python.values()))}")
            continue
        fallback = by_python.get(base) or by_python[min(by_python, key=Version)]
        groups: dict[str, list[str]] = {}
        for python in pythons:
            groups.setdefault(by_python.get(python, fallback), []).append(python)
        for version, group in groups.items():
            marker = " or ".join(f'python_version == "{python}"' for python in group)
            lines.append(f"{name}=={version} ; {marker}")
    return lines


def _pins_file(path: Path) -> list[Pin]:
    return [pin_of(req) for req in parse_lock(path.read_text())]


def _echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


@click.group(help=__doc__.split("\n\n")[0])
def cli() -> None:
    pass


@cli.command("render")
@click.argument("python")
@click.argument("lock", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def render_command(python: str, lock: Path) -> None:
    """Print the pins of LOCK (a constraints file) that apply to PYTHON, as name==version."""
    _echo_lines(f"{name}=={version}" for name, version in render(lock.read_text(), python))


@cli.command("needed")
@click.argument("python")
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("roots", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--missing",
    "missing_to",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write here what PYTHON needs that REPORT lacks or refuses (a requirement a line).",
)
def needed_command(python: str, report: Path, roots: Path, missing_to: Path) -> None:
    """Print the pins of REPORT (pip --report) that PYTHON needs from ROOTS (requirement lines),
    markers evaluated for PYTHON."""
    pins, missing = needed(json.loads(report.read_text()), parse_lock(roots.read_text()), python)
    missing_to.write_text("".join(f"{req}\n" for req in missing.values()))
    _echo_lines(f"{name}=={version}" for name, version in pins.values())


@cli.command("merge")
@click.option("--base", required=True, help="The Python whose pins lead (the one that froze).")
@click.option(
    "--pins",
    "pin_files",
    multiple=True,
    required=True,
    type=(str, click.Path(exists=True, dir_okay=False, path_type=Path)),
    help="PYTHON FILE: that Python's pins, name==version a line (repeat per Python).",
)
def merge_command(base: str, pin_files: Sequence[tuple[str, Path]]) -> None:
    """Print the lock lines (no header) for every Python given: see merge()."""
    try:
        lines = merge(base, {python: _pins_file(path) for python, path in pin_files})
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    _echo_lines(lines)


if __name__ == "__main__":
    cli()
