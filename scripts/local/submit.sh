#!/usr/bin/env bash
# Submit JOB (checked by scripts/submit.sh) to the local cluster with spark-submit; arguments go to the job.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Where the job logs: the stack's server unless the caller named another.
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-$MLFLOW_URL}"
"$PYTHON_BIN" - "$MLFLOW_TRACKING_URI" <<'PY' || exit 3
import sys, requests
uri = sys.argv[1]
try:
    requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
except Exception as exc:  # one line, before any compute
    sys.exit(f"error: MLflow tracking server at {uri} is not reachable ({type(exc).__name__}); "
             "start it with 'make up' or set MLFLOW_TRACKING_URI")
PY

# Temp files stay under work/. MLFLOW_DFS_TMP must be a folder the driver and every executor
# share, or mlflow.spark saves a model without its data (stack-facts).
mkdir -p "$WORK_DIR/tmp/dfs" "$WORK_DIR/tmp/spark" "$WORK_DIR/output"
export TMPDIR="$WORK_DIR/tmp" SPARK_LOCAL_DIRS="$WORK_DIR/tmp/spark"
export MLFLOW_DFS_TMP="${MLFLOW_DFS_TMP:-$WORK_DIR/tmp/dfs}"
export OUTPUT_DIR="${OUTPUT_DIR:-$WORK_DIR/output}"
# The MLflow Java client runs `$MLFLOW_PYTHON_EXECUTABLE -m mlflow.store.artifact.cli` (default:
# plain `python`) for every artifact: point it at a Python with MLflow at the server's version.
export MLFLOW_PYTHON_EXECUTABLE="$PYTHON_BIN"
export PYSPARK_PYTHON="$PYTHON_BIN" PYSPARK_DRIVER_PYTHON="$PYTHON_BIN"
export GIT_PYTHON_REFRESH=quiet SPARK_LOCAL_IP="$BIND_HOST"
# Jobs log warnings only (SPARK_LOG_LEVEL=info for more); the daemons keep their own logs.
export SPARK_CONF_DIR="${SPARK_CONF_DIR:-$ROOT/conf/spark}" SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-warn}"
SPARK_HOME="$(spark_home)"
export SPARK_HOME

submit_args=(
  --master "$SPARK_MASTER_URL"
  --driver-memory "$DRIVER_MEMORY"
  --executor-memory "$EXECUTOR_MEMORY"
  --conf "spark.driver.host=$BIND_HOST"
)
if [[ "$JOB" == *.jar ]]; then
  jars=("$ROOT"/lib/*.jar)
  if [[ -e "${jars[0]}" ]]; then
    submit_args+=(--jars "$(IFS=,; echo "${jars[*]}")")
  fi
  submit_args+=(--class "$CLASS")
fi

step "Submitting $(basename "$JOB") to $SPARK_MASTER_URL (MLflow: $MLFLOW_TRACKING_URI)"
exec "$SPARK_HOME/bin/spark-submit" "${submit_args[@]}" "$JOB" "$@"
