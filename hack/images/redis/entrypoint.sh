#!/usr/bin/env bash
# Entrypoint of the Redis stand-in image (hack/build-redis-image.sh): Debian's
# redis-server behind the contract of the official redis image's entrypoint:
#
#   docker run IMAGE                      redis-server, port 6379 on every address
#   docker run IMAGE --save "" ...        redis-server with these options
#   docker run IMAGE /etc/my/redis.conf   redis-server with that config file
#   docker run IMAGE redis-cli ...        any other command, as it is
#
# Started as root it owns the working directory (/data) and re-executes itself
# as the redis user (UID/GID 999, as in the official image); started as that
# user (Kubernetes runAsUser) it runs directly. The official image compiles
# protected mode off, Debian's binary has it on: without a config file this
# entrypoint passes `--protected-mode no` first, so the caller's own
# `--protected-mode yes` (or a password, `--requirepass`) still wins.
set -o errexit -o nounset -o pipefail

main() {
  if [[ "${1:-}" == -* || "${1:-}" == *.conf ]]; then
    set -- redis-server "$@"
  fi
  if [[ "${1:-}" != redis-server ]]; then
    exec "$@"
  fi
  if [[ "$(id -u)" == 0 ]]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  shift
  case "${1:-}" in
    # Not options: redis-server reads these only as its first argument.
    -v | --version | -h | --help | --test-memory | --check-system) ;;
    "" | --*) set -- --protected-mode no "$@" ;;
  esac
  # What redis-server writes (RDB, AOF) is readable by its user only.
  if [[ "$(umask)" == 0022 ]]; then
    umask 0077
  fi
  exec redis-server "$@"
}

main "$@"
