#!/usr/bin/env bash
# Delete MLFLOW_DATA_DIR (every run, model and artifact): the only script that does; asks first, or CONFIRM=yes.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

data="$MLFLOW_DATA_DIR"
shown="${data#"$ROOT"/}"
if [[ ! -e "$data" ]]; then
  step "No MLflow data at $shown; nothing to remove"
  exit 0
fi
"$ROOT/scripts/check-stopped.sh"

count_files() { find "$1" ! -type d | wc -l; }
count_bytes() { find "$1" ! -type d -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }
files="$(count_files "$data")"
bytes="$(count_bytes "$data")"
size="$files files, $(numfmt --to=iec-i --suffix=B "$bytes")"

if [[ "${CONFIRM:-}" == yes ]]; then
  :
elif [[ -t 0 ]]; then
  printf 'This deletes %s (%s): every MLflow run, model and artifact.\n' "$shown" "$size" >&2
  printf 'Back it up first with: make backup\n' >&2
  printf "Type the folder name (%s) to confirm: " "$(basename "$data")" >&2
  read -r answer || answer=""
  [[ "$answer" == "$(basename "$data")" || "$answer" == "$shown" ]] ||
    die "'$answer' is not '$(basename "$data")'; nothing removed" 1
else
  die "no terminal to confirm on; to delete $shown ($size) run: make clean-data CONFIRM=yes" 2
fi

step "Removing $shown"
rm -rf -- "$data"
step "Removed $shown: $size (the rest of ${WORK_DIR#"$ROOT"/}/, backups included, is kept)"
