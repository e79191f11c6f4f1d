#!/usr/bin/env bash
# One entrypoint for every Spark base (Bitnami, official Apache, offline): starts a role with
# spark-class directly, so nothing depends on one vendor's start scripts.
#   master   Spark master (RPC SPARK_MASTER_PORT=7077, UI SPARK_MASTER_WEBUI_PORT=8080)
#   worker   Spark worker of SPARK_MASTER_URL (SPARK_WORKER_CORES, SPARK_WORKER_MEMORY, UI 8081)
#   submit   idle driver host: writes spark-defaults.conf, then waits; run jobs with
#            `docker compose exec spark-submit spark-submit JOB.py`
#   link-spark-tools DIR   (image build) wrappers for spark-submit & co. in DIR
#   anything else is run as a command.
set -o errexit -o nounset -o pipefail

find_spark_home() {
  local dir
  for dir in "${SPARK_HOME:-}" /opt/spark /opt/bitnami/spark; do
    [[ -n "$dir" && -x "$dir/bin/spark-class" ]] && { echo "$dir"; return 0; }
  done
  dir="$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)" &&
    [[ -x "$dir/bin/spark-class" ]] && { echo "$dir"; return 0; }
  echo "entrypoint: no Spark found (SPARK_HOME='${SPARK_HOME:-}', /opt/spark, /opt/bitnami/spark)" >&2
  return 1
}

# link_spark_tools DIR: wrappers for Spark's commands in DIR (image build time), for bases whose
# PATH lacks SPARK_HOME/bin (Apache's); a wrapper, not a link: Spark's scripts find their home
# from their own path.
link_spark_tools() {
  local dir="$1" home tool
  home="$(find_spark_home)"
  mkdir -p "$dir"
  for tool in spark-submit spark-class pyspark spark-shell spark-sql; do
    [[ -x "$home/bin/$tool" ]] || continue
    printf '#!/bin/sh\nexec %s/bin/%s "$@"\n' "$home" "$tool" >"$dir/$tool"
    chmod 0755 "$dir/$tool"
  done
}

role="${1:-submit}"
case "$role" in
  master | worker | submit) shift || true ;;
  link-spark-tools) link_spark_tools "${2:?usage: entrypoint link-spark-tools DIR}"; exit ;;
  *) exec "$@" ;;
esac

SPARK_HOME="$(find_spark_home)"
export SPARK_HOME
host="$(hostname)"
class="$SPARK_HOME/bin/spark-class"

case "$role" in
  master)
    exec "$class" org.apache.spark.deploy.master.Master --host "${SPARK_MASTER_HOST:-$host}" \
      --port "${SPARK_MASTER_PORT:-7077}" --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}" "$@"
    ;;
  worker)
    exec "$class" org.apache.spark.deploy.worker.Worker "${SPARK_MASTER_URL:-spark://spark-master:7077}" \
      --host "$host" --webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}" \
      --cores "${SPARK_WORKER_CORES:-1}" --memory "${SPARK_WORKER_MEMORY:-1g}" \
      --work-dir "${SPARK_WORKER_DIR:-/var/lib/spark-mlflow/work}" "$@"
    ;;
  submit)
    # Defaults for every `spark-submit` run in this container (docker compose exec inherits them).
    conf="${SPARK_CONF_DIR:-$SPARK_HOME/conf}/spark-defaults.conf"
    mkdir -p "$(dirname "$conf")"
    {
      echo "spark.master ${SPARK_MASTER_URL:-spark://spark-master:7077}"
      echo "spark.driver.host $host"
      echo "spark.driver.memory ${DRIVER_MEMORY:-1g}"
      echo "spark.executor.memory ${EXECUTOR_MEMORY:-768m}"
      echo "spark.local.dir ${SPARK_LOCAL_DIRS:-/tmp}"
    } >"$conf"
    echo "entrypoint: spark-submit container ready (Spark $SPARK_HOME, defaults in $conf)"
    # Idle until stopped; `init: true` (tini) forwards SIGTERM, so a stop takes no grace period.
    exec sleep infinity
    ;;
esac
