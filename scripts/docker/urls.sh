#!/usr/bin/env bash
# Print where the docker stack's UIs and endpoints are, and how to reach its containers.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

choose_compose
echo "MLflow UI:        $MLFLOW_URL   (in the stack: http://mlflow-server:5000)"
echo "Spark master UI:  $SPARK_MASTER_UI_URL   (in the stack: spark://spark-master:7077)"
for ((i = 1; i <= DOCKER_WORKERS; i++)); do
  printf 'Worker %d UI:      http://%s:%s\n' "$i" "$BIND_HOST" "$(worker_ui_port "$i")"
done
echo "Data:             ${MLFLOW_DATA_DIR#"$ROOT"/} (at /mlflow in the containers; artifact mode $ARTIFACT_MODE)"
echo "Run a job:        ${COMPOSE_CMD[*]} -p $COMPOSE_PROJECT_NAME -f ${COMPOSE_FILE_PATH#"$ROOT"/} exec spark-submit spark-submit /opt/jobs/JOB.py"
