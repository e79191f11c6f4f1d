#!/usr/bin/env bash
# Show the logs of the local stack: all components, or the one named (TAIL=50 lines by default; FOLLOW=1 to follow).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

component="${1:-}"
lines="${TAIL:-50}"
if [[ -n "$component" ]]; then
  file="$(log_file "$component")"
  [[ -f "$file" ]] || die "no log for '$component' in ${LOG_DIR#"$ROOT"/}/; components: $(wanted_components | tr '\n' ' ')" 2
  files=("$file")
else
  files=("$LOG_DIR"/*.log)
  [[ -e "${files[0]}" ]] || die "no logs in ${LOG_DIR#"$ROOT"/}/ yet; start the stack with 'make up'" 2
fi
if [[ "${FOLLOW:-0}" == 1 ]]; then
  exec tail -n "$lines" -F "${files[@]}"
fi
tail -n "$lines" "${files[@]}"
