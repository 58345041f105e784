#!/usr/bin/env bash
# Shared functions for the hack/ scripts. Source it, don't run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Functions are named vi::<area>::<verb> after Kubernetes' kube::* helpers.

VI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VI_HACK="${VI_ROOT}/hack"
# shellcheck source=hack/versions.env
source "${VI_HACK}/versions.env"

export VIDEO_INGEST_CACHE TOOLS_BIN_DIR
# Docker 20.10 from Debian has no BuildKit (no buildx): use the classic builder.
export DOCKER_BUILDKIT=0
case ":${PATH}:" in
  *":${TOOLS_BIN_DIR}:"*) ;;
  *) export PATH="${TOOLS_BIN_DIR}:${PATH}" ;;
esac

VI_BIN_CACHE="${VIDEO_INGEST_CACHE}/bin"
VI_IMAGE_CACHE="${VIDEO_INGEST_CACHE}/images"
VI_STAMPS="${VIDEO_INGEST_CACHE}/stamps"
VI_WORK="${VIDEO_INGEST_CACHE}/work"

# --- logging -------------------------------------------------------------

vi::log() {
  printf '+++ [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

vi::die() {
  printf '!!! [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
  exit 1
}

# vi::time LABEL CMD...: runs CMD and logs how long it took, so the cold and
# warm timings of every stage can be read off a log.
vi::time() {
  local label="$1" start rc=0
  shift
  start="$(date +%s)"
  "$@" || rc=$?
  vi::log "${label}: $(($(date +%s) - start))s (exit ${rc})"
  return "${rc}"
}

# --- stamps: a step writes a key naming its inputs; the same key next time
# means its cached output is current and the step is skipped. ----------------

# vi::key::of WORD... : a short hash of the words and of the content of every
# word that names a file (scripts, templates), so editing an input rebuilds.
vi::key::of() {
  local word
  for word in "$@"; do
    if [[ -f "${word}" ]]; then
      printf '%s:%s\n' "${word##*/}" "$(sha256sum <"${word}" | cut -c1-16)"
    else
      printf '%s\n' "${word}"
    fi
  done | sha256sum | cut -c1-16
}

vi::stamp::current() {
  local name="$1" key="$2"
  [[ -f "${VI_STAMPS}/${name}" && "$(cat "${VI_STAMPS}/${name}")" == "${key}" ]]
}

vi::stamp::write() {
  mkdir -p "${VI_STAMPS}"
  printf '%s\n' "$2" >"${VI_STAMPS}/$1"
}

# --- host packages ---------------------------------------------------------

VI_APT_UPDATED=""

# vi::apt::ensure PACKAGE...: installs the Debian packages that are missing.
vi::apt::ensure() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep "install ok installed" >/dev/null \
      || missing+=("${pkg}")
  done
  ((${#missing[@]} == 0)) && return 0
  vi::log "installing Debian packages: ${missing[*]}"
  # Builds may run side by side (.ci/run): wait for another's apt, do not fail on its lock.
  if [[ -z "${VI_APT_UPDATED}" ]]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    VI_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# --- Go builds -------------------------------------------------------------

# vi::go ARGS...: the go command at low priority (the machine has 2 cores
# shared with test runs), static where possible, without the build path.
# GOGC=400: the compiler and linker collect garbage a quarter as often. From an
# empty build cache on 2 cores (2026-12-06), the Kubernetes binaries took 284 s
# against 340 s at Go's default of 100 (helm: 82 s against 98 and 101 s), for a
# largest process of 2.0 GB against 1.9 GB. An explicit GOGC is kept.
vi::go() {
  CGO_ENABLED="${CGO_ENABLED:-0}" GOGC="${GOGC:-400}" nice -n 10 go "$@"
}

# vi::go::install_module BINARY_PATH MODULE_PACKAGE VERSION [LDFLAGS]: builds
# one command of a published module into BINARY_PATH with `go install`
# semantics (the module's own go.mod and go.sum decide its dependencies).
vi::go::install_module() {
  local out="$1" pkg="$2" version="$3" ldflags="${4:-}" dir
  dir="$(mktemp -d "${VI_WORK}/gobin.XXXXXX")"
  vi::go::install_many "${dir}" "${version}" "${ldflags}" "${pkg}"
  mkdir -p "$(dirname "${out}")"
  mv "${dir}/${pkg##*/}" "${out}"
  rm -rf "${dir}"
}

# vi::go::install_many DIR VERSION LDFLAGS PACKAGE...: `go install` of several
# commands of one module version at once (they share compilation) into DIR.
# GOFLAGS_TAGS, if set, adds -tags.
vi::go::install_many() {
  local dir="$1" version="$2" ldflags="$3" pkg args=()
  shift 3
  for pkg in "$@"; do
    args+=("${pkg}@${version}")
  done
  mkdir -p "${dir}"
  GOBIN="${dir}" vi::go install -trimpath ${GOFLAGS_TAGS:+-tags "${GOFLAGS_TAGS}"} \
    -ldflags "-s -w ${ldflags}" "${args[@]}"
}

# vi::go::build_wrapped OUT_DIR MODULE VERSION LDFLAGS EXTRA PACKAGE...:
# builds commands of a published module that `go install` refuses because its
# go.mod has replace or exclude directives (Kubernetes, etcd, containerd).
# A wrapper module requires MODULE@VERSION, repeats the module's exclude
# directives and its replaces that do not point into its own tree, adds the
# go.mod lines EXTRA, and builds every PACKAGE in one `go build` (shared
# compilation) into OUT_DIR. GOFLAGS_TAGS, if set, adds -tags.
vi::go::build_wrapped() {
  local out="$1" module="$2" version="$3" ldflags="$4" extra="$5" dir mod_file pkg
  shift 5
  dir="${VI_WORK}/wrap-${module//\//_}-${version}"
  mod_file="$(vi::go::module_dir "${module}" "${version}")/go.mod"
  [[ -f "${mod_file}" ]] || vi::die "${module}@${version} is not available from the Go module proxy"
  rm -rf "${dir}"
  mkdir -p "${dir}"
  {
    echo "module video-ingest.local/wrapper"
    echo
    grep -m1 '^go ' "${mod_file}"
    echo
    echo "require ${module} ${version}"
    echo
    awk '
      /^exclude \($/ { block = 1 }
      block { print; if ($0 ~ /^\)$/) block = 0; next }
      /^exclude / { print }
    ' "${mod_file}"
    awk '
      function target(   i) { for (i = 1; i <= NF; i++) if ($i == "=>") return $(i + 1) }
      /^replace \($/ { block = 1; next }
      block && /^\)$/ { block = 0; next }
      block { if (target() !~ /^[.\/]/) print "replace " $0; next }
      /^replace / { if (target() !~ /^[.\/]/) print }
    ' "${mod_file}"
    printf '%s\n' "${extra}"
  } >"${dir}/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for pkg in "$@"; do
      printf '\t_ "%s"\n' "${pkg}"
    done
    printf ')\n'
  } >"${dir}/tools.go"
  (cd "${dir}" && nice -n 10 go mod tidy) || vi::die "resolving the modules of ${module}@${version} failed"
  mkdir -p "${out}"
  (cd "${dir}" && vi::go build -trimpath ${GOFLAGS_TAGS:+-tags "${GOFLAGS_TAGS}"} \
    -ldflags "-s -w ${ldflags}" -o "${out}/" "$@")
}

# vi::go::module_dir MODULE VERSION: downloads a module (zip, from the
# proxy) into the module cache and prints its read-only directory.
vi::go::module_dir() {
  (cd "${VI_WORK}" && GOFLAGS=-mod=mod go mod download -json "$1@$2") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# vi::tool::link NAME VERSION FILE: keeps FILE as $CACHE/bin/NAME-VERSION and
# points $TOOLS_BIN_DIR/NAME at it.
vi::tool::link() {
  local name="$1" version="$2" file="$3" cached
  cached="${VI_BIN_CACHE}/${name}-${version}"
  mkdir -p "${VI_BIN_CACHE}" "${TOOLS_BIN_DIR}"
  if [[ "${file}" != "${cached}" ]]; then
    install -m 0755 "${file}" "${cached}"
  fi
  ln -sfn "${cached}" "${TOOLS_BIN_DIR}/${name}"
}

# --- Docker images ---------------------------------------------------------
# Every image these scripts build carries a label with the key of its inputs;
# an image whose label matches is current and is not built again. Finished
# images are also saved as tars under $VIDEO_INGEST_CACHE/images, so a Docker
# that lost them (pruned, new data dir) gets them back without a rebuild.

VI_KEY_LABEL=io.video-ingest.inputs

vi::image::exists() {
  docker image inspect "$1" >/dev/null 2>&1
}

vi::image::key() {
  docker image inspect -f "{{ index .Config.Labels \"${VI_KEY_LABEL}\" }}" "$1" 2>/dev/null || true
}

# vi::image::current KEY IMAGE...: every IMAGE exists and was built from KEY.
vi::image::current() {
  local key="$1" image
  shift
  for image in "$@"; do
    [[ "$(vi::image::key "${image}")" == "${key}" ]] || return 1
  done
}

# vi::image::tar NAME KEY: the cache file holding the images NAME built from KEY.
vi::image::tar() {
  printf '%s/%s-%s.tar\n' "${VI_IMAGE_CACHE}" "$1" "$2"
}

# vi::image::restore NAME KEY IMAGE...: succeeds when every IMAGE is current,
# loading the cache's tar NAME-KEY first if need be.
vi::image::restore() {
  local name="$1" key="$2" tar
  shift 2
  vi::image::current "${key}" "$@" && return 0
  tar="$(vi::image::tar "${name}" "${key}")"
  [[ -f "${tar}" ]] || return 1
  vi::log "loading $* from ${tar}"
  docker load -i "${tar}" >/dev/null
  vi::image::current "${key}" "$@"
}

# vi::image::save NAME KEY IMAGE...: saves the images to the cache's tar
# NAME-KEY (one archive, layers shared) and removes older tars of NAME.
vi::image::save() {
  local name="$1" key="$2" tar
  shift 2
  tar="$(vi::image::tar "${name}" "${key}")"
  mkdir -p "${VI_IMAGE_CACHE}"
  rm -f "${VI_IMAGE_CACHE}/${name}"-????????????????.tar
  docker save -o "${tar}.partial" "$@"
  mv "${tar}.partial" "${tar}"
}

# vi::kind::load IMAGE: loads IMAGE into the kind cluster, when that exists.
vi::kind::load() {
  if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -x "${CLUSTER_NAME}" >/dev/null; then
    # A stopped cluster (its node container exited) is listed too, and loading
    # into it fails; skip it (the e2e fixtures load the images they run).
    if [[ "$(docker inspect -f '{{.State.Running}}' "${CLUSTER_NAME}-control-plane" 2>/dev/null)" != true ]]; then
      vi::log "kind cluster ${CLUSTER_NAME} is not running: $1 not loaded"
      return 0
    fi
    kind load docker-image "$1" --name "${CLUSTER_NAME}" >&2
  fi
}

# vi::service_image::provide NAME KEY IMAGE PUBLISHED: a service image the
# chart's kind values name. Where a registry answers it is PUBLISHED,
# re-tagged; air-gapped, the cached stand-in of KEY, or one built now with the
# caller's NAME::build and checked with NAME::verify. Loaded into kind; the
# image is printed on stdout.
vi::service_image::provide() {
  local name="$1" key="$2" image="$3" published="$4"
  "${VI_HACK}/ensure-docker.sh" >&2
  vi::airgap::resolve
  if [[ "${VIDEO_INGEST_AIRGAP}" == 0 ]]; then
    vi::image::exists "${published}" || docker pull "${published}" >&2
    docker tag "${published}" "${image}"
  elif vi::image::restore "${name}" "${key}" "${image}"; then
    vi::log "${image} is current"
  else
    vi::log "building ${image}"
    "${name}::build"
    "${name}::verify"
    vi::image::save "${name}" "${key}" "${image}"
  fi
  vi::kind::load "${image}"
  echo "${image}"
}

# vi::image::build ARGS...: a classic `docker build` (no BuildKit here),
# quiet unless it fails.
vi::image::build() {
  local log
  log="$(mktemp "${VI_WORK}/docker-build.XXXXXX")"
  if ! docker build "$@" >"${log}" 2>&1; then
    cat "${log}" >&2
    rm -f "${log}"
    vi::die "docker build $* failed"
  fi
  rm -f "${log}"
}

# vi::rootfs::debootstrap DIR VARIANT INCLUDE [SUITE]: a Debian root file
# system in DIR (Debian $DEBIAN_SUITE unless SUITE is given), from the
# configured mirror, with the package lists and apt caches removed (they only
# make images bigger).
vi::rootfs::debootstrap() {
  local dir="$1" variant="$2" include="$3" suite="${4:-${DEBIAN_SUITE}}"
  vi::apt::ensure debootstrap
  rm -rf "${dir}"
  mkdir -p "${dir}"
  vi::log "debootstrap ${suite} (${variant}) + ${include}"
  nice -n 10 debootstrap --variant="${variant}" --include="${include}" \
    "${suite}" "${dir}" "${DEBIAN_MIRROR}" >"${dir}.log" 2>&1 \
    || { tail -n 30 "${dir}.log" >&2; vi::die "debootstrap failed (log: ${dir}.log)"; }
  rm -rf "${dir}"/var/lib/apt/lists/* "${dir}"/var/cache/apt/*.bin \
    "${dir}"/var/cache/apt/archives/*.deb "${dir}"/var/log/*.log
}

# vi::rootfs::import DIR IMAGE [CHANGE...]: `docker import` of DIR as IMAGE,
# with Dockerfile instructions (ENV, CMD, ...) applied.
vi::rootfs::import() {
  local dir="$1" image="$2" change args=()
  shift 2
  for change in "$@"; do
    args+=(--change "${change}")
  done
  tar --numeric-owner -C "${dir}" -c . | docker import "${args[@]}" - "${image}" >/dev/null
}

# --- registry or air gap -----------------------------------------------------

# vi::airgap: prints 1 when images must be built here, 0 when the published
# images can be pulled. VIDEO_INGEST_AIRGAP=1|0 decides; auto tries to pull
# the published kind node image once (the answer is remembered in the
# environment for the scripts this one starts).
vi::airgap() {
  case "${VIDEO_INGEST_AIRGAP}" in
    0 | 1) echo "${VIDEO_INGEST_AIRGAP}" ;;
    auto)
      if vi::image::exists "${KIND_PUBLISHED_NODE_IMAGE}" \
        || timeout 120 docker pull "${KIND_PUBLISHED_NODE_IMAGE}" >/dev/null 2>&1; then
        echo 0
      else
        echo 1
      fi
      ;;
    *) vi::die "VIDEO_INGEST_AIRGAP must be auto, 1 or 0 (got ${VIDEO_INGEST_AIRGAP})" ;;
  esac
}

# vi::airgap::resolve: decides once and exports the answer, so every script
# started after this one agrees without asking the registry again.
vi::airgap::resolve() {
  if [[ "${VIDEO_INGEST_AIRGAP}" == auto ]]; then
    VIDEO_INGEST_AIRGAP="$(vi::airgap)"
    vi::log "VIDEO_INGEST_AIRGAP=auto resolved to ${VIDEO_INGEST_AIRGAP}"
  fi
  export VIDEO_INGEST_AIRGAP
}

# vi::node_image: the node image `kind create cluster` uses.
vi::node_image() {
  if [[ "$(vi::airgap)" == 1 ]]; then
    echo "${NODE_IMAGE}"
  else
    echo "${KIND_PUBLISHED_NODE_IMAGE}"
  fi
}

# vi::python_image: the base image the project's Dockerfile builds FROM.
vi::python_image() {
  if [[ "$(vi::airgap)" == 1 ]]; then
    echo "${PYTHON_BASE_IMAGE}"
  else
    echo "${PUBLISHED_PYTHON_IMAGE}"
  fi
}

mkdir -p "${VI_WORK}"
