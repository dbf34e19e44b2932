# Sourced by scripts/nested-kvm: build_nested_base makes (once, cached by its inputs) the nested VM's
# base initramfs: busybox, the init (scripts/lib/nested-init.sh), the kernel modules, a jlink'ed JDK
# with its CDS archive, the host's virtiofsd and passt if it has them, util-linux's setpriv, the host's glibc and
# what ldd says the runtime, virtiofsd and setpriv need, and the jvmm wrapper
# (with the options of scripts/lib/jvm-flags). Sets base to its path. Needs root, cache, work, kpkg,
# kconfig, JDK, add_module (scripts/lib/kernel-modules.sh), jvm_flags (scripts/lib/jar.sh) and die().
build_nested_base() {
  init=$root/scripts/lib/nested-init.sh
  format=7   # bump when the base image's layout changes
  # virtiofsd (Debian 12: /usr/lib/qemu/virtiofsd from qemu-system-common), for 'jvmm run --share'
  # inside, packed with its libraries (glib, libseccomp, libcap-ng, ...) when the host has one
  virtiofsd=""
  for p in /usr/libexec/virtiofsd /usr/lib/qemu/virtiofsd; do [ -x "$p" ] && { virtiofsd=$p; break; }; done
  # util-linux's setpriv, with which jvmm ties its helpers' lives to its own (--pdeathsig; busybox's
  # setpriv has no such option), at its host path, ahead of busybox's applets on the VM's PATH
  setpriv=""
  [ -x /usr/bin/setpriv ] && setpriv=/usr/bin/setpriv
  # passt for 'jvmm run --net user' (Debian's passt re-executes itself as passt.avx2 where it can)
  passt=""
  for p in /usr/bin/passt /usr/bin/passt.avx2; do [ -x "$p" ] && passt="$passt $p"; done
  key=$( {
    echo "format $format $kpkg $JDK"
    cat "$JDK/release" 2>/dev/null
    sha256sum "$init" "$root/scripts/mkinitramfs" "$root/scripts/lib/jvm-flags" /bin/busybox "$(readlink -f /lib64/ld-linux-x86-64.so.2)" \
      ${virtiofsd:+"$virtiofsd"} ${setpriv:+"$setpriv"} $passt | cut -c1-64
  } | sha256sum | cut -c1-16)
  base=$cache/nested/base-$key.cpio.gz
  if [ ! -f "$base" ]; then
    echo "$prog: building the base initramfs (kernel modules, JDK runtime, glibc; once) ..." >&2
    # dummy: an interface with a default route, which passt needs to start where there is no network
    # virtio_net: eth0 for --forward
    for m in irqbypass kvm kvm_amd virtio_pci virtio_blk virtio_net tun dummy; do add_module "$m"; done
    grep -q '^CONFIG_EXT4_FS=y' "$kconfig" || add_module ext4
    rt=$work/base/opt/jvmm/java
    mkdir -p "$work/base/opt/jvmm/bin"
    # java.base and jdk.unsupported are what jvmm itself needs; logback reads its logback.xml through
    # java.xml (without it 'jvmm run' fails with NoClassDefFoundError: org/xml/sax/InputSource), and
    # jdeps also names java.logging and java.naming for it
    "$JDK/bin/jlink" --add-modules java.base,jdk.unsupported,java.xml,java.logging,java.naming --strip-debug --no-header-files --no-man-pages \
      --output "$rt" >"$work/jlink.log" 2>&1 || die "jlink failed: $(tail -n1 "$work/jlink.log")"
    # the JDK's default class data sharing archive for the jlink'ed runtime: faster start in the VM
    "$rt/bin/java" -Xshare:dump >/dev/null 2>&1 || true
    # the host libraries the runtime needs (glibc and friends), at their host paths
    libs=(/lib64/ld-linux-x86-64.so.2)
    for l in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libz.so.1; do
      p=$(ldconfig -p 2>/dev/null | awk -v l="$l" '$1 == l && /x86-64/ && !found {print $NF; found = 1}')
      [ -n "$p" ] || p=/lib/x86_64-linux-gnu/$l
      [ -e "$p" ] && libs+=("$p")
    done
    while read -r p; do libs+=("$p"); done < <(
      { find "$rt" -type f \( -name '*.so' -o -path '*/bin/*' \) -exec ldd {} \; ; for b in $virtiofsd $setpriv $passt; do ldd "$b"; done; } 2>/dev/null |
        awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -v "^$rt/" | sort -u)
    adds=()
    for b in $virtiofsd $setpriv $passt; do adds+=(--add "$b:$b"); done
    for p in $(printf '%s\n' "${libs[@]}" | sort -u); do
      adds+=(--add "$(readlink -f "$p"):$p")
    done
    {
      echo '#!/bin/sh'
      echo "opts=\"$(jvm_flags | tr '\n' ' ')\""
      cat <<'EOF'
if [ -f /opt/jvmm/classpath ]; then
  exec /opt/jvmm/java/bin/java $opts -cp "$(cat /opt/jvmm/classpath)" dev.jvmm.cli.Main "$@"
fi
exec /opt/jvmm/java/bin/java $opts -jar /opt/jvmm/jvmm.jar "$@"
EOF
    } >"$work/base/opt/jvmm/bin/jvmm"
    chmod 755 "$work/base/opt/jvmm/bin/jvmm"
    ln -s ../java/bin/java "$work/base/opt/jvmm/bin/java"
    margs=()
    for f in "${modfiles[@]}"; do margs+=(--module "$f"); done
    "$root/scripts/mkinitramfs" --init "$init" "${margs[@]}" --add "$work/base/opt:/opt" "${adds[@]}" \
      --out "$work/base.cpio.gz" || die "mkinitramfs failed for the base image"
    rm -f "$cache"/nested/base-*.cpio.gz
    mv "$work/base.cpio.gz" "$base"
    rm -rf "$work/base"
  fi
}
