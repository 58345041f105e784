#!/usr/bin/env bash
# Entrypoint of the PostgreSQL stand-in image (hack/build-postgres-image.sh):
# Debian's PostgreSQL behind the contract of the official postgres image, as
# far as the video-ingest chart and most users rely on it:
#
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE  password of POSTGRES_USER
#                                  (required unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER                  superuser created by initdb (default postgres)
#   POSTGRES_DB                    database created on first start (default: the user)
#   POSTGRES_INITDB_ARGS           extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD      pg_hba method for TCP clients (default scram-sha-256)
#   PGDATA                         data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/   *.sh and *.sql run once, after initdb
#
# Started as root it prepares the directories and re-executes itself as the
# postgres user (UID 999, as in the official image); started as that user
# (Kubernetes runAsUser) it runs directly. The server listens on every
# address, port 5432, with password authentication for TCP clients.
set -o errexit -o nounset -o pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=${POSTGRES_USER}}"
: "${POSTGRES_INITDB_ARGS:=}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA

log() {
  printf '%s [entrypoint] %s\n' "$(date -u +'%Y-%m-%d %H:%M:%S UTC')" "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# POSTGRES_PASSWORD_FILE wins over POSTGRES_PASSWORD; setting both is an error.
read_password() {
  if [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]]; then
    [[ -z "${POSTGRES_PASSWORD:-}" ]] || die "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
    [[ -r "${POSTGRES_PASSWORD_FILE}" ]] || die "POSTGRES_PASSWORD_FILE ${POSTGRES_PASSWORD_FILE} is not readable"
    POSTGRES_PASSWORD="$(<"${POSTGRES_PASSWORD_FILE}")"
  fi
  : "${POSTGRES_PASSWORD:=}"
}

# As root: own the data and socket directories, then run as postgres.
drop_privileges() {
  mkdir -p "${PGDATA}" /var/run/postgresql
  chown postgres:postgres "${PGDATA}" /var/run/postgresql
  chmod 0700 "${PGDATA}"
  chmod 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
}

initialize() {
  read_password
  if [[ -z "${POSTGRES_PASSWORD}" && "${POSTGRES_HOST_AUTH_METHOD}" != trust ]]; then
    die "the database is uninitialized and no password is set: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one"
  fi
  log "initializing ${PGDATA} (user ${POSTGRES_USER}, database ${POSTGRES_DB})"
  mkdir -p "${PGDATA}"
  chmod 0700 "${PGDATA}"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words
  initdb --pgdata="${PGDATA}" --username="${POSTGRES_USER}" \
    --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD}") \
    --auth-local=trust --auth-host="${POSTGRES_HOST_AUTH_METHOD}" \
    --encoding=UTF8 ${POSTGRES_INITDB_ARGS} >&2
  printf '\n# Added by the entrypoint: clients from anywhere, with a password.\nhost all all all %s\n' \
    "${POSTGRES_HOST_AUTH_METHOD}" >>"${PGDATA}/pg_hba.conf"
  printf "\n# Added by the entrypoint.\nlisten_addresses = '*'\n" >>"${PGDATA}/postgresql.conf"

  # A private server on the socket only, for the set-up steps.
  pg_ctl --pgdata="${PGDATA}" --wait --silent \
    --options="-c listen_addresses='' -p 5432" start >&2
  local psql=(psql --no-psqlrc --set ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --no-password)
  if [[ "${POSTGRES_DB}" != postgres ]]; then
    "${psql[@]}" --dbname postgres --set db="${POSTGRES_DB}" >/dev/null <<<'CREATE DATABASE :"db";'
  fi
  local script
  for script in /docker-entrypoint-initdb.d/*; do
    case "${script}" in
      *.sh) log "running ${script}"; bash "${script}" ;;
      *.sql) log "running ${script}"; "${psql[@]}" --dbname "${POSTGRES_DB}" --file "${script}" >/dev/null ;;
      *) [[ -e "${script}" ]] && log "ignoring ${script}" ;;
    esac
  done
  pg_ctl --pgdata="${PGDATA}" --wait --silent --mode=fast stop >&2
  log "initialized; starting PostgreSQL"
}

main() {
  # `docker run IMAGE -c key=value` passes server options.
  if [[ "${1:-}" == -* ]]; then
    set -- postgres "$@"
  fi
  if [[ "${1:-}" != postgres ]]; then
    exec "$@"
  fi
  if [[ "$(id -u)" == 0 ]]; then
    drop_privileges "$@"
  fi
  if [[ ! -s "${PGDATA}/PG_VERSION" ]]; then
    initialize
  fi
  unset POSTGRES_PASSWORD
  exec "$@"
}

main "$@"
