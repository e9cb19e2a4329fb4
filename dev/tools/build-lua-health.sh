#!/usr/bin/env bash
# Builds the Argo CD health-check runner (dev/tools/lua-health: gopher-lua, what Argo CD embeds)
# from the Go module proxy into a cache outside the repository, keyed by a hash of the runner's
# sources and pinned versions (go.mod, go.sum) and the Go version. A second run is instant.
#
#   dev/tools/build-lua-health.sh           # prints the path of the lua-health binary
#   dev/tools/build-lua-health.sh --check   # prints it only if it is built (tests never build)
set -euo pipefail

SRC="$(cd "$(dirname "$0")/lua-health" && pwd)"
CACHE_DIR="${GPUDIAG_CACHE_DIR:-${HOME}/.cache/gpudiag}"
command -v go >/dev/null || { echo "build-lua-health: the Go toolchain is required" >&2; exit 1; }
KEY="$( (cd "${SRC}" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -c1-16)"
OUT="${CACHE_DIR}/lua-health/${KEY}/lua-health"

if [[ -x "${OUT}" ]]; then
  echo "${OUT}"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  echo "build-lua-health: ${OUT} is not built; run bash dev/tools/build-lua-health.sh" >&2
  exit 1
fi
echo "build-lua-health: building ${OUT}" >&2
mkdir -p "$(dirname "${OUT}")"
# go.sum pins every module: -mod=readonly refuses to build rather than resolve anything anew.
(cd "${SRC}" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
  go build -trimpath -ldflags "-s -w" -o "${OUT}.tmp" .) >&2
mv "${OUT}.tmp" "${OUT}"
echo "${OUT}"
