#!/usr/bin/env bash
# Compare MLflow and Spark versions across the server, the venv, the Spark UIs, the containers and versions.env (ARGS=--json).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runtime="$(resolve_runtime)"
if [[ "$runtime" == docker ]]; then
  source "$ROOT/scripts/docker/lib.sh" # the docker stack's worker count, ports and project
fi
require_venv
exec "$PYTHON_BIN" "$ROOT/tools/versions.py" --runtime "$runtime" "$@"
