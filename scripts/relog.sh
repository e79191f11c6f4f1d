#!/usr/bin/env bash
# Log a local copy kept by a submit (work/output/EXP/RUN) to MLflow, once the server is back.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="${1:-}"
[[ -n "$dir" ]] || die "name the local copy to log: make relog DIR=work/output/EXPERIMENT/RUN" 2
require_venv
export GIT_PYTHON_REFRESH=quiet
exec "$PYTHON_BIN" "$ROOT/jobs/relog.py" "$dir" --tracking-uri "${MLFLOW_TRACKING_URI:-$MLFLOW_URL}"
