#!/usr/bin/env bash
# Prove every artifact is the same in every view (MLflow's REST API, the artifact folder, the
# manifests); default scope: the latest CHECK_LAST=5 runs. Arguments go to `healthcheck.py artifacts`.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

resolve_runtime >/dev/null
require_venv
args=("$@")
((${#args[@]} > 0)) || args=(--last "${CHECK_LAST:-5}")
exec "$PYTHON_BIN" "$ROOT/tools/healthcheck.py" artifacts \
  --mlflow-url "$MLFLOW_URL" --artifact-root "$MLFLOW_DATA_DIR/artifacts" "${args[@]}"
