#!/usr/bin/env bash
# Builds VmPortal's built-in Debian 12 (bookworm) i386 system disk from Debian packages only:
#   ${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}/debian-12-i386.img
# A sparse raw 2 GiB disk with an MBR partition table:
#   p1  128 MiB FAT16 "BOOT", active: SYSLINUX (syslinux --install, rootless through mtools), the kernel and its
#       initramfs; automounted at /boot in the guest (on first access: boot does not wait for it), so a kernel update lands there and a kernel hook rewrites
#       syslinux.cfg. The MBR code is SYSLINUX's mbr.bin (boots the active partition).
#   p2  the rest, ext4 "debian-root" made with `mke2fs -d` from the mmdebstrap tree (no mount, no loop device).
# The system: mmdebstrap --variant=minbase + linux-image-686 (initramfs-tools, MODULES=list: ata_piix, sd_mod,
# ext4 ...), systemd, udev, dbus (for logind: the power button), openssh-server (no host keys baked in), sudo;
# systemd-networkd does DHCP on any wired interface (en*, eth*); gettys on tty1 and ttyS0 (console=tty1
# console=ttyS0,115200). No docs, man pages or locales; apt timers, e2scrub and fstrim masked so boot is quick on a slow emulated CPU.
# First boot: vmportal-firstboot.service reads a cloud-init NoCloud seed (a file system labelled cidata) - see
# docs/platform.md, "Debian system image". Without a seed: user debian, password debian (console; SSH password
# login stays off unless a seed sets ssh_pwauth).
#
# This host's kernel cannot run i386 binaries (ia32_emulation off): the i386 maintainer scripts run under
# qemu-i386-static, registered in binfmt_misc here (flag F, so it works inside the chroot).
# Incremental like build-guest-images.sh: a stamp names the key package versions and this recipe's version;
# the image is rebuilt only when it changes, and published atomically (rename) into the cache.
# Needs root (or sudo) for mmdebstrap's chroot and the binfmt registration; the disk assembly itself is rootless.
set -euo pipefail

RECIPE_VERSION=5
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}"
OUT_NAME=debian-12-i386.img
DISK_MIB=2048
BOOT_START=2048            # sectors (1 MiB)
BOOT_MIB=128
ROOT_UUID=0b6b1c2e-8a4f-4d8e-9c1a-d3b1e5a70c12
BOOT_VOLID=7D0C1E12        # FAT volume id -> UUID 7D0C-1E12
MIRROR=http://deb.debian.org/debian
SECURITY=http://deb.debian.org/debian-security
export SOURCE_DATE_EPOCH=1700000000
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

log() { echo "build-debian-image: $*" >&2; }

# --- i386 user-mode emulation for the maintainer scripts ----------------------------------------------------
ensure_binfmt_i386() {
  local d=/proc/sys/fs/binfmt_misc
  if [ ! -e "$d/status" ]; then $SUDO mount -t binfmt_misc binfmt_misc "$d"; fi
  if grep -qs 'qemu-i386-static' "$d"/* 2>/dev/null; then return 0; fi
  [ -x /usr/bin/qemu-i386-static ] || { log "qemu-i386-static missing (apt package qemu-user-static)"; return 1; }
  log "registering qemu-i386-static for i386 ELF binaries in binfmt_misc"
  # ELF32, little endian, type EXEC or DYN, machine EM_386; the kernel decodes the \x escapes itself.
  printf '%s' ':qemu-i386:M::\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00:\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-i386-static:F' \
    | $SUDO tee "$d/register" >/dev/null
}

# --- stamp: versions of the packages that shape the image -----------------------------------------------------
KPKG="$(apt-cache depends linux-image-686:i386 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"
KPKG="${KPKG%%:*}"
[ -n "$KPKG" ] || { log "cannot resolve linux-image-686:i386 (apt-get update? dpkg --add-architecture i386?)"; exit 1; }
STAMP_PKGS=("$KPKG:i386" libc6:i386 systemd:i386 udev:i386 openssh-server:i386 initramfs-tools sudo:i386 syslinux syslinux-common)
STAMP="recipe=$RECIPE_VERSION"
while IFS= read -r line; do
  case "$line" in
    [a-z0-9]*:) pkg="${line%:}" ;;
    *Candidate:*) STAMP="$STAMP $pkg=$(awk '{print $2}' <<<"$line")" ;;
  esac
done < <(apt-cache policy "${STAMP_PKGS[@]}" 2>/dev/null)
STAMP_FILE="$CACHE/.debian-12-i386.stamp"
if [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$STAMP" ] && [ -s "$CACHE/$OUT_NAME" ]; then
  log "$OUT_NAME: up to date"
  exit 0
fi
log "$OUT_NAME: building ($STAMP)"
START_TIME=$(date +%s)

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.work-debian.XXXXXX")"
trap '$SUDO rm -rf "$WORK"' EXIT
# A host that cannot run i386 programs at all (no binfmt_misc, e.g. an unprivileged container) cannot build the
# image: say so in a file beside it, which the Debian boot tests show as their skip reason. Any other failure of
# this script fails them.
UNAVAILABLE="$CACHE/$OUT_NAME.unavailable"
if ! ensure_binfmt_i386 || { command -v arch-test >/dev/null && ! arch-test i386 >/dev/null 2>&1; }; then
  echo "this host cannot run i386 programs under qemu-i386-static (binfmt_misc), which building $OUT_NAME needs" > "$UNAVAILABLE"
  log "$(cat "$UNAVAILABLE")"
  exit 1
fi
rm -f "$UNAVAILABLE"

# --- files placed into the tree before the kernel is installed ------------------------------------------------
CFG="$WORK/cfg"
mkdir -p "$CFG"
# initramfs-tools: only what a disk boot on our PC (and QEMU's) needs; small and quick to unpack.
cat > "$CFG/initramfs.conf" <<'EOF'
# VmPortal: a small initramfs with the PIIX IDE disk path and ext4 (see hooks/vmportal).
MODULES=list
# lz4: the kernel unpacks it several times faster than gzip (37 s of guest time for the gzip one on a loaded host)
COMPRESS=lz4
EOF
cat > "$CFG/initramfs-hook" <<'EOF'
#!/bin/sh
# VmPortal: the modules to reach the root file system on an IDE disk (PIIX), also under QEMU (virtio, ahci).
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
for m in ata_piix ata_generic pata_acpi ahci sd_mod ext4 crc32c_generic virtio_pci virtio_blk; do
  manual_add_modules "$m"
done
EOF
# A kernel update writes to /boot (the FAT partition): point syslinux.cfg at the newest kernel.
# cryptomgr.notests: the kernel's crypto self-tests (testmgr: RSA signing, hashes, ciphers, each algorithm at its
# first use) are pure CPU work on the emulated processor: initcall_debug showed crypto_algapi_init taking 129 s and
# the X.509 certificate check 37 s of guest time on a loaded host. Outside FIPS mode Debian does not need them.
cat > "$CFG/kernel-hook" <<EOF
#!/bin/sh
# VmPortal: after a kernel is installed (and its initramfs built), boot it with SYSLINUX.
# Usage: zz-vmportal-syslinux <version> [<image>]; BOOTDIR overrides /boot (the image build uses it).
set -e
BOOTDIR="\${BOOTDIR:-/boot}"
ver="\$1"
[ -n "\$ver" ] || exit 0
[ -f "\$BOOTDIR/vmlinuz-\$ver" ] || exit 0
cat > "\$BOOTDIR/syslinux.cfg" <<CFG
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  LINUX /vmlinuz-\$ver
  INITRD /initrd.img-\$ver
  APPEND root=UUID=$ROOT_UUID ro quiet console=tty1 console=ttyS0,115200 cryptomgr.notests
CFG
EOF

# --- the root file system -------------------------------------------------------------------------------------
ROOT="$WORK/root"
# dbus: systemd-logind needs the system bus; without it nothing acts on the ACPI power button (the portal's Shut down)
INCLUDE=lz4,linux-image-686,initramfs-tools,systemd,systemd-sysv,udev,dbus,kmod,openssh-server,sudo,iproute2,procps,e2fsprogs
DPKGOPTS=(--dpkgopt=force-unsafe-io)  # no fsync per file: the tree is packed into an image afterwards
# (dpkg path-exclude filters for docs/locales make systemd's unpack fail under mmdebstrap: the documentation is
# removed after installation instead.)

# Services masked: periodic jobs and waits that only cost boot time on a slow CPU, and systemd-firstboot's
# interactive prompts (our own first-boot unit does the configuration).
MASK="apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-networkd-wait-online.service systemd-firstboot.service systemd-pstore.service"

log "mmdebstrap (i386, minbase) ..."
$SUDO mmdebstrap --variant=minbase --architectures=i386 --mode=root --format=directory \
  --include="$INCLUDE" \
  --aptopt='Acquire::Languages "none"' --aptopt='APT::Install-Recommends "false"' \
  "${DPKGOPTS[@]}" \
  --essential-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" \"\$1/etc/initramfs-tools/hooks\" \"\$1/etc/kernel/postinst.d\"" \
  --essential-hook="install -m 644 '$CFG/initramfs.conf' \"\$1/etc/initramfs-tools/conf.d/vmportal.conf\"" \
  --essential-hook="install -m 755 '$CFG/initramfs-hook' \"\$1/etc/initramfs-tools/hooks/vmportal\"" \
  --essential-hook="install -m 755 '$CFG/kernel-hook' \"\$1/etc/kernel/postinst.d/zz-vmportal-syslinux\"" \
  --customize-hook="install -m 755 '$HERE/debian-image/vmportal-firstboot' \"\$1/usr/local/sbin/vmportal-firstboot\"" \
  --customize-hook="install -m 644 '$HERE/debian-image/vmportal-firstboot.service' \"\$1/etc/systemd/system/vmportal-firstboot.service\"" \
  --customize-hook="chroot \"\$1\" systemctl enable vmportal-firstboot.service systemd-networkd.service >/dev/null" \
  --customize-hook="chroot \"\$1\" systemctl mask $MASK >/dev/null" \
  --customize-hook="chroot \"\$1\" sh -c 'useradd -m -s /bin/bash -G sudo,adm debian && echo debian:debian | chpasswd'" \
  --customize-hook="rm -f \"\$1\"/etc/ssh/ssh_host_*" \
  --customize-hook="cd \"\$1\"/usr/share && rm -rf man/* info/* lintian/* locale/* && find doc -mindepth 1 ! -name copyright ! -type d -delete" \
  bookworm "$ROOT" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY bookworm-security main" >&2

log "configuring the tree"
$SUDO sh -s "$ROOT" "$ROOT_UUID" "$BOOT_VOLID" <<'EOF'
set -e
R="$1"; UUID="$2"; VOLID="$3"
echo debian > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' > "$R/etc/hosts"
: > "$R/etc/resolv.conf"
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
cat > "$R/etc/fstab" <<FSTAB
# <file system>  <mount point>  <type>  <options>  <dump>  <pass>
UUID=$UUID  /      ext4  errors=remount-ro  0  1
UUID=$(echo "$VOLID" | cut -c1-4)-$(echo "$VOLID" | cut -c5-8)  /boot  vfat  umask=0077,noauto,nofail,x-systemd.automount  0  0
FSTAB
mkdir -p "$R/etc/systemd/network"
cat > "$R/etc/systemd/network/20-wired.network" <<NET
# VmPortal: DHCP on any wired interface (predictable names en*, or eth*).
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
# bochs-drm would bind to our (and QEMU's) standard VGA and turn the VGA text console into a framebuffer.
printf 'blacklist bochs\nblacklist bochs-drm\n' > "$R/etc/modprobe.d/vmportal-vga.conf"
# On a slow emulated CPU udev can take minutes to announce ttyS0 and the disks: systemd's default 90 s job
# timeout then fails serial-getty@ttyS0 ("Timed out waiting for device /dev/ttyS0"). Wait longer.
mkdir -p "$R/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStartSec=600s\nDefaultDeviceTimeoutSec=600s\n' > "$R/etc/systemd/system.conf.d/vmportal-slow-cpu.conf"
# Journal in memory only: fewer disk writes on a slow machine.
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\n' > "$R/etc/systemd/journald.conf.d/vmportal.conf"
# SSH password login only when a seed asks for it (ssh_pwauth: true); keys always work.
mkdir -p "$R/etc/ssh/sshd_config.d"
echo "PasswordAuthentication no" > "$R/etc/ssh/sshd_config.d/50-vmportal.conf"
# Drop apt's downloaded lists and caches (the guest runs apt-get update itself).
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb "$R"/var/log/*.log
mkdir -p "$R/var/lib/apt/lists/partial"
EOF

# --- the boot partition (FAT16 + SYSLINUX, rootless through mtools) -------------------------------------------
KVER="$(ls "$ROOT/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)"
[ -n "$KVER" ] || { log "no kernel in the tree"; exit 1; }
[ -f "$ROOT/boot/initrd.img-$KVER" ] || { log "no initramfs for $KVER"; exit 1; }
$SUDO env BOOTDIR="$ROOT/boot" sh "$ROOT/etc/kernel/postinst.d/zz-vmportal-syslinux" "$KVER"
BOOTIMG="$WORK/boot.img"
truncate -s "${BOOT_MIB}M" "$BOOTIMG"
mkfs.fat -F 16 -n BOOT -i "$BOOT_VOLID" -h "$BOOT_START" "$BOOTIMG" >/dev/null
for f in "$ROOT"/boot/*; do
  [ -f "$f" ] && mcopy -i "$BOOTIMG" -m "$f" "::$(basename "$f")"
done
syslinux --install "$BOOTIMG"
$SUDO sh -c 'rm -rf "$1"/boot/* ' sh "$ROOT"

# --- the root file system image (mke2fs -d, no mount) ----------------------------------------------------------
ROOT_START=$(( BOOT_START + BOOT_MIB * 2048 ))
ROOT_SECTORS=$(( DISK_MIB * 2048 - ROOT_START ))
ROOTIMG="$WORK/root.img"
truncate -s $(( ROOT_SECTORS * 512 )) "$ROOTIMG"
log "mke2fs -d ($(du -sh "$ROOT" 2>/dev/null | cut -f1) tree)"
$SUDO mke2fs -q -t ext4 -L debian-root -U "$ROOT_UUID" -J size=32 -E lazy_itable_init=0,lazy_journal_init=0 \
  -d "$ROOT" "$ROOTIMG"
$SUDO chown "$(id -u):$(id -g)" "$ROOTIMG"

# --- the disk: MBR (SYSLINUX mbr.bin + partition table), p1 boot, p2 root -------------------------------------
DISK="$WORK/$OUT_NAME"
truncate -s "${DISK_MIB}M" "$DISK"
sfdisk -q "$DISK" <<EOF
label: dos
label-id: 0x766d706c
start=$BOOT_START, size=$(( BOOT_MIB * 2048 )), type=e, bootable
start=$ROOT_START, size=$ROOT_SECTORS, type=83
EOF
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$DISK" bs=440 count=1 conv=notrunc status=none
dd if="$BOOTIMG" of="$DISK" bs=1M seek=$(( BOOT_START / 2048 )) conv=notrunc,sparse status=none
dd if="$ROOTIMG" of="$DISK" bs=1M seek=$(( ROOT_START / 2048 )) conv=notrunc,sparse status=none

# --- publish atomically: the image by rename, the stamp last --------------------------------------------------
rm -f "$STAMP_FILE"
mv -f "$DISK" "$CACHE/$OUT_NAME"
printf '%s' "$STAMP" > "$STAMP_FILE"
log "$OUT_NAME: done in $(( $(date +%s) - START_TIME )) s ($(du -h "$CACHE/$OUT_NAME" | cut -f1) allocated of ${DISK_MIB} MiB)"
