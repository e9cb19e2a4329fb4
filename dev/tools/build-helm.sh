#!/usr/bin/env bash
# Builds helm from the Go module proxy, pinned by version, into a cache outside the repository
# (used by the chart render tests). A second run with the same version is instant.
#
#   dev/tools/build-helm.sh     # prints the path of the helm binary
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.19.5}"
CACHE_DIR="${GPUDIAG_CACHE_DIR:-${HOME}/.cache/gpudiag}"
OUT="${CACHE_DIR}/helm/${HELM_VERSION}/helm"

if [[ -x "${OUT}" ]]; then
  echo "${OUT}"
  exit 0
fi
command -v go >/dev/null || { echo "build-helm: the Go toolchain is required" >&2; exit 1; }
echo "build-helm: building helm ${HELM_VERSION} into ${OUT}" >&2
mkdir -p "$(dirname "${OUT}")"
GOBIN="$(dirname "${OUT}")/bin.tmp" CGO_ENABLED=0 GOFLAGS="-buildvcs=false" \
  go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
mv "$(dirname "${OUT}")/bin.tmp/helm" "${OUT}"
rmdir "$(dirname "${OUT}")/bin.tmp"
echo "${OUT}"
