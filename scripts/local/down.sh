#!/usr/bin/env bash
# Stop every process the local runtime started (by PID file), then check that their ports are free.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mapfile -t components < <(recorded_components)
if ((${#components[@]} == 0)); then
  step "Local stack is not running; nothing to stop"
  exit 0
fi

step "Stopping ${components[*]}"
for component in "${components[@]}"; do
  stop_component "$component" &
done
wait

ports=()
for component in "${components[@]}"; do
  for spec in $(component_port "$component"); do ports+=("${spec%%=*}" --name "$spec"); done
done
if ((${#ports[@]} > 0)) && [[ -x "$PYTHON_BIN" ]]; then
  healthcheck ports --quiet --host "$BIND_HOST" "${ports[@]}" >&2 ||
    die "some ports of the stack are still taken after stopping it (see above)"
fi
step "Local stack stopped"
