#!/bin/sh
# An OCI runtime in front of runc for hosts whose capability bounding set
# lacks CAP_SYS_RESOURCE (some VMs). Docker and containerd grant privileged
# containers every capability they know of; runc then fails with "unable to
# apply caps: operation not permitted". This wrapper deletes CAP_SYS_RESOURCE
# from the capability lists runc is given, then runs the real runc:
#   - `create` / `run`: the bundle's config.json (--bundle, default: cwd),
#   - `exec`: the --process file (docker exec, kubectl exec).
# Installed only where a plain privileged container fails (see
# hack/ensure-docker.sh); REAL_RUNC is filled in at install time.
set -eu

REAL_RUNC="@REAL_RUNC@"

strip_caps() {
  [ -f "$1" ] || return 0
  grep -q CAP_SYS_RESOURCE "$1" || return 0
  tmp="$1.drop-sys-resource.$$"
  jq -c 'walk(if type == "array" then map(select(. != "CAP_SYS_RESOURCE")) else . end)' \
    "$1" >"${tmp}"
  mv "${tmp}" "$1"
}

# Find the subcommand after runc's global options, then its file argument.
cmd=""
bundle=""
process=""
want=""
for arg in "$@"; do
  if [ -n "${want}" ]; then
    eval "${want}=\${arg}"
    want=""
    continue
  fi
  if [ -z "${cmd}" ]; then
    case "${arg}" in
      --root | --log | --log-format | --criu | --rootless) want=skip ;;
      -*) ;;
      *) cmd="${arg}" ;;
    esac
    continue
  fi
  case "${cmd}:${arg}" in
    create:--bundle | create:-b | run:--bundle | run:-b) want=bundle ;;
    create:--bundle=* | run:--bundle=*) bundle="${arg#--bundle=}" ;;
    exec:--process | exec:-p) want=process ;;
    exec:--process=*) process="${arg#--process=}" ;;
  esac
done

case "${cmd}" in
  create | run) strip_caps "${bundle:-.}/config.json" ;;
  exec) [ -z "${process}" ] || strip_caps "${process}" ;;
esac

exec "${REAL_RUNC}" "$@"
