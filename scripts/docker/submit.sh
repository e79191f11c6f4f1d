#!/usr/bin/env bash
# Submit JOB (checked by scripts/submit.sh) from the spark-submit container; arguments go to the job.
#
# Files must be visible inside the containers: jobs/ is mounted at /opt/jobs (spark-submit only),
# the data folder at /mlflow (everywhere). A job or DATA file elsewhere is copied into
# MLFLOW_DATA_DIR/tmp/submit/ first, where the driver and every executor see it.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_docker_settings
require_engine

# in_container HOST_PATH [shared]: the path of a host file inside the containers.
in_container() {
  local path shared="${2:-}" staged
  path="$(realpath "$1")"
  if [[ "$path" == "$(realpath "$MLFLOW_DATA_DIR")"/* ]]; then
    echo "/mlflow/${path#"$(realpath "$MLFLOW_DATA_DIR")"/}"
  elif [[ -z "$shared" && "$path" == "$(realpath "$JOBS_DIR")"/* ]]; then
    echo "/opt/jobs/${path#"$(realpath "$JOBS_DIR")"/}"
  else
    staged="$MLFLOW_DATA_DIR/tmp/submit/$(date -u +%Y%m%dT%H%M%SZ)-$$-$(basename "$path")"
    mkdir -p "$(dirname "$staged")"
    cp -a "$path" "$staged"
    chmod -R a+rX "$staged"
    note "copied $1 to ${staged#"$ROOT"/} so the containers see it"
    echo "/mlflow/${staged#"$MLFLOW_DATA_DIR"/}"
  fi
}

job="$(in_container "$JOB")"
env_args=(-e "STACK_RUNTIME=docker" -e "OUTPUT_DIR=/mlflow/output")
for var in EXPERIMENT LABEL SPARK_LOG_LEVEL; do
  [[ -n "${!var:-}" ]] && env_args+=(-e "$var=${!var}")
done
# Data is read by the executors too: it must be on the shared mount, not only in spark-submit.
if [[ -n "${DATA:-}" && -e "$DATA" ]]; then
  env_args+=(-e "DATA=$(in_container "$DATA" shared)")
elif [[ -n "${DATA:-}" ]]; then
  env_args+=(-e "DATA=$DATA") # the job names what is missing
fi

submit_args=()
if [[ "$JOB" == *.jar ]]; then submit_args+=(--class "$CLASS"); fi

step "Submitting $(basename "$JOB") from spark-submit (local copy under ${MLFLOW_DATA_DIR#"$ROOT"/}/output)"
compose exec -T "${env_args[@]}" spark-submit spark-submit "${submit_args[@]}" "$job" "$@"
