#!/usr/bin/env bash
# Fill the vm backend's cache directory ($CRASHLAB_VM_DIR): a Debian cloud
# kernel (unpacked with dpkg -x, nothing installed into the host's /boot),
# its virtio modules, and a static busybox. Installs qemu-system-x86,
# busybox-static and e2fsprogs with apt-get when run as root.
#
#   CRASHLAB_VM_DIR=~/.cache/crashlab-vm scripts/vm-setup.sh
#   crashlab soundness --backend vm --trials 20      # then, as any user
#
# CRASHLAB_VM_KERNEL overrides the pinned kernel package (the ABI name, e.g.
# 6.1.0-56-cloud-amd64); `apt-cache depends linux-image-cloud-amd64` shows
# the current one. Idempotent: an existing, complete cache is kept.
set -euo pipefail
dir=${CRASHLAB_VM_DIR:?set CRASHLAB_VM_DIR to the cache directory}
# Pinned: Debian 12 (bookworm) cloud kernel 6.1.192-2, as found with
# `apt-cache policy linux-image-cloud-amd64` when this backend was written.
kver=${CRASHLAB_VM_KERNEL:-6.1.0-56-cloud-amd64}
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk"

if [ "$(id -u)" = 0 ]; then
  if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x /bin/busybox ] || ! command -v debugfs >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      qemu-system-x86 busybox-static e2fsprogs >/dev/null
  fi
else
  for t in qemu-system-x86_64 debugfs e2fsck mkfs.ext4 gcc; do
    command -v "$t" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null ||
      { echo "vm-setup: $t missing; as root: apt-get install -y --no-install-recommends qemu-system-x86 busybox-static e2fsprogs gcc" >&2; exit 2; }
  done
fi

mkdir -p "$dir/modules"
complete=1
for f in vmlinuz kernel-version busybox; do [ -s "$dir/$f" ] || complete=0; done
for m in $modules; do [ -s "$dir/modules/$m.ko" ] || complete=0; done
if [ "$complete" = 1 ] && [ "$(cat "$dir/kernel-version")" = "$kver" ]; then
  echo "vm-setup: $dir is complete (kernel $kver)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && apt-get download "linux-image-$kver" ) || {
  echo "vm-setup: cannot download linux-image-$kver; the archive may have moved on." >&2
  echo "  current: $(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-//p' | head -1)" >&2
  echo "  rerun with CRASHLAB_VM_KERNEL=<that>" >&2
  exit 2
}
dpkg -x "$tmp"/linux-image-"$kver"_*.deb "$tmp/root"
cp "$tmp/root/boot/vmlinuz-$kver" "$dir/vmlinuz"
for m in $modules; do
  f=$(find "$tmp/root/lib/modules/$kver" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
  [ -n "$f" ] || { echo "vm-setup: module $m not in linux-image-$kver" >&2; exit 2; }
  case "$f" in
    *.xz) xz -dc "$f" >"$dir/modules/$m.ko" ;;
    *.zst) zstd -dqc "$f" >"$dir/modules/$m.ko" ;;
    *) cp "$f" "$dir/modules/$m.ko" ;;
  esac
done
bb=/bin/busybox
if ! file "$bb" 2>/dev/null | grep -q 'statically linked'; then
  ( cd "$tmp" && apt-get download busybox-static && dpkg -x busybox-static_*.deb bb )
  bb=$tmp/bb/bin/busybox
fi
cp "$bb" "$dir/busybox"
echo "$kver" >"$dir/kernel-version"
echo "vm-setup: $dir ready (kernel $kver, modules: $modules)"
