"""Artifact-store diff: did every artifact arrive, and does every side see the same files?

Views of one artifact store, compared on the keys each covers (keys are '/'-separated paths
relative to the ARTIFACT ROOT, e.g. ``1/<run_id>/artifacts/metrics/x.csv`` or
``1/models/m-<id>/artifacts/MLmodel``):

- manifest   what each job says it produced (``manifest.json`` at a run's artifact root)
- rest       what MLflow shows (REST API: runs, LoggedModels, artifacts/list)
- folder     what is on disk (local walk of the artifact root)
- container:NAME  what a container sees (one ``find`` per container)

Definitions used by ``diff`` (for one path, among the views that COVER it; the reference is
the first covering view in the order manifest > rest > folder > containers, i.e. the most
authoritative one: what the job says it wrote, then what MLflow shows):
- missing from V: the reference has the path, V covers it and lacks it;
- extra in V: the reference lacks the path (it covers it) and V has it;
- size / checksum: present in several views with different known values (unknown = None is
  never a difference). Sizes are always compared; sha256 whenever two views know it: with
  --checksum every view hashes, without it only manifest-listed files are hashed (the folder
  hashes exactly those, REST and containers hash nothing).
- unreadable: a view saw the path but could not read it (permission, dangling symlink,
  symlink loop, invalid manifest, listing error).

Exit codes: 0 all views agree; 1 differences; 2 a view cannot be read or bad input (unknown
run id / experiment, scope options without REST, fewer than two views, and an EMPTY store:
no runs in scope, or no files at all without REST -> exit 2 with one clear line).

This module must not import mlflow (REST via requests only).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import click
import requests

CHUNK = 1 << 20  # 1 MiB reads for hashing
HTTP_TIMEOUT = (3.05, 30)  # (connect, read) seconds
REST_WORKERS = 4
MANIFEST = "manifest.json"
KINDS = ("missing", "extra", "size", "checksum", "unreadable")
MAX_TABLE_ROWS = 200


class ViewUnavailable(Exception):
    """A whole view cannot be read (server down, folder missing, permission denied)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BadInput(Exception):
    """Bad user input or an empty scope: one clear line, exit 2."""


# --------------------------------------------------------------------------- data


@dataclass
class Listing:
    """What one view saw, already restricted to the scope.

    sizes: key -> size (None = unknown); shas: key -> sha256 hex (only hashed keys);
    problems: key -> reason (unreadable things); covers: None = the whole key space,
    else a predicate telling whether a key is inside this view's coverage.
    """

    name: str
    source: str = ""
    sizes: dict[str, int | None] = field(default_factory=dict)
    shas: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    covers: Callable[[str], bool] | None = None
    coverage: str = "all"  # for people
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_entries(cls, name: str, entries: dict[str, tuple[int | None, str | None]], **kw):
        sizes = {k: s for k, (s, _) in entries.items()}
        shas = {k: h for k, (_, h) in entries.items() if h}
        return cls(name=name, sizes=sizes, shas=shas, **kw)

    def entries(self) -> Iterable[dict]:
        """The view as entries {path, size, sha256}."""
        for k, s in self.sizes.items():
            yield {"path": k, "size": s, "sha256": self.shas.get(k)}


@dataclass
class Finding:
    path: str
    kind: str  # one of KINDS
    views: list[str]  # the views the finding is about (missing from / extra in / unreadable in)
    detail: str
    values: dict[str, object] = field(default_factory=dict)


@dataclass
class Target:
    """A run or LoggedModel known to MLflow, with its key prefix under the artifact root."""

    kind: str  # "run" | "model"
    id: str
    experiment_id: str
    uri: str
    prefix: str | None  # key prefix ending in '/', None when the URI cannot be mapped
    start_time: int = 0
    source_run_id: str = ""

    @property
    def served(self) -> bool:
        return self.uri.startswith("mlflow-artifacts:")


@dataclass
class Scope:
    prefixes: frozenset[str] | None  # None = everything
    targets: list[Target]
    description: str = "all runs"


@dataclass
class Report:
    views: list[dict]
    findings: list[Finding]
    notes: list[str]
    unavailable: dict[str, str]  # view name -> reason
    error: str | None = None  # bad input
    files: int = 0
    bytes: int = 0
    runs: int = 0
    models: int = 0
    scope: str = "all runs"


# --------------------------------------------------------------------------- pure helpers


def prefix_matcher(prefixes: Iterable[str]) -> Callable[[str], bool]:
    """Predicate: is `key` under one of `prefixes` (each ending in '/', segment aligned)?

    Set lookups on the key's own '/' boundaries: O(depth), not O(len(prefixes)).
    """
    pset = frozenset(prefixes)

    def covers(key: str) -> bool:
        i = key.find("/")
        while i != -1:
            if key[: i + 1] in pset:
                return True
            i = key.find("/", i + 1)
        return False

    return covers


def ancestors_of(prefixes: Iterable[str]) -> frozenset[str]:
    """All proper segment prefixes of `prefixes` ('1/abc/artifacts/' -> '1/', '1/abc/')."""
    out = set()
    for p in prefixes:
        i = p.find("/")
        while i != -1 and i + 1 < len(p):
            out.add(p[: i + 1])
            i = p.find("/", i + 1)
    return frozenset(out)


def uri_to_prefix(uri: str, roots: Iterable[str]) -> str | None:
    """Key prefix ('1/<run>/artifacts/') of an artifact URI, or None when it is not mappable.

    mlflow-artifacts:/1/x and mlflow-artifacts://host:port/1/x -> '1/x/'; a plain path or
    file:// URI -> relative to the first of `roots` (server-side paths) that contains it.
    """
    if uri.startswith("mlflow-artifacts:"):
        path = unquote(urlparse(uri).path).strip("/")
        return path + "/" if path else ""
    if uri.startswith("file:"):
        uri = unquote(urlparse(uri).path)
    if not uri.startswith("/"):
        return None  # s3://, gs://, relative paths: not comparable with a folder
    path = uri.rstrip("/")
    for root in roots:
        root = root.rstrip("/")
        if root and path.startswith(root + "/"):
            return path[len(root) + 1 :] + "/"
    return None


def location_parent(location: str) -> str | None:
    """The artifact root an experiment location lives in: its parent folder (plain paths)."""
    if location.startswith("file:"):
        location = unquote(urlparse(location).path)
    if not location.startswith("/"):
        return None
    return os.path.dirname(location.rstrip("/")) or "/"


def run_of(key: str) -> tuple[str, str]:
    """('run', id) or ('model', id) a key belongs to; ('other', first segments) otherwise."""
    parts = key.split("/", 3)
    if len(parts) >= 3 and parts[1] == "models":
        return ("model", parts[2])
    if len(parts) >= 2:
        return ("run", parts[1])
    return ("other", key)


def readable_by(mode: int, uid: int, gid: int, euid: int, groups: frozenset[int]) -> bool:
    """POSIX read permission from stat bits (owner class first, like the kernel; no ACLs)."""
    if euid == 0:
        return True
    if uid == euid:
        return bool(mode & stat.S_IRUSR)
    if gid in groups:
        return bool(mode & stat.S_IRGRP)
    return bool(mode & stat.S_IROTH)


def parse_manifest(data: bytes, run_prefix: str) -> tuple[dict[str, tuple], list[str]]:
    """Entries {key: (size, sha)} of one manifest, plus the reasons it is invalid (if any).

    Contract: {"format": 1, "experiment", "run_id", "run_name", "created",
    "files": [{"path": relative to the run's artifact root, "size": int, "sha256": hex}]};
    manifest.json itself is not listed (the caller adds it).
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        return {}, [f"invalid manifest: not JSON ({e})"]
    if not isinstance(doc, dict) or doc.get("format") != 1:
        return {}, ['invalid manifest: expected an object with "format": 1']
    files = doc.get("files")
    if not isinstance(files, list):
        return {}, ['invalid manifest: "files" must be a list']
    entries: dict[str, tuple] = {}
    errors = []
    run_id = run_prefix.rstrip("/").split("/")[-2] if run_prefix.count("/") >= 2 else ""
    if run_id and doc.get("run_id") not in (None, run_id):
        errors.append(f"invalid manifest: run_id {doc.get('run_id')!r} but it sits in run {run_id}")
    for i, f in enumerate(files):
        path = f.get("path") if isinstance(f, dict) else None
        if (
            not isinstance(path, str)
            or not path
            or path.startswith("/")
            or ".." in path.split("/")
            or path == MANIFEST
        ):
            errors.append(f"invalid manifest: files[{i}].path {path!r} is not a relative file path")
            continue
        size = f.get("size")
        sha = f.get("sha256")
        size = size if isinstance(size, int) and not isinstance(size, bool) else None
        sha = (
            sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else None
        )
        entries[run_prefix + path] = (size, sha)
    return entries, errors


def manifest_keys(keys: Iterable[str]) -> list[str]:
    """Keys that are a run's manifest: '<exp>/<run>/artifacts/manifest.json'."""
    out = []
    for k in keys:
        if k.endswith("/artifacts/" + MANIFEST):
            parts = k.split("/")
            if len(parts) == 4 and parts[1] != "models":
                out.append(k)
    return out


_FIND_ERR = re.compile(r"^(?:find|sha256sum): '?(?:\./)?(.*?)'?: (.*)$")


def parse_container_output(out: bytes, err: bytes) -> tuple[dict, dict, dict, list[str]]:
    """Parse the NUL-separated output of container_script(): (sizes, shas, problems, notes).

    Records: 'F\\t<size>\\t<path>' a file, 'L\\t<path>' a dangling link, '<sha>  ./<path>' a
    hash (sha256sum -z); stderr lines from find/sha256sum name unreadable paths.
    """
    sizes: dict[str, int | None] = {}
    shas: dict[str, str] = {}
    problems: dict[str, str] = {}
    notes: list[str] = []
    for rec in out.decode("utf-8", "surrogateescape").split("\0"):
        if not rec:
            continue
        if rec.startswith("F\t"):
            _, size, path = rec.split("\t", 2)
            sizes[path] = int(size)
        elif rec.startswith("L\t"):
            problems[rec[2:]] = "dangling symlink"
        elif len(rec) > 66 and rec[64:66] == "  ":
            path = rec[66:]
            shas[path[2:] if path.startswith("./") else path] = rec[:64]
        else:
            notes.append(f"unparsed output: {rec[:80]!r}")
    for line in err.decode("utf-8", "replace").splitlines():
        m = _FIND_ERR.match(line.strip())
        if m and m.group(1) not in ("", "."):
            problems[m.group(1)] = m.group(2)
        elif line.strip():
            notes.append(line.strip())
    return sizes, shas, problems, notes


def container_script(root: str, checksum: bool) -> str:
    """One shell command listing ROOT (follows links like the folder view; LC_ALL=C quotes)."""
    q = "'" + root.replace("'", "'\\''") + "'"
    script = (
        f"export LC_ALL=C; cd {q} || exit 3; "
        r"find -L . \( -type f -printf 'F\t%s\t%P\0' \) -o \( -type l -printf 'L\t%P\0' \)"
    )
    if checksum:
        script += "; find -L . -type f -exec sha256sum -z -- {} +"
    return script


# --------------------------------------------------------------------------- diff


def _presence_finding(key, present, absent, ref) -> Finding:
    """One presence finding, relative to the reference view `ref` (see module docstring)."""
    if ref in present:
        return Finding(
            key,
            "missing",
            absent,
            f"missing from {', '.join(absent)} (present in {', '.join(present)})",
        )
    return Finding(
        key, "extra", present, f"extra in {', '.join(present)} (absent from {', '.join(absent)})"
    )


def _value_findings(key, present, listings_by_name) -> list[Finding]:
    sizes = {
        n: listings_by_name[n].sizes[key]
        for n in present
        if listings_by_name[n].sizes[key] is not None
    }
    if len(set(sizes.values())) > 1:
        shown = " ".join(f"{n}={v}" for n, v in sizes.items())
        return [Finding(key, "size", list(sizes), f"size differs: {shown}", dict(sizes))]
    shas = {n: listings_by_name[n].shas[key] for n in present if key in listings_by_name[n].shas}
    if len(set(shas.values())) > 1:
        shown = " ".join(f"{n}={v[:12]}" for n, v in shas.items())
        return [Finding(key, "checksum", list(shas), f"sha256 differs: {shown}", dict(shas))]
    return []


def diff(listings: list[Listing]) -> list[Finding]:
    """Compare views on the keys each covers; findings sorted by path then kind.

    `listings` come in priority order (manifest, rest, folder, containers): for each path the
    first covering view is the reference for missing/extra.

    Pure: sha256 are compared wherever at least two views know one (the views decide what they
    hash: everything with --checksum, manifest-listed files otherwise).
    """
    by_name = {lst.name: lst for lst in listings}
    findings: list[Finding] = []
    # Keys outside every symmetric difference of (key, size) / (key, sha) pairs against the
    # first view are in ALL views with equal values: no finding. Set operations on dict item
    # views run in C, so 100k agreeing keys cost a few milliseconds.
    rest: set[str] = set()
    if listings:
        first = listings[0]
        for lst in listings[1:]:
            rest.update(k for k, _ in first.sizes.items() ^ lst.sizes.items())
        hashed = [lst.shas for lst in listings if lst.shas]
        for m in hashed[1:]:
            rest.update(k for k, _ in hashed[0].items() ^ m.items())
    for key in rest:
        covering = [lst for lst in listings if lst.covers is None or lst.covers(key)]
        if len(covering) < 2:
            continue  # only one view covers it: nothing to compare against
        present = [lst.name for lst in covering if key in lst.sizes]
        absent = [lst.name for lst in covering if key not in lst.sizes]
        if absent and present:
            findings.append(_presence_finding(key, present, absent, covering[0].name))
        if len(present) > 1:
            findings.extend(_value_findings(key, present, by_name))
    for lst in listings:
        for key, reason in lst.problems.items():
            findings.append(Finding(key, "unreadable", [lst.name], f"{lst.name}: {reason}"))
    findings.sort(key=lambda f: (f.path, KINDS.index(f.kind), f.views))
    return findings


def decide_exit(report: Report) -> int:
    """0 all views agree; 1 differences; 2 a view cannot be read or bad input."""
    if report.error or report.unavailable:
        return 2
    return 1 if report.findings else 0


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def count_runs(keys: Iterable[str]) -> tuple[int, int]:
    runs, models = set(), set()
    for k in keys:
        kind, ident = run_of(k)
        (models if kind == "model" else runs).add(ident)
    return len(runs), len(models)


def verdict(report: Report) -> str:
    code = decide_exit(report)
    if report.error:
        return f"artifacts: {report.error}"
    if report.unavailable:
        why = "; ".join(f"view {n} cannot be read: {r}" for n, r in report.unavailable.items())
        tail = f" ({_plural(len(report.findings), 'difference')} among the others)"
        return f"artifacts: {why}" + (tail if report.findings else "")
    if code == 1:
        runs, models = count_runs(f.path for f in report.findings)
        where = _plural(runs, "run") + (f" and {_plural(models, 'model')}" if models else "")
        return (
            f"artifacts: {_plural(len(report.findings), 'difference')} across {where} (see above)"
        )
    where = _plural(report.runs, "run") + (
        f" and {_plural(report.models, 'logged model')}" if report.models else ""
    )
    return (
        f"artifacts: all {len(report.views)} views agree on {_plural(report.files, 'file')} "
        f"({human_bytes(report.bytes)}) across {where}"
    )


def build_report(
    listings: list[Listing],
    unavailable: dict[str, str],
    notes: list[str],
    scope: str,
    targets: list[Target] | None = None,
) -> Report:
    """Diff the listings into a Report; runs/models counted from REST targets when known."""
    findings = diff(listings)
    universe: set[str] = set()
    total = 0
    for lst in listings:
        for k, s in lst.sizes.items():
            if k not in universe:
                universe.add(k)
                total += s or 0
    if targets:
        runs = sum(1 for t in targets if t.kind == "run" and t.prefix is not None)
        models = sum(1 for t in targets if t.kind == "model" and t.prefix is not None)
    else:
        runs, models = count_runs(universe)
    views = [view_summary(lst) for lst in listings]
    views += [
        {"name": n, "status": "unavailable", "reason": r, "files": None, "bytes": None}
        for n, r in unavailable.items()
    ]
    notes = list(notes) + [f"{lst.name}: {n}" for lst in listings for n in lst.notes]
    return Report(
        views, findings, notes, dict(unavailable), None, len(universe), total, runs, models, scope
    )


def view_summary(lst: Listing) -> dict:
    return {
        "name": lst.name,
        "status": "ok",
        "reason": None,
        "source": lst.source,
        "files": len(lst.sizes),
        "bytes": sum(s or 0 for s in lst.sizes.values()),
        "hashed": len(lst.shas),
        "coverage": lst.coverage,
    }


def report_json(report: Report) -> dict:
    grouped: dict[str, list] = {}
    for f in report.findings:
        grouped.setdefault(f.path, []).append(
            {"kind": f.kind, "views": f.views, "detail": f.detail, "values": f.values}
        )
    return {
        "format": 1,
        "exit_code": decide_exit(report),
        "verdict": verdict(report),
        "error": report.error,
        "scope": report.scope,
        "views": report.views,
        "counts": {
            "differences": len(report.findings),
            "paths": len(grouped),
            "files": report.files,
            "bytes": report.bytes,
            "runs": report.runs,
            "models": report.models,
        },
        "differences": [
            {"path": p, "run": "/".join(run_of(p)), "findings": fs} for p, fs in grouped.items()
        ],
        "notes": report.notes,
    }


def report_table(report: Report) -> str:
    lines = [f"scope: {report.scope}"]
    if report.views:
        lines.append(f"{'VIEW':<20} {'FILES':>8} {'SIZE':>10}  {'COVERAGE':<28} SOURCE")
        for v in report.views:
            if v["status"] != "ok":
                lines.append(f"{v['name']:<20} {'-':>8} {'-':>10}  UNAVAILABLE: {v['reason']}")
                continue
            size = human_bytes(v["bytes"])
            lines.append(
                f"{v['name']:<20} {v['files']:>8} {size:>10}  {v['coverage']:<28} {v['source']}"
            )
    if report.findings:
        npaths = len({f.path for f in report.findings})
        lines.append("")
        lines.append(
            f"DIFFERENCES ({_plural(len(report.findings), 'finding')} in {_plural(npaths, 'path')})"
        )
        last = None
        for i, f in enumerate(report.findings):
            if i >= MAX_TABLE_ROWS:
                lines.append(f"  ... and {len(report.findings) - i} more (use --json for all)")
                break
            if f.path != last:
                lines.append(f"  {f.path}")
                last = f.path
            lines.append(f"      {f.kind:<11}{f.detail}")
    for n in report.notes:
        lines.append(f"note: {n}")
    lines.append(verdict(report))
    return "\n".join(lines)


# --------------------------------------------------------------------------- folder view


def _sha256_fd(fd: int) -> str:
    b = os.read(fd, CHUNK)
    h = hashlib.sha256(b)
    # a short read of a regular file is its end: small files cost one read() call
    while len(b) == CHUNK:
        b = os.read(fd, CHUNK)
        h.update(b)
    return h.hexdigest()


class FolderView:
    """A local folder: iterative os.scandir walk; sha256 only when asked, 1 MiB chunks.

    Symlinks to files are followed; a dangling link or a directory link looping back to an
    ancestor is reported, never followed. `opener` (os.open-like) is injectable for tests.
    """

    def __init__(self, root: str, name: str = "folder", opener=os.open, hash_workers: int = 2):
        self.root = os.path.abspath(root)
        self.name = name
        self.opener = opener
        self.hash_workers = hash_workers  # only for files of 1 MiB and more (see hash_into)

    def list(self, scope: frozenset[str] | None = None, checksum: bool = False) -> Listing:
        root = self.root
        try:
            st = os.stat(root)
        except FileNotFoundError:
            raise ViewUnavailable(f"folder {root} does not exist") from None
        except PermissionError:
            raise ViewUnavailable(f"folder {root}: permission denied") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ViewUnavailable(f"{root} is not a folder")
        sizes: dict[str, int | None] = {}
        shas: dict[str, str] = {}
        problems: dict[str, str] = {}
        euid = os.geteuid()
        groups = frozenset(os.getgroups()) | {os.getegid()}
        partial = ancestors_of(scope) if scope is not None else frozenset()

        def descend(dkey: str, inside: bool) -> bool | None:
            """True: all of the dir is in scope; False: only parts of it; None: skip it."""
            if inside or dkey in scope:
                return True
            return False if dkey in partial else None

        # stack items: (dir path, key prefix, ancestors' (dev, ino), fully inside the scope)
        stack = [(root, "", frozenset({(st.st_dev, st.st_ino)}), scope is None)]
        while stack:
            dpath, kprefix, anc, inside = stack.pop()
            try:
                dfd = os.open(dpath, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as e:
                if not kprefix:
                    raise ViewUnavailable(f"folder {root}: {e.strerror}") from None
                problems[kprefix] = f"directory not readable: {e.strerror}"
                continue
            try:
                # scandir on a dir fd: DirEntry.stat() is an fstatat() relative to it
                with os.scandir(dfd) as it:
                    for e in it:
                        key = kprefix + e.name
                        try:
                            if e.is_file(follow_symlinks=False):  # the hot path: no extra call
                                if inside:
                                    fst = e.stat(follow_symlinks=False)
                                    sizes[key] = fst.st_size
                                    if euid and not readable_by(
                                        fst.st_mode, fst.st_uid, fst.st_gid, euid, groups
                                    ):
                                        problems[key] = "permission denied (not readable)"
                                    elif checksum and fst.st_size < CHUNK:
                                        # open relative to the dir fd: no path walk per file
                                        sha, err = self._hash_at(e.name, dfd)
                                        if sha is None:
                                            problems[key] = err
                                        else:
                                            shas[key] = sha
                                continue
                            if e.is_dir(follow_symlinks=False):
                                sub = descend(key + "/", inside)
                                if sub is not None:
                                    dst = e.stat(follow_symlinks=False)
                                    ident = (dst.st_dev, dst.st_ino)
                                    stack.append(
                                        (dpath + "/" + e.name, key + "/", anc | {ident}, sub)
                                    )
                                continue
                            if not e.is_symlink():
                                if inside:
                                    problems[key] = "not a regular file"
                                continue
                            try:
                                lst = os.stat(e.name, dir_fd=dfd)  # follow the link
                            except FileNotFoundError:
                                if inside:
                                    target = os.readlink(e.name, dir_fd=dfd)
                                    problems[key] = f"dangling symlink -> {target}"
                                continue
                            except OSError as err:  # ELOOP between links, EACCES
                                if inside:
                                    problems[key] = f"symlink not followed: {err.strerror}"
                                continue
                            if stat.S_ISDIR(lst.st_mode):
                                ident = (lst.st_dev, lst.st_ino)
                                sub = descend(key + "/", inside)
                                if sub is None:
                                    continue
                                if ident in anc:  # a link back to an ancestor: never loop
                                    problems[key + "/"] = "directory symlink loop"
                                    continue
                                stack.append((dpath + "/" + e.name, key + "/", anc | {ident}, sub))
                            elif not inside:
                                continue
                            elif stat.S_ISREG(lst.st_mode):
                                sizes[key] = lst.st_size
                                if euid and not readable_by(
                                    lst.st_mode, lst.st_uid, lst.st_gid, euid, groups
                                ):
                                    problems[key] = "permission denied (not readable)"
                            else:
                                problems[key] = "symlink to something not a regular file"
                        except OSError as err:  # vanished while walking, EACCES on stat
                            problems[key] = f"cannot stat: {err.strerror}"
            finally:
                os.close(dfd)
        listing = Listing(
            self.name, root, sizes, shas, problems, None, "all" if scope is None else "scope"
        )
        if checksum:  # big files, links, and what could not be read inline
            self.hash_into(listing, [k for k in sizes if k not in shas and k not in problems])
        return listing

    def _hash_at(self, name: str, dir_fd: int | None = None) -> tuple[str | None, str | None]:
        """(sha256, None) or (None, reason); `name` relative to dir_fd, or a full path."""
        try:
            fd = self.opener(name, os.O_RDONLY, dir_fd=dir_fd)
        except OSError as e:
            return None, f"cannot read: {e.strerror or e}"
        try:
            return _sha256_fd(fd), None
        except OSError as e:
            return None, f"cannot read: {e.strerror or e}"
        finally:
            os.close(fd)

    def _hash_one(self, key: str) -> tuple[str, str | None, str | None]:
        return (key, *self._hash_at(self.root + "/" + key))

    def hash_into(self, listing: Listing, keys: Iterable[str]) -> None:
        """Add sha256 of `keys` (those the listing has) to the listing; failures -> problems.

        Small files are hashed inline: for them threads only fight over the GIL (measured 2-4x
        slower on 100k small files). Files of 1 MiB and more go to a small pool, where
        hashlib and os.read release the GIL and use a second core.
        """
        sizes, shas, problems = listing.sizes, listing.shas, listing.problems
        todo = [k for k in keys if k in sizes and k not in shas]
        big = [k for k in todo if (sizes[k] or 0) >= CHUNK] if self.hash_workers > 1 else []
        pool = ThreadPoolExecutor(self.hash_workers) if big else None
        try:
            pending = pool.map(self._hash_one, big) if pool else ()
            bigset = set(big)
            results = [self._hash_one(k) for k in todo if k not in bigset]
            results.extend(pending)
        finally:
            if pool:
                pool.shutdown()
        for key, sha, err in results:
            if sha is not None:
                shas[key] = sha
            else:
                problems[key] = err

    def read(self, key: str) -> bytes:
        fd = self.opener(self.root + "/" + key, os.O_RDONLY)
        try:
            chunks = []
            while b := os.read(fd, CHUNK):
                chunks.append(b)
            return b"".join(chunks)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- REST view


class RestError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}" if code else f"HTTP {status} {message}")
        self.status, self.code, self.message = status, code, message


class RestView:
    """MLflow's own view (what its UI shows), over the REST API with requests only."""

    name = "rest"

    def __init__(
        self,
        url: str,
        artifact_root: str | None = None,
        timeout=HTTP_TIMEOUT,
        workers: int = REST_WORKERS,
    ):
        self.url = url.rstrip("/")
        self.artifact_root = os.path.abspath(artifact_root) if artifact_root else None
        self.timeout = timeout
        self.workers = workers
        self._local = threading.local()
        self._experiments: list[dict] | None = None
        self.notes: list[str] = []
        self.models_listed = True  # False when the server has no LoggedModels search

    # -- HTTP
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def _request(self, method: str, path: str, *, stream: bool = False, **kw):
        try:
            r = self._session().request(
                method, self.url + path, timeout=self.timeout, stream=stream, **kw
            )
        except requests.ConnectionError as e:
            raise ViewUnavailable(f"MLflow at {self.url} unreachable ({_short(e)})") from None
        except requests.Timeout:
            raise ViewUnavailable(f"MLflow at {self.url} timed out ({self.timeout} s)") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                code, msg = body.get("error_code", ""), body.get("message", "")
            except ValueError:  # e.g. Flask's HTML 500 page (a dangling symlink in a run)
                code, msg = "", (r.reason or "error")
            raise RestError(r.status_code, code, msg)
        return r

    def _json(self, method: str, path: str, **kw) -> dict:
        r = self._request(method, path, **kw)
        try:
            return r.json()
        except ValueError:
            raise ViewUnavailable(f"{self.url}{path} did not answer JSON (is it MLflow?)") from None

    def _paged(self, path: str, body: dict, key: str) -> list[dict]:
        out, token = [], None
        while True:
            doc = self._json(
                "POST", path, json={**body, **({"page_token": token} if token else {})}
            )
            out.extend(doc.get(key, []))
            token = doc.get("next_page_token")
            if not token or not doc.get(key):
                return out

    # -- catalogue
    def experiments(self) -> list[dict]:
        if self._experiments is None:
            self._experiments = self._paged(
                "/api/2.0/mlflow/experiments/search",
                {"max_results": 1000, "view_type": "ALL"},
                "experiments",
            )
        return self._experiments

    def server_roots(self) -> list[str]:
        """Server-side artifact roots: --artifact-root first, then experiments' parents."""
        roots = [self.artifact_root] if self.artifact_root else []
        for e in self.experiments():
            p = location_parent(e.get("artifact_location", ""))
            if p and p not in roots:
                roots.append(p)
        return roots

    def local_root(self) -> str | None:
        """The folder to walk when --artifact-root is not given: the one plain root here."""
        parents = {location_parent(e.get("artifact_location", "")) for e in self.experiments()}
        parents.discard(None)
        if len(parents) > 1:  # experiments created under other roots: keep the local one
            parents = {p for p in parents if os.path.isdir(p)}
        return parents.pop() if len(parents) == 1 else None

    def _target(self, kind, ident, exp_id, uri, start=0, source_run="") -> Target:
        prefix = uri_to_prefix(uri, self.server_roots())
        return Target(kind, ident, str(exp_id), uri, prefix, int(start or 0), source_run or "")

    def _run_target(self, info: dict) -> Target:
        return self._target(
            "run",
            info["run_id"],
            info["experiment_id"],
            info["artifact_uri"],
            info.get("start_time", 0),
        )

    def _runs(self, exp_ids: list[str], limit: int | None = None) -> list[Target]:
        if not exp_ids:
            return []
        body = {
            "experiment_ids": exp_ids,
            "run_view_type": "ALL",
            "max_results": limit or 1000,
            "order_by": ["attributes.start_time DESC"],
        }
        if limit:
            runs = self._json("POST", "/api/2.0/mlflow/runs/search", json=body).get("runs", [])
        else:
            runs = self._paged("/api/2.0/mlflow/runs/search", body, "runs")
        return [self._run_target(r["info"]) for r in runs]

    def _models(self, exp_ids: list[str]) -> list[Target] | None:
        """LoggedModels (MLflow 3) of the experiments; None when the server has no such API."""
        if not exp_ids:
            return []
        try:
            models = self._paged(
                "/api/2.0/mlflow/logged-models/search",
                {"experiment_ids": exp_ids, "max_results": 100},
                "models",
            )
        except RestError as e:
            self.notes.append(f"REST view does not list LoggedModels ({e})")
            return None
        out = []
        for m in models:
            info = m.get("info", {})
            out.append(
                self._target(
                    "model",
                    info["model_id"],
                    info["experiment_id"],
                    info.get("artifact_uri", ""),
                    info.get("creation_timestamp_ms", 0),
                    info.get("source_run_id", ""),
                )
            )
        return out

    def resolve(
        self,
        experiments: tuple[str, ...] = (),
        run_ids: tuple[str, ...] = (),
        last: int | None = None,
    ) -> Scope:
        """Scope -> runs/models (Targets) and key prefixes. BadInput for unknown names/ids."""
        exps = self.experiments()
        if experiments:
            by_name = {e["name"]: e for e in exps}
            unknown = [n for n in experiments if n not in by_name]
            if unknown:
                known = ", ".join(sorted(by_name)) or "none"
                raise BadInput(f"unknown experiment {unknown[0]!r} at {self.url} (known: {known})")
            exp_ids = [by_name[n]["experiment_id"] for n in experiments]
        else:
            exp_ids = [e["experiment_id"] for e in exps]
        if not run_ids and not last:
            runs = self._runs(exp_ids)
            models = self._models(exp_ids)
            if models is None:
                self.models_listed, models = False, []
            if experiments:
                exp_prefixes = set()
                for e in exps:
                    if e["experiment_id"] in exp_ids:
                        p = uri_to_prefix(e.get("artifact_location", ""), self.server_roots())
                        if p is not None:
                            exp_prefixes.add(p)
                prefixes = frozenset(exp_prefixes)
                desc = "experiment " + ", ".join(experiments)
            else:
                prefixes, desc = None, "all runs"
            return self._scope(prefixes, runs + models, desc)
        runs: list[Target] = []
        for rid in run_ids:
            try:
                info = self._json("GET", "/api/2.0/mlflow/runs/get", params={"run_id": rid})
            except RestError as e:
                if e.status == 404 or e.code == "RESOURCE_DOES_NOT_EXIST":
                    raise BadInput(
                        f"unknown run id {rid!r}: MLflow at {self.url} has no such "
                        "run (check the id in the MLflow UI)"
                    ) from None
                raise
            runs.append(self._run_target(info["run"]["info"]))
        if last:
            runs += [r for r in self._runs(exp_ids, limit=last) if r.id not in run_ids]
        run_set = {r.id for r in runs}
        models = self._models(sorted({r.experiment_id for r in runs}))
        if models is None:
            self.models_listed, models = False, []
        models = [m for m in models if m.source_run_id in run_set]
        targets = runs + models
        prefixes = frozenset(t.prefix for t in targets if t.prefix is not None)
        parts = ([f"run {', '.join(run_ids)}"] if run_ids else []) + (
            [f"last {_plural(last, 'run')}"] if last else []
        )
        return self._scope(prefixes, targets, " + ".join(parts))

    def _scope(self, prefixes, targets, desc) -> Scope:
        for t in targets:
            if t.prefix is None:
                self.notes.append(
                    f"{t.kind} {t.id}: artifact URI {t.uri} is not under a known "
                    "artifact root: not compared"
                )
        return Scope(prefixes, targets, desc)

    # -- listing
    def _list_dir(self, t: Target, path: str) -> dict:
        if t.kind == "run":
            params = {"run_id": t.id, **({"path": path} if path else {})}
            return self._json("GET", "/api/2.0/mlflow/artifacts/list", params=params)
        params = {"artifact_directory_path": path} if path else {}
        return self._json(
            "GET",
            f"/api/2.0/mlflow/logged-models/{quote(t.id)}/artifacts/directories",
            params=params,
        )

    def _walk(self, t: Target) -> tuple[dict, dict]:
        sizes: dict[str, int | None] = {}
        problems: dict[str, str] = {}
        todo = [""]
        while todo:
            path = todo.pop()
            try:
                doc = self._list_dir(t, path)
            except RestError as e:
                problems[t.prefix + (path + "/" if path else "")] = f"listing failed: {e}"
                continue
            for f in doc.get("files", []):
                if f.get("is_dir"):
                    todo.append(f["path"])
                else:
                    # artifacts/list leaves file_size out for empty files
                    sizes[t.prefix + f["path"]] = int(f.get("file_size", 0))
        return sizes, problems

    def download_url(self, t: Target, rel: str) -> tuple[str, dict]:
        if t.served:
            return "/api/2.0/mlflow-artifacts/artifacts/" + quote(t.prefix + rel), {}
        if t.kind == "run":
            return "/get-artifact", {"path": rel, "run_uuid": t.id}
        return (
            f"/ajax-api/2.0/mlflow/logged-models/{quote(t.id)}/artifacts/files",
            {"artifact_file_path": rel},
        )

    def _hash(self, t: Target, key: str) -> tuple[str, str | None, str | None]:
        path, params = self.download_url(t, key[len(t.prefix) :])
        try:
            with self._request("GET", path, params=params, stream=True) as r:
                h = hashlib.sha256()
                for chunk in r.iter_content(CHUNK):
                    h.update(chunk)
                return key, h.hexdigest(), None
        except RestError as e:
            return key, None, f"download failed: {e}"

    def read(self, t: Target, key: str) -> bytes:
        path, params = self.download_url(t, key[len(t.prefix) :])
        return self._request("GET", path, params=params).content

    def list(self, scope: Scope, checksum: bool = False) -> Listing:
        targets = [t for t in scope.targets if t.prefix is not None]
        sizes: dict[str, int | None] = {}
        problems: dict[str, str] = {}
        with ThreadPoolExecutor(self.workers) as ex:
            for s, p in ex.map(self._walk, targets):
                sizes.update(s)
                problems.update(p)
            shas: dict[str, str] = {}
            if checksum:
                owner = _owner_map(targets)
                jobs = [(owner(k), k) for k in sizes]
                for key, sha, err in ex.map(lambda a: self._hash(*a), jobs):
                    if sha:
                        shas[key] = sha
                    else:
                        problems[key] = err
        runs = sum(1 for t in targets if t.kind == "run")
        models = len(targets) - runs
        if scope.prefixes is None:
            covers, coverage = None, "all: "
        else:
            covers, coverage = prefix_matcher(scope.prefixes), "scope: "
        if not self.models_listed:
            base = covers
            covers = lambda k, b=base: run_of(k)[0] != "model" and (b is None or b(k))  # noqa: E731
            coverage += "no LoggedModels, "
        coverage += f"{_plural(runs, 'run')}, {_plural(models, 'model')}"
        return Listing(
            self.name, self.url, sizes, shas, problems, covers, coverage, list(self.notes)
        )


def _owner_map(targets: list[Target]) -> Callable[[str], Target]:
    by_prefix = {t.prefix: t for t in targets}

    def owner(key: str) -> Target:
        i = key.find("/")
        while i != -1:
            t = by_prefix.get(key[: i + 1])
            if t is not None:
                return t
            i = key.find("/", i + 1)
        raise KeyError(key)

    return owner


def _short(e: Exception) -> str:
    s = str(e)
    m = re.search(r"\[Errno -?\d+\] ([^')\"]+)", s)
    return m.group(1) if m else s[:120]


# --------------------------------------------------------------------------- manifest view


class ManifestView:
    """What each job says it produced: every run's manifest.json (see parse_manifest)."""

    name = "manifest"

    def __init__(self, reader: Callable[[str], bytes], keys: Iterable[str], source: str):
        self.reader = reader  # key -> bytes (folder file or REST download)
        self.keys = sorted(keys)
        self.source = source

    def list(self) -> Listing:
        entries: dict[str, tuple] = {}
        problems: dict[str, str] = {}
        covered = []
        for mkey in self.keys:
            prefix = mkey[: -len(MANIFEST)]
            try:
                data = self.reader(mkey)
            except (OSError, RestError) as e:
                problems[mkey] = f"manifest not readable: {e}"
                continue
            files, errors = parse_manifest(data, prefix)
            if errors:
                problems[mkey] = "; ".join(errors[:3])
                if not files:
                    continue
            files[mkey] = (len(data), hashlib.sha256(data).hexdigest())
            entries.update(files)
            covered.append(prefix)
        lst = Listing.from_entries(
            self.name,
            entries,
            problems=problems,
            covers=prefix_matcher(covered),
            coverage=f"{_plural(len(covered), 'run')} with {MANIFEST}",
            source=self.source,
        )
        return lst


# --------------------------------------------------------------------------- container view


class ContainerView:
    """A folder inside a container, listed with ONE command (find; sha256sum with checksum).

    exec_prefix defaults to `docker exec NAME`; tests inject [] to run `sh -c` locally.
    """

    def __init__(
        self,
        container: str,
        root: str = "/mlflow/artifacts",
        exec_prefix: list[str] | None = None,
        timeout: float = 600,
    ):
        self.container = container
        self.root = root
        self.exec_prefix = ["docker", "exec", container] if exec_prefix is None else exec_prefix
        self.timeout = timeout
        self.name = f"container:{container}"

    def command(self, checksum: bool) -> list[str]:
        return [*self.exec_prefix, "sh", "-c", container_script(self.root, checksum)]

    def list(self, scope: frozenset[str] | None = None, checksum: bool = False) -> Listing:
        try:
            p = subprocess.run(self.command(checksum), capture_output=True, timeout=self.timeout)
        except FileNotFoundError as e:
            raise ViewUnavailable(f"cannot run {e.filename!r}: not installed") from None
        except subprocess.TimeoutExpired:
            raise ViewUnavailable(f"listing timed out after {self.timeout} s") from None
        if p.returncode != 0 and not p.stdout:
            err = p.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = err[-1] if err else f"exit code {p.returncode}"
            if p.returncode == 3:
                reason = f"folder {self.root} not found in the container ({reason})"
            raise ViewUnavailable(f"{self.container}: {reason}")
        sizes, shas, problems, notes = parse_container_output(p.stdout, p.stderr)
        if scope is not None:
            inside = prefix_matcher(scope)
            sizes = {k: v for k, v in sizes.items() if inside(k)}
            shas = {k: v for k, v in shas.items() if inside(k)}
            problems = {k: v for k, v in problems.items() if inside(k)}
        return Listing(
            self.name,
            f"{self.container}:{self.root}",
            sizes,
            shas,
            problems,
            None,
            "all" if scope is None else "scope",
            notes,
        )


# --------------------------------------------------------------------------- orchestration


def default_mlflow_url() -> str:
    """MLFLOW_TRACKING_URI if it is http(s), else BIND_HOST:MLFLOW_PORT from versions.env."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    if env.startswith(("http://", "https://")):
        return env
    conf: dict[str, str] = {}
    path = Path(__file__).resolve().parent.parent / "versions.env"
    try:
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*([A-Z_][A-Z0-9_]*)=(.*)$", line)
            if m:
                conf[m.group(1)] = m.group(2).strip().strip("'\"")
    except OSError:
        pass
    host = os.environ.get("BIND_HOST", conf.get("BIND_HOST", "127.0.0.1"))
    port = os.environ.get("MLFLOW_PORT", conf.get("MLFLOW_PORT", "5555"))
    return f"http://{host}:{port}"


@dataclass
class Options:
    mlflow_url: str | None = None
    artifact_root: str | None = None
    no_rest: bool = False
    containers: tuple[str, ...] = ()
    experiments: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    last: int | None = None
    checksum: bool = False
    exec_prefix: list[str] | None = None  # tests: run container listings locally


def _bad(msg: str, scope: str = "") -> Report:
    return Report([], [], [], {}, msg, scope=scope)


def run_check(opts: Options) -> Report:
    """Fetch every view, diff them, return the report (no printing)."""
    scoped = bool(opts.experiments or opts.run_ids or opts.last)
    unavailable: dict[str, str] = {}
    notes: list[str] = []
    url = opts.mlflow_url or default_mlflow_url()
    rest = None if opts.no_rest else RestView(url, opts.artifact_root)
    scope = Scope(None, [], "all runs")
    if rest is not None:
        try:
            scope = rest.resolve(opts.experiments, opts.run_ids, opts.last)
        except ViewUnavailable as e:
            unavailable["rest"] = e.reason
            rest = None
        except BadInput as e:
            return _bad(str(e))
        except RestError as e:
            if e.status < 500:
                return _bad(f"MLflow at {url} refused the request: {e}")
            unavailable["rest"] = f"MLflow at {url} failed: {e}"
            rest = None
    if scoped and rest is None:
        why = unavailable.get("rest", "--no-rest given")
        return _bad(
            f"--experiment/--run-id/--last need the MLflow REST API ({why}); "
            "drop them to compare the folders over all runs"
        )
    if rest is not None and not scope.targets:
        return _bad(
            f"no runs found in scope ({scope.description}) at {url}: log a run first, "
            "or widen the scope",
            scope.description,
        )
    root = opts.artifact_root
    if root is None and rest is not None:
        root = rest.local_root()
        if root and not os.path.isdir(root):
            notes.append(
                f"server artifact root {root} is not a local folder: folder view "
                "skipped (pass --artifact-root DIR)"
            )
            root = None
        elif root is None:
            notes.append(
                "no single local artifact root (served mode?): folder view skipped "
                "(pass --artifact-root DIR)"
            )
    listings: list[Listing] = []
    folder_view = folder = None
    if root is not None:
        folder_view = FolderView(root)
        try:
            folder = folder_view.list(scope.prefixes, opts.checksum)
        except ViewUnavailable as e:
            unavailable["folder"] = e.reason
    rest_listing = None
    if rest is not None:
        try:
            rest_listing = rest.list(scope, opts.checksum)
        except ViewUnavailable as e:
            unavailable["rest"] = e.reason
        except RestError as e:  # a catalogue call failed half-way
            unavailable["rest"] = f"MLflow at {url} failed: {e}"
    # manifests: read from the folder, else through REST
    manifest = None
    if folder is not None:
        mv = ManifestView(folder_view.read, manifest_keys(folder.sizes), f"{root} ({MANIFEST})")
        manifest = mv.list()
    elif rest_listing is not None:
        owner = _owner_map([t for t in scope.targets if t.prefix is not None])

        def read_rest(key: str) -> bytes:
            return rest.read(owner(key), key)

        try:
            manifest = ManifestView(
                read_rest, manifest_keys(rest_listing.sizes), f"{url} ({MANIFEST})"
            ).list()
        except ViewUnavailable as e:
            unavailable["manifest"] = e.reason
    if manifest is not None and (manifest.sizes or manifest.problems):
        listings.append(manifest)
        if folder is not None and not opts.checksum:
            folder_view.hash_into(folder, manifest.shas)  # always check what jobs hashed
    elif manifest is not None:
        notes.append(f"no run in scope has a {MANIFEST}: manifest view empty")
    if rest_listing is not None:
        listings.append(rest_listing)
        if not rest.models_listed and folder is not None:
            n = len({run_of(k)[1] for k in folder.sizes if run_of(k)[0] == "model"})
            notes.append(
                f"REST view does not list LoggedModels: {n} folders under models/ "
                "checked by folder view only"
            )
    if folder is not None:
        listings.append(folder)
    for spec in opts.containers:
        cname, _, croot = spec.partition(":")
        cv = ContainerView(cname, croot or "/mlflow/artifacts", opts.exec_prefix)
        try:
            listings.append(cv.list(scope.prefixes, opts.checksum))
        except ViewUnavailable as e:
            unavailable[cv.name] = e.reason
    if root is None and rest is None and not unavailable and not opts.containers:
        return _bad(
            "nothing to compare: with --no-rest pass --artifact-root DIR (and/or --container NAME)"
        )
    if rest is None and not unavailable and not any(lst.sizes for lst in listings):
        where = root or ", ".join(opts.containers)
        return _bad(f"no files found under {where}: empty artifact store", scope.description)
    if not unavailable and len(listings) < 2:
        have = ", ".join(lst.name for lst in listings) or "none"
        hints = (["pass --artifact-root DIR"] if folder is None else []) + (
            ["drop --no-rest"] if opts.no_rest else []
        )
        hints.append("add --container NAME")
        return _bad(
            f"need at least two views to compare (have: {have}): {', or '.join(hints)}",
            scope.description,
        )
    return build_report(listings, unavailable, notes, scope.description, scope.targets)


@click.command("artifacts")
@click.option(
    "--mlflow-url",
    help="MLflow server (default: MLFLOW_TRACKING_URI if http, else "
    "BIND_HOST:MLFLOW_PORT from versions.env).",
)
@click.option(
    "--artifact-root",
    type=click.Path(file_okay=False),
    help="Local artifact root to walk (default: the experiments' plain root).",
)
@click.option("--no-rest", is_flag=True, help="Do not ask MLflow (compare folders only).")
@click.option(
    "--container",
    "containers",
    multiple=True,
    metavar="NAME[:ROOT]",
    help="Also list ROOT (default /mlflow/artifacts) inside this container.",
)
@click.option("--experiment", "experiments", multiple=True, help="Only this experiment (name).")
@click.option("--run-id", "run_ids", multiple=True, help="Only this run (repeatable).")
@click.option("--last", type=click.IntRange(min=1), help="Only the N latest runs (start_time).")
@click.option("--checksum", is_flag=True, help="Compare sha256 of every file, not only sizes.")
@click.option("--json", "as_json", is_flag=True, help="One stable JSON object on stdout.")
def artifacts(
    mlflow_url, artifact_root, no_rest, containers, experiments, run_ids, last, checksum, as_json
):
    """Did every artifact arrive, and do MLflow, the folder, the manifests and containers agree?

    Exit 0 all views agree, 1 differences (each path named with its kind: missing, extra,
    size, checksum, unreadable), 2 a view cannot be read, bad input, or nothing to check.
    """
    opts = Options(
        mlflow_url, artifact_root, no_rest, containers, experiments, run_ids, last, checksum
    )
    report = run_check(opts)
    code = decide_exit(report)
    if as_json:
        click.echo(json.dumps(report_json(report), indent=2, sort_keys=True))
    elif report.error:
        # Like every other tool here: bad input or an unreadable view is one `error:` line.
        click.echo("error: " + verdict(report).removeprefix("artifacts: "), err=True)
    else:
        click.echo(report_table(report))
    sys.exit(code)


if __name__ == "__main__":
    artifacts()
