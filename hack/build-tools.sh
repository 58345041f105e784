#!/usr/bin/env bash
# Puts the pinned kind, helm and kubectl on PATH ($TOOLS_BIN_DIR), each built
# from the Go module proxy and kept as $VIDEO_INGEST_CACHE/bin/<name>-<version>.
# kubectl comes from hack/build-kube-binaries.sh (same version as the nodes).
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tools::kind() {
  local bin="${VI_BIN_CACHE}/kind-${KIND_VERSION}"
  if [[ ! -x "${bin}" ]]; then
    vi::log "building kind ${KIND_VERSION}"
    vi::go::install_module "${bin}" sigs.k8s.io/kind "${KIND_VERSION}"
  fi
  vi::tool::link kind "${KIND_VERSION}" "${bin}"
}

tools::helm() {
  local bin="${VI_BIN_CACHE}/helm-${HELM_VERSION}" helm_dir client_go k8s_major k8s_minor ldflags
  if [[ ! -x "${bin}" ]]; then
    vi::log "building helm ${HELM_VERSION}"
    helm_dir="$(vi::go::module_dir helm.sh/helm/v3 "${HELM_VERSION}")"
    # As helm's Makefile does: the Kubernetes version `helm template` assumes
    # by default follows the client-go helm is built with (v0.34 -> 1.34).
    client_go="$(awk '$1 == "k8s.io/client-go" { print $2 }' "${helm_dir}/go.mod")"
    k8s_major="$(($(cut -d. -f1 <<<"${client_go#v}") + 1))"
    k8s_minor="$(cut -d. -f2 <<<"${client_go}")"
    ldflags="-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
    ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${k8s_major}"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${k8s_minor}"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${k8s_major}"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${k8s_minor}"
    vi::go::install_module "${bin}" helm.sh/helm/v3/cmd/helm "${HELM_VERSION}" "${ldflags}"
  fi
  vi::tool::link helm "${HELM_VERSION}" "${bin}"
}

tools::kubectl() {
  "${VI_HACK}/build-kube-binaries.sh"
  vi::tool::link kubectl "${KUBERNETES_VERSION}" \
    "${VIDEO_INGEST_CACHE}/kubernetes/${KUBERNETES_VERSION}/bin/kubectl"
}

main() {
  tools::kind
  tools::helm
  tools::kubectl
  vi::log "tools: $(kind version) | helm $(helm version --short) | kubectl $(kubectl version --client -o json | jq -r .clientVersion.gitVersion)"
}

main "$@"
