#!/usr/bin/env bash
# Run every benchmark in bench/ (or those named: BENCH="stack artifacts") and print their ratios.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/setup.sh"
cd "$ROOT"
read -ra names <<<"${BENCH:-}"
if ((${#names[@]} == 0)); then
  for file in bench/bench_*.py; do
    name="${file#bench/bench_}"
    names+=("${name%.py}")
  done
fi
for name in "${names[@]}"; do
  [[ -f "bench/bench_$name.py" ]] || die "no benchmark bench/bench_$name.py" 2
  step "bench: $name"
  "$PYTHON_BIN" "bench/bench_$name.py"
done
