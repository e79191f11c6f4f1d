#!/usr/bin/env bash
# Prove every artifact is the same in every view (MLflow's REST API, the artifact folder, the
# manifests, and with docker the folder inside each container); default scope: the latest
# CHECK_LAST=5 runs. Arguments go to `healthcheck.py artifacts`.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runtime="$(resolve_runtime)"
args=("$@")
((${#args[@]} > 0)) || args=(--last "${CHECK_LAST:-5}")
views=(--mlflow-url "$MLFLOW_URL" --artifact-root "$MLFLOW_DATA_DIR/artifacts")
if [[ "$runtime" == docker ]]; then
  source "$ROOT/scripts/docker/lib.sh"
  # /mlflow/artifacts as each container that mounts it sees it (the master mounts nothing).
  while read -r service; do
    [[ "$service" == spark-master ]] && continue
    name="$(docker ps --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
      --filter "label=com.docker.compose.service=$service" --format '{{.Names}}' | head -n1)"
    [[ -n "$name" ]] || die "service $service has no running container; start the stack with 'make up RUNTIME=docker'" 2
    views+=(--container "$name:/mlflow/artifacts")
  done < <(stack_services)
fi
healthcheck artifacts "${views[@]}" "${args[@]}"
