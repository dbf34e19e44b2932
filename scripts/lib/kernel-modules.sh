# Sourced by scripts/nested-kvm: kernel modules in load order, dependencies first, from an unpacked
# kernel package ($kmods, with no modules.dep: each .ko names its dependencies in .modinfo); built-in
# ones (modules.builtin) skipped. add_module NAME appends to modfiles; needs $work and die().
declare -A seen=()
modfiles=()
modfile() { # NAME -> path of NAME.ko[.xz|.zst|.gz] in the package, or nothing
  local n=${1//-/_} f
  # -quit, not '| head': a find still writing when head exits dies of SIGPIPE, and pipefail makes that fatal
  f=$(find "$kmods/kernel" -type f \( -name "$n.ko*" -o -name "${n//_/-}.ko*" \) -print -quit)
  printf '%s' "$f"
}
modinfo_depends() { # FILE
  local tmp
  case $1 in
    *.ko) tmp=$1 ;;
    *.xz) tmp=$work/modinfo.ko; xz -dc "$1" >"$tmp" || die "cannot decompress $1 (install xz-utils)" ;;
    *.zst) tmp=$work/modinfo.ko; zstd -qdc "$1" >"$tmp" || die "cannot decompress $1 (install zstd)" ;;
    *.gz) tmp=$work/modinfo.ko; gzip -dc "$1" >"$tmp" ;;
  esac
  # .modinfo is a list of NUL-terminated key=value strings
  objcopy -O binary --only-section=.modinfo "$tmp" /dev/stdout 2>/dev/null | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}
add_module() { # NAME
  local n=${1//-/_} f d
  [ -n "${seen[$n]:-}" ] && return 0
  seen[$n]=1
  if grep -qE "/${n//_/[-_]}\.ko$" "$kmods/modules.builtin" 2>/dev/null; then return 0; fi
  f=$(modfile "$n")
  [ -n "$f" ] || die "kernel module $n is neither built into $kpkg nor in its package"
  for d in $(modinfo_depends "$f"); do add_module "$d"; done
  modfiles+=("$f")
}

