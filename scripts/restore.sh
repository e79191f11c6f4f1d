#!/usr/bin/env bash
# Restore MLFLOW_DATA_DIR from a backup (make backup) with the stack stopped; the current data is moved aside.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

datasafety() { "$PYTHON_BIN" "$ROOT/tools/datasafety.py" "$@"; }

from="${1:-}"
[[ -n "$from" ]] || die "name the backup to restore: make restore FROM=work/backups/<timestamp>" 2
require_venv
"$ROOT/scripts/check-stopped.sh"

from="$(realpath -m "$from")"
data="$(realpath -m "$MLFLOW_DATA_DIR")"
case "$from/" in
  "$data"/*) die "FROM=$from is inside ${data#"$ROOT"/}, the folder a restore replaces; copy it elsewhere first" 2 ;;
esac
step "Checking the backup ${from#"$ROOT"/}"
datasafety check "$from" --mlflow-version "$MLFLOW_VERSION"

# Copied beside the data folder and verified before anything is moved: a failed copy changes nothing.
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
staging="$(dirname "$data")/.$(basename "$data").restoring-$stamp"
rm -rf "$staging"
mkdir -p "$staging"
trap 'rm -rf "$staging"' EXIT
step "Copying the backup in"
cp -a "$from/mlflow.db" "$from/artifacts" "$staging/" ||
  die "copying ${from#"$ROOT"/} failed (see above); nothing changed" 1
datasafety check "$from" --data "$staging" --quiet ||
  die "the copy of ${from#"$ROOT"/} differs from its backup.json; nothing changed (check the disk: df -h)" 1

if [[ -e "$data" ]]; then
  aside="$data.before-restore-$stamp"
  n=1
  while [[ -e "$aside" ]]; do aside="$data.before-restore-$stamp-$((++n))"; done
  mv "$data" "$aside"
  step "Current data moved aside to ${aside#"$ROOT"/} (delete it yourself once the restore is fine)"
else
  step "No current data at ${data#"$ROOT"/}; nothing to move aside"
fi
mv "$staging" "$data"
trap - EXIT
step "Verifying the restored data"
datasafety check "$from" --data "$data" --quiet ||
  die "the restored ${data#"$ROOT"/} does not match the backup (see above); the previous data is in ${aside:-nowhere (there was none)}" 1
step "Restored ${data#"$ROOT"/} from ${from#"$ROOT"/}; start the stack with: make up"
