#!/bin/bash
# A stand-in for kind's kindnetd, the CNI daemon kind deploys on every node.
#
# Why: kind builds kindnetd from the Go module sigs.k8s.io/kind/images/kindnetd,
# and the Go module proxy our air-gapped machines reach serves no version of
# it. kind still applies its default CNI manifest (a DaemonSet running the
# image docker.io/kindest/kindnetd:<tag>), so this script is built into an
# image under that tag and does the part of kindnetd's job a kind cluster
# needs, using the same environment the manifest gives (HOST_IP, POD_SUBNET)
# and the same RBAC (list nodes):
#   - writes /etc/cni/net.d/10-kindnet.conflist: ptp + host-local over this
#     node's podCIDR, + portmap (hostPort), the standard CNI plugins the node
#     image carries in /opt/cni/bin;
#   - routes every other node's podCIDR via that node's InternalIP;
#   - masquerades pod traffic leaving the pod subnet.
# Not done (kindnetd does them): IPv6 / dual-stack, NetworkPolicy, the NRI
# plugin. Every 10 s it reconciles again, so nodes joining later get routes.
set -o errexit -o nounset -o pipefail

SA_DIR=/var/run/secrets/kubernetes.io/serviceaccount
CNI_CONF=/etc/cni/net.d/10-kindnet.conflist
MASQ_CHAIN=KINDNET-STANDIN-MASQ
: "${HOST_IP:?HOST_IP must be set (status.hostIP)}"
: "${POD_SUBNET:?POD_SUBNET must be set}"
: "${RESYNC_SECONDS:=10}"

log() {
  printf '%s kindnetd-standin: %s\n' "$(date -u +%FT%TZ)" "$*" >&2
}

# GET a path of the API server with the pod's service account.
api_get() {
  curl --silent --show-error --fail --max-time 10 \
    --cacert "${SA_DIR}/ca.crt" \
    --header "Authorization: Bearer $(cat "${SA_DIR}/token")" \
    "https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}$1"
}

# The MTU of the interface holding HOST_IP (pods get the same).
host_mtu() {
  local dev
  dev="$(ip -o -4 addr show | awk -v ip="${HOST_IP}" '{ split($4, a, "/"); if (a[1] == ip) print $2 }' | head -n1)"
  cat "/sys/class/net/${dev:-eth0}/mtu" 2>/dev/null || echo 1500
}

write_cni_config() {
  local pod_cidr="$1" tmp
  tmp="$(mktemp "${CNI_CONF}.XXXXXX")"
  jq -n --arg subnet "${pod_cidr}" --argjson mtu "$(host_mtu)" '{
    cniVersion: "0.4.0",
    name: "kindnet",
    plugins: [
      {
        type: "ptp",
        ipMasq: false,
        mtu: $mtu,
        ipam: {
          type: "host-local",
          dataDir: "/run/cni-ipam-state",
          routes: [{dst: "0.0.0.0/0"}],
          ranges: [[{subnet: $subnet}]]
        }
      },
      {type: "portmap", capabilities: {portMappings: true}}
    ]
  }' >"${tmp}"
  if cmp -s "${tmp}" "${CNI_CONF}"; then
    rm -f "${tmp}"
  else
    chmod 0644 "${tmp}"
    mv "${tmp}" "${CNI_CONF}"
    log "wrote ${CNI_CONF} for podCIDR ${pod_cidr}"
  fi
}

ensure_masquerade() {
  iptables -t nat -N "${MASQ_CHAIN}" 2>/dev/null || true
  iptables -t nat -C "${MASQ_CHAIN}" -d "${POD_SUBNET}" -j RETURN 2>/dev/null \
    || iptables -t nat -I "${MASQ_CHAIN}" 1 -d "${POD_SUBNET}" -j RETURN
  iptables -t nat -C "${MASQ_CHAIN}" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A "${MASQ_CHAIN}" -j MASQUERADE
  iptables -t nat -C POSTROUTING -s "${POD_SUBNET}" -m addrtype ! --dst-type LOCAL -j "${MASQ_CHAIN}" 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "${POD_SUBNET}" -m addrtype ! --dst-type LOCAL -j "${MASQ_CHAIN}"
}

# The API server is reached through the kubernetes Service's virtual IP. Until
# kube-proxy has programmed it, packets to that IP would leave the node for the
# host's network, so wait for kube-proxy's rule (or 60 s, should kube-proxy run
# in a mode whose rules look different).
service_ip_ready() {
  iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -- "-d ${KUBERNETES_SERVICE_HOST}/32" >/dev/null \
    || (($(date +%s) - STARTED_AT > 60))
}

reconcile() {
  local nodes own_cidr cidr ip
  if ! service_ip_ready; then
    log "waiting for kube-proxy to program ${KUBERNETES_SERVICE_HOST}"
    return 1
  fi
  nodes="$(api_get /api/v1/nodes)" || return 1
  own_cidr="$(jq -r --arg ip "${HOST_IP}" '.items[]
      | select(any(.status.addresses[]?; .type == "InternalIP" and .address == $ip))
      | .spec.podCIDR // empty' <<<"${nodes}" | head -n1)"
  if [[ -z "${own_cidr}" ]]; then
    log "no podCIDR for the node with InternalIP ${HOST_IP} yet"
    return 1
  fi
  write_cni_config "${own_cidr}"
  while read -r cidr ip; do
    [[ -n "${cidr}" && -n "${ip}" ]] || continue
    ip route replace "${cidr}" via "${ip}"
  done < <(jq -r --arg ip "${HOST_IP}" '.items[]
      | { cidr: (.spec.podCIDR // ""),
          ip: ([.status.addresses[]? | select(.type == "InternalIP") | .address][0] // "") }
      | select(.ip != $ip and .cidr != "" and (.cidr | contains(":") | not))
      | "\(.cidr) \(.ip)"' <<<"${nodes}")
  ensure_masquerade
}

main() {
  local delay
  STARTED_AT="$(date +%s)"
  log "starting (HOST_IP=${HOST_IP} POD_SUBNET=${POD_SUBNET})"
  trap 'log "stopping"; exit 0' TERM INT
  while true; do
    if reconcile; then
      delay="${RESYNC_SECONDS}"
    else
      # The node has no pod network until this succeeds: retry soon.
      delay=2
    fi
    sleep "${delay}" &
    wait $!
  done
}

main "$@"
