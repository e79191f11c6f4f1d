#!/usr/bin/env bash
# Run ACTION (up, down, status, logs, rebuild, urls) on the runtime RUNTIME=auto|local|docker picks.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

action="${1:?usage: runtime.sh ACTION [ARGS...]}"
shift
runtime="$(resolve_runtime)"
script="$ROOT/scripts/$runtime/$action.sh"
[[ -x "$script" ]] || die "'$action' is not an action of the $runtime runtime" 2
exec "$script" "$@"
