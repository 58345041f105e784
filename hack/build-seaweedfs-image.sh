#!/usr/bin/env bash
# Provides $SEAWEEDFS_IMAGE, the S3-compatible object store of the e2e tier
# (tests/e2e/object-store.yaml), and loads it into the kind cluster when that
# runs. Prints the image on stdout.
#
# With no container registry (VIDEO_INGEST_AIRGAP=1): SeaweedFS's `weed`
# built from the Go module proxy (a wrapper module, since its go.mod has a
# replace directive; cached as $VIDEO_INGEST_CACHE/bin/weed-<version>), alone in
# an image from scratch (it is static), as UID 1000: it needs no other image, so
# .ci/run builds it in the background beside the fast test tiers. Where a
# registry answers it is $PUBLISHED_SEAWEEDFS_IMAGE, re-tagged.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/seaweedfs/seaweedfs
KEY="$(vi::key::of "${SEAWEEDFS_MODULE_VERSION}" "${BASH_SOURCE[0]}" "${VI_HACK}/images/seaweedfs/Dockerfile")"

seaweedfs::binary() {
  local cached="${VI_BIN_CACHE}/weed-${SEAWEEDFS_MODULE_VERSION}" out
  if [[ ! -x "${cached}" ]]; then
    vi::log "building weed ${SEAWEEDFS_MODULE_VERSION} (several minutes)"
    out="$(mktemp -d "${VI_WORK}/weed.XXXXXX")"
    vi::go::build_wrapped "${out}" "${MODULE}" "${SEAWEEDFS_MODULE_VERSION}" "" "" "${MODULE}/weed"
    mkdir -p "${VI_BIN_CACHE}"
    install -m 0755 "${out}/weed" "${cached}"
    rm -rf "${out}"
  fi
  echo "${cached}"
}

seaweedfs::build() {
  local context
  context="$(mktemp -d "${VI_WORK}/seaweedfs-image.XXXXXX")"
  cp "$(seaweedfs::binary)" "${context}/weed"
  cp "${VI_HACK}/images/seaweedfs/Dockerfile" "${context}/Dockerfile"
  vi::image::build --label "${VI_KEY_LABEL}=${KEY}" -t "${SEAWEEDFS_IMAGE}" "${context}"
  rm -rf "${context}"
}

# A real start as the e2e runs it (non-root, read-only root, a writable /data):
# the S3 API answers on 8333, asked from the host.
seaweedfs::verify() (
  local name="vi-seaweedfs-verify-$$" tries=0 address
  # shellcheck disable=SC2064 # expand now
  trap "docker rm -f ${name} >/dev/null 2>&1 || true" EXIT
  docker run -d --name "${name}" --user 1000:1000 --read-only --tmpfs /data:uid=1000,gid=1000 \
    --tmpfs /tmp:uid=1000,gid=1000 --cap-drop ALL "${SEAWEEDFS_IMAGE}" \
    server -dir=/data -s3 -s3.port=8333 -master.volumeSizeLimitMB=64 -volume.max=8 >/dev/null
  address="$(docker inspect -f '{{ .NetworkSettings.IPAddress }}' "${name}")"
  until curl -sf -o /dev/null "http://${address}:8333/status"; do
    ((++tries < 90)) || { docker logs "${name}" >&2; vi::die "${SEAWEEDFS_IMAGE}: S3 API did not answer"; }
    sleep 1
  done
  vi::log "${SEAWEEDFS_IMAGE}: S3 API answers ($(docker exec "${name}" weed version 2>/dev/null | head -n 1))"
)

vi::service_image::provide seaweedfs "${KEY}" "${SEAWEEDFS_IMAGE}" "${PUBLISHED_SEAWEEDFS_IMAGE}"
