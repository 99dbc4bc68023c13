#!/usr/bin/env bash
# Installs the Debian packages VmPortal needs on a fresh Debian 12 machine.
# Safe to run again: only missing packages are installed.
#   scripts/install-deps.sh run    -> what ./run.sh needs (PostgreSQL, guest-image tools)
#   scripts/install-deps.sh test   -> additionally chromium, nasm, qemu for tests
#   scripts/install-deps.sh bench  -> additionally bochs, the third emulator of benchmarks/boot-time.sh
set -u
MODE="${1:-run}"

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

RUN_PKGS=(postgresql xorriso mtools grub-pc-bin grub-common libefiboot1 libefivar1 seabios ipxe-qemu cpio gzip xz-utils ca-certificates)
# The Debian system disk (scripts/build-debian-image.sh): i386 bootstrap under qemu-user, rootless disk assembly.
RUN_PKGS+=(mmdebstrap arch-test qemu-user-static e2fsprogs fdisk dosfstools syslinux syslinux-common)
TEST_PKGS=(chromium nasm qemu-system-x86 qemu-utils procps fonts-dejavu-core genisoimage openssl whois curl jq openssh-client)
BENCH_PKGS=(bochs bochsbios vgabios)

# The console client is bundled with npm + esbuild; the machine image may already ship Node.js (any >= 18 works).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then RUN_PKGS+=(nodejs npm); fi

PKGS=("${RUN_PKGS[@]}")
if [ "$MODE" = "test" ] || [ "$MODE" = "bench" ]; then PKGS+=("${TEST_PKGS[@]}"); fi
if [ "$MODE" = "bench" ]; then PKGS+=("${BENCH_PKGS[@]}"); fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# i386 architecture is needed to download the i386 guest packages (busybox-static, kernel).
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  $SUDO dpkg --add-architecture i386
  NEED_UPDATE=1
fi

if [ ${#missing[@]} -gt 0 ] || [ "${NEED_UPDATE:-0}" = "1" ] || [ ! -f /var/lib/apt/lists/lock ] ; then
  # apt-get update can exit non-zero while an index syncs: retry, never abort on it.
  for i in 1 2 3 4 5; do
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -q >/dev/null 2>&1; then break; fi
    echo "apt-get update failed (try $i), retrying..." >&2
    sleep 5
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  for i in 1 2 3; do
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then break; fi
    echo "apt-get install failed (try $i), retrying..." >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -q >/dev/null 2>&1 || true
    sleep 5
  done
fi
exit 0
