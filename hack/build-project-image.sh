#!/usr/bin/env bash
# Builds the project's image from the repository's Dockerfile on top of the
# Python base image for this machine (hack/build-python-image.sh), tags it
# $PROJECT_IMAGE (never :latest, which would make the kubelet pull) and, when
# the kind cluster runs, loads it into the nodes.
#
# Air-gapped (VIDEO_INGEST_AIRGAP=1) the build cannot reach PyPI, so the wheels
# are built first for the image's interpreter (hack/build-wheelhouse.sh) and
# installed with --no-index; elsewhere pip inside the build uses PyPI.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  local python_image
  [[ -f "${VI_ROOT}/Dockerfile" ]] || vi::die "no Dockerfile at ${VI_ROOT}; the project image cannot be built yet"
  "${VI_HACK}/ensure-docker.sh"
  vi::airgap::resolve
  python_image="$("${VI_HACK}/build-python-image.sh")"
  local pip_args=""
  if [[ "${VIDEO_INGEST_AIRGAP}" == 1 ]]; then
    "${VI_HACK}/build-wheelhouse.sh" "${python_image}"
    pip_args="--no-index --find-links=/wheels"
  fi
  vi::log "building ${PROJECT_IMAGE} FROM ${python_image}"
  docker build --build-arg "PYTHON_IMAGE=${python_image}" --build-arg "PIP_INSTALL_ARGS=${pip_args}" \
    -t "${PROJECT_IMAGE}" "${VI_ROOT}"
  vi::kind::load "${PROJECT_IMAGE}"
}

main "$@"
