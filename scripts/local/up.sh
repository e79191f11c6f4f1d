#!/usr/bin/env bash
# Start the local stack (MLflow server, Spark master, WORKERS workers) on loopback and wait until healthy.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_positive_int WORKERS
require_positive_int WORKER_CORES
require_positive_int MLFLOW_WORKERS
case "$ARTIFACT_MODE" in
  shared | served) ;;
  *) die "ARTIFACT_MODE='$ARTIFACT_MODE' is unknown; use ARTIFACT_MODE=shared or ARTIFACT_MODE=served" 2 ;;
esac

"$ROOT/scripts/setup.sh"
SPARK_HOME="$(spark_home)"
export SPARK_HOME SPARK_LOCAL_IP="$BIND_HOST" SPARK_DAEMON_MEMORY GIT_PYTHON_REFRESH=quiet
mkdir -p "$RUN_DIR" "$LOG_DIR" "$MLFLOW_DATA_DIR/artifacts" "$WORK_DIR/spark"

to_start=()
while read -r component; do
  running_pid "$component" >/dev/null || to_start+=("$component")
done < <(wanted_components)

if ((${#to_start[@]} == 0)); then
  step "Local stack is already up; nothing changed"
  exec "$ROOT/scripts/local/status.sh"
fi

step "Checking ports for: ${to_start[*]}"
port_args=()
for component in "${to_start[@]}"; do
  for spec in $(component_port "$component"); do
    port_args+=("${spec%%=*}" --name "$spec")
  done
done
healthcheck ports --quiet --host "$BIND_HOST" "${port_args[@]}" >&2 || exit 1

start_mlflow() {
  local artifact_args
  if [[ "$ARTIFACT_MODE" == served ]]; then
    artifact_args=(--serve-artifacts --artifacts-destination "$MLFLOW_DATA_DIR/artifacts"
      --default-artifact-root mlflow-artifacts:/)
  else
    artifact_args=(--default-artifact-root "$MLFLOW_DATA_DIR/artifacts")
  fi
  start_component mlflow-server "$VENV/bin/mlflow" server \
    --host "$BIND_HOST" --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS" \
    --backend-store-uri "sqlite:///$MLFLOW_DATA_DIR/mlflow.db" "${artifact_args[@]}"
}

start_worker() {
  local n="$1" dir="$WORK_DIR/spark/worker-$1"
  mkdir -p "$dir/tmp"
  SPARK_LOCAL_DIRS="$dir/tmp" start_component "spark-worker-$n" "$SPARK_HOME/bin/spark-class" \
    org.apache.spark.deploy.worker.Worker "$SPARK_MASTER_URL" \
    --host "$BIND_HOST" --webui-port "$(worker_ui_port "$n")" \
    --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --work-dir "$dir"
}

step "Starting ${#to_start[@]} component(s) (artifact mode: $ARTIFACT_MODE)"
workers=()
for component in "${to_start[@]}"; do
  case "$component" in
    mlflow-server) start_mlflow ;;
    spark-master)
      start_component spark-master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
        --host "$BIND_HOST" --port "$SPARK_MASTER_PORT" --webui-port "$SPARK_MASTER_UI_PORT"
      ;;
    spark-worker-*) workers+=("${component#spark-worker-}") ;;
  esac
done

# A worker that cannot reach the master retries only after 5-15 s, so start workers the moment
# the master accepts connections, while MLflow is still starting.
if ((${#workers[@]} > 0)); then
  wait_for_port "$BIND_HOST" "$SPARK_MASTER_PORT" "${MASTER_START_TIMEOUT:-60}" || {
    printf 'error: the Spark master did not accept connections on %s:%s within %s s; its log:\n' \
      "$BIND_HOST" "$SPARK_MASTER_PORT" "${MASTER_START_TIMEOUT:-60}" >&2
    tail -n 20 "$(log_file spark-master)" >&2
    exit 1
  }
  for n in "${workers[@]}"; do start_worker "$n"; done
fi

step "Waiting until every component is healthy"
healthcheck wait --timeout "${UP_TIMEOUT:-180}"
"$ROOT/scripts/local/urls.sh"
