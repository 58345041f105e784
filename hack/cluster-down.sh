#!/usr/bin/env bash
# Deletes the kind cluster $CLUSTER_NAME (nothing else: the images and the
# caches stay, so the next hack/cluster-up.sh is quick).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -x "${CLUSTER_NAME}" >/dev/null; then
  kind delete cluster --name "${CLUSTER_NAME}"
else
  vi::log "no kind cluster named ${CLUSTER_NAME}"
fi
