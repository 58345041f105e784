#!/usr/bin/env bash
# Provides $REDIS_IMAGE, the Redis image of the chart's kind values
# (helm/video-ingest/ci/kind-values.yaml), and loads it into the kind cluster
# when that runs. Prints the image on stdout.
#
# With no container registry (VIDEO_INGEST_AIRGAP=1) it is a stand-in built
# here: Debian $DEBIAN_SUITE's redis-server from debootstrap, the redis user
# moved to UID/GID 999 (as in the official image), /data its working
# directory, and hack/images/redis/entrypoint.sh, which honours the official
# image's entrypoint contract (`IMAGE --option ...` runs redis-server with the
# options, as the chart's Redis Deployment does; started as root it drops to
# the redis user). Where a registry answers it is $PUBLISHED_REDIS_IMAGE,
# re-tagged.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ENTRYPOINT_SCRIPT="${VI_HACK}/images/redis/entrypoint.sh"
PACKAGES=(redis-server)
KEY="$(vi::key::of "${DEBIAN_SUITE}" "${REDIS_MAJOR}" "${PACKAGES[*]}" "${BASH_SOURCE[0]}" "${ENTRYPOINT_SCRIPT}")"

redis::build() {
  local rootfs="${VI_WORK}/redis-rootfs" version
  vi::rootfs::debootstrap "${rootfs}" minbase "$(IFS=,; echo "${PACKAGES[*]}")"
  version="$(chroot "${rootfs}" redis-server --version | sed -n 's/.* v=\([0-9.]*\) .*/\1/p')"
  [[ "${version}" == "${REDIS_MAJOR}".* ]] \
    || vi::die "Debian ${DEBIAN_SUITE} ships redis-server ${version:-(unknown)}, not ${REDIS_MAJOR}.x (REDIS_MAJOR)"
  # The package's own config, data and log directories are for its systemd
  # unit: this image runs redis-server with its compiled defaults and the
  # caller's options, in /data.
  rm -rf "${rootfs}/etc/redis" "${rootfs}/var/lib/redis" "${rootfs}/var/log/redis" \
    "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/* "${rootfs}"/usr/share/doc/* \
    "${rootfs}"/usr/share/locale/*
  # UID/GID 999, like the official image, so the chart's securityContext fits
  # both.
  # shellcheck disable=SC2016 # expanded by the shell inside the chroot
  chroot "${rootfs}" /bin/sh -o errexit -c '
    old_uid="$(id -u redis)"; old_gid="$(id -g redis)"
    groupmod --gid 999 redis
    usermod --uid 999 --gid 999 --home /data redis
    find / -xdev \( -uid "${old_uid}" -o -gid "${old_gid}" \) -exec chown -h redis:redis {} +
    mkdir -p /data
    chown redis:redis /data
  '
  install -m 0755 "${ENTRYPOINT_SCRIPT}" "${rootfs}/usr/local/bin/docker-entrypoint.sh"
  vi::rootfs::import "${rootfs}" "${REDIS_IMAGE}" \
    "LABEL ${VI_KEY_LABEL}=${KEY}" \
    "LABEL org.opencontainers.image.description=\"Redis ${version} from Debian ${DEBIAN_SUITE}, stand-in for the official redis image\"" \
    'ENV LANG=C.UTF-8' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'WORKDIR /data' \
    'VOLUME /data' \
    'EXPOSE 6379' \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["redis-server"]'
  rm -rf "${rootfs}" "${rootfs}.log"
}

# Two real starts. As the chart runs it: UID 999, read-only root, no
# capabilities, the chart's options and a password; a `redis-cli ping` from
# another container over the network answers PONG with the password and is
# refused without it. As `docker run IMAGE` (root, no options): the server
# runs as the redis user and answers a ping over the network.
redis::verify() (
  local chart="vi-redis-verify-$$" plain="vi-redis-verify-plain-$$" password="verify-$$" address uid
  # shellcheck disable=SC2064 # expand now
  trap "docker rm -f ${chart} ${plain} >/dev/null 2>&1 || true" EXIT
  docker run -d --name "${chart}" --user 999:999 --read-only --tmpfs /data:uid=999,gid=999 \
    --cap-drop ALL --security-opt no-new-privileges "${REDIS_IMAGE}" \
    --save "" --appendonly no --requirepass "${password}" >/dev/null
  docker run -d --name "${plain}" "${REDIS_IMAGE}" >/dev/null
  redis::wait "${chart}" -e REDISCLI_AUTH="${password}"
  redis::wait "${plain}"
  address="$(docker inspect -f '{{ .NetworkSettings.IPAddress }}' "${chart}")"
  docker run --rm -e REDISCLI_AUTH="${password}" "${REDIS_IMAGE}" \
    redis-cli -h "${address}" -e ping | grep -x PONG >&2 \
    || { docker logs "${chart}" >&2; vi::die "${REDIS_IMAGE}: ping with the password from another container failed"; }
  if docker run --rm "${REDIS_IMAGE}" redis-cli -h "${address}" -e ping >/dev/null 2>&1; then
    vi::die "${REDIS_IMAGE}: --requirepass was not enforced (a ping without the password answered)"
  fi
  [[ "$(docker exec -e REDISCLI_AUTH="${password}" "${chart}" redis-cli -e config get save)" == save ]] \
    || vi::die "${REDIS_IMAGE}: the chart's --save \"\" did not reach redis-server"
  address="$(docker inspect -f '{{ .NetworkSettings.IPAddress }}' "${plain}")"
  docker run --rm "${REDIS_IMAGE}" redis-cli -h "${address}" -e ping | grep -x PONG >&2 \
    || { docker logs "${plain}" >&2; vi::die "${REDIS_IMAGE}: ping from another container failed (default start)"; }
  # shellcheck disable=SC2016 # awk's field, not the shell's
  uid="$(docker exec "${plain}" awk '/^Uid:/ { print $2 }' /proc/1/status)"
  [[ "${uid}" == 999 ]] || vi::die "${REDIS_IMAGE}: redis-server runs as UID ${uid}, not 999, when started as root"
  docker exec -e REDISCLI_AUTH="${password}" "${chart}" redis-cli -e info server \
    | grep -E '^(redis_version|process_id|tcp_port|executable):' >&2
)

# redis::wait CONTAINER [DOCKER_EXEC_ARGS...]: until redis-server answers inside it.
redis::wait() {
  local name="$1" tries=0
  shift
  until docker exec "$@" "${name}" redis-cli -e ping >/dev/null 2>&1; do
    ((++tries < 60)) || { docker logs "${name}" >&2; vi::die "${REDIS_IMAGE} did not answer in ${name}"; }
    sleep 1
  done
}

vi::service_image::provide redis "${KEY}" "${REDIS_IMAGE}" "${PUBLISHED_REDIS_IMAGE}"
