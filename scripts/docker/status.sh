#!/usr/bin/env bash
# Health of the docker stack: containers that are not running, then every endpoint through the
# published ports (tools/healthcheck.py status; ARGS=--json for machines).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_docker_settings
require_engine
while read -r service; do
  id="$(container_of "$service")"
  if [[ -z "$id" ]]; then
    note "$service: no container (start the stack with 'make up RUNTIME=docker')"
    continue
  fi
  read -r state code health < <(docker inspect --format \
    '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}' "$id")
  if [[ "$state" != running ]]; then
    note "$service: container $state (exit $code); 'make logs RUNTIME=docker C=$service' shows why"
  elif [[ "$health" == unhealthy ]]; then
    note "$service: container running but Docker's healthcheck says unhealthy"
  fi
done < <(stack_services)
docker_healthcheck status "$@"
