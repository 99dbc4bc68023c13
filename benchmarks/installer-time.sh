#!/usr/bin/env bash
# Installer benchmark: seconds from power-on to the Debian installer's first question ("Select a language"), the
# netboot installer of Debian 12 (text frontend, i386) booted directly (kernel + initrd) with 512 MiB and its
# console on COM1, measured side by side for VmPortal (`vmportal run`) and qemu-system-i386 -accel tcg.
#
#   benchmarks/installer-time.sh [--runs N] [--timeout SECONDS]
#
# The installer comes from the Debian package debian-installer-12-netboot-i386 (apt-get download, ~100 MB, once),
# unpacked into the image cache (${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}/debian-installer-netboot/).
# Not part of the tests: only this benchmark needs it. Needs qemu-system-x86 (scripts/install-deps.sh bench), .NET SDK.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

RUNS=1
TIMEOUT=600
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--timeout SECONDS]" >&2; exit 1 ;;
  esac
done

CACHE="${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}"
DIR="$CACHE/debian-installer-netboot"
KERNEL="$DIR/linux"
INITRD="$DIR/initrd.gz"
if [ ! -s "$KERNEL" ] || [ ! -s "$INITRD" ]; then
  work="$(mktemp -d)"
  (cd "$work" && apt-get download debian-installer-12-netboot-i386) >/dev/null 2>&1 \
    || { echo "apt-get download debian-installer-12-netboot-i386 failed" >&2; rm -rf "$work"; exit 1; }
  dpkg-deb -x "$work"/debian-installer-12-netboot-i386_*.deb "$work/x"
  src="$work/x/usr/lib/debian-installer/images/12/i386/text/debian-installer/i386"
  mkdir -p "$DIR"
  cp "$src/linux" "$src/initrd.gz" "$DIR/"
  dpkg-deb -f "$work"/debian-installer-12-netboot-i386_*.deb Version > "$DIR/VERSION"
  rm -rf "$work"
fi
command -v qemu-system-i386 >/dev/null || { echo "qemu-system-i386 missing: scripts/install-deps.sh bench" >&2; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/VmPortal.Cli -c Release -nologo -v q >/dev/null || { echo "build failed" >&2; exit 1; }
VMPORTAL="$ROOT/src/VmPortal.Cli/bin/Release/net10.0/vmportal"

PROMPT='Select a language'    # the installer's first question
APPEND='console=ttyS0,115200'
MEM=512
# now, elapsed, cpu_of, run_vmportal <args...>, run_qemu <args...>
. "$ROOT/benchmarks/boot-lib.sh"
trap 'rm -f /tmp/vmportal-boot.$$.log /tmp/vmportal-boot.$$.rc /tmp/qemu-boot.$$.log /tmp/vmportal-jit.$$.log' EXIT

echo "Debian installer $(cat "$DIR/VERSION" 2>/dev/null) (netboot, text, i386) → \"$PROMPT\", $MEM MiB, console on COM1; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
  v=$(run_vmportal --kernel "$KERNEL" --initrd "$INITRD" --append "$APPEND")
  q=$(run_qemu -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND")
  echo "run $r: vmportal $v | qemu $q"
  echo "RESULT installer_vmportal_s=${v%% *} installer_qemu_s=${q%% *}"
done
