"""Train a binary classifier with cross-validation on Spark and track it in MLflow.

Run with spark-submit (the master comes from spark-submit, never from this file):

    spark-submit --master spark://HOST:7077 jobs/train_classifier.py [--data PATH] [--folds 3] ...

Pipeline: (VectorAssembler for CSV/Parquet) -> StandardScaler -> LogisticRegression, tuned by
CrossValidator over regParam x elasticNetParam. Everything the run logs is first written to a
local copy, OUTPUT_DIR/<experiment>/<run-name>/, with a manifest.json of sizes and checksums, and
then uploaded with one log_artifacts call, so the run's artifacts are exactly that copy.

Exit codes: 0 logged; 2 bad arguments or data; 3 MLflow not reachable at start; 4 logging failed
at the end (local copy kept, pending.json written: re-log with jobs/relog.py); 5 the saved model
has stages without data (MLFLOW_DFS_TMP not shared by driver and executors).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_lib as lib  # noqa: E402  (sibling module; spark-submit runs this file as a script)

EXIT_DATA, EXIT_UNREACHABLE, EXIT_PENDING, EXIT_MODEL = 2, 3, 4, 5
JOB_DIR = os.path.dirname(os.path.abspath(__file__))
# Column names the pipeline creates: a data column with one of these names would collide.
RAW_FEATURES, SCALED_FEATURES = "__raw_features", "__scaled_features"
OUTPUT_COLUMNS = ("prediction", "probability", "rawPrediction", RAW_FEATURES, SCALED_FEATURES)


class JobError(Exception):
    """A failure reported as one line with its own exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def default_data_path() -> str:
    """pyspark's bundled LibSVM sample; under spark-submit pyspark is imported from a zip, so
    look in SPARK_HOME first, then in the installed package's folder."""
    rel = os.path.join("data", "mllib", "sample_binary_classification_data.txt")
    candidates = []
    if os.environ.get("SPARK_HOME"):
        candidates.append(os.path.join(os.environ["SPARK_HOME"], rel))
    try:
        from importlib.util import find_spec

        spec = find_spec("pyspark")
        if spec and spec.origin and os.path.isfile(spec.origin):
            candidates.append(os.path.join(os.path.dirname(spec.origin), rel))
    except (ImportError, ValueError):
        pass
    for path in candidates:
        if os.path.isfile(path):
            return path
    return candidates[0] if candidates else rel


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments get one line (what is wrong, where to look), not the whole usage text."""

    def error(self, message):
        self.exit(EXIT_DATA, f"error: {message} (see --help)\n")


def parse_args(argv=None) -> argparse.Namespace:
    env = os.environ.get
    parser = OneLineParser(
        description="Cross-validated logistic regression on Spark, tracked in MLflow."
    )
    parser.add_argument("--experiment", default=env("EXPERIMENT", "spark-ml-pipeline"))
    parser.add_argument(
        "--data",
        default=env("DATA"),
        help="CSV, Parquet or LibSVM (default: pyspark's sample_binary_classification_data.txt)",
    )
    parser.add_argument("--label", default=env("LABEL", "label"), help="label column (CSV/Parquet)")
    parser.add_argument("--format", default="auto", choices=("auto",) + lib.FORMATS)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--reg-params", default="0.01,0.1")
    parser.add_argument("--elastic-net-params", default="0.0,0.5")
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default=env("OUTPUT_DIR", os.path.join("work", "output")))
    parser.add_argument("--run-name", default=None, help="default: UTC timestamp + 6 hex digits")
    args = parser.parse_args(argv)
    try:
        args.reg_params = lib.parse_float_list(args.reg_params, "--reg-params", 0.0)
        args.elastic_net_params = lib.parse_float_list(
            args.elastic_net_params, "--elastic-net-params", 0.0, 1.0
        )
        if args.folds < 2:
            raise ValueError(f"--folds must be at least 2 (got {args.folds})")
        if args.max_iter < 1:
            raise ValueError(f"--max-iter must be at least 1 (got {args.max_iter})")
        if not 0.0 < args.test_fraction < 1.0:
            raise ValueError(f"--test-fraction must be between 0 and 1 (got {args.test_fraction})")
        args.run_name = lib.check_run_name(args.run_name or lib.make_run_name())
    except ValueError as exc:
        parser.error(str(exc))
    # Absolute: on a cluster the executors' working folder is not the submitter's.
    args.data = lib.absolute_local_path(args.data or default_data_path())
    args.output_dir = os.path.abspath(args.output_dir)
    return args


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", JOB_DIR, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


# --- Spark phases -------------------------------------------------------------------------------


def load_data(spark, path: str, fmt: str, label: str) -> dict:
    """Read and validate; returns the cleaned DataFrame and what the pipeline needs to know."""
    from pyspark.sql import functions as F

    notes = []
    if fmt == "libsvm":
        if label != "label":
            notes.append(f"note: --label {label} ignored: LibSVM data has its label in 'label'")
        label = "label"
        df = spark.read.format("libsvm").load(path)
    elif fmt == "csv":
        df = spark.read.option("header", True).option("inferSchema", True).csv(path)
    else:
        df = spark.read.parquet(path)
    if fmt != "libsvm":
        lib.check_label_column(df.columns, label, source=path)
    # Before the feature check: a header-only CSV infers every column as string.
    n_loaded = df.count()
    if n_loaded == 0:
        raise lib.DataError(f"{path} has no rows")
    if fmt == "libsvm":
        features, feature_col = ["features"], "features"
    else:
        reserved = [c for c in df.columns if c in OUTPUT_COLUMNS and c != label]
        if reserved:
            names = ", ".join(reserved)
            notes.append(f"note: dropped columns named like pipeline outputs: {names}")
            df = df.drop(*reserved)
        features, dropped = lib.select_feature_columns(df.dtypes, label, source=path)
        if dropped:
            notes.append(f"note: dropped non-numeric columns: {', '.join(dropped)}")
        feature_col = RAW_FEATURES
    # VectorAssembler fails on nulls; count what is dropped instead of failing mid-training.
    df = df.dropna(subset=[label] + ([] if fmt == "libsvm" else features))
    values = [r[0] for r in df.select(label).distinct().limit(10).collect()]
    df = df.withColumn(label, F.col(label).cast("double")).cache()
    n_rows = df.count()
    lib.check_label_values(label, values, n_rows, source=path)
    if n_rows < n_loaded:
        notes.append(f"note: dropped {n_loaded - n_rows} of {n_loaded} rows with missing values")
    if fmt == "libsvm":
        n_features = df.select("features").first()[0].size
        if n_features == 0:
            raise lib.DataError(f"no usable numeric feature columns in {path} (vectors of size 0)")
    else:
        n_features = len(features)
    return {
        "df": df,
        "label": label,
        "features": features,
        "feature_col": feature_col,
        "n_features": n_features,
        "rows_loaded": n_loaded,
        "rows_total": n_rows,
        "notes": notes,
    }


def class_counts(df, label: str) -> dict:
    return {float(r[0]): int(r[1]) for r in df.groupBy(label).count().collect()}


def build_cv(data: dict, args):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    stages = []
    if data["feature_col"] == RAW_FEATURES:
        stages.append(VectorAssembler(inputCols=data["features"], outputCol=RAW_FEATURES))
    # withMean=False keeps LibSVM's sparse vectors sparse.
    stages.append(StandardScaler(inputCol=data["feature_col"], outputCol=SCALED_FEATURES))
    lr = LogisticRegression(
        featuresCol=SCALED_FEATURES, labelCol=data["label"], maxIter=args.max_iter
    )
    stages.append(lr)
    grid = (
        ParamGridBuilder()
        .addGrid(lr.regParam, args.reg_params)
        .addGrid(lr.elasticNetParam, args.elastic_net_params)
        .build()
    )
    evaluator = BinaryClassificationEvaluator(labelCol=data["label"], metricName="areaUnderROC")
    cv = CrossValidator(
        estimator=Pipeline(stages=stages),
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=args.folds,
        seed=args.seed,
        parallelism=1,
    )
    return cv, grid, evaluator


def evaluate(best, test, label: str, evaluator) -> dict:
    from pyspark.ml import PipelineModel

    predictions = best.transform(test).cache()
    auc = evaluator.evaluate(predictions, {evaluator.metricName: "areaUnderROC"})
    aupr = evaluator.evaluate(predictions, {evaluator.metricName: "areaUnderPR"})
    rows = predictions.groupBy(label, "prediction").count().collect()
    counts = lib.confusion_counts((r[0], r[1], r[2]) for r in rows)
    predictions.unpersist()
    # The model's own summary gives binned ROC/PR curves without collecting the test set.
    summary = best.stages[-1].evaluate(PipelineModel(best.stages[:-1]).transform(test))
    roc = [(r["FPR"], r["TPR"]) for r in summary.roc.collect()]
    pr = [(r["recall"], r["precision"]) for r in summary.pr.collect()]
    metrics = {"test_auc": auc, "test_areaUnderPR": aupr}
    metrics.update({f"test_{k}": v for k, v in lib.binary_metrics(**counts).items()})
    return {"metrics": metrics, "confusion": counts, "roc": roc, "pr": pr}


# --- local copy ---------------------------------------------------------------------------------


def write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_plots(plots_dir: str, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    auc, aupr = result["metrics"]["test_auc"], result["metrics"]["test_areaUnderPR"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(*zip(*result["roc"], strict=True), label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    fig.savefig(os.path.join(plots_dir, "roc_curve.png"), dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(*zip(*result["pr"], strict=True), label=f"area = {aupr:.3f}")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall (test)", ylim=(0, 1.05))
    ax.legend(loc="lower left")
    fig.savefig(os.path.join(plots_dir, "pr_curve.png"), dpi=100, bbox_inches="tight")
    plt.close(fig)

    c = result["confusion"]
    matrix = [[c["tn"], c["fp"]], [c["fn"], c["tp"]]]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for i in range(2):
        for j in range(2):
            # White on the dark (large) cells, black on the light ones.
            dark = matrix[i][j] > max(max(row) for row in matrix) / 2
            color = "white" if dark else "black"
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=14, color=color)
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xlabel="Predicted",
        ylabel="Actual",
        title="Confusion matrix (test)",
    )
    fig.savefig(os.path.join(plots_dir, "confusion_matrix.png"), dpi=100, bbox_inches="tight")
    plt.close(fig)


def save_model(best, path: str) -> float:
    import mlflow
    import mlflow.spark
    import pyspark

    # Explicit requirements: otherwise MLflow starts a second Spark to infer them (17 s vs 5 s).
    requirements = [f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}"]
    start = time.monotonic()
    mlflow.spark.save_model(best, path, pip_requirements=requirements)
    return time.monotonic() - start


# --- MLflow -------------------------------------------------------------------------------------


def log_metric_dict(client, run_id: str, metrics: dict) -> None:
    """Scalars at step 0, lists as one value per step (cv_auc: step = grid index)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    entries = []
    for key, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        entries += [Metric(key, float(v), now, step) for step, v in enumerate(values)]
    for start in range(0, len(entries), 1000):  # log_batch accepts at most 1000 metrics
        client.log_batch(run_id, metrics=entries[start : start + 1000])


def get_or_create_experiment(client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)  # a concurrent submit created it
    if experiment.lifecycle_stage == "deleted":
        raise JobError(
            f"error: experiment {name!r} is deleted on the server: restore it in the MLflow UI "
            "or pass another --experiment",
            EXIT_DATA,
        )
    return experiment.experiment_id


def main(argv=None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    lib.set_mlflow_http_defaults()
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # MLflow 3.4's client phones home (config.mlflow-telemetry.io) unless told not to; a cluster
    # job should not. MLFLOW_DISABLE_TELEMETRY=false in the environment turns it back on.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # The model is written by executors into this folder, then copied by the driver: it must be
    # shared by both (a folder under work/ locally, the shared mount on a cluster).
    os.environ.setdefault(
        "MLFLOW_DFS_TMP", os.path.abspath(os.path.join(args.output_dir, "..", "tmp", "dfs"))
    )
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")

    # Fail fast: nothing below starts a JVM until the server answers and the data path looks right.
    problem = lib.tracking_server_problem(tracking_uri)
    if problem:
        raise JobError(lib.unreachable_message(tracking_uri, problem), EXIT_UNREACHABLE)
    try:
        fmt = lib.check_data_source(args.data, args.format)
    except lib.DataError as exc:
        raise JobError(f"error: {exc}", EXIT_DATA) from None
    run_dir = lib.run_dir_for(args.output_dir, args.experiment, args.run_name)
    if os.path.exists(run_dir):
        raise JobError(f"error: {run_dir} already exists: choose another --run-name", EXIT_DATA)

    from pyspark.sql import SparkSession

    phases = {}
    t = time.monotonic()
    spark = SparkSession.builder.appName(f"train-classifier-{args.run_name}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    phases["spark_start"] = time.monotonic() - t
    try:
        return run(spark, args, fmt, run_dir, tracking_uri, phases, started)
    finally:
        spark.stop()


def run(spark, args, fmt, run_dir, tracking_uri, phases, started) -> int:
    import mlflow
    import pyspark
    from mlflow.entities import Param
    from mlflow.tracking.context.registry import resolve_tags
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    # --- load and validate (before any MLflow run exists: bad data leaves no junk run)
    t = time.monotonic()
    try:
        data = load_data(spark, args.data, fmt, args.label)
        train, test = data["df"].randomSplit(
            [1 - args.test_fraction, args.test_fraction], seed=args.seed
        )
        train_counts, test_counts = (
            class_counts(train, data["label"]),
            class_counts(test, data["label"]),
        )
        lib.check_split(train_counts, test_counts, args.folds)
    except lib.DataError as exc:
        raise JobError(f"error: {exc}", EXIT_DATA) from None
    except (PySparkException, Py4JJavaError) as exc:
        reason = lib.describe_error(exc)
        raise JobError(f"error: cannot read {args.data} as {fmt}: {reason}", EXIT_DATA) from None
    for note in data["notes"]:
        print(note, file=sys.stderr)
    phases["load"] = time.monotonic() - t
    n_train, n_test = sum(train_counts.values()), sum(test_counts.values())

    # --- the run exists from here on, so the UI shows it RUNNING during training
    sc = spark.sparkContext
    params = {
        "data_source": args.data,
        "data_format": fmt,
        "label_column": data["label"],
        "rows_total": data["rows_total"],
        "rows_dropped_missing": data["rows_loaded"] - data["rows_total"],
        "rows_train": n_train,
        "rows_test": n_test,
        "n_features": data["n_features"],
        "grid_reg_params": ",".join(f"{v:g}" for v in args.reg_params),
        "grid_elastic_net_params": ",".join(f"{v:g}" for v in args.elastic_net_params),
        "grid_size": len(args.reg_params) * len(args.elastic_net_params),
        "folds": args.folds,
        "seed": args.seed,
        "max_iter": args.max_iter,
        "test_fraction": args.test_fraction,
        "spark_version": pyspark.__version__,
        "mlflow_version": mlflow.__version__,
        "spark_master": sc.master,
    }
    tags = {"runtime": os.environ.get("STACK_RUNTIME", "local"), "spark_app_id": sc.applicationId}
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    # Set globally too: mlflow-artifacts:/ uploads find the server from the global tracking URI.
    mlflow.set_tracking_uri(tracking_uri)
    # MlflowClient, not the fluent API: a fluent run left active (logging failed) is ended again
    # by MLflow's atexit hook, which against a hung server costs another ~30 s.
    client = mlflow.MlflowClient(tracking_uri)
    try:
        experiment_id = get_or_create_experiment(client, args.experiment)
        run = client.create_run(experiment_id, run_name=args.run_name, tags=resolve_tags(tags))
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
    except JobError:
        raise
    except Exception as exc:  # MlflowException or a transport error: the server went away
        raise JobError(
            lib.unreachable_message(tracking_uri, lib.describe_error(exc)), EXIT_UNREACHABLE
        ) from None

    def mark_failed():
        # Best effort, and only when the server answers: a dead one would cost ~30 s more.
        if not lib.tracking_server_problem(tracking_uri):
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")

    try:
        os.makedirs(run_dir)  # claims the name: a concurrent submit with the same name fails here
    except FileExistsError:
        mark_failed()
        raise JobError(
            f"error: {run_dir} already exists: choose another --run-name", EXIT_DATA
        ) from None

    try:
        result = train_and_write(args, data, train, test, run_dir, phases, params)
    except BaseException:
        mark_failed()
        raise
    manifest = lib.build_manifest(run_dir, args.experiment, run_id, args.run_name)
    lib.write_json(os.path.join(run_dir, lib.MANIFEST_NAME), manifest)
    if result["model_problems"]:
        mark_failed()
        raise JobError(
            f"error: the saved model has stages without data ({result['model_problems'][0]}...): "
            f"MLFLOW_DFS_TMP={os.environ['MLFLOW_DFS_TMP']} must be a folder the driver and every "
            "executor share",
            EXIT_MODEL,
        )

    # --- log everything, then the artifacts in one call; any failure keeps the local copy
    try:
        late = [Param(k, str(v)) for k, v in result["late_params"].items()]
        client.log_batch(run_id, params=late)
        log_metric_dict(client, run_id, result["metrics"])
        t = time.monotonic()
        client.log_artifacts(run_id, run_dir)
        phases["log_artifacts"] = time.monotonic() - t
        phases["total"] = time.monotonic() - started
        log_metric_dict(
            client,
            run_id,
            {
                "log_artifacts_seconds": phases["log_artifacts"],
                "total_seconds": phases["total"],
                "log_artifacts_share": phases["log_artifacts"] / phases["total"],
            },
        )
        client.set_terminated(run_id, "FINISHED")
    except Exception as exc:
        return keep_pending(run_dir, run_id, tracking_uri, exc, experiment_id)

    files, size = len(manifest["files"]) + 1, sum(f["size"] for f in manifest["files"])
    size += os.path.getsize(os.path.join(run_dir, lib.MANIFEST_NAME))
    url = lib.ui_url(tracking_uri, experiment_id, run_id)
    m = result["metrics"]
    print(f"run        : {run_id} ({args.experiment} / {args.run_name})")
    print(f"ui         : {url or tracking_uri}")
    print(
        f"test       : auc {m['test_auc']:.4f}  accuracy {m['test_accuracy']:.4f}  "
        f"f1 {m['test_f1']:.4f}  (best regParam {result['late_params']['best_reg_param']}, "
        f"elasticNetParam {result['late_params']['best_elastic_net_param']})"
    )
    print(f"artifacts  : {files} files, {size} bytes")
    print(f"local copy : {run_dir}")
    print("durations  : " + "  ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
    print(
        "RESULT_JSON "
        + json.dumps(
            {
                "run_id": run_id,
                "experiment_id": experiment_id,
                "ui_url": url,
                "output_dir": run_dir,
                "status": "logged",
            },
            sort_keys=True,
        )
    )
    return 0


def train_and_write(args, data, train, test, run_dir, phases, params) -> dict:
    t = time.monotonic()
    cv, grid, evaluator = build_cv(data, args)
    cv_model = cv.fit(train)
    phases["train"] = time.monotonic() - t

    t = time.monotonic()
    best = cv_model.bestModel
    result = evaluate(best, test, data["label"], evaluator)
    phases["evaluate"] = time.monotonic() - t

    write_started = time.monotonic()
    grid_dicts = [{p.name: v for p, v in point.items()} for point in grid]
    rows = lib.cv_grid_rows(grid_dicts, cv_model.avgMetrics, getattr(cv_model, "stdMetrics", None))
    best_index = max(range(len(rows)), key=lambda i: rows[i]["mean_auc"])
    late_params = {
        "best_reg_param": grid_dicts[best_index]["regParam"],
        "best_elastic_net_param": grid_dicts[best_index]["elasticNetParam"],
    }
    for sub in ("metrics", "models", "plots"):
        os.makedirs(os.path.join(run_dir, sub))
    write_csv(os.path.join(run_dir, "metrics", "cv_grid.csv"), rows)
    test_rows = [{"metric": k, "value": v} for k, v in result["metrics"].items()]
    test_rows += [{"metric": k, "value": v} for k, v in result["confusion"].items()]
    write_csv(os.path.join(run_dir, "metrics", "test_metrics.csv"), test_rows)

    model_dir = os.path.join(run_dir, "models", "spark-model")
    phases["save_model"] = save_model(best, model_dir)
    write_plots(os.path.join(run_dir, "plots"), result)

    model_problems = lib.spark_model_problems(os.path.join(model_dir, "sparkml"))

    # What gets logged, kept beside the artifacts so relog.py can log it again. Only the
    # upload's own timing (log_artifacts, total) is logged later and is not in metrics.json.
    all_params = {k: str(v) for k, v in sorted({**params, **late_params}.items())}
    lib.write_json(os.path.join(run_dir, lib.PARAMS_NAME), all_params)
    phases["write_local"] = time.monotonic() - write_started
    metrics = dict(result["metrics"])
    metrics["cv_auc"] = [r["mean_auc"] for r in rows]
    metrics["cv_auc_best"] = rows[best_index]["mean_auc"]
    metrics.update({f"{k}_seconds": v for k, v in phases.items()})
    metrics = dict(sorted(metrics.items()))
    lib.write_json(os.path.join(run_dir, lib.METRICS_NAME), metrics)
    return {"metrics": metrics, "late_params": late_params, "model_problems": model_problems}


def keep_pending(run_dir, run_id, tracking_uri, exc, experiment_id) -> int:
    reason = lib.describe_error(exc)
    lib.write_json(
        os.path.join(run_dir, lib.PENDING_NAME),
        {
            "run_id": run_id,
            "tracking_uri": tracking_uri,
            "reason": reason,
        },
    )
    # A network failure says enough; otherwise ask /health (5 s at most) what went wrong.
    if lib.is_transport_error(reason) or lib.tracking_server_problem(tracking_uri):
        what = "MLflow unreachable while logging"
    else:
        what = f"logging to MLflow failed ({reason})"
    relog = os.path.join(JOB_DIR, "relog.py")
    print(
        f"error: {what}; local copy kept in {run_dir}; re-log it with: make relog DIR={run_dir}",
        file=sys.stderr,
    )
    print(f"  (without make: {sys.executable} {relog} {run_dir})", file=sys.stderr)
    print(
        "RESULT_JSON "
        + json.dumps(
            {
                "run_id": run_id,
                "experiment_id": experiment_id,
                "ui_url": lib.ui_url(tracking_uri, experiment_id, run_id),
                "output_dir": run_dir,
                "status": "pending",
            },
            sort_keys=True,
        )
    )
    return EXIT_PENDING


if __name__ == "__main__":
    try:
        sys.exit(main())
    except JobError as err:
        print(err, file=sys.stderr)
        sys.exit(err.code)
