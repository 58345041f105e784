#!/usr/bin/env bash
# Compiles the Kubernetes binaries a kind node and its control plane need
# (kubeadm, kubelet, kubectl, kube-apiserver, kube-controller-manager,
# kube-scheduler, kube-proxy) from the Go module proxy, with no git checkout.
#
# k8s.io/kubernetes refuses `go install` (its go.mod replaces the k8s.io/*
# staging modules with ./staging/...). So this script writes a small wrapper
# module that requires k8s.io/kubernetes $KUBERNETES_VERSION and replaces each
# staging module listed there as v0.0.0 with its published v0.<minor>.<patch>,
# then builds all seven commands in one `go build` so they share compilation.
#
# Output: $VIDEO_INGEST_CACHE/kubernetes/$KUBERNETES_VERSION/bin/<name>.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMMANDS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
OUT_DIR="${VIDEO_INGEST_CACHE}/kubernetes/${KUBERNETES_VERSION}/bin"
KEY="$(vi::key::of "${KUBERNETES_VERSION}" "${KUBERNETES_GIT_COMMIT:-}" "${BASH_SOURCE[0]}" "$(go env GOVERSION)")"

# go.mod lines replacing each staging module (a `k8s.io/<name> v0.0.0`
# requirement of k8s.io/kubernetes) with its published v0.<minor>.<patch>.
kube::staging_replaces() {
  local kube_dir staging_version
  kube_dir="$(vi::go::module_dir k8s.io/kubernetes "${KUBERNETES_VERSION}")"
  [[ -f "${kube_dir}/go.mod" ]] || vi::die "k8s.io/kubernetes@${KUBERNETES_VERSION} not available from the module proxy"
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  awk -v v="${staging_version}" '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print "replace " $1 " => " $1 " " v }' \
    "${kube_dir}/go.mod"
}

# The version variables hack/lib/version.sh sets upstream; without them the
# binaries call themselves v0.0.0 and kubeadm refuses to work.
kube::ldflags() {
  local minor build_date info flags="" pkg
  minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  # The tag's time, from the module proxy: reproducible, unlike `date`.
  vi::go::module_dir k8s.io/kubernetes "${KUBERNETES_VERSION}" >/dev/null
  info="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/${KUBERNETES_VERSION}.info"
  [[ -f "${info}" ]] || vi::die "no ${info}"
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${info}")"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitVersion=${KUBERNETES_VERSION}"
    flags+=" -X ${pkg}.gitMajor=1"
    flags+=" -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitCommit=${KUBERNETES_GIT_COMMIT:-}"
    flags+=" -X ${pkg}.gitTreeState=clean"
    flags+=" -X ${pkg}.buildDate=${build_date:-1970-01-01T00:00:00Z}"
  done
  echo "${flags# }"
}

kube::build() {
  local pkgs=() cmd tmp_out
  for cmd in "${COMMANDS[@]}"; do
    pkgs+=("k8s.io/kubernetes/cmd/${cmd}")
  done
  tmp_out="${OUT_DIR}.partial"
  rm -rf "${tmp_out}"
  vi::log "building ${COMMANDS[*]} (one go build, CGO_ENABLED=0)"
  # Same build tags as upstream's hack/lib/golang.sh for release binaries.
  GOFLAGS_TAGS=selinux,notest,grpcnotrace vi::go::build_wrapped "${tmp_out}" \
    k8s.io/kubernetes "${KUBERNETES_VERSION}" "$(kube::ldflags)" "$(kube::staging_replaces)" "${pkgs[@]}"
  rm -rf "${OUT_DIR}"
  mv "${tmp_out}" "${OUT_DIR}"
}

kube::verify() {
  local got
  got="$("${OUT_DIR}/kubeadm" version -o short)"
  [[ "${got}" == "${KUBERNETES_VERSION}" ]] \
    || vi::die "kubeadm reports ${got}, expected ${KUBERNETES_VERSION}"
  got="$("${OUT_DIR}/kubelet" --version)"
  [[ "${got}" == "Kubernetes ${KUBERNETES_VERSION}" ]] || vi::die "kubelet reports ${got}"
}

main() {
  local cmd
  if vi::stamp::current kube-binaries "${KEY}" && [[ -x "${OUT_DIR}/kube-proxy" ]]; then
    vi::log "Kubernetes ${KUBERNETES_VERSION} binaries are current (${OUT_DIR})"
    return 0
  fi
  kube::build
  kube::verify
  vi::stamp::write kube-binaries "${KEY}"
  for cmd in "${COMMANDS[@]}"; do
    vi::log "built $(du -h "${OUT_DIR}/${cmd}" | cut -f1) ${OUT_DIR}/${cmd}"
  done
}

main "$@"
