#!/usr/bin/env bash
# Stop the docker stack and remove its containers and network (MLFLOW_DATA_DIR and images are kept).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_engine
step "Stopping the docker stack (project $COMPOSE_PROJECT_NAME)"
compose down --remove-orphans --timeout 20
remove_stale_containers
step "Docker stack stopped; data kept in ${MLFLOW_DATA_DIR#"$ROOT"/}"
