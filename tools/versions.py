#!/usr/bin/env python3
"""Version drift: MLflow and Spark as every part of the stack has them, against versions.env.

Sources: the pin (versions.env, or the environment that overrides it), the MLflow server's
/version, the local venv (import mlflow, pyspark), the Spark master and worker UI pages (the
running JVMs), and with the docker runtime `python` inside spark-submit and each worker.

Exit codes: 0 every source has the pinned versions, 1 a difference or a source that cannot be
read (each named), 2 bad input.

Imports click and requests only (mlflow is probed in subprocesses): tools/doctor.py reuses the
settings, docker and probe helpers below. Layout as in healthcheck.py: pure parse/compare
functions, thin fetch functions that never raise, one click command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import click

TOOLS_DIR = Path(__file__).resolve().parent
if str(TOOLS_DIR) not in sys.path:  # healthcheck.py is a sibling, also when imported by tests
    sys.path.insert(0, str(TOOLS_DIR))

import healthcheck as hc  # noqa: E402

ROOT = TOOLS_DIR.parent
RUNBOOK = "docs/runbook.md"
EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
PACKAGES = ("mlflow", "spark")
LABELS = {"mlflow": "MLflow", "spark": "Spark"}
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
SHARED_MOUNT = "/mlflow"

BadInput = hc.BadInput


# --------------------------------------------------------------------------------------------
# Settings: versions.env merged with the environment (pure)
# --------------------------------------------------------------------------------------------

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VERSION = re.compile(r"^\d+(\.\d+)+$")
REQUIRED_KEYS = ("SPARK_VERSION", "MLFLOW_VERSION", "BIND_HOST", "MLFLOW_PORT")
PORT_KEYS = (
    "MLFLOW_PORT",
    "SPARK_MASTER_PORT",
    "SPARK_MASTER_UI_PORT",
    "SPARK_WORKER_UI_BASE_PORT",
)


def parse_env_file(text: str) -> tuple[dict[str, str], list[str]]:
    """KEY=value pairs of a versions.env text, and its problems (line numbers, what is wrong).
    The shell loader (scripts/lib.sh) splits at the first '=' and exports KEY as is, so a
    space around '=' or a bad name breaks every script."""
    pairs: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = raw.partition("=")
        if not sep:
            problems.append(f"line {number}: {raw.strip()!r} is not KEY=value")
            continue
        if key != key.strip() or value != value.strip() or not _KEY.match(key.strip()):
            problems.append(f"line {number}: {raw.strip()!r} must be KEY=value without spaces")
            continue
        if key in pairs:
            problems.append(f"line {number}: {key} is set twice")
        pairs[key] = value
    for key in REQUIRED_KEYS:
        if key not in pairs:
            problems.append(f"{key} is missing")
    for key in ("SPARK_VERSION", "MLFLOW_VERSION"):
        if key in pairs and not _VERSION.match(pairs[key]):
            problems.append(f"{key}={pairs[key]!r} is not a version like 1.2.3")
    for key in PORT_KEYS:
        if key in pairs and not (pairs[key].isdigit() and 1 <= int(pairs[key]) <= 65535):
            problems.append(f"{key}={pairs[key]!r} is not a port from 1 to 65535")
    return pairs, problems


@dataclass(frozen=True)
class Settings:
    """What the tools need to know about the stack: versions.env overridden by the environment
    (the rule of scripts/lib.sh), plus the paths it derives."""

    root: Path
    values: Mapping[str, str]  # versions.env, then the environment on top
    file_values: Mapping[str, str]  # versions.env alone
    file_problems: tuple[str, ...]
    runtime: str  # local | docker

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def int(self, key: str, default: int) -> int:
        return hc.env_int(self.values, key, default)

    @property
    def work_dir(self) -> Path:
        return Path(self.get("WORK_DIR") or self.root / "work")

    @property
    def data_dir(self) -> Path:
        return Path(self.get("MLFLOW_DATA_DIR") or self.work_dir / "mlflow")

    @property
    def run_dir(self) -> Path:
        return self.work_dir / "run"

    @property
    def venv(self) -> Path:
        return Path(self.get("VENV") or self.root / ".venv")

    @property
    def python_bin(self) -> Path:
        return Path(self.get("PYTHON_BIN") or self.venv / "bin" / "python")

    @property
    def workers(self) -> int:
        # The docker stack has its own count (DOCKER_WORKERS); scripts/docker/lib.sh copies it
        # into WORKERS, a direct call may not.
        if self.runtime == "docker":
            return self.int("DOCKER_WORKERS", self.int("WORKERS", 2))
        return self.int("WORKERS", 2)

    @property
    def project(self) -> str:
        return self.get("COMPOSE_PROJECT_NAME") or "spark-mlflow"

    def pinned(self, package: str) -> str:
        return self.get("MLFLOW_VERSION" if package == "mlflow" else "SPARK_VERSION")

    def pin_source(self, package: str) -> str:
        key = "MLFLOW_VERSION" if package == "mlflow" else "SPARK_VERSION"
        in_file = self.file_values.get(key)
        if in_file is not None and in_file != self.values.get(key):
            return f"environment {key} (versions.env: {in_file})"
        return "versions.env"

    def mlflow_url(self) -> str:
        return self.get("MLFLOW_URL") or hc.default_mlflow_url(self.values)

    def master_ui_url(self) -> str:
        return self.get("SPARK_MASTER_UI_URL") or hc.default_master_url(self.values)

    def worker_ui_urls(self) -> list[str]:
        explicit = self.get("SPARK_WORKER_UI_URLS").split()
        return explicit or hc.default_worker_urls(self.workers, self.values)

    def rel(self, path: Path) -> str:
        """A path as people read it: relative to the repo when inside it."""
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)


def load_settings(
    environ: Mapping[str, str], runtime: str = "local", root: Path = ROOT
) -> Settings:
    path = root / "versions.env"
    try:
        text = path.read_text()
    except OSError as exc:
        text, problems = "", [f"cannot read {path}: {exc.strerror}"]
        pairs: dict[str, str] = {}
    else:
        pairs, problems = parse_env_file(text)
    values = dict(pairs)
    values.update({k: v for k, v in environ.items() if k in pairs or _is_setting(k)})
    return Settings(root, values, pairs, tuple(problems), runtime)


def _is_setting(key: str) -> bool:
    # Settings the scripts derive or accept without a line in versions.env.
    return key in {
        "WORK_DIR",
        "MLFLOW_DATA_DIR",
        "VENV",
        "PYTHON_BIN",
        "MLFLOW_URL",
        "SPARK_MASTER_UI_URL",
        "SPARK_WORKER_UI_URLS",
        "DOCKER_WORKERS",
        "WORKERS",
        "COMPOSE_PROJECT_NAME",
        "STACK_UID",
        "STACK_GID",
    } or key.startswith("DOCTOR_")


# --------------------------------------------------------------------------------------------
# Subprocesses: never raise, always bounded
# --------------------------------------------------------------------------------------------


@dataclass
class Proc:
    argv: Sequence[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # set when it did not run or did not finish

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def why(self) -> str:
        """One short line: why it failed."""
        if self.error:
            return self.error
        lines = [ln for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else "no output"
        return f"exit {self.returncode}: {last[:200]}"


def run(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> Proc:
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return Proc(argv, None, error=f"{argv[0]} not found")
    except PermissionError:
        return Proc(argv, None, error=f"{argv[0]} is not executable")
    except subprocess.TimeoutExpired:
        return Proc(argv, None, error=f"no answer within {timeout:g}s")
    return Proc(argv, proc.returncode, proc.stdout, proc.stderr)


# --------------------------------------------------------------------------------------------
# Probing a Python: which executable, which mlflow and pyspark (one subprocess)
# --------------------------------------------------------------------------------------------

PROBE_MARK = "VERSIONS_JSON "
# Runs inside the probed Python (the venv's, or `python` in a container): stdlib only.
PROBE_CODE = r"""
import json, sys
out = {"executable": sys.executable, "python": "%d.%d.%d" % sys.version_info[:3]}
for name in ("mlflow", "pyspark"):
    try:
        out[name] = __import__(name).__version__
    except Exception as exc:
        out[name + "_error"] = "%s: %s" % (type(exc).__name__, exc)
print("VERSIONS_JSON " + json.dumps(out))
"""


def parse_probe(stdout: str) -> dict | None:
    """The probe's JSON line (MLflow may print warnings around it), or None."""
    for line in stdout.splitlines():
        if line.startswith(PROBE_MARK):
            try:
                data = json.loads(line[len(PROBE_MARK) :])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def quiet_env(base: Mapping[str, str]) -> dict[str, str]:
    """Environment for a probed Python: no GitPython warning, no telemetry call."""
    env = dict(base)
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def probe_python(argv_prefix: Sequence[str], timeout: float, env=None) -> tuple[dict | None, str]:
    """Run PROBE_CODE with the given Python (argv_prefix: [python] or [docker, exec, C, python])."""
    proc = run([*argv_prefix, "-c", PROBE_CODE], timeout, env)
    data = parse_probe(proc.stdout)
    if data is None:
        return None, proc.why() if not proc.ok else "no answer from the version probe"
    return data, ""


# --------------------------------------------------------------------------------------------
# Docker: containers of the compose project, by service (parse pure, fetch thin)
# --------------------------------------------------------------------------------------------


@dataclass
class Container:
    id: str
    name: str
    service: str
    state: str  # running, exited, created, ...
    exit_code: int
    health: str | None  # healthy, unhealthy, starting, or None without a healthcheck
    user: str
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[dict] = field(default_factory=list)
    managed: bool = True  # created by compose (it sets a config-hash label), not by hand

    @property
    def running(self) -> bool:
        return self.state == "running"


def parse_inspect(data: list) -> list[Container]:
    """`docker inspect` JSON -> containers of a compose project (others ignored)."""
    found = []
    for item in data if isinstance(data, list) else []:
        config = item.get("Config") or {}
        labels = config.get("Labels") or {}
        service = labels.get(COMPOSE_SERVICE_LABEL)
        if not service:
            continue
        state = item.get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        env = {}
        for pair in config.get("Env") or []:
            key, _, value = pair.partition("=")
            env[key] = value
        found.append(
            Container(
                id=str(item.get("Id", ""))[:12],
                name=str(item.get("Name", "")).lstrip("/"),
                service=service,
                state=str(state.get("Status", "unknown")),
                exit_code=int(state.get("ExitCode") or 0),
                health=health,
                user=str(config.get("User") or ""),
                env=env,
                mounts=[m for m in item.get("Mounts") or [] if isinstance(m, dict)],
                managed="com.docker.compose.config-hash" in labels,
            )
        )
    return found


def by_service(containers: Iterable[Container]) -> dict[str, list[Container]]:
    """Service -> its containers, the running one that compose made first (a stale twin, or
    one started by hand with the same labels, may be listed too)."""
    out: dict[str, list[Container]] = {}
    for c in containers:
        out.setdefault(c.service, []).append(c)
    for group in out.values():
        group.sort(key=lambda c: (not c.running, not c.managed))
    return out


def engine_answers(timeout: float) -> tuple[bool, str]:
    """(True, server version) or (False, why)."""
    proc = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout)
    if proc.ok and proc.stdout.strip():
        return True, proc.stdout.strip()
    return False, proc.why()


def project_containers(project: str, timeout: float) -> tuple[list[Container], str | None]:
    ids = run(
        ["docker", "ps", "-aq", "--filter", f"label={COMPOSE_PROJECT_LABEL}={project}"], timeout
    )
    if not ids.ok:
        return [], f"docker ps failed ({ids.why()})"
    if not ids.stdout.split():
        return [], None
    got = run(["docker", "inspect", *ids.stdout.split()], timeout)
    try:
        return parse_inspect(json.loads(got.stdout)), None
    except ValueError:
        return [], f"docker inspect failed ({got.why()})"


def exec_argv(container: Container | str, *argv: str) -> list[str]:
    """`docker exec` as the container's own user (the Spark user in this stack)."""
    cid = container.id if isinstance(container, Container) else container
    return ["docker", "exec", cid, *argv]


# --------------------------------------------------------------------------------------------
# Readings and their comparison (pure)
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """What one source says: package -> version, or package -> why it could not be read.
    A package in neither dict does not apply to this source (printed as '-')."""

    component: str
    source: str
    versions: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # not reached: down, no container
    missing: dict[str, str] = field(default_factory=dict)  # reached, but not importable
    info: dict = field(default_factory=dict)

    def cell(self, package: str) -> str:
        if package in self.versions:
            return self.versions[package]
        if package in self.missing:
            return "missing"
        if package in self.errors:
            return "?"
        return "-"


def row_from_probe(component: str, source: str, data: dict | None, error: str) -> Row:
    row = Row(component, source)
    if data is None:
        row.errors = {"mlflow": error, "spark": error}
        return row
    row.info = {"executable": data.get("executable"), "python": data.get("python")}
    for package, key in (("mlflow", "mlflow"), ("spark", "pyspark")):
        if key in data:
            row.versions[package] = str(data[key])
        else:
            row.missing[package] = str(data.get(f"{key}_error", "not importable"))
    return row


SPARK_UI_VERSION = re.compile(r'<span class="version"[^>]*>\s*([0-9][^<\s]*)\s*</span>')


def parse_spark_ui_version(html: str) -> str | None:
    """The version a Spark web UI page shows in its header (master, worker, application)."""
    match = SPARK_UI_VERSION.search(html)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Difference:
    kind: str  # differs | missing (not importable) | unreadable (source not reached)
    package: str
    component: str
    source: str
    found: str | None
    pinned: str
    reason: str = ""

    def message(self) -> str:
        label = LABELS[self.package]
        where = f"{self.component} ({self.source})"
        if self.kind == "missing":
            return f"{label}: {where} cannot import it ({self.reason}), pinned {self.pinned}"
        if self.kind == "unreadable":
            return f"{label}: {where} cannot be read: {self.reason}"
        return f"{label}: {where} has {self.found}, pinned {self.pinned}"


def compare(rows: Iterable[Row], pinned: Mapping[str, str]) -> list[Difference]:
    """Every reading that is not the pinned version, every source where the package cannot be
    imported, and every source that could not be read."""
    out = []
    for row in rows:
        for package in PACKAGES:
            want = pinned[package]
            base = (package, row.component, row.source)
            if package in row.versions and row.versions[package] != want:
                out.append(Difference("differs", *base, row.versions[package], want))
            elif package in row.missing:
                out.append(Difference("missing", *base, None, want, row.missing[package]))
            elif package in row.errors:
                out.append(Difference("unreadable", *base, None, want, row.errors[package]))
    return out


def versions_table(rows: Sequence[Row]) -> list[str]:
    widths = [
        max([len("component")] + [len(r.component) for r in rows]),
        max([len("source")] + [len(r.source) for r in rows]),
        max([len("mlflow")] + [len(r.cell("mlflow")) for r in rows]),
    ]
    lines = [f"{'component':<{widths[0]}}  {'source':<{widths[1]}}  {'mlflow':<{widths[2]}}  spark"]
    for r in rows:
        lines.append(
            f"{r.component:<{widths[0]}}  {r.source:<{widths[1]}}  "
            f"{r.cell('mlflow'):<{widths[2]}}  {r.cell('spark')}"
        )
    return lines


def verdict_lines(diffs: Sequence[Difference], pinned: Mapping[str, str]) -> list[str]:
    if not diffs:
        return [f"versions agree: MLflow {pinned['mlflow']}, Spark {pinned['spark']}"]
    lines = [f"versions DIFFER ({len(diffs)}):"]
    lines += [f"  {d.message()}" for d in diffs]
    lines.append(f"fix: see {RUNBOOK}#version-mismatch")
    return lines


def versions_json(rows: Sequence[Row], diffs: Sequence[Difference], pinned) -> dict:
    return {
        "ok": not diffs,
        "pinned": dict(pinned),
        "rows": [
            {
                "component": r.component,
                "source": r.source,
                "mlflow": r.versions.get("mlflow"),
                "spark": r.versions.get("spark"),
                "errors": r.errors,
                "missing": r.missing,
                **({"info": r.info} if r.info else {}),
            }
            for r in rows
        ],
        "differences": [
            {
                "kind": d.kind,
                "package": d.package,
                "component": d.component,
                "found": d.found,
                "message": d.message(),
            }
            for d in diffs
        ],
    }


# --------------------------------------------------------------------------------------------
# Gathering (I/O)
# --------------------------------------------------------------------------------------------


def pinned_row(settings: Settings) -> Row:
    sources = {settings.pin_source(p) for p in PACKAGES}
    return Row(
        "pinned",
        " / ".join(sorted(sources)),
        {p: settings.pinned(p) for p in PACKAGES},
    )


def server_row(mlflow_url: str, timeout: float) -> Row:
    got = hc.fetch(f"{mlflow_url}/version", timeout)
    row = Row("mlflow-server", "GET /version")
    if got.error or got.status != 200:
        row.errors["mlflow"] = f"{got.error or f'HTTP {got.status}'} at {got.url}"
    else:
        row.versions["mlflow"] = got.text.strip()
    return row


def venv_row(settings: Settings, timeout: float) -> Row:
    python = settings.python_bin
    source = settings.rel(python)
    if not os.access(python, os.X_OK):
        why = f"no Python at {source} (run 'make setup')"
        return Row("local venv", source, errors={"mlflow": why, "spark": why})
    data, error = probe_python([str(python)], timeout, quiet_env(os.environ))
    return row_from_probe("local venv", source, data, error)


def spark_ui_row(component: str, url: str, timeout: float) -> Row:
    got = hc.fetch(f"{url}/", timeout)
    row = Row(component, "UI page")
    if got.error or got.status != 200:
        row.errors["spark"] = f"{got.error or f'HTTP {got.status}'} at {got.url}"
        return row
    version = parse_spark_ui_version(got.text)
    if version:
        row.versions["spark"] = version
    else:
        row.errors["spark"] = f"no version on the page at {got.url}"
    return row


def container_row(service: str, containers: Mapping[str, list[Container]], timeout: float) -> Row:
    group = containers.get(service) or []
    if not group or not group[0].running:
        why = "no running container" if not group else f"container {group[0].state}"
        return Row(service, "docker exec python", errors={"mlflow": why, "spark": why})
    data, error = probe_python(exec_argv(group[0], "python"), timeout)
    return row_from_probe(service, "docker exec python", data, error)


def docker_services(settings: Settings) -> list[str]:
    return ["spark-submit"] + [hc.worker_name(i) for i in range(1, settings.workers + 1)]


def gather(
    settings: Settings,
    timeout: float = 3.0,
    probe_timeout: float = 60.0,
    containers: Mapping[str, list[Container]] | None = None,
) -> tuple[list[Row], str | None]:
    """Every reading for the runtime, concurrently. Returns (rows, docker problem or None);
    with the docker runtime the containers are listed here unless given."""
    docker_problem = None
    jobs = {
        "server": lambda: server_row(settings.mlflow_url(), timeout),
        "venv": lambda: venv_row(settings, probe_timeout),
        "master": lambda: spark_ui_row(hc.MASTER, settings.master_ui_url(), timeout),
    }
    for i, url in enumerate(settings.worker_ui_urls(), start=1):
        jobs[f"ui{i}"] = lambda i=i, url=url: spark_ui_row(hc.worker_name(i), url, timeout)
    if settings.runtime == "docker":
        if containers is None:
            ok, why = engine_answers(timeout + 5)
            found, problem = project_containers(settings.project, 20) if ok else ([], None)
            docker_problem = None if ok else f"no Docker engine answers ({why})"
            docker_problem = docker_problem or problem
            containers = by_service(found)
        for service in docker_services(settings):
            if docker_problem:
                why = docker_problem
                jobs[f"c-{service}"] = lambda s=service, w=why: Row(
                    s, "docker exec python", errors={"mlflow": w, "spark": w}
                )
            else:
                jobs[f"c-{service}"] = lambda s=service: container_row(s, containers, probe_timeout)
    # A few at a time: each Python probe imports mlflow (about 1 s of CPU on a 2-core machine).
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        rows = [pinned_row(settings)] + [futures[key].result() for key in jobs]
    return rows, docker_problem


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def exit_codes_paragraph(doc: str) -> str:
    return next(p for p in doc.split("\n\n") if p.startswith("Exit codes"))


def check_runtime(value: str) -> str:
    if value not in ("local", "docker"):
        raise BadInput(f"--runtime {value!r} is unknown; use --runtime local or --runtime docker")
    return value


def checked_settings(runtime: str) -> Settings:
    """The settings of the environment for --runtime, every URL they derive checked (BadInput)."""
    settings = load_settings(os.environ, check_runtime(runtime))
    for url in (settings.mlflow_url(), settings.master_ui_url(), *settings.worker_ui_urls()):
        hc.check_url("URL", url, "http://127.0.0.1:5555")
    return settings


def stack_options(runtime_help: str):
    """--runtime, --json and --request-timeout, as this tool and tools/doctor.py take them."""
    options = [
        click.option(
            "--runtime",
            envvar="STACK_RUNTIME",
            default="local",
            show_default=True,
            show_envvar=True,
            help=runtime_help,
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines."),
        click.option(
            "--request-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=3.0,
            show_default=True,
            help="Timeout of each HTTP request, seconds.",
        ),
    ]

    def apply(func):
        for option in reversed(options):
            func = option(func)
        return func

    return apply


@click.command(help=__doc__.split("\n\n")[0] + "\n\n" + exit_codes_paragraph(__doc__))
@stack_options("local or docker (docker adds spark-submit and each worker container).")
def main(runtime: str, as_json: bool, request_timeout: float) -> None:
    try:
        settings = checked_settings(runtime)
    except BadInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if settings.file_problems:
        click.echo(f"error: versions.env: {'; '.join(settings.file_problems)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    rows, _ = gather(settings, timeout=request_timeout)
    pinned = {p: settings.pinned(p) for p in PACKAGES}
    diffs = compare(rows, pinned)
    if as_json:
        click.echo(json.dumps(versions_json(rows, diffs, pinned), indent=2))
    else:
        click.echo("\n".join(versions_table(rows) + [""] + verdict_lines(diffs, pinned)))
    sys.exit(EXIT_FAIL if diffs else EXIT_OK)


if __name__ == "__main__":
    main()
