#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy, pinned by version, into a cache
# outside the repository. A second run with the same versions is instant.
#
#   dev/control-plane/build.sh            # prints the directory holding both binaries
#
# Env: GPUDIAG_CACHE_DIR (default ~/.cache/gpudiag), KUBERNETES_VERSION, ETCD_VERSION.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.33.13}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_DIR="${GPUDIAG_CACHE_DIR:-${HOME}/.cache/gpudiag}"
OUT_DIR="${CACHE_DIR}/control-plane/k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}"

log() { printf 'build-control-plane: %s\n' "$*" >&2; }

if [[ -x "${OUT_DIR}/kube-apiserver" && -x "${OUT_DIR}/etcd" ]]; then
  echo "${OUT_DIR}"
  exit 0
fi

command -v go >/dev/null || { log "the Go toolchain is required (go not found on PATH)"; exit 1; }
mkdir -p "${OUT_DIR}"
WORK="$(mktemp -d "${CACHE_DIR}/build.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

build_apiserver() {
  local dir="${WORK}/kube-apiserver" minor
  mkdir -p "${dir}"
  minor="v0.${KUBERNETES_VERSION#v1.}"
  # k8s.io/kubernetes replaces its staging modules with local paths; mirror those replaces
  # with the published v0.X.Y modules so the main module builds from the proxy.
  local gomod
  gomod="$(cd "${dir}" && go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "${gomod}" ]] || { log "could not fetch k8s.io/kubernetes@${KUBERNETES_VERSION} go.mod"; exit 1; }
  {
    echo "module gpudiag.local/kube-apiserver"
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
  cat >"${dir}/main.go" <<'GO'
package main

import _ "k8s.io/kubernetes/cmd/kube-apiserver"

func main() {}
GO
  # Stamp the version kubectl and clients see (a module build has no git metadata).
  local major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
  local minor_num="${KUBERNETES_VERSION#v*.}"; minor_num="${minor_num%%.*}"
  local pkg=k8s.io/component-base/version
  local version_flags="-X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor_num} -X ${pkg}.gitTreeState=clean"
  # Build the command package itself; the blank import above only anchors the dependency.
  (cd "${dir}" && go mod tidy >/dev/null 2>&1 || true)
  (cd "${dir}" && go get "k8s.io/kubernetes/cmd/kube-apiserver@${KUBERNETES_VERSION}" >&2 \
    && go build -trimpath -ldflags "-s -w ${version_flags}" -o "${OUT_DIR}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "${OUT_DIR}/kube-apiserver.tmp" "${OUT_DIR}/kube-apiserver"
}

build_etcd() {
  local dir="${WORK}/etcd"
  mkdir -p "${dir}"
  cat >"${dir}/go.mod" <<GOMOD
module gpudiag.local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
GOMOD
  cat >"${dir}/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "${dir}" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w" -o "${OUT_DIR}/etcd.tmp" .)
  mv "${OUT_DIR}/etcd.tmp" "${OUT_DIR}/etcd"
}

log "building etcd ${ETCD_VERSION} and kube-apiserver ${KUBERNETES_VERSION} into ${OUT_DIR} (cold build: several minutes)"
[[ -x "${OUT_DIR}/etcd" ]] || build_etcd
[[ -x "${OUT_DIR}/kube-apiserver" ]] || build_apiserver
echo "${OUT_DIR}"
