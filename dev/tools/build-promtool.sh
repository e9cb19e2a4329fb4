#!/usr/bin/env bash
# Builds promtool from the Go module proxy, pinned by version, into a cache outside the repository
# (used by the alerting-rule tests: `promtool check rules` and `promtool test rules`). A second run
# with the same version is instant.
#
#   dev/tools/build-promtool.sh     # prints the path of the promtool binary
set -euo pipefail

PROMTOOL_VERSION="${PROMTOOL_VERSION:-v0.316.0}"
CACHE_DIR="${GPUDIAG_CACHE_DIR:-${HOME}/.cache/gpudiag}"
OUT="${CACHE_DIR}/promtool/${PROMTOOL_VERSION}/promtool"

if [[ -x "${OUT}" ]]; then
  echo "${OUT}"
  exit 0
fi
command -v go >/dev/null || { echo "build-promtool: the Go toolchain is required" >&2; exit 1; }
echo "build-promtool: building promtool ${PROMTOOL_VERSION} into ${OUT}" >&2
mkdir -p "$(dirname "${OUT}")"
GOBIN="$(dirname "${OUT}")/bin.tmp" CGO_ENABLED=0 GOFLAGS="-buildvcs=false" \
  go install -trimpath -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@${PROMTOOL_VERSION}" >&2
mv "$(dirname "${OUT}")/bin.tmp/promtool" "${OUT}"
rmdir "$(dirname "${OUT}")/bin.tmp"
echo "${OUT}"
