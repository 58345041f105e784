#!/usr/bin/env bash
# Assembles the kind node image ($NODE_IMAGE) offline, the way `kind build
# node-image` does, minus its registry pulls (it fetches every image that is
# not inside the Kubernetes tarballs, which fails with no registry):
#   1. start the base image with `sleep infinity`;
#   2. copy kubeadm, kubelet, kubectl into /usr/bin; write /kind/version;
#   3. write /kind/manifests/default-cni.yaml and default-storage.yaml from
#      kind's own const_cni.go / const_storage.go (module cache), template
#      markers kept, so kind treats them exactly like its own;
#   4. run containerd inside and `ctr images import` the component images
#      (pinned, not unpacked, as kind does);
#   5. `docker commit` with kind's ENTRYPOINT.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_BIN="${VIDEO_INGEST_CACHE}/kubernetes/${KUBERNETES_VERSION}/bin"
BUILD_CONTAINER="video-ingest-node-build"

# kind's manifest constants, read from kind's source at KIND_VERSION:
# node::kind_manifest FILE CONST prints the raw-string constant CONST of
# FILE with every `` ` + name + ` `` replaced by that string constant's value.
node::kind_manifest() {
  local file="$1" const="$2"
  awk -v const="${const}" '
    # string constants: const name = "value"
    match($0, /^const [A-Za-z0-9_]+ = "[^"]*"/) {
      split($0, parts, " ")
      value = $0
      sub(/^[^"]*"/, "", value)
      sub(/".*$/, "", value)
      strings[parts[2]] = value
    }
    inside && $0 == "`" { exit }
    inside {
      line = $0
      for (name in strings) {
        gsub("` \\+ " name " \\+ `", strings[name], line)
      }
      if (line ~ /` \+ /) { print "unresolved constant in: " line > "/dev/stderr"; exit 1 }
      print line
    }
    $0 == "const " const " = `" { inside = 1 }
  ' "${file}"
}

# The images kind's manifests name must be the ones we built.
node::check_manifest_images() {
  local manifest="$1" image
  for image in $(sed -n 's/^[[:space:]]*\(- \)\{0,1\}image: //p; s/^[[:space:]]*- \(docker\.io\/[^[:space:]]*\)$/\1/p' <<<"${manifest}" | sort -u); do
    case " ${KINDNETD_IMAGE} ${LOCAL_PATH_PROVISIONER_IMAGE} ${LOCAL_PATH_HELPER_IMAGE} " in
      *" ${image} "*) ;;
      *) vi::die "kind ${KIND_VERSION} manifests use ${image}; update hack/versions.env" ;;
    esac
  done
}

node::exec() {
  docker exec "${BUILD_CONTAINER}" "$@"
}

# node::exec_stdin CMD...: node::exec with this script's stdin passed on.
node::exec_stdin() {
  docker exec -i "${BUILD_CONTAINER}" "$@"
}

node::write_file() {
  node::exec mkdir -p "$(dirname "$1")"
  node::exec_stdin sh -c "cat >'$1'"
}

node::cleanup() {
  docker rm -f -v "${BUILD_CONTAINER}" >/dev/null 2>&1 || true
}

node::assemble() {
  local kind_dir cni storage bin images_tar wanted
  kind_dir="$(vi::go::module_dir sigs.k8s.io/kind "${KIND_VERSION}")"
  cni="$(node::kind_manifest "${kind_dir}/pkg/build/nodeimage/const_cni.go" defaultCNIManifest)"
  storage="$(node::kind_manifest "${kind_dir}/pkg/build/nodeimage/const_storage.go" defaultStorageManifest)"
  [[ "${cni}" == *"would you kindly template this file"* ]] || vi::die "could not read kind's default CNI manifest"
  [[ "${storage}" == *"rancher.io/local-path"* ]] || vi::die "could not read kind's default storage manifest"
  node::check_manifest_images "${cni}"
  node::check_manifest_images "${storage}"
  images_tar="$(ls "${VI_IMAGE_CACHE}"/component-images-????????????????.tar)"

  node::cleanup
  trap node::cleanup EXIT
  docker run -d --name "${BUILD_CONTAINER}" --entrypoint=sleep \
    --security-opt seccomp=unconfined "${BASE_IMAGE}" infinity >/dev/null

  for bin in kubeadm kubelet kubectl; do
    docker cp "${KUBE_BIN}/${bin}" "${BUILD_CONTAINER}:/usr/bin/${bin}"
    node::exec chown root:root "/usr/bin/${bin}"
    node::exec chmod 0755 "/usr/bin/${bin}"
  done
  printf '%s' "${KUBERNETES_VERSION}" | node::write_file /kind/version
  printf '%s\n' "${cni}" | node::write_file /kind/manifests/default-cni.yaml
  printf '%s\n' "${storage}" | node::write_file /kind/manifests/default-storage.yaml

  vi::log "importing the component images into the node's containerd"
  node::exec bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
  node::exec bash -c 'for i in $(seq 1 30); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; cat /var/log/containerd-build.log; exit 1'
  # docker save archives hold one platform per image: --all-platforms makes
  # ctr take it whatever it is; --no-unpack leaves unpacking to the CRI.
  node::exec_stdin ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - <"${images_tar}" >/dev/null
  node::exec ctr --namespace=k8s.io images rm "docker.io/${COMPONENT_BASE_IMAGE}" >/dev/null 2>&1 || true

  wanted="$(node::exec kubeadm config images list --kubernetes-version "${KUBERNETES_VERSION}" | grep -v /pause:)"
  wanted+=" registry.k8s.io/pause:${PAUSE_IMAGE_TAG} ${KINDNETD_IMAGE} ${LOCAL_PATH_PROVISIONER_IMAGE} ${LOCAL_PATH_HELPER_IMAGE}"
  local have image
  have="$(node::exec ctr --namespace=k8s.io images list -q)"
  for image in ${wanted}; do
    # containerd names Docker Hub images in full (docker.io/...).
    [[ "${image%%/*}" == *.* ]] || image="docker.io/${image}"
    grep -qxF "${image}" <<<"${have}" || vi::die "${image} missing from the node image (have: ${have//$'\n'/ })"
  done
  node::exec grep -q "sandbox_image = \"registry.k8s.io/pause:${PAUSE_IMAGE_TAG}\"" /etc/containerd/config.toml \
    || vi::die "the base image's containerd sandbox_image is not registry.k8s.io/pause:${PAUSE_IMAGE_TAG}"

  # Stop containerd cleanly (its metadata database is closed on exit). PID 1
  # here is `sleep`, which reaps nobody: an exited containerd stays a zombie.
  node::exec bash -c 'pkill containerd
    for i in $(seq 1 30); do ps -C containerd -o stat= | grep -qv "^Z" || exit 0; sleep 1; done
    echo "containerd did not stop" >&2; exit 1'
  node::exec rm -f /var/log/containerd-build.log
  docker commit \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change "LABEL ${VI_KEY_LABEL}=${KEY}" \
    "${BUILD_CONTAINER}" "${NODE_IMAGE}" >/dev/null
  node::cleanup
  trap - EXIT
}

main() {
  "${VI_HACK}/build-kube-binaries.sh"
  "${VI_HACK}/build-base-image.sh"
  "${VI_HACK}/build-component-images.sh"
  # Inputs: the base image and the component set (their keys), the binaries.
  KEY="$(vi::key::of "$(vi::image::key "${BASE_IMAGE}")" \
    "$(basename "$(ls "${VI_IMAGE_CACHE}"/component-images-????????????????.tar)")" \
    "$(cat "${VI_STAMPS}/kube-binaries")" "${KIND_VERSION}" "${BASH_SOURCE[0]}")"
  if vi::image::restore kind-node "${KEY}" "${NODE_IMAGE}"; then
    vi::log "${NODE_IMAGE} is current"
    return 0
  fi
  vi::log "assembling ${NODE_IMAGE}"
  node::assemble
  vi::image::save kind-node "${KEY}" "${NODE_IMAGE}"
  vi::log "built ${NODE_IMAGE} ($(docker image inspect -f '{{.Size}}' "${NODE_IMAGE}" | numfmt --to=iec))"
}

main "$@"
