# Shared shell helpers: repo root, versions.env, messages, runtime choice. Sourced, never run.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

# Load versions.env without overriding what the caller already set in the environment.
load_versions() {
  local line key value
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    value="${line#*=}"
    if [[ -z "${!key+set}" ]]; then
      export "$key=$value"
    fi
  done <"$ROOT/versions.env"
}
load_versions

VENV="${VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON_BIN:-$VENV/bin/python}"
WORK_DIR="${WORK_DIR:-$ROOT/work}"
RUN_DIR="$WORK_DIR/run"
LOG_DIR="$WORK_DIR/logs"
MLFLOW_DATA_DIR="$WORK_DIR/mlflow"
export VENV PYTHON_BIN WORK_DIR RUN_DIR LOG_DIR MLFLOW_DATA_DIR

step() { printf '==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
# die MESSAGE [EXIT_CODE]: one clear line, non-zero exit.
die() {
  printf 'error: %s\n' "$1" >&2
  exit "${2:-1}"
}

# require_positive_int NAME: the variable NAME must hold a whole number >= 1.
require_positive_int() {
  local name="$1" value="${!1:-}"
  if ! [[ "$value" =~ ^[0-9]+$ ]] || ((10#$value < 1)); then
    die "$name='$value' is not a positive whole number (example: $name=2)" 2
  fi
}

# docker_engine_answers: a docker CLI is here and an engine answers it within DOCKER_PROBE_TIMEOUT s.
docker_engine_answers() {
  command -v docker >/dev/null 2>&1 && timeout "${DOCKER_PROBE_TIMEOUT:-5}" docker info >/dev/null 2>&1
}

# resolve_runtime: print local or docker for RUNTIME=auto|local|docker.
resolve_runtime() {
  local runtime="${RUNTIME:-auto}"
  case "$runtime" in
    local) echo local ;;
    docker)
      docker_engine_answers ||
        die "no Docker engine answers ('docker info' failed or took over ${DOCKER_PROBE_TIMEOUT:-5} s); start it (scripts/docker-engine.sh start) or use RUNTIME=local" 2
      echo docker
      ;;
    # auto: docker when an engine answers within 2 s (no engine: an immediate no), else local.
    auto) if DOCKER_PROBE_TIMEOUT="${DOCKER_PROBE_TIMEOUT:-2}" docker_engine_answers; then echo docker; else echo local; fi ;;
    *) die "RUNTIME='$runtime' is unknown; use RUNTIME=auto, RUNTIME=local or RUNTIME=docker" 2 ;;
  esac
}

# URLs of the stack as seen from this machine.
MLFLOW_URL="${MLFLOW_URL:-http://$BIND_HOST:$MLFLOW_PORT}"
SPARK_MASTER_URL="${SPARK_MASTER_URL:-spark://$BIND_HOST:$SPARK_MASTER_PORT}"
SPARK_MASTER_UI_URL="${SPARK_MASTER_UI_URL:-http://$BIND_HOST:$SPARK_MASTER_UI_PORT}"
export MLFLOW_URL SPARK_MASTER_URL SPARK_MASTER_UI_URL

worker_ui_port() { echo $((SPARK_WORKER_UI_BASE_PORT + $1 - 1)); }

# healthcheck ARGS...: the health tool, with the stack's URLs and sizes.
healthcheck() {
  require_venv
  local urls=() i
  for ((i = 1; i <= WORKERS; i++)); do
    urls+=("http://$BIND_HOST:$(worker_ui_port "$i")")
  done
  SPARK_WORKER_UI_URLS="${SPARK_WORKER_UI_URLS:-${urls[*]}}" STACK_LOG_DIR="${STACK_LOG_DIR:-$LOG_DIR}" \
    "$PYTHON_BIN" "$ROOT/tools/healthcheck.py" "$@"
}

require_venv() {
  [[ -x "$PYTHON_BIN" ]] || die "no Python environment at $VENV; run 'make setup' first" 2
}
