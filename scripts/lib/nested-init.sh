#!/bin/sh
# /init of the VM that scripts/nested-kvm boots (busybox sh, PID 1). It loads the kernel modules the
# image lists (irqbypass, kvm, kvm-amd, virtio), checks /dev/kvm, mounts the disk shares, configures
# eth0 for --forward, then runs
# the job from /jvmm-nested/job (written by nested-kvm per run) with stdout on ttyS1 and stderr on
# ttyS2; the console (ttyS0) carries only kernel noise and the marker lines nested-kvm parses:
#   @@JVMM-NESTED-START@@             the command is about to start
#   @@JVMM-NESTED-EXIT <status>@@     the command ended with <status>
#   @@JVMM-NESTED-FAIL <message>@@    the VM could not be set up (nested-kvm exits 125)
#   @@JVMM-NESTED-ALIVE@@             every 10 s while the command runs: this VM's kernel still runs
#                                     (nested-kvm ends a VM that stops saying so: its kernel stalled)
# With JVMM_REPORT_AFTER=<seconds> (from nested-kvm, shortly before its --timeout) the console then
# gets what every process is doing (state, kernel wait channel and stack of each thread), so that a
# command that hangs can be told from one stuck in the kernel.
export PATH=/opt/jvmm/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

fail() {
  echo "@@JVMM-NESTED-FAIL $*@@"
  poweroff -f
  sleep 60
}

# modules, in the order mkinitramfs recorded (dependencies first)
if [ -f /lib/modules/load-order ]; then
  while read -r m; do
    out=$(insmod "/lib/modules/$m" 2>&1) || fail "insmod $m failed: $out $(dmesg | tail -n 2 | tr '\n' ' ')"
  done </lib/modules/load-order
fi
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm-amd: $(dmesg | grep -i -e kvm -e svm | tail -n 2 | tr '\n' ' ')"

# mount_disk SERIAL MOUNTPOINT [FILE]: mounts the virtio disk with that serial (an ext4 image made by
# nested-kvm) on MOUNTPOINT; with FILE, the disk holds one shared file, bind-mounted on MOUNTPOINT.
ndisk=0
mount_disk() {
  dev="" tries=0
  while [ -z "$dev" ]; do
    for s in /sys/block/vd*; do
      [ -e "$s/serial" ] && [ "$(cat "$s/serial")" = "$1" ] && dev=/dev/${s##*/}
    done
    [ -n "$dev" ] && break
    tries=$((tries + 1))
    [ $tries -le 100 ] || fail "no virtio disk with serial $1 (for $2)"
    sleep 0.1
  done
  if [ -n "${3:-}" ]; then
    ndisk=$((ndisk + 1))
    mkdir -p "/jvmm-nested/disk$ndisk" "${2%/*}/" && touch "$2" &&
      mount -t ext4 "$dev" "/jvmm-nested/disk$ndisk" &&
      mount --bind "/jvmm-nested/disk$ndisk/$3" "$2" || fail "cannot mount $dev for $2"
  else
    mkdir -p "$2" && mount -t ext4 "$dev" "$2" || fail "cannot mount $dev on $2"
  fi
}

[ -f /jvmm-nested/job ] || fail "no /jvmm-nested/job in the initramfs"
JVMM_CWD=/
. /jvmm-nested/job   # sets JVMM_CWD, calls mount_disk, sets the command with 'set --'

# --forward: QEMU's user-mode network on eth0 (virtio-net), at the address its forwards go to
if [ "${JVMM_NET:-0}" = 1 ]; then
  tries=0
  while [ ! -e /sys/class/net/eth0 ]; do
    tries=$((tries + 1))
    [ $tries -le 100 ] || fail "no eth0 for --forward (virtio_net loaded?)"
    sleep 0.1
  done
  ip link set lo up && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || fail "cannot configure eth0 for --forward"
fi

for t in /dev/ttyS1 /dev/ttyS2; do
  [ -c $t ] || fail "no $t (QEMU needs three -serial ports)"
  stty -F $t raw -echo 2>/dev/null
done
# report: each process and thread with its state and kernel wait channel; the kernel stack of each
# thread that waits uninterruptibly (D) or runs a vCPU ("CPU n/KVM")
report() {
  echo "@@JVMM-NESTED-REPORT the command still runs after ${JVMM_REPORT_AFTER}s; its processes:"
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    args=$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null | cut -c1-160)
    [ "$pid" -gt 1 ] && [ -n "$args" ] || continue   # init itself, kernel threads (no command line)
    echo "pid $pid: $args"
    for t in "$d"/task/*; do
      st=$(sed 's/^.*) //' "$t/stat" 2>/dev/null | cut -d' ' -f1)
      echo "  ${t##*/} $(cat "$t/comm" 2>/dev/null) $st $(cat "$t/wchan" 2>/dev/null)"
      case "$st $(cat "$t/comm" 2>/dev/null)" in
        D*|*KVM*) sed 's/^/      /' "$t/stack" 2>/dev/null | head -n 12 ;;
      esac
    done
  done
  echo "@@JVMM-NESTED-REPORT-END@@"
}
cd "$JVMM_CWD" 2>/dev/null || cd /
echo "@@JVMM-NESTED-START@@"
(while :; do echo "@@JVMM-NESTED-ALIVE@@"; sleep 10; done) &
alive=$!
reporter=""
if [ "${JVMM_REPORT_AFTER:-0}" -gt 0 ]; then
  (sleep "$JVMM_REPORT_AFTER"; report) &
  reporter=$!
fi
("$@") </dev/null >/dev/ttyS1 2>/dev/ttyS2
status=$?
kill $alive $reporter 2>/dev/null
echo "@@JVMM-NESTED-EXIT $status@@"
poweroff -f
sleep 60
