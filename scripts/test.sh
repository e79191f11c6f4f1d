#!/usr/bin/env bash
# Run the tests: unit, integration (real processes; a stack of its own under work/test), or all (lint first).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

suite="${1:-all}"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
read -ra extra_args <<<"${PYTEST_ARGS:-}"
pytest=("$VENV/bin/python" -m pytest "${extra_args[@]}")
case "$suite" in
  unit) "${pytest[@]}" -m "not integration" tests ;;
  integration) "${pytest[@]}" -m integration tests ;;
  all)
    "$ROOT/scripts/lint.sh"
    step "pytest (unit + integration)"
    "${pytest[@]}" tests
    ;;
  *) die "unknown test suite '$suite'; use unit, integration or all" 2 ;;
esac
