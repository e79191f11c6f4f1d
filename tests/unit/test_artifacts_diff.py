"""Tests of tools/artifacts.py: the diff (hypothesis), each view, the CLI, and a real server.

Run: .venv/bin/pytest tests/unit/test_artifacts_diff.py -m "not integration"   (about 10 s)
     .venv/bin/pytest tests/unit/test_artifacts_diff.py -m integration         (real MLflow)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import artifacts as A  # tools/ is on sys.path (tests/conftest.py)
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def kinds(findings) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(f.path, f.kind, tuple(f.views)) for f in findings}


# =========================================================================== diff properties

segment = st.text(alphabet="abcxyz0-_.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
paths = st.lists(segment, min_size=1, max_size=4).map("/".join)
shas = st.binary(min_size=1, max_size=8).map(sha)
views = st.dictionaries(paths, st.tuples(st.integers(0, 10**9), shas), max_size=30)
CHANGES = ("remove", "add", "truncate", "alter", "rename")


@st.composite
def one_change(draw):
    """(view A, view B = A with ONE change, expected {(path, kind, views)})."""
    base = draw(views)
    change = draw(st.sampled_from(CHANGES if base else ("add",)))
    other = dict(base)
    if change == "add":
        new = draw(paths.filter(lambda p: p not in base))
        other[new] = draw(st.tuples(st.integers(0, 10**9), shas))
        return base, other, {(new, "extra", ("b",))}
    victim = draw(st.sampled_from(sorted(base)))
    size, digest = base[victim]
    if change == "remove":
        del other[victim]
        return base, other, {(victim, "missing", ("b",))}
    if change == "truncate":
        other[victim] = (draw(st.integers(0, 10**9).filter(lambda s: s != size)), digest)
        return base, other, {(victim, "size", ("a", "b"))}
    if change == "alter":
        other[victim] = (size, draw(shas.filter(lambda h: h != digest)))
        return base, other, {(victim, "checksum", ("a", "b"))}
    new = draw(paths.filter(lambda p: p not in base))
    other[new] = other.pop(victim)
    return base, other, {(victim, "missing", ("b",)), (new, "extra", ("b",))}


@settings(max_examples=300, deadline=None)
@given(one_change())
def test_one_change_is_named_exactly(case):
    a, b, expected = case
    findings = A.diff([A.Listing.from_entries("a", a), A.Listing.from_entries("b", b)])
    assert kinds(findings) == expected
    report = A.build_report(
        [A.Listing.from_entries("a", a), A.Listing.from_entries("b", b)], {}, [], "all"
    )
    assert A.decide_exit(report) == 1


@settings(max_examples=200, deadline=None)
@given(one_change())
def test_third_view_agreeing_with_the_reference_changes_nothing(case):
    """A second copy of the reference A: the changed view B is still the only one named."""
    a, b, expected = case
    listings = [A.Listing.from_entries(n, d) for n, d in (("a", a), ("b", b), ("c", a))]
    got = kinds(A.diff(listings))
    for path, kind, _ in expected:
        if kind in ("missing", "extra"):
            assert (path, kind, ("b",)) in got
        else:  # value findings name every view holding a value
            assert (path, kind, ("a", "b", "c")) in got
    assert len(got) == len(expected)


def test_reference_is_the_first_covering_view_not_the_majority():
    """A file the manifest lists but nobody has is missing from all the others, and a file
    only the manifest lacks is extra in all the others."""
    key, unlisted = "1/r/artifacts/x", "1/r/artifacts/y"
    manifest = A.Listing.from_entries("manifest", {key: (1, None)})
    rest = A.Listing.from_entries("rest", {unlisted: (1, None)})
    folder = A.Listing.from_entries("folder", {unlisted: (1, None)})
    assert kinds(A.diff([manifest, rest, folder])) == {
        (key, "missing", ("rest", "folder")),
        (unlisted, "extra", ("rest", "folder")),
    }
    # the manifest does not cover run s: there rest is the reference
    manifest.covers = A.prefix_matcher(["1/r/artifacts/"])
    rest.sizes, folder.sizes = {"1/s/artifacts/z": 1}, {"1/s/artifacts/q": 1}
    assert kinds(A.diff([manifest, rest, folder])) == {
        (key, "missing", ("rest", "folder")),
        ("1/s/artifacts/z", "missing", ("folder",)),
        ("1/s/artifacts/q", "extra", ("folder",)),
    }


@settings(max_examples=200, deadline=None)
@given(views)
def test_identical_views_agree_and_exit_0(entries):
    listings = [A.Listing.from_entries(n, entries) for n in ("manifest", "rest", "folder")]
    report = A.build_report(listings, {}, [], "all")
    assert report.findings == []
    assert A.decide_exit(report) == 0
    assert report.files == len(entries)
    assert report.bytes == sum(s for s, _ in entries.values())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_change())
def test_unknown_hash_or_size_is_never_a_difference(case):
    """A view that does not know sizes/hashes (None) only takes part in presence checks."""
    a, b, expected = case
    blind = {k: (None, None) for k in b}
    got = kinds(A.diff([A.Listing.from_entries("a", a), A.Listing.from_entries("b", blind)]))
    assert got == {e for e in expected if e[1] in ("missing", "extra")}


@settings(max_examples=100, deadline=None)
@given(views, st.data())
def test_keys_outside_a_views_coverage_are_not_compared_with_it(entries, data):
    """A view covering only some prefixes is never said to miss keys outside them."""
    covered_prefix = "1/run/artifacts/"
    inside = {covered_prefix + k: v for k, v in entries.items()}
    outside = {"1/other/artifacts/" + k: v for k, v in entries.items()}
    folder = A.Listing.from_entries("folder", {**inside, **outside})
    manifest = A.Listing.from_entries("manifest", inside, covers=A.prefix_matcher([covered_prefix]))
    assert A.diff([manifest, folder]) == []
    if inside:
        victim = data.draw(st.sampled_from(sorted(inside)))
        del manifest.sizes[victim]
        manifest.shas.pop(victim, None)
        # the manifest is the reference: a file it does not list is extra on disk
        assert kinds(A.diff([manifest, folder])) == {(victim, "extra", ("folder",))}


def test_unreadable_is_reported_even_when_sizes_agree():
    a = A.Listing.from_entries("rest", {"1/r/artifacts/x": (3, None)})
    b = A.Listing.from_entries(
        "folder", {"1/r/artifacts/x": (3, None)}, problems={"1/r/artifacts/x": "permission denied"}
    )
    [f] = A.diff([a, b])
    assert (f.kind, f.views) == ("unreadable", ["folder"])
    assert "permission denied" in f.detail


def test_size_difference_wins_over_checksum_and_names_values():
    a = A.Listing.from_entries("manifest", {"k": (3, sha(b"abc"))})
    b = A.Listing.from_entries("folder", {"k": (2, sha(b"ab"))})
    [f] = A.diff([a, b])
    assert f.kind == "size"
    assert f.values == {"manifest": 3, "folder": 2}


def test_prefix_matcher_is_segment_aligned():
    covers = A.prefix_matcher(["1/abc/artifacts/"])
    assert covers("1/abc/artifacts/x.csv")
    assert covers("1/abc/artifacts/deep/er/x")
    assert not covers("1/abcd/artifacts/x.csv")
    assert not covers("1/abc/artifactsX/x")
    assert not covers("1/abc/artifacts")  # the folder key itself is not a file under it


def test_uri_to_prefix():
    roots = ["/srv/project/work/mlflow/artifacts"]
    run = "e57432b293a9401fb9eeb300e6bb897c"
    plain = f"/srv/project/work/mlflow/artifacts/1/{run}/artifacts"
    assert A.uri_to_prefix(plain, roots) == f"1/{run}/artifacts/"
    assert A.uri_to_prefix("file://" + plain, roots) == f"1/{run}/artifacts/"
    assert A.uri_to_prefix(f"mlflow-artifacts:/1/{run}/artifacts", []) == f"1/{run}/artifacts/"
    assert A.uri_to_prefix(f"mlflow-artifacts://h:5000/1/{run}/artifacts", []) == (
        f"1/{run}/artifacts/"
    )
    assert A.uri_to_prefix("/elsewhere/1/x/artifacts", roots) is None
    assert A.uri_to_prefix("s3://bucket/1/x/artifacts", roots) is None
    assert A.location_parent("/srv/a/1") == "/srv/a"
    assert A.location_parent("mlflow-artifacts:/1") is None


def test_verdict_lines():
    ok = A.build_report(
        [A.Listing.from_entries(n, {"1/r/artifacts/a": (1500, None)}) for n in ("rest", "folder")],
        {},
        [],
        "all",
    )
    assert A.verdict(ok) == "artifacts: all 2 views agree on 1 file (1.5 kB) across 1 run"
    bad = A.build_report(
        [
            A.Listing.from_entries(
                "rest", {"1/r/artifacts/a": (1, None), "1/s/artifacts/b": (1, None)}
            ),
            A.Listing.from_entries("folder", {}),
        ],
        {},
        [],
        "all",
    )
    assert A.verdict(bad) == "artifacts: 2 differences across 2 runs (see above)"
    down = A.build_report([A.Listing.from_entries("folder", {})], {"rest": "refused"}, [], "all")
    assert A.decide_exit(down) == 2
    assert "view rest cannot be read: refused" in A.verdict(down)


# =========================================================================== folder view


def make_tree(root: Path) -> None:
    (root / "1/r1/artifacts/metrics").mkdir(parents=True)
    (root / "1/r1/artifacts/metrics/test.csv").write_text("a,b\n1,2\n")
    (root / "1/r1/artifacts/empty.txt").write_bytes(b"")
    (root / "1/r1/artifacts/link.csv").symlink_to("metrics/test.csv")
    (root / "1/r1/artifacts/dangling").symlink_to("nowhere/at/all")
    (root / "1/r1/artifacts/metrics/loop").symlink_to("..")  # back to an ancestor
    (root / "1/r2/artifacts").mkdir(parents=True)
    (root / "1/r2/artifacts/model.bin").write_bytes(b"\0" * 10)


def test_folder_view_tree(tmp_path):
    make_tree(tmp_path)
    lst = A.FolderView(str(tmp_path)).list()
    assert lst.sizes == {
        "1/r1/artifacts/metrics/test.csv": 8,
        "1/r1/artifacts/empty.txt": 0,
        "1/r1/artifacts/link.csv": 8,
        "1/r2/artifacts/model.bin": 10,
    }
    assert lst.shas == {}  # no hashing unless asked
    assert {"path": "1/r1/artifacts/empty.txt", "size": 0, "sha256": None} in list(lst.entries())
    assert lst.problems["1/r1/artifacts/dangling"] == "dangling symlink -> nowhere/at/all"
    assert lst.problems["1/r1/artifacts/metrics/loop/"] == "directory symlink loop"
    assert len(lst.problems) == 2


def test_folder_view_follows_directory_links_once(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real/f").write_bytes(b"x")
    (tmp_path / "alias").symlink_to("real")
    lst = A.FolderView(str(tmp_path)).list()
    assert lst.sizes == {"real/f": 1, "alias/f": 1}
    assert lst.problems == {}


def test_folder_view_checksum_and_empty_file(tmp_path):
    make_tree(tmp_path)
    lst = A.FolderView(str(tmp_path)).list(checksum=True)
    assert lst.shas["1/r1/artifacts/empty.txt"] == sha(b"")
    assert lst.shas["1/r1/artifacts/link.csv"] == sha(b"a,b\n1,2\n")
    assert set(lst.shas) == set(lst.sizes)


def test_folder_view_hashes_in_1mib_chunks_across_threads(tmp_path):
    big = os.urandom(3 * A.CHUNK + 17)
    for i in range(100):  # > 64 files: the threaded path
        (tmp_path / f"f{i}").write_bytes(big if i == 7 else str(i).encode())
    lst = A.FolderView(str(tmp_path)).list(checksum=True)
    assert lst.shas["f7"] == sha(big)
    assert lst.shas["f42"] == sha(b"42")


def test_folder_view_unreadable_via_injected_open(tmp_path):
    make_tree(tmp_path)

    def opener(path, flags, dir_fd=None):  # os.open's signature
        if os.path.basename(path) == "model.bin":
            raise PermissionError(13, "Permission denied", path)
        return os.open(path, flags, dir_fd=dir_fd)

    lst = A.FolderView(str(tmp_path), opener=opener).list(checksum=True)
    assert lst.sizes["1/r2/artifacts/model.bin"] == 10  # still listed, with its size
    assert "1/r2/artifacts/model.bin" not in lst.shas
    assert lst.problems["1/r2/artifacts/model.bin"] == "cannot read: Permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files: see the opener test")
def test_folder_view_unreadable_by_mode_bits(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    f.chmod(0)
    lst = A.FolderView(str(tmp_path)).list()
    assert lst.problems == {"x": "permission denied (not readable)"}


def test_readable_by_follows_posix_classes():
    r = A.readable_by
    assert r(0o000, 1, 1, 0, frozenset())  # root
    assert not r(0o044, 1000, 50, 1000, frozenset({50}))  # owner class decides, not group
    assert r(0o400, 1000, 50, 1000, frozenset())
    assert r(0o040, 1, 50, 1000, frozenset({50}))
    assert not r(0o404, 1, 50, 1000, frozenset({50}))  # group class decides, not others
    assert r(0o004, 1, 50, 1000, frozenset())


def test_folder_view_missing_root_is_unavailable(tmp_path):
    with pytest.raises(A.ViewUnavailable, match="does not exist"):
        A.FolderView(str(tmp_path / "nope")).list()


def test_folder_view_scope_prunes_directories(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "2/r9/artifacts").mkdir(parents=True)
    (tmp_path / "2/r9/artifacts/x").write_bytes(b"1")
    lst = A.FolderView(str(tmp_path)).list(scope=frozenset({"1/r2/artifacts/", "2/"}))
    assert lst.sizes == {"1/r2/artifacts/model.bin": 10, "2/r9/artifacts/x": 1}
    assert lst.problems == {}  # the dangling link of r1 is out of scope


# =========================================================================== manifest view


def manifest_doc(run_id: str, files: dict[str, bytes]) -> bytes:
    return json.dumps(
        {
            "format": 1,
            "experiment": "e",
            "run_id": run_id,
            "run_name": "n",
            "created": "now",
            "files": [{"path": p, "size": len(b), "sha256": sha(b)} for p, b in files.items()],
        }
    ).encode()


def test_parse_manifest_contract():
    data = manifest_doc("r1", {"metrics/x.csv": b"abc", "e.txt": b""})
    entries, errors = A.parse_manifest(data, "1/r1/artifacts/")
    assert errors == []
    assert entries == {
        "1/r1/artifacts/metrics/x.csv": (3, sha(b"abc")),
        "1/r1/artifacts/e.txt": (0, sha(b"")),
    }
    assert A.parse_manifest(b"{", "1/r1/artifacts/")[1][0].startswith("invalid manifest: not JSON")
    assert A.parse_manifest(b'{"format": 2, "files": []}', "p/")[1]
    bad = json.dumps({"format": 1, "run_id": "r1", "files": [{"path": "../x"}]}).encode()
    assert "not a relative file path" in A.parse_manifest(bad, "1/r1/artifacts/")[1][0]
    moved = manifest_doc("other", {})
    assert "sits in run r1" in A.parse_manifest(moved, "1/r1/artifacts/")[1][0]


def test_manifest_keys_only_run_roots():
    keys = [
        "1/r/artifacts/manifest.json",
        "1/r/artifacts/sub/manifest.json",
        "1/models/m-1/artifacts/manifest.json",
        "manifest.json",
    ]
    assert A.manifest_keys(keys) == ["1/r/artifacts/manifest.json"]


def write_run(root: Path, run: str, files: dict[str, bytes], manifest: bool = True) -> None:
    base = root / "1" / run / "artifacts"
    for p, b in files.items():
        (base / p).parent.mkdir(parents=True, exist_ok=True)
        (base / p).write_bytes(b)
    if manifest:
        (base / "manifest.json").write_bytes(manifest_doc(run, files))


def test_manifest_coverage_rules(tmp_path):
    """Runs without manifest and LoggedModels are outside the manifest view's scope."""
    write_run(tmp_path, "r1", {"metrics/x.csv": b"abc", "empty": b""})
    write_run(tmp_path, "r2", {"y": b"no manifest here"}, manifest=False)
    (tmp_path / "1/models/m-1/artifacts").mkdir(parents=True)
    (tmp_path / "1/models/m-1/artifacts/MLmodel").write_bytes(b"flavors: {}\n")
    report = A.run_check(A.Options(no_rest=True, artifact_root=str(tmp_path)))
    assert report.findings == [], report.findings
    assert A.decide_exit(report) == 0
    [manifest] = [v for v in report.views if v["name"] == "manifest"]
    assert manifest["files"] == 3  # two listed files + manifest.json itself
    assert manifest["coverage"] == "1 run with manifest.json"


def test_manifest_hashes_checked_without_checksum_flag(tmp_path):
    write_run(tmp_path, "r1", {"a": b"abc", "b": b"12345", "c": b"zz", "d": b"keep"})
    base = tmp_path / "1/r1/artifacts"
    (base / "a").unlink()
    (base / "b").write_bytes(b"12")
    (base / "c").write_bytes(b"zZ")  # same size, one byte altered
    (base / "unlisted").write_bytes(b"?")
    report = A.run_check(A.Options(no_rest=True, artifact_root=str(tmp_path)))
    assert kinds(report.findings) == {
        ("1/r1/artifacts/a", "missing", ("folder",)),
        ("1/r1/artifacts/b", "size", ("manifest", "folder")),
        ("1/r1/artifacts/c", "checksum", ("manifest", "folder")),
        ("1/r1/artifacts/unlisted", "extra", ("folder",)),
    }
    assert A.decide_exit(report) == 1
    folder = next(v for v in report.views if v["name"] == "folder")
    assert folder["hashed"] == 4  # b, c, d (listed and present) and manifest.json: not unlisted


def test_invalid_manifest_is_unreadable_not_a_crash(tmp_path):
    write_run(tmp_path, "r1", {"a": b"abc"}, manifest=False)
    (tmp_path / "1/r1/artifacts/manifest.json").write_bytes(b"{not json")
    report = A.run_check(A.Options(no_rest=True, artifact_root=str(tmp_path)))
    assert kinds(report.findings) == {("1/r1/artifacts/manifest.json", "unreadable", ("manifest",))}


def test_no_rest_without_a_folder_is_bad_input():
    report = A.run_check(A.Options(no_rest=True))
    assert report.error.startswith("nothing to compare: with --no-rest pass --artifact-root")


def test_empty_store_without_rest_is_exit_2(tmp_path):
    (tmp_path / "1").mkdir()
    report = A.run_check(A.Options(no_rest=True, artifact_root=str(tmp_path)))
    assert A.decide_exit(report) == 2
    assert report.error == f"no files found under {tmp_path}: empty artifact store"


# =========================================================================== container view


def test_parse_container_output():
    out = (
        b"F\t3\tmetrics/x.csv\0F\t0\tempty\0L\tdangling\0F\t5\tname with\ttab\0"
        + sha(b"abc").encode()
        + b"  ./metrics/x.csv\0"
        + sha(b"").encode()
        + b"  ./empty\0"
    )
    err = b"find: './secret': Permission denied\nsha256sum: ./locked: Permission denied\n"
    sizes, shas_, problems, notes = A.parse_container_output(out, err)
    assert sizes == {"metrics/x.csv": 3, "empty": 0, "name with\ttab": 5}
    assert shas_ == {"metrics/x.csv": sha(b"abc"), "empty": sha(b"")}
    assert problems == {
        "dangling": "dangling symlink",
        "secret": "Permission denied",
        "locked": "Permission denied",
    }
    assert notes == []


def test_container_view_runs_one_local_command_and_matches_folder(tmp_path):
    make_tree(tmp_path)
    cv = A.ContainerView("local", root=str(tmp_path), exec_prefix=[])
    assert cv.command(False)[:2] == ["sh", "-c"]
    folder = A.FolderView(str(tmp_path)).list(checksum=True)
    lst = cv.list(checksum=True)
    assert lst.sizes == folder.sizes
    assert lst.shas == folder.shas
    assert lst.problems["1/r1/artifacts/dangling"] == "dangling symlink"
    assert lst.name == "container:local"


def test_container_view_scope_and_errors(tmp_path):
    make_tree(tmp_path)
    lst = A.ContainerView("c", str(tmp_path), exec_prefix=[]).list(frozenset({"1/r2/"}))
    assert lst.sizes == {"1/r2/artifacts/model.bin": 10}
    with pytest.raises(A.ViewUnavailable, match="not found in the container"):
        A.ContainerView("c", str(tmp_path / "nope"), exec_prefix=[]).list()
    with pytest.raises(A.ViewUnavailable, match="not installed"):
        A.ContainerView("c", exec_prefix=["/nonexistent/docker", "exec", "c"]).list()


def test_run_check_compares_folder_and_container(tmp_path):
    write_run(tmp_path, "r1", {"a": b"abc", "e": b""}, manifest=False)
    opts = A.Options(
        no_rest=True,
        artifact_root=str(tmp_path),
        exec_prefix=[],
        containers=(f"box:{tmp_path}",),
        checksum=True,
    )
    report = A.run_check(opts)
    assert [v["name"] for v in report.views] == ["folder", "container:box"]
    assert A.decide_exit(report) == 0
    opts.containers = (f"box:{tmp_path}/missing",)
    report = A.run_check(opts)
    assert A.decide_exit(report) == 2
    assert "not found in the container" in report.unavailable["container:box"]


# =========================================================================== REST view (stub)

RUN_A = "e57432b293a9401fb9eeb300e6bb897c"  # the fixture's run (plain path URI)
RUN_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"  # no artifacts
RUN_C = "cccccccccccccccccccccccccccccccc"  # served: mlflow-artifacts:/2/...
SRV = "/srv/project/work/mlflow/artifacts"


class Stub:
    """A fake MLflow: the fixtures plus a served experiment, pagination on every search."""

    def __init__(self):
        exps = json.loads((FIXTURES / "mlflow-experiments-search.json").read_text())["experiments"]
        exps.append(
            {
                "experiment_id": "2",
                "name": "served",
                "artifact_location": "mlflow-artifacts:/2",
                "lifecycle_stage": "active",
            }
        )
        self.experiments = exps
        run_a = json.loads((FIXTURES / "mlflow-runs-get.json").read_text())["run"]["info"]
        self.runs = [
            run_a,
            {
                "run_id": RUN_B,
                "experiment_id": "0",
                "start_time": 5,
                "artifact_uri": f"{SRV}/0/{RUN_B}/artifacts",
            },
            {
                "run_id": RUN_C,
                "experiment_id": "2",
                "start_time": 9e12,
                "artifact_uri": f"mlflow-artifacts:/2/{RUN_C}/artifacts",
            },
        ]
        self.models = [
            {
                "info": {
                    "model_id": "m-1",
                    "experiment_id": "1",
                    "source_run_id": RUN_A,
                    "artifact_uri": f"{SRV}/1/models/m-1/artifacts",
                }
            }
        ]
        self.models_api = True
        self.broken: set[str] = set()  # listing paths answered with Flask's HTML 500 page
        # key -> content; the fixture root listing says timings.json has 187 bytes
        self.files = {
            f"1/{RUN_A}/artifacts/timings.json": b"t" * 187,
            f"1/{RUN_A}/artifacts/reports/summary.json": b'{"auc": 0.99}',
            f"1/{RUN_A}/artifacts/reports/empty.txt": b"",
            f"1/{RUN_A}/artifacts/spark-model/MLmodel": b"flavors: {}\n",
            f"2/{RUN_C}/artifacts/a.txt": b"abc",
            f"2/{RUN_C}/artifacts/sub/empty": b"",
            "1/models/m-1/artifacts/MLmodel": b"model",
        }
        self.requests: list[str] = []

    def prefix(self, run_or_model: str) -> str:
        for r in self.runs:
            if r["run_id"] == run_or_model:
                uri = r["artifact_uri"]
                return uri.split(":/", 1)[1] if ":/" in uri else uri[len(SRV) + 1 :]
        return f"1/models/{run_or_model}/artifacts"

    def listing(self, owner: str, path: str) -> dict:
        if owner == RUN_A and not path:  # the recorded answer of a real server
            doc = json.loads((FIXTURES / "mlflow-artifacts-list-root.json").read_text())
            assert {f["path"] for f in doc["files"]} == {"reports", "spark-model", "timings.json"}
            return doc
        base = self.prefix(owner) + "/" + (path + "/" if path else "")
        entries = {}
        for key, data in self.files.items():
            if key.startswith(base):
                head, _, tail = key[len(base) :].partition("/")
                rel = (path + "/" if path else "") + head
                if tail:
                    entries[rel] = {"path": rel, "is_dir": True}
                else:
                    entries[rel] = {
                        "path": rel,
                        "is_dir": False,
                        **({"file_size": len(data)} if data else {}),
                    }  # absent when empty
        return {"root_uri": "x", "files": list(entries.values())}

    def page(self, items, token, size=1):
        start = int(token or 0)
        doc = {"items": items[start : start + size]}
        if start + size < len(items):
            doc["next_page_token"] = str(start + size)
        return doc

    def handle(self, method, path, q, body):
        self.requests.append(f"{method} {path}?{'&'.join(f'{k}={v}' for k, v in q.items())}")
        if path == "/api/2.0/mlflow/experiments/search":
            d = self.page(self.experiments, body.get("page_token"), 2)
            return 200, {"experiments": d.pop("items"), **d}
        if path == "/api/2.0/mlflow/runs/search":
            runs = [r for r in self.runs if r["experiment_id"] in body["experiment_ids"]]
            runs.sort(key=lambda r: -r["start_time"])
            runs = runs[: body.get("max_results", 1000)]
            d = self.page([{"info": r} for r in runs], body.get("page_token"), 2)
            return 200, {"runs": d.pop("items"), **d}
        if path == "/api/2.0/mlflow/runs/get":
            for r in self.runs:
                if r["run_id"] == q["run_id"]:
                    return 200, {"run": {"info": r}}
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run not found"}
        if path == "/api/2.0/mlflow/artifacts/list":
            if q.get("path", "") in self.broken:
                return 500, b"<!doctype html><title>500 Internal Server Error</title>"
            return 200, self.listing(q["run_id"], q.get("path", ""))
        if path == "/api/2.0/mlflow/logged-models/search":
            if not self.models_api:
                return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "no such endpoint"}
            ms = [m for m in self.models if m["info"]["experiment_id"] in body["experiment_ids"]]
            return 200, {"models": ms}
        if path.startswith("/api/2.0/mlflow/logged-models/"):
            mid = path.split("/")[5]
            return 200, self.listing(mid, q.get("artifact_directory_path", ""))
        if path == "/get-artifact":
            return 200, self.files[self.prefix(q["run_uuid"]) + "/" + q["path"]]
        if path.startswith("/api/2.0/mlflow-artifacts/artifacts/"):
            return 200, self.files[unquote(path[len("/api/2.0/mlflow-artifacts/artifacts/") :])]
        if path.startswith("/ajax-api/2.0/mlflow/logged-models/"):
            mid = path.split("/")[5]
            return 200, self.files[self.prefix(mid) + "/" + q["artifact_file_path"]]
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": path}


@pytest.fixture
def stub():
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method):
            u = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else {}
            code, payload = state.handle(method, u.path, q, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            self._serve("GET")

        def do_POST(self):  # noqa: N802
            self._serve("POST")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def test_rest_view_lists_runs_models_and_served_runs(stub):
    rest = A.RestView(stub.url)
    scope = rest.resolve()
    assert {t.id for t in scope.targets} == {RUN_A, RUN_B, RUN_C, "m-1"}
    lst = rest.list(scope)
    assert lst.sizes == {k: len(v) for k, v in stub.files.items()}
    assert lst.sizes[f"1/{RUN_A}/artifacts/reports/empty.txt"] == 0  # no file_size in the answer
    assert lst.covers is None and lst.problems == {}
    # every search was paginated (page size 2 in the stub) and followed to the end
    assert sum("experiments/search" in r for r in stub.requests) == 2
    assert sum("runs/search" in r for r in stub.requests) == 2


def test_rest_view_checksum_uses_the_right_download_endpoints(stub):
    rest = A.RestView(stub.url)
    lst = rest.list(rest.resolve(), checksum=True)
    assert lst.shas == {k: sha(v) for k, v in stub.files.items()}
    got = [
        r for r in stub.requests if "artifact" in r and "list" not in r and "directories" not in r
    ]
    assert f"GET /api/2.0/mlflow-artifacts/artifacts/2/{RUN_C}/artifacts/a.txt?" in got
    assert f"GET /get-artifact?path=timings.json&run_uuid={RUN_A}" in got
    assert (
        "GET /ajax-api/2.0/mlflow/logged-models/m-1/artifacts/files?"
        "artifact_file_path=MLmodel" in got
    )


def test_rest_scope_resolution(stub):
    rest = A.RestView(stub.url)
    last = rest.resolve(last=1)
    assert [t.id for t in last.targets] == [RUN_C]  # latest start_time
    assert last.prefixes == frozenset({f"2/{RUN_C}/artifacts/"})
    one = A.RestView(stub.url).resolve(run_ids=(RUN_A,))
    assert {t.id for t in one.targets} == {RUN_A, "m-1"}  # its LoggedModel comes along
    exp = A.RestView(stub.url).resolve(experiments=("served",))
    assert exp.prefixes == frozenset({"2/"})
    with pytest.raises(A.BadInput, match="unknown run id 'nope'"):
        A.RestView(stub.url).resolve(run_ids=("nope",))
    with pytest.raises(A.BadInput, match="unknown experiment 'zzz'"):
        A.RestView(stub.url).resolve(experiments=("zzz",))


def stub_folder(stub, root: Path) -> None:
    for key, data in stub.files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)


def test_run_check_against_stub_and_folder(stub, tmp_path):
    stub_folder(stub, tmp_path)
    opts = A.Options(mlflow_url=stub.url, artifact_root=str(tmp_path))
    report = A.run_check(opts)
    assert A.decide_exit(report) == 0, report.findings
    assert (report.runs, report.models, report.files) == (3, 1, 7)
    (tmp_path / f"1/{RUN_A}/artifacts/reports/summary.json").unlink()
    (tmp_path / "1/orphan/artifacts").mkdir(parents=True)
    (tmp_path / "1/orphan/artifacts/x").write_bytes(b"1")
    report = A.run_check(opts)
    assert kinds(report.findings) == {
        (f"1/{RUN_A}/artifacts/reports/summary.json", "missing", ("folder",)),
        ("1/orphan/artifacts/x", "extra", ("folder",)),
    }
    # scope: only the served run -> the changes in run A and the orphan are out of sight
    report = A.run_check(
        A.Options(mlflow_url=stub.url, artifact_root=str(tmp_path), run_ids=(RUN_C,))
    )
    assert A.decide_exit(report) == 0
    assert report.files == 2


def test_a_failing_directory_listing_is_unreadable_not_fatal(stub, tmp_path):
    """MLflow answers 500 for a folder holding a dangling symlink: name that folder."""
    stub.broken = {"reports"}
    stub_folder(stub, tmp_path)
    report = A.run_check(A.Options(mlflow_url=stub.url, artifact_root=str(tmp_path)))
    assert kinds(report.findings) == {
        (f"1/{RUN_A}/artifacts/reports/", "unreadable", ("rest",)),
        # rest is the reference here (no manifest): what only the folder shows is "extra"
        (f"1/{RUN_A}/artifacts/reports/empty.txt", "extra", ("folder",)),
        (f"1/{RUN_A}/artifacts/reports/summary.json", "extra", ("folder",)),
    }
    [f] = [f for f in report.findings if f.kind == "unreadable"]
    assert f.detail == "rest: listing failed: HTTP 500 Internal Server Error"


def test_missing_logged_models_api_is_documented_gap(stub, tmp_path):
    stub.models_api = False
    stub_folder(stub, tmp_path)
    report = A.run_check(A.Options(mlflow_url=stub.url, artifact_root=str(tmp_path)))
    assert report.findings == []  # model files are not "missing from rest"
    assert (
        "REST view does not list LoggedModels: 1 folders under models/ checked by folder view only"
    ) in report.notes


def test_server_down_is_exit_2_with_reason(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    write_run(tmp_path, "r1", {"a": b"x"})
    report = A.run_check(
        A.Options(mlflow_url=f"http://127.0.0.1:{port}", artifact_root=str(tmp_path))
    )
    assert A.decide_exit(report) == 2
    assert "unreachable" in report.unavailable["rest"]
    assert [v["name"] for v in report.views if v["status"] == "ok"] == ["manifest", "folder"]
    scoped = A.run_check(
        A.Options(mlflow_url=f"http://127.0.0.1:{port}", last=2, artifact_root=str(tmp_path))
    )
    assert scoped.error.startswith("--experiment/--run-id/--last need the MLflow REST API")


# =========================================================================== CLI


def test_cli_json_is_stable_and_exit_codes(stub, tmp_path):
    stub_folder(stub, tmp_path)
    runner = CliRunner()
    args = ["--mlflow-url", stub.url, "--artifact-root", str(tmp_path), "--json"]
    res = runner.invoke(A.artifacts, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert set(doc) == {
        "format",
        "exit_code",
        "verdict",
        "error",
        "scope",
        "views",
        "counts",
        "differences",
        "notes",
    }
    assert doc["counts"]["differences"] == 0
    (tmp_path / f"2/{RUN_C}/artifacts/a.txt").write_bytes(b"abcd")
    res = runner.invoke(A.artifacts, args)
    assert res.exit_code == 1
    doc = json.loads(res.output)
    assert doc["differences"] == [
        {
            "path": f"2/{RUN_C}/artifacts/a.txt",
            "run": f"run/{RUN_C}",
            "findings": [
                {
                    "kind": "size",
                    "views": ["rest", "folder"],
                    "detail": "size differs: rest=3 folder=4",
                    "values": {"rest": 3, "folder": 4},
                }
            ],
        }
    ]
    res = runner.invoke(A.artifacts, args[:-1])
    assert res.exit_code == 1
    assert res.output.splitlines()[-1] == "artifacts: 1 difference across 1 run (see above)"
    assert (
        f"  2/{RUN_C}/artifacts/a.txt\n      size       size differs: rest=3 folder=4" in res.output
    )


def test_cli_bad_input_is_one_line_exit_2(stub):
    res = CliRunner().invoke(A.artifacts, ["--mlflow-url", stub.url, "--run-id", "nope"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"error: unknown run id 'nope': MLflow at {stub.url} has no such run (check the id "
        "in the MLflow UI)"
    ]


def test_cli_empty_store_is_exit_2(stub):
    stub.runs, stub.models = [], []
    res = CliRunner().invoke(A.artifacts, ["--mlflow-url", stub.url])
    assert res.exit_code == 2
    assert "no runs found in scope (all runs)" in res.output


def test_tool_does_not_import_mlflow():
    code = "import sys; import artifacts; print('mlflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "tools", capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# =========================================================================== real MLflow server

MLFLOW = ROOT / ".venv" / "bin" / "mlflow"


def free_port() -> int:
    for port in range(5640, 5700):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port in 5640-5699")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


class Server:
    def __init__(self, tmp: Path, served: bool):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = tmp / ("dest" if served else "artifacts")
        self.root.mkdir()
        cmd = [
            str(MLFLOW),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp}/mlflow.db",
        ]
        if served:
            cmd += [
                "--serve-artifacts",
                "--artifacts-destination",
                str(self.root),
                "--default-artifact-root",
                "mlflow-artifacts:/",
            ]
        else:
            cmd += ["--default-artifact-root", str(self.root)]
        with open(tmp / "server.log", "wb") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )  # own session/group: the uvicorn child is stopped with it
        wait_for(lambda: healthy(self.url) or self.proc.poll() is not None, 90, "mlflow /health")
        assert self.proc.poll() is None, (tmp / "server.log").read_text()[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with socket.socket() as s:  # the whole group is gone: the port is free again
            wait_for(lambda: s.connect_ex(("127.0.0.1", self.port)) != 0, 20, "port released")


def log_fixture_run(url: str, tmp: Path) -> tuple[str, dict[str, bytes]]:
    """A run with nested files, an empty file and a contract manifest, plus a LoggedModel."""
    os.environ["GIT_PYTHON_REFRESH"] = "quiet"
    import mlflow

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("artifacts-check")
    files = {
        "metrics/test_metrics.csv": b"metric,value\nauc,0.99\n",
        "metrics/nested/deeper/empty.txt": b"",
        "reports/summary.json": b'{"rows": 569}',
        "reports/timings.json": b'{"fit": 12.5}',
    }
    src = tmp / "src"
    for p, b in files.items():
        (src / p).parent.mkdir(parents=True, exist_ok=True)
        (src / p).write_bytes(b)
    with mlflow.start_run(run_name="artifacts-it") as run:
        (src / "manifest.json").write_bytes(manifest_doc(run.info.run_id, files))
        mlflow.log_artifacts(str(src))
        model = mlflow.initialize_logged_model(name="m", source_run_id=run.info.run_id)
        mdir = tmp / "model"
        (mdir / "data").mkdir(parents=True)
        (mdir / "MLmodel").write_bytes(b"flavors: {}\n")
        (mdir / "data" / "w.bin").write_bytes(b"\1" * 64)
        mlflow.MlflowClient().log_model_artifacts(model.model_id, str(mdir))
    return run.info.run_id, files


def check(url: str, root: Path, *extra: str) -> tuple[int, dict]:
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/artifacts.py"),
            "--mlflow-url",
            url,
            "--artifact-root",
            str(root),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return res.returncode, json.loads(res.stdout)


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.parametrize("served", [False, True], ids=["plain-path", "served"])
def test_real_server(tmp_path, served):
    server = Server(tmp_path, served)
    try:
        run_id, files = log_fixture_run(server.url, tmp_path)
        code, doc = check(server.url, server.root)
        assert code == 0, doc
        assert doc["counts"]["runs"] == 1 and doc["counts"]["models"] == 1
        assert [v["name"] for v in doc["views"]] == ["manifest", "rest", "folder"]
        assert doc["counts"]["files"] == 7  # 4 + manifest.json + 2 model files
        code, doc = check(server.url, server.root, "--checksum")
        assert code == 0, doc

        [base] = server.root.glob(f"*/{run_id}/artifacts")
        saved = {p: (base / p).read_bytes() for p in files}
        (base / "reports/summary.json").unlink()
        (base / "reports/timings.json").write_bytes(b'{"fit"')
        (base / "metrics/test_metrics.csv").write_bytes(
            files["metrics/test_metrics.csv"][:-2] + b"8\n"
        )
        code, doc = check(server.url, server.root)
        assert code == 1
        got = {
            (d["path"].split("/artifacts/", 1)[1], f["kind"], tuple(f["views"]))
            for d in doc["differences"]
            for f in d["findings"]
        }
        assert got == {
            ("reports/summary.json", "missing", ("rest", "folder")),
            ("reports/timings.json", "size", ("manifest", "rest", "folder")),
            ("metrics/test_metrics.csv", "checksum", ("manifest", "folder")),
        }
        for p, b in saved.items():
            (base / p).write_bytes(b)
        code, doc = check(server.url, server.root)
        assert code == 0, doc
        code, doc = check(server.url, server.root, "--run-id", run_id)
        assert code == 0 and doc["scope"] == f"run {run_id}"
    finally:
        server.stop()
    code, doc = check(server.url, server.root)
    assert code == 2
    assert doc["verdict"].startswith(
        f"artifacts: view rest cannot be read: MLflow at {server.url} unreachable"
    )
