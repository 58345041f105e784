#!/bin/sh
# Installed as iptables, iptables-save, iptables-restore and their ip6tables
# twins in the component images (kube-proxy, kindnetd). On first use it picks
# the backend the node already uses -- legacy or nft, whichever holds more
# rules -- points those six commands straight at it, and runs the command it
# was called as. Mixing backends on one node breaks Service routing.
set -eu

legacy="$( (iptables-legacy-save || true; ip6tables-legacy-save || true) 2>/dev/null | grep -c '^-' || true)"
nft="$( (timeout 5 iptables-nft-save || true; timeout 5 ip6tables-nft-save || true) 2>/dev/null | grep -c '^-' || true)"
if [ "${legacy}" -gt "${nft}" ]; then
  mode=legacy
else
  mode=nft
fi

# iptables-save -> /usr/sbin/iptables-nft-save, ip6tables -> /usr/sbin/ip6tables-nft, ...
backend() {
  family="${1%%-*}"
  echo "/usr/sbin/${family}-${mode}${1#"${family}"}"
}

for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  # A read-only root file system keeps the wrapper; it still works, per call.
  ln -sf "$(backend "${cmd}")" "/usr/sbin/${cmd}" 2>/dev/null || true
done

exec "$(backend "$(basename "$0")")" "$@"
