#!/usr/bin/env bash
# Log a local copy kept by a submit (work/output/EXP/RUN) to MLflow, once the server is back.
# With docker the copy is under /mlflow/output (work/mlflow/output on the host) and is logged from
# the spark-submit container, which sees the same artifact paths as the server.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="${1:-}"
[[ -n "$dir" ]] || die "name the local copy to log: make relog DIR=work/output/EXPERIMENT/RUN" 2
runtime="$(resolve_runtime)"
if [[ "$runtime" == docker ]]; then
  source "$ROOT/scripts/docker/lib.sh"
  require_engine
  if [[ "$dir" != /mlflow/* ]]; then
    [[ -d "$dir" ]] || die "no folder '$dir'; name a local copy under ${MLFLOW_DATA_DIR#"$ROOT"/}/output/" 2
    host_dir="$(realpath "$dir")"
    data_dir="$(realpath "$MLFLOW_DATA_DIR")"
    [[ "$host_dir" == "$data_dir"/* ]] ||
      die "'$dir' is outside ${MLFLOW_DATA_DIR#"$ROOT"/}, which the containers cannot see; use RUNTIME=local for it" 2
    dir="/mlflow/${host_dir#"$data_dir"/}"
  fi
  compose exec -T spark-submit python /opt/jobs/relog.py "$dir"
  exit
fi
require_venv
export GIT_PYTHON_REFRESH=quiet
exec "$PYTHON_BIN" "$ROOT/jobs/relog.py" "$dir" --tracking-uri "${MLFLOW_TRACKING_URI:-$MLFLOW_URL}"
