#!/usr/bin/env bash
# Back up MLFLOW_DATA_DIR (mlflow.db by SQLite's online backup, artifacts/ by cp -a) to TO, stack up or down.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

datasafety() { "$PYTHON_BIN" "$ROOT/tools/datasafety.py" "$@"; }

require_venv
src="$MLFLOW_DATA_DIR"
[[ -f "$src/mlflow.db" ]] ||
  die "no MLflow database at ${src#"$ROOT"/}/mlflow.db; nothing to back up (start the stack once, or set WORK_DIR)" 2
# Only the runtime's name is recorded: backing up needs no engine, so none is probed.
case "${RUNTIME:-auto}" in
  auto | local) runtime=local ;;
  docker) runtime=docker ;;
  *) die "RUNTIME='${RUNTIME}' is unknown; use RUNTIME=auto, RUNTIME=local or RUNTIME=docker" 2 ;;
esac

if [[ -n "${TO:-}" ]]; then
  dest="$(realpath -m "$TO")"
  [[ ! -e "$dest" ]] || die "TO=$TO exists already; a backup never overwrites: name a new folder" 2
else
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  dest="$WORK_DIR/backups/$stamp"
  n=1
  while [[ -e "$dest" ]]; do dest="$WORK_DIR/backups/$stamp-$((++n))"; done
fi
case "$dest/" in
  "$(realpath -m "$src")"/*) die "TO=$dest is inside ${src#"$ROOT"/}; put the backup elsewhere" 2 ;;
esac

# Built under a temporary name and renamed at the end: a failed backup never looks like one.
partial="$(dirname "$dest")/.$(basename "$dest").partial"
mkdir -p "$(dirname "$dest")"
rm -rf "$partial"
mkdir "$partial"
trap 'rm -rf "$partial"' EXIT

step "Backing up ${src#"$ROOT"/} to ${dest#"$ROOT"/}"
step "Copying the database with SQLite's online backup (consistent while the server writes)"
since_ns="$(datasafety copy-db "$src/mlflow.db" "$partial/mlflow.db")"
# After the database: every artifact the database copy refers to was written before it.
step "Copying the artifacts"
if [[ -d "$src/artifacts" ]]; then
  cp -a "$src/artifacts" "$partial/artifacts" || die "copying the artifacts failed (see above); no backup written"
else
  mkdir "$partial/artifacts"
fi
step "Verifying the copy and writing backup.json"
datasafety finish "$partial" --source "$src" --since-ns "$since_ns" \
  --runtime "$runtime" --mlflow-version "$MLFLOW_VERSION"
mv "$partial" "$dest"
trap - EXIT
step "Backup done: ${dest#"$ROOT"/} (restore with: make restore FROM=${dest#"$ROOT"/})"
echo "$dest"
