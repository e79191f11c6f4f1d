#!/usr/bin/env bash
# Print where the local stack's UIs and endpoints are.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

cat <<URLS
MLflow UI:        $MLFLOW_URL
Spark master UI:  $SPARK_MASTER_UI_URL
Spark master:     $SPARK_MASTER_URL
Data:             ${MLFLOW_DATA_DIR#"$ROOT"/} (mlflow.db, artifacts/)
Logs:             ${LOG_DIR#"$ROOT"/}/
URLS
