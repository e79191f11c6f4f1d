# Process helpers of the local runtime: components as plain processes on loopback. Sourced.
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# pyspark's package carries a whole Spark distribution (bin/spark-class, jars/).
spark_home() {
  local dir
  for dir in "$VENV"/lib/python3*/site-packages/pyspark; do
    [[ -x "$dir/bin/spark-class" ]] && { echo "$dir"; return 0; }
  done
  die "no Spark found in $VENV (pyspark missing); run 'make setup'" 2
}

pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }

# Every process we start carries this tag (work dir + name) in its environment: it proves a PID is ours
# (PIDs get reused) and it survives exec and is inherited by children.
component_tag() { echo "$WORK_DIR:$1"; }

# pid_is_component PID COMPONENT: the process exists and was started by us as COMPONENT.
pid_is_component() {
  local pid="$1" tag
  tag="STACK_COMPONENT=$(component_tag "$2")"
  [[ -r "/proc/$pid/environ" ]] || return 1
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "$tag"
}

# running_pid COMPONENT: print the PID of a running component; remove a stale PID file.
running_pid() {
  local file pid
  file="$(pid_file "$1")"
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && pid_is_component "$pid" "$1"; then
    echo "$pid"
    return 0
  fi
  note "removing stale PID file of $1 (process ${pid:-?} is gone)"
  rm -f "$file"
  return 1
}

# Components named by PID files, whatever WORKERS is now (a stack may have been started bigger).
recorded_components() {
  local file
  for file in "$RUN_DIR"/*.pid; do
    [[ -e "$file" ]] && basename "$file" .pid
  done
  return 0
}

wanted_components() {
  local i
  echo mlflow-server
  echo spark-master
  for ((i = 1; i <= WORKERS; i++)); do echo "spark-worker-$i"; done
}

# start_component NAME CMD...: run CMD in its own session (so the whole group can be stopped),
# logging to work/logs/NAME.log, PID in work/run/NAME.pid.
start_component() {
  local name="$1" log
  shift
  log="$(log_file "$name")"
  printf '\n===== %s starting %s: %s\n' "$(date -u +%FT%TZ)" "$name" "$*" >>"$log"
  STACK_COMPONENT="$(component_tag "$name")" setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
  note "started $name (pid $!, log ${log#"$ROOT"/})"
}

# stop_component NAME: TERM the process group, wait for it to go, KILL what stays.
stop_component() {
  local name="$1" pid waited=0
  pid="$(running_pid "$name")" || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  while kill -0 -- "-$pid" 2>/dev/null; do
    if ((waited >= ${STOP_TIMEOUT_TENTHS:-150})); then
      warn "$name (pid $pid) did not stop on TERM within $((waited / 10)) s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$(pid_file "$name")"
  note "stopped $name (pid $pid)"
}

# wait_for_port HOST PORT SECONDS: poll until something accepts connections.
wait_for_port() {
  local host="$1" port="$2" deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# The port each wanted component binds, as NAME=PORT=VARIABLE.
component_port() {
  case "$1" in
    mlflow-server) echo "$MLFLOW_PORT=MLFLOW_PORT" ;;
    spark-master) echo "$SPARK_MASTER_PORT=SPARK_MASTER_PORT $SPARK_MASTER_UI_PORT=SPARK_MASTER_UI_PORT" ;;
    spark-worker-*) echo "$(worker_ui_port "${1#spark-worker-}")=SPARK_WORKER_UI_BASE_PORT" ;;
  esac
}
