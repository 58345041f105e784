#!/usr/bin/env bash
# Makes sure a Docker engine runs here and can start privileged containers
# (kind's nodes are privileged):
#   1. installs Debian's docker.io (and the host tools the other scripts use)
#      when dockerd is missing;
#   2. starts dockerd when it is not answering (systemd if it runs, else by
#      hand, logging to /var/log/video-ingest-dockerd.log) and waits for it;
#   3. starts a privileged probe container; only if that fails because the
#      capability bounding set lacks CAP_SYS_RESOURCE, registers
#      hack/runc-drop-sys-resource.sh as dockerd's default runtime.
# Machines where privileged containers already work are left as they are.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKERD_LOG=/var/log/video-ingest-dockerd.log
WRAPPER=/usr/local/libexec/video-ingest/runc-drop-sys-resource
WRAPPER_RUNTIME=runc-drop-sys-resource
DAEMON_JSON=/etc/docker/daemon.json
PROBE_IMAGE="${LOCAL_IMAGE_PREFIX}/probe:1"

docker::install() {
  # jq: the runc wrapper and daemon.json; debootstrap: every image we build.
  vi::apt::ensure jq debootstrap iptables
  if ! command -v dockerd >/dev/null; then
    vi::apt::ensure docker.io
  fi
}

docker::answering() {
  timeout 10 docker info >/dev/null 2>&1
}

docker::start() {
  docker::answering && return 0
  vi::log "starting dockerd"
  if [[ -d /run/systemd/system ]] && systemctl start docker 2>/dev/null; then
    :
  else
    # Debian's init scripts are blocked in containers (policy-rc.d); start
    # the daemon directly. It outlives this script on purpose.
    nohup dockerd >>"${DOCKERD_LOG}" 2>&1 </dev/null &
  fi
  local attempt
  for attempt in $(seq 1 60); do
    docker::answering && return 0
    ((attempt % 15)) || vi::log "still waiting for dockerd (${attempt}s)"
    sleep 1
  done
  tail -n 30 "${DOCKERD_LOG}" >&2 || true
  vi::die "dockerd did not answer within 60s (log: ${DOCKERD_LOG})"
}

# A one-file image to try a privileged run with: /bin/true and the shared
# libraries it needs, taken from this host (nothing to pull).
docker::probe_image() {
  vi::image::exists "${PROBE_IMAGE}" && return 0
  local files
  files="$(ldd /bin/true | grep -o '/[^ ]*' | sort -u)"
  # shellcheck disable=SC2086 # one path per word
  tar --dereference -C / -c bin/true ${files//$'\n'/ } 2>/dev/null \
    | docker import --change 'CMD ["/bin/true"]' - "${PROBE_IMAGE}" >/dev/null
}

docker::privileged_works() {
  docker run --rm --privileged "${PROBE_IMAGE}" /bin/true >/dev/null 2>"${VI_WORK}/probe.err"
}

# Writes the wrapper with the real runc's path filled in; true when the file
# changed.
docker::write_wrapper() {
  local real_runc
  real_runc="$(command -v runc || true)"
  [[ -x "${real_runc}" ]] || vi::die "runc not found; cannot wrap it"
  mkdir -p "$(dirname "${WRAPPER}")"
  sed "s#@REAL_RUNC@#${real_runc}#" "${VI_HACK}/runc-drop-sys-resource.sh" >"${WRAPPER}.new"
  chmod 0755 "${WRAPPER}.new"
  if cmp -s "${WRAPPER}.new" "${WRAPPER}"; then
    rm -f "${WRAPPER}.new"
    return 1
  fi
  mv "${WRAPPER}.new" "${WRAPPER}"
}

docker::wrapper_registered() {
  grep -q "\"${WRAPPER_RUNTIME}\"" "${DAEMON_JSON}" 2>/dev/null
}

docker::install_wrapper() {
  vi::log "privileged containers fail here ($(tr '\n' ' ' <"${VI_WORK}/probe.err" | cut -c1-200))"
  vi::log "registering ${WRAPPER} as dockerd's default runtime"
  docker::write_wrapper || true
  mkdir -p /etc/docker
  [[ -s "${DAEMON_JSON}" ]] || echo '{}' >"${DAEMON_JSON}"
  jq --arg name "${WRAPPER_RUNTIME}" --arg path "${WRAPPER}" \
    '.runtimes[$name] = {path: $path} | .["default-runtime"] = $name' \
    "${DAEMON_JSON}" >"${DAEMON_JSON}.new"
  mv "${DAEMON_JSON}.new" "${DAEMON_JSON}"
  # runtimes and default-runtime are reloaded on SIGHUP: no restart needed.
  kill -HUP "$(cat /var/run/docker.pid)"
  sleep 2
}

main() {
  docker::install
  # A wrapper registered earlier (this machine, an older checkout): keep its
  # file present and current before dockerd starts containers with it.
  if docker::wrapper_registered && docker::write_wrapper; then
    vi::log "refreshed ${WRAPPER}"
  fi
  docker::start
  docker::probe_image
  if docker::privileged_works; then
    vi::log "docker is up; privileged containers work"
    return 0
  fi
  grep -q "apply caps\|operation not permitted" "${VI_WORK}/probe.err" \
    || vi::die "privileged probe failed: $(cat "${VI_WORK}/probe.err")"
  docker::install_wrapper
  docker::privileged_works \
    || vi::die "privileged probe still fails with the wrapper: $(cat "${VI_WORK}/probe.err")"
  vi::log "docker is up; privileged containers work through ${WRAPPER_RUNTIME}"
}

main "$@"
