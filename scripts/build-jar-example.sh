#!/usr/bin/env bash
# Build the example JVM job jobs/java into work/jars/mlflow-artifact-job.jar (needs a JDK: javac, jar).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local/lib.sh"

JAVAC="${JAVAC:-javac}"
JAR="${JAR:-jar}"
command -v "$JAVAC" >/dev/null 2>&1 ||
  die "no javac found; install a JDK (Debian: apt-get install openjdk-17-jdk-headless)" 2
spark_jars="$(spark_home)/jars"
out="$WORK_DIR/jars"
classes="$(mktemp -d)"
trap 'rm -rf "$classes"' EXIT
mkdir -p "$out"
"$JAVAC" -d "$classes" -cp "$spark_jars/*" "$ROOT"/jobs/java/toolkit/*.java
"$JAR" --create --file "$out/mlflow-artifact-job.jar" -C "$classes" .
echo "$out/mlflow-artifact-job.jar"
