#!/usr/bin/env bash
# Remove caches, logs, stale PID files, job outputs and temp files; never work/mlflow (user data).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if compgen -G "$RUN_DIR/*.pid" >/dev/null; then
  die "the stack still has PID files in ${RUN_DIR#"$ROOT"/}/; run 'make down' first" 1
fi
step "Removing logs, outputs, temp files and caches (work/mlflow is kept)"
rm -rf "$LOG_DIR" "$RUN_DIR" "$WORK_DIR/output" "$WORK_DIR/tmp" "$WORK_DIR/spark" "$WORK_DIR/bench" "$WORK_DIR/jars" "$WORK_DIR"/test "$WORK_DIR"/test-*
find "$ROOT" -path "$ROOT/.venv" -prune -o -type d \( -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache -o -name .hypothesis \) -print0 |
  xargs -0 rm -rf
note "kept: ${MLFLOW_DATA_DIR#"$ROOT"/} (remove it only on purpose)"
