"""manifest.json of a local copy (build/verify) and the re-log tool's refusals."""

import hashlib
import json
import os
import re
import socket
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"
sys.path.insert(0, str(JOBS_DIR))

import pipeline_lib as lib  # noqa: E402
import relog  # noqa: E402

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def make_copy(root: Path) -> Path:
    """A small local copy: nested folders, an empty file (like Spark's _SUCCESS markers)."""
    files = {
        "metrics/test_metrics.csv": b"metric,value\ntest_auc,0.9\n",
        "models/spark-model/MLmodel": b"flavors: {}\n",
        "models/spark-model/sparkml/metadata/_SUCCESS": b"",
        "models/spark-model/sparkml/metadata/part-00000": b'{"class":"x"}\n',
        "params.json": b'{"seed": "42"}\n',
        "metrics.json": b'{"test_auc": 0.9}\n',
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_manifest(root: Path, **fields) -> dict:
    manifest = lib.build_manifest(str(root), **fields)
    lib.write_json(str(root / lib.MANIFEST_NAME), manifest)
    return manifest


def test_build_lists_every_file_sorted_with_size_and_sha(tmp_path):
    make_copy(tmp_path)
    (tmp_path / "pending.json").write_text("{}")
    manifest = lib.build_manifest(
        str(tmp_path), experiment="exp", run_id="abc", run_name="r1", created="2026-01-02T03:04:05Z"
    )
    paths = [f["path"] for f in manifest["files"]]
    assert paths == sorted(paths)
    assert paths == [
        "metrics.json",
        "metrics/test_metrics.csv",
        "models/spark-model/MLmodel",
        "models/spark-model/sparkml/metadata/_SUCCESS",
        "models/spark-model/sparkml/metadata/part-00000",
        "params.json",
    ]
    by_path = {f["path"]: f for f in manifest["files"]}
    empty = by_path["models/spark-model/sparkml/metadata/_SUCCESS"]
    assert empty == {"path": empty["path"], "size": 0, "sha256": EMPTY_SHA256}
    csv_entry = by_path["metrics/test_metrics.csv"]
    data = (tmp_path / "metrics/test_metrics.csv").read_bytes()
    assert csv_entry["size"] == len(data)
    assert csv_entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert {k: manifest[k] for k in ("format", "experiment", "run_id", "run_name", "created")} == {
        "format": 1,
        "experiment": "exp",
        "run_id": "abc",
        "run_name": "r1",
        "created": "2026-01-02T03:04:05Z",
    }


def test_build_excludes_root_bookkeeping_but_not_nested_namesakes(tmp_path):
    make_copy(tmp_path)
    write_manifest(tmp_path)
    (tmp_path / "pending.json").write_text("{}")
    (tmp_path / "models" / "manifest.json").write_text("{}")
    paths = [f["path"] for f in lib.build_manifest(str(tmp_path))["files"]]
    assert "manifest.json" not in paths and "pending.json" not in paths
    assert "models/manifest.json" in paths


def test_build_defaults_run_name_to_folder_and_created_to_utc_now(tmp_path):
    root = make_copy(tmp_path / "20260101T000000Z-abcdef")
    manifest = lib.build_manifest(str(root))
    assert manifest["run_name"] == "20260101T000000Z-abcdef"
    assert manifest["run_id"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["created"])


def test_manifest_json_keeps_contract_key_order(tmp_path):
    make_copy(tmp_path)
    write_manifest(tmp_path, experiment="e", run_id="r")
    text = (tmp_path / "manifest.json").read_text()
    keys = list(json.loads(text))
    assert keys == ["format", "experiment", "run_id", "run_name", "created", "files"]
    assert list(json.loads(text)["files"][0]) == ["path", "size", "sha256"]


def test_build_of_empty_folder_has_no_files(tmp_path):
    assert lib.build_manifest(str(tmp_path))["files"] == []
    assert lib.verify_manifest(str(tmp_path), lib.build_manifest(str(tmp_path))) == []


def test_verify_intact_copy_after_json_round_trip(tmp_path):
    make_copy(tmp_path)
    write_manifest(tmp_path)
    (tmp_path / "pending.json").write_text("{}")  # bookkeeping beside the copy is fine
    manifest = lib.read_json(str(tmp_path / "manifest.json"))
    assert lib.verify_manifest(str(tmp_path), manifest) == []


def test_verify_reports_missing_changed_and_unlisted_files(tmp_path):
    make_copy(tmp_path)
    manifest = write_manifest(tmp_path)
    (tmp_path / "params.json").unlink()
    (tmp_path / "metrics.json").write_bytes(b'{"test_auc": 0.1}\n')  # same size, new bytes
    (tmp_path / "metrics/test_metrics.csv").write_bytes(b"x")
    (tmp_path / "models/spark-model/sparkml/metadata/_SUCCESS").write_bytes(b"?")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots/new.png").write_bytes(b"png")
    problems = lib.verify_manifest(str(tmp_path), manifest)
    assert "missing: params.json" in problems
    assert "content differs: metrics.json (sha256 mismatch)" in problems
    assert "size differs: metrics/test_metrics.csv (manifest 26, found 1)" in problems
    assert "size differs: models/spark-model/sparkml/metadata/_SUCCESS (manifest 0, found 1)" in (
        problems
    )
    assert "not in manifest: plots/new.png" in problems
    assert len(problems) == 5


def test_verify_rejects_other_formats_and_unsafe_paths(tmp_path):
    make_copy(tmp_path)
    manifest = lib.build_manifest(str(tmp_path))
    assert lib.verify_manifest(str(tmp_path), {**manifest, "format": 2}) == [
        "manifest format 2 is not 1"
    ]
    assert lib.verify_manifest(str(tmp_path), {"format": 1}) != []
    assert lib.verify_manifest(str(tmp_path), []) != []
    escaping = {**manifest, "files": manifest["files"] + [{"path": "../secret", "size": 1}]}
    assert any(
        p.startswith("bad manifest entry") for p in lib.verify_manifest(str(tmp_path), escaping)
    )


# Names Spark and MLflow actually produce: dots, dashes, leading underscores and dots (.crc files).
_names = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..") and n not in lib.NOT_IN_MANIFEST
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.lists(_names, min_size=1, max_size=3).map(tuple), st.binary(max_size=64)))
def test_verify_accepts_any_tree_it_built_and_notices_one_flipped_byte(tree):
    with tempfile.TemporaryDirectory() as tmp:
        written = {}
        for parts, data in tree.items():
            target = os.path.join(tmp, *parts)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(data)
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                continue  # a name used both as file and folder: not a real tree
            written["/".join(parts)] = target
        manifest = lib.build_manifest(tmp)
        assert [f["path"] for f in manifest["files"]] == sorted(
            p for p, t in written.items() if os.path.isfile(t)
        )
        assert lib.verify_manifest(tmp, manifest) == []
        non_empty = [f for f in manifest["files"] if f["size"] > 0]
        if non_empty:
            entry = non_empty[0]
            path = os.path.join(tmp, *entry["path"].split("/"))
            with open(path, "r+b") as handle:
                first = handle.read(1)
                handle.seek(0)
                handle.write(bytes([first[0] ^ 1]))
            assert lib.verify_manifest(tmp, manifest) == [
                f"content differs: {entry['path']} (sha256 mismatch)"
            ]


# --- relog.py refusals: none of these needs a server ---------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_relog_refuses_a_folder_that_is_not_a_local_copy(tmp_path, capsys):
    assert relog.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no manifest.json" in err and "\n" not in err


def test_relog_refuses_a_changed_copy(tmp_path, capsys):
    make_copy(tmp_path)
    write_manifest(tmp_path, experiment="e", run_id="r")
    (tmp_path / "params.json").unlink()
    (tmp_path / "metrics.json").write_text("{}")
    assert relog.main([str(tmp_path), "--tracking-uri", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "size differs: metrics.json (manifest 18, found 2) (and 1 more)" in err
    assert "refusing" in err and "\n" not in err


def test_relog_with_server_down_changes_nothing(tmp_path, capsys):
    make_copy(tmp_path)
    write_manifest(tmp_path, experiment="e", run_id="r")
    lib.write_json(
        str(tmp_path / "pending.json"), {"run_id": "r", "tracking_uri": "x", "reason": "y"}
    )
    before = tree_digest(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"
    assert relog.main([str(tmp_path), "--tracking-uri", uri]) == 3
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: MLflow tracking server at {uri} is not reachable (connection refused): "
        "start it with `make up` or set MLFLOW_TRACKING_URI"
    )
    assert tree_digest(tmp_path) == before


def test_relog_falls_back_to_the_pending_tracking_uri(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    make_copy(tmp_path)
    write_manifest(tmp_path, experiment="e", run_id="r")
    uri = f"http://127.0.0.1:{free_port()}"
    lib.write_json(
        str(tmp_path / "pending.json"), {"run_id": "r", "tracking_uri": uri, "reason": ""}
    )
    assert relog.main([str(tmp_path)]) == 3
    assert uri in capsys.readouterr().err


@pytest.mark.parametrize(
    ("local", "logged", "expected"),
    [
        ({"a": "1", "b": 2}, {}, {"a": "1", "b": "2"}),
        ({"a": "1", "b": "2"}, {"a": "1"}, {"b": "2"}),
        ({"a": "1"}, {"a": "9"}, {}),  # MLflow refuses changed values: keep the logged one
    ],
)
def test_relog_logs_only_params_the_run_lacks(local, logged, expected):
    assert relog.new_params(local, logged) == expected
