#!/usr/bin/env bash
# Brings up the kind cluster $CLUSTER_NAME from kind-config.yaml and returns
# once it is usable: every node Ready, CoreDNS and the local-path provisioner
# rolled out, NetworkPolicies enforced. A healthy cluster already running from
# the same node image is reused as it is; one that is broken or from another
# node image is recreated. Builds (or pulls) whatever is missing first.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KIND_CONFIG="${KIND_CONFIG:-${VI_ROOT}/kind-config.yaml}"
WAIT_SECONDS="${CLUSTER_WAIT_SECONDS:-300}"
CONTEXT="kind-${CLUSTER_NAME}"
# Recorded on the nodes, so a cluster made from another kind config is
# recreated rather than reused.
CONFIG_ANNOTATION="video-ingest.dev/kind-config"
CONFIG_KEY="$(vi::key::of "${KIND_CONFIG}")"
NETWORK_POLICY_MANIFEST="${VI_HACK}/manifests/kube-router.yaml"

cluster::exists() {
  kind get clusters 2>/dev/null | grep -x "${CLUSTER_NAME}" >/dev/null
}

cluster::healthy() {
  kind export kubeconfig --name "${CLUSTER_NAME}" >/dev/null 2>&1 \
    && timeout 15 kubectl --context "${CONTEXT}" get --raw /readyz >/dev/null 2>&1
}

# The cluster runs the node image and the kind config we would create it
# with now.
cluster::current() {
  local want node
  want="$(docker image inspect -f '{{.Id}}' "$1")"
  for node in $(kind get nodes --name "${CLUSTER_NAME}"); do
    [[ "$(docker inspect -f '{{.Image}}' "${node}")" == "${want}" ]] || return 1
  done
  [[ "$(kubectl --context "${CONTEXT}" get nodes \
    -o "jsonpath={.items[*].metadata.annotations.${CONFIG_ANNOTATION//./\\.}}")" == *"${CONFIG_KEY}"* ]]
}

cluster::node_image() {
  local image
  image="$(vi::node_image)"
  if [[ "${VIDEO_INGEST_AIRGAP}" == 1 ]]; then
    "${VI_HACK}/build-node-image.sh" >&2
  elif ! vi::image::exists "${image}"; then
    docker pull "${image}" >&2
  fi
  echo "${image}"
}

cluster::wait_ready() {
  vi::log "waiting for nodes, CoreDNS and the storage provisioner"
  kubectl --context "${CONTEXT}" wait --for=condition=Ready nodes --all --timeout="${WAIT_SECONDS}s"
  kubectl --context "${CONTEXT}" -n kube-system rollout status deployment/coredns --timeout="${WAIT_SECONDS}s"
  kubectl --context "${CONTEXT}" -n local-path-storage rollout status deployment/local-path-provisioner \
    --timeout="${WAIT_SECONDS}s"
}

# Our node image's CNI, the kindnetd stand-in, enforces no NetworkPolicy:
# kube-router's firewall does, beside it (applied every time: idempotent).
# kind's published node image runs the real kindnetd, which enforces them itself.
cluster::network_policies() {
  local image manifest
  if [[ "${VIDEO_INGEST_AIRGAP}" != 1 ]]; then
    vi::log "kind's kindnetd enforces NetworkPolicies"
    return 0
  fi
  image="$("${VI_HACK}/build-network-policy-image.sh")"
  manifest="$(<"${NETWORK_POLICY_MANIFEST}")"
  vi::log "NetworkPolicy engine: ${image}"
  kubectl --context "${CONTEXT}" apply -f - <<<"${manifest//'${NETWORK_POLICY_IMAGE}'/${image}}" >/dev/null
  kubectl --context "${CONTEXT}" -n kube-system rollout status daemonset/kube-router --timeout="${WAIT_SECONDS}s"
}

main() {
  local image
  "${VI_HACK}/ensure-docker.sh"
  vi::airgap::resolve
  "${VI_HACK}/build-tools.sh"
  image="$(cluster::node_image)"

  if cluster::exists; then
    if cluster::healthy && cluster::current "${image}"; then
      vi::log "reusing the running cluster ${CLUSTER_NAME}"
    else
      vi::log "cluster ${CLUSTER_NAME} is unhealthy or from another node image; recreating it"
      kind delete cluster --name "${CLUSTER_NAME}"
    fi
  fi
  if ! cluster::exists; then
    vi::log "creating cluster ${CLUSTER_NAME} from ${image}"
    kind create cluster --name "${CLUSTER_NAME}" --config "${KIND_CONFIG}" --image "${image}" \
      --wait 0s --retain="${KIND_RETAIN:-false}"
    kubectl --context "${CONTEXT}" annotate nodes --all --overwrite "${CONFIG_ANNOTATION}=${CONFIG_KEY}" >/dev/null
  fi
  cluster::wait_ready
  cluster::network_policies
  kubectl --context "${CONTEXT}" get nodes -o wide
}

main "$@"
