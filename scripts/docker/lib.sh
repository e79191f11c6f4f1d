# Helpers of the docker runtime: the compose command, image names, the stack's services. Sourced.
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

COMPOSE_FILE_PATH="$ROOT/docker/docker-compose.yml"
TOOLKIT_DOCKER_CONFIG="${DOCKER_TOOLKIT_DIR:-/var/lib/docker-toolkit}/docker-config"

# --- images (names and tags from versions.env; OFFLINE=1 uses the ones built here) -------------
OFFLINE="${OFFLINE:-0}"
SPARK_MLFLOW_IMAGE="${SPARK_MLFLOW_IMAGE:-$IMAGE_PREFIX/spark-mlflow:$SPARK_VERSION-mlflow$MLFLOW_VERSION}"
OFFLINE_ROOTFS_IMAGE="$IMAGE_PREFIX/debian-rootfs:$DEBIAN_SUITE"
OFFLINE_BASE_IMAGE="$IMAGE_PREFIX/spark-base:$SPARK_VERSION"
OFFLINE_SERVER_IMAGE="$IMAGE_PREFIX/mlflow-server:$MLFLOW_VERSION"
export OFFLINE_ROOTFS_IMAGE OFFLINE_BASE_IMAGE OFFLINE_SERVER_IMAGE
if [[ "$OFFLINE" == 1 ]]; then
  SPARK_BASE_IMAGE="${SPARK_BASE_IMAGE:-$OFFLINE_BASE_IMAGE}"
  MLFLOW_SERVER_IMAGE="${MLFLOW_SERVER_IMAGE:-$OFFLINE_SERVER_IMAGE}"
else
  SPARK_BASE_IMAGE="${SPARK_BASE_IMAGE:-$SPARK_BASE_REPO:$SPARK_VERSION$SPARK_BASE_TAG_SUFFIX}"
  MLFLOW_SERVER_IMAGE="${MLFLOW_SERVER_IMAGE:-$MLFLOW_SERVER_REPO:v$MLFLOW_VERSION}"
fi
export OFFLINE SPARK_MLFLOW_IMAGE SPARK_BASE_IMAGE MLFLOW_SERVER_IMAGE

# --- sizes and ports the compose file reads ------------------------------------------------------
# The docker stack has its own worker count (the compose file defines spark-worker-1..4).
WORKERS="$DOCKER_WORKERS"
MAX_DOCKER_WORKERS=4
export WORKERS DOCKER_WORKERS DOCKER_WORKER_CORES DOCKER_WORKER_MEMORY STACK_UID STACK_GID
export COMPOSE_PROJECT_NAME BIND_HOST MLFLOW_PORT SPARK_MASTER_UI_PORT ARTIFACT_MODE MLFLOW_WORKERS
export SPARK_DAEMON_MEMORY EXECUTOR_MEMORY DRIVER_MEMORY MLFLOW_VERSION
for ((_i = 1; _i <= MAX_DOCKER_WORKERS; _i++)); do
  export "SPARK_WORKER_${_i}_UI_PORT=$(worker_ui_port "$_i")"
done
unset _i
export JOBS_DIR="${JOBS_DIR:-$ROOT/jobs}"

check_docker_settings() {
  require_positive_int DOCKER_WORKERS
  ((DOCKER_WORKERS <= MAX_DOCKER_WORKERS)) ||
    die "DOCKER_WORKERS=$DOCKER_WORKERS but docker/docker-compose.yml defines $MAX_DOCKER_WORKERS workers; use DOCKER_WORKERS=1..$MAX_DOCKER_WORKERS" 2
  require_positive_int DOCKER_WORKER_CORES
  require_positive_int MLFLOW_WORKERS
  case "$ARTIFACT_MODE" in
    shared | served) ;;
    *) die "ARTIFACT_MODE='$ARTIFACT_MODE' is unknown; use ARTIFACT_MODE=shared or ARTIFACT_MODE=served" 2 ;;
  esac
}

# --- the compose command: COMPOSE="..." wins, then Compose v2, then v1 ---------------------------
COMPOSE_CMD=()
choose_compose() {
  ((${#COMPOSE_CMD[@]} > 0)) && return 0
  if [[ -n "${COMPOSE:-}" ]]; then
    read -ra COMPOSE_CMD <<<"$COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
  elif [[ -z "${DOCKER_CONFIG:-}" && -x "$TOOLKIT_DOCKER_CONFIG/cli-plugins/docker-compose" ]]; then
    # The plugin scripts/docker-engine.sh installed is found only through DOCKER_CONFIG.
    export DOCKER_CONFIG="$TOOLKIT_DOCKER_CONFIG"
    COMPOSE_CMD=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
  else
    die "neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed; run scripts/docker-engine.sh start or set COMPOSE=" 2
  fi
}

# compose_version: 2 or 1.
compose_version() {
  choose_compose
  if [[ "${COMPOSE_CMD[*]}" == "docker compose" ]]; then echo 2; return; fi
  "${COMPOSE_CMD[@]}" version --short 2>/dev/null | grep -q '^1\.' && echo 1 || echo 2
}

compose() {
  choose_compose
  "${COMPOSE_CMD[@]}" --project-name "$COMPOSE_PROJECT_NAME" --file "$COMPOSE_FILE_PATH" "$@"
}

require_engine() {
  docker_engine_answers ||
    die "no Docker engine answers ('docker info' failed or took over ${DOCKER_PROBE_TIMEOUT:-5} s); start it (scripts/docker-engine.sh start) or use RUNTIME=local" 2
}

# Long-running services of the stack, in start order (init is a one-shot).
stack_services() {
  local i
  echo mlflow-server
  echo spark-master
  for ((i = 1; i <= DOCKER_WORKERS; i++)); do echo "spark-worker-$i"; done
  echo spark-submit
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# docker_build NAME DOCKERFILE CONTEXT ARGS...: one builder (the classic one: no buildx here, and
# BuildKit keeps a separate cache), --no-cache with NO_CACHE=1. Output goes to a log file whose tail
# is shown when the build fails (BUILD_VERBOSE=1: to the terminal).
docker_build() {
  local name="$1" dockerfile="$2" context="$3" start=$SECONDS log
  shift 3
  local args=(--file "$dockerfile" --tag "$name")
  [[ "${NO_CACHE:-0}" == 1 ]] && args+=(--no-cache)
  log="$ROOT/work/docker-build/$(basename "$dockerfile").log"
  mkdir -p "$(dirname "$log")"
  step "Building $name (${dockerfile#"$ROOT"/})"
  if [[ "${BUILD_VERBOSE:-0}" == 1 ]]; then
    DOCKER_BUILDKIT=0 docker build "${args[@]}" "$@" "$context" 2>&1 | tee "$log" >&2
  else
    DOCKER_BUILDKIT=0 docker build "${args[@]}" "$@" "$context" >"$log" 2>&1
  fi || {
    tail -n 25 "$log" >&2
    die "building $name failed (full log: ${log#"$ROOT"/})"
  }
  note "built $name in $((SECONDS - start)) s ($(image_size "$name"))"
}

image_size() {
  docker image inspect --format '{{.Size}}' "$1" 2>/dev/null |
    awk '{ printf "%.0f MB", $1 / 1000000 }'
}

# stage_extra_ca: copy EXTRA_CA_CERTS=DIR's certificates into the build context (docker/extra-ca).
stage_extra_ca() {
  local dest="$ROOT/docker/extra-ca" found=0 file
  find "$dest" -maxdepth 1 -type f \( -name '*.crt' -o -name '*.pem' \) -delete
  [[ -n "${EXTRA_CA_CERTS:-}" ]] || return 0
  [[ -d "$EXTRA_CA_CERTS" ]] ||
    die "EXTRA_CA_CERTS='$EXTRA_CA_CERTS' is not a folder; point it at a folder of *.crt/*.pem files (e.g. /usr/local/share/ca-certificates)" 2
  for file in "$EXTRA_CA_CERTS"/*.crt "$EXTRA_CA_CERTS"/*.pem; do
    [[ -f "$file" ]] || continue
    cp "$file" "$dest/extra-$(basename "$file")"
    found=$((found + 1))
  done
  ((found > 0)) || die "EXTRA_CA_CERTS='$EXTRA_CA_CERTS' holds no *.crt or *.pem file" 2
  note "build trusts $found extra CA certificate(s) from $EXTRA_CA_CERTS (build stage only)"
}

# hold_build_lock: one image build per checkout at a time. Builds share their context (the
# repository, docker/extra-ca where EXTRA_CA_CERTS is staged): a second build waits for the first
# (BUILD_LOCK_TIMEOUT seconds, default 1800; the lock file: BUILD_LOCK_FILE, default
# work/.docker-build.lock). Held until this process exits; children (the
# offline base build) see TOOLKIT_BUILD_LOCK_HELD and do not wait for their own parent.
hold_build_lock() {
  [[ -z "${TOOLKIT_BUILD_LOCK_HELD:-}" ]] || return 0
  local lock="${BUILD_LOCK_FILE:-$ROOT/work/.docker-build.lock}" timeout="${BUILD_LOCK_TIMEOUT:-1800}"
  local holder
  mkdir -p "$(dirname "$lock")"
  exec {BUILD_LOCK_FD}>>"$lock"
  if ! flock --nonblock "$BUILD_LOCK_FD"; then
    holder="$(cat "$lock.pid" 2>/dev/null || echo '?')"
    note "another image build of this checkout is running (pid $holder); waiting up to $timeout s"
    flock --timeout "$timeout" "$BUILD_LOCK_FD" ||
      die "the image build of pid $holder still holds $lock after $timeout s; wait for it or stop it" 1
  fi
  echo "$$" >"$lock.pid"
  export TOOLKIT_BUILD_LOCK_HELD=1
}

# build_images: the offline bases first when OFFLINE=1 (compose cannot order a base build), then
# the Spark+MLflow image. Cached unless NO_CACHE=1.
build_images() {
  hold_build_lock
  if [[ "$OFFLINE" == 1 ]]; then
    "$ROOT/scripts/build-base-image.sh"
  fi
  stage_extra_ca
  docker_build "$SPARK_MLFLOW_IMAGE" "$ROOT/docker/Dockerfile.spark-mlflow" "$ROOT" \
    --build-arg "SPARK_BASE_IMAGE=$SPARK_BASE_IMAGE" --build-arg "MLFLOW_VERSION=$MLFLOW_VERSION" \
    --build-arg "STACK_UID=$STACK_UID" --build-arg "STACK_GID=$STACK_GID" \
    --label "org.opencontainers.image.base.name=$SPARK_BASE_IMAGE"
  stage_extra_ca_clean
}

stage_extra_ca_clean() {
  find "$ROOT/docker/extra-ca" -maxdepth 1 -type f \( -name '*.crt' -o -name '*.pem' \) -delete
}

# remove_stale_containers: containers of this project that `down` left (another Compose version's
# names, a crashed run) would keep the ports or the names.
remove_stale_containers() {
  local ids
  mapfile -t ids < <(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
  mapfile -t -O "${#ids[@]}" ids < <(docker ps -aq --filter "name=^/${COMPOSE_PROJECT_NAME}[-_]")
  if ((${#ids[@]} > 0)); then
    mapfile -t ids < <(printf '%s\n' "${ids[@]}" | sort -u)
    note "removing ${#ids[@]} leftover container(s) of project $COMPOSE_PROJECT_NAME"
    docker rm -f "${ids[@]}" >/dev/null
  fi
}

# start_stack: the data folder, then compose up of the wanted services (no build, no pull of ours).
start_stack() {
  mkdir -p "$MLFLOW_DATA_DIR"
  local services
  mapfile -t services < <(stack_services)
  step "Starting ${services[*]} (artifact mode: $ARTIFACT_MODE, compose v$(compose_version))"
  # v1 blocks on depends_on conditions; v2 returns once containers are created and started.
  if ! compose up --detach --no-build "${services[@]}"; then
    report_failed_start
    die "'compose up' failed (see above)"
  fi
}

# report_failed_start: for each service not running, its state and log tail.
report_failed_start() {
  local service
  for service in init $(stack_services); do
    "$ROOT/scripts/docker/service-report.sh" --if-not-running "$service" >&2 || true
  done
}

# docker_healthcheck status|wait ARGS...: the health tool on the published ports; an unhealthy
# service gets its container state, health output and log tail (logs are Docker's, not files).
docker_healthcheck() {
  local action="$1"
  shift
  healthcheck "$action" --log-command "$(printf '%q' "$ROOT/scripts/docker/service-report.sh") {name}" "$@"
}

wait_healthy() {
  step "Waiting until every service is healthy"
  docker_healthcheck wait --timeout "${UP_TIMEOUT:-240}"
}

# container_of SERVICE: the id of its container (running or not), empty when there is none.
container_of() {
  docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$1" | head -n1
}

# wait_docker_health SERVICE...: poll Docker's own health of services the health tool does not
# probe (spark-submit) until healthy; on timeout report them and fail.
wait_docker_health() {
  local deadline=$((SECONDS + ${UP_TIMEOUT:-240})) service id health pending
  while :; do
    pending=()
    for service in "$@"; do
      id="$(container_of "$service")"
      health="$([[ -n "$id" ]] && docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null)"
      [[ "$health" == healthy ]] || pending+=("$service")
    done
    ((${#pending[@]} == 0)) && return 0
    if ((SECONDS >= deadline)); then
      for service in "${pending[@]}"; do "$ROOT/scripts/docker/service-report.sh" "$service" >&2; done
      die "not healthy after ${UP_TIMEOUT:-240} s: ${pending[*]}"
    fi
    sleep 0.5
  done
}

# ensure_server_image: the MLflow server image is here, or pulled now (with a hint when no registry
# answers: OFFLINE=1 builds one).
ensure_server_image() {
  image_exists "$MLFLOW_SERVER_IMAGE" && return 0
  [[ "$OFFLINE" == 1 ]] && die "$MLFLOW_SERVER_IMAGE is missing; scripts/build-base-image.sh builds it" 2
  step "Pulling $MLFLOW_SERVER_IMAGE"
  docker pull --quiet "$MLFLOW_SERVER_IMAGE" >/dev/null ||
    die "cannot pull $MLFLOW_SERVER_IMAGE (no registry reachable?); build everything locally with OFFLINE=1" 2
}
