#!/usr/bin/env bash
# Builds, without a registry, every image a kind node must already hold, under
# the exact names kubeadm and kind ask for:
#   registry.k8s.io/kube-{apiserver,controller-manager,scheduler,proxy}:$KUBERNETES_VERSION
#   registry.k8s.io/etcd:$ETCD_IMAGE_TAG, registry.k8s.io/coredns/coredns:$COREDNS_IMAGE_TAG
#       (the tags `kubeadm config images list` prints; checked below)
#   registry.k8s.io/pause:$PAUSE_IMAGE_TAG (sandbox_image of kind's containerd config)
#   $KINDNETD_IMAGE, $LOCAL_PATH_PROVISIONER_IMAGE, $LOCAL_PATH_HELPER_IMAGE
#       (kind's const_cni.go / const_storage.go at $KIND_VERSION)
# Each is the shared Debian component base ($COMPONENT_BASE_IMAGE, from
# debootstrap) plus one binary compiled here from the Go module proxy; pause
# is a static C program alone. All of them are saved together to one tar in
# the cache (layers shared), which hack/build-node-image.sh imports.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_BIN="${VIDEO_INGEST_CACHE}/kubernetes/${KUBERNETES_VERSION}/bin"
IMAGES_DIR="${VI_HACK}/images"
COMPONENT_PACKAGES=(ca-certificates iptables nftables conntrack iproute2 curl jq)
CONTEXT="${VI_WORK}/component-context"

KUBE_APISERVER_IMAGE="registry.k8s.io/kube-apiserver:${KUBERNETES_VERSION}"
KUBE_CONTROLLER_MANAGER_IMAGE="registry.k8s.io/kube-controller-manager:${KUBERNETES_VERSION}"
KUBE_SCHEDULER_IMAGE="registry.k8s.io/kube-scheduler:${KUBERNETES_VERSION}"
KUBE_PROXY_IMAGE="registry.k8s.io/kube-proxy:${KUBERNETES_VERSION}"
ETCD_IMAGE="registry.k8s.io/etcd:${ETCD_IMAGE_TAG}"
COREDNS_IMAGE="registry.k8s.io/coredns/coredns:${COREDNS_IMAGE_TAG}"
PAUSE_IMAGE="registry.k8s.io/pause:${PAUSE_IMAGE_TAG}"
ALL_IMAGES=(
  "${KUBE_APISERVER_IMAGE}" "${KUBE_CONTROLLER_MANAGER_IMAGE}" "${KUBE_SCHEDULER_IMAGE}"
  "${KUBE_PROXY_IMAGE}" "${ETCD_IMAGE}" "${COREDNS_IMAGE}" "${PAUSE_IMAGE}"
  "${KINDNETD_IMAGE}" "${LOCAL_PATH_PROVISIONER_IMAGE}" "${LOCAL_PATH_HELPER_IMAGE}"
)

BASE_KEY="$(vi::key::of "${DEBIAN_SUITE}" "${COMPONENT_PACKAGES[*]}" \
  "${IMAGES_DIR}/component-base/iptables-wrapper.sh" "${BASH_SOURCE[0]}")"
ETCD_BIN="${VI_BIN_CACHE}/etcd-${ETCD_VERSION}"
COREDNS_BIN="${VI_BIN_CACHE}/coredns-${COREDNS_VERSION}"
LOCAL_PATH_BIN="${VI_BIN_CACHE}/local-path-provisioner-${LOCAL_PATH_PROVISIONER_VERSION}"
PAUSE_BIN="${VI_BIN_CACHE}/pause-$(vi::key::of "${IMAGES_DIR}/pause/pause.c")"
# The key of the whole set: any input changing rebuilds what it touches (each
# image below checks its own key) and re-saves the set.
SET_KEY="$(vi::key::of "${BASE_KEY}" "${KUBERNETES_VERSION}" "${ETCD_VERSION}" \
  "${COREDNS_VERSION}" "${LOCAL_PATH_PROVISIONER_VERSION}" "${ALL_IMAGES[*]}" \
  "${IMAGES_DIR}"/{binary,component-base,coredns,kindnetd,pause}/* "${BASH_SOURCE[0]}")"

# --- binaries (each cached by version) ----------------------------------------

components::build_etcd() {
  [[ -x "${ETCD_BIN}" ]] && return 0
  vi::log "building etcd ${ETCD_VERSION}"
  # etcd's server module replaces its sibling modules with ../ paths, so
  # `go install` refuses it: require the published siblings instead.
  local sibling extra="" out="${VI_WORK}/etcd-${ETCD_VERSION}"
  for sibling in api/v3 client/pkg/v3 client/v3 pkg/v3; do
    extra+="require go.etcd.io/etcd/${sibling} ${ETCD_VERSION}"$'\n'
  done
  rm -rf "${out}"
  vi::go::build_wrapped "${out}" go.etcd.io/etcd/server/v3 "${ETCD_VERSION}" "" "${extra}" \
    go.etcd.io/etcd/server/v3
  # go names the binary after the path element before the major version.
  mv "${out}/server" "${ETCD_BIN}"
  rm -rf "${out}"
  local reported
  reported="$("${ETCD_BIN}" --version)"
  [[ "${reported}" == *"etcd Version: ${ETCD_VERSION#v}"* ]] || vi::die "etcd reports ${reported}"
}

components::build_coredns() {
  [[ -x "${COREDNS_BIN}" ]] && return 0
  vi::log "building coredns ${COREDNS_VERSION}"
  vi::go::install_module "${COREDNS_BIN}" github.com/coredns/coredns "${COREDNS_VERSION}"
}

components::build_local_path_provisioner() {
  [[ -x "${LOCAL_PATH_BIN}" ]] && return 0
  vi::log "building local-path-provisioner ${LOCAL_PATH_PROVISIONER_VERSION}"
  vi::go::install_module "${LOCAL_PATH_BIN}" github.com/rancher/local-path-provisioner \
    "${LOCAL_PATH_PROVISIONER_VERSION}" "-X main.VERSION=${LOCAL_PATH_PROVISIONER_VERSION}"
}

components::build_pause() {
  [[ -x "${PAUSE_BIN}" ]] && return 0
  vi::log "building pause"
  vi::apt::ensure gcc libc6-dev
  mkdir -p "${VI_BIN_CACHE}"
  gcc -static -Os -s -Wall -Werror -o "${PAUSE_BIN}.partial" "${IMAGES_DIR}/pause/pause.c"
  mv "${PAUSE_BIN}.partial" "${PAUSE_BIN}"
}

# --- images -----------------------------------------------------------------------

# Debian minbase with the tools kube-proxy and the CNI daemon call
# (iptables through a wrapper that follows the node's backend, conntrack,
# ip, curl, jq). The local-path helper image is this image as it is.
components::base_image() {
  vi::image::current "${BASE_KEY}" "${COMPONENT_BASE_IMAGE}" && return 0
  local rootfs="${VI_WORK}/component-rootfs" cmd
  vi::rootfs::debootstrap "${rootfs}" minbase "$(IFS=,; echo "${COMPONENT_PACKAGES[*]}")"
  rm -rf "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/*
  install -m 0755 "${IMAGES_DIR}/component-base/iptables-wrapper.sh" "${rootfs}/usr/sbin/iptables-wrapper"
  for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf iptables-wrapper "${rootfs}/usr/sbin/${cmd}"
  done
  vi::rootfs::import "${rootfs}" "${COMPONENT_BASE_IMAGE}" "LABEL ${VI_KEY_LABEL}=${BASE_KEY}" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  rm -rf "${rootfs}"
}

# components::image IMAGE KEY DOCKERFILE_DIR [FILE...] [-- BUILD_ARG...]: a
# classic `docker build` of DOCKERFILE_DIR/Dockerfile with FILEs (and the
# Dockerfile dir's own files) as the context.
components::image() {
  local image="$1" key="$2" dir="$3" args=() file
  shift 3
  vi::image::current "${key}" "${image}" && return 0
  rm -rf "${CONTEXT}"
  mkdir -p "${CONTEXT}"
  cp "${dir}"/* "${CONTEXT}/"
  # Scripts must be executable in the image (the classic builder has no
  # COPY --chmod), whatever the checkout's file modes.
  find "${CONTEXT}" -name '*.sh' -exec chmod 0755 {} +
  while (($#)); do
    if [[ "$1" == "--" ]]; then
      shift
      args=("$@")
      break
    fi
    file="$1"
    cp "${file%%=*}" "${CONTEXT}/${file#*=}"
    shift
  done
  vi::log "building image ${image}"
  vi::image::build --label "${VI_KEY_LABEL}=${key}" --build-arg "BASE=${COMPONENT_BASE_IMAGE}" \
    ${args[@]+"${args[@]}"} -t "${image}" "${CONTEXT}"
  rm -rf "${CONTEXT}"
}

components::binary_image() {
  local image="$1" source="$2" name="$3"
  components::image "${image}" "$(vi::key::of "${BASE_KEY}" "${source}" "${IMAGES_DIR}/binary/Dockerfile")" \
    "${IMAGES_DIR}/binary" "${source}=${name}" -- --build-arg "BINARY=${name}"
}

components::check_kubeadm_tags() {
  local wanted
  wanted="$("${KUBE_BIN}/kubeadm" config images list --kubernetes-version "${KUBERNETES_VERSION}" 2>/dev/null | grep -v /pause:)"
  local image
  for image in ${wanted}; do
    [[ " ${ALL_IMAGES[*]} " == *" ${image} "* ]] \
      || vi::die "kubeadm ${KUBERNETES_VERSION} wants ${image}; set ETCD_IMAGE_TAG / COREDNS_IMAGE_TAG in hack/versions.env to match (or override kubeadm's image in kind-config.yaml)"
  done
}

# The set is current when its tar in the cache was saved from these inputs;
# images missing from Docker are loaded back from that tar.
components::set_current() {
  local tar image
  tar="$(vi::image::tar component-images "${SET_KEY}")"
  vi::stamp::current component-images "${SET_KEY}" && [[ -f "${tar}" ]] || return 1
  for image in "${ALL_IMAGES[@]}"; do
    if ! vi::image::exists "${image}"; then
      vi::log "loading the component images from ${tar}"
      docker load -i "${tar}" >/dev/null
      break
    fi
  done
}

main() {
  "${VI_HACK}/build-kube-binaries.sh"
  components::check_kubeadm_tags
  if components::set_current; then
    vi::log "component images are current"
    return 0
  fi
  components::build_etcd
  components::build_coredns
  components::build_local_path_provisioner
  components::build_pause
  components::base_image

  components::binary_image "${KUBE_APISERVER_IMAGE}" "${KUBE_BIN}/kube-apiserver" kube-apiserver
  components::binary_image "${KUBE_CONTROLLER_MANAGER_IMAGE}" "${KUBE_BIN}/kube-controller-manager" kube-controller-manager
  components::binary_image "${KUBE_SCHEDULER_IMAGE}" "${KUBE_BIN}/kube-scheduler" kube-scheduler
  components::binary_image "${KUBE_PROXY_IMAGE}" "${KUBE_BIN}/kube-proxy" kube-proxy
  components::binary_image "${ETCD_IMAGE}" "${ETCD_BIN}" etcd
  components::binary_image "${LOCAL_PATH_PROVISIONER_IMAGE}" "${LOCAL_PATH_BIN}" local-path-provisioner
  components::image "${COREDNS_IMAGE}" "$(vi::key::of "${BASE_KEY}" "${COREDNS_BIN}" "${IMAGES_DIR}/coredns/Dockerfile")" \
    "${IMAGES_DIR}/coredns" "${COREDNS_BIN}=coredns"
  components::image "${PAUSE_IMAGE}" "$(vi::key::of "${PAUSE_BIN}" "${IMAGES_DIR}/pause/Dockerfile")" \
    "${IMAGES_DIR}/pause" "${PAUSE_BIN}=pause"
  components::image "${KINDNETD_IMAGE}" "$(vi::key::of "${BASE_KEY}" "${IMAGES_DIR}/kindnetd/kindnetd.sh" "${IMAGES_DIR}/kindnetd/Dockerfile")" \
    "${IMAGES_DIR}/kindnetd"
  docker tag "${COMPONENT_BASE_IMAGE}" "${LOCAL_PATH_HELPER_IMAGE}"

  vi::log "saving the component images to the cache"
  vi::image::save component-images "${SET_KEY}" "${COMPONENT_BASE_IMAGE}" "${ALL_IMAGES[@]}"
  vi::stamp::write component-images "${SET_KEY}"
  vi::log "component images: ${ALL_IMAGES[*]}"
}

main "$@"
