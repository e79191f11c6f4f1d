"""`make check-artifacts` on the real local stack after a real submit."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ensure_up, rest, run_make, run_script, stop_component


def check(*args: str):
    result = run_script("check-artifacts.sh", "--json", *args, timeout=120)
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}


def findings_by_path(report: dict) -> dict[str, set[str]]:
    return {d["path"]: {f["kind"] for f in d["findings"]} for d in report["differences"]}


def test_all_views_agree_after_a_submit_then_each_damage_is_named(submitted, mlflow_url):
    run_id = submitted["run_id"]
    code, report = check("--run-id", run_id)
    assert code == 0, report
    assert {v["name"] for v in report["views"]} == {"manifest", "rest", "folder"}
    assert report["counts"]["files"] > 10

    artifact_dir = Path(rest(mlflow_url, "runs/get", run_id=run_id)["run"]["info"]["artifact_uri"])
    assert artifact_dir.is_dir()
    manifest = json.loads((artifact_dir / "manifest.json").read_text())
    by_size = sorted((f for f in manifest["files"] if f["size"] > 2), key=lambda f: f["path"])
    removed, truncated, altered = (artifact_dir / by_size[i]["path"] for i in (0, 1, 2))
    saved = {p: p.read_bytes() for p in (removed, truncated, altered)}
    try:
        removed.unlink()
        truncated.write_bytes(saved[truncated][:1])
        flipped = bytearray(saved[altered])
        flipped[len(flipped) // 2] ^= 0xFF
        altered.write_bytes(bytes(flipped))

        code, report = check("--run-id", run_id)
        assert code == 1, report
        found = findings_by_path(report)
        key = f"{artifact_dir.parent.parent.name}/{run_id}/artifacts/"
        assert found == {
            key + by_size[0]["path"]: {"missing"},
            key + by_size[1]["path"]: {"size"},
            key + by_size[2]["path"]: {"checksum"},
        }
    finally:
        for path, content in saved.items():
            path.write_bytes(content)
    code, report = check("--run-id", run_id)
    assert code == 0, report


def test_a_stopped_mlflow_server_is_exit_2_with_the_reason(submitted):
    stop_component("mlflow-server")
    try:
        assert run_make("check-artifacts", "ARGS=--last 1", timeout=120).returncode != 0
        result = run_script("check-artifacts.sh", "--last", "1", timeout=120)
        assert result.returncode == 2
        message = result.stdout + result.stderr
        assert "unreachable" in message or "not reachable" in message, message
    finally:
        ensure_up()
