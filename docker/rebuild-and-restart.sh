#!/usr/bin/env bash
# Rebuild and restart the docker stack (make rebuild RUNTIME=docker): stop it, build the images
# (cached; NO_CACHE=1 for a clean build; OFFLINE=1 builds the bases without a registry first),
# start it, wait until every service is healthy, print the URLs. The data in MLFLOW_DATA_DIR is
# kept. An unhealthy service is named with its health output and log tail, and the exit is 1.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/docker/lib.sh"

check_docker_settings
require_engine
start=$SECONDS

step "Stopping the stack (project $COMPOSE_PROJECT_NAME)"
compose down --remove-orphans --timeout 20 >/dev/null 2>&1 || warn "'compose down' failed; removing the containers directly"
remove_stale_containers

build_images
ensure_server_image
built=$SECONDS
note "stop + build: $((built - start)) s"

start_stack
wait_healthy
wait_docker_health spark-submit
note "rebuild to healthy: $((SECONDS - start)) s (start to healthy: $((SECONDS - built)) s)"
"$ROOT/scripts/docker/urls.sh"
