"""Backups of the MLflow data folder (mlflow.db + artifacts/): copy the database, verify, check.

Used by scripts/backup.sh and scripts/restore.sh. A folder is "a backup" when it holds a valid
``backup.json`` (written last, after every verification passed), ``mlflow.db`` whose sha256 and
integrity check match it, and ``artifacts/`` with the file count and bytes it states.

Consistency with a running server: the database is copied first, with SQLite's online backup API
in one step (a read lock for the few milliseconds of the copy; MLflow's writers wait up to their
20 s busy timeout), then the artifacts. Every artifact written before the database copy is in the
backup, so every run the database copy calls FINISHED has its files. Files written after it may
be in the backup too, possibly half written: they belong to runs the copy does not know or still
calls RUNNING.

Exit codes: 0 ok; 1 the copy failed verification; 2 bad input (not a backup, missing source).
This module must not import mlflow (sqlite3 and pathlib only).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import click

KIND = "spark-mlflow-toolkit backup"
FORMAT_VERSION = 1
MANIFEST = "backup.json"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "artifacts"
CHUNK = 1 << 20
# File timestamps come from the kernel's coarse clock, up to one tick (1-10 ms) behind the wall
# clock: files changed this close before the database copy count as written after it (their
# content may legitimately differ). Assumes the files live on this machine's clock (not NFS).
CTIME_SLACK_NS = 100_000_000


class NotABackup(Exception):
    """The folder is not a usable backup; the message says what is wrong."""


class CopyMismatch(Exception):
    """A copy differs from its source where it must not."""


# --- pure functions ---------------------------------------------------------------------------


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every non-directory entry under root: relative path -> (size, ctime_ns). Symlinks are
    entries of their own (cp -a copies them as links), never followed. ctime, not mtime: a
    client's log_artifact copies with shutil.copy2, which gives a new file an OLD mtime; the
    ctime of a file is always the time it was last created or changed here."""
    entries: dict[str, tuple[int, int]] = {}
    if not root.is_dir():
        return entries
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        # os.walk lists symlinks to folders among dirnames and never descends them: count them.
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        for name in names:
            st = (base / name).lstat()
            entries[str((base / name).relative_to(root))] = (st.st_size, st.st_ctime_ns)
    return entries


def totals(entries: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """(file count, bytes) of a listing."""
    return len(entries), sum(size for size, _ in entries.values())


@dataclass
class TreeDiff:
    missing: list[str] = field(default_factory=list)  # in the source before the copy, not copied
    changed: list[str] = field(default_factory=list)  # older than the copy, sizes differ
    newer: list[str] = field(default_factory=list)  # touched after the database copy
    gone: list[str] = field(default_factory=list)  # in the copy, no longer in the source


def compare_copy(
    source: dict[str, tuple[int, int]], copy: dict[str, tuple[int, int]], since_ns: int
) -> TreeDiff:
    """What a copy of `source` lacks. Files changed at or after since_ns (the database copy,
    minus a tick of slack) are only counted: a live writer may change them during the copy."""
    diff = TreeDiff()
    cutoff = since_ns - CTIME_SLACK_NS
    for path, (size, ctime) in sorted(source.items()):
        if ctime >= cutoff:
            diff.newer.append(path)
        elif path not in copy:
            diff.missing.append(path)
        elif copy[path][0] != size:
            diff.changed.append(path)
    diff.gone = sorted(set(copy) - set(source))
    return diff


def make_manifest(
    *,
    created: datetime,
    source: str,
    runtime: str,
    mlflow_version: str,
    db: dict,
    files: int,
    nbytes: int,
    newer: int,
) -> dict:
    return {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "created": created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source,
        "runtime": runtime,
        "mlflow_version": mlflow_version,
        "database": {"file": DB_FILE, **db},
        "artifacts": {"dir": ARTIFACTS_DIR, "files": files, "bytes": nbytes},
        # Artifact files written after the database copy (a live server): kept, not covered by it.
        "artifacts_newer_than_database": newer,
    }


def manifest_problem(data: object) -> str | None:
    """Why a parsed backup.json is not one this version understands; None when it is."""
    if not isinstance(data, dict) or data.get("kind") != KIND:
        return f"it is not a {KIND} manifest"
    if data.get("format_version") != FORMAT_VERSION:
        return (
            f"format_version {data.get('format_version')!r} is not {FORMAT_VERSION} "
            "(made by another version of this toolkit)"
        )
    db, art = data.get("database"), data.get("artifacts")
    if not isinstance(db, dict) or not isinstance(art, dict):
        return "it lacks the database or artifacts section"
    for section, key in (
        (db, "sha256"),
        (db, "bytes"),
        (db, "runs"),
        (db, "experiments"),
        (art, "files"),
        (art, "bytes"),
    ):
        if key not in section:
            return f"it lacks '{key}'"
    return None


# --- the database -----------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_database(source: Path, dest: Path) -> bool:
    """SQLite's online backup, in one step: a consistent snapshot even while a server writes
    (a stepwise copy restarts whenever another process writes and may never finish).
    Returns True when a hot journal had to be rolled back first."""
    try:
        # mode=ro: a backup never writes the live database (no journal, no schema change).
        _backup(f"{source.resolve().as_uri()}?mode=ro", dest)
        return False
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise
    # A writer died mid-transaction and left a hot journal, which only a read-write connection
    # may roll back: the same recovery the server does on its next start.
    dest.unlink(missing_ok=True)
    _backup(source.resolve().as_uri(), dest)
    return True


def _backup(source_uri: str, dest: Path) -> None:
    src = sqlite3.connect(source_uri, uri=True, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def database_facts(path: Path) -> dict:
    """Integrity, schema revision and counts of a database copy (opened read-only)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        check = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        facts = {"integrity": "ok" if check == ["ok"] else "; ".join(map(str, check[:3]))}
        if facts["integrity"] != "ok":
            return facts
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not {"experiments", "runs"} <= tables:
            facts["integrity"] = "no MLflow tables (experiments, runs)"
            return facts
        facts["experiments"] = conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
        facts["runs"] = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            facts["schema_revision"] = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        return {"integrity": str(exc)}
    finally:
        conn.close()
    facts["bytes"] = path.stat().st_size
    facts["sha256"] = sha256_of(path)
    return facts


# --- checking a backup ------------------------------------------------------------------------


def load_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise NotABackup(f"{folder} is not a folder")
    if not path.is_file():
        raise NotABackup(f"{folder} is not a backup: no {MANIFEST} (make one with 'make backup')")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotABackup(f"{path} cannot be read as JSON ({exc})") from exc
    problem = manifest_problem(data)
    if problem:
        raise NotABackup(f"{path} is not a valid backup manifest: {problem}")
    return data


def verify_data(manifest: dict, data_dir: Path, what: str) -> dict:
    """Check a folder's mlflow.db and artifacts/ against a manifest; return the db facts."""
    db_path = data_dir / DB_FILE
    if not db_path.is_file():
        raise NotABackup(f"{what} has no {DB_FILE}")
    facts = database_facts(db_path)
    if facts["integrity"] != "ok":
        raise NotABackup(f"{what}: {DB_FILE} fails the integrity check ({facts['integrity']})")
    expected = manifest["database"]
    if facts["sha256"] != expected["sha256"]:
        raise NotABackup(f"{what}: {DB_FILE} does not match the sha256 in {MANIFEST}")
    files, nbytes = totals(listing(data_dir / ARTIFACTS_DIR))
    art = manifest["artifacts"]
    if (files, nbytes) != (art["files"], art["bytes"]):
        raise NotABackup(
            f"{what}: artifacts/ holds {files} files, {nbytes} bytes; "
            f"{MANIFEST} says {art['files']} files, {art['bytes']} bytes"
        )
    return facts


def summary(manifest: dict) -> str:
    db, art = manifest["database"], manifest["artifacts"]
    return (
        f"{db['experiments']} experiments, {db['runs']} runs, {art['files']} artifact files "
        f"({human_bytes(art['bytes'])}), database {human_bytes(db['bytes'])}"
    )


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --- commands ---------------------------------------------------------------------------------


def note(text: str) -> None:
    click.echo(f"    {text}", err=True)


def fail(text: str, code: int) -> None:
    click.echo(f"error: {text}", err=True)
    raise SystemExit(code)


@click.group(help=__doc__.split("\n\n")[0])
def cli() -> None:
    pass


@cli.command("copy-db")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("dest", type=click.Path(path_type=Path))
def copy_db_command(source: Path, dest: Path) -> None:
    """Copy SOURCE (a live SQLite database) to DEST with the online backup API, then check DEST.
    Prints the wall-clock time of the copy (ns) on stdout: the consistency point."""
    if not source.is_file():
        fail(f"no database at {source}; nothing to back up (is MLFLOW_DATA_DIR right?)", 2)
    if dest.exists():
        fail(f"{dest} exists already; a backup never overwrites a file", 2)
    started = time.time_ns()
    try:
        if copy_database(source, dest):
            note(f"{source.name} had a hot journal (a writer died mid-transaction): rolled back")
    except sqlite3.Error as exc:
        fail(f"the online backup of {source} failed: {exc}", 1)
    facts = database_facts(dest)
    if facts["integrity"] != "ok":
        fail(f"the copy of {source} fails the integrity check: {facts['integrity']}", 1)
    note(
        f"database: {facts['experiments']} experiments, {facts['runs']} runs, "
        f"{human_bytes(facts['bytes'])} (integrity ok)"
    )
    click.echo(started)


@cli.command("finish")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--source", "source", required=True, type=click.Path(path_type=Path))
@click.option("--since-ns", required=True, type=int, help="When the database copy started.")
@click.option("--runtime", required=True)
@click.option("--mlflow-version", required=True)
def finish_command(
    folder: Path, source: Path, since_ns: int, runtime: str, mlflow_version: str
) -> None:
    """Verify FOLDER (mlflow.db + artifacts/ copied from SOURCE) and write its backup.json."""
    diff = compare_copy(listing(source / ARTIFACTS_DIR), listing(folder / ARTIFACTS_DIR), since_ns)
    for kind, paths in (("not copied", diff.missing), ("copied with another size", diff.changed)):
        if paths:
            fail(f"{len(paths)} artifact file(s) {kind}, e.g. {paths[0]}; backup not written", 1)
    if diff.gone:
        note(f"{len(diff.gone)} artifact file(s) were removed from the source during the copy")
    if diff.newer:
        note(f"{len(diff.newer)} artifact file(s) written after the database copy: kept as found")
    db = database_facts(folder / DB_FILE)
    if db.pop("integrity") != "ok":
        fail(f"{folder / DB_FILE} fails the integrity check; backup not written", 1)
    files, nbytes = totals(listing(folder / ARTIFACTS_DIR))
    manifest = make_manifest(
        created=datetime.fromtimestamp(since_ns / 1e9, tz=timezone.utc),
        source=str(source.resolve()),
        runtime=runtime,
        mlflow_version=mlflow_version,
        db=db,
        files=files,
        nbytes=nbytes,
        newer=len(diff.newer),
    )
    # Written last and atomically: a folder with a backup.json passed every check above.
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(folder / MANIFEST)
    note(f"verified: {summary(manifest)}")


@cli.command("check")
@click.argument("backup", type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="Check this data folder against BACKUP's manifest instead of BACKUP itself.",
)
@click.option("--mlflow-version", help="Warn when the backup was made with another MLflow.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--quiet", is_flag=True, help="Print nothing unless something is wrong.")
def check_command(
    backup: Path, data: Path | None, mlflow_version: str | None, as_json: bool, quiet: bool
) -> None:
    """Is BACKUP a complete, intact backup (or DATA an exact copy of it)? Exit 2 when not."""
    try:
        manifest = load_manifest(backup)
        verify_data(manifest, data or backup, str(data or backup))
    except NotABackup as exc:
        fail(str(exc), 2)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
    elif not quiet:
        note(f"backup of {manifest['created']}: {summary(manifest)}")
    if mlflow_version and manifest["mlflow_version"] != mlflow_version:
        # The server migrates an older schema only with `mlflow db upgrade`; say so up front.
        click.echo(
            f"warning: the backup was made with MLflow {manifest['mlflow_version']}, the stack "
            f"runs {mlflow_version}; if the server refuses the database, run 'mlflow db upgrade'",
            err=True,
        )


if __name__ == "__main__":
    cli()
