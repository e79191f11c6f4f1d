#!/usr/bin/env bash
# Rebuild the local stack: stop it, reinstall the Python environment if a pin changed, start, wait.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/local/down.sh"
"$ROOT/scripts/setup.sh"
exec "$ROOT/scripts/local/up.sh"
