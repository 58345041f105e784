#!/usr/bin/env bash
# Provides $NETWORK_POLICY_IMAGE, the NetworkPolicy engine of the kind cluster
# (kube-router's firewall alone; hack/cluster-up.sh deploys it with
# hack/manifests/kube-router.yaml), and loads it into the kind cluster when
# that runs. Prints the image on stdout.
#
# With no container registry (VIDEO_INGEST_AIRGAP=1): kube-router built from
# the Go module proxy (plain `go install`, static; cached as
# $VIDEO_INGEST_CACHE/bin/kube-router-<version>) on a Debian $DEBIAN_SUITE
# minbase with the two programs its firewall runs, iptables (through the
# component images' wrapper, which follows the node's iptables backend) and
# ipset. It needs no other image, so .ci/run builds it in the background beside
# the fast test tiers. Where a registry answers it is
# $PUBLISHED_NETWORK_POLICY_IMAGE, re-tagged.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGE=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
PACKAGES=(iptables ipset)
IPTABLES_WRAPPER="${VI_HACK}/images/component-base/iptables-wrapper.sh"
KEY="$(vi::key::of "${NETWORK_POLICY_VERSION}" "${DEBIAN_SUITE}" "${PACKAGES[*]}" "${BASH_SOURCE[0]}" \
  "${IPTABLES_WRAPPER}")"

network_policy::binary() {
  local cached="${VI_BIN_CACHE}/kube-router-${NETWORK_POLICY_VERSION}"
  if [[ ! -x "${cached}" ]]; then
    vi::log "building kube-router ${NETWORK_POLICY_VERSION} (several minutes)"
    vi::go::install_module "${cached}" "${PACKAGE}" "${NETWORK_POLICY_VERSION}" \
      "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${NETWORK_POLICY_VERSION}"
  fi
  echo "${cached}"
}

network_policy::build() {
  local rootfs="${VI_WORK}/network-policy-rootfs" binary cmd
  binary="$(network_policy::binary)"
  vi::rootfs::debootstrap "${rootfs}" minbase "$(IFS=,; echo "${PACKAGES[*]}")"
  rm -rf "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/* "${rootfs}"/usr/share/doc/* \
    "${rootfs}"/usr/share/locale/*
  # iptables as in the component images (kube-proxy's): the backend the node uses.
  install -m 0755 "${IPTABLES_WRAPPER}" "${rootfs}/usr/sbin/iptables-wrapper"
  for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf iptables-wrapper "${rootfs}/usr/sbin/${cmd}"
  done
  install -m 0755 "${binary}" "${rootfs}/usr/local/bin/kube-router"
  vi::rootfs::import "${rootfs}" "${NETWORK_POLICY_IMAGE}" \
    "LABEL ${VI_KEY_LABEL}=${KEY}" \
    "LABEL org.opencontainers.image.description=\"kube-router ${NETWORK_POLICY_VERSION} on Debian ${DEBIAN_SUITE}'s iptables and ipset\"" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'ENTRYPOINT ["/usr/local/bin/kube-router"]'
  rm -rf "${rootfs}" "${rootfs}.log"
}

# kube-router reports its version, and in a network namespace of its own with
# only CAP_NET_ADMIN (what the DaemonSet grants) the image's ipset and iptables
# build the kind of rule its firewall writes: a set, matched by a rule.
network_policy::verify() {
  local version rules
  version="$(docker run --rm --network none "${NETWORK_POLICY_IMAGE}" --version 2>&1)" \
    || vi::die "${NETWORK_POLICY_IMAGE}: kube-router --version failed: ${version}"
  [[ "${version}" == *"${NETWORK_POLICY_VERSION}"* ]] \
    || vi::die "${NETWORK_POLICY_IMAGE}: kube-router reports ${version}, not ${NETWORK_POLICY_VERSION}"
  rules="$(docker run --rm --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW --entrypoint sh \
    "${NETWORK_POLICY_IMAGE}" -o errexit -c '
      ipset create vi-verify hash:ip
      ipset add vi-verify 192.0.2.1
      iptables -A INPUT -m set --match-set vi-verify src -j DROP
      iptables -S INPUT' 2>&1)" \
    || vi::die "${NETWORK_POLICY_IMAGE}: ipset/iptables failed: ${rules}"
  [[ "${rules}" == *"--match-set vi-verify src -j DROP"* ]] \
    || vi::die "${NETWORK_POLICY_IMAGE}: the rule did not take: ${rules}"
  vi::log "${NETWORK_POLICY_IMAGE}: ${version%%$'\n'*}; ipset and iptables work"
}

vi::service_image::provide network_policy "${KEY}" "${NETWORK_POLICY_IMAGE}" "${PUBLISHED_NETWORK_POLICY_IMAGE}"
