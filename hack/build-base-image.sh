#!/usr/bin/env bash
# Builds the kind node *base* image ($BASE_IMAGE) without a registry, laid out
# like kind's kindest/base for $KIND_VERSION:
#   - Debian $DEBIAN_SUITE from debootstrap, with the packages kindest/base
#     installs (systemd, iptables, nftables, conntrack, ...);
#   - containerd, runc, crictl and the CNI plugins compiled from the Go module
#     proxy at the versions in hack/versions.env;
#   - kind's own images/base/files (entrypoint, containerd config, kubelet
#     units, sysctl) taken from the sigs.k8s.io/kind module in the Go module
#     cache, never copied into this repository.
# The image is saved to $VIDEO_INGEST_CACHE/images and reused while its inputs
# are unchanged.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASE_PACKAGES=(
  systemd
  conntrack iptables nftables iproute2 ethtool util-linux mount kmod
  libseccomp2 pigz fuse-overlayfs
  bash ca-certificates curl jq procps
)
CONTAINERD_BIN="${VI_BIN_CACHE}/containerd-${CONTAINERD_VERSION}"
RUNC_BIN="${VI_BIN_CACHE}/runc-${RUNC_VERSION}"
CRICTL_BIN="${VI_BIN_CACHE}/crictl-${CRICTL_VERSION}"
CNI_BIN="${VI_BIN_CACHE}/cni-plugins-${CNI_PLUGINS_VERSION}"
ROOTFS="${VI_WORK}/kind-base-rootfs"
KEY="$(vi::key::of "${KIND_VERSION}" "${CONTAINERD_VERSION}" "${RUNC_VERSION}" \
  "${CRICTL_VERSION}" "${CNI_PLUGINS_VERSION}" "${DEBIAN_SUITE}" "${BASE_PACKAGES[*]}" \
  "${BASH_SOURCE[0]}")"

# --- node runtime binaries (each cached by version) --------------------------

base::build_containerd() {
  [[ -x "${CONTAINERD_BIN}/containerd-shim-runc-v2" ]] && return 0
  vi::log "building containerd ${CONTAINERD_VERSION}"
  local pkg=github.com/containerd/containerd/v2
  rm -rf "${CONTAINERD_BIN}.partial"
  # Snapshotters kind never selects are left out, as kind's build does.
  # containerd's go.mod has exclude directives, which `go install` refuses.
  GOFLAGS_TAGS="no_aufs,no_zfs,no_btrfs,no_devmapper" vi::go::build_wrapped \
    "${CONTAINERD_BIN}.partial" "${pkg}" "${CONTAINERD_VERSION}" \
    "-X ${pkg}/version.Version=${CONTAINERD_VERSION} -X ${pkg}/version.Package=${pkg}" "" \
    "${pkg}/cmd/containerd" "${pkg}/cmd/ctr" "${pkg}/cmd/containerd-shim-runc-v2"
  mv "${CONTAINERD_BIN}.partial" "${CONTAINERD_BIN}"
}

base::build_runc() {
  [[ -x "${RUNC_BIN}" ]] && return 0
  vi::log "building runc ${RUNC_VERSION}"
  # runc needs cgo (its nsenter is C) and libseccomp; it links against the
  # same Debian libseccomp2 the node image carries.
  vi::apt::ensure gcc libc6-dev pkg-config libseccomp-dev
  CGO_ENABLED=1 GOFLAGS_TAGS="seccomp,urfave_cli_no_docs" vi::go::install_module \
    "${RUNC_BIN}" github.com/opencontainers/runc "${RUNC_VERSION}" \
    "-X main.version=${RUNC_VERSION#v}"
}

base::build_crictl() {
  [[ -x "${CRICTL_BIN}" ]] && return 0
  vi::log "building crictl ${CRICTL_VERSION}"
  vi::go::install_module "${CRICTL_BIN}" sigs.k8s.io/cri-tools/cmd/crictl "${CRICTL_VERSION}" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}"
}

base::build_cni_plugins() {
  [[ -x "${CNI_BIN}/portmap" ]] && return 0
  vi::log "building CNI plugins ${CNI_PLUGINS_VERSION}"
  local pkg=github.com/containernetworking/plugins
  rm -rf "${CNI_BIN}.partial"
  vi::go::install_many "${CNI_BIN}.partial" "${CNI_PLUGINS_VERSION}" \
    "-X ${pkg}/pkg/utils/buildversion.BuildVersion=${CNI_PLUGINS_VERSION}" \
    "${pkg}/plugins/ipam/host-local" "${pkg}/plugins/main/loopback" \
    "${pkg}/plugins/main/ptp" "${pkg}/plugins/meta/portmap"
  mv "${CNI_BIN}.partial" "${CNI_BIN}"
}

# --- root file system ------------------------------------------------------------

# Lays kind's images/base/files over the root file system with the modes
# kind's Dockerfile gives them: scripts 0755, everything else 0644.
base::install_kind_files() {
  local kind_dir files
  kind_dir="$(vi::go::module_dir sigs.k8s.io/kind "${KIND_VERSION}")"
  files="${kind_dir}/images/base/files"
  [[ -f "${files}/usr/local/bin/entrypoint" ]] || vi::die "no images/base/files in sigs.k8s.io/kind@${KIND_VERSION}"
  (
    cd "${files}"
    find etc kind LICENSES usr -type f | while read -r f; do
      case "${f}" in
        usr/local/bin/* | kind/bin/*) install -D -m 0755 "${f}" "${ROOTFS}/${f}" ;;
        *) install -D -m 0644 "${f}" "${ROOTFS}/${f}" ;;
      esac
    done
  )
  chmod 0755 "${ROOTFS}/kind" "${ROOTFS}/kind/bin"
}

base::install_runtime() {
  install -D -m 0755 -t "${ROOTFS}/usr/local/bin" \
    "${CONTAINERD_BIN}/containerd" "${CONTAINERD_BIN}/ctr" \
    "${CONTAINERD_BIN}/containerd-shim-runc-v2"
  install -D -m 0755 "${CRICTL_BIN}" "${ROOTFS}/usr/local/bin/crictl"
  install -D -m 0755 "${RUNC_BIN}" "${ROOTFS}/usr/local/sbin/runc"
  install -D -m 0755 -t "${ROOTFS}/opt/cni/bin" \
    "${CNI_BIN}/host-local" "${CNI_BIN}/loopback" "${CNI_BIN}/ptp" "${CNI_BIN}/portmap"
  # The runtime spec containerd's CRI starts from, with kind's hook that
  # mounts the per-node product_uuid (as kind's Dockerfile generates it).
  "${CONTAINERD_BIN}/ctr" oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' >"${ROOTFS}/etc/containerd/cri-base.json"
}

# The systemd setup of kind's Dockerfile: no units but the ones a node needs,
# no kmsg in the journal, systemd as /sbin/init.
base::configure_systemd() {
  chroot "${ROOTFS}" /bin/bash -euo pipefail -c '
    find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* \
      /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* \
      /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* \
      /lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >>/etc/systemd/journald.conf
    ln -sf "$(command -v systemd || echo /lib/systemd/systemd)" /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    mkdir -p /etc/kubernetes/manifests
  ' >"${ROOTFS}.systemd.log" 2>&1 \
    || { cat "${ROOTFS}.systemd.log" >&2; vi::die "configuring systemd in the base image failed"; }
}

base::build_image() {
  vi::rootfs::debootstrap "${ROOTFS}" minbase "$(IFS=,; echo "${BASE_PACKAGES[*]}")"
  base::install_kind_files
  base::install_runtime
  base::configure_systemd
  "${ROOTFS}/usr/local/sbin/runc" --version >/dev/null
  vi::rootfs::import "${ROOTFS}" "${BASE_IMAGE}-rootfs" \
    'ENV container=docker' \
    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
  # `docker import` cannot set STOPSIGNAL; a metadata-only build step can.
  # systemd exits on SIGRTMIN+3 (SIGTERM makes it re-execute itself).
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL %s=%s\n' "${BASE_IMAGE}-rootfs" "${VI_KEY_LABEL}" "${KEY}" \
    | vi::image::build -t "${BASE_IMAGE}" -
  docker rmi "${BASE_IMAGE}-rootfs" >/dev/null
  rm -rf "${ROOTFS}"
}

main() {
  if vi::image::restore kind-base "${KEY}" "${BASE_IMAGE}"; then
    vi::log "${BASE_IMAGE} is current"
    return 0
  fi
  base::build_containerd
  base::build_runc
  base::build_crictl
  base::build_cni_plugins
  vi::log "building ${BASE_IMAGE}"
  base::build_image
  vi::image::save kind-base "${KEY}" "${BASE_IMAGE}"
  vi::log "built ${BASE_IMAGE} ($(docker image inspect -f '{{.Size}}' "${BASE_IMAGE}" | numfmt --to=iec))"
}

main "$@"
