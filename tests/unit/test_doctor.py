"""Unit tests of tools/doctor.py and tools/versions.py: the pure checks on inputs built here
(version compare, disk thresholds, `docker port` and `docker inspect` parsing, the shared-folder
probe), SQLite on real files, and the runbook anchors the doctor prints."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import subprocess
from pathlib import Path

import doctor
import healthcheck as hc
import pytest
import versions as vs
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
GB = doctor.GB


def settings(tmp_path: Path, runtime: str = "local", **env: str) -> vs.Settings:
    return vs.load_settings({"WORK_DIR": str(tmp_path / "work"), **env}, runtime)


# --------------------------------------------------------------------------------------------
# The runbook: every anchor the doctor can print exists, and the issue's symptoms are covered
# --------------------------------------------------------------------------------------------


def runbook_anchors() -> set[str]:
    return set(re.findall(r'<a id="([a-z0-9-]+)"></a>', RUNBOOK.read_text()))


def anchors_used_in_doctor() -> set[str]:
    """Every string literal given as the anchor of failed()/warned()/Check() or returned by
    anchor_of(), read from the source: a typo in a rarely taken branch is caught here."""
    tree = ast.parse(Path(doctor.__file__).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            position = {"failed": 2, "warned": 2, "Check": 3}.get(node.func.id)
            if position is not None and len(node.args) > position:
                for sub in ast.walk(node.args[position]):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        found.add(sub.value)
        if isinstance(node, ast.FunctionDef) and node.name in ("anchor_of", "assess_writable"):
            for sub in ast.walk(node):
                value = sub.value if isinstance(sub, ast.Constant) else None
                if isinstance(value, str) and re.fullmatch(r"[a-z]+(-[a-z]+)+", value):
                    found.add(value)
    return found


def test_every_anchor_the_doctor_knows_is_a_section_of_the_runbook():
    missing = set(doctor.ANCHORS) - runbook_anchors()
    assert not missing, f"docs/runbook.md lacks sections {sorted(missing)}"


def test_every_anchor_used_by_a_check_is_declared():
    used = anchors_used_in_doctor()
    assert len(used) > 15  # the walk really found the calls
    assert used <= set(doctor.ANCHORS), sorted(used - set(doctor.ANCHORS))


def test_runbook_links_point_at_existing_sections():
    text = RUNBOOK.read_text()
    links = set(re.findall(r"\]\(#([a-z0-9-]+)\)", text))
    assert links and links <= runbook_anchors(), sorted(links - runbook_anchors())
    # The versions command's own hint points into the runbook too.
    assert "version-mismatch" in runbook_anchors()


def test_runbook_covers_the_symptoms_of_the_issue():
    needed = {
        "artifacts-not-visible",
        "mlflow-missing-in-image",
        "failed-to-exec-artifact-cli",
        "version-mismatch",
        "shared-folder-not-mounted",
        "shared-folder-not-writable",
        "image-build-fails",
        "stale-containers",
        "port-taken",
        "worker-lost",
        "invalid-host-header",
        "host-header-protection",
        "database-locked",
        "disk-full",
        "model-without-data",
        "pip-tls-interception",
        "submit-failed-at-logging",
    }
    assert needed <= runbook_anchors()
    text = RUNBOOK.read_text()
    for needle in ("make relog", "EXTRA_CA_CERTS", "MLFLOW_DFS_TMP", "NO_CACHE=1", "Invalid Host"):
        assert needle in text


def test_runbook_uses_only_make_targets_that_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.M)) | {"doctor", "check-versions"}
    used = set(re.findall(r"`make ([a-z-]+)", RUNBOOK.read_text()))
    assert used <= targets, sorted(used - targets)


def test_a_failure_is_printed_with_its_runbook_section():
    check = doctor.failed("health: spark-worker-2", "connection refused", "worker-lost")
    lines = doctor.format_check(check)
    assert lines[0].split()[:3] == ["FAIL", "health:", "spark-worker-2"]
    assert lines[1].strip() == "-> docs/runbook.md#worker-lost"
    assert doctor.format_check(doctor.passed("x", "fine"))[1:] == []


def test_an_unknown_anchor_is_refused():
    with pytest.raises(ValueError, match="unknown runbook anchor"):
        doctor.failed("x", "y", "no-such-section")


def test_json_report_fails_only_on_failures():
    warn = doctor.warned("disk", "low", "disk-full")
    skip = doctor.skipped("versions", "not running")
    ok = doctor.report_json([warn, skip, doctor.passed("a", "b")], "local")
    assert ok["ok"] is True and ok["failed"] == []
    bad = doctor.report_json([warn, doctor.failed("port 5555", "taken", "port-taken")], "local")
    assert bad["ok"] is False and bad["failed"] == ["port 5555"]
    assert bad["checks"][1]["runbook"] == "docs/runbook.md#port-taken"
    assert "1 FAILED (port 5555)" in doctor.summary_line(
        [warn, doctor.failed("port 5555", "", "port-taken")]
    )


# --------------------------------------------------------------------------------------------
# Versions: compare, parse
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("have", "want", "ok"),
    [
        ("3.11.7", "3.10", True),
        ("3.10.0", "3.10", True),
        ("3.9.18", "3.10", False),
        ("3.100.1", "3.10", True),  # numeric, not string, comparison
        ("17.0.15+6", "17", True),
        ("", "3.10", False),
    ],
)
def test_at_least_compares_numerically(have, want, ok):
    assert doctor.at_least(have, want) is ok


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_292"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("no version here", None),
    ],
)
def test_java_major_version_is_read_from_java_version(output, major):
    assert doctor.parse_java_major(output) == major


def test_old_java_and_old_python_fail_with_the_toolchain_section():
    java = doctor.assess_java('java version "1.8.0_292"', "java", "17")
    assert java.status == doctor.FAIL and java.anchor == "toolchain" and "Java 8" in java.detail
    assert doctor.assess_java('openjdk version "17.0.1"', "java", "17").status == doctor.PASS
    py = doctor.assess_python("3.9.2", "python3", "3.10")
    assert py.status == doctor.FAIL and "3.10 or newer" in py.detail
    assert doctor.assess_python(None, "python3", "3.10", "not found").status == doctor.FAIL


def test_compare_names_each_difference_and_each_missing_or_unreadable_source():
    pinned = {"mlflow": "3.4.0", "spark": "3.5.3"}
    rows = [
        vs.Row("pinned", "versions.env", dict(pinned)),
        vs.Row("mlflow-server", "GET /version", {"mlflow": "3.5.1"}),
        vs.Row("local venv", "python", {"mlflow": "3.4.0", "spark": "3.5.3"}),
        vs.Row(
            "spark-worker-2",
            "docker exec python",
            {"spark": "3.5.3"},
            missing={"mlflow": "No module named 'mlflow'"},
        ),
        vs.Row("spark-master", "UI page", errors={"spark": "connection refused"}),
    ]
    diffs = vs.compare(rows, pinned)
    assert [(d.kind, d.component, d.package) for d in diffs] == [
        ("differs", "mlflow-server", "mlflow"),
        ("missing", "spark-worker-2", "mlflow"),
        ("unreadable", "spark-master", "spark"),
    ]
    assert diffs[0].message() == "MLflow: mlflow-server (GET /version) has 3.5.1, pinned 3.4.0"
    assert "cannot import it" in diffs[1].message()
    assert vs.compare(rows[:1] + rows[2:3], pinned) == []


def test_versions_check_fails_on_differences_and_only_skips_unreachable_sources():
    pinned = {"mlflow": "3.4.0", "spark": "3.5.3"}
    differs = vs.Difference("differs", "mlflow", "mlflow-server", "GET /version", "3.5.1", "3.4.0")
    missing = vs.Difference("missing", "mlflow", "spark-submit", "docker exec", None, "3.4.0", "x")
    unread = vs.Difference("unreadable", "spark", "spark-master", "UI page", None, "3.5.3", "down")
    assert doctor.assess_versions([differs, unread], pinned, 5).anchor == "version-mismatch"
    assert doctor.assess_versions([missing], pinned, 5).anchor == "mlflow-missing-in-image"
    assert doctor.assess_versions([unread], pinned, 5).status == doctor.SKIP
    assert doctor.assess_versions([], pinned, 5).status == doctor.PASS


def test_versions_table_shows_missing_and_unreadable_cells():
    rows = [
        vs.Row("pinned", "versions.env", {"mlflow": "3.4.0", "spark": "3.5.3"}),
        vs.Row("spark-worker-1", "docker exec python", {"spark": "3.5.3"}, missing={"mlflow": "x"}),
        vs.Row("spark-master", "UI page", errors={"spark": "down"}),
    ]
    table = vs.versions_table(rows)
    assert table[2].split() == ["spark-worker-1", "docker", "exec", "python", "missing", "3.5.3"]
    assert table[3].split() == ["spark-master", "UI", "page", "-", "?"]


def test_spark_ui_version_is_read_from_the_page_header():
    html = (
        '<a href="/"><img src="/static/spark-logo.png"/>'
        '<span class="version" style="margin-right: 15px;">3.5.3</span></a>'
    )
    assert vs.parse_spark_ui_version(html) == "3.5.3"
    assert vs.parse_spark_ui_version("<html>no header</html>") is None


def test_probe_answer_is_found_among_warnings():
    out = (
        "WARNING something\n"
        'VERSIONS_JSON {"executable": "/opt/v/bin/python", "python": "3.11.2", '
        '"mlflow": "3.4.0", "pyspark_error": "ModuleNotFoundError: x"}\n'
    )
    row = vs.row_from_probe("spark-submit", "docker exec python", vs.parse_probe(out), "")
    assert row.versions == {"mlflow": "3.4.0"} and "ModuleNotFoundError" in row.missing["spark"]
    assert vs.parse_probe("VERSIONS_JSON {broken") is None
    bad = vs.row_from_probe("x", "y", None, "exit 127: python: not found")
    assert bad.errors["mlflow"] == "exit 127: python: not found"


def test_probe_code_runs_in_a_python_without_mlflow(tmp_path):
    """The probe must answer (not crash) where mlflow is missing: the whole point of it."""
    proc = subprocess.run(
        ["python3", "-I", "-c", vs.PROBE_CODE], capture_output=True, text=True, timeout=60
    )
    data = vs.parse_probe(proc.stdout)
    assert data and data["python"].count(".") == 2 and ("mlflow" in data or "mlflow_error" in data)


# --------------------------------------------------------------------------------------------
# versions.env and the pins stamp
# --------------------------------------------------------------------------------------------


def test_the_real_versions_env_parses_cleanly():
    pairs, problems = vs.parse_env_file((ROOT / "versions.env").read_text())
    assert problems == []
    assert {"MLFLOW_VERSION", "SPARK_VERSION", "MLFLOW_PORT"} <= set(pairs)


def test_versions_env_problems_are_named_with_their_line():
    text = (
        "# c\nMLFLOW_VERSION = 3.4.0\nSPARK_VERSION=3.5\nSPARK_VERSION=3.5.3\n"
        "BIND_HOST\nMLFLOW_PORT=70000\n"
    )
    _, problems = vs.parse_env_file(text)
    joined = "\n".join(problems)
    assert "line 2:" in joined and "without spaces" in joined
    assert "line 4: SPARK_VERSION is set twice" in joined
    assert "line 5: 'BIND_HOST' is not KEY=value" in joined
    assert "MLFLOW_PORT='70000' is not a port" in joined
    assert "MLFLOW_VERSION is missing" in joined


def test_environment_overrides_versions_env_and_says_so(tmp_path):
    s = settings(tmp_path, MLFLOW_VERSION="9.9.9", UNRELATED="x")
    file_pin = s.file_values["MLFLOW_VERSION"]
    assert s.pinned("mlflow") == "9.9.9" and "UNRELATED" not in s.values
    assert s.pin_source("mlflow") == f"environment MLFLOW_VERSION (versions.env: {file_pin})"
    check = doctor.assess_versions_env(s)
    assert check.status == doctor.PASS and "MLFLOW_VERSION=9.9.9" in check.detail


def test_pins_fingerprint_is_the_one_setup_sh_writes(tmp_path):
    """Recompute with the shell pipeline of scripts/setup.sh on the real pin files."""
    sys_version = "3.11.7 (main, Jan  1 2025, 00:00:00) [GCC 12.2.0]"
    shell = subprocess.run(
        [
            "bash",
            "-c",
            "{ grep -E '^(SPARK|MLFLOW)_VERSION=' versions.env; cat requirements.txt "
            'constraints.txt; echo "$1"; } | sha256sum | cut -d" " -f1',
            "sh",
            sys_version,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = doctor.pins_fingerprint(
        (ROOT / "versions.env").read_text(),
        (ROOT / "requirements.txt").read_text(),
        (ROOT / "constraints.txt").read_text(),
        sys_version + "\n",
    )
    assert ours == shell
    assert doctor.assess_venv(".venv", True, shell + "\n", ours).status == doctor.PASS
    stale = doctor.assess_venv(".venv", True, "0" * 64, ours)
    assert stale.status == doctor.FAIL and "make setup" in stale.detail
    assert doctor.assess_venv(".venv", False, None, ours).anchor == "venv"


# --------------------------------------------------------------------------------------------
# Disk, data dir, SQLite
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free_gb", "status"),
    [
        (0.5, doctor.FAIL),
        (1.99, doctor.FAIL),
        (2.0, doctor.WARN),
        (4.9, doctor.WARN),
        (5.0, doctor.PASS),
        (80, doctor.PASS),
    ],
)
def test_disk_thresholds(free_gb, status):
    check = doctor.assess_disk("disk", "work", int(free_gb * GB), 2.0, 5.0)
    assert check.status == status
    if status != doctor.PASS:
        assert check.anchor == "disk-full"


def test_disk_thresholds_come_from_the_environment(tmp_path):
    assert doctor.env_float({"DOCTOR_MIN_FREE_GB": "0.5"}, "DOCTOR_MIN_FREE_GB", 2) == 0.5
    assert doctor.env_float({}, "DOCTOR_MIN_FREE_GB", 2) == 2
    with pytest.raises(vs.BadInput, match="DOCTOR_MIN_FREE_GB='lots'"):
        doctor.env_float({"DOCTOR_MIN_FREE_GB": "lots"}, "DOCTOR_MIN_FREE_GB", 2)


def test_data_dir_not_created_yet_is_writable_when_its_parent_is(tmp_path):
    s = settings(tmp_path)
    check = doctor.check_host_writable(s)
    assert check.status == doctor.PASS and "created at the first" in check.detail
    assert not (tmp_path / "work").exists()  # the check created nothing
    full = doctor.assess_writable("w", "work/mlflow", "[Errno 28] No space left on device", False)
    assert full.anchor == "disk-full"


def make_db(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT)")
    con.executemany("INSERT INTO runs VALUES (?, ?)", [(str(i), f"r{i}") for i in range(200)])
    con.commit()
    con.close()


def test_sqlite_check_passes_on_a_sound_database(tmp_path):
    s = settings(tmp_path)
    s.data_dir.mkdir(parents=True)
    make_db(s.data_dir / "mlflow.db")
    before = (s.data_dir / "mlflow.db").read_bytes()
    assert doctor.check_sqlite(s, 0.2).status == doctor.PASS
    assert (s.data_dir / "mlflow.db").read_bytes() == before  # read-only


def test_a_locked_database_is_a_clear_failure_naming_the_holder(tmp_path):
    s = settings(tmp_path)
    s.data_dir.mkdir(parents=True)
    db = s.data_dir / "mlflow.db"
    make_db(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a writer that keeps its lock
    try:
        check = doctor.check_sqlite(s, 0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert check.status == doctor.FAIL and check.anchor == "database-locked"
    assert "database is locked" in check.detail and "pid " in check.detail


def test_a_damaged_database_points_to_the_corruption_section(tmp_path):
    s = settings(tmp_path)
    s.data_dir.mkdir(parents=True)
    (s.data_dir / "mlflow.db").write_bytes(b"this is not an sqlite file at all" * 100)
    check = doctor.check_sqlite(s, 0.1)
    assert check.status == doctor.FAIL and check.anchor == "database-corrupt"
    assert doctor.check_sqlite(settings(tmp_path / "none"), 0.1).status == doctor.SKIP


def test_pending_local_copies_are_a_warning_pointing_to_relog(tmp_path):
    s = settings(tmp_path)
    run = s.work_dir / "output" / "exp" / "run-1"
    run.mkdir(parents=True)
    assert doctor.check_pending(s).status == doctor.PASS
    (run / "pending.json").write_text("{}")
    check = doctor.check_pending(s)
    assert check.status == doctor.WARN and check.anchor == "submit-failed-at-logging"
    assert "exp/run-1" in check.detail


# --------------------------------------------------------------------------------------------
# Local processes and ports
# --------------------------------------------------------------------------------------------


def test_health_failures_point_to_the_section_of_what_is_really_wrong():
    """A master short of workers is a lost worker, not a master problem (real /json/ sample)."""
    sample = (ROOT / "tests" / "fixtures" / "spark-master-json.json").read_text()
    answer = hc.Fetched("http://127.0.0.1:8080/json/", 200, sample)
    alive = hc.parse_master(json.loads(sample)).alive
    short, _ = hc.assess_master("http://127.0.0.1:8080", answer, alive + 1)
    check = doctor.assess_health(short)
    assert check.status == doctor.FAIL and check.anchor == "worker-lost"
    assert f"{alive}/{alive + 1} workers alive" in check.detail
    enough, _ = hc.assess_master("http://127.0.0.1:8080", answer, alive)
    assert doctor.assess_health(enough).status == doctor.PASS
    down, _ = hc.assess_master("u", hc.Fetched("u/json/", error="connection refused"), 2)
    assert doctor.assess_health(down).anchor == "spark-master-down"
    server = hc.assess_mlflow("u", hc.Fetched("u/health", error="connection refused"), None, None)
    assert doctor.assess_health(server).anchor == "mlflow-server-down"


def test_process_checks_name_the_component_and_its_section():
    dead = doctor.assess_process("spark-worker-2", "work/run/spark-worker-2.pid", 4242, False)
    assert dead.status == doctor.FAIL and dead.anchor == "worker-lost"
    assert "pid 4242" in dead.detail and "make logs C=spark-worker-2" in dead.detail
    assert doctor.assess_process("mlflow-server", "f", None, False).anchor == "mlflow-server-down"
    assert doctor.assess_process("spark-master", "f", 7, True).status == doctor.PASS


def test_port_held_by_our_own_component_passes_and_by_others_fails():
    holders = {100: hc.Holder("java org.apache.spark.deploy.master.Master", 100)}
    ours = doctor.assess_port(
        8080, "SPARK_MASTER_UI_PORT", "in use", holders, {100: "/w:spark-master"}, "/w"
    )
    assert ours.status == doctor.PASS and "our spark-master (pid 100)" in ours.detail
    other = doctor.assess_port(
        8080, "SPARK_MASTER_UI_PORT", "in use", holders, {100: "/w/test:spark-master"}, "/w"
    )
    assert other.status == doctor.FAIL and other.anchor == "port-taken"
    assert "another stack (work dir /w/test)" in other.detail
    foreign = doctor.assess_port(
        5555, "MLFLOW_PORT", "in use", {7: hc.Holder("python3 -m http.server", 7)}, {7: None}, "/w"
    )
    assert foreign.status == doctor.FAIL and "pid 7 (python3 -m http.server)" in foreign.detail
    invisible = doctor.assess_port(5555, "MLFLOW_PORT", "in use", {}, {}, "/w")
    assert invisible.status == doctor.FAIL and "holder not visible" in invisible.detail
    outgoing = doctor.assess_port(58080, "X_PORT", "in use", {}, {}, "/w", (32768, 60999))
    assert "X_PORT: port 58080 is already in use with no server listening" in outgoing.detail
    assert doctor.assess_port(5555, "MLFLOW_PORT", "free", {}, {}, "/w").status == doctor.PASS


def test_a_real_listener_of_ours_is_recognised(tmp_path):
    """A process carrying our tag holds the port: the doctor sees it as ours, not as taken."""
    import socket

    work = tmp_path / "work"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import socket, sys, time; s = socket.socket(); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('127.0.0.1', {port})); s.listen(); print('up', flush=True); time.sleep(60)"
    )
    env = {"STACK_COMPONENT": f"{work}:mlflow-server", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(["python3", "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        s = settings(tmp_path, MLFLOW_PORT=str(port), WORKERS="1")
        checks = {c.name: c for c in doctor.check_ports(s)}
        mine = checks[f"port {port}"]
        assert mine.status == doctor.PASS and "our mlflow-server" in mine.detail
        other = settings(tmp_path / "elsewhere", MLFLOW_PORT=str(port), WORKERS="1")
        theirs = {c.name: c for c in doctor.check_ports(other)}[f"port {port}"]
        assert theirs.status == doctor.FAIL and theirs.anchor == "port-taken"
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------------
# Docker: `docker port`, `docker inspect`, the shared-folder probe
# --------------------------------------------------------------------------------------------

# Real `docker port` output (Docker 20.10) of a container published on loopback for one port
# and on all addresses for another; older engines print ':::PORT' for IPv6.
DOCKER_PORT = """8081/tcp -> 127.0.0.1:56999
8082/tcp -> 0.0.0.0:56998
8082/tcp -> [::]:56998
"""


def test_docker_port_output_is_parsed():
    assert doctor.parse_docker_port(DOCKER_PORT) == [
        doctor.Binding("8081/tcp", "127.0.0.1", 56999),
        doctor.Binding("8082/tcp", "0.0.0.0", 56998),
        doctor.Binding("8082/tcp", "::", 56998),
    ]
    assert doctor.parse_docker_port("8080/tcp -> :::8080\n") == [
        doctor.Binding("8080/tcp", "::", 8080)
    ]
    assert doctor.parse_docker_port("5000/tcp -> [::1]:5555") == [
        doctor.Binding("5000/tcp", "::1", 5555)
    ]
    assert doctor.parse_docker_port("garbage\n\n5000/tcp -> 127.0.0.1:x") == []


def test_ports_beyond_loopback_fail_unless_bind_host_asked_for_them():
    wide = {"spark-worker-1": doctor.parse_docker_port(DOCKER_PORT)}
    check = doctor.assess_published(wide, "127.0.0.1")
    assert check.status == doctor.FAIL and check.anchor == "ports-not-loopback"
    assert "spark-worker-1 8082/tcp on 0.0.0.0:56998" in check.detail
    loop = {
        "mlflow-server": doctor.parse_docker_port(
            "5000/tcp -> 127.0.0.1:5555\n5000/tcp -> [::1]:5555"
        )
    }
    assert doctor.assess_published(loop, "127.0.0.1").status == doctor.PASS
    asked = {"mlflow-server": doctor.parse_docker_port("5000/tcp -> 0.0.0.0:5555")}
    assert doctor.assess_published(asked, "0.0.0.0").status == doctor.WARN
    assert doctor.assess_published({"x": []}, "127.0.0.1").status == doctor.SKIP


# Trimmed from a real `docker inspect` of a container run with compose labels and a bind mount.
INSPECT = [
    {
        "Id": "bab4a2cb9faff218702086db12f2c5f467fa3021af8babc3291cb66db2f8aa30",
        "Name": "/spark-mlflow-spark-worker-1-1",
        "State": {"Status": "running", "Running": True, "ExitCode": 0, "OOMKilled": False},
        "Mounts": [
            {
                "Type": "bind",
                "Source": "/srv/work/mlflow",
                "Destination": "/mlflow",
                "Mode": "",
                "RW": True,
            }
        ],
        "Config": {
            "User": "185:185",
            "Env": ["MLFLOW_DFS_TMP=/mlflow/tmp/dfs", "LANG=C.UTF-8"],
            "Labels": {
                "com.docker.compose.config-hash": "5b2c0e7d",
                "com.docker.compose.project": "spark-mlflow",
                "com.docker.compose.service": "spark-worker-1",
            },
        },
    },
    {
        "Id": "0123456789abcdef",
        "Name": "/spark-mlflow_spark-worker-1_1",
        "State": {
            "Status": "exited",
            "Running": False,
            "ExitCode": 137,
            "Health": {"Status": "unhealthy"},
        },
        "Mounts": [],
        "Config": {
            "User": "",
            "Env": None,
            "Labels": {"com.docker.compose.service": "spark-worker-1"},
        },
    },
    {"Id": "ffff", "Name": "/unrelated", "State": {}, "Config": {"Labels": {}}},
]


def test_inspect_is_parsed_and_grouped_running_first():
    containers = vs.parse_inspect(INSPECT)
    assert [c.name for c in containers] == [
        "spark-mlflow-spark-worker-1-1",
        "spark-mlflow_spark-worker-1_1",
    ]
    first, stale = containers
    assert (
        first.running and first.env["MLFLOW_DFS_TMP"] == "/mlflow/tmp/dfs" and first.health is None
    )
    assert stale.exit_code == 137 and stale.health == "unhealthy"
    groups = vs.by_service(reversed(containers))
    assert groups["spark-worker-1"][0] is first
    # Both running: the one compose made wins over a twin started by hand.
    twin = vs.Container("t", "twin", "spark-worker-1", "running", 0, None, "0:0", managed=False)
    assert vs.by_service([twin, stale, first])["spark-worker-1"] == [first, twin, stale]
    twins = doctor.assess_stale(groups)
    assert twins.status == doctor.FAIL and twins.anchor == "stale-containers"
    assert doctor.assess_container("spark-worker-1", groups["spark-worker-1"]).status == doctor.PASS
    lost = doctor.assess_container("spark-worker-1", [stale])
    assert lost.status == doctor.FAIL and lost.anchor == "worker-lost" and "exit 137" in lost.detail


def test_container_states():
    done = vs.Container("i", "p-init-1", "init", "exited", 0, None, "0:0")
    assert doctor.assess_container("init", [done]).status == doctor.PASS
    broken = vs.Container("i", "p-init-1", "init", "exited", 1, None, "0:0")
    assert doctor.assess_container("init", [broken]).anchor == "shared-folder-not-writable"
    sick = vs.Container("m", "p-mlflow-server-1", "mlflow-server", "running", 0, "unhealthy", "")
    assert doctor.assess_container("mlflow-server", [sick]).anchor == "containers-not-up"
    assert doctor.assess_container("spark-submit", []).status == doctor.FAIL


def test_mount_checks(tmp_path):
    data = tmp_path / "mlflow"
    data.mkdir()
    c = vs.parse_inspect(INSPECT)[0]
    c.mounts = [{"Source": str(data), "Destination": "/mlflow", "RW": True}]
    assert doctor.assess_mount("spark-submit", c, str(data)).status == doctor.PASS
    other = doctor.assess_mount("spark-submit", c, str(tmp_path / "elsewhere"))
    assert other.status == doctor.FAIL and other.anchor == "shared-folder-not-mounted"
    c.mounts = [{"Source": str(data), "Destination": "/data", "RW": True}]
    assert "nothing is mounted at /mlflow" in doctor.assess_mount("w", c, str(data)).detail
    c.mounts = [{"Source": str(data), "Destination": "/mlflow", "RW": False}]
    assert doctor.assess_mount("w", c, str(data)).anchor == "shared-folder-not-writable"


def test_dfs_tmp_must_be_on_the_shared_mount():
    assert doctor.assess_dfs_tmp("w", {"MLFLOW_DFS_TMP": "/mlflow/tmp/dfs"}).status == doctor.PASS
    assert doctor.assess_dfs_tmp("w", {"MLFLOW_DFS_TMP": "/mlflowx"}).anchor == "model-without-data"
    assert doctor.assess_dfs_tmp("w", {}).anchor == "model-without-data"


def test_shared_probe_script_reads_and_writes_for_real(tmp_path):
    """Run the probe the containers run, with sh, on local folders: one writable, one not."""
    probe = tmp_path / "probe"
    probe.write_text("tok123")
    (tmp_path / "ok").mkdir()
    argv = [
        "sh",
        "-c",
        doctor.SHARED_PROBE,
        "sh",
        str(probe),
        "tok123",
        str(tmp_path / "ok"),
        str(tmp_path / "gone"),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    answer = doctor.parse_shared_probe(out)
    assert answer.content == "tok123" and isinstance(answer.uid, int)
    assert answer.writes[str(tmp_path / "ok")] == "ok"
    assert answer.writes[str(tmp_path / "gone")] != "ok"
    assert list((tmp_path / "ok").iterdir()) == []  # it cleans up after itself
    check = doctor.assess_shared_writable("spark-worker-1", answer, answer.uid)
    assert check.status == doctor.FAIL and check.anchor == "shared-folder-not-writable"
    assert str(tmp_path / "gone") in check.detail


def test_shared_folder_same_everywhere_names_who_does_not_see_the_probe():
    seen = {"mlflow-server": "t", "spark-worker-1": None, "host": "other"}
    check = doctor.assess_shared_same("t", seen, "spark-submit")
    assert check.status == doctor.FAIL and check.anchor == "shared-folder-not-mounted"
    assert "host, spark-worker-1" in check.detail
    assert doctor.assess_shared_same("t", {"host": "t"}, "spark-submit").status == doctor.PASS
    root = doctor.ProbeAnswer("t", 0, {"/mlflow": "ok"})
    assert doctor.assess_shared_writable("spark-submit", root, 185).status == doctor.WARN


def test_submit_python_check():
    good = vs.Row(
        "spark-submit",
        "docker exec python",
        {"mlflow": "3.4.0"},
        info={"executable": "/opt/mlflow-venv/bin/python", "python": "3.11.2"},
    )
    assert doctor.assess_submit_python(good, "3.4.0").status == doctor.PASS
    assert doctor.assess_submit_python(good, "3.5.0").anchor == "version-mismatch"
    bare = vs.Row(
        "spark-submit",
        "docker exec python",
        missing={"mlflow": "ModuleNotFoundError"},
        info={"executable": "/usr/bin/python3"},
    )
    failed = doctor.assess_submit_python(bare, "3.4.0")
    assert failed.anchor == "mlflow-missing-in-image" and "/usr/bin/python3" in failed.detail
    down = vs.Row("spark-submit", "docker exec python", errors={"mlflow": "no running container"})
    assert doctor.assess_submit_python(down, "3.4.0").status == doctor.SKIP


def test_artifact_cli_check_needs_the_help_text():
    ok = vs.Proc(["python"], 0, "Usage: cli.py [OPTIONS] COMMAND\n  log-artifact  Log a local file")
    assert doctor.assess_artifact_cli("artifact CLI", "python -m x", ok).status == doctor.PASS
    gone = vs.Proc(["python"], None, error="python not found")
    check = doctor.assess_artifact_cli("artifact CLI", "python -m x", gone)
    assert check.anchor == "failed-to-exec-artifact-cli" and "python not found" in check.detail


def test_docker_run_without_an_engine_fails_once_and_skips_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(vs, "engine_answers", lambda timeout: (False, "docker not found"))
    checks: list[doctor.Check] = []
    opts = doctor.Options(timeout=1, min_gb=0, warn_gb=0, busy_timeout=0.1, compose="")
    doctor.run_docker(settings(tmp_path, "docker"), opts, checks.append)
    by_name = {c.name: c for c in checks}
    assert by_name["docker engine"].status == doctor.FAIL
    assert by_name["docker engine"].anchor == "docker-engine"
    skipped = [c for c in checks if c.status == doctor.SKIP]
    assert {c.name for c in skipped} >= set(doctor.DOCKER_CHECKS)
    assert all(
        "no Docker engine answers" in c.detail for c in skipped if c.name in doctor.DOCKER_CHECKS
    )
    assert [c.name for c in checks if c.status == doctor.FAIL] == ["docker engine"]


# --------------------------------------------------------------------------------------------
# MLflow's Host-header protection: settings, the probe, the verdict
# --------------------------------------------------------------------------------------------


def compose_server() -> tuple[dict[str, str], list[str]]:
    """The mlflow-server service of docker/docker-compose.yml as the container gets it: variables
    at their defaults (`${X:-default}`), `$$` as `$`."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    service = compose["services"]["mlflow-server"]
    env = {
        key: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        for key, value in service["environment"].items()
    }
    return env, [str(arg).replace("$$", "$") for arg in service["command"]]


COMPOSE_ENV, COMPOSE_ARGV = compose_server()
COMPOSE_HOSTS = COMPOSE_ENV[doctor.ALLOWED_HOSTS_ENV]
DOCKER_CLIENTS = {"mlflow-server:5000": "the name spark-submit uses", "127.0.0.1:5555": "URL"}
LOCAL_CLIENTS = {"127.0.0.1:22555": "MLFLOW_URL"}
LOCAL_ARGV = [".venv/bin/python", ".venv/bin/mlflow", "server", "--host", "127.0.0.1"]
REJECTED = hc.Fetched("u", 403, "Invalid Host header - possible DNS rebinding attack detected")
ANSWERED = hc.Fetched("u", 200, '{"experiments": []}')
NO_ENV: dict[str, str] = {}


def test_our_compose_file_sets_allowed_hosts_and_keeps_the_middleware():
    assert "mlflow-server:5000" in COMPOSE_HOSTS.split(",")
    config = doctor.parse_host_config(COMPOSE_ENV, COMPOSE_ARGV)
    assert config == doctor.HostConfig(
        None, tuple(COMPOSE_HOSTS.split(",")), "MLFLOW_SERVER_ALLOWED_HOSTS"
    )
    check = doctor.assess_host_protection(
        "3.5.1", COMPOSE_ENV, COMPOSE_ARGV, REJECTED, "docker", DOCKER_CLIENTS
    )
    assert check.status == doctor.PASS, check.detail


def server(runtime: str, env: dict | None = None, argv: list | None = None) -> tuple:
    """(runtime, env, argv) of a server: ours as started by compose or scripts/local/up.sh, with
    the env or argv replaced."""
    docker = runtime == "docker"
    return (
        runtime,
        (COMPOSE_ENV if docker else {}) if env is None else env,
        (COMPOSE_ARGV if docker else LOCAL_ARGV) if argv is None else argv,
    )


DOCKER, LOCAL = server("docker"), server("local")
PREDATES = "predates the Host-header middleware (3.5)"
OFF = "disables the security middleware"
ALLOWED, DISABLE = doctor.ALLOWED_HOSTS_ENV, doctor.DISABLE_ENV


def case(name: str, version: str | None, srv: tuple, probe, status: str, *needles: str):
    return pytest.param(version, srv, probe, status, needles, id=name)


@pytest.mark.parametrize(
    ("version", "srv", "probe", "status", "needles"),
    [
        case("3.4-docker-as-is", "3.4.0", DOCKER, ANSWERED, doctor.PASS,
             f"MLflow 3.4.0 {PREDATES}; allowed hosts are set", "mlflow-server:5000,"),
        case("3.4-local-default-admits-our-url", "3.4.0", LOCAL, ANSWERED, doctor.PASS,
             f"{PREDATES}; no allowed-hosts list", "admits 127.0.0.1:22555 (MLFLOW_URL)"),
        case("3.4-docker-without-a-list", "3.4.0", server("docker", {}), ANSWERED, doctor.FAIL,
             "no allowed-hosts list", "403 to Host: mlflow-server:5000 (the name spark-submit",
             "MLFLOW_ALLOWED_HOSTS", "make rebuild RUNTIME=docker", PREDATES),
        case("docker-list-without-the-service-name", "3.4.0",
             server("docker", {ALLOWED: "localhost:*,127.0.0.1:*"}), ANSWERED, doctor.FAIL,
             "allowed hosts localhost:*,127.0.0.1:* (MLFLOW_SERVER_ALLOWED_HOSTS)",
             "403 to Host: mlflow-server:5000", "add mlflow-server:5000 to"),
        case("disabled-by-env-true", "3.4.0", server("local", {DISABLE: "TRUE"}), ANSWERED,
             doctor.FAIL, f"{DISABLE}=TRUE {OFF}", "'make rebuild'"),
        case("disabled-by-env-1-and-the-probe-agrees", "3.5.1", server("local", {DISABLE: "1"}),
             ANSWERED, doctor.FAIL, f"{DISABLE}=1 {OFF}",
             "answered HTTP 200 to a request with Host: rebind.invalid"),
        case("disabled-by-env-yes", "3.4.0", server("local", {DISABLE: " yes "}), ANSWERED,
             doctor.FAIL, OFF),
        case("env-false-is-not-disabled", "3.4.0", server("local", {DISABLE: "false"}), ANSWERED,
             doctor.PASS, PREDATES),
        case("env-0-is-not-disabled", "3.4.0", server("local", {DISABLE: "0"}), ANSWERED,
             doctor.PASS, PREDATES),
        case("disabled-by-argument", "3.5.1",
             server("docker", argv=[*LOCAL_ARGV, "--disable-security-middleware"]), REJECTED,
             doctor.FAIL, f"--disable-security-middleware {OFF}", "make rebuild RUNTIME=docker"),
        case("disabled-inside-the-sh-c-script", "3.4.0",
             server("docker", argv=["sh", "-c", "exec mlflow --disable-security-middleware"]),
             ANSWERED, doctor.FAIL, f"--disable-security-middleware {OFF}"),
        case("a-comment-in-the-script-does-not-count", "3.4.0",
             server("docker", argv=["sh", "-c", "# --disable-security-middleware\nexec mlflow"]),
             ANSWERED, doctor.PASS, "allowed hosts are set"),
        case("star-in-env", "3.4.0", server("local", {ALLOWED: "*"}), ANSWERED, doctor.FAIL,
             "allowed hosts * (MLFLOW_SERVER_ALLOWED_HOSTS) contain '*'",
             "this bites when MLFLOW_VERSION is raised"),
        case("star-among-others", "3.5.1", server("docker", {ALLOWED: "mlflow-server:5000, *"}),
             ANSWERED, doctor.FAIL, "contain '*'", "list the names clients use in MLFLOW_ALLOWED"),
        case("star-as-argument", "3.4.0",
             server("docker", argv=[*LOCAL_ARGV, "--allowed-hosts", "*"]), ANSWERED, doctor.FAIL,
             "allowed hosts * (--allowed-hosts) contain '*'"),
        case("star-as-argument-with-equals", "3.4.0",
             server("local", argv=[*LOCAL_ARGV, "--allowed-hosts=localhost:*,*"]), ANSWERED,
             doctor.FAIL, "localhost:*,* (--allowed-hosts) contain '*'"),
        case("patterns-with-a-star-are-not-a-bare-star", "3.4.0",
             server("docker", {ALLOWED: "mlflow-server:*,127.0.0.1:*"}), ANSWERED, doctor.PASS,
             "allowed hosts are set"),
        case("3.5-rejects-the-foreign-host", "3.5.1", DOCKER, REJECTED, doctor.PASS,
             "MLflow 3.5.1 answers 403 'Invalid Host header' to Host: rebind.invalid",
             "(MLFLOW_SERVER_ALLOWED_HOSTS)"),
        case("3.5-local-default-list", "3.5.1", LOCAL, REJECTED, doctor.PASS,
             "allowed hosts: MLflow's default (localhost and private IPs)"),
        case("3.5-answers-the-foreign-host-whatever-the-config", "3.5.1", DOCKER, ANSWERED,
             doctor.FAIL, "answered HTTP 200",
             "the Host-header check is off, although the configuration"),
        case("3.5-docker-without-a-list-rejects-spark-submit", "3.5.1", server("docker", {}),
             REJECTED, doctor.FAIL, "no allowed-hosts list", "mlflow-server:5000"),
        case("versions-compare-as-numbers", "3.10.0", DOCKER, ANSWERED, doctor.FAIL,
             "MLflow 3.10.0 answered HTTP 200"),
        case("a-release-candidate-has-the-middleware", "3.5.0rc1", DOCKER, ANSWERED, doctor.FAIL,
             "answered HTTP 200"),
        case("3.5-probe-not-answered", "3.5.1", DOCKER, hc.Fetched("u", error="connection refused"),
             doctor.WARN, "probe with Host: rebind.invalid failed (connection refused)"),
        case("3.5-another-403", "3.5.1", DOCKER, hc.Fetched("u", 403, "Permission denied"),
             doctor.WARN, "answered HTTP 403 (not 403 'Invalid Host header')", "cannot tell"),
        case("3.5-unexpected-status", "3.5.1", DOCKER, hc.Fetched("u", 404, "Not Found"),
             doctor.WARN, "answered HTTP 404"),
        case("version-unknown-config-fine", None, DOCKER, None, doctor.SKIP,
             "version cannot be read"),
        case("version-unknown-config-disabled", None, server("local", {DISABLE: "true"}), None,
             doctor.FAIL, OFF),
    ],
)  # fmt: skip
def test_host_protection_verdict(version, srv, probe, status, needles):
    runtime, env, argv = srv
    clients = DOCKER_CLIENTS if runtime == "docker" else LOCAL_CLIENTS
    check = doctor.assess_host_protection(version, env, argv, probe, runtime, clients)
    assert check.status == status, check.detail
    assert check.name == "host-header protection"
    if status in (doctor.FAIL, doctor.WARN):
        assert check.runbook == "docs/runbook.md#host-header-protection"
    for needle in needles:
        assert needle in check.detail, (needle, check.detail)


H = doctor.HostConfig


@pytest.mark.parametrize(
    ("env", "argv", "want"),
    [
        ({}, [], H(None, None)),
        ({doctor.ALLOWED_HOSTS_ENV: ""}, [], H(None, None)),  # empty: MLflow's default
        (
            {doctor.ALLOWED_HOSTS_ENV: " a:1 , b "},
            [],
            H(None, ("a:1", "b"), "MLFLOW_SERVER_ALLOWED_HOSTS"),
        ),
        # An argument beats the variable, the last argument wins, '=' or a separate word.
        (
            {doctor.ALLOWED_HOSTS_ENV: "env"},
            ["--allowed-hosts", "arg"],
            H(None, ("arg",), "--allowed-hosts"),
        ),
        (
            {},
            ["--allowed-hosts=one", "--allowed-hosts", "two"],
            H(None, ("two",), "--allowed-hosts"),
        ),
        # An empty argument leaves the variable in force (MLflow's CLI skips an empty value).
        (
            {doctor.ALLOWED_HOSTS_ENV: "env"},
            ["--allowed-hosts", ""],
            H(None, ("env",), "MLFLOW_SERVER_ALLOWED_HOSTS"),
        ),
        # A value with a space stays one argument in exec form.
        ({}, ["--allowed-hosts", "a, b"], H(None, ("a", "b"), "--allowed-hosts")),
        # Inside `sh -c`: quotes, a $VAR or ${VAR} from the container's environment.
        (
            {},
            ["sh", "-c", "exec mlflow server --allowed-hosts 'x:1,y:2'"],
            H(None, ("x:1", "y:2"), "--allowed-hosts"),
        ),
        (
            {"HOSTS": "h:1"},
            ["sh", "-c", 'mlflow server --allowed-hosts "$HOSTS"'],
            H(None, ("h:1",), "--allowed-hosts"),
        ),
        (
            {"HOSTS": "h:2"},
            ["sh", "-c", "mlflow server --allowed-hosts=${HOSTS}"],
            H(None, ("h:2",), "--allowed-hosts"),
        ),
        (
            {},
            ["sh", "-c", "mlflow server --disable-security-middleware"],
            H("--disable-security-middleware", None),
        ),
        ({doctor.DISABLE_ENV: "On"}, [], H("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE=On", None)),
        ({doctor.DISABLE_ENV: "no"}, [], H(None, None)),
        # Unbalanced quotes in a script: its plain words are still read.
        (
            {},
            ["sh", "-c", "echo 'oops; mlflow server --disable-security-middleware"],
            H("--disable-security-middleware", None),
        ),
    ],
)
def test_host_settings_are_read_as_mlflows_cli_reads_them(env, argv, want):
    assert doctor.parse_host_config(env, argv) == want


@pytest.mark.parametrize(
    ("allowed", "host", "ok"),
    [
        (COMPOSE_HOSTS.split(","), "mlflow-server:5000", True),
        (COMPOSE_HOSTS.split(","), "127.0.0.1:5555", True),
        (COMPOSE_HOSTS.split(","), "rebind.invalid", False),
        (COMPOSE_HOSTS.split(","), "mlflow-server:5001", False),
        (doctor.MLFLOW_DEFAULT_HOSTS, "127.0.0.1:22555", True),
        (doctor.MLFLOW_DEFAULT_HOSTS, "[::1]:5555", True),
        (doctor.MLFLOW_DEFAULT_HOSTS, "172.18.0.3:5000", True),
        (doctor.MLFLOW_DEFAULT_HOSTS, "172.32.0.3:5000", False),
        (doctor.MLFLOW_DEFAULT_HOSTS, "mlflow-server:5000", False),
        (["*"], "anything:1", True),
        (["*"], "", False),
    ],
)
def test_host_admitted_follows_mlflows_matching(allowed, host, ok):
    assert doctor.host_admitted(allowed, host) is ok


def test_container_command_is_entrypoint_then_cmd():
    config = {"Entrypoint": ["/tini", "--"], "Cmd": ["sh", "-c", "exec mlflow server"], "Env": []}
    assert doctor.parse_config_command(json.dumps(config)) == [
        "/tini",
        "--",
        "sh",
        "-c",
        "exec mlflow server",
    ]
    assert doctor.parse_config_command('{"Entrypoint": null, "Cmd": ["mlflow"]}') == ["mlflow"]
    assert doctor.parse_config_command('{"Entrypoint": "mlflow server", "Cmd": null}') == [
        "mlflow server"
    ]
    assert doctor.parse_config_command("Error: No such object") is None
    assert doctor.parse_config_command("[]") is None
    assert doctor.url_host("http://user:pw@127.0.0.1:5555/x") == "127.0.0.1:5555"


@pytest.fixture
def stub_mlflow():
    """An HTTP server on loopback that behaves like MLflow 3.5's Host check: 403 "Invalid Host
    header" unless Host is 127.0.0.1:PORT; it records what it was sent."""
    import http.server
    import threading

    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            host = self.headers.get("Host", "")
            seen.append((self.path, host))
            ok = host == f"127.0.0.1:{self.server.server_port}"
            body = b'{"experiments": []}' if ok else doctor.INVALID_HOST.encode() + b" - rebinding"
            self.send_response(200 if ok else 403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_probe_sends_a_foreign_host_to_a_guarded_endpoint(stub_mlflow):
    url, seen = stub_mlflow
    got = doctor.probe_foreign_host(url, 5)
    assert got.status == 403 and doctor.INVALID_HOST in got.text
    assert seen == [("/api/2.0/mlflow/experiments/search?max_results=1", "rebind.invalid")]
    check = doctor.assess_host_protection("3.5.1", {}, LOCAL_ARGV, got, "local", LOCAL_CLIENTS)
    assert check.status == doctor.PASS


def test_the_probe_of_a_closed_port_says_why(stub_mlflow):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        got = doctor.probe_foreign_host(f"http://127.0.0.1:{port}", 2)
    assert got.status is None and got.error == "connection refused"


# Plays a local mlflow-server that answers every Host (as a 3.5 server with the middleware off).
OPEN_SERVER = r"""
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"experiments": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()
"""


def test_local_check_reads_the_servers_proc_env_and_argv(tmp_path):
    """Our mlflow-server by its PID file: its environment and command line from /proc, then the
    probe on MLFLOW_PORT; a process without our tag is not judged."""
    work = tmp_path / "work"
    (work / "run").mkdir(parents=True)
    env = {
        "STACK_COMPONENT": f"{work}:mlflow-server",
        "PATH": "/usr/bin:/bin",
        doctor.ALLOWED_HOSTS_ENV: "127.0.0.1:*",
    }
    argv = ["python3", "-c", OPEN_SERVER, "--disable-security-middleware"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        assert doctor.read_cmdline(proc.pid) == argv
        assert doctor.read_environ(proc.pid)[doctor.ALLOWED_HOSTS_ENV] == "127.0.0.1:*"
        (work / "run" / "mlflow-server.pid").write_text(f"{proc.pid}\n")
        s = settings(tmp_path, MLFLOW_PORT=str(port))
        rows = [vs.Row("mlflow-server", "GET /version", {"mlflow": "3.5.1"})]
        check = doctor.check_local_host_protection(s, rows, 5)
        assert check.status == doctor.FAIL and check.anchor == "host-header-protection"
        assert "--disable-security-middleware disables" in check.detail
        assert (
            "MLflow 3.5.1 answered HTTP 200 to a request with Host: rebind.invalid" in check.detail
        )
        other = settings(tmp_path / "elsewhere", MLFLOW_PORT=str(port))
        (other.run_dir).mkdir(parents=True)
        (other.run_dir / "mlflow-server.pid").write_text(f"{proc.pid}\n")
        assert doctor.check_local_host_protection(other, rows, 5).status == doctor.SKIP
    finally:
        proc.kill()
        proc.wait()
    assert doctor.check_local_host_protection(s, rows, 5).status == doctor.SKIP  # gone


# --------------------------------------------------------------------------------------------
# CLIs: bad input is one line and exit 2
# --------------------------------------------------------------------------------------------


def test_doctor_bad_threshold_is_one_line_exit_2(monkeypatch):
    monkeypatch.setenv("DOCTOR_MIN_FREE_GB", "plenty")
    result = CliRunner().invoke(doctor.main, ["--runtime", "local"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: DOCTOR_MIN_FREE_GB='plenty' is not a number of GB (example: DOCTOR_MIN_FREE_GB=2)"
    ]


@pytest.mark.parametrize("cli", [doctor.main, vs.main])
def test_unknown_runtime_is_one_line_exit_2(cli):
    result = CliRunner().invoke(cli, ["--runtime", "kubernetes"])
    assert result.exit_code == 2 and "use --runtime local or --runtime docker" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_versions_cli_names_a_bad_url(monkeypatch):
    monkeypatch.setenv("MLFLOW_URL", "localhost:5555")
    result = CliRunner().invoke(vs.main, ["--runtime", "local"])
    assert result.exit_code == 2 and "'localhost:5555' is not a valid http(s) URL" in result.output
