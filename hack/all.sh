#!/usr/bin/env bash
# The whole toolchain, cold or warm, each stage timed: Docker, the tools, the
# images (built here when no registry answers), the Python base image and the
# cluster. Every stage skips what its cache already holds.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vi::time "ensure-docker" "${VI_HACK}/ensure-docker.sh"
vi::airgap::resolve
vi::time "build-tools" "${VI_HACK}/build-tools.sh"
if [[ "${VIDEO_INGEST_AIRGAP}" == 1 ]]; then
  vi::time "build-kube-binaries" "${VI_HACK}/build-kube-binaries.sh"
  vi::time "build-base-image" "${VI_HACK}/build-base-image.sh"
  vi::time "build-component-images" "${VI_HACK}/build-component-images.sh"
  vi::time "build-node-image" "${VI_HACK}/build-node-image.sh"
fi
vi::time "build-python-image" "${VI_HACK}/build-python-image.sh" >/dev/null
vi::time "cluster-up" "${VI_HACK}/cluster-up.sh"
