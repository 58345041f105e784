#!/usr/bin/env bash
# Provides $POSTGRES_IMAGE, the PostgreSQL image of the chart's kind values
# (helm/video-ingest/ci/kind-values.yaml), and loads it into the kind
# cluster when that runs. Prints the image on stdout.
#
# With no container registry (VIDEO_INGEST_AIRGAP=1) it is a stand-in built
# here: Debian $DEBIAN_SUITE's postgresql-$POSTGRES_MAJOR from debootstrap,
# the postgres user moved to UID/GID 999 (as in the official image), and
# hack/images/postgres/entrypoint.sh, which honours the official image's
# contract (POSTGRES_USER, POSTGRES_PASSWORD[_FILE], POSTGRES_DB, PGDATA,
# initdb on first start, port 5432 on every address with password auth).
# Where a registry answers it is $PUBLISHED_POSTGRES_IMAGE, re-tagged.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ENTRYPOINT_SCRIPT="${VI_HACK}/images/postgres/entrypoint.sh"
PACKAGES=("postgresql-${POSTGRES_MAJOR}")
KEY="$(vi::key::of "${DEBIAN_SUITE}" "${PACKAGES[*]}" "${BASH_SOURCE[0]}" "${ENTRYPOINT_SCRIPT}")"

postgres::build() {
  local rootfs="${VI_WORK}/postgres-rootfs" bin="/usr/lib/postgresql/${POSTGRES_MAJOR}/bin"
  vi::rootfs::debootstrap "${rootfs}" minbase "$(IFS=,; echo "${PACKAGES[*]}")"
  # The package's own cluster and config: this image initialises $PGDATA
  # itself, on first start.
  rm -rf "${rootfs}/var/lib/postgresql/${POSTGRES_MAJOR}" "${rootfs}/etc/postgresql/${POSTGRES_MAJOR}" \
    "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/* "${rootfs}"/usr/share/doc/* \
    "${rootfs}"/usr/share/locale/*
  # UID/GID 999, like the official image, so its volumes and the chart's
  # securityContext fit both.
  # shellcheck disable=SC2016 # expanded by the shell inside the chroot
  chroot "${rootfs}" /bin/sh -o errexit -c '
    old_uid="$(id -u postgres)"; old_gid="$(id -g postgres)"
    groupmod --gid 999 postgres
    usermod --uid 999 --gid 999 postgres
    find / -xdev \( -uid "${old_uid}" -o -gid "${old_gid}" \) -exec chown -h postgres:postgres {} +
    mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d
    chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/data /var/run/postgresql
    chmod 0700 /var/lib/postgresql/data
    chmod 2775 /var/run/postgresql
  '
  install -m 0755 "${ENTRYPOINT_SCRIPT}" "${rootfs}/usr/local/bin/docker-entrypoint.sh"
  vi::rootfs::import "${rootfs}" "${POSTGRES_IMAGE}" \
    "LABEL ${VI_KEY_LABEL}=${KEY}" \
    "LABEL org.opencontainers.image.description=\"PostgreSQL ${POSTGRES_MAJOR} from Debian ${DEBIAN_SUITE}, stand-in for the official postgres image\"" \
    'ENV LANG=C.UTF-8' \
    "ENV PATH=${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    'ENV PGDATA=/var/lib/postgresql/data' \
    'VOLUME /var/lib/postgresql/data' \
    'EXPOSE 5432' \
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["postgres"]'
  rm -rf "${rootfs}" "${rootfs}.log"
  # SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to
  # leave); `docker import` cannot set STOPSIGNAL, a one-line build can.
  printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "${POSTGRES_IMAGE}" | docker build --quiet -t "${POSTGRES_IMAGE}" - >/dev/null
}

# A real start: initdb, a password login over TCP from another container,
# the database created.
postgres::verify() (
  local name="vi-postgres-verify-$$" password="verify-$$" tries=0
  # shellcheck disable=SC2064 # expand now
  trap "docker rm -f ${name} >/dev/null 2>&1 || true" EXIT
  docker run -d --name "${name}" -e POSTGRES_USER=prefect -e POSTGRES_DB=prefect \
    -e POSTGRES_PASSWORD="${password}" "${POSTGRES_IMAGE}" >/dev/null
  until docker exec "${name}" pg_isready --host 127.0.0.1 --username prefect --dbname prefect >/dev/null 2>&1; do
    ((++tries < 60)) || { docker logs "${name}" >&2; vi::die "${POSTGRES_IMAGE} did not become ready"; }
    sleep 1
  done
  docker run --rm --network "container:${name}" -e PGPASSWORD="${password}" "${POSTGRES_IMAGE}" \
    psql --host 127.0.0.1 --username prefect --dbname prefect --no-psqlrc --tuples-only \
    --command 'SELECT current_user, current_database(), version()' >&2 \
    || { docker logs "${name}" >&2; vi::die "${POSTGRES_IMAGE}: password login over TCP failed"; }
)

vi::service_image::provide postgres "${KEY}" "${POSTGRES_IMAGE}" "${PUBLISHED_POSTGRES_IMAGE}"
