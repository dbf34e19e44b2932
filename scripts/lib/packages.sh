# Sourced by the scripts: need_pkg COMMAND PACKAGE makes sure COMMAND exists. It installs PACKAGE with
# apt-get only when asked to (JVMM_INSTALL=1, which --install sets, or CI=true) and running as root;
# otherwise it stops with one line naming the package. Callers define die().
need_pkg() {
  command -v "$1" >/dev/null && return 0
  { [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; } && return 0
  if [ "${JVMM_INSTALL:-0}" = 1 ] || [ "${CI:-}" = true ]; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "$1 is missing and cannot be installed here: install $2 (as root, with apt-get)"
    echo "${prog:-jvmm}: installing $2 ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null 2>&1; } ||
      die "apt-get install $2 failed"
  else
    die "$1 is missing: install it with 'apt-get install $2' (or run with --install as root)"
  fi
}
