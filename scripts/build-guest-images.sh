#!/usr/bin/env bash
# Builds VmPortal's built-in guest images from Debian packages only, into a cache outside git:
#   ${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}/
#     debian-i386-rescue.iso        Debian's i386 686 kernel + busybox initramfs, ISOLINUX El Torito CD
#     debian-i386-rescue.vmlinuz    the same kernel, for direct kernel boot (--kernel)
#     debian-i386-rescue.initrd.gz  the same initramfs (--initrd)
#     debian-i386-rescue-grub.iso   the same kernel + initramfs on a GRUB 2 CD made by grub-mkrescue (BIOS, El
#                                   Torito no-emulation): a menu with a 3 s countdown, like most distributions' ISOs
#     memtest86plus.iso / .bin      from Debian's memtest86+ package
#     ipxe.iso / ipxe.lkrn          from Debian's ipxe package
#
# The rescue guest's /init mounts proc, sys and dev, prints VMPORTAL-GUEST-READY on tty1 and ttyS0, then
# busybox init runs a root shell on tty1 (VGA console) and on ttyS0 (COM1, 115200 baud). It loads psmouse (a module
# in Debian's kernel; mousedev is built in), so the PS/2 mouse reads as /dev/input/mice and /dev/psaux.
# Kernel command line (ISO): console=tty1 console=ttyS0,115200 (use the same with --kernel).
#
# Packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` (nothing is installed; the
# memtest86+/ipxe packages would touch /boot). Every image set carries a stamp naming the package versions
# and this recipe's version: an image is rebuilt only when that stamp changes, so re-running is cheap and
# a Debian package update rebuilds what depends on it. Output is reproducible (fixed SOURCE_DATE_EPOCH,
# gzip -n, sorted archive entries).
#
# Needs: apt-get, dpkg-deb, xorriso, gzip, grub-mkrescue (grub-common + grub-pc-bin, mtools)
# (scripts/install-deps.sh installs them). Runs as root or with sudo
# only for `dpkg --add-architecture i386` / `apt-get update` when those are missing.
set -euo pipefail

RECIPE_VERSION=5
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}"
export SOURCE_DATE_EPOCH=1700000000
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

log() { echo "build-guest-images: $*" >&2; }

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

ensure_i386() {
  if ! dpkg --print-foreign-architectures | grep -qx i386; then
    log "adding the i386 dpkg architecture"
    $SUDO dpkg --add-architecture i386
    apt_update
  fi
}

apt_update() {
  for i in 1 2 3 4 5; do
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -q >/dev/null 2>&1; then return 0; fi
    log "apt-get update failed (try $i), retrying"
    sleep 5
  done
  return 1
}

# Candidate versions of all packages, resolved in one apt-cache call (it is slow): VERSIONS[name] = version.
declare -A VERSIONS=()
resolve_versions() { # <packages...>
  local try line pkg
  for try in 1 2; do
    VERSIONS=()
    while IFS= read -r line; do
      case "$line" in
        [a-z0-9]*:) pkg="${line%:}" ;;
        *Candidate:*) VERSIONS[$pkg]="$(awk '{print $2}' <<<"$line")" ;;
      esac
    done < <(apt-cache policy "$@" 2>/dev/null)
    local missing=0 p
    for p in "$@"; do
      local v="${VERSIONS[$p]:-}"
      if [ -z "$v" ] || [ "$v" = "(none)" ]; then missing=1; fi
    done
    [ "$missing" = 0 ] && return 0
    [ "$try" = 1 ] && { apt_update || true; }
  done
  for p in "$@"; do
    local v="${VERSIONS[$p]:-}"
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then log "package $p not found in the apt lists"; VERSIONS[$p]=""; fi
  done
}

pkg_version() {
  local v="${VERSIONS[$1]:-}"
  [ -n "$v" ] || { log "no version for $1"; return 1; }
  echo "$v"
}

# Downloads a package (name[:arch]) and unpacks it into $WORK/<dir>.
fetch() {
  local pkg="$1" dir="$WORK/$2"
  mkdir -p "$dir" "$WORK/debs"
  local ok=0
  for i in 1 2 3; do
    if (cd "$WORK/debs" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >/dev/null 2>&1); then ok=1; break; fi
    log "apt-get download $pkg failed (try $i), retrying"
    apt_update || true
    sleep 3
  done
  [ "$ok" = 1 ] || { log "cannot download $pkg"; return 1; }
  local name="${pkg%%:*}"
  local deb
  deb="$(ls -t "$WORK/debs/${name}"_*.deb | head -1)"
  dpkg-deb -x "$deb" "$dir"
}

is_current() { # <stamp-name> <stamp-text> <files...>
  local stamp="$CACHE/.$1.stamp" text="$2"; shift 2
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$text" ] || return 1
  local f
  for f in "$@"; do [ -s "$CACHE/$f" ] || return 1; done
  return 0
}

# Moves built files into the cache atomically-ish (rename per file), then writes the stamp last.
publish() { # <stamp-name> <stamp-text> <files...> (files are in $WORK/out)
  local stampname="$1" text="$2"; shift 2
  rm -f "$CACHE/.$stampname.stamp"
  local f
  for f in "$@"; do mv -f "$WORK/out/$f" "$CACHE/$f"; done
  printf '%s' "$text" > "$CACHE/.$stampname.stamp"
}

# An ISOLINUX CD with the rescue kernel and initrd (the initrd already in $WORK/out) and a kernel command line.
make_rescue_iso() { # <vmlinuz> <out-name> <append>
  local vmlinuz="$1" out="$2" append="$3"
  local I="$WORK/iso-$out"
  mkdir -p "$I/isolinux" "$I/boot"
  cp "$WORK/isolinux/usr/lib/ISOLINUX/isolinux.bin" "$I/isolinux/"
  cp "$WORK/syslinux/usr/lib/syslinux/modules/bios/ldlinux.c32" "$I/isolinux/"
  cp "$vmlinuz" "$I/boot/vmlinuz"
  cp "$WORK/out/debian-i386-rescue.initrd.gz" "$I/boot/initrd.gz"
  printf '%s\n' "DEFAULT rescue" "PROMPT 0" "TIMEOUT 0" "LABEL rescue" "  KERNEL /boot/vmlinuz" \
    "  INITRD /boot/initrd.gz" "  APPEND $append" > "$I/isolinux/isolinux.cfg"
  find "$I" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  xorriso -as mkisofs -quiet -o "$WORK/out/$out" \
    -V VMPORTAL_RESCUE -J -R \
    -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
    -isohybrid-mbr "$WORK/isolinux/usr/lib/ISOLINUX/isohdpfx.bin" \
    "$I" 2>&1 | grep -vE '^xorriso (1|: (UPDATE|NOTE))|^$' >&2 || true
  [ -s "$WORK/out/$out" ] || { log "xorriso produced no $out"; return 1; }
}

build_rescue() {
  local kpkg="$KPKG" kver bbver ilver scver
  [ -n "$kpkg" ] || { log "cannot resolve linux-image-686:i386"; return 1; }
  kver="$(pkg_version "$kpkg")"
  bbver="$(pkg_version busybox-static:i386)"
  ilver="$(pkg_version isolinux)"
  scver="$(pkg_version syslinux-common)"
  local stamp="recipe=$RECIPE_VERSION net=1 disk=1 kernel=$kpkg=$kver busybox=$bbver isolinux=$ilver syslinux=$scver"
  local files=(debian-i386-rescue.iso debian-i386-rescue-fb.iso debian-i386-rescue.vmlinuz debian-i386-rescue.initrd.gz)
  if is_current debian-i386-rescue "$stamp" "${files[@]}"; then log "debian-i386-rescue: up to date ($kpkg $kver)"; return 0; fi
  log "debian-i386-rescue: building ($kpkg $kver, busybox $bbver)"

  fetch "$kpkg" kernel
  fetch busybox-static:i386 busybox
  fetch isolinux isolinux
  fetch syslinux-common syslinux

  local vmlinuz
  vmlinuz="$(ls "$WORK"/kernel/boot/vmlinuz-* | head -1)"
  local psmouse
  psmouse="$(find "$WORK"/kernel/lib/modules -name psmouse.ko | head -1)"
  [ -n "$psmouse" ] || { log "psmouse.ko not found in $kpkg"; return 1; }
  local R="$WORK/rootfs-src"
  mkdir -p "$R" "$WORK/out"

  cat > "$R/init" <<'EOF'
#!/bin/busybox sh
# VmPortal rescue guest, PID 1: set up the system, announce readiness, hand over to busybox init.
/bin/busybox --install -s
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev   # CONFIG_DEVTMPFS_MOUNT is off in Debian's kernel
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname vmportal
# The PS/2 mouse on the i8042 aux port: psmouse is a module, mousedev (/dev/input/mice, /dev/psaux) built in.
insmod /lib/modules/psmouse.ko
ip link set lo up
# The e1000 driver (Intel 82540EM, the default card): if it finds a card, eth0 comes up by DHCP.
insmod /lib/modules/e1000.ko 2>/dev/null
if [ -e /sys/class/net/eth0 ]; then
  udhcpc -i eth0 -s /etc/udhcpc/default.script -b -t 4 -T 2 >/dev/null 2>&1
fi
# /dev/console is only the last console= of the command line: write to both consoles ourselves.
# ACPI power button (the portal's "Shut down"): button.ko handles the fixed power-button event; a watcher polls its
# count in sysfs and powers off cleanly when it rises (busybox init has no power-button handling of its own).
insmod /lib/modules/button.ko 2>/dev/null
if [ -r /sys/firmware/acpi/interrupts/ff_pwr_btn ]; then
  (
    read -r seen _ < /sys/firmware/acpi/interrupts/ff_pwr_btn
    while sleep 1; do
      read -r now _ < /sys/firmware/acpi/interrupts/ff_pwr_btn
      if [ "$now" != "$seen" ]; then
        echo VMPORTAL-POWER-BUTTON > /dev/tty1; echo VMPORTAL-POWER-BUTTON > /dev/ttyS0
        exec poweroff
      fi
    done
  ) &
fi
echo VMPORTAL-GUEST-READY > /dev/tty1
echo VMPORTAL-GUEST-READY > /dev/ttyS0
exec /bin/busybox init
EOF
  cat > "$R/inittab" <<'EOF'
# busybox init: a root shell on the VGA console and on COM1, restarted when it exits.
tty1::respawn:-/bin/sh
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/bin/reboot -f
EOF
  cat > "$R/profile" <<'EOF'
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
export PS1='\w # '
EOF
  # busybox udhcpc calls this with deconfig/bound/renew/leasefail; it configures eth0 and announces the lease.
  cat > "$R/udhcpc.script" <<'EOF'
#!/bin/sh
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then
      ip route del default 2>/dev/null
      for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "VMPORTAL-NET-UP $interface $ip" > /dev/tty1
    echo "VMPORTAL-NET-UP $interface $ip" > /dev/ttyS0
    ;;
esac
exit 0
EOF
  local e1000
  e1000="$(find "$WORK"/kernel/lib/modules -name 'e1000.ko*' -path '*intel/e1000/*' | head -1)"
  [ -n "$e1000" ] || { log "e1000 module not found in $kpkg"; return 1; }
  case "$e1000" in
    *.xz) xz -dc "$e1000" > "$R/e1000.ko" ;;
    *) cp "$e1000" "$R/e1000.ko" ;;
  esac

  # IDE disks on demand: libata + ata_piix + sd_mod (and what sd_mod needs), loaded by `vmportal-disks` (not at
  # boot, so the guest's boot stays as quick as before); the crash-durability test writes through them.
  local DISK_MODS="scsi_common scsi_mod libata ata_piix crct10dif_common crct10dif_generic crc-t10dif crc64 crc64_rocksoft_generic crc64-rocksoft t10-pi sd_mod"
  mkdir -p "$R/ata"
  local m f
  for m in $DISK_MODS; do
    f="$(find "$WORK"/kernel/lib/modules -name "$m.ko*" | head -1)"
    [ -n "$f" ] || { log "$m.ko not found in $kpkg"; return 1; }
    case "$f" in
      *.xz) xz -dc "$f" > "$R/ata/$m.ko" ;;
      *) cp "$f" "$R/ata/$m.ko" ;;
    esac
  done
  {
    echo '#!/bin/sh'
    echo '# VmPortal rescue guest: load the IDE disk drivers (PIIX IDE, SCSI disks); /dev/sda etc. appear.'
    echo "for m in $DISK_MODS; do"
    echo '  insmod /lib/modules/ata/$m.ko 2>/dev/null'
    echo 'done'
    echo 'for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/sda ] && exit 0; sleep 1; done'
    echo 'echo "vmportal-disks: no /dev/sda" >&2; exit 1'
  } > "$R/vmportal-disks"

  # The initramfs, listed in a fixed order (reproducible).
  {
    echo "dir /bin 0755"
    echo "dir /sbin 0755"
    echo "dir /usr 0755"
    echo "dir /usr/bin 0755"
    echo "dir /usr/sbin 0755"
    echo "dir /etc 0755"
    echo "dir /dev 0755"
    echo "dir /proc 0555"
    echo "dir /sys 0555"
    echo "dir /tmp 1777"
    echo "dir /root 0700"
    echo "dir /lib 0755"
    echo "dir /lib/modules 0755"
    echo "dir /etc/udhcpc 0755"
    echo "nod /dev/console 0600 c 5 1"
    echo "nod /dev/null 0666 c 1 3"
    echo "nod /dev/tty1 0620 c 4 1"
    echo "nod /dev/ttyS0 0660 c 4 64"
    echo "file /bin/busybox 0755 $WORK/busybox/bin/busybox"
    echo "slink /bin/sh busybox 0777"
    echo "file /init 0755 $R/init"
    echo "file /etc/inittab 0644 $R/inittab"
    echo "file /etc/profile 0644 $R/profile"
    echo "file /lib/modules/psmouse.ko 0644 $psmouse"
    echo "file /lib/modules/button.ko 0644 $(ls "$WORK"/kernel/lib/modules/*/kernel/drivers/acpi/button.ko | head -1)"
    echo "file /etc/udhcpc/default.script 0755 $R/udhcpc.script"
    echo "file /lib/modules/e1000.ko 0644 $R/e1000.ko"
    echo "dir /lib/modules/ata 0755"
    for m in $DISK_MODS; do echo "file /lib/modules/ata/$m.ko 0644 $R/ata/$m.ko"; done
    echo "file /sbin/vmportal-disks 0755 $R/vmportal-disks"
  } | "$HERE/newc-cpio.sh" | gzip -n -9 > "$WORK/out/debian-i386-rescue.initrd.gz"
  cp "$vmlinuz" "$WORK/out/debian-i386-rescue.vmlinuz"

  make_rescue_iso "$vmlinuz" debian-i386-rescue.iso "console=tty1 console=ttyS0,115200" || return 1
  # The same guest on a 1024x768x16 VESA framebuffer console (ISOLINUX passes vga= to the kernel's real-mode
  # setup, which sets the mode through the VGA BIOS; vesafb then draws the console): a graphics-mode guest.
  make_rescue_iso "$vmlinuz" debian-i386-rescue-fb.iso "vga=0x317 console=tty1 console=ttyS0,115200" || return 1
  publish debian-i386-rescue "$stamp" "${files[@]}"
  log "debian-i386-rescue: done"
}

# The rescue kernel + initramfs (already in the cache) on a CD made by grub-mkrescue: GRUB 2's El Torito image
# (i386-pc, from the host's grub-pc-bin), a menu on the VGA console and COM1 with a 3 s countdown.
build_rescue_grub() {
  local gver rstamp stamp files=(debian-i386-rescue-grub.iso)
  command -v grub-mkrescue >/dev/null || { log "grub-mkrescue missing: run scripts/install-deps.sh"; return 1; }
  [ -d /usr/lib/grub/i386-pc ] || { log "/usr/lib/grub/i386-pc missing (grub-pc-bin): run scripts/install-deps.sh"; return 1; }
  gver="$(dpkg-query -W -f='${Version}' grub-pc-bin 2>/dev/null || echo unknown)"
  rstamp="$(cat "$CACHE/.debian-i386-rescue.stamp" 2>/dev/null || true)"
  [ -n "$rstamp" ] || { log "debian-i386-rescue is not built"; return 1; }
  stamp="recipe=$RECIPE_VERSION grub-pc-bin=$gver rescue=[$rstamp]"
  if is_current debian-i386-rescue-grub "$stamp" "${files[@]}"; then log "debian-i386-rescue-grub: up to date (grub $gver)"; return 0; fi
  log "debian-i386-rescue-grub: building (grub $gver)"
  local G="$WORK/iso-grub"
  mkdir -p "$G/boot/grub" "$WORK/out"
  cp "$CACHE/debian-i386-rescue.vmlinuz" "$G/boot/vmlinuz"
  cp "$CACHE/debian-i386-rescue.initrd.gz" "$G/boot/initrd.gz"
  cat > "$G/boot/grub/grub.cfg" <<'EOF'
# VmPortal rescue guest on GRUB 2: one entry, booted after a 3 s countdown (any key stops it).
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=3
set default=0
menuentry "VmPortal rescue (Debian i386)" {
  echo "Loading the rescue kernel..."
  linux /boot/vmlinuz console=tty1 console=ttyS0,115200
  initrd /boot/initrd.gz
}
EOF
  find "$G" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  grub-mkrescue -o "$WORK/out/debian-i386-rescue-grub.iso" "$G" -- -volid VMPORTAL_GRUB >"$WORK/grub-mkrescue.log" 2>&1 \
    || { cat "$WORK/grub-mkrescue.log" >&2; log "grub-mkrescue failed"; return 1; }
  [ -s "$WORK/out/debian-i386-rescue-grub.iso" ] || { cat "$WORK/grub-mkrescue.log" >&2; log "grub-mkrescue produced no ISO"; return 1; }
  publish debian-i386-rescue-grub "$stamp" "${files[@]}"
  log "debian-i386-rescue-grub: done"
}

build_memtest() {
  local v stamp files=(memtest86plus.iso memtest86plus.bin)
  v="$(pkg_version memtest86+)"
  stamp="recipe=$RECIPE_VERSION memtest86+=$v"
  if is_current memtest86plus "$stamp" "${files[@]}"; then log "memtest86plus: up to date ($v)"; return 0; fi
  log "memtest86plus: building ($v)"
  fetch memtest86+ memtest
  mkdir -p "$WORK/out"
  cp "$WORK/memtest/usr/lib/memtest86+/memtest86+ia32.iso" "$WORK/out/memtest86plus.iso"
  cp "$WORK/memtest/boot/memtest86+ia32.bin" "$WORK/out/memtest86plus.bin"
  publish memtest86plus "$stamp" "${files[@]}"
}

build_ipxe() {
  local v stamp files=(ipxe.iso ipxe.lkrn)
  v="$(pkg_version ipxe)"
  stamp="recipe=$RECIPE_VERSION ipxe=$v"
  if is_current ipxe "$stamp" "${files[@]}"; then log "ipxe: up to date ($v)"; return 0; fi
  log "ipxe: building ($v)"
  fetch ipxe ipxe
  mkdir -p "$WORK/out"
  cp "$WORK/ipxe/usr/lib/ipxe/ipxe.iso" "$WORK/out/ipxe.iso"
  cp "$WORK/ipxe/boot/ipxe.lkrn" "$WORK/out/ipxe.lkrn"
  publish ipxe "$stamp" "${files[@]}"
}

ensure_i386
# linux-image-686 is the metapackage; its dependency names the current kernel ABI package.
KPKG="$(apt-cache depends linux-image-686:i386 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"
if [ -z "$KPKG" ]; then apt_update || true; KPKG="$(apt-cache depends linux-image-686:i386 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"; fi
KPKG="${KPKG%%:*}"
[ -n "$KPKG" ] && KPKG="$KPKG:i386"
resolve_versions ${KPKG:+"$KPKG"} busybox-static:i386 isolinux syslinux-common memtest86+ ipxe

status=0
build_rescue || { log "debian-i386-rescue FAILED"; status=1; }
build_rescue_grub || { log "debian-i386-rescue-grub FAILED"; status=1; }
build_memtest || { log "memtest86plus FAILED"; status=1; }
build_ipxe || { log "ipxe FAILED"; status=1; }
# The Debian 12 system disk runs dpkg under qemu-user: minutes of CPU (tens of minutes on a busy machine).
# VMPORTAL_DEBIAN_IMAGE=0 leaves it out.
if [ "${VMPORTAL_DEBIAN_IMAGE:-1}" != "0" ]; then
  "$HERE/build-debian-image.sh" || { log "debian-12-i386 FAILED"; status=1; }
else
  log "debian-12-i386: skipped (VMPORTAL_DEBIAN_IMAGE=0)"
fi
if [ "$status" = 0 ]; then log "images ready in $CACHE"; fi
exit $status
