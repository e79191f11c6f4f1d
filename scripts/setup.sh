#!/usr/bin/env bash
# Make .venv from the pins (versions.env, requirements.txt, constraints.txt); reinstall only when a pin changed.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${PYTHON:-python3}"
JAVA="${JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/}java}"

# version_at_least HAVE WANT: true when dotted version HAVE >= WANT.
version_at_least() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

check_python() {
  local have
  have="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" ||
    die "no working '$PYTHON' found; install Python $PYTHON_MIN or newer (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3" 2
  version_at_least "$have" "$PYTHON_MIN" ||
    die "$PYTHON is Python $have; Python $PYTHON_MIN or newer is needed (set PYTHON=/path/to/python3.11)" 2
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
    die "$PYTHON has no venv/ensurepip module; install it (Debian: apt-get install python3-venv)" 2
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 ||
    die "no Java found; install Java $JAVA_MIN (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME" 2
  local have
  have="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  if [[ -z "$have" ]] || ((have < JAVA_MIN)); then
    die "$JAVA is Java ${have:-unknown}; Java $JAVA_MIN or newer is needed (Debian: apt-get install openjdk-17-jre-headless)" 2
  fi
}

# The pins' fingerprint: only what decides the installed packages.
pins_fingerprint() {
  {
    grep -E '^(SPARK|MLFLOW)_VERSION=' "$ROOT/versions.env"
    cat "$ROOT/requirements.txt" "$ROOT/constraints.txt"
    "$PYTHON" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -d' ' -f1
}

check_python
check_java

stamp="$VENV/.pins.sha256"
want="$(pins_fingerprint)"
if [[ -x "$PYTHON_BIN" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  note "Python environment $VENV is up to date"
  exit 0
fi

step "Installing the Python environment in $VENV (MLflow $MLFLOW_VERSION, PySpark $SPARK_VERSION)"
[[ -x "$PYTHON_BIN" ]] || "$PYTHON" -m venv "$VENV"
rm -f "$stamp"
"$PYTHON_BIN" -m pip install --quiet --disable-pip-version-check \
  "mlflow==$MLFLOW_VERSION" "mlflow-skinny==$MLFLOW_VERSION" "mlflow-tracing==$MLFLOW_VERSION" \
  "pyspark==$SPARK_VERSION" \
  -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt"
echo "$want" >"$stamp"
note "installed: $("$PYTHON_BIN" -c 'import mlflow, pyspark; print("mlflow", mlflow.__version__, "pyspark", pyspark.__version__)' 2>/dev/null)"
