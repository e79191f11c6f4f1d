#!/usr/bin/env bash
# Run every diagnostic of the current runtime and name the runbook section of each failure (ARGS=--json).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# RUNTIME=docker without an engine is a finding for the doctor, not bad input: it reports it.
case "${RUNTIME:-auto}" in
  docker) runtime=docker ;;
  *) runtime="$(resolve_runtime)" ;;
esac
if [[ "$runtime" == docker ]]; then
  # The docker stack's settings (worker count, ports, project) and its compose command.
  source "$ROOT/scripts/docker/lib.sh"
  if (choose_compose) >/dev/null 2>&1; then
    choose_compose
    export DOCTOR_COMPOSE="${COMPOSE_CMD[*]}"
  fi
fi
require_venv
exec "$PYTHON_BIN" "$ROOT/tools/doctor.py" --runtime "$runtime" "$@"
