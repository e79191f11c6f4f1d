#!/usr/bin/env python3
"""Health checks for the stack: MLflow server, Spark master, Spark workers, and free ports.

Exit codes (all commands): 0 healthy / free, 1 unhealthy / taken / timed out, 2 bad input.

Imports only click (and requests, lazily, when it probes), never mlflow: `status` must stay fast.
Layout: pure functions parse answers and decide health (dicts and strings in, dataclasses out);
thin click commands fetch, time and print.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import click

MLFLOW = "mlflow-server"
MASTER = "spark-master"
LOOPBACK = "127.0.0.1"
# Spark's default spark.worker.timeout: the master drops a worker silent for longer than this.
WORKER_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 20
EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2

# Probe the stack directly: an HTTP(S)_PROXY from the environment would answer for the stack.
_NO_PROXY = {"http": None, "https": None}


class BadInput(Exception):
    """A user error: the CLI prints it as one line and exits 2."""


def worker_name(index: int) -> str:
    return f"spark-worker-{index}"


# --------------------------------------------------------------------------------------------
# Inputs: URLs and defaults from the environment (pure: take a mapping, return values)
# --------------------------------------------------------------------------------------------


def check_url(option: str, value: str, example: str) -> str:
    """Return the URL without a trailing slash, or raise BadInput naming the option."""
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or parts.port > 0  # .port raises on a non-numeric port
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise BadInput(f"{option} {value!r} is not a valid http(s) URL (example: {example})")
    return value.rstrip("/")


def env_int(environ: Mapping[str, str], key: str, default: int) -> int:
    raw = environ.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadInput(f"{key}={raw!r} is not a whole number (example: {key}={default})") from None


def connect_host(environ: Mapping[str, str]) -> str:
    """The host to probe, from BIND_HOST: a wildcard bind address is reached via loopback."""
    host = environ.get("BIND_HOST", "").strip() or LOOPBACK
    if host in ("0.0.0.0", "*"):
        return LOOPBACK
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def default_mlflow_url(environ: Mapping[str, str]) -> str:
    return f"http://{connect_host(environ)}:{env_int(environ, 'MLFLOW_PORT', 5555)}"


def default_master_url(environ: Mapping[str, str]) -> str:
    return f"http://{connect_host(environ)}:{env_int(environ, 'SPARK_MASTER_UI_PORT', 8080)}"


def default_worker_urls(count: int, environ: Mapping[str, str]) -> list[str]:
    """Worker N's UI listens on SPARK_WORKER_UI_BASE_PORT + N - 1 (see versions.env)."""
    host = connect_host(environ)
    base = env_int(environ, "SPARK_WORKER_UI_BASE_PORT", 8081)
    return [f"http://{host}:{base + i}" for i in range(count)]


@dataclass(frozen=True)
class Targets:
    mlflow_url: str
    master_url: str
    worker_urls: tuple[str, ...]
    expected_workers: int
    expected_version: str | None = None
    timeout: float = 2.0


# --------------------------------------------------------------------------------------------
# Fetch layer (I/O): one GET, never raises, always bounded by a timeout
# --------------------------------------------------------------------------------------------


@dataclass
class Fetched:
    url: str
    status: int | None = None  # HTTP status when the server answered
    text: str = ""
    error: str | None = None  # short reason when it did not, e.g. "connection refused"


def _connection_reason(exc: Exception) -> str:
    msg = str(exc)
    if "Connection refused" in msg or "Errno 111" in msg:
        return "connection refused"
    if "Name or service not known" in msg or "name resolution" in msg or "nodename" in msg:
        return "unknown host"
    if "Connection reset" in msg:
        return "connection reset"
    if "RemoteDisconnected" in msg or "without response" in msg:
        return "connection closed without an answer"
    if "No route to host" in msg:
        return "no route to host"
    return "connection failed"


def fetch(url: str, timeout: float) -> Fetched:
    import requests  # lazily: `ports` and --help do not pay for importing it

    try:
        resp = requests.get(url, timeout=timeout, proxies=_NO_PROXY)
    except requests.exceptions.ConnectTimeout:
        return Fetched(url, error=f"no connection within {timeout:g}s")
    except requests.exceptions.Timeout:
        # Connected but silent: typically a hung (paused, GC-stuck) process.
        return Fetched(url, error=f"no answer within {timeout:g}s")
    except requests.exceptions.ConnectionError as exc:
        return Fetched(url, error=_connection_reason(exc))
    except requests.exceptions.RequestException as exc:
        return Fetched(url, error=f"request failed ({type(exc).__name__})")
    return Fetched(url, status=resp.status_code, text=resp.text)


# --------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------


@dataclass
class Component:
    name: str
    healthy: bool
    detail: str
    error: str | None = None  # what failed and where, for people and logs
    reason: str | None = None  # short form of the error, for the progress line of `wait`
    url: str | None = None
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "healthy": self.healthy,
            "detail": self.detail,
            "error": self.error,
            "url": self.url,
            "info": self.info,
        }


def _failed(name: str, url: str, reason: str, where: str, detail: str, **info) -> Component:
    return Component(name, False, detail, f"{reason} at {where}", reason, url, dict(info))


def json_object(fetched: Fetched) -> tuple[dict | None, str | None]:
    """The JSON object of a 200 answer, or (None, short reason)."""
    if fetched.error:
        return None, fetched.error
    if fetched.status != 200:
        return None, f"HTTP {fetched.status}"
    try:
        data = json.loads(fetched.text)
    except ValueError:
        return None, "answer is not JSON"
    if not isinstance(data, dict):
        return None, "answer is not a JSON object"
    return data, None


def assess_mlflow(
    url: str, health: Fetched, version: Fetched, expected_version: str | None
) -> Component:
    if health.error:
        return _failed(MLFLOW, url, health.error, health.url, "server not answering")
    if health.status != 200 or health.text.strip() != "OK":
        reason = f"HTTP {health.status}" if health.status != 200 else "unexpected /health answer"
        return _failed(MLFLOW, url, reason, health.url, "is this an MLflow server?")
    if version.error or version.status != 200:
        reason = version.error or f"HTTP {version.status}"
        return _failed(MLFLOW, url, reason, version.url, "/health OK but /version failed")
    found = version.text.strip()
    if expected_version and found != expected_version:
        return Component(
            MLFLOW,
            False,
            f"OK, version {found}",
            f"server runs MLflow {found}, expected {expected_version} "
            "(client and server must be the same version)",
            f"version {found}, expected {expected_version}",
            url,
            {"version": found},
        )
    return Component(MLFLOW, True, f"OK, version {found}", url=url, info={"version": found})


@dataclass
class MasterView:
    """The parts of the master's /json/ that health depends on."""

    status: str
    url: str  # spark://host:port, as the master advertises itself
    workers: list[dict]
    cores: int
    coresused: int
    memory: int
    memoryused: int
    activeapps: int

    @property
    def alive(self) -> int:
        # Dead workers stay listed after a restart: count states, never the list length.
        return sum(1 for w in self.workers if w.get("state") == "ALIVE")

    def other_states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for w in self.workers:
            state = str(w.get("state", "UNKNOWN"))
            if state != "ALIVE":
                counts[state] = counts.get(state, 0) + 1
        return counts


def parse_master(data: dict) -> MasterView:
    if "status" not in data or not isinstance(data.get("workers"), list):
        raise ValueError("no status/workers in /json/")
    return MasterView(
        status=str(data["status"]),
        url=str(data.get("url", "")),
        workers=[w for w in data["workers"] if isinstance(w, dict)],
        cores=int(data.get("cores", 0)),
        coresused=int(data.get("coresused", 0)),
        memory=int(data.get("memory", 0)),
        memoryused=int(data.get("memoryused", 0)),
        activeapps=len(data.get("activeapps") or []),
    )


def assess_master(
    url: str, fetched: Fetched, expected_workers: int
) -> tuple[Component, MasterView | None]:
    where = fetched.url
    data, reason = json_object(fetched)
    if data is None:
        return _failed(MASTER, url, reason, where, "master UI not answering"), None
    try:
        view = parse_master(data)
    except (ValueError, TypeError):
        return _failed(
            MASTER, url, "not a Spark master UI", where, "unexpected /json/ answer"
        ), None
    alive = view.alive
    parts = [
        view.status,
        f"{alive}/{expected_workers} workers alive",
        f"cores {view.coresused}/{view.cores} used",
        f"memory {view.memoryused}/{view.memory} MB used",
    ]
    if view.activeapps:
        parts.append(f"{view.activeapps} app(s) running")
    others = view.other_states()
    if others:
        parts.append("also listed: " + ", ".join(f"{n} {s}" for s, n in sorted(others.items())))
    detail = ", ".join(parts)
    info = {
        "status": view.status,
        "spark_url": view.url,
        "alive_workers": alive,
        "expected_workers": expected_workers,
        "cores": view.cores,
        "coresused": view.coresused,
        "memory_mb": view.memory,
        "memoryused_mb": view.memoryused,
        "active_apps": view.activeapps,
    }
    if view.status != "ALIVE":
        reason = f"{view.status}, not ALIVE"
        return Component(MASTER, False, detail, f"{reason} at {where}", reason, url, info), view
    if alive < expected_workers:
        reason = f"{alive}/{expected_workers} workers alive"
        return Component(MASTER, False, detail, f"{reason} at {where}", reason, url, info), view
    return Component(MASTER, True, detail, url=url, info=info), view


def _address_key(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "localhost":
        host = LOOPBACK
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port


def _spark_url_key(url: str) -> tuple[str, int | None]:
    return _address_key(url.replace("spark://", "http://", 1))


def heartbeat_age_s(entry: dict, now_ms: float) -> float | None:
    """Seconds since the master last heard from this worker (clamped at 0 for clock skew)."""
    beat = entry.get("lastheartbeat")
    if not isinstance(beat, (int, float)):
        return None
    return max(0.0, (now_ms - beat) / 1000.0)


def find_master_entry(
    view: MasterView, worker_id: str | None, ui_url: str | None = None
) -> dict | None:
    """The master's entry for a worker: by id; by web UI address only when the id is unknown."""
    if worker_id:
        return next((w for w in view.workers if w.get("id") == worker_id), None)
    if not ui_url:
        return None
    key = _address_key(ui_url)
    same = [w for w in view.workers if _address_key(str(w.get("webuiaddress", ""))) == key]
    # A restarted worker leaves a DEAD entry at the same address: prefer the live, latest one.
    same.sort(key=lambda w: (w.get("state") == "ALIVE", w.get("lastheartbeat", 0)), reverse=True)
    return same[0] if same else None


def _seen_by_master(entry: dict, now_ms: float) -> str:
    age = heartbeat_age_s(entry, now_ms)
    beat = f", last heartbeat {age:.1f}s ago" if age is not None else ""
    return f"{entry.get('state', 'UNKNOWN')}{beat}"


def assess_worker(
    name: str,
    url: str,
    fetched: Fetched,
    master: MasterView | None,
    master_ui_url: str,
    now_ms: float,
    stale_after_s: float = WORKER_TIMEOUT_S,
) -> Component:
    where = fetched.url
    data, reason = json_object(fetched)
    if data is None:
        # The master keeps a killed worker ALIVE for up to 60 s: say what it still believes.
        entry = find_master_entry(master, None, url) if master else None
        detail = "worker UI not answering"
        info: dict = {}
        if entry:
            detail += f"; the master lists it as {_seen_by_master(entry, now_ms)}"
            info = {"id": entry.get("id"), "master_state": entry.get("state")}
        return _failed(name, url, reason, where, detail, **info)
    worker_id = data.get("id")
    if not worker_id or "masterurl" not in data:
        return _failed(name, url, "not a Spark worker UI", where, "unexpected /json/ answer")
    info = {
        "id": worker_id,
        "masterurl": data.get("masterurl"),
        "cores": data.get("cores"),
        "coresused": data.get("coresused"),
        "memory_mb": data.get("memory"),
        "memoryused_mb": data.get("memoryused"),
        "executors": len(data.get("executors") or []),
    }
    usage = (
        f"cores {data.get('coresused')}/{data.get('cores')} used, "
        f"memory {data.get('memoryused')}/{data.get('memory')} MB used, "
        f"{info['executors']} executor(s)"
    )
    registered_with = str(data.get("masterurl") or "")
    if not registered_with:
        reason = "not registered with a master yet"
        return Component(name, False, usage, f"{reason} ({where})", reason, url, info)
    if master is None:
        # The master's failure is reported on its own row; the worker itself answers.
        return Component(name, True, f"answers, master not checked; {usage}", url=url, info=info)
    if master.url and _spark_url_key(registered_with) != _spark_url_key(master.url):
        reason = "registered with another master"
        error = (
            f"registered with {registered_with}, but the master at {master_ui_url} "
            f"is {master.url} ({where})"
        )
        return Component(name, False, usage, error, reason, url, info)
    entry = find_master_entry(master, worker_id)
    if entry is None:
        reason = "unknown to the master"
        error = f"the master at {master_ui_url} has no worker {worker_id} ({where})"
        return Component(name, False, usage, error, reason, url, info)
    state = str(entry.get("state", "UNKNOWN"))
    age = heartbeat_age_s(entry, now_ms)
    info["master_state"] = state
    info["heartbeat_age_s"] = None if age is None else round(age, 1)
    beat = f"heartbeat {age:.1f}s ago" if age is not None else "no heartbeat time"
    detail = f"{state}, {beat}, {usage}"
    if state != "ALIVE":
        reason = f"master lists it {state}"
        return Component(name, False, detail, f"{reason} ({master_ui_url})", reason, url, info)
    if age is not None and age > stale_after_s:
        reason = f"no heartbeat for {age:.0f}s"
        error = f"{reason}: the master drops workers silent for {stale_after_s:.0f}s"
        return Component(name, False, detail, error, reason, url, info)
    return Component(name, True, detail, url=url, info=info)


def probe_urls(targets: Targets) -> dict[str, str]:
    """Every URL one status check fetches, keyed by what it is for."""
    urls = {
        "mlflow-health": f"{targets.mlflow_url}/health",
        "mlflow-version": f"{targets.mlflow_url}/version",
        # The trailing slash matters: /json answers 302.
        "master": f"{targets.master_url}/json/",
    }
    for i, url in enumerate(targets.worker_urls, start=1):
        urls[worker_name(i)] = f"{url}/json/"
    return urls


def assess_stack(targets: Targets, got: Mapping[str, Fetched], now_ms: float) -> list[Component]:
    comps = [
        assess_mlflow(
            targets.mlflow_url,
            got["mlflow-health"],
            got["mlflow-version"],
            targets.expected_version,
        )
    ]
    master_comp, view = assess_master(targets.master_url, got["master"], targets.expected_workers)
    comps.append(master_comp)
    for i, url in enumerate(targets.worker_urls, start=1):
        name = worker_name(i)
        comps.append(assess_worker(name, url, got[name], view, targets.master_url, now_ms))
    return comps


def all_healthy(comps: Iterable[Component]) -> bool:
    return all(c.healthy for c in comps)


def status_json(comps: list[Component]) -> dict:
    return {"healthy": all_healthy(comps), "components": [c.to_json() for c in comps]}


def status_table(comps: list[Component]) -> list[str]:
    width = max([len("component")] + [len(c.name) for c in comps])
    lines = [f"{'component':<{width}}  {'health':<6}  detail"]
    for c in comps:
        text = c.detail if c.healthy else f"{c.error}; {c.detail}"
        lines.append(f"{c.name:<{width}}  {'ok' if c.healthy else 'FAIL':<6}  {text}")
    bad = [c.name for c in comps if not c.healthy]
    lines.append("stack healthy" if not bad else f"stack UNHEALTHY: {', '.join(bad)}")
    return lines


def progress_line(elapsed: float, comps: list[Component]) -> str:
    parts = [f"{c.name} ok" if c.healthy else f"{c.name} not ready ({c.reason})" for c in comps]
    return f"waiting {elapsed:.1f}s: " + ", ".join(parts)


def progress_state(comps: list[Component]) -> tuple:
    """What must change for a non-TTY progress log to print a new line."""
    return tuple((c.name, c.healthy, c.reason) for c in comps)


LogSource = Callable[[str], list[str]]


def failure_report(comps: list[Component], log_source: LogSource | None) -> list[str]:
    lines = []
    for c in comps:
        if c.healthy:
            continue
        lines.append(f"  {c.name}: {c.error}")
        if log_source is not None:
            lines.extend(f"    | {line}" for line in log_source(c.name))
    return lines


# --------------------------------------------------------------------------------------------
# Log sources: a component name in, the last lines of its log out
# --------------------------------------------------------------------------------------------


def tail_lines(text: str, n: int) -> list[str]:
    return text.splitlines()[-n:] if n > 0 else []


def file_log_source(log_dir: Path, n: int = LOG_TAIL_LINES) -> LogSource:
    def read(name: str) -> list[str]:
        path = Path(log_dir) / f"{name}.log"
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return [f"(no log file at {path})"]
        except OSError as exc:
            return [f"(cannot read {path}: {exc.strerror})"]
        return [f"==> last {n} lines of {path} <=="] + tail_lines(text, n)

    return read


def command_log_source(template: str, n: int = LOG_TAIL_LINES, timeout: float = 15.0) -> LogSource:
    """For runtimes whose logs are not files, e.g. 'docker compose logs --tail 20 {name}'."""

    def run(name: str) -> list[str]:
        argv = shlex.split(template.format(name=name))
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            return [f"(log command not found: {argv[0]})"]
        except subprocess.TimeoutExpired:
            return [f"(log command still running after {timeout:g}s: {shlex.join(argv)})"]
        out = tail_lines(proc.stdout + proc.stderr, n)
        header = f"==> {shlex.join(argv)} (exit {proc.returncode}) <=="
        return [header] + (out or ["(no output)"])

    return run


def check_log_command(template: str) -> str:
    if "{name}" not in template:
        raise BadInput(
            f"--log-command {template!r} has no {{name}} placeholder "
            "(example: 'docker compose logs --tail 20 {name}')"
        )
    try:
        shlex.split(template.format(name="x"))
    except (ValueError, IndexError, KeyError) as exc:
        raise BadInput(f"--log-command {template!r} cannot be parsed ({exc})") from None
    return template


# --------------------------------------------------------------------------------------------
# Checking and waiting (I/O, with injectable fetch/clock so tests stay fast)
# --------------------------------------------------------------------------------------------


def check_stack(targets: Targets, fetcher: Callable[[str, float], Fetched] = fetch) -> list:
    urls = probe_urls(targets)
    # Concurrent: a status costs one round of the slowest probe, not the sum of them.
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        futures = {key: pool.submit(fetcher, url, targets.timeout) for key, url in urls.items()}
        got = {key: fut.result() for key, fut in futures.items()}
    # Taken after the fetches: heartbeat ages compare with a master answer this recent.
    return assess_stack(targets, got, time.time() * 1000.0)


def wait_until_healthy(
    targets: Targets,
    timeout: float,
    interval: float,
    on_progress: Callable[[float, list], None],
    check: Callable[[Targets], list] = check_stack,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, float, list]:
    start = clock()
    deadline = start + timeout
    while True:
        # Never let one slow probe carry the wait far past its deadline.
        per_request = max(0.05, min(targets.timeout, deadline - clock()))
        comps = check(replace(targets, timeout=per_request))
        elapsed = clock() - start
        if all_healthy(comps):
            return True, elapsed, comps
        on_progress(elapsed, comps)
        left = deadline - clock()
        if left <= 0:
            return False, elapsed, comps
        sleep(min(interval, left))


# --------------------------------------------------------------------------------------------
# Ports: parse /proc/net/tcp{,6} and /proc/*/fd to name the process holding a port
# --------------------------------------------------------------------------------------------

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class ListenSocket:
    ip: str
    port: int
    inode: int
    uid: int


def decode_proc_address(hex_addr: str) -> tuple[str, int]:
    """'0100007F:15B3' -> ('127.0.0.1', 5555); IPv6 too. The kernel prints each 32-bit word
    of the address in host (little-endian) order, the port in plain hex."""
    import ipaddress

    addr_hex, port_hex = hex_addr.split(":")
    raw = bytes.fromhex(addr_hex)
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.IPv4Address(raw) if len(raw) == 4 else ipaddress.IPv6Address(raw)
    return str(ip), int(port_hex, 16)


def parse_proc_net_tcp(text: str) -> list[ListenSocket]:
    """The LISTEN sockets of a /proc/net/tcp or /proc/net/tcp6 text."""
    found = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or cols[3] != TCP_LISTEN:
            continue
        try:
            ip, port = decode_proc_address(cols[1])
            found.append(ListenSocket(ip, port, int(cols[9]), int(cols[7])))
        except ValueError:
            continue
    return found


def socket_inode(link: str) -> int | None:
    """'socket:[12345]' (the target of a /proc/PID/fd link) -> 12345."""
    if link.startswith("socket:[") and link.endswith("]"):
        try:
            return int(link[8:-1])
        except ValueError:
            return None
    return None


def listening_inodes(sockets: Iterable[ListenSocket], port: int, host_ip: str) -> set[int]:
    """Inodes listening on the port; those on host_ip or a wildcard first, if any."""
    on_port = [s for s in sockets if s.port == port]
    wild = ("0.0.0.0", "::", host_ip, f"::ffff:{host_ip}")
    preferred = [s for s in on_port if s.ip in wild]
    return {s.inode for s in (preferred or on_port) if s.inode}


def format_cmdline(raw: bytes, limit: int = 60) -> str:
    """A /proc/PID/cmdline, short enough for one line and still telling what runs."""
    argv = [arg for arg in raw.decode(errors="replace").split("\0") if arg]
    if not argv:
        return ""
    argv[0] = os.path.basename(argv[0])
    if argv[0] == "java":
        # The class path and JVM flags hide what runs: keep the main class and its arguments.
        rest: list[str] = []
        skip = False
        for arg in argv[1:]:
            if skip:
                skip = False
            elif arg in ("-cp", "-classpath", "--class-path"):
                skip = True
            elif not (arg.startswith("-") and not rest):
                rest.append(arg)
        argv = ["java", *rest]
    cmd = " ".join(argv)
    if len(cmd) <= limit:
        return cmd
    cut = cmd[: limit - 4]
    return (cut[: cut.rfind(" ")] if " " in cut else cut) + " ..."  # not mid-word


def parse_proc_stat_pgid(text: str) -> int | None:
    """Process group from /proc/PID/stat: '7597 (python3) S 7343 7343 ...' -> 7343.
    The command name may hold spaces and parentheses, so split after the last ')'."""
    fields = text[text.rfind(")") + 1 :].split()
    try:
        return int(fields[2])  # state, ppid, pgrp
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Holder:
    command: str
    pgid: int | None = None


def read_listen_sockets(proc_root: Path = Path("/proc")) -> list[ListenSocket]:
    found = []
    for name in ("tcp", "tcp6"):
        try:
            found += parse_proc_net_tcp((proc_root / "net" / name).read_text())
        except OSError:
            continue
    return found


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile (e.g. the fd that listdir itself used)
        return None


def procs_with_fd(wanted: Callable[[str], bool], proc_root: Path = Path("/proc")) -> list[Path]:
    """/proc/PID folders of the processes with a file descriptor whose link target is wanted
    (e.g. 'socket:[123]' or a file path); other users' processes are passed over."""
    found = []
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        fd_dir = Path(entry.path) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # another user's process, or gone meanwhile
            continue
        if any((target := _readlink(fd_dir / fd)) is not None and wanted(target) for fd in fds):
            found.append(Path(entry.path))
    return found


def socket_holders(inodes: set[int], proc_root: Path = Path("/proc")) -> dict[int, Holder]:
    """pid -> command line and process group of each process with an fd on one of the inodes."""
    holders: dict[int, Holder] = {}
    if not inodes:
        return holders
    for proc in procs_with_fd(lambda target: socket_inode(target) in inodes, proc_root):
        try:
            cmd = format_cmdline((proc / "cmdline").read_bytes())
            cmd = cmd or (proc / "comm").read_text().strip()
            pgid = parse_proc_stat_pgid((proc / "stat").read_text())
        except OSError:
            cmd, pgid = "?", None
        holders[int(proc.name)] = Holder(cmd, pgid)
    return holders


def bind_check(host: str, port: int) -> str:
    """'free', 'in use' or 'forbidden' for binding host:port the way a server would."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise BadInput(f"--host {host!r} does not resolve (example: --host 127.0.0.1)") from None
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers (uvicorn, the JVM) set SO_REUSEADDR: a port held only by TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "in use"
            if exc.errno == errno.EACCES:
                return "forbidden"
            if exc.errno == errno.EADDRNOTAVAIL:
                raise BadInput(
                    f"--host {host!r} is not an address of this machine (example: --host 127.0.0.1)"
                ) from None
            raise
    return "free"


def parse_port_range(text: str) -> tuple[int, int] | None:
    """/proc/sys/net/ipv4/ip_local_port_range ('32768\t60999') -> (32768, 60999)."""
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    low, high = int(parts[0]), int(parts[1])
    return (low, high) if 0 < low <= high <= 65535 else None


def read_ephemeral_range(proc_root: Path = Path("/proc")) -> tuple[int, int] | None:
    try:
        return parse_port_range((proc_root / "sys/net/ipv4/ip_local_port_range").read_text())
    except OSError:
        return None


def in_range(port: int, span: tuple[int, int] | None) -> bool:
    return span is not None and span[0] <= port <= span[1]


def suggest_port(
    port: int,
    avoid: set[int],
    is_free: Callable[[int], bool],
    ephemeral: tuple[int, int] | None = None,
) -> int | None:
    """A free port to propose instead: the next round hundred (5555 -> 5600) or just above it;
    for a port in the ephemeral range, the same hundreds at 20000 (58080 -> 28100), because
    outgoing connections may take any port of that range at any time."""
    start = (port // 100 + 1) * 100
    if in_range(start, ephemeral):
        start = 20000 + start % 10000
    for candidate in range(start, min(start + 100, 65536)):
        if candidate not in avoid and not in_range(candidate, ephemeral) and is_free(candidate):
            return candidate
    return None


def taken_message(
    port: int,
    state: str,
    holders: Mapping[int, Holder],
    var: str | None,
    suggestion: int | None,
    ephemeral: tuple[int, int] | None = None,
) -> str:
    if state == "forbidden":
        what = f"port {port} cannot be bound by this user (ports below 1024 need root)"
    elif holders:
        pids = sorted(holders)
        first = holders[pids[0]]
        what = f"port {port} is already in use by pid {pids[0]} ({first.command})"
        # e.g. uvicorn under `mlflow server`: stopping only the child is not enough.
        if first.pgid and first.pgid not in (1, pids[0]):
            what += f" of process group {first.pgid}"
        if len(pids) > 1:
            what += f" and pid(s) {', '.join(map(str, pids[1:]))}"
    elif ephemeral and in_range(port, ephemeral):
        what = (
            f"port {port} is already in use with no server listening on it: it lies in the "
            f"kernel's ephemeral range {ephemeral[0]}-{ephemeral[1]}, from which outgoing "
            "connections take their local ports"
        )
    else:
        what = (
            f"port {port} is already in use (holder not visible: another user's process "
            "or a container)"
        )
    hint = "stop it or choose another port"
    if ephemeral and not holders and in_range(port, ephemeral):
        hint = f"choose a port below {ephemeral[0]}"
    if var and suggestion:
        hint += f" (e.g. {var}={suggestion})"
    elif var:
        hint += f" (set {var})"
    elif suggestion:
        hint += f" (e.g. {suggestion})"
    return f"{what}; {hint}"


def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise BadInput(f"port {text!r} is not a number from 1 to 65535 (example: 5555)")
    return port


def parse_port_names(pairs: Iterable[str]) -> dict[int, str]:
    names = {}
    for pair in pairs:
        port, sep, var = pair.partition("=")
        if not sep or not var.strip() or not port.strip().isdigit():
            raise BadInput(
                f"--name {pair!r} is not PORT=VARNAME (example: --name 5555=MLFLOW_PORT)"
            )
        names[parse_port(port.strip())] = var.strip()
    return names


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

EXIT_CODES_HELP = (
    "Exit codes: 0 healthy (ports: all free), 1 unhealthy (wait: timed out; ports: one taken), "
    "2 bad input."
)
STATUS_EXIT_HELP = "Exit codes: 0 everything expected is healthy, 1 something is not, 2 bad input."
WAIT_EXIT_HELP = "Exit codes: 0 healthy before the timeout, 1 timed out, 2 bad input."
PORTS_EXIT_HELP = "Exit codes: 0 every port is free, 1 at least one is taken, 2 bad input."


def _bad_input(exc: BadInput) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _from_env(ctx: click.Context, param: str) -> bool:
    return ctx.get_parameter_source(param) == click.core.ParameterSource.ENVIRONMENT


def _checked(ctx: click.Context, param: str, envvar: str, value: str, example: str) -> str:
    option = "--" + param.replace("_", "-").removesuffix("s")  # worker_urls -> --worker-url
    try:
        return check_url(option, value, example)
    except BadInput as exc:
        if _from_env(ctx, param):  # say where a value nobody typed came from
            raise BadInput(f"{exc} [set by {envvar}]") from None
        raise


def resolve_targets(ctx: click.Context, opts: dict, environ: Mapping[str, str]) -> Targets:
    mlflow = opts["mlflow_url"] or default_mlflow_url(environ)
    master = opts["master_url"] or default_master_url(environ)
    workers = opts["worker_urls"] or default_worker_urls(opts["expected_workers"], environ)
    return Targets(
        mlflow_url=_checked(ctx, "mlflow_url", "MLFLOW_URL", mlflow, "http://127.0.0.1:5555"),
        master_url=_checked(
            ctx, "master_url", "SPARK_MASTER_UI_URL", master, "http://127.0.0.1:8080"
        ),
        worker_urls=tuple(
            _checked(ctx, "worker_urls", "SPARK_WORKER_UI_URLS", url, "http://127.0.0.1:8081")
            for url in workers
        ),
        expected_workers=opts["expected_workers"],
        expected_version=(opts["expect_mlflow_version"] or "").strip() or None,
        timeout=opts["request_timeout"],
    )


def resolve_log_source(ctx: click.Context, opts: dict) -> LogSource | None:
    log_dir, log_command = opts["log_dir"], opts["log_command"]
    if log_dir and log_command:
        # An explicit option beats one inherited from the environment (e.g. STACK_LOG_DIR).
        dir_env, cmd_env = _from_env(ctx, "log_dir"), _from_env(ctx, "log_command")
        if dir_env and not cmd_env:
            log_dir = None
        elif cmd_env and not dir_env:
            log_command = None
        else:
            raise BadInput("use either --log-dir or --log-command, not both")
    if log_command:
        return command_log_source(check_log_command(log_command))
    if log_dir:
        return file_log_source(Path(log_dir))
    return None


def common_options(func):
    options = [
        click.option(
            "--mlflow-url",
            envvar="MLFLOW_URL",
            show_envvar=True,
            help="MLflow server base URL. Default: http://$BIND_HOST:$MLFLOW_PORT "
            "(http://127.0.0.1:5555).",
        ),
        click.option(
            "--master-url",
            envvar="SPARK_MASTER_UI_URL",
            show_envvar=True,
            help="Spark master web UI URL. Default: http://$BIND_HOST:$SPARK_MASTER_UI_PORT "
            "(http://127.0.0.1:8080).",
        ),
        click.option(
            "--workers",
            "expected_workers",
            envvar="WORKERS",
            type=click.IntRange(min=0),
            default=2,
            show_default=True,
            show_envvar=True,
            help="Number of workers expected ALIVE.",
        ),
        click.option(
            "--worker-url",
            "worker_urls",
            multiple=True,
            envvar="SPARK_WORKER_UI_URLS",
            show_envvar=True,
            help="Worker web UI URL, repeatable (env: space-separated). Default: one per "
            "expected worker, http://$BIND_HOST:$SPARK_WORKER_UI_BASE_PORT and up "
            "(8081, 8082, ...).",
        ),
        click.option(
            "--expect-mlflow-version",
            envvar="MLFLOW_VERSION",
            show_envvar=True,
            help="When set, a server whose /version differs is unhealthy.",
        ),
        click.option(
            "--log-dir",
            envvar="STACK_LOG_DIR",
            show_envvar=True,
            type=click.Path(file_okay=False),
            help="Folder of component logs (DIR/<component>.log); unhealthy ones get a tail.",
        ),
        click.option(
            "--log-command",
            envvar="STACK_LOG_COMMAND",
            show_envvar=True,
            help="Instead of --log-dir: command printing a component's log, with {name}, "
            "e.g. 'docker compose logs --tail 20 {name}'.",
        ),
        click.option(
            "--request-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=2.0,
            show_default=True,
            help="Timeout of each HTTP request, seconds.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class _Commands(click.Group):
    """The group, with `artifacts` (tools/artifacts.py) imported only when it is asked for,
    so `status` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), "artifacts"])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "artifacts":
            # tools/ is on sys.path when this file runs as a script; tests import it the same way.
            from artifacts import artifacts

            return artifacts
        return super().get_command(ctx, name)


@click.group(cls=_Commands, help=__doc__.split("\n\n")[0] + "\n\n" + EXIT_CODES_HELP)
def cli() -> None:
    pass


def _targets_and_logs(ctx: click.Context, opts: dict) -> tuple[Targets, LogSource | None]:
    """What status and wait probe, and where their log tails come from; bad input exits 2."""
    try:
        return resolve_targets(ctx, opts, os.environ), resolve_log_source(ctx, opts)
    except BadInput as exc:
        _bad_input(exc)


@cli.command(help="Probe every component once, concurrently.\n\n" + STATUS_EXIT_HELP)
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines.")
@click.option(
    "--logs", "show_logs", is_flag=True, help="Also print the log tail of each unhealthy component."
)
@click.pass_context
def status(ctx: click.Context, as_json: bool, show_logs: bool, **opts) -> None:
    targets, log_source = _targets_and_logs(ctx, opts)
    comps = check_stack(targets)
    if as_json:
        click.echo(json.dumps(status_json(comps), indent=2))
    else:
        click.echo("\n".join(status_table(comps)))
        report = failure_report(comps, log_source) if log_source and show_logs else []
        if report:
            click.echo("\n".join(["logs of the unhealthy components:"] + report), err=True)
    sys.exit(EXIT_OK if all_healthy(comps) else EXIT_FAIL)


class _Progress:
    """A live line on a TTY (rewritten with \\r), else one line per change of state."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last_state: tuple | None = None
        self.drawn = False

    def __call__(self, elapsed: float, comps: list) -> None:
        line = progress_line(elapsed, comps)
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write("\r" + line[:width] + "\x1b[K")
            self.drawn = True
        elif progress_state(comps) != self.last_state:
            self.last_state = progress_state(comps)
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


@cli.command(
    help="Poll status until everything is healthy or the timeout passes.\n\n" + WAIT_EXIT_HELP
)
@common_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Give up after this many seconds.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between polls.",
)
@click.pass_context
def wait(ctx: click.Context, timeout: float, interval: float, **opts) -> None:
    targets, log_source = _targets_and_logs(ctx, opts)
    progress = _Progress(sys.stderr)
    ok, elapsed, comps = wait_until_healthy(targets, timeout, interval, progress)
    progress.end()
    if ok:
        click.echo(f"healthy after {elapsed:.1f}s: {', '.join(c.name for c in comps)}")
        sys.exit(EXIT_OK)
    lines = [f"timed out after {elapsed:.1f}s (--timeout {timeout:g}); not healthy:"]
    lines += failure_report(comps, log_source)
    click.echo("\n".join(lines), err=True)
    sys.exit(EXIT_FAIL)


@cli.command(
    help="Say whether each PORT is free to bind on --host; name the process holding a "
    "taken one (from /proc).\n\n" + PORTS_EXIT_HELP
)
@click.argument("ports", nargs=-1, required=True)
@click.option("--host", default=LOOPBACK, show_default=True, help="Address to bind on.")
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="PORT=VARNAME",
    help="Variable that sets this port, for the hint (repeatable), e.g. 5555=MLFLOW_PORT.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines.")
@click.option("--quiet", is_flag=True, help="Print only the taken ports.")
def ports(
    ports: tuple[str, ...], host: str, names: tuple[str, ...], as_json: bool, quiet: bool
) -> None:
    try:
        wanted = [parse_port(p) for p in ports]
        var_of = parse_port_names(names)
        states = {port: bind_check(host, port) for port in wanted}
    except BadInput as exc:
        _bad_input(exc)
    taken = [p for p in wanted if states[p] != "free"]
    sockets = read_listen_sockets() if taken else []
    ephemeral = read_ephemeral_range() if taken else None
    host_ip = socket.getaddrinfo(host, None)[0][4][0]
    results = []
    for port in wanted:
        if states[port] == "free":
            results.append({"port": port, "free": True, "holders": [], "message": None})
            continue
        holders = socket_holders(listening_inodes(sockets, port, host_ip))
        suggestion = suggest_port(
            port, set(wanted), lambda p: bind_check(host, p) == "free", ephemeral
        )
        message = taken_message(
            port, states[port], holders, var_of.get(port), suggestion, ephemeral
        )
        results.append(
            {
                "port": port,
                "free": False,
                "holders": [
                    {"pid": pid, "command": h.command, "pgid": h.pgid}
                    for pid, h in sorted(holders.items())
                ],
                "message": message,
            }
        )
    if as_json:
        click.echo(json.dumps({"free": not taken, "host": host, "ports": results}, indent=2))
    else:
        for r in results:
            if r["message"] or not quiet:
                click.echo(r["message"] or f"port {r['port']} is free on {host}")
    sys.exit(EXIT_FAIL if taken else EXIT_OK)


if __name__ == "__main__":
    cli()
