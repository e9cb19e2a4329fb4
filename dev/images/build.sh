#!/usr/bin/env bash
# Builds the agent and operator images with Buildah on a machine that cannot reach Docker Hub:
# the Node 20 base is assembled from Debian packages (mmdebstrap) and cached by recipe, then
# Dockerfile.agent and Dockerfile.operator build on it and land as OCI archives, the format
# `ctr -n k8s.io images import` loads.
#
#   dev/images/build.sh                # prints the directory holding the two archives
#   dev/images/build.sh --smoke-tools  # also installs what test/images needs (podman, runc)
#
# Env: GPUDIAG_CACHE_DIR (default ~/.cache/gpudiag), GPUDIAG_DEBIAN_SUITE (default trixie: its
# nodejs is 20.19; bookworm's is 18, older than package.json's engines), GPUDIAG_IMAGE_TAG
# (default the package version), GPUDIAG_BUILD_CA (CA bundle handed to the build as a secret;
# default /etc/ssl/certs/ca-certificates.crt when it exists), NPM_CONFIG_REGISTRY (default
# `npm config get registry`). Needs root (mmdebstrap and buildah's storage).
set -euo pipefail
# The whole script is one block, read before it runs: editing it (or a checkout) mid-build does
# not make bash read the rest from shifted offsets.
{
cd "$(dirname "$0")/../.."

SUITE="${GPUDIAG_DEBIAN_SUITE:-trixie}"
NODE_MAJOR=20
CACHE_DIR="${GPUDIAG_CACHE_DIR:-${HOME}/.cache/gpudiag}/images"
TAG="${GPUDIAG_IMAGE_TAG:-$(node -p "require('./package.json').version")}"
# The chart's default repositories: with the images in the node's store, `helm install` needs no
# image values (pullPolicy IfNotPresent never pulls an image that is present).
AGENT_IMAGE="ghcr.io/gpudiag/agent:${TAG}"
OPERATOR_IMAGE="ghcr.io/gpudiag/operator:${TAG}"

log() { printf 'build-images [%3ds]: %s\n' "${SECONDS}" "$*" >&2; }
fail() { log "$*"; exit 1; }

# --- tools -------------------------------------------------------------------------------------
# Installed only when missing. Running as root, containers-storage uses the kernel's overlay
# driver directly (`buildah info`: Native Overlay Diff true), so neither uidmap nor fuse-overlayfs
# is needed; they matter only for rootless builds.
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [[ "${1:-}" == --smoke-tools ]]; then
  command -v podman >/dev/null || need+=(podman)
  command -v runc >/dev/null || need+=(runc)
fi
# shellcheck source=dev/tools/apt-install.sh
source dev/tools/apt-install.sh
install_needed_packages
[[ "$(id -u)" == 0 ]] || fail "run as root: mmdebstrap needs it, and the archives are built from root's containers-storage"

mkdir -p "${CACHE_DIR}"
# One build at a time per cache (parallel test workers may all ask for the images).
exec 9>"${CACHE_DIR}/.lock"
flock 9

# RUN steps use chroot isolation: this VM has hybrid cgroups (v1 with a v2 mount), and crun, the
# OCI runtime buildah picks on Debian 12, refuses to start any container with "cgroups in hybrid
# mode not supported, drop all controllers from cgroupv2". A build needs no cgroup, so chroot is
# enough everywhere; Docker and Podman users build the Dockerfiles their usual way instead.
ISOLATION=chroot

# --- the base, from Debian packages ------------------------------------------------------------
# Two images from one suite: the runtime base (nodejs, CA certificates; no docs, manuals or
# locales) and the build base, which adds npm (and with it python3 and 340 node-* packages the
# runtime does not need).
DPKG_OPTS=(
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
)
RUNTIME_PACKAGES=nodejs,ca-certificates
BUILD_PACKAGES=nodejs,npm,ca-certificates
# The cache key covers everything that shapes the bases: suite, Node major, packages, dpkg options
# and this recipe's revision. The exact Node version is read from the result and recorded.
RECIPE_REVISION=1
key="$(printf '%s\n' "${SUITE}" "${NODE_MAJOR}" "${RUNTIME_PACKAGES}" "${BUILD_PACKAGES}" "${DPKG_OPTS[*]}" "${RECIPE_REVISION}" \
  | sha256sum | cut -c1-12)"
BASE_TAG="${SUITE}-node${NODE_MAJOR}-${key}"
BASE_DIR="${CACHE_DIR}/base/${BASE_TAG}"
RUNTIME_BASE="localhost/gpudiag-base:${BASE_TAG}"
BUILD_BASE="localhost/gpudiag-base-build:${BASE_TAG}"

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

bootstrap() { # <packages> <tarball>
  local tmp="$2.tmp.tar"
  rm -f "${tmp}"
  mmdebstrap --quiet --variant=minbase --include="$1" "${DPKG_OPTS[@]}" "${SUITE}" "${tmp}" >&2
  mv "${tmp}" "$2"
}

import_base() { # <tarball> <image>
  local ctr
  ctr="$(buildah from scratch)"
  buildah add --quiet "${ctr}" "$1" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["node"]' --label "org.opencontainers.image.description=Node ${NODE_MAJOR} from Debian ${SUITE} packages (gpudiag dev/images/build.sh)" \
    "${ctr}"
  buildah commit --quiet --rm "${ctr}" "$2" >/dev/null
}

if have_image "${RUNTIME_BASE}" && have_image "${BUILD_BASE}"; then
  log "base ${BASE_TAG}: cached ($(cat "${BASE_DIR}/node-version" 2>/dev/null || echo 'node version not recorded'))"
else
  mkdir -p "${BASE_DIR}"
  if [[ ! -f "${BASE_DIR}/runtime.tar" || ! -f "${BASE_DIR}/build.tar" ]]; then
    log "base ${BASE_TAG}: mmdebstrap ${SUITE} (two roots in parallel, about a minute)"
    bootstrap "${RUNTIME_PACKAGES}" "${BASE_DIR}/runtime.tar" & runtime_pid=$!
    bootstrap "${BUILD_PACKAGES}" "${BASE_DIR}/build.tar" & build_pid=$!
    wait "${runtime_pid}" || fail "mmdebstrap of the runtime base failed (see above)"
    wait "${build_pid}" || fail "mmdebstrap of the build base failed (see above)"
  fi
  log "base ${BASE_TAG}: importing into containers-storage"
  import_base "${BASE_DIR}/runtime.tar" "${RUNTIME_BASE}"
  import_base "${BASE_DIR}/build.tar" "${BUILD_BASE}"
  ctr="$(buildah from "${RUNTIME_BASE}")"
  node_version="$(chroot "$(buildah mount "${ctr}")" node --version)"
  buildah umount "${ctr}" >/dev/null
  buildah rm "${ctr}" >/dev/null
  node -e "
    const [maj, min] = process.argv[1].slice(1).split('.').map(Number);
    const want = require('./package.json').engines.node.match(/^>=(\d+)\.(\d+)/).slice(1).map(Number);
    if (maj !== ${NODE_MAJOR} || min < want[1]) { console.error('build-images: Debian ${SUITE} has node ' + process.argv[1] + ', outside engines ' + require('./package.json').engines.node); process.exit(1); }
  " "${node_version}" || { buildah rmi "${RUNTIME_BASE}" "${BUILD_BASE}" >/dev/null; exit 1; }
  echo "${node_version}" >"${BASE_DIR}/node-version"
  log "base ${BASE_TAG}: node ${node_version}"
fi

# --- the images --------------------------------------------------------------------------------
OUT_DIR="${CACHE_DIR}/archives"
mkdir -p "${OUT_DIR}"
registry="${NPM_CONFIG_REGISTRY:-$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)}"
ca="${GPUDIAG_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"
secret=()
[[ -s "${ca}" ]] && secret=(--secret "id=ca,src=${ca}")

# What an image is built from: the Dockerfile, every context path it COPYs (read from the
# Dockerfile itself, so a new COPY is covered), the bases and the build settings. Unchanged
# inputs skip even a fully cached `buildah build` (about 7 s each here).
inputs_hash() { # <dockerfile> <image>
  local sources
  mapfile -t sources < <(awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; i++) print $i }' "$1")
  {
    printf '%s\n' "$2" "${registry}" "${ISOLATION}" "$(sha256sum <"$0")"
    buildah inspect --type image --format '{{.FromImageID}}' "${RUNTIME_BASE}"
    buildah inspect --type image --format '{{.FromImageID}}' "${BUILD_BASE}"
    find "$1" .dockerignore "${sources[@]}" -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-64
}

build_image() { # <dockerfile> <image> <archive name>
  local archive="${OUT_DIR}/$3.oci.tar" id inputs
  inputs="$(inputs_hash "$1" "$2")"
  if [[ -f "${archive}" && "$(cat "${archive}.inputs" 2>/dev/null)" == "${inputs}" ]] && have_image "$2"; then
    log "$2: ${archive} is current (inputs unchanged)"
    return
  fi
  log "$2: buildah build -f $1"
  # --layers: an unchanged step is reused, and the two Dockerfiles' identical build stages share
  # their layers, so the second image and every warm run compile nothing.
  buildah build --quiet --isolation "${ISOLATION}" --layers \
    --build-arg "BASE=${RUNTIME_BASE}" --build-arg "BUILD_BASE=${BUILD_BASE}" \
    --build-arg "NPM_CONFIG_REGISTRY=${registry}" "${secret[@]}" \
    -f "$1" -t "$2" . >/dev/null || fail "building $2 from $1 failed (see above)"
  id="$(buildah inspect --type image --format '{{.FromImageID}}' "$2")"
  if [[ -f "${archive}" && "$(cat "${archive}.id" 2>/dev/null)" == "${id}" ]]; then
    log "$2: ${archive} is current (same image)"
    echo "${inputs}" >"${archive}.inputs"
    return
  fi
  rm -f "${archive}.tmp"
  buildah push --quiet "$2" "oci-archive:${archive}.tmp:$2" >&2 || fail "writing ${archive} failed"
  mv "${archive}.tmp" "${archive}"
  echo "${id}" >"${archive}.id"
  echo "${inputs}" >"${archive}.inputs"
}

build_image Dockerfile.agent "${AGENT_IMAGE}" agent
build_image Dockerfile.operator "${OPERATOR_IMAGE}" operator

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
log "sizes (archive: gzip-compressed layers, as a registry or ctr import moves them; image: unpacked)"
for row in "agent ${AGENT_IMAGE}" "operator ${OPERATOR_IMAGE}" "- ${RUNTIME_BASE}"; do
  read -r name image <<<"${row}"
  unpacked="$(buildah images --format '{{.Size}}' "${image}" | head -1)"
  if [[ "${name}" == - ]]; then
    log "$(printf '  %-34s %-10s image %s' "${image}" '' "${unpacked}")"
  else
    log "$(printf '  %-34s archive %s, image %s' "${image}" "$(mb "$(stat -c %s "${OUT_DIR}/${name}.oci.tar")")" "${unpacked}")"
  fi
done
echo "${OUT_DIR}"
exit 0
}
