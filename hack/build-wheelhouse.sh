#!/usr/bin/env bash
# Downloads the wheels the project image needs (requirements.lock, hashes
# checked, nothing resolved: the lock is complete), for the image's own
# interpreter, into wheelhouse/ (the Dockerfile then installs with --no-index).
# Used where a docker build cannot reach PyPI itself. pip runs inside
# PYTHON_IMAGE (host network, the host's CA bundle), so environment markers
# match the image's Python, not the host's. Cached by requirements.lock and the image's ID.
#   hack/build-wheelhouse.sh PYTHON_IMAGE
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  local python_image="${1:?usage: build-wheelhouse.sh PYTHON_IMAGE}"
  local image_id key cache out="${VI_ROOT}/wheelhouse"
  local ca_bundle="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
  image_id="$(docker image inspect -f '{{.Id}}' "${python_image}")"
  key="$(vi::key::of "${VI_ROOT}/requirements.lock" "${image_id}" "${BASH_SOURCE[0]}")"
  cache="${VIDEO_INGEST_CACHE}/wheelhouse/${key}"
  if [[ ! -f "${cache}/.complete" ]]; then
    vi::log "building wheels for ${python_image} into ${cache}"
    rm -rf "${cache}" && mkdir -p "${cache}"
    docker run --rm --network host \
      -v "${VI_ROOT}/requirements.lock:/src/requirements.lock:ro" \
      -v "${ca_bundle}:/etc/ssl/certs/host-ca.crt:ro" \
      -v "${cache}:/out" \
      -e PIP_CERT=/etc/ssl/certs/host-ca.crt -e PIP_DISABLE_PIP_VERSION_CHECK=1 \
      "${python_image}" sh -ec '
        python3 -m venv /tmp/venv
        /tmp/venv/bin/pip download --quiet --require-hashes --no-deps --only-binary=:all: --dest /out \
          -r /src/requirements.lock
        chown -R '"$(id -u):$(id -g)"' /out'
    touch "${cache}/.complete"
  else
    vi::log "wheelhouse for ${python_image} is current (${cache})"
  fi
  find "${out}" -maxdepth 1 -name '*.whl' -delete
  cp -l "${cache}"/*.whl "${out}/" 2>/dev/null || cp "${cache}"/*.whl "${out}/"
  vi::log "wheelhouse/: $(find "${out}" -maxdepth 1 -name '*.whl' | wc -l) wheels"
}

main "$@"
