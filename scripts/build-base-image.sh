#!/usr/bin/env bash
# Build the images that no registry has to provide (OFFLINE=1; air-gapped sites, this project's CI):
#   1. IMAGE_PREFIX/debian-rootfs:DEBIAN_SUITE  debootstrap minbase from the mirror apt is set up
#      with (DEBIAN_MIRROR=URL to choose), imported with `docker import`
#   2. IMAGE_PREFIX/spark-base:SPARK_VERSION   + Java 17, Python 3 and the Spark distribution that
#      the pyspark package in .venv carries, at /opt/spark, user spark (STACK_UID)
#   3. IMAGE_PREFIX/mlflow-server:MLFLOW_VERSION  full mlflow on that base (constraints.txt)
# Cached: each step is skipped when its image exists and its inputs did not change; NO_CACHE=1
# rebuilds all. EXTRA_CA_CERTS=DIR: CA certificates pip must trust inside the build.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/docker/lib.sh"

require_engine
"$ROOT/scripts/setup.sh"
BUILD_DIR="${DOCKER_BUILD_DIR:-$ROOT/work/docker-build}"

# The Debian mirror apt already uses here (deb822 or one-line sources), so no other host is needed.
debian_mirror() {
  local uri
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  uri="$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && $0 ~ /(^|[ \t])'"$DEBIAN_SUITE"'([ \t]|$)/ { print u; exit }' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [[ -n "$uri" ]] ||
    uri="$(awk '$1 == "deb" && $3 == "'"$DEBIAN_SUITE"'" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

debian_security_mirror() {
  local uri
  uri="$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && /'"$DEBIAN_SUITE"'-security/ { print u; exit }' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  echo "${DEBIAN_SECURITY_MIRROR:-${uri:-http://deb.debian.org/debian-security}}"
}

build_rootfs() {
  if [[ "${NO_CACHE:-0}" != 1 ]] && image_exists "$OFFLINE_ROOTFS_IMAGE"; then
    note "$OFFLINE_ROOTFS_IMAGE exists; skipping debootstrap (NO_CACHE=1 to redo it)"
    return 0
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    ((EUID == 0)) || die "debootstrap is not installed; install it (Debian: apt-get install debootstrap)" 2
    step "Installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  ((EUID == 0)) || die "debootstrap needs root; run as root or build the base image elsewhere" 2
  local mirror security dir start=$SECONDS
  mirror="$(debian_mirror)"
  security="$(debian_security_mirror)"
  dir="$BUILD_DIR/rootfs"
  rm -rf "$dir"
  mkdir -p "$dir"
  step "debootstrap --variant=minbase $DEBIAN_SUITE from $mirror"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$dir" "$mirror" >"$BUILD_DIR/debootstrap.log" 2>&1 || {
    tail -n 15 "$BUILD_DIR/debootstrap.log" >&2
    die "debootstrap failed (log: ${BUILD_DIR#"$ROOT"/}/debootstrap.log)"
  }
  cat >"$dir/etc/apt/sources.list" <<SOURCES
deb $mirror $DEBIAN_SUITE main
deb $mirror $DEBIAN_SUITE-updates main
deb $security $DEBIAN_SUITE-security main
SOURCES
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" --numeric-owner -c . |
    docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$OFFLINE_ROOTFS_IMAGE" >/dev/null
  rm -rf "$dir"
  note "imported $OFFLINE_ROOTFS_IMAGE in $((SECONDS - start)) s ($(image_size "$OFFLINE_ROOTFS_IMAGE"))"
}

pyspark_dir() {
  "$PYTHON_BIN" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

# stage_spark DIR: lay out SPARK_HOME as a Spark distribution from the pip package: bin, jars, ...,
# python/pyspark, and the two zips spark-submit puts on PYTHONPATH (the pip package lacks them, and
# Spark hardcodes the py4j file name).
stage_spark() {
  local dest="$1" src py4j_version entry
  src="$(pyspark_dir)"
  py4j_version="$("$PYTHON_BIN" -c 'from importlib.metadata import version; print(version("py4j"))')"
  rm -rf "$dest"
  mkdir -p "$dest/python/pyspark" "$dest/python/lib" "$dest/conf"
  for entry in "$src"/*; do
    case "$(basename "$entry")" in
      bin | sbin | jars | data | licenses | examples)
        cp -al "$entry" "$dest/" 2>/dev/null || cp -a "$entry" "$dest/"
        ;;
      python | __pycache__) ;;
      *) cp -a "$entry" "$dest/python/pyspark/" ;;
    esac
  done
  find "$dest/python" -name __pycache__ -prune -exec rm -rf {} +
  "$PYTHON_BIN" - "$dest/python" "$py4j_version" <<'PY'
import sys, zipfile
from pathlib import Path

import py4j

python_dir, py4j_version = Path(sys.argv[1]), sys.argv[2]


def write_zip(target: Path, root: Path, package: str) -> None:
    # Fixed timestamps: the same files give the same zip, so the image layer stays cached.
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = zipfile.ZipInfo(str(path.relative_to(root)), (1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)


write_zip(python_dir / "lib" / "pyspark.zip", python_dir, "pyspark")
py4j_root = Path(py4j.__file__).resolve().parent.parent
write_zip(python_dir / "lib" / f"py4j-{py4j_version}-src.zip", py4j_root, "py4j")
PY
}

# Inputs that decide the base image: when they match the image's label, the build is skipped.
base_fingerprint() {
  {
    cat "$ROOT/docker/Dockerfile.spark-base"
    docker image inspect --format '{{.Id}}' "$OFFLINE_ROOTFS_IMAGE"
    "$PYTHON_BIN" -c 'import pyspark, py4j; print(pyspark.__version__, py4j.__file__)'
    echo "$STACK_UID:$STACK_GID"
  } | sha256sum | cut -c1-16
}

build_base() {
  local want have stage="$BUILD_DIR/spark-base"
  want="$(base_fingerprint)"
  have="$(docker image inspect --format '{{index .Config.Labels "toolkit.inputs"}}' "$OFFLINE_BASE_IMAGE" 2>/dev/null || true)"
  if [[ "${NO_CACHE:-0}" != 1 && "$have" == "$want" ]]; then
    note "$OFFLINE_BASE_IMAGE is up to date; skipping its build"
    return 0
  fi
  step "Laying out Spark $SPARK_VERSION from $(pyspark_dir)"
  stage_spark "$stage/spark"
  cp "$ROOT/docker/Dockerfile.spark-base" "$stage/Dockerfile"
  docker_build "$OFFLINE_BASE_IMAGE" "$stage/Dockerfile" "$stage" \
    --build-arg "ROOTFS_IMAGE=$OFFLINE_ROOTFS_IMAGE" \
    --build-arg "STACK_UID=$STACK_UID" --build-arg "STACK_GID=$STACK_GID" \
    --label "toolkit.inputs=$want"
  rm -rf "$stage"
}

build_server() {
  stage_extra_ca
  docker_build "$OFFLINE_SERVER_IMAGE" "$ROOT/docker/Dockerfile.mlflow-server" "$ROOT" \
    --build-arg "BASE_IMAGE=$OFFLINE_BASE_IMAGE" --build-arg "MLFLOW_VERSION=$MLFLOW_VERSION" \
    --build-arg "STACK_UID=$STACK_UID" --build-arg "STACK_GID=$STACK_GID"
  stage_extra_ca_clean
}

hold_build_lock
trap stage_extra_ca_clean EXIT
mkdir -p "$BUILD_DIR"
build_rootfs
build_base
build_server
