"""tools/lockpins.py: markers read for the Python the lock is for, and the merge into one pin
per package and Python. Reports are trimmed pip --report dicts; no network."""

from __future__ import annotations

from collections import Counter

import lockpins as lp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def report(*packages: tuple[str, str, list[str]]) -> dict:
    return {
        "install": [
            {"metadata": {"name": name, "version": version, "requires_dist": deps}}
            for name, version, deps in packages
        ]
    }


def roots(*lines: str) -> list[Requirement]:
    return [Requirement(line) for line in lines]


# pip resolved this on Python 3.11 for --python-version X: its markers were read for 3.11.
PYTEST_ON_311 = report(
    (
        "pytest",
        "9.2.0",
        [
            "pluggy>=1.5",
            'exceptiongroup>=1; python_version < "3.11"',
            'tomli>=1; python_version < "3.11"',
            'colorama>=0.4; sys_platform == "win32"',
        ],
    ),
    ("pluggy", "1.7.0", []),
    ("jaraco.context", "6.1.2", ['backports.tarfile; python_version < "3.12"']),
    ("backports.tarfile", "1.2.0", []),
)


def test_needed_asks_for_what_the_older_python_needs_and_pip_skipped():
    pins, missing = lp.needed(PYTEST_ON_311, roots("pytest", "jaraco.context"), "3.10")
    assert sorted(missing) == ["exceptiongroup", "tomli"]
    assert str(missing["tomli"]) == "tomli>=1"  # the dependent's specifier, no marker
    assert "colorama" not in missing  # other markers are this machine's (Linux)
    assert set(pins) == {"pytest", "pluggy", "jaraco-context", "backports-tarfile"}


def test_needed_asks_again_for_a_version_only_the_older_python_refuses():
    resolved = report(
        ("app", "1.0", ['foo<2; python_version < "3.11"', "foo>=1"]),
        ("foo", "2.1", []),
    )
    assert lp.needed(resolved, roots("app"), "3.11")[1] == {}
    pins, missing = lp.needed(resolved, roots("app"), "3.10")
    assert str(missing["foo"]) == "foo<2"  # pip meets foo>=1 itself
    assert pins["foo"] == ("foo", "2.1")


def test_needed_drops_what_only_the_python_running_pip_needs():
    pins, missing = lp.needed(PYTEST_ON_311, roots("pytest", "jaraco.context"), "3.12")
    assert missing == {}
    assert "backports-tarfile" not in pins
    assert pins["pytest"] == ("pytest", "9.2.0")


def test_needed_follows_extras_only_where_asked_and_merges_missing_requirements():
    resolved = report(
        ("app", "1.0", ["uvicorn[standard]>=0.30", 'rich; extra == "cli"']),
        ("uvicorn", "0.55.0", ['websockets>=10; extra == "standard"', "h11"]),
        ("h11", "0.16.0", []),
    )
    pins, missing = lp.needed(resolved, roots("app"), "3.11")
    assert set(missing) == {"websockets"}  # uvicorn's extra, not app's
    pins, missing = lp.needed(resolved, roots("app[cli]", "websockets<17"), "3.11")
    assert set(missing) == {"rich", "websockets"}
    assert str(missing["websockets"].specifier) == "<17,>=10"


def test_merge_writes_one_line_where_pins_agree_and_marker_lines_where_they_differ():
    lines = lp.merge(
        "3.11",
        {
            "3.10": [("numpy", "2.2.6"), ("tomli", "2.5.0"), ("Authlib", "1.9.10")],
            "3.11": [("numpy", "2.4.6"), ("Authlib", "1.9.10"), ("backports.tarfile", "1.2.0")],
            "3.12": [("numpy", "2.4.6"), ("authlib", "1.9.10")],
        },
    )
    assert lines == [
        "Authlib==1.9.10",
        "backports.tarfile==1.2.0",  # 3.12 does not install it: the constraint is harmless
        'numpy==2.2.6 ; python_version == "3.10"',
        'numpy==2.4.6 ; python_version == "3.11" or python_version == "3.12"',
        "tomli==2.5.0",
    ]


def test_merge_gives_every_python_exactly_one_pin():
    pins = {
        "3.10": [("a", "1"), ("b", "1")],
        "3.11": [("a", "2")],
        "3.12": [("a", "3"), ("b", "2")],
        "3.13": [("c", "1")],
    }
    lines = lp.merge("3.11", pins)
    for python in pins:
        applying = Counter(
            canonicalize_name(req.name)
            for req in lp.parse_lock("\n".join(lines))
            if lp.applies(req, python)
        )
        assert applying == {"a": 1, "b": 1, "c": 1}, python
    # b is not on the base (3.11): it joins the oldest Python's line, 3.10's.
    assert (
        'b==1 ; python_version == "3.10" or python_version == "3.11" or python_version == "3.13"'
        in lines
    )
    assert dict(lp.render("\n".join(lines), "3.12")) == {"a": "3", "b": "2", "c": "1"}


def test_merge_needs_the_base_among_the_pythons():
    with pytest.raises(ValueError, match="3.11"):
        lp.merge("3.11", {"3.10": [("a", "1")]})


def test_render_keeps_what_applies_and_refuses_what_is_not_a_pin():
    text = (
        "# header\n"
        'numpy==2.2.6 ; python_version == "3.10"\n'
        'numpy==2.4.6 ; python_version >= "3.11"\n'
        "six==1.17.0  # a comment\n"
    )
    assert lp.render(text, "3.10") == [("numpy", "2.2.6"), ("six", "1.17.0")]
    assert lp.render(text, "3.12") == [("numpy", "2.4.6"), ("six", "1.17.0")]
    with pytest.raises(ValueError, match="exact pin"):
        lp.render("numpy>=2\n", "3.11")
