#!/usr/bin/env bash
# Builds the node's Kubernetes binaries (kubelet, kube-controller-manager, kube-scheduler,
# kube-proxy) from the Go module proxy at the control plane's Kubernetes version, into a cache
# outside the repository, and installs the Debian packages the node runs on (containerd, runc, the
# CNI plugins, iptables, conntrack) when they are missing. A second run is instant.
#
#   dev/real-node/build.sh            # prints the directory holding the four binaries
#
# The same directory holds pause.oci.tar, the pod sandbox image: the node pulls nothing, so the
# sandbox image must be local too. It is one static Go program (sleeps, exits 0 on SIGTERM or
# SIGINT) in an image made from scratch with Buildah.
#
# Env: GPUDIAG_CACHE_DIR (default ~/.cache/gpudiag), KUBERNETES_VERSION (default: the one
# dev/control-plane/build.sh pins, so the node always matches its API server).
set -euo pipefail
{
HERE="$(cd "$(dirname "$0")" && pwd)"
DEFAULT_VERSION="$(sed -n 's/^KUBERNETES_VERSION="\${KUBERNETES_VERSION:-\(v[0-9.]*\)}"$/\1/p' "${HERE}/../control-plane/build.sh")"
[[ -n "${DEFAULT_VERSION}" ]] || { echo "build-real-node: no KUBERNETES_VERSION default in dev/control-plane/build.sh" >&2; exit 1; }
KUBERNETES_VERSION="${KUBERNETES_VERSION:-${DEFAULT_VERSION}}"
CACHE_DIR="${GPUDIAG_CACHE_DIR:-${HOME}/.cache/gpudiag}"
OUT_DIR="${CACHE_DIR}/real-node/k8s-${KUBERNETES_VERSION}"
COMMANDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

log() { printf 'build-real-node: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

# --- Debian packages ---------------------------------------------------------------------------
# containerd (CRI v1) with runc; bridge, host-local, portmap and loopback from
# containernetworking-plugins (/usr/lib/cni); iptables for kube-proxy and the bridge's masquerade;
# conntrack, which kube-proxy calls to flush stale UDP entries.
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v buildah >/dev/null || need+=(buildah)
# shellcheck source=dev/tools/apt-install.sh
source "${HERE}/../tools/apt-install.sh"
install_needed_packages

# --- the binaries ------------------------------------------------------------------------------
missing=()
for c in "${COMMANDS[@]}"; do [[ -x "${OUT_DIR}/${c}" ]] || missing+=("${c}"); done
PAUSE_REVISION=1
PAUSE_IMAGE="localhost/gpudiag-pause:${PAUSE_REVISION}"
PAUSE_ARCHIVE="${OUT_DIR}/pause-${PAUSE_REVISION}.oci.tar"
if ((${#missing[@]} == 0)) && [[ -f "${PAUSE_ARCHIVE}" ]]; then
  echo "${OUT_DIR}"
  exit 0
fi

command -v go >/dev/null || fail "the Go toolchain is required (go not found on PATH)"
mkdir -p "${OUT_DIR}"
exec 9>"${OUT_DIR}/.lock"
flock 9
WORK="$(mktemp -d "${CACHE_DIR}/build.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

build_kubernetes() {
  # The same wrapper module as dev/control-plane/build.sh: k8s.io/kubernetes replaces its staging
  # modules with local paths, so the wrapper replaces each with the published v0.X.Y module.
  local dir="${WORK}/kubernetes" minor gomod major minor_num pkg version_flags c start
  mkdir -p "${dir}"
  minor="v0.${KUBERNETES_VERSION#v1.}"
  gomod="$(cd "${dir}" && go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "${gomod}" ]] || fail "could not fetch k8s.io/kubernetes@${KUBERNETES_VERSION} go.mod"
  {
    echo "module gpudiag.local/real-node"
    echo
    grep -E '^go [0-9]' "${gomod}" | head -1
    echo
    echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
    echo
    echo "replace ("
    grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "${gomod}" \
      | awk -v v="${minor}" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >"${dir}/go.mod"
  {
    echo "package main"
    echo
    for c in "${missing[@]}"; do echo "import _ \"k8s.io/kubernetes/cmd/${c}\""; done
    echo
    echo "func main() {}"
  } >"${dir}/main.go"
  # Stamp the version the API server shows for the node (a module build has no git metadata).
  major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
  minor_num="${KUBERNETES_VERSION#v*.}"; minor_num="${minor_num%%.*}"
  pkg=k8s.io/component-base/version
  version_flags="-X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor_num} -X ${pkg}.gitTreeState=clean"
  log "building ${missing[*]} ${KUBERNETES_VERSION} into ${OUT_DIR} (cold: several minutes on 2 cores)"
  (cd "${dir}" && go mod tidy >/dev/null 2>&1 || true)
  for c in "${missing[@]}"; do
    start=${SECONDS}
    (cd "${dir}" && go get "k8s.io/kubernetes/cmd/${c}@${KUBERNETES_VERSION}" >&2 \
      && go build -trimpath -ldflags "-s -w ${version_flags}" -o "${OUT_DIR}/${c}.tmp" "k8s.io/kubernetes/cmd/${c}") \
      || fail "building ${c} failed (see above)"
    mv "${OUT_DIR}/${c}.tmp" "${OUT_DIR}/${c}"
    log "${c}: $((SECONDS - start)) s"
  done
}

build_pause() {
  local dir="${WORK}/pause" ctr
  mkdir -p "${dir}"
  cat >"${dir}/go.mod" <<'GOMOD'
module gpudiag.local/pause

go 1.22
GOMOD
  cat >"${dir}/main.go" <<'GO'
// The pod sandbox: holds the pod's namespaces, sleeps, and exits 0 on SIGTERM or SIGINT.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
GO
  (cd "${dir}" && go build -trimpath -ldflags "-s -w" -o pause .) || fail "building the pause program failed"
  buildah rmi "${PAUSE_IMAGE}" >/dev/null 2>&1 || true
  ctr="$(buildah from scratch)"
  buildah copy --quiet "${ctr}" "${dir}/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --cmd '' --user 65535:65535 \
    --label "org.opencontainers.image.description=pod sandbox for the gpudiag dev node (dev/real-node/build.sh)" "${ctr}"
  buildah commit --quiet --rm "${ctr}" "${PAUSE_IMAGE}" >/dev/null
  rm -f "${PAUSE_ARCHIVE}.tmp"
  buildah push --quiet "${PAUSE_IMAGE}" "oci-archive:${PAUSE_ARCHIVE}.tmp:${PAUSE_IMAGE}" >&2 || fail "writing ${PAUSE_ARCHIVE} failed"
  mv "${PAUSE_ARCHIVE}.tmp" "${PAUSE_ARCHIVE}"
  log "${PAUSE_IMAGE}: ${PAUSE_ARCHIVE}"
}

((${#missing[@]} == 0)) || build_kubernetes
[[ -f "${PAUSE_ARCHIVE}" ]] || build_pause
echo "${OUT_DIR}"
exit 0
}
