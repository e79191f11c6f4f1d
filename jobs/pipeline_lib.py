"""Pure helpers shared by the training job and the re-log tool.

Nothing here imports pyspark or mlflow, so unit tests run in a fraction of a second and the job
can fail fast (bad arguments, bad data path, unreachable server) before a JVM starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlparse

MANIFEST_NAME = "manifest.json"
PENDING_NAME = "pending.json"
PARAMS_NAME = "params.json"
METRICS_NAME = "metrics.json"
MANIFEST_FORMAT = 1
# Files at the root of a local copy that are bookkeeping, not artifacts listed in the manifest.
NOT_IN_MANIFEST = frozenset({MANIFEST_NAME, PENDING_NAME})

FORMATS = ("csv", "parquet", "libsvm")
LIBSVM_SUFFIXES = (".txt", ".libsvm", ".svm")
CSV_SUFFIXES = (".csv", ".csv.gz")
# Spark's DataFrame.dtypes names for numeric columns (decimal(p,s) handled separately).
NUMERIC_DTYPES = frozenset({"tinyint", "smallint", "int", "bigint", "float", "double"})

# MLflow's HTTP client retries 7 times with backoff 2 by default: minutes against a dead server.
# These bound one failing call to about 3 x 8 s + 3 s of backoff (names checked in mlflow 3.4.0's
# mlflow/environment_variables.py). A caller's own values win.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "8",
}


class DataError(Exception):
    """Input data that cannot be trained on; the message is one line telling how to fix it."""


# --- arguments --------------------------------------------------------------------------------


def parse_float_list(text: str, name: str, low: float, high: float | None = None) -> list[float]:
    """'0.01, 0.1' -> [0.01, 0.1]; ValueError with a one-line reason otherwise."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not a number (expected e.g. 0.01,0.1)") from None
        if math.isnan(value) or value < low or (high is not None and value > high):
            bound = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise ValueError(f"{name}: {value} is out of range (must be {bound})")
        values.append(value)
    if not values:
        raise ValueError(f"{name}: empty list (expected e.g. 0.01,0.1)")
    # Duplicates would only repeat identical CV fits.
    return list(dict.fromkeys(values))


_RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def make_run_name(now: datetime | None = None, token: str | None = None) -> str:
    """UTC timestamp plus 6 random hex digits: unique across concurrent submits."""
    now = now or datetime.now(timezone.utc)
    token = token if token is not None else secrets.token_hex(3)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{token}"


def check_run_name(name: str) -> str:
    """The run name becomes a directory name: one safe path component."""
    if not _RUN_NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(
            f"run name {name!r} is not usable as a folder name: "
            "use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)"
        )
    return name


def path_component(name: str) -> str:
    """Experiment names may hold '/' or spaces; the local copy needs one folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "experiment"


def run_dir_for(output_dir: str, experiment: str, run_name: str) -> str:
    return os.path.join(output_dir, path_component(experiment), check_run_name(run_name))


def ui_url(tracking_uri: str | None, experiment_id: str, run_id: str) -> str | None:
    if not tracking_uri or urlparse(tracking_uri).scheme not in ("http", "https"):
        return None
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def utc_now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- data source ------------------------------------------------------------------------------


def _local_path(path: str) -> str | None:
    """The local filesystem path behind PATH, or None for remote URIs (hdfs://, s3a://)."""
    parsed = urlparse(path)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme == "file" else path
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return path
    return None


def absolute_local_path(path: str) -> str:
    """Relative local paths made absolute; URIs (file://, hdfs://, s3a://) left as they are."""
    return os.path.abspath(path) if urlparse(path).scheme == "" else path


def detect_format(path: str, requested: str = "auto") -> str:
    """csv | parquet | libsvm from --format, else from the suffix (or a folder's contents)."""
    if requested != "auto":
        if requested not in FORMATS:
            raise DataError(f"unknown format {requested!r}: use one of auto, {', '.join(FORMATS)}")
        return requested
    lowered = path.rstrip("/").lower()
    if lowered.endswith(CSV_SUFFIXES):
        return "csv"
    if lowered.endswith(".parquet"):
        return "parquet"
    if lowered.endswith(LIBSVM_SUFFIXES):
        return "libsvm"
    local = _local_path(path)
    if local and os.path.isdir(local):
        names = [n.lower() for n in os.listdir(local)]
        # Spark writes a dataset as a folder of part files: parquet wins when both are present.
        if any(n.endswith(".parquet") for n in names):
            return "parquet"
        if any(n.endswith(CSV_SUFFIXES) for n in names):
            return "csv"
    raise DataError(
        f"cannot tell the format of {path} (expected a .csv, .parquet, .txt/.libsvm/.svm file "
        "or a folder of Parquet files): pass --format csv|parquet|libsvm"
    )


def check_data_source(path: str, requested: str = "auto") -> str:
    """Checks that need no Spark: the path exists and is not empty, the format is known."""
    local = _local_path(path)
    if local is not None:
        if not os.path.exists(local):
            raise DataError(f"data not found: {path} does not exist (pass --data PATH or set DATA)")
        if os.path.isfile(local) and os.path.getsize(local) == 0:
            raise DataError(f"data file {path} is empty (0 bytes)")
    return detect_format(path, requested)


def is_numeric_dtype(dtype: str) -> bool:
    return dtype in NUMERIC_DTYPES or dtype.startswith("decimal")


def check_label_column(columns: list[str], label: str, source: str = "the data") -> None:
    if label not in columns:
        found = ", ".join(columns) if columns else "(none)"
        raise DataError(
            f"label column {label!r} not found in {source}; columns found: {found} "
            "(pass --label NAME)"
        )


def select_feature_columns(
    dtypes: list[tuple[str, str]], label: str, source: str = "the data"
) -> tuple[list[str], list[str]]:
    """Features are all numeric columns but the label; returns (features, dropped non-numeric)."""
    check_label_column([name for name, _ in dtypes], label, source)
    features = [n for n, t in dtypes if n != label and is_numeric_dtype(t)]
    dropped = [n for n, t in dtypes if n != label and not is_numeric_dtype(t)]
    if not features:
        extra = f" (non-numeric columns: {', '.join(dropped)})" if dropped else ""
        raise DataError(f"no usable numeric feature columns in {source} besides {label!r}{extra}")
    return features, dropped


def _as_binary(value) -> float | None:
    """0/1 (int, float, bool or decimal) -> 0.0/1.0; anything else -> None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        if number in (0.0, 1.0):
            return number
    return None


def check_label_values(label: str, values: list, n_rows: int, source: str = "the data") -> None:
    """The distinct non-null label values must be exactly {0, 1}."""
    if n_rows == 0:
        raise DataError(f"{source} has no rows (after dropping rows with missing values)")
    if not values:
        raise DataError(f"label column {label!r} in {source} has no non-null values")
    bad = [v for v in values if _as_binary(v) is None]
    if bad:
        shown = ", ".join(repr(v) for v in sorted(values, key=str)[:5])
        raise DataError(
            f"label column {label!r} in {source} is not binary 0/1 (values found: {shown}): "
            "encode the two classes as 0 and 1"
        )
    classes = {_as_binary(v) for v in values}
    if len(classes) < 2:
        (only,) = classes
        raise DataError(
            f"label column {label!r} in {source} has only one class ({only:g}) in {n_rows} rows: "
            "need rows of both class 0 and class 1"
        )


def check_split(train_counts: dict, test_counts: dict, folds: int) -> None:
    """Each split needs both classes (AUC is undefined otherwise) and CV needs >= folds rows."""
    n_train, n_test = sum(train_counts.values()), sum(test_counts.values())
    if n_train < folds or n_test == 0:
        raise DataError(
            f"too few rows to split: {n_train} for training ({folds} folds), {n_test} for testing "
            "(use more data or change --test-fraction/--folds)"
        )
    for name, counts in (("training", train_counts), ("test", test_counts)):
        present = {float(k) for k, v in counts.items() if v > 0}
        if present != {0.0, 1.0}:
            raise DataError(
                f"the {name} split has only class {sorted(present)} "
                f"({n_train} train / {n_test} test rows): use more data, another --seed "
                "or a larger --test-fraction"
            )


# --- metrics ----------------------------------------------------------------------------------


def confusion_counts(rows) -> dict[str, int]:
    """(label, prediction, count) triples -> tp/fp/tn/fn for the positive class 1."""
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for label, prediction, count in rows:
        actual, predicted = float(label) == 1.0, float(prediction) == 1.0
        key = ("t" if actual == predicted else "f") + ("p" if predicted else "n")
        counts[key] += int(count)
    return counts


def _ratio(num: float, den: float) -> float:
    # 0/0 happens for a model that never predicts the positive class: report 0, not NaN,
    # so the value stays valid JSON and comparable in the MLflow UI.
    return num / den if den else 0.0


def binary_metrics(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
    }


def cv_grid_rows(grid: list[dict], avg_metrics: list[float], std_metrics=None) -> list[dict]:
    """One row per grid point: grid_index, the params, mean (and std) AUC over folds."""
    if len(grid) != len(avg_metrics):
        raise ValueError(f"{len(grid)} grid points but {len(avg_metrics)} CV metrics")
    rows = []
    for index, params in enumerate(grid):
        row = {"grid_index": index, **params, "mean_auc": float(avg_metrics[index])}
        if std_metrics is not None:
            row["std_auc"] = float(std_metrics[index])
        rows.append(row)
    return rows


def spark_model_problems(model_dir: str) -> list[str]:
    """Stages saved with no data: the silent loss when MLFLOW_DFS_TMP is not shared by executors.

    Spark writes each stage as metadata/ (+ data/ for fitted models) of part-* files; when the
    executors wrote to their own /tmp only _SUCCESS markers reach the driver.
    """
    problems = []
    for dirpath, dirnames, filenames in os.walk(model_dir):
        if os.path.basename(dirpath) in ("metadata", "data"):
            parts = [f for f in filenames if f.startswith("part-") and not f.endswith(".crc")]
            if not any(os.path.getsize(os.path.join(dirpath, f)) > 0 for f in parts):
                problems.append(os.path.relpath(dirpath, model_dir).replace(os.sep, "/"))
        dirnames.sort()
    if not problems and not os.path.isdir(model_dir):
        problems.append(f"{model_dir} does not exist")
    return problems


# --- manifest ---------------------------------------------------------------------------------


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root_dir: str) -> list[str]:
    """Every file under ROOT_DIR as a '/'-separated relative path, sorted, bookkeeping excluded."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(root_dir):
        dirnames.sort()
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), root_dir).replace(os.sep, "/")
            if rel not in NOT_IN_MANIFEST:
                paths.append(rel)
    return sorted(paths)


def build_manifest(
    root_dir: str,
    experiment: str | None = None,
    run_id: str | None = None,
    run_name: str | None = None,
    created: str | None = None,
) -> dict:
    """The manifest of a local copy (format 1, shared with the check-artifacts tool)."""
    files = []
    for rel in list_files(root_dir):
        full = os.path.join(root_dir, *rel.split("/"))
        files.append({"path": rel, "size": os.path.getsize(full), "sha256": _sha256(full)})
    return {
        "format": MANIFEST_FORMAT,
        "experiment": experiment,
        "run_id": run_id,
        "run_name": run_name or os.path.basename(os.path.abspath(root_dir)),
        "created": created or utc_now_iso(),
        "files": files,
    }


def _unsafe(rel: str) -> bool:
    return rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in rel.split("/"))


def verify_manifest(root_dir: str, manifest) -> list[str]:
    """Problems between ROOT_DIR and MANIFEST (missing, changed, unlisted files); [] when equal."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return ["manifest is not an object with a 'files' list"]
    if manifest.get("format") != MANIFEST_FORMAT:
        return [f"manifest format {manifest.get('format')!r} is not {MANIFEST_FORMAT}"]
    problems, listed = [], set()
    for entry in manifest["files"]:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or _unsafe(rel):
            problems.append(f"bad manifest entry: {entry!r}")
            continue
        listed.add(rel)
        full = os.path.join(root_dir, *rel.split("/"))
        if not os.path.isfile(full):
            problems.append(f"missing: {rel}")
            continue
        size = os.path.getsize(full)
        if size != entry.get("size"):
            problems.append(f"size differs: {rel} (manifest {entry.get('size')}, found {size})")
        elif _sha256(full) != entry.get("sha256"):
            problems.append(f"content differs: {rel} (sha256 mismatch)")
    for rel in list_files(root_dir):
        if rel not in listed:
            problems.append(f"not in manifest: {rel}")
    return problems


def write_json(path: str, data) -> None:
    """Write via a temp file and rename, so a crash never leaves half a JSON file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        # Key order is kept as given: the manifest reads format, experiment, run_id, ... files.
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")
    os.replace(tmp, path)


def read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# --- MLflow server ----------------------------------------------------------------------------


def set_mlflow_http_defaults(environ=os.environ) -> None:
    for key, value in MLFLOW_HTTP_DEFAULTS.items():
        environ.setdefault(key, value)


_TRANSPORT_ERRORS = (
    ("name or service not known", "host name does not resolve"),
    ("name resolution", "host name does not resolve"),
    ("connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("failed to establish a new connection", "cannot connect"),
    ("connection aborted", "connection dropped"),
    ("remotedisconnected", "connection dropped"),
)


def describe_error(exc: BaseException, limit: int = 200) -> str:
    """One short line for an exception (its first line, type name if it has no message)."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    # MLflow wraps transport errors in a long "API request to URL failed with exception ..."
    lowered = line.lower()
    for needle, short in _TRANSPORT_ERRORS:
        if needle in lowered:
            return short
    return line if len(line) <= limit else line[: limit - 3] + "..."


def is_transport_error(reason: str) -> bool:
    """True for describe_error()'s short forms of network failures (server down or hung)."""
    return reason in {short for _, short in _TRANSPORT_ERRORS}


def tracking_server_problem(uri: str | None, timeout: float = 5.0) -> str | None:
    """None when GET URI/health answers 200, else the reason (one line); non-HTTP URIs pass."""
    if not uri:
        return "MLFLOW_TRACKING_URI is not set"
    if urlparse(uri).scheme not in ("http", "https"):
        return None
    import requests  # only here: the pure helpers above stay importable without it

    try:
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except requests.Timeout:
        return f"no answer within {timeout:g} s"
    except requests.RequestException as exc:
        return describe_error(exc)
    if response.status_code != 200:
        return f"GET /health answered HTTP {response.status_code}"
    return None


def unreachable_message(uri: str | None, reason: str) -> str:
    return (
        f"error: MLflow tracking server at {uri or '(unset)'} is not reachable ({reason}): "
        "start it with `make up` or set MLFLOW_TRACKING_URI"
    )
