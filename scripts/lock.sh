#!/usr/bin/env bash
# Regenerate constraints.txt: freeze requirements.txt + versions.env on this Python, then pin the rest of LOCK_PYTHONS.
#
# 1. This Python (python3, or PYTHON=; it must be one of LOCK_PYTHONS) leads: mlflow, pyspark,
#    sqlalchemy<2.1 and requirements.txt installed in a scratch venv and frozen.
#    KEEP_PINS=1 skips the fresh resolution and keeps the pins constraints.txt has for this Python
#    (no upgrade; only the other Pythons' lines are made again).
# 2. Each other Python X, with no interpreter of X: `pip install --dry-run --python-version X
#    --only-binary=:all: --report`, the same set constrained by the leading pins (KEEP_PINS=1: by
#    the pins constraints.txt has for X), relaxed only where a pin has no wheel for X (numpy 2.4
#    needs Python 3.11: there pip picks the newest numpy that fits). pip reads dependency markers
#    for the Python that runs it, not X: tools/lockpins.py reads the report with the markers of X
#    and asks pip again for what X needs that it skipped. pyspark is left out there (an sdist,
#    and pip resolves another Python from wheels only); its one dependency, py4j, is pure Python.
# 3. tools/lockpins.py merge: one line per package, or one per distinct pin with a
#    `python_version == "X"` marker, so each Python of LOCK_PYTHONS has exactly one pin.
# constraints.txt is replaced only when every Python resolved.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${PYTHON:-python3}"
PASSES=5 # rounds of "pip skipped what X needs, ask again" before giving up
# Not in the lock: their versions come from versions.env.
FROM_VERSIONS_ENV='^(mlflow|mlflow[-_.]skinny|mlflow[-_.]tracing|pyspark)=='

IFS=, read -ra pythons <<<"${LOCK_PYTHONS:?LOCK_PYTHONS is not set (versions.env)}"
base="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" ||
  die "no working '$PYTHON' found; set PYTHON=/path/to/python3" 2
[[ ",${LOCK_PYTHONS}," == *",$base,"* ]] ||
  die "$PYTHON is Python $base, not one of LOCK_PYTHONS ($LOCK_PYTHONS); set PYTHON=/path/to/python3.X" 2

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
venv="$scratch/venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
lockpins() { "$venv/bin/python" "$ROOT/tools/lockpins.py" "$@"; }

# What `make setup` installs, pyspark aside (see step 2).
roots="$scratch/roots.txt"
printf '%s\n' "mlflow==$MLFLOW_VERSION" "sqlalchemy<2.1" >"$roots"
grep -vE '^[[:space:]]*(#|$)' "$ROOT/requirements.txt" >>"$roots"

"$PYTHON" -m venv "$venv"
if [[ "${KEEP_PINS:-0}" == 1 ]]; then
  step "Keeping the Python $base pins of constraints.txt (KEEP_PINS=1)"
  # pip evaluates the markers of constraints.txt for this Python: the right ones here.
  "${pip[@]}" install --quiet -c "$ROOT/constraints.txt" click packaging
  lockpins render "$base" "$ROOT/constraints.txt" >"$scratch/pins-$base.txt"
else
  step "Resolving on Python $base in a scratch environment ($scratch)"
  # sqlalchemy<2.1: MLflow 3.4.0's server dies at start with SQLAlchemy 2.1 (stack-facts).
  "${pip[@]}" install --quiet "pyspark==$SPARK_VERSION" -r "$roots"
  "${pip[@]}" freeze --exclude-editable | grep -viE "$FROM_VERSIONS_ENV" >"$scratch/pins-$base.txt"
fi

# pip_for X LOG ARGS...: a dry run of pip for Python X, its output in LOG. --target: pip before 24
# refuses --python-version without it (a dry run writes nothing there).
pip_for() {
  local python="$1" log="$2"
  shift 2
  "${pip[@]}" install --dry-run --ignore-installed --target "$scratch/target" \
    --python-version "$python" --only-binary=:all: "$@" >"$log" 2>&1
}

# wheel_pins X PINS OUT: the pins of PINS that have a wheel for Python X, into OUT. pip names the
# first pin it cannot meet and stops: ask in chunks of 10, and again without each pin it names.
wheel_pins() {
  local python="$1" out="$3" log="$scratch/wheels-$1.log" chunk spec
  : >"$out"
  split -l 10 "$2" "$scratch/chunk-$python-"
  for chunk in "$scratch/chunk-$python-"*; do
    while [[ -s "$chunk" ]] && ! pip_for "$python" "$log" --no-deps -r "$chunk"; do
      spec="$(sed -n 's/^ERROR: No matching distribution found for \([^ ]*\).*/\1/p' "$log" | head -n1)"
      if [[ -z "$spec" ]] || ! grep -qixF -- "$spec" "$chunk"; then
        tail -n 20 "$log" >&2
        die "Python $python: pip cannot check the pins (see above)"
      fi
      grep -vixF -- "$spec" "$chunk" >"$chunk.new" || true
      mv "$chunk.new" "$chunk"
      note "Python $python: $spec does not install there (no wheel, or Requires-Python); pip picks that version"
    done
    cat "$chunk" >>"$out"
  done
}

# resolve X: Python X's pins into pins-X.txt. First with every preferred pin; when that fails,
# again without the pins that have no wheel for X; then again with what pip skipped for X.
resolve() {
  local python="$1" preferred="$scratch/preferred-$1.txt" constraints="$scratch/constraints-$1.txt"
  local report="$scratch/report-$1.json" log="$scratch/resolve-$1.log"
  local asked="$scratch/roots-$1.txt" missing="$scratch/missing-$1.txt" relaxed=0 pass=0
  if [[ "${KEEP_PINS:-0}" == 1 ]]; then
    lockpins render "$python" "$ROOT/constraints.txt" >"$preferred"
  else
    cp "$scratch/pins-$base.txt" "$preferred"
  fi
  cp "$preferred" "$constraints"
  cp "$roots" "$asked"
  while :; do
    if ! pip_for "$python" "$log" --report "$report" -r "$asked" -c "$constraints"; then
      if ((relaxed)); then
        tail -n 20 "$log" >&2
        die "Python $python: the set does not resolve with the Python $base pins (see above); run a full 'make lock' (without KEEP_PINS) or relax the pin that conflicts"
      fi
      note "Python $python: not every pin fits it; finding those without a wheel for it"
      wheel_pins "$python" "$preferred" "$constraints"
      relaxed=1
      continue
    fi
    lockpins needed "$python" "$report" "$roots" --missing "$missing" |
      { grep -viE "$FROM_VERSIONS_ENV" || true; } >"$scratch/pins-$python.txt"
    [[ -s "$missing" ]] || return 0
    ((++pass <= PASSES)) || die "Python $python: still missing after $PASSES rounds: $(paste -sd' ' "$missing")"
    note "Python $python needs what pip skipped (it reads markers for Python $base): $(paste -sd' ' "$missing")"
    cat "$missing" >>"$asked"
  done
}

merge_args=(--base "$base")
for python in "${pythons[@]}"; do
  if [[ "$python" != "$base" ]]; then
    step "Resolving for Python $python (pip --python-version, wheels for $(uname -m))"
    resolve "$python"
  fi
  merge_args+=(--pins "$python" "$scratch/pins-$python.txt")
done

{
  echo "# Lock of every transitive Python package, generated by \`make lock\` (scripts/lock.sh)."
  echo "# mlflow*, pyspark: versions.env. sqlalchemy must stay <2.1 for MLflow 3.4.0 (stack-facts)."
  echo "# Pins for Python ${pythons[*]} (LOCK_PYTHONS). Python $base's lead; a package whose pin"
  echo "# differs has one line per pin, with a python_version marker naming its Pythons."
  lockpins merge "${merge_args[@]}"
} >"$scratch/constraints.txt"
cp "$scratch/constraints.txt" "$ROOT/constraints.txt"
step "Wrote constraints.txt ($(grep -vc '^#' "$ROOT/constraints.txt") lines, $(grep -c ' ; ' "$ROOT/constraints.txt") with a marker); run 'make setup' to apply"
