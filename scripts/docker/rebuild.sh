#!/usr/bin/env bash
# Rebuild the docker stack: stop, build the images (cached), start, wait (docker/rebuild-and-restart.sh).
set -o errexit -o nounset -o pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../../docker/rebuild-and-restart.sh" "$@"
