#!/usr/bin/env python3
"""Doctor: every diagnostic of the stack, in order, for the current runtime, each failure with the
runbook section (docs/runbook.md#ANCHOR) that says what it means and how to fix it.

local: Python and Java, versions.env, the venv and its pins, MLflow and the artifact CLI the Java
client runs, the processes, ports, health endpoints, versions, MLflow's Host-header protection
(allowed hosts set, never disabled; a probe with a foreign Host), work/mlflow, disk, SQLite.
docker: engine and compose, containers, health endpoints, /mlflow mounted and the same in every
container and writable by the Spark user, MLFLOW_DFS_TMP, `python` in spark-submit, versions,
published ports (loopback only), the Host-header protection, then the host side (work/mlflow,
disk, SQLite).

Exit codes: 0 no check failed (warnings allowed), 1 at least one failed, 2 bad input.

mlflow is never imported here: it is probed in subprocesses (the venv's Python, the containers').
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import click

TOOLS_DIR = Path(__file__).resolve().parent
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))

import healthcheck as hc  # noqa: E402
import versions as vs  # noqa: E402

RUNBOOK = vs.RUNBOOK
EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
GB = 1_000_000_000

# Runbook sections a check may point to: anchor -> what the section is about. Every one must
# exist in docs/runbook.md as <a id="ANCHOR"></a> (tests/unit/test_doctor.py holds it to that).
ANCHORS = {
    "toolchain": "Python or Java missing or too old",
    "versions-env": "versions.env does not parse",
    "venv": "the Python environment is missing or stale",
    "failed-to-exec-artifact-cli": "Failed to exec 'python -m mlflow.store.artifact.cli'",
    "stack-not-running": "the stack is not running",
    "mlflow-server-down": "the MLflow server does not answer",
    "spark-master-down": "the Spark master does not answer",
    "worker-lost": "a worker is lost",
    "port-taken": "a port is already taken",
    "version-mismatch": "client and server MLflow (or Spark) versions differ",
    "mlflow-missing-in-image": "MLflow missing from the Spark image",
    "shared-folder-not-mounted": "the shared folder is not mounted in a container",
    "shared-folder-not-writable": "the shared folder is not writable (permission denied)",
    "model-without-data": "a model saved without its data (MLFLOW_DFS_TMP)",
    "disk-full": "the disk under work/ is full",
    "database-locked": 'SQLite "database is locked"',
    "database-corrupt": "SQLite integrity check fails",
    "submit-failed-at-logging": "a submit failed at logging (make relog)",
    "docker-engine": "no Docker engine or no compose",
    "containers-not-up": "containers not up or not healthy",
    "stale-containers": "stale containers block a start",
    "ports-not-loopback": "a port is published beyond 127.0.0.1",
    "image-build-fails": "the image build fails (and a clean rebuild)",
    "pip-tls-interception": "pip in the docker build fails behind TLS interception",
    "artifacts-not-visible": "artifacts not visible in the MLflow UI",
    "invalid-host-header": '403 "Invalid Host header" after an upgrade to MLflow 3.5+',
    "host-header-protection": "the MLflow Host-header protection is off",
}


@dataclass
class Check:
    name: str
    status: str  # pass | fail | warn | skip
    detail: str
    anchor: str | None = None

    def __post_init__(self) -> None:
        if self.anchor is not None and self.anchor not in ANCHORS:
            raise ValueError(f"unknown runbook anchor {self.anchor!r}")

    @property
    def runbook(self) -> str | None:
        return f"{RUNBOOK}#{self.anchor}" if self.anchor else None

    def to_json(self) -> dict:
        return asdict(self) | {"runbook": self.runbook}


def passed(name: str, detail: str) -> Check:
    return Check(name, PASS, detail)


def failed(name: str, detail: str, anchor: str) -> Check:
    return Check(name, FAIL, detail, anchor)


def warned(name: str, detail: str, anchor: str) -> Check:
    return Check(name, WARN, detail, anchor)


def skipped(name: str, reason: str) -> Check:
    return Check(name, SKIP, reason)


# --------------------------------------------------------------------------------------------
# Pure checks: plain values in, a Check out
# --------------------------------------------------------------------------------------------


def version_tuple(text: str) -> tuple[int, ...]:
    """'3.11.7' -> (3, 11, 7); stops at the first part that is not a number ('17.0.15+6')."""
    parts = []
    for piece in text.strip().split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def at_least(have: str, want: str) -> bool:
    h, w = version_tuple(have), version_tuple(want)
    return bool(h) and h >= w


def parse_java_major(version_output: str) -> int | None:
    """`java -version` text -> major version: 'version "17.0.15"' -> 17, '"1.8.0_292"' -> 8."""
    for line in version_output.splitlines():
        if 'version "' in line:
            quoted = line.split('version "', 1)[1].split('"', 1)[0]
            nums = version_tuple(quoted)
            if not nums:
                return None
            return nums[1] if nums[0] == 1 and len(nums) > 1 else nums[0]
    return None


def assess_python(found: str | None, where: str, minimum: str, error: str = "") -> Check:
    name = "python"
    if not found:
        return failed(name, f"no working Python at {where} ({error})", "toolchain")
    if not at_least(found, minimum):
        return failed(name, f"{where} is Python {found}; {minimum} or newer is needed", "toolchain")
    return passed(name, f"Python {found} at {where} (>= {minimum})")


def assess_java(output: str | None, where: str, minimum: str, error: str = "") -> Check:
    name = "java"
    if output is None:
        return failed(name, f"no Java at {where} ({error})", "toolchain")
    major = parse_java_major(output)
    if major is None:
        return failed(name, f"cannot read the version from '{where} -version'", "toolchain")
    if major < int(version_tuple(minimum)[0]):
        return failed(name, f"{where} is Java {major}; {minimum} or newer is needed", "toolchain")
    return passed(name, f"Java {major} at {where} (>= {minimum})")


def assess_versions_env(settings: vs.Settings) -> Check:
    name = "versions.env"
    if settings.file_problems:
        return failed(name, "; ".join(settings.file_problems), "versions-env")
    overridden = sorted(
        k for k, v in settings.file_values.items() if settings.values.get(k, v) != v
    )
    detail = (
        f"{len(settings.file_values)} settings; MLflow {settings.pinned('mlflow')}, "
        f"Spark {settings.pinned('spark')}"
    )
    if overridden:
        detail += "; overridden by the environment: " + ", ".join(
            f"{k}={settings.values[k]}" for k in overridden
        )
    return passed(name, detail)


def pins_fingerprint(
    versions_text: str, requirements: str, constraints: str, python_sys_version: str
) -> str:
    """What scripts/setup.sh writes to .venv/.pins.sha256: sha256 of the version lines of
    versions.env, requirements.txt, constraints.txt and `python -c 'print(sys.version)'`."""
    lines = [
        line + "\n"
        for line in versions_text.splitlines()
        if line.startswith(("SPARK_VERSION=", "MLFLOW_VERSION="))
    ]
    text = "".join(lines) + requirements + constraints + python_sys_version.rstrip("\n") + "\n"
    return hashlib.sha256(text.encode()).hexdigest()


def assess_venv(where: str, exists: bool, stamp: str | None, want: str | None) -> Check:
    name = "venv"
    if not exists:
        return failed(name, f"no Python environment at {where}; run 'make setup'", "venv")
    if stamp is None:
        return failed(name, f"{where} has no pins stamp (.pins.sha256): install unfinished", "venv")
    if want is None:
        return warned(name, f"{where}: cannot compute the pins' fingerprint", "venv")
    if stamp.strip() != want:
        return failed(
            name,
            f"{where} was installed from other pins (versions.env, requirements.txt or "
            "constraints.txt changed since); run 'make setup'",
            "venv",
        )
    return passed(name, f"{where} matches the pins")


def assess_mlflow_import(row: vs.Row, pinned: str) -> Check:
    name = "mlflow in venv"
    if "mlflow" in row.versions:
        exe = row.info.get("executable") or row.source
        return passed(name, f"MLflow {row.versions['mlflow']} importable with {exe}")
    reason = row.missing.get("mlflow") or row.errors.get("mlflow") or "unknown"
    return failed(name, f"{row.source} cannot import mlflow ({reason}); run 'make setup'", "venv")


def assess_artifact_cli(name: str, command: str, proc: vs.Proc) -> Check:
    """The exact command the MLflow Java client runs for every artifact, with --help."""
    if proc.ok and "log-artifact" in proc.stdout:
        return passed(name, f"'{command} --help' works")
    return failed(name, f"'{command} --help' fails ({proc.why()})", "failed-to-exec-artifact-cli")


def anchor_of(component: str) -> str:
    if component == hc.MLFLOW:
        return "mlflow-server-down"
    if component == hc.MASTER:
        return "spark-master-down"
    return "worker-lost"


def assess_process(component: str, pid_file: str, pid: int | None, alive: bool) -> Check:
    """A local component by its PID file: alive means the PID runs and carries our tag."""
    name = f"process: {component}"
    if pid is None:
        return failed(name, f"not started (no PID file {pid_file})", anchor_of(component))
    if not alive:
        return failed(
            name,
            f"{pid_file} names pid {pid}, which is not running any more (stopped or crashed; "
            f"'make logs C={component}' shows its last lines)",
            anchor_of(component),
        )
    return passed(name, f"running (pid {pid})")


def assess_port(
    port: int,
    var: str,
    state: str,
    holders: Mapping[int, hc.Holder],
    tags: Mapping[int, str | None],
    work_dir: str,
    ephemeral: tuple[int, int] | None = None,
) -> Check:
    """Free, or held by a component of this stack (tag STACK_COMPONENT=WORK_DIR:NAME)."""
    name = f"port {port}"
    if state == "free":
        return passed(name, f"{var}: free")
    ours = {
        pid: tags.get(pid) for pid in holders if (tags.get(pid) or "").startswith(work_dir + ":")
    }
    if holders and len(ours) == len(holders):
        pid = min(ours)
        component = (ours[pid] or "").rsplit(":", 1)[-1]
        return passed(name, f"{var}: held by our {component} (pid {pid})")
    others = {pid: tag for pid, tag in tags.items() if tag and pid in holders and pid not in ours}
    if others:
        pid = min(others)
        other_dir, _, component = (others[pid] or "").rpartition(":")
        return failed(
            name,
            f"{var}: held by pid {pid} ({holders[pid].command}), the {component} of another "
            f"stack (work dir {other_dir}); stop that stack or set {var}",
            "port-taken",
        )
    return failed(
        name,
        f"{var}: " + hc.taken_message(port, state, holders, var, None, ephemeral),
        "port-taken",
    )


def assess_health(comp: hc.Component) -> Check:
    name = f"health: {comp.name}"
    if comp.healthy:
        return passed(name, comp.detail)
    anchor = anchor_of(comp.name)
    if comp.name == hc.MASTER and comp.info.get("status") == "ALIVE":
        anchor = "worker-lost"  # the master is fine; it counts fewer workers than expected
    return failed(name, f"{comp.error}; {comp.detail}", anchor)


def assess_versions(
    diffs: Sequence[vs.Difference], pinned: Mapping[str, str], sources: int
) -> Check:
    """Differences and imports that fail are failures; sources that could not be reached are
    only noted (their own checks above fail)."""
    name = "versions"
    bad = [d for d in diffs if d.kind != "unreadable"]
    unread = [d for d in diffs if d.kind == "unreadable"]
    if bad:
        anchor = (
            "version-mismatch"
            if any(d.kind == "differs" for d in bad)
            else "mlflow-missing-in-image"
        )
        return failed(name, "; ".join(d.message() for d in bad), anchor)
    if unread:
        where = sorted({f"{d.component} ({d.source})" for d in unread})
        return skipped(name, "not compared, cannot be read: " + ", ".join(where))
    return passed(
        name, f"MLflow {pinned['mlflow']} and Spark {pinned['spark']} in all {sources} sources"
    )


def assess_writable(name: str, path: str, error: str | None, created_later: bool) -> Check:
    if error is None:
        extra = " (created at the first 'make up')" if created_later else ""
        return passed(name, f"{path} is writable{extra}")
    anchor = "disk-full" if "No space left" in error else "shared-folder-not-writable"
    return failed(name, f"{path} is not writable: {error}", anchor)


def assess_disk(name: str, path: str, free_bytes: int, min_gb: float, warn_gb: float) -> Check:
    free = free_bytes / GB
    detail = f"{free:.1f} GB free under {path}"
    if free < min_gb:
        return failed(name, f"{detail} (minimum DOCTOR_MIN_FREE_GB={min_gb:g})", "disk-full")
    if free < warn_gb:
        return warned(name, f"{detail} (low: under DOCTOR_WARN_FREE_GB={warn_gb:g})", "disk-full")
    return passed(name, detail)


def assess_sqlite(path: str, rows: list | None, error: str | None, holders: str = "") -> Check:
    """rows: the answer of PRAGMA quick_check; error: the sqlite3 error message."""
    name = "sqlite"
    if error is not None:
        if "locked" in error or "busy" in error:
            held = f"; open by {holders}" if holders else ""
            return failed(
                name,
                f"{path}: database is locked (a writer kept its lock past the busy timeout){held}",
                "database-locked",
            )
        return failed(name, f"{path}: {error}", "database-corrupt")
    answers = [str(r[0]) for r in rows or []]
    if answers == ["ok"]:
        return passed(name, f"{path}: quick_check ok")
    return failed(name, f"{path}: quick_check says {'; '.join(answers[:3])}", "database-corrupt")


def assess_pending(copies: Sequence[str]) -> Check:
    name = "pending re-logs"
    if not copies:
        return passed(name, "no local copy waits to be logged")
    shown = ", ".join(copies[:3]) + (" ..." if len(copies) > 3 else "")
    return warned(
        name,
        f"{len(copies)} run(s) kept locally after logging failed: {shown}; "
        f"log each with 'make relog DIR=...'",
        "submit-failed-at-logging",
    )


# --- MLflow's Host-header protection, pure -------------------------------------------------

# MLflow 3.5 added a security middleware (mlflow/server/fastapi_security.py, security_utils.py):
# a request whose Host header is not in --allowed-hosts (MLFLOW_SERVER_ALLOWED_HOSTS) gets 403
# "Invalid Host header", /health and /version excepted. The CLI turns --allowed-hosts and
# --disable-security-middleware (or its variable) into the server's environment.
HOST_CHECK = "host-header protection"
HOST_CHECK_SINCE = (3, 5)
FOREIGN_HOST = "rebind.invalid"  # .invalid never resolves (RFC 2606): no allowed list names it
HOST_PROBE_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"  # guarded, read-only
INVALID_HOST = "Invalid Host header"
SERVICE_HOST = f"{hc.MLFLOW}:5000"  # how spark-submit reaches the server in the docker stack
ALLOWED_HOSTS_ENV = "MLFLOW_SERVER_ALLOWED_HOSTS"
DISABLE_ENV = "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE"
ALLOWED_HOSTS_ARG = "--allowed-hosts"
DISABLE_ARG = "--disable-security-middleware"
# What click (MLflow's CLI) reads as true when a flag comes from its environment variable.
TRUTHY = frozenset({"1", "true", "t", "yes", "y", "on"})
# MLflow's list when none is set (security_utils.get_default_allowed_hosts).
MLFLOW_DEFAULT_HOSTS = (
    *("localhost", "127.0.0.1", "[::1]", "0.0.0.0"),
    *("localhost:*", "127.0.0.1:*", "[[]::1]:*", "0.0.0.0:*"),
    *("192.168.*", "10.*", *(f"172.{i}.*" for i in range(16, 32)), "fc00:*", "fd00:*"),
)
_SHELL_VAR = re.compile(r"^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))$")
_SHELL_COMMENT = re.compile(r"(^|\s)#.*$", re.M)


@dataclass(frozen=True)
class HostConfig:
    """How the server was started: what disables the middleware (None: nothing) and the
    allowed hosts (None: MLflow's default) with where they come from."""

    disabled_by: str | None
    allowed: tuple[str, ...] | None
    source: str = ""  # --allowed-hosts or MLFLOW_SERVER_ALLOWED_HOSTS

    def describe(self) -> str:
        if self.allowed is None:
            return "MLflow's default (localhost and private IPs)"
        return f"{','.join(self.allowed)} ({self.source})"


def command_words(argv: Sequence[str]) -> list[str]:
    """argv, each argument that is a script (`sh -c SCRIPT`, as our compose file does) followed
    by the words of that script, without its comments."""
    words = []
    for arg in argv:
        words.append(arg)
        if any(ch.isspace() for ch in arg):
            text = _SHELL_COMMENT.sub("", arg)
            try:
                words += shlex.split(text)
            except ValueError:  # unbalanced quotes: plain words are still better than nothing
                words += text.split()
    return words


def parse_host_config(env: Mapping[str, str], argv: Sequence[str]) -> HostConfig:
    """The server's settings as MLflow's CLI reads them: an argument beats the variable (the
    last argument wins); an empty list means MLflow's default."""
    words = command_words(argv)
    disabled_by, arg_hosts = None, None
    for i, word in enumerate(words):
        if word == DISABLE_ARG:
            disabled_by = DISABLE_ARG
        elif word == ALLOWED_HOSTS_ARG and i + 1 < len(words):
            arg_hosts = words[i + 1]
        elif word.startswith(ALLOWED_HOSTS_ARG + "="):
            arg_hosts = word.partition("=")[2]
    flag = env.get(DISABLE_ENV, "")
    if disabled_by is None and flag.strip().lower() in TRUTHY:
        disabled_by = f"{DISABLE_ENV}={flag}"
    if arg_hosts is not None and (var := _SHELL_VAR.match(arg_hosts)):
        arg_hosts = env.get(var.group(1) or var.group(2), "")  # `--allowed-hosts "$HOSTS"`
    if arg_hosts:
        value, source = arg_hosts, ALLOWED_HOSTS_ARG
    elif env.get(ALLOWED_HOSTS_ENV):
        value, source = env[ALLOWED_HOSTS_ENV], ALLOWED_HOSTS_ENV
    else:
        return HostConfig(disabled_by, None)
    return HostConfig(disabled_by, tuple(h.strip() for h in value.split(",")), source)


def host_admitted(allowed: Sequence[str], host: str) -> bool:
    """MLflow's rule (security_utils.is_allowed_host_header): a pattern with '*' is matched with
    fnmatch, any other entry must be equal; a bare '*' admits everything."""
    if not host:
        return False
    if "*" in allowed:
        return True
    return any(fnmatch.fnmatch(host, p) if "*" in p else host == p for p in allowed)


def host_config_problems(config: HostConfig, runtime: str, clients: Mapping[str, str]) -> list[str]:
    """What is wrong with the configuration whatever the server's version: the middleware
    disabled, '*' among the allowed hosts, a Host header of our own clients not admitted.
    clients: Host header -> who sends it."""
    if runtime == "docker":
        setting = "MLFLOW_ALLOWED_HOSTS (docker/docker-compose.yml)"
        restart = "'make rebuild RUNTIME=docker'"
    else:
        setting, restart = f"{ALLOWED_HOSTS_ENV} (in the environment of make)", "'make rebuild'"
    problems = []
    if config.disabled_by:
        problems.append(
            f"{config.disabled_by} disables the security middleware (Host check and CORS): "
            f"remove it, then {restart}"
        )
    allowed = config.allowed if config.allowed is not None else MLFLOW_DEFAULT_HOSTS
    if config.allowed is not None and "*" in config.allowed:
        problems.append(
            f"allowed hosts {config.describe()} contain '*', which admits any Host: list the "
            f"names clients use in {setting} instead, then {restart}"
        )
    for host, who in clients.items():
        if host_admitted(allowed, host):
            continue
        if config.allowed is None:
            found = f"no allowed-hosts list ({ALLOWED_HOSTS_ENV} unset or empty)"
        else:
            found = f"allowed hosts {config.describe()}"
        problems.append(
            f"{found}: MLflow 3.5+ answers 403 to Host: {host} ({who}); add {host} to "
            f"{setting}, then {restart}"
        )
    return problems


def assess_host_protection(
    server_version: str | None,
    env: Mapping[str, str],
    argv: Sequence[str],
    probe: hc.Fetched | None,
    runtime: str = "local",
    clients: Mapping[str, str] | None = None,
) -> Check:
    """The server's env and argv, its version (GET /version) and its answer to a request sent
    with Host: rebind.invalid. A configuration that disables the check fails with any
    version; a server that has the check (3.5+) must answer that request with 403."""
    name = HOST_CHECK
    config = parse_host_config(env, argv)
    problems = host_config_problems(config, runtime, clients or {})
    if server_version is None:
        if problems:
            return failed(name, "; ".join(problems), "host-header-protection")
        return skipped(name, "the server's version cannot be read (see health and versions)")
    if version_tuple(server_version) < HOST_CHECK_SINCE:
        predates = f"MLflow {server_version} predates the Host-header middleware (3.5)"
        if problems:
            return failed(
                name,
                f"{'; '.join(problems)} ({predates}: this bites when MLFLOW_VERSION is raised)",
                "host-header-protection",
            )
        if config.allowed is None:
            admitted = ", ".join(f"{h} ({w})" for h, w in (clients or {}).items())
            return passed(
                name,
                f"{predates}; no allowed-hosts list: MLflow's default (localhost and private "
                f"IPs) admits {admitted or 'its clients'} when it is raised",
            )
        return passed(
            name, f"{predates}; allowed hosts are set for when it is raised: {config.describe()}"
        )
    sent = f"Host: {FOREIGN_HOST}"
    if probe is not None and probe.status is not None and 200 <= probe.status < 300:
        although = "" if problems else ", although the configuration read keeps it on"
        problems.append(
            f"MLflow {server_version} answered HTTP {probe.status} to a request with {sent}: "
            f"the Host-header check is off{although}"
        )
    if problems:
        return failed(name, "; ".join(problems), "host-header-protection")
    if probe is None or probe.status is None:
        why = probe.error if probe is not None else "not sent"
        return warned(
            name,
            f"allowed hosts {config.describe()}, but the probe with {sent} failed "
            f"({why}): cannot confirm that MLflow {server_version} checks the Host header",
            "host-header-protection",
        )
    if probe.status == 403 and INVALID_HOST in probe.text:
        return passed(
            name,
            f"MLflow {server_version} answers 403 {INVALID_HOST!r} to {sent}; "
            f"allowed hosts: {config.describe()}",
        )
    return warned(
        name,
        f"MLflow {server_version} answered HTTP {probe.status} (not 403 {INVALID_HOST!r}) to "
        f"{sent}: cannot tell whether it checks the Host header",
        "host-header-protection",
    )


# --- docker, pure --------------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    container_port: str  # e.g. 5000/tcp
    host_ip: str
    host_port: int


def parse_docker_port(text: str) -> list[Binding]:
    """`docker port CONTAINER` lines: '5000/tcp -> 127.0.0.1:5555', '8080/tcp -> [::]:8080',
    older engines '8080/tcp -> :::8080'."""
    found = []
    for line in text.splitlines():
        left, sep, right = line.strip().partition(" -> ")
        if not sep:
            continue
        host, _, port = right.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        try:
            found.append(Binding(left.strip(), host, int(port)))
        except ValueError:
            continue
    return found


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def assess_published(bindings: Mapping[str, list[Binding]], bind_host: str) -> Check:
    """Every published port on loopback, unless BIND_HOST asked for that address."""
    name = "published ports"
    if not any(bindings.values()):
        return skipped(name, "no published port (no container running)")
    wide, asked = [], []
    for service, found in sorted(bindings.items()):
        for b in found:
            if is_loopback(b.host_ip):
                continue
            text = f"{service} {b.container_port} on {b.host_ip}:{b.host_port}"
            (asked if b.host_ip == bind_host else wide).append(text)
    if wide:
        return failed(name, "published beyond loopback: " + ", ".join(wide), "ports-not-loopback")
    count = sum(len(v) for v in bindings.values())
    if asked:
        return warned(
            name,
            f"published on BIND_HOST={bind_host} as asked, reachable from other hosts: "
            + ", ".join(asked),
            "ports-not-loopback",
        )
    return passed(name, f"{count} port(s), all on loopback")


def assess_container(service: str, group: Sequence[vs.Container]) -> Check:
    name = f"container: {service}"
    anchor = "worker-lost" if service.startswith("spark-worker-") else "containers-not-up"
    if not group:
        return failed(name, "no container; start the stack with 'make up RUNTIME=docker'", anchor)
    c = group[0]
    if service == "init":
        if c.state == "exited" and c.exit_code == 0:
            return passed(name, "ran and exited 0 (the shared folder is owned by the Spark user)")
        if c.running:
            return passed(name, "running")
        return failed(
            name,
            f"{c.state} (exit {c.exit_code}): the shared folder may not be writable; "
            "'make logs RUNTIME=docker C=init'",
            "shared-folder-not-writable",
        )
    if not c.running:
        return failed(
            name,
            f"container {c.name} is {c.state} (exit {c.exit_code}); "
            f"'make logs RUNTIME=docker C={service}' shows why",
            anchor,
        )
    if c.health == "unhealthy":
        return failed(name, f"{c.name} running but Docker's healthcheck says unhealthy", anchor)
    if c.health == "starting":
        return failed(name, f"{c.name} still starting (healthcheck not passed yet)", anchor)
    return passed(name, f"{c.name} running" + (f", {c.health}" if c.health else ""))


def assess_stale(groups: Mapping[str, list[vs.Container]]) -> Check:
    name = "stale containers"
    twins = {s: g for s, g in groups.items() if len(g) > 1}
    if twins:
        listed = "; ".join(f"{s}: {', '.join(c.name for c in g)}" for s, g in sorted(twins.items()))
        return failed(name, f"more than one container per service ({listed})", "stale-containers")
    return passed(name, "one container per service")


def assess_mount(service: str, c: vs.Container | None, expected: str) -> Check:
    """/mlflow in this container is a bind mount of the host's data folder, read-write."""
    name = f"mount: {service}"
    if c is None:
        return skipped(name, "no container")
    mount = next((m for m in c.mounts if m.get("Destination") == vs.SHARED_MOUNT), None)
    if mount is None:
        return failed(name, f"nothing is mounted at {vs.SHARED_MOUNT}", "shared-folder-not-mounted")
    source = str(mount.get("Source", ""))
    if os.path.realpath(source) != os.path.realpath(expected):
        return failed(
            name,
            f"{vs.SHARED_MOUNT} comes from {source}, not from {expected} (MLFLOW_DATA_DIR): "
            "the container sees another folder",
            "shared-folder-not-mounted",
        )
    if mount.get("RW") is False:
        return failed(name, f"{vs.SHARED_MOUNT} is mounted read-only", "shared-folder-not-writable")
    return passed(name, f"{vs.SHARED_MOUNT} <- {source}")


PROBE_DIRS = (vs.SHARED_MOUNT, f"{vs.SHARED_MOUNT}/artifacts")
# Runs in each container as its own user: read the probe file, say who we are, try to write in
# each folder the stack writes to. Arguments: probe file path, token, folders...
SHARED_PROBE = r"""
f="$1" t="$2"
if [ -r "$f" ]; then printf 'READ %s\n' "$(cat "$f")"; else echo "READ-FAILED"; fi
echo "UID $(id -u)"
shift 2
for d in "$@"; do
  w="$d/.doctor-write-$t-$$"
  if err=$( (: >"$w") 2>&1 ); then rm -f "$w"; echo "WRITE $d ok"; else echo "WRITE $d $err"; fi
done
"""


@dataclass
class ProbeAnswer:
    content: str | None  # what it read from the probe file, None if it could not
    uid: int | None
    writes: dict[str, str]  # folder -> "ok" or the error


def parse_shared_probe(stdout: str) -> ProbeAnswer:
    content, uid, writes = None, None, {}
    for line in stdout.splitlines():
        if line.startswith("READ "):
            content = line[5:].strip()
        elif line.startswith("UID "):
            try:
                uid = int(line[4:].strip())
            except ValueError:
                uid = None
        elif line.startswith("WRITE "):
            folder, _, result = line[6:].partition(" ")
            result = result.strip()
            # "sh: 8: cannot create /mlflow/x/.doctor-write-...: Permission denied" -> the reason
            writes[folder] = result if result == "ok" else result.rsplit(": ", 1)[-1]
    return ProbeAnswer(content, uid, writes)


def assess_shared_same(token: str, seen: Mapping[str, str | None], writer: str) -> Check:
    """seen: where -> what it read from the probe file written by `writer`."""
    name = "shared folder: same everywhere"
    differ = sorted(where for where, content in seen.items() if content != token)
    if differ:
        return failed(
            name,
            f"a file written by {writer} in {vs.SHARED_MOUNT} is not seen by: {', '.join(differ)}",
            "shared-folder-not-mounted",
        )
    return passed(name, f"a file written by {writer} is seen by {', '.join(sorted(seen))}")


def assess_shared_writable(service: str, answer: ProbeAnswer, stack_uid: int) -> Check:
    name = f"writable: {service}"
    denied = {d: r for d, r in answer.writes.items() if r != "ok"}
    who = f"uid {answer.uid}" if answer.uid is not None else "its user"
    if not answer.writes:
        return failed(name, "the write probe gave no answer", "shared-folder-not-writable")
    if denied:
        detail = "; ".join(f"{d}: {r}" for d, r in sorted(denied.items()))
        return failed(name, f"{who} cannot write ({detail})", "shared-folder-not-writable")
    if answer.uid is not None and answer.uid != stack_uid:
        return warned(
            name,
            f"writable, but the container runs as uid {answer.uid}, not STACK_UID={stack_uid}",
            "shared-folder-not-writable",
        )
    return passed(name, f"{', '.join(sorted(answer.writes))} writable by {who}")


def assess_dfs_tmp(service: str, env: Mapping[str, str]) -> Check:
    name = f"MLFLOW_DFS_TMP: {service}"
    value = env.get("MLFLOW_DFS_TMP")
    if not value:
        return failed(
            name,
            "unset: mlflow.spark uses /tmp/mlflow of each container and saves models without data",
            "model-without-data",
        )
    if not (value == vs.SHARED_MOUNT or value.startswith(vs.SHARED_MOUNT + "/")):
        return failed(
            name, f"{value} is not on the shared mount {vs.SHARED_MOUNT}", "model-without-data"
        )
    return passed(name, value)


def assess_submit_python(row: vs.Row, pinned: str) -> Check:
    name = "python in spark-submit"
    if "mlflow" in row.errors:
        return skipped(name, f"not probed: {row.errors['mlflow']}")
    exe = row.info.get("executable") or "python"
    if "mlflow" in row.missing:
        return failed(
            name,
            f"`python` is {exe} (Python {row.info.get('python')}) and cannot import mlflow "
            f"({row.missing['mlflow']})",
            "mlflow-missing-in-image",
        )
    found = row.versions["mlflow"]
    if found != pinned:
        return failed(
            name, f"`python` is {exe} with MLflow {found}, pinned {pinned}", "version-mismatch"
        )
    return passed(name, f"`python` is {exe} (Python {row.info.get('python')}) with MLflow {found}")


def summary_line(checks: Sequence[Check]) -> str:
    fails = [c.name for c in checks if c.status == FAIL]
    counts = {s: sum(1 for c in checks if c.status == s) for s in (PASS, WARN, SKIP)}
    tail = f"{counts[PASS]} passed, {counts[WARN]} warning(s), {counts[SKIP]} skipped"
    if fails:
        return f"doctor: {len(fails)} FAILED ({', '.join(fails)}); {tail}"
    return f"doctor: all checks passed; {tail}"


NAME_WIDTH = 30
LABELS = {PASS: "pass", FAIL: "FAIL", WARN: "warn", SKIP: "skip"}


def format_check(c: Check, width: int = NAME_WIDTH) -> list[str]:
    """One line per check; a failure or warning gets a second line: its runbook section."""
    lines = [f"  {LABELS[c.status]:<4}  {c.name:<{width}}  {c.detail}"]
    if c.status in (FAIL, WARN) and c.runbook:
        lines.append(f"  {'':<4}  {'':<{width}}  -> {c.runbook}")
    return lines


def report_lines(checks: Sequence[Check]) -> list[str]:
    lines = [line for c in checks for line in format_check(c)]
    return lines + [summary_line(checks)]


def report_json(checks: Sequence[Check], runtime: str) -> dict:
    return {
        "runtime": runtime,
        "ok": not any(c.status == FAIL for c in checks),
        "failed": [c.name for c in checks if c.status == FAIL],
        "checks": [c.to_json() for c in checks],
    }


def env_float(values: Mapping[str, str], key: str, default: float) -> float:
    raw = values.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise vs.BadInput(f"{key}={raw!r} is not a number of GB (example: {key}={default:g})")
    return value


# --------------------------------------------------------------------------------------------
# Fetching (I/O): each returns plain values for the pure checks
# --------------------------------------------------------------------------------------------


def python_version_of(python: str, timeout: float = 20) -> tuple[str | None, str]:
    proc = vs.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], timeout)
    return (proc.stdout.strip(), "") if proc.ok else (None, proc.why())


def check_python(settings: vs.Settings) -> Check:
    python = str(settings.python_bin)
    if not os.access(python, os.X_OK):  # before `make setup`: the Python that would make it
        python = settings.get("PYTHON") or os.environ.get("PYTHON") or "python3"
    found, error = python_version_of(python)
    return assess_python(
        found, settings.rel(Path(python)), settings.get("PYTHON_MIN", "3.10"), error
    )


def check_java(settings: vs.Settings) -> Check:
    java_home = os.environ.get("JAVA_HOME")
    java = os.environ.get("JAVA") or (f"{java_home}/bin/java" if java_home else "java")
    proc = vs.run([java, "-version"], 20)
    output = proc.stderr + proc.stdout if proc.returncode is not None else None
    return assess_java(output, java, settings.get("JAVA_MIN", "17"), proc.why())


def check_venv(settings: vs.Settings) -> Check:
    where = settings.rel(settings.venv)
    exists = os.access(settings.python_bin, os.X_OK)
    stamp_path = settings.venv / ".pins.sha256"
    stamp = stamp_path.read_text() if stamp_path.is_file() else None
    want = None
    python = os.environ.get("PYTHON") or "python3"  # scripts/setup.sh's $PYTHON
    proc = vs.run([python, "-c", "import sys; print(sys.version)"], 20)
    try:
        if proc.ok:
            want = pins_fingerprint(
                (settings.root / "versions.env").read_text(),
                (settings.root / "requirements.txt").read_text(),
                (settings.root / "constraints.txt").read_text(),
                proc.stdout,
            )
    except OSError:
        want = None
    return assess_venv(where, exists, stamp, want)


def check_local_artifact_cli(settings: vs.Settings) -> Check:
    # As scripts/submit.sh sets it for the Java client.
    exe = str(settings.python_bin)
    env = vs.quiet_env(os.environ) | {"MLFLOW_PYTHON_EXECUTABLE": exe}
    proc = vs.run([exe, "-m", "mlflow.store.artifact.cli", "--help"], 90, env)
    command = f"MLFLOW_PYTHON_EXECUTABLE={settings.rel(Path(exe))} -m mlflow.store.artifact.cli"
    return assess_artifact_cli("artifact CLI", command, proc)


def wanted_components(workers: int) -> list[str]:
    return [hc.MLFLOW, hc.MASTER] + [hc.worker_name(i) for i in range(1, workers + 1)]


def read_environ(pid: int, proc_root: Path = Path("/proc")) -> dict[str, str] | None:
    """The environment a process started with (/proc/PID/environ), None if it cannot be read."""
    try:
        raw = (proc_root / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    env: dict[str, str] = {}
    for var in raw.split(b"\0"):
        key, sep, value = var.partition(b"=")
        if sep:
            env.setdefault(key.decode(errors="replace"), value.decode(errors="replace"))
    return env


def read_cmdline(pid: int, proc_root: Path = Path("/proc")) -> list[str] | None:
    try:
        raw = (proc_root / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]]


def read_environ_tag(pid: int) -> str | None:
    """The STACK_COMPONENT tag scripts/local/lib.sh puts in every process it starts."""
    return (read_environ(pid) or {}).get("STACK_COMPONENT")


def check_processes(settings: vs.Settings) -> tuple[list[Check], bool]:
    """One check per wanted component; the bool says whether any of them runs."""
    checks, any_running = [], False
    work_dir = str(settings.work_dir)
    for component in wanted_components(settings.workers):
        path = settings.run_dir / f"{component}.pid"
        pid, alive = None, False
        try:
            text = path.read_text().strip()
            pid = int(text) if text.isdigit() else -1
        except OSError:
            pid = None
        if pid is not None and pid > 0:
            alive = read_environ_tag(pid) == f"{work_dir}:{component}"
        any_running = any_running or alive
        checks.append(assess_process(component, settings.rel(path), pid, alive))
    return checks, any_running


def port_specs(settings: vs.Settings) -> list[tuple[int, str]]:
    specs = [
        (settings.int("MLFLOW_PORT", 5555), "MLFLOW_PORT"),
        (settings.int("SPARK_MASTER_PORT", 7077), "SPARK_MASTER_PORT"),
        (settings.int("SPARK_MASTER_UI_PORT", 8080), "SPARK_MASTER_UI_PORT"),
    ]
    base = settings.int("SPARK_WORKER_UI_BASE_PORT", 8081)
    specs += [(base + i, "SPARK_WORKER_UI_BASE_PORT") for i in range(settings.workers)]
    return specs


def check_ports(settings: vs.Settings) -> list[Check]:
    host = settings.get("BIND_HOST") or hc.LOOPBACK
    checks = []
    sockets = None
    for port, var in port_specs(settings):
        state = hc.bind_check(host, port)
        holders: dict[int, hc.Holder] = {}
        tags: dict[int, str | None] = {}
        if state != "free":
            if sockets is None:
                sockets = hc.read_listen_sockets()
            host_ip = socket.getaddrinfo(host, None)[0][4][0]
            holders = hc.socket_holders(hc.listening_inodes(sockets, port, host_ip))
            tags = {pid: read_environ_tag(pid) for pid in holders}
        ephemeral = hc.read_ephemeral_range() if state != "free" else None
        checks.append(
            assess_port(port, var, state, holders, tags, str(settings.work_dir), ephemeral)
        )
    return checks


def health_targets(settings: vs.Settings, timeout: float) -> hc.Targets:
    return hc.Targets(
        mlflow_url=settings.mlflow_url(),
        master_url=settings.master_ui_url(),
        worker_urls=tuple(settings.worker_ui_urls()),
        expected_workers=settings.workers,
        expected_version=None,  # compared by the versions check, with its own runbook section
        timeout=timeout,
    )


def check_health(settings: vs.Settings, timeout: float) -> list[Check]:
    return [assess_health(c) for c in hc.check_stack(health_targets(settings, timeout))]


def url_host(url: str) -> str:
    """The Host header a client of this URL sends: host[:port], without user info."""
    return urlsplit(url).netloc.rpartition("@")[2]


def server_version_of(rows: Sequence[vs.Row]) -> str | None:
    """The server's version as GET /version said it (exempt from the Host check)."""
    row = next((r for r in rows if r.component == hc.MLFLOW), None)
    return row.versions.get("mlflow") if row else None


def probe_foreign_host(mlflow_url: str, timeout: float) -> hc.Fetched:
    """One read-only request with a Host header that no allowed list names."""
    import requests  # lazily, as in healthcheck.fetch

    url = mlflow_url.rstrip("/") + HOST_PROBE_PATH
    try:
        resp = requests.get(
            url,
            headers={"Host": FOREIGN_HOST},
            timeout=timeout,
            proxies=hc._NO_PROXY,  # the stack itself, never a proxy from the environment
            allow_redirects=False,
        )
    except requests.exceptions.Timeout:
        return hc.Fetched(url, error=f"no answer within {timeout:g}s")
    except requests.exceptions.ConnectionError as exc:
        return hc.Fetched(url, error=hc._connection_reason(exc))
    except requests.exceptions.RequestException as exc:
        return hc.Fetched(url, error=f"request failed ({type(exc).__name__})")
    return hc.Fetched(url, status=resp.status_code, text=resp.text[:500])


def check_local_host_protection(
    settings: vs.Settings, rows: Sequence[vs.Row], timeout: float
) -> Check:
    """The env and argv of our mlflow-server process, and the probe."""
    path = settings.run_dir / f"{hc.MLFLOW}.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return skipped(HOST_CHECK, f"{hc.MLFLOW} not running (no PID in {settings.rel(path)})")
    env = read_environ(pid)
    if env is None or env.get("STACK_COMPONENT") != f"{settings.work_dir}:{hc.MLFLOW}":
        return skipped(HOST_CHECK, f"{hc.MLFLOW} not running (pid {pid} is not ours)")
    url = settings.mlflow_url()
    return assess_host_protection(
        server_version_of(rows),
        env,
        read_cmdline(pid) or [],
        probe_foreign_host(url, timeout),
        "local",
        {url_host(url): "MLFLOW_URL"},
    )


def check_host_writable(settings: vs.Settings) -> Check:
    name = "work/mlflow writable"
    path = settings.data_dir
    target, later = path, False
    while not target.exists() and target != target.parent:
        target, later = target.parent, True
    try:
        fd, tmp = tempfile.mkstemp(prefix=".doctor-", dir=target)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return assess_writable(name, settings.rel(path), exc.strerror or str(exc), later)
    return assess_writable(name, settings.rel(path), None, later)


def existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(name: str, path: Path, label: str, min_gb: float, warn_gb: float) -> Check:
    try:
        free = shutil.disk_usage(existing_parent(path)).free
    except OSError as exc:
        return failed(name, f"cannot stat {label}: {exc.strerror}", "disk-full")
    return assess_disk(name, label, free, min_gb, warn_gb)


def open_by(path: Path, proc_root: Path = Path("/proc")) -> str:
    """Processes holding the file open, for the 'database is locked' message."""
    target = os.path.realpath(path)
    found = []
    for proc in hc.procs_with_fd(lambda link: link == target, proc_root):
        try:
            cmd = hc.format_cmdline((proc / "cmdline").read_bytes(), 40)
        except OSError:
            cmd = "?"
        found.append(f"pid {proc.name} ({cmd})")
    return ", ".join(found[:4])


def check_sqlite(settings: vs.Settings, busy_timeout: float) -> Check:
    path = settings.data_dir / "mlflow.db"
    label = settings.rel(path)
    if not path.is_file():
        return skipped("sqlite", f"no database at {label} yet (the server creates it)")
    # Read-only, with a short busy timeout: the doctor must never write nor hang on a lock.
    uri = f"file:{quote(str(path))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=busy_timeout)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        message = str(exc)
        holders = open_by(path) if "locked" in message else ""
        return assess_sqlite(label, None, message, holders)
    return assess_sqlite(label, rows, None)


def check_pending(settings: vs.Settings) -> Check:
    output = Path(settings.get("OUTPUT_DIR") or settings.work_dir / "output")
    copies = sorted(settings.rel(p.parent) for p in output.glob("*/*/pending.json"))
    return assess_pending(copies)


def host_checks(settings: vs.Settings, min_gb: float, warn_gb: float, busy: float) -> list[Check]:
    return [
        check_host_writable(settings),
        check_disk(
            "disk: work dir", settings.work_dir, settings.rel(settings.work_dir), min_gb, warn_gb
        ),
        check_sqlite(settings, busy),
        check_pending(settings),
    ]


# --- docker ---------------------------------------------------------------------------------


def compose_candidates(explicit: str) -> list[tuple[list[str], dict[str, str] | None]]:
    if explicit:
        return [(shlex.split(explicit), None)]
    toolkit = (
        Path(os.environ.get("DOCKER_TOOLKIT_DIR", "/var/lib/docker-toolkit")) / "docker-config"
    )
    return [
        (["docker", "compose"], None),
        (["docker", "compose"], dict(os.environ) | {"DOCKER_CONFIG": str(toolkit)}),
        (["docker-compose"], None),
    ]


def check_compose(explicit: str) -> Check:
    name = "compose"
    tried = []
    for argv, env in compose_candidates(explicit):
        proc = vs.run([*argv, "version", "--short"], 20, env)
        if proc.ok and proc.stdout.strip():
            return passed(name, f"'{' '.join(argv)}' version {proc.stdout.strip()}")
        tried.append(f"'{' '.join(argv)}': {proc.why()}")
    return failed(name, "no compose CLI: " + "; ".join(tried), "docker-engine")


def docker_service_names(settings: vs.Settings) -> list[str]:
    return ["init", hc.MLFLOW, hc.MASTER] + vs.docker_services(settings)


def mounted_services(settings: vs.Settings) -> list[str]:
    return [hc.MLFLOW] + vs.docker_services(settings)


def check_shared_folder(
    settings: vs.Settings, groups: Mapping[str, list[vs.Container]], stack_uid: int
) -> list[Check]:
    """Write a probe file from spark-submit, read it in every other container and on the host;
    each container also tries to write where the stack writes, as its own (Spark) user."""
    running = {
        s: groups[s][0]
        for s in mounted_services(settings)
        if groups.get(s) and groups[s][0].running
    }
    if not running:
        return [skipped("shared folder: same everywhere", "no container running")]
    writer = "spark-submit" if "spark-submit" in running else next(iter(running))
    token = uuid.uuid4().hex
    probe = f".doctor-probe-{token}"
    wrote = vs.run(
        vs.exec_argv(
            running[writer], "sh", "-c", 'printf %s "$1" >"/mlflow/$2"', "sh", token, probe
        ),
        30,
    )
    checks: list[Check] = []
    try:
        if not wrote.ok:
            checks.append(
                failed(
                    "shared folder: same everywhere",
                    f"{writer} cannot write {vs.SHARED_MOUNT}/{probe} ({wrote.why()})",
                    "shared-folder-not-writable",
                )
            )
        argv_of = {
            s: vs.exec_argv(
                c, "sh", "-c", SHARED_PROBE, "sh", f"{vs.SHARED_MOUNT}/{probe}", token, *PROBE_DIRS
            )
            for s, c in running.items()
        }
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda a: vs.run(a, 30), argv_of.values())
            procs = dict(zip(argv_of, results, strict=True))
        answers = {s: parse_shared_probe(p.stdout) for s, p in procs.items()}
        if wrote.ok:
            seen: dict[str, str | None] = {s: a.content for s, a in answers.items() if s != writer}
            try:
                seen["host"] = (settings.data_dir / probe).read_text()
            except OSError:
                seen["host"] = None
            checks.append(assess_shared_same(token, seen, writer))
        for service, answer in answers.items():
            if not answer.writes and not procs[service].ok:
                checks.append(
                    failed(
                        f"writable: {service}",
                        f"probe failed ({procs[service].why()})",
                        "shared-folder-not-writable",
                    )
                )
            else:
                checks.append(assess_shared_writable(service, answer, stack_uid))
    finally:
        removed = vs.run(vs.exec_argv(running[writer], "rm", "-f", f"/mlflow/{probe}"), 30)
        if not removed.ok:
            (settings.data_dir / probe).unlink(missing_ok=True)
    return checks


def check_submit_python(
    settings: vs.Settings, groups: Mapping[str, list[vs.Container]], rows: Sequence[vs.Row]
) -> list[Check]:
    row = next((r for r in rows if r.component == "spark-submit"), None)
    checks = [assess_submit_python(row, settings.pinned("mlflow"))] if row else []
    group = groups.get("spark-submit") or []
    if not group or not group[0].running:
        checks.append(skipped("artifact CLI in spark-submit", "spark-submit not running"))
        return checks
    exe = group[0].env.get("MLFLOW_PYTHON_EXECUTABLE") or "python"
    proc = vs.run(vs.exec_argv(group[0], exe, "-m", "mlflow.store.artifact.cli", "--help"), 90)
    command = f"{exe} -m mlflow.store.artifact.cli"
    if "MLFLOW_PYTHON_EXECUTABLE" not in group[0].env:
        command += " (MLFLOW_PYTHON_EXECUTABLE unset: the Java client runs plain python)"
    checks.append(assess_artifact_cli("artifact CLI in spark-submit", command, proc))
    return checks


def check_published(settings: vs.Settings, groups: Mapping[str, list[vs.Container]]) -> Check:
    running = [(s, g[0]) for s, g in groups.items() if g and g[0].running]
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda sc: vs.run(["docker", "port", sc[1].id], 20), running))
    bindings = {s: parse_docker_port(p.stdout) for (s, _), p in zip(running, procs, strict=True)}
    return assess_published(bindings, settings.get("BIND_HOST") or hc.LOOPBACK)


def parse_config_command(text: str) -> list[str] | None:
    """`docker inspect --format '{{json .Config}}'` -> Entrypoint + Cmd (None if unreadable)."""
    try:
        config = json.loads(text)
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    parts = [config.get("Entrypoint") or [], config.get("Cmd") or []]
    return [str(arg) for part in parts for arg in ([part] if isinstance(part, str) else part)]


def check_docker_host_protection(
    settings: vs.Settings,
    groups: Mapping[str, list[vs.Container]],
    rows: Sequence[vs.Row],
    timeout: float,
) -> Check:
    """The mlflow-server container's env and command, and the probe on its published port."""
    group = groups.get(hc.MLFLOW) or []
    if not group or not group[0].running:
        return skipped(HOST_CHECK, f"{hc.MLFLOW} container not running")
    container = group[0]
    proc = vs.run(["docker", "inspect", "--format", "{{json .Config}}", container.id], 20)
    argv = parse_config_command(proc.stdout) if proc.ok else None
    if argv is None:
        return skipped(HOST_CHECK, f"cannot read the command of {container.name} ({proc.why()})")
    url = settings.mlflow_url()
    return assess_host_protection(
        server_version_of(rows),
        container.env,
        argv,
        probe_foreign_host(url, timeout),
        "docker",
        {SERVICE_HOST: "the name spark-submit uses", url_host(url): "MLFLOW_URL"},
    )


def docker_root_disk(min_gb: float, warn_gb: float) -> Check | None:
    proc = vs.run(["docker", "info", "--format", "{{.DockerRootDir}}"], 20)
    root = proc.stdout.strip()
    if not proc.ok or not root:
        return None
    return check_disk("disk: docker data root", Path(root), root, min_gb, warn_gb)


# --------------------------------------------------------------------------------------------
# The two runs, in order
# --------------------------------------------------------------------------------------------


# What the docker run skips when it cannot reach the engine or finds no container.
DOCKER_CHECKS = (
    "compose",
    "containers",
    "health",
    "shared folder",
    "python in spark-submit",
    "versions",
    "published ports",
    HOST_CHECK,
)


@dataclass
class Options:
    timeout: float
    min_gb: float
    warn_gb: float
    busy_timeout: float
    compose: str


def run_local(settings: vs.Settings, opts: Options, emit: Callable[[Check], None]) -> None:
    pinned = {p: settings.pinned(p) for p in vs.PACKAGES}
    for check in (check_python, check_java):
        emit(check(settings))
    emit(assess_versions_env(settings))
    emit(check_venv(settings))
    rows, _ = vs.gather(settings, timeout=opts.timeout)
    venv_row = next(r for r in rows if r.component == "local venv")
    emit(assess_mlflow_import(venv_row, pinned["mlflow"]))
    if "mlflow" in venv_row.versions:
        emit(check_local_artifact_cli(settings))
    else:
        emit(skipped("artifact CLI", "mlflow not importable in the venv (see above)"))
    procs, any_running = check_processes(settings)
    if not any_running:
        emit(
            failed(
                "stack",
                f"the local stack is not running (no live process of ours in "
                f"{settings.rel(settings.run_dir)}); start it with 'make up'",
                "stack-not-running",
            )
        )
    else:
        for check in procs:
            emit(check)
    for check in check_ports(settings):
        emit(check)
    if any_running:
        for check in check_health(settings, opts.timeout):
            emit(check)
        emit(assess_versions(vs.compare(rows, pinned), pinned, len(rows)))
        emit(check_local_host_protection(settings, rows, opts.timeout))
    else:
        emit(skipped("health", "the stack is not running"))
        emit(skipped("versions", "the stack is not running"))
        emit(skipped(HOST_CHECK, "the stack is not running"))
    for check in host_checks(settings, opts.min_gb, opts.warn_gb, opts.busy_timeout):
        emit(check)


def run_docker(settings: vs.Settings, opts: Options, emit: Callable[[Check], None]) -> None:
    pinned = {p: settings.pinned(p) for p in vs.PACKAGES}
    emit(assess_versions_env(settings))
    emit(check_venv(settings))  # the host-side tools (health, artifacts) run in it
    ok, why = vs.engine_answers(opts.timeout + 5)

    def host_side() -> None:
        for check in host_checks(settings, opts.min_gb, opts.warn_gb, opts.busy_timeout):
            emit(check)

    if not ok:
        emit(
            failed(
                "docker engine",
                f"no Docker engine answers ({why}); start one (scripts/docker-engine.sh start) "
                "or use RUNTIME=local",
                "docker-engine",
            )
        )
        for name in DOCKER_CHECKS:
            emit(skipped(name, "no Docker engine answers"))
        host_side()
        return
    emit(passed("docker engine", f"Docker {why} answers"))
    emit(check_compose(opts.compose))
    found, problem = vs.project_containers(settings.project, 30)
    groups = vs.by_service(found)
    if problem or not any(g[0].running for g in groups.values()):
        what = problem or (
            f"no container of compose project {settings.project} is running; "
            "start the stack with 'make up RUNTIME=docker'"
        )
        emit(failed("stack", what, "docker-engine" if problem else "stack-not-running"))
        for name in DOCKER_CHECKS[2:]:
            emit(skipped(name, "no container running"))
        host_side()
        return
    emit(assess_stale(groups))
    for service in docker_service_names(settings):
        emit(assess_container(service, groups.get(service) or []))
    for check in check_health(settings, opts.timeout):
        emit(check)
    expected = str(settings.data_dir)
    for service in mounted_services(settings):
        group = groups.get(service) or []
        emit(assess_mount(service, group[0] if group else None, expected))
    for check in check_shared_folder(settings, groups, settings.int("STACK_UID", 185)):
        emit(check)
    for service in vs.docker_services(settings):
        group = groups.get(service) or []
        if group:
            emit(assess_dfs_tmp(service, group[0].env))
    rows, _ = vs.gather(settings, timeout=opts.timeout, containers=groups)
    for check in check_submit_python(settings, groups, rows):
        emit(check)
    emit(assess_versions(vs.compare(rows, pinned), pinned, len(rows)))
    emit(check_published(settings, groups))
    emit(check_docker_host_protection(settings, groups, rows, opts.timeout))
    host_side()
    disk = docker_root_disk(opts.min_gb, opts.warn_gb)
    if disk:
        emit(disk)


@click.command(help=__doc__.split("\n\n")[0] + "\n\n" + vs.exit_codes_paragraph(__doc__))
@vs.stack_options("local or docker.")
@click.option(
    "--compose",
    envvar="DOCTOR_COMPOSE",
    default="",
    help="Compose command (default: docker compose, then docker-compose).",
)
def main(runtime: str, as_json: bool, compose: str, request_timeout: float) -> None:
    try:
        settings = vs.checked_settings(runtime)
        opts = Options(
            timeout=request_timeout,
            min_gb=env_float(settings.values, "DOCTOR_MIN_FREE_GB", 2.0),
            warn_gb=env_float(settings.values, "DOCTOR_WARN_FREE_GB", 5.0),
            busy_timeout=env_float(settings.values, "DOCTOR_DB_TIMEOUT", 2.0),
            compose=compose,
        )
    except vs.BadInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    checks: list[Check] = []
    started = time.monotonic()
    header = (
        f"doctor: {runtime} runtime, work dir {settings.rel(settings.work_dir)}, "
        f"MLflow {settings.mlflow_url()}"
    )
    if not as_json:
        click.echo(header)

    def emit(check: Check) -> None:
        checks.append(check)
        if not as_json:  # as it goes: a slow check should not hide the earlier ones
            click.echo("\n".join(format_check(check)))

    try:
        (run_docker if runtime == "docker" else run_local)(settings, opts, emit)
    except vs.BadInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if as_json:
        out = report_json(checks, runtime) | {"seconds": round(time.monotonic() - started, 1)}
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(summary_line(checks) + f" ({time.monotonic() - started:.1f}s)")
    sys.exit(EXIT_FAIL if any(c.status == FAIL for c in checks) else EXIT_OK)


if __name__ == "__main__":
    main()
