"""Pure parts of the training job: arguments, data checks, metrics, server check."""

import http.server
import socket
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"
sys.path.insert(0, str(JOBS_DIR))

import pipeline_lib as lib  # noqa: E402
from pipeline_lib import DataError  # noqa: E402

# --- format detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.csv", "csv"),
        ("DATA.CSV", "csv"),
        ("data.csv.gz", "csv"),
        ("data.parquet", "parquet"),
        ("out.parquet/", "parquet"),
        ("sample_binary_classification_data.txt", "libsvm"),
        ("x.libsvm", "libsvm"),
        ("x.svm", "libsvm"),
        ("hdfs://nn:8020/data/x.csv", "csv"),
    ],
)
def test_detect_format_by_suffix(name, expected):
    assert lib.detect_format(name) == expected


def test_detect_format_of_a_spark_output_folder(tmp_path):
    parquet = tmp_path / "table"
    parquet.mkdir()
    (parquet / "_SUCCESS").write_bytes(b"")
    (parquet / "part-00000-abc.snappy.parquet").write_bytes(b"PAR1")
    assert lib.detect_format(str(parquet)) == "parquet"
    csv_dir = tmp_path / "csvs"
    csv_dir.mkdir()
    (csv_dir / "part-00000.csv").write_text("a,label\n")
    assert lib.detect_format(str(csv_dir)) == "csv"


def test_detect_format_unknown_says_how_to_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    for path in (str(tmp_path / "data.json"), str(tmp_path / "empty")):
        with pytest.raises(DataError, match=r"pass --format csv\|parquet\|libsvm"):
            lib.detect_format(path)


def test_explicit_format_wins_and_is_checked():
    assert lib.detect_format("data.json", "csv") == "csv"
    assert lib.detect_format("data.csv", "libsvm") == "libsvm"
    with pytest.raises(DataError, match="unknown format 'json'"):
        lib.detect_format("data.json", "json")


def test_check_data_source_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match=r"does not exist \(pass --data PATH or set DATA\)"):
        lib.check_data_source(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="does not exist"):
        lib.check_data_source(f"file://{tmp_path}/nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"is empty \(0 bytes\)"):
        lib.check_data_source(str(empty))
    good = tmp_path / "d.txt"
    good.write_text("1 1:0.5\n")
    assert lib.check_data_source(str(good)) == "libsvm"


def test_check_data_source_leaves_remote_paths_to_spark():
    assert lib.check_data_source("s3a://bucket/none/x.parquet") == "parquet"


# --- columns and labels -------------------------------------------------------------------------


def test_features_are_numeric_columns_except_label():
    dtypes = [
        ("id", "bigint"),
        ("age", "int"),
        ("income", "decimal(10,2)"),
        ("name", "string"),
        ("score", "double"),
        ("when", "timestamp"),
        ("y", "int"),
    ]
    features, dropped = lib.select_feature_columns(dtypes, "y")
    assert features == ["id", "age", "income", "score"]
    assert dropped == ["name", "when"]


def test_missing_label_names_the_columns_found():
    with pytest.raises(DataError) as info:
        lib.select_feature_columns([("a", "int"), ("b", "double")], "target", source="d.csv")
    assert str(info.value) == (
        "label column 'target' not found in d.csv; columns found: a, b (pass --label NAME)"
    )
    with pytest.raises(DataError, match=r"columns found: \(none\)"):
        lib.check_label_column([], "label")


def test_no_numeric_feature_lists_what_was_dropped():
    with pytest.raises(DataError, match=r"no usable numeric feature.*non-numeric columns: name"):
        lib.select_feature_columns([("name", "string"), ("label", "int")], "label")
    with pytest.raises(DataError, match="no usable numeric feature"):
        lib.select_feature_columns([("label", "int")], "label")


@pytest.mark.parametrize(
    "values",
    [[0, 1], [1.0, 0.0], [True, False], [Decimal("0"), Decimal("1.0")], [1, 0.0]],
)
def test_binary_labels_pass(values):
    lib.check_label_values("y", values, n_rows=10)


def test_non_binary_labels_show_values_found():
    with pytest.raises(DataError) as info:
        lib.check_label_values("y", [2, 0, 1], n_rows=10, source="d.csv")
    assert str(info.value) == (
        "label column 'y' in d.csv is not binary 0/1 (values found: 0, 1, 2): "
        "encode the two classes as 0 and 1"
    )
    with pytest.raises(DataError, match=r"values found: 'M', 'B'|values found: 'B', 'M'"):
        lib.check_label_values("y", ["M", "B"], n_rows=10)
    with pytest.raises(DataError, match="not binary"):
        lib.check_label_values("y", [0.5, 1.0], n_rows=10)


def test_one_class_and_no_rows():
    with pytest.raises(DataError, match=r"only one class \(1\) in 7 rows"):
        lib.check_label_values("y", [1], n_rows=7)
    with pytest.raises(DataError, match="has no rows"):
        lib.check_label_values("y", [], n_rows=0)


def test_split_needs_both_classes_and_enough_rows():
    lib.check_split({0.0: 30, 1.0: 40}, {0.0: 5, 1.0: 6}, folds=3)
    with pytest.raises(DataError, match=r"too few rows.*2 for training \(3 folds\), 1 for testing"):
        lib.check_split({0.0: 1, 1.0: 1}, {1.0: 1}, folds=3)
    with pytest.raises(DataError, match=r"the test split has only class \[1.0\]"):
        lib.check_split({0.0: 30, 1.0: 40}, {1.0: 6}, folds=3)
    with pytest.raises(DataError, match="training split"):
        lib.check_split({0.0: 30, 1.0: 0}, {0.0: 5, 1.0: 6}, folds=3)


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_from_a_small_confusion_matrix():
    # label, prediction, count as Spark's groupBy returns them (floats, any order)
    counts = lib.confusion_counts([(1.0, 1.0, 8), (0.0, 1.0, 2), (0.0, 0.0, 5), (1.0, 0.0, 1)])
    assert counts == {"tp": 8, "fp": 2, "tn": 5, "fn": 1}
    m = lib.binary_metrics(**counts)
    assert m["accuracy"] == pytest.approx(13 / 16)
    assert m["precision"] == pytest.approx(8 / 10)
    assert m["recall"] == pytest.approx(8 / 9)
    assert m["f1"] == pytest.approx(2 * 8 / (2 * 8 + 2 + 1))


def test_metrics_without_positive_predictions_are_zero_not_nan():
    m = lib.binary_metrics(tp=0, fp=0, tn=9, fn=3)
    assert m == {"accuracy": 0.75, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert lib.binary_metrics(0, 0, 0, 0)["accuracy"] == 0.0


def test_cv_grid_rows_pair_params_with_their_auc():
    grid = [{"regParam": 0.01, "elasticNetParam": 0.0}, {"regParam": 0.1, "elasticNetParam": 0.5}]
    rows = lib.cv_grid_rows(grid, [0.9, 0.95], [0.01, 0.02])
    assert rows[1] == {
        "grid_index": 1,
        "regParam": 0.1,
        "elasticNetParam": 0.5,
        "mean_auc": 0.95,
        "std_auc": 0.02,
    }
    assert "std_auc" not in lib.cv_grid_rows(grid, [0.9, 0.95])[0]
    with pytest.raises(ValueError, match="2 grid points but 1 CV metrics"):
        lib.cv_grid_rows(grid, [0.9])


def test_spark_model_without_data_is_reported(tmp_path):
    """The silent loss: executors wrote to their own /tmp, only _SUCCESS markers came back."""
    stage = tmp_path / "sparkml" / "stages" / "1_LogisticRegression_abc"
    (tmp_path / "sparkml" / "metadata").mkdir(parents=True)
    (tmp_path / "sparkml" / "metadata" / "part-00000").write_text('{"class": "Pipeline"}')
    (stage / "metadata").mkdir(parents=True)
    (stage / "metadata" / "part-00000").write_text("{}")
    (stage / "data").mkdir()
    (stage / "data" / "_SUCCESS").write_bytes(b"")
    (stage / "data" / ".part-00000.snappy.parquet.crc").write_bytes(b"crc")
    assert lib.spark_model_problems(str(tmp_path / "sparkml")) == [
        "stages/1_LogisticRegression_abc/data"
    ]
    (stage / "data" / "part-00000.snappy.parquet").write_bytes(b"PAR1")
    assert lib.spark_model_problems(str(tmp_path / "sparkml")) == []
    assert lib.spark_model_problems(str(tmp_path / "nothing")) != []


# --- arguments and names ------------------------------------------------------------------------


def test_parse_float_list():
    assert lib.parse_float_list(" 0.01, 0.1,0.01 ", "--reg-params", 0.0) == [0.01, 0.1]
    with pytest.raises(ValueError, match="'x' is not a number"):
        lib.parse_float_list("0.1,x", "--reg-params", 0.0)
    with pytest.raises(ValueError, match=r"1.5 is out of range \(must be \[0.0, 1.0\]\)"):
        lib.parse_float_list("0,1.5", "--elastic-net-params", 0.0, 1.0)
    with pytest.raises(ValueError, match="empty list"):
        lib.parse_float_list(" , ", "--reg-params", 0.0)
    with pytest.raises(ValueError, match="out of range"):
        lib.parse_float_list("nan", "--reg-params", 0.0)


def test_run_names_are_timestamped_unique_folder_names():
    now = datetime(2026, 12, 3, 13, 5, 9, tzinfo=timezone.utc)
    assert lib.make_run_name(now, "a1b2c3") == "20261203T130509Z-a1b2c3"
    names = {lib.make_run_name(now) for _ in range(50)}
    assert len(names) > 45  # 6 random hex digits: concurrent submits in one second differ
    for name in names:
        assert lib.check_run_name(name) == name


@pytest.mark.parametrize("bad", ["", "a/b", "..", ".hidden", "a b", "x" * 129, "../x"])
def test_run_names_that_are_not_one_folder_are_refused(bad):
    with pytest.raises(ValueError, match="not usable as a folder name"):
        lib.check_run_name(bad)


def test_experiment_names_become_one_folder(tmp_path):
    assert lib.path_component("spark-ml-pipeline") == "spark-ml-pipeline"
    assert lib.path_component("/Users/me/My exp") == "Users_me_My_exp"
    assert lib.path_component("..") == "experiment"
    assert lib.run_dir_for(str(tmp_path), "a/b", "r1") == str(tmp_path / "a_b" / "r1")


def test_ui_url():
    assert (
        lib.ui_url("http://127.0.0.1:5555/", "3", "abc")
        == "http://127.0.0.1:5555/#/experiments/3/runs/abc"
    )
    assert lib.ui_url("file:///tmp/mlruns", "3", "abc") is None
    assert lib.ui_url(None, "3", "abc") is None


def test_http_defaults_bound_retries_but_respect_the_caller():
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
    lib.set_mlflow_http_defaults(env)
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    retries, backoff = 2, 1
    # urllib3: no sleep before the first retry, then backoff * 2**(n-1), plus up to 1 s jitter
    sleeps = sum(backoff * 2 ** (n - 1) + 1 for n in range(2, retries + 1))
    assert (retries + 1) * int(
        lib.MLFLOW_HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    ) + sleeps < 30


def test_describe_error_shortens_mlflow_transport_errors():
    long = (
        "API request to http://h:5555/api/2.0/mlflow/runs/log-batch failed with exception "
        "HTTPConnectionPool(host='h', port=5555): Max retries exceeded (Caused by "
        "NewConnectionError('Failed to establish a new connection: "
        "[Errno 111] Connection refused'))"
    )
    assert lib.describe_error(Exception(long)) == "connection refused"
    assert lib.describe_error(ValueError("")) == "ValueError"
    assert lib.describe_error(Exception("first\nsecond")) == "first"
    assert len(lib.describe_error(Exception("x" * 500))) == 200


# --- tracking server check ----------------------------------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    servers = []

    def start(status):
        handler = type("H", (_Health,), {"status": status})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_tracking_server_check(health_server):
    assert lib.tracking_server_problem(health_server(200)) is None
    assert lib.tracking_server_problem(health_server(200) + "/") is None
    assert lib.tracking_server_problem(health_server(503)) == "GET /health answered HTTP 503"


def test_tracking_server_check_without_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert lib.tracking_server_problem(f"http://127.0.0.1:{port}") == "connection refused"
    assert lib.tracking_server_problem(None) == "MLFLOW_TRACKING_URI is not set"
    assert lib.tracking_server_problem("databricks") is None


def test_tracking_server_check_times_out_quickly():
    # A listening socket that never answers: the check must give up after its timeout.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        problem = lib.tracking_server_problem(f"http://127.0.0.1:{port}", timeout=0.3)
    assert problem == "no answer within 0.3 s"


def test_unreachable_message_is_one_line_with_the_fix():
    msg = lib.unreachable_message("http://h:5555", "connection refused")
    assert msg == (
        "error: MLflow tracking server at http://h:5555 is not reachable (connection refused): "
        "start it with `make up` or set MLFLOW_TRACKING_URI"
    )


def test_transport_errors_are_told_apart_from_refusals():
    assert lib.is_transport_error(lib.describe_error(Exception("Read timed out. (read timeout=8)")))
    assert lib.is_transport_error("connection refused")
    assert not lib.is_transport_error(lib.describe_error(Exception("INVALID_PARAMETER_VALUE: x")))


def test_relative_data_paths_become_absolute_uris_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lib.absolute_local_path("d/x.csv") == str(tmp_path / "d" / "x.csv")
    assert lib.absolute_local_path("/abs/x.csv") == "/abs/x.csv"
    assert lib.absolute_local_path("hdfs://nn/x.csv") == "hdfs://nn/x.csv"
    assert lib.absolute_local_path("file:///x.csv") == "file:///x.csv"
