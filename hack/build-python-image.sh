#!/usr/bin/env bash
# Builds the Python base image the project's Dockerfile starts FROM (build
# arg PYTHON_IMAGE) on machines with no container registry: Debian
# $PYTHON_DEBIAN_SUITE's python3 ($PYTHON_VERSION) with venv and CA certificates, from
# debootstrap, imported as $PYTHON_BASE_IMAGE. Where a registry answers,
# pulls $PUBLISHED_PYTHON_IMAGE instead. Prints the image to use on stdout.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(python3 python3-venv ca-certificates)
KEY="$(vi::key::of "${PYTHON_DEBIAN_SUITE}" "${PYTHON_VERSION}" "${PACKAGES[*]}" "${BASH_SOURCE[0]}")"

python::build() {
  local rootfs="${VI_WORK}/python-rootfs"
  vi::rootfs::debootstrap "${rootfs}" minbase "$(IFS=,; echo "${PACKAGES[*]}")" "${PYTHON_DEBIAN_SUITE}"
  rm -rf "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/*
  vi::rootfs::import "${rootfs}" "${PYTHON_BASE_IMAGE}" \
    "LABEL ${VI_KEY_LABEL}=${KEY}" \
    'ENV LANG=C.UTF-8' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'CMD ["python3"]'
  rm -rf "${rootfs}"
  local version
  version="$(docker run --rm "${PYTHON_BASE_IMAGE}" python3 -c 'import ssl, venv, sys; print("%d.%d" % sys.version_info[:2])')"
  [[ "${version}" == "${PYTHON_VERSION}" ]] \
    || vi::die "Debian ${PYTHON_DEBIAN_SUITE}'s python3 is ${version}, not ${PYTHON_VERSION} (PYTHON_VERSION)"
}

main() {
  vi::airgap::resolve
  if [[ "${VIDEO_INGEST_AIRGAP}" == 0 ]]; then
    vi::image::exists "${PUBLISHED_PYTHON_IMAGE}" || docker pull "${PUBLISHED_PYTHON_IMAGE}" >&2
    echo "${PUBLISHED_PYTHON_IMAGE}"
    return 0
  fi
  if vi::image::restore python-base "${KEY}" "${PYTHON_BASE_IMAGE}"; then
    vi::log "${PYTHON_BASE_IMAGE} is current"
  else
    vi::log "building ${PYTHON_BASE_IMAGE}"
    python::build
    vi::image::save python-base "${KEY}" "${PYTHON_BASE_IMAGE}"
  fi
  echo "${PYTHON_BASE_IMAGE}"
}

main "$@"
