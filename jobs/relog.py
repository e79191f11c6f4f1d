"""Log a local copy kept by train_classifier.py to MLflow, e.g. after the server was unreachable.

    python jobs/relog.py work/output/<experiment>/<run-name> [--tracking-uri URI]

The copy is checked against its manifest.json first. The params (params.json), metrics
(metrics.json) and every file go to the run named in pending.json / manifest.json if the server
still has it (then set FINISHED), otherwise to a new run in the manifest's experiment (manifest.json
then gets the new run id). pending.json is removed once everything is logged.

Exit codes: 0 logged; 2 DIR is not an intact local copy; 3 server not reachable (nothing changed);
4 logging failed part-way (pending.json names the run to retry).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pipeline_lib as lib  # noqa: E402  (sibling module, also run without installing)

EXIT_NOT_A_COPY, EXIT_UNREACHABLE, EXIT_PENDING = 2, 3, 4


class RelogError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def read_local_copy(run_dir: str) -> dict:
    """Manifest, params, metrics and pending of an intact local copy; RelogError otherwise."""
    manifest_path = os.path.join(run_dir, lib.MANIFEST_NAME)
    if not os.path.isdir(run_dir) or not os.path.isfile(manifest_path):
        raise RelogError(
            f"error: {run_dir} is not a local copy of a run (no {lib.MANIFEST_NAME}): "
            "pass OUTPUT_DIR/<experiment>/<run-name>, e.g. work/output/spark-ml-pipeline/RUN",
            EXIT_NOT_A_COPY,
        )
    try:
        manifest = lib.read_json(manifest_path)
    except (OSError, ValueError) as exc:
        raise RelogError(
            f"error: {manifest_path} is unreadable ({lib.describe_error(exc)})", EXIT_NOT_A_COPY
        ) from None
    problems = lib.verify_manifest(run_dir, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RelogError(
            f"error: {run_dir} does not match its manifest: {problems[0]}{more}; "
            "refusing to log a changed copy",
            EXIT_NOT_A_COPY,
        )
    copy = {"manifest": manifest, "params": {}, "metrics": {}, "pending": {}}
    for key, name in (("params", lib.PARAMS_NAME), ("metrics", lib.METRICS_NAME)):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            copy[key] = lib.read_json(path)  # listed in the manifest, so intact JSON we wrote
    pending_path = os.path.join(run_dir, lib.PENDING_NAME)
    if os.path.isfile(pending_path):
        try:
            copy["pending"] = lib.read_json(pending_path)
        except (OSError, ValueError):
            print(f"note: ignoring unreadable {pending_path}", file=sys.stderr)
    return copy


def new_params(local: dict, logged: dict) -> dict:
    """Params not on the run yet; MLflow refuses to change a logged value, so those stay."""
    for key in sorted(set(local) & set(logged)):
        if str(local[key]) != logged[key]:
            print(f"note: param {key} kept as logged ({logged[key]!r}, local {local[key]!r})")
    return {k: str(v) for k, v in local.items() if k not in logged}


def new_metrics(local: dict, logged: dict) -> dict:
    """Metrics not on the run yet (logging again would duplicate their history)."""
    return {k: v for k, v in local.items() if k not in logged}


def relog(run_dir: str, tracking_uri: str | None) -> int:
    copy = read_local_copy(run_dir)
    manifest, pending = copy["manifest"], copy["pending"]
    tracking_uri = (
        tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or pending.get("tracking_uri")
    )
    problem = lib.tracking_server_problem(tracking_uri)
    if problem:
        raise RelogError(lib.unreachable_message(tracking_uri, problem), EXIT_UNREACHABLE)

    lib.set_mlflow_http_defaults()
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # as the job: no phoning home
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    # Global too: with served artifacts (mlflow-artifacts:/ URIs) the artifact upload resolves
    # the server from the global tracking URI, not from the client's.
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    old_run_id = pending.get("run_id") or manifest.get("run_id")
    try:
        run = find_run(client, old_run_id, MlflowException)
        if run is None:
            run = create_run(client, manifest, old_run_id)
            how = "new run" + (f" (run {old_run_id} is gone)" if old_run_id else "")
        else:
            how = "existing run"
        if manifest.get("run_id") != run.info.run_id:
            # Before the upload, so the uploaded manifest names the run it belongs to.
            manifest["run_id"] = run.info.run_id
            lib.write_json(os.path.join(run_dir, lib.MANIFEST_NAME), manifest)
    except RelogError:
        raise
    except Exception as exc:  # the server went away between the health check and here
        raise RelogError(
            lib.unreachable_message(tracking_uri, lib.describe_error(exc)), EXIT_UNREACHABLE
        ) from None
    run_id, experiment_id = run.info.run_id, run.info.experiment_id

    try:
        params = new_params(copy["params"], run.data.params)
        if params:
            client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        metrics = new_metrics(copy["metrics"], run.data.metrics)
        now, entries = int(time.time() * 1000), []
        for key, value in metrics.items():
            values = value if isinstance(value, list) else [value]
            entries += [Metric(key, float(v), now, step) for step, v in enumerate(values)]
        for start in range(0, len(entries), 1000):  # log_batch takes at most 1000 metrics
            client.log_batch(run_id, metrics=entries[start : start + 1000])
        for name in sorted(os.listdir(run_dir)):
            if name == lib.PENDING_NAME:
                continue
            path = os.path.join(run_dir, name)
            if os.path.isdir(path):
                client.log_artifacts(run_id, path, artifact_path=name)
            else:
                client.log_artifact(run_id, path)
        client.set_tag(run_id, "relogged", "true")
        client.set_terminated(run_id, "FINISHED")
    except Exception as exc:
        reason = lib.describe_error(exc)
        lib.write_json(
            os.path.join(run_dir, lib.PENDING_NAME),
            {"run_id": run_id, "tracking_uri": tracking_uri, "reason": reason},
        )
        raise RelogError(
            f"error: logging to {tracking_uri} failed part-way ({reason}); run relog again once "
            f"the server is healthy: make relog DIR={run_dir}",
            EXIT_PENDING,
        ) from None

    pending_path = os.path.join(run_dir, lib.PENDING_NAME)
    if os.path.exists(pending_path):
        os.remove(pending_path)
    url = lib.ui_url(tracking_uri, experiment_id, run_id)
    files = len(manifest["files"]) + 1
    print(
        f"logged {run_dir} to {how} {run_id}: {files} files, {len(params)} params, "
        f"{len(metrics)} metrics"
    )
    print(f"ui: {url or tracking_uri}")
    result = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "ui_url": url,
        "output_dir": run_dir,
        "status": "logged",
    }
    print("RESULT_JSON " + json.dumps(result, sort_keys=True))
    return 0


def find_run(client, run_id, mlflow_exception):
    """The run if the server still has it (and it is not deleted), else None."""
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except mlflow_exception as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return None if run.info.lifecycle_stage == "deleted" else run


def create_run(client, manifest: dict, old_run_id):
    name = manifest.get("experiment") or "spark-ml-pipeline"
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = client.create_experiment(name)
    elif experiment.lifecycle_stage == "deleted":
        raise RelogError(
            f"error: experiment {name!r} is deleted on the server: restore it in the UI "
            "(or `mlflow experiments restore`) and run relog again",
            EXIT_NOT_A_COPY,
        )
    else:
        experiment_id = experiment.experiment_id
    tags = {"relogged_from_run_id": old_run_id} if old_run_id else {}
    return client.create_run(experiment_id, run_name=manifest.get("run_name"), tags=tags)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_NOT_A_COPY, f"error: {message} (see --help)\n")


def main(argv=None) -> int:
    parser = OneLineParser(description="Log a kept local copy of a run to MLflow.")
    parser.add_argument("dir", help="the local copy: OUTPUT_DIR/<experiment>/<run-name>")
    parser.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI")
    args = parser.parse_args(argv)
    try:
        return relog(os.path.abspath(args.dir), args.tracking_uri)
    except RelogError as err:
        print(err, file=sys.stderr)
        return err.code


if __name__ == "__main__":
    sys.exit(main())
