#!/usr/bin/env bash
# What a person needs about one service of the docker stack: container state, health check output,
# the tail of its logs. Used by the health tool (--log-command) for unhealthy services.
#   service-report.sh [--if-not-running] SERVICE   (TAIL=20 log lines)
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

only_broken=0
if [[ "${1:-}" == --if-not-running ]]; then
  only_broken=1
  shift
fi
service="${1:?usage: service-report.sh [--if-not-running] SERVICE}"
lines="${TAIL:-20}"

id="$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
  --filter "label=com.docker.compose.service=$service" | head -n1)"
if [[ -z "$id" ]]; then
  ((only_broken)) && [[ "$service" == init ]] && exit 0
  echo "$service: no container (project $COMPOSE_PROJECT_NAME); start the stack with 'make up RUNTIME=docker'"
  exit 0
fi
read -r status code health < <(docker inspect --format \
  '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}' "$id")
if ((only_broken)); then
  # init is a one-shot: done and exit 0 is its success.
  if [[ "$status" == running || ("$service" == init && "$status" == exited && "$code" == 0) ]]; then
    exit 0
  fi
fi
echo "==> $service: container ${id:0:12} $status$([[ "$status" == exited ]] && echo " (exit $code)"), health: $health"
if [[ "$health" != - ]]; then
  # The last line of the last health check's output says why (e.g. the exception).
  docker inspect --format '{{json .State.Health.Log}}' "$id" | "${PYTHON_BIN:-python3}" -c '
import json, sys
log = json.load(sys.stdin) or []
if not log:
    print("health check: none ran (the container stopped before its first check)")
for check in log[-1:]:
    lines = [line for line in check["Output"].splitlines() if line.strip()]
    last = lines[-1][:300] if lines else "(no output)"
    print("health check: exit %s: %s" % (check["ExitCode"], last))
'
fi
echo "==> last $lines log lines of $service"
compose logs --no-color --tail "$lines" "$service" 2>&1 | tail -n "$lines"
