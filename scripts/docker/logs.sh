#!/usr/bin/env bash
# Show the logs of the docker stack: all services, or the one named (TAIL=50 lines; FOLLOW=1 to follow).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_engine
service="${1:-}"
args=(--no-color --tail "${TAIL:-50}")
[[ "${FOLLOW:-0}" == 1 ]] && args+=(--follow)
if [[ -n "$service" ]]; then
  known="$(compose config --services)"
  grep -qxF "$service" <<<"$known" ||
    die "no service '$service' in the docker stack; services: ${known//$'\n'/ }" 2
  args+=("$service")
fi
compose logs "${args[@]}"
