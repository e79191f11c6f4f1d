#!/usr/bin/env bash
# Build-time helper, run as root inside an image build: make a virtual environment VENV holding
# REQUIREMENT... pinned by constraints.txt, and check it. Works on every supported base (Debian
# python3, Bitnami's own Python, Ubuntu's python3 without python3-venv).
#   install-venv.sh [--prune] VENV REQUIREMENT...
# --prune: drop what a runtime never uses (pip, setuptools, the test suites of pandas, numpy and
# matplotlib): about 90 MB less in a client image that is never pip-installed into.
# Build inputs in /tmp/build: constraints.txt, extra-ca/*.crt|*.pem (EXTRA_CA_CERTS; trusted by pip
# for this build only: the caller's image copies the venv, never these files).
set -o errexit -o nounset -o pipefail

prune=0
if [[ "${1:-}" == --prune ]]; then
  prune=1
  shift
fi
venv="${1:?usage: install-venv.sh [--prune] VENV REQUIREMENT...}"
shift
build=/tmp/build
pip_target=()

python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  { echo "error: $(python3 --version 2>&1) on this base; MLflow 3 needs Python 3.10 or newer" >&2; exit 1; }

# Ubuntu's python3 may lack ensurepip: make the venv without pip and install with the system pip.
if python3 -m venv "$venv" 2>/dev/null; then
  pip_python="$venv/bin/python"
  pip=("$pip_python" -m pip)
else
  rm -rf "$venv"
  python3 -m venv --without-pip "$venv"
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  pip_python=python3
  pip=(python3 -m pip)
  pip_target=(--target "$site")
fi

shopt -s nullglob
extra=("$build"/extra-ca/*.crt "$build"/extra-ca/*.pem)
if ((${#extra[@]} > 0)); then
  # pip trusts certifi's bundle, not the system store: add the extra CAs to a copy of it.
  bundle="$("$pip_python" -c 'from pip._vendor import certifi; print(certifi.where())')"
  cat "$bundle" "${extra[@]}" >"$build/ca-bundle.pem"
  export PIP_CERT="$build/ca-bundle.pem"
  echo "install-venv: trusting ${#extra[@]} extra CA certificate(s) for this build" >&2
fi

PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
  "${pip[@]}" install "${pip_target[@]}" --quiet --no-warn-script-location -c "$build/constraints.txt" "$@"

# The Spark that the base carries, importable from the venv's plain `python`.
spark_home="${SPARK_HOME:-}"
for candidate in "$spark_home" /opt/spark /opt/bitnami/spark; do
  if [[ -n "$candidate" && -x "$candidate/bin/spark-class" ]]; then spark_home="$candidate"; break; fi
done
if [[ -d "$spark_home/python/pyspark" ]]; then
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  py4j=("$spark_home"/python/lib/py4j-*-src.zip)
  printf '%s\n' "$spark_home/python" "${py4j[@]}" >"$site/spark-home.pth"
  "$venv/bin/python" -c 'import pyspark, py4j' ||
    { echo "error: pyspark from $spark_home/python does not import" >&2; exit 1; }
fi

if ((prune)); then
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  for pkg in pandas numpy matplotlib; do
    [[ -d "$site/$pkg" ]] && find "$site/$pkg" -depth -type d -name tests -exec rm -rf {} +
  done
  rm -rf "$site"/pip "$site"/pip-*.dist-info "$site"/setuptools "$site"/setuptools-*.dist-info \
    "$site"/pkg_resources "$site"/_distutils_hack "$site"/distutils-precedence.pth "$venv"/bin/pip*
fi

# The MLflow Java client runs exactly this for every artifact: the build fails if it cannot.
GIT_PYTHON_REFRESH=quiet "$venv/bin/python" -m mlflow.store.artifact.cli --help >/dev/null ||
  { echo "error: '$venv/bin/python -m mlflow.store.artifact.cli --help' fails" >&2; exit 1; }
echo "install-venv: $("$venv/bin/python" -c 'import mlflow, sys; print("mlflow", mlflow.__version__, "python", sys.version.split()[0])')" >&2
