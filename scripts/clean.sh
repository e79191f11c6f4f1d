#!/usr/bin/env bash
# Remove caches, logs, stale PID files, job outputs and temp files; never work/mlflow (user data),
# work/backups, or a local copy that still waits for `make relog` (its pending.json says so).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if compgen -G "$RUN_DIR/*.pid" >/dev/null; then
  die "the stack still has PID files in ${RUN_DIR#"$ROOT"/}/; run 'make down' first" 1
fi
step "Removing logs, outputs, temp files and caches (work/mlflow is kept)"
kept=0
if [[ -d "$WORK_DIR/output" ]]; then
  while IFS= read -r -d '' copy; do
    if [[ -f "$copy/pending.json" ]]; then
      note "kept ${copy#"$ROOT"/}: not logged yet (make relog DIR=${copy#"$ROOT"/})"
      kept=$((kept + 1))
    else
      rm -rf "$copy"
    fi
  done < <(find "$WORK_DIR/output" -mindepth 2 -maxdepth 2 -type d -print0)
  ((kept > 0)) || rm -rf "$WORK_DIR/output"
fi
rm -rf "$LOG_DIR" "$RUN_DIR" "$WORK_DIR/tmp" "$WORK_DIR/spark" "$WORK_DIR/bench" "$WORK_DIR/jars" \
  "$WORK_DIR"/test "$WORK_DIR"/test-*
find "$ROOT" -path "$ROOT/.venv" -prune -o -type d \( -name __pycache__ -o -name .pytest_cache -o -name .ruff_cache -o -name .hypothesis \) -print0 |
  xargs -0 rm -rf
note "kept: ${MLFLOW_DATA_DIR#"$ROOT"/} (remove it only on purpose: make clean-data)"
