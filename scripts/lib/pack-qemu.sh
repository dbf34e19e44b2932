# Sourced by the benchmark scripts. pack_qemu DIR: copies the host's qemu-system-x86_64 (see need_pkg
# in scripts/lib/packages.sh for when a missing one is installed), every library ldd names
# (under their sonames, in DIR/lib), the dynamic loader (DIR/ld-linux-x86-64.so.2) and the firmware
# microvm and q35 open (DIR/share), so that it runs inside scripts/nested-kvm as
#   DIR/ld-linux-x86-64.so.2 --library-path DIR/lib DIR/qemu-system-x86_64 -L DIR/share ...
# Calls die (defined by the caller) on failure.
. "$(dirname "${BASH_SOURCE[0]}")/packages.sh"
pack_qemu() {
  local dir=$1 bin interp f
  need_pkg qemu-system-x86_64 qemu-system-x86
  bin=$(readlink -f "$(command -v qemu-system-x86_64)")
  mkdir -p "$dir/lib" "$dir/share"
  cp "$bin" "$dir/qemu-system-x86_64"
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
    cp -L "$path" "$dir/lib/$soname"
  done
  interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  [ -n "$interp" ] || die "cannot find the program interpreter of $bin"
  cp -L "$interp" "$dir/ld-linux-x86-64.so.2"
  # microvm reads bios-microvm.bin (qboot) and linuxboot_dma.bin; q35 -nodefaults reads bios-256k.bin
  # (SeaBIOS), linuxboot_dma.bin and, with KVM, kvmvapic.bin (strace -e openat of runs on the host)
  for f in bios-microvm.bin linuxboot_dma.bin kvmvapic.bin; do
    cp -L "/usr/share/qemu/$f" "$dir/share/$f" || die "QEMU firmware /usr/share/qemu/$f is missing"
  done
  cp -L /usr/share/seabios/bios-256k.bin "$dir/share/" 2>/dev/null ||
    cp -L /usr/share/qemu/bios-256k.bin "$dir/share/" || die "SeaBIOS bios-256k.bin is missing"
}
