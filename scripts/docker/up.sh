#!/usr/bin/env bash
# Start the docker stack (building images only when they are missing) and wait until healthy.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_docker_settings
require_engine
if ! image_exists "$SPARK_MLFLOW_IMAGE" || { [[ "$OFFLINE" == 1 ]] && ! image_exists "$MLFLOW_SERVER_IMAGE"; }; then
  build_images
fi
ensure_server_image
start_stack
wait_healthy
wait_docker_health spark-submit
"$ROOT/scripts/docker/urls.sh"
