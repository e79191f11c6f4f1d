#!/usr/bin/env bash
# Exit 0 when no stack (of any runtime) uses MLFLOW_DATA_DIR; else one line "stop the stack first" and exit 1.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local/lib.sh"

# A runtime plugs in its check by defining stack_users_RUNTIME: print one line per running
# component that may write MLFLOW_DATA_DIR, nothing when none does. Every defined check runs,
# whatever RUNTIME says: both runtimes use the same folder, and a stack started with another
# RUNTIME still writes it.

# The local runtime: processes recorded in RUN_DIR that are still ours (stale PID files go).
stack_users_local() {
  local component
  while read -r component; do
    running_pid "$component" >/dev/null && echo "$component"
  done < <(recorded_components)
  return 0
}

# The docker runtime: running containers that mount MLFLOW_DATA_DIR (or a folder around it).
# No docker CLI, or no engine answering: no container can be writing.
stack_users_docker() {
  command -v docker >/dev/null 2>&1 || return 0
  local ids data name source
  ids="$(timeout "${DOCKER_PROBE_TIMEOUT:-5}" docker ps -q 2>/dev/null)" || return 0
  [[ -n "$ids" ]] || return 0
  data="$(realpath -m "$MLFLOW_DATA_DIR")"
  # shellcheck disable=SC2086 # one argument per container id
  timeout "${DOCKER_PROBE_TIMEOUT:-5}" docker inspect \
    --format '{{range .Mounts}}{{$.Name}}|{{.Source}}{{println}}{{end}}' $ids 2>/dev/null |
    while IFS='|' read -r name source; do
      [[ -n "$source" ]] || continue
      if [[ "$source" == "$data" || "$source" == "$data"/* || "$data" == "$source"/* ]]; then
        echo "container ${name#/}"
      fi
    done | sort -u
  return 0
}

users=()
for check in $(compgen -A function stack_users_); do
  mapfile -t -O "${#users[@]}" users < <("$check")
done
((${#users[@]} == 0)) && exit 0
hint=""
[[ "${users[*]}" == *container* ]] && hint=" RUNTIME=docker"
printf -v list '%s, ' "${users[@]}"
die "stop the stack first: make down$hint (still running: ${list%, })" 1
