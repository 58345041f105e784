#!/usr/bin/env bash
# Builds the wheels the project image needs, for the image's own interpreter,
# into wheelhouse/ (the Dockerfile then installs with --no-index). Used where a
# docker build cannot reach PyPI itself. pip runs inside PYTHON_IMAGE (host
# network, the host's CA bundle), so environment markers match the image's
# Python, not the host's. Cached by pyproject.toml and the image's ID.
#   hack/build-wheelhouse.sh PYTHON_IMAGE
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  local python_image="${1:?usage: build-wheelhouse.sh PYTHON_IMAGE}"
  local image_id key cache out="${VI_ROOT}/wheelhouse"
  local ca_bundle="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
  image_id="$(docker image inspect -f '{{.Id}}' "${python_image}")"
  key="$(vi::key::of "${VI_ROOT}/pyproject.toml" "${image_id}" "${BASH_SOURCE[0]}")"
  cache="${VIDEO_INGEST_CACHE}/wheelhouse/${key}"
  if [[ ! -f "${cache}/.complete" ]]; then
    vi::log "building wheels for ${python_image} into ${cache}"
    rm -rf "${cache}" && mkdir -p "${cache}"
    docker run --rm --network host \
      -v "${VI_ROOT}/pyproject.toml:/src/pyproject.toml:ro" \
      -v "${VI_ROOT}/README.md:/src/README.md:ro" \
      -v "${VI_ROOT}/src:/src/src:ro" \
      -v "${ca_bundle}:/etc/ssl/certs/host-ca.crt:ro" \
      -v "${cache}:/out" \
      -e PIP_CERT=/etc/ssl/certs/host-ca.crt -e PIP_DISABLE_PIP_VERSION_CHECK=1 \
      "${python_image}" sh -ec '
        cp -r /src /tmp/src
        python3 -m venv /tmp/venv
        /tmp/venv/bin/pip install --quiet --upgrade pip
        /tmp/venv/bin/pip download --quiet --dest /out pip setuptools wheel
        /tmp/venv/bin/pip wheel --quiet --wheel-dir /out "/tmp/src[s3,http,redis]"
        rm -f /out/video_ingest-*.whl
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
