#!/usr/bin/env bash
# Lint: shellcheck on every shell script, ruff (check + format) on the Python.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHELLCHECK="${SHELLCHECK:-shellcheck}"
command -v "$SHELLCHECK" >/dev/null 2>&1 ||
  die "shellcheck is not installed; install it (Debian: apt-get install shellcheck)" 2
require_venv

cd "$ROOT"
mapfile -t shell_files < <(git ls-files --cached --others --exclude-standard -- '*.sh' '.ci/run' | sort -u)
step "shellcheck (${#shell_files[@]} files)"
"$SHELLCHECK" -x -P SCRIPTDIR "${shell_files[@]}"
step "ruff check"
"$VENV/bin/ruff" check .
step "ruff format --check"
"$VENV/bin/ruff" format --check .
