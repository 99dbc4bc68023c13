#!/usr/bin/env bash
# Manual check of the disk path with Linux's own drivers (not part of ./test.sh: one rescue-guest boot, minutes under load).
# Boots the rescue kernel with an initramfs extended by libata/ata_piix/sd_mod (from the same Debian kernel package)
# on a qcow2 disk, writes 4 MiB with `dd conv=fsync` (→ FLUSH CACHE EXT), and while the VM still runs checks the
# qcow2 file with qemu-img (clean, data present = the flush reached the image); then kill -9s the VM and checks again.
# Needs: the rescue images (scripts/build-guest-images.sh), qemu-utils, cpio, a built src/VmPortal.Cli (Release).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
IMAGES="${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}"
VMPORTAL="$HERE/src/VmPortal.Cli/bin/Release/net10.0/vmportal"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
KPKG="$(sed -n 's/.*kernel=\([^ =]*\)=.*/\1/p' "$IMAGES/.debian-i386-rescue.stamp")"
(cd "$W" && apt-get -q -o APT::Sandbox::User=root download "$KPKG" >/dev/null && dpkg-deb -x ./*.deb k)
K="$(ls -d "$W"/k/lib/modules/*)/kernel"
MODS="scsi_common scsi_mod libata ata_piix crct10dif_common crct10dif_generic crc-t10dif crc64 crc64_rocksoft_generic crc64-rocksoft t10-pi sd_mod"
mkdir -p "$W/x/mods"
for m in $MODS; do cp "$(find "$K" -name "$m.ko" | head -1)" "$W/x/mods/"; done
cat > "$W/x/ata.sh" <<SCRIPT
exec > /dev/ttyS0 2>&1
for m in $MODS; do insmod /mods/\$m.ko; done
sleep 3
dmesg | grep -E "ata[0-9]|sd 0"
echo "xfer_mode \$(cat /sys/class/ata_device/dev1.0/xfer_mode)"
dd if=/dev/urandom of=/tmp/pat bs=65536 count=64 2>/dev/null
dd if=/tmp/pat of=/dev/sda bs=65536 seek=16 conv=fsync 2>&1 | tail -1
echo "PAT \$(md5sum < /tmp/pat)"
echo ATA-TEST-DONE
sleep 1000
SCRIPT
(cd "$W/x" && find . | cpio -o -H newc --quiet | gzip -n) > "$W/extra.gz"
cat "$IMAGES/debian-i386-rescue.initrd.gz" "$W/extra.gz" > "$W/initrd.gz"
qemu-img create -f qcow2 "$W/d.qcow2" 64M >/dev/null
"$VMPORTAL" run --kernel "$IMAGES/debian-i386-rescue.vmlinuz" --initrd "$W/initrd.gz" --append "console=tty1 console=ttyS0,115200" \
  --hda "$W/d.qcow2" --serial stdio --type "sh /ata.sh\n" --timeout 1800 > "$W/serial.log" 2>&1 &
PID=$!
for _ in $(seq 1 1800); do grep -q ATA-TEST-DONE "$W/serial.log" && break; sleep 1; done
grep -E "ata[0-9]|sd 0|xfer_mode|records|PAT" "$W/serial.log" | sort -u
echo "while running: $(qemu-img check -U "$W/d.qcow2" | head -1)"
qemu-img convert -U -O raw "$W/d.qcow2" "$W/live.raw"
echo "HOST $(dd if="$W/live.raw" bs=65536 skip=16 count=64 2>/dev/null | md5sum)   (must equal PAT)"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
echo "after kill -9: $(qemu-img check "$W/d.qcow2" | head -1)"
qemu-img convert -O raw "$W/d.qcow2" "$W/after.raw"
echo "HOST $(dd if="$W/after.raw" bs=65536 skip=16 count=64 2>/dev/null | md5sum)   (must equal PAT)"
