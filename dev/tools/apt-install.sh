# Sourced by the dev build scripts: installs the Debian packages named in the array `need` (the
# caller fills it with what is missing), or fails saying what to install. Needs the caller's
# `log` and `fail` functions; apt's output is shown only when it fails.
install_needed_packages() {
  ((${#need[@]} > 0)) || return 0
  [[ "$(id -u)" == 0 ]] || fail "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root"
  command -v apt-get >/dev/null || fail "missing ${need[*]} and no apt-get to install them with"
  log "installing ${need[*]}"
  local apt_log
  apt_log="$(mktemp)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
    >"${apt_log}" 2>&1 || { tail -20 "${apt_log}" >&2; fail "apt-get install ${need[*]} failed"; }
  rm -f "${apt_log}"
}
