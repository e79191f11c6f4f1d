#!/usr/bin/env bash
# Submit a job (default: the ML pipeline) to the cluster with MLflow wired in; start the stack first if needed.
#
# JOB=path.py|path.jar (default jobs/train_classifier.py), CLASS=main class (JAR jobs; jars in lib/
# go on the classpath), EXPERIMENT=, DATA=, LABEL= (passed to the job), ARGS="--folds 2 ..." (more
# job arguments), MLFLOW_TRACKING_URI= (default: the stack's server).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runtime="$(resolve_runtime)"
JOB="${JOB:-$ROOT/jobs/train_classifier.py}"
[[ -f "$JOB" ]] || die "job file '$JOB' not found; set JOB=path/to/job.py or JOB=path/to/app.jar" 2
case "$JOB" in
  *.py) ;;
  *.jar)
    [[ -n "${CLASS:-}" ]] || die "JOB=$JOB is a JAR: set CLASS to its main class (e.g. CLASS=com.example.Main)" 2
    ;;
  *) die "JOB=$JOB is neither a .py nor a .jar file" 2 ;;
esac
read -ra job_args <<<"${ARGS:-}"

"$ROOT/scripts/setup.sh"
export RUNTIME="$runtime"
if ! "$ROOT/scripts/runtime.sh" status >/dev/null 2>&1; then
  step "The $runtime stack is not healthy; starting it"
  "$ROOT/scripts/runtime.sh" up ||
    die "the $runtime stack is not healthy and could not be started; see 'make status' and 'make logs'"
fi

export JOB CLASS="${CLASS:-}" STACK_RUNTIME="$runtime"
exec "$ROOT/scripts/$runtime/submit.sh" "${job_args[@]}"
