#!/usr/bin/env bash
# Health of the local stack: processes by PID file, then every endpoint (tools/healthcheck.py status).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_positive_int WORKERS
while read -r component; do
  running_pid "$component" >/dev/null || note "$component: no process of ours is running (start the stack with 'make up')"
done < <(wanted_components)
healthcheck status "$@"
