#!/usr/bin/env bash
# Boot-time benchmark: seconds from power-on to the busybox shell prompt of the Debian i386 rescue guest,
# measured side by side on this machine for VmPortal (`vmportal run`, in-process emulator),
# qemu-system-i386 -accel tcg and Bochs, on the same ISO (through the BIOS + ISOLINUX from the CD-ROM) and for
# direct kernel boot (VmPortal and QEMU; Bochs has no direct kernel boot), with the same memory. Writes the
# "Boot" section of docs/performance.md.
#
#   benchmarks/boot-time.sh [--runs N] [--timeout SECONDS] [--no-doc] [--jit on|off|both] [--vmportal-only]
#
# --jit both runs vmportal with its JIT tier off and on, one after the other for each guest (a column each, and the
# JIT's counters: blocks compiled, compile time, code cache); --vmportal-only skips QEMU and Bochs.
#
# Needs: the guest images (scripts/build-guest-images.sh), qemu-system-x86 and bochs + bochsbios + vgabios
# (scripts/install-deps.sh bench, run below; Bochs is skipped when missing), .NET SDK.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RUNS=1
TIMEOUT=600
WRITE_DOC=1
JIT_MODES=""
OTHERS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --no-doc) WRITE_DOC=0; shift ;;
    --jit) case "$2" in both) JIT_MODES="off on" ;; on|off) JIT_MODES="$2" ;; *) echo "--jit takes on, off or both" >&2; exit 1 ;; esac; shift 2 ;;
    --vmportal-only) OTHERS=0; shift ;;
    *) echo "usage: $0 [--runs N] [--timeout SECONDS] [--no-doc] [--jit on|off|both] [--vmportal-only]" >&2; exit 1 ;;
  esac
done
bash scripts/install-deps.sh bench >/dev/null || echo "warning: benchmark dependencies incomplete (see scripts/install-deps.sh bench)" >&2
IMAGES="${VMPORTAL_IMAGE_CACHE:-$HOME/.cache/vmportal/images}"
ISO="$IMAGES/debian-i386-rescue.iso"
KERNEL="$IMAGES/debian-i386-rescue.vmlinuz"
INITRD="$IMAGES/debian-i386-rescue.initrd.gz"
APPEND="console=tty1 console=ttyS0,115200"
MEM=128
PROMPT='/ # '
for f in "$ISO" "$KERNEL" "$INITRD"; do
  [ -f "$f" ] || { echo "missing $f: run scripts/build-guest-images.sh" >&2; exit 1; }
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/VmPortal.Cli -c Release -nologo -v q >/dev/null || { echo "build failed" >&2; exit 1; }
VMPORTAL="$ROOT/src/VmPortal.Cli/bin/Release/net10.0/vmportal"

# now, elapsed, cpu_of, run_vmportal <args...>, run_qemu <args...>
. "$ROOT/benchmarks/boot-lib.sh"

# bochs: headless (the Debian build has no "nogui" library, so the VNC display "rfb" without waiting for a
# client), its own BIOS and LGPL VGA BIOS, the ISO on the secondary master, COM1 to a file watched for the prompt.
# Debian's bochs has its debugger compiled in: "-rc" feeds it "continue". Guest time follows host time
# (clock: sync=realtime) like the other two. Sound goes to Bochs's dummy drivers: with its default (ALSA) and no
# sound card on the host, Debian's bochs 2.7 aborts at start ("buffer overflow detected").
run_bochs() {
  command -v bochs >/dev/null || { echo "not installed"; return; }
  local dir start pid
  dir=$(mktemp -d)
  cat > "$dir/bochsrc" <<EOB
megs: $MEM
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15
ata1-master: type=cdrom, path=$ISO, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$dir/serial.log
display_library: rfb, options="timeout=0"
clock: sync=realtime, time0=local
log: $dir/bochs.log
panic: action=fatal
error: action=ignore
info: action=ignore
debug: action=ignore
mouse: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
EOB
  echo continue > "$dir/debugger.rc"
  : > "$dir/serial.log"
  start=$(now)
  bochs -q -f "$dir/bochsrc" -rc "$dir/debugger.rc" </dev/null >"$dir/out.log" 2>&1 &
  pid=$!
  local result="timeout (>${TIMEOUT} s)"
  while kill -0 $pid 2>/dev/null; do
    if grep -aqF "$PROMPT" "$dir/serial.log" 2>/dev/null; then result="$(elapsed "$start") ($(cpu_of $pid) CPU)"; break; fi
    if [ "$(elapsed "$start" | cut -d. -f1)" -ge "$TIMEOUT" ]; then break; fi
    sleep 0.05
  done
  if ! kill -0 $pid 2>/dev/null && [ "$result" = "timeout (>${TIMEOUT} s)" ]; then
    result="failed ($(grep -a -m1 -E 'PANIC|exiting' "$dir/out.log" "$dir/bochs.log" 2>/dev/null | cut -c1-120))"
  fi
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  rm -rf "$dir"
  echo "$result"
}

# vmportal once per JIT mode (none given: the CPU's default), the modes alternating for each guest.
run_vmportal_modes() { # <args...> ; prints " cell | cell |"
  local out="" m
  if [ -z "$JIT_MODES" ]; then echo " $(run_vmportal "$@") |"; return; fi
  for m in $JIT_MODES; do out="$out $(run_vmportal --jit "$m" "$@") |"; done
  echo "$out"
}
V_HEAD="| vmportal run |"; V_SEP="---|"
if [ -n "$JIT_MODES" ]; then V_HEAD="|"; V_SEP=""; for m in $JIT_MODES; do V_HEAD="$V_HEAD vmportal run, JIT $m |"; V_SEP="$V_SEP---|"; done; fi
: > /tmp/vmportal-jit.$$.log

declare -a ROWS
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$RUNS"); do
  v_iso=$(run_vmportal_modes --cdrom "$ISO")
  q_iso="not run"; b_iso="not run"; q_k="not run"
  [ "$OTHERS" = 1 ] && q_iso=$(run_qemu -cdrom "$ISO" -boot d)
  [ "$OTHERS" = 1 ] && b_iso=$(run_bochs)
  v_k=$(run_vmportal_modes --kernel "$KERNEL" --initrd "$INITRD" --append "$APPEND")
  [ "$OTHERS" = 1 ] && q_k=$(run_qemu -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND")
  ROWS+=("| ISO from CD-ROM (BIOS + ISOLINUX) |$v_iso $q_iso | $b_iso |" "| direct kernel boot |$v_k $q_k | n/a |")
  echo "run $i: ISO vmportal=$v_iso qemu=$q_iso bochs=$b_iso | kernel vmportal=$v_k qemu=$q_k"
done
JIT_STATS="$(sed 's/^/    /' /tmp/vmportal-jit.$$.log)"
rm -f /tmp/vmportal-boot.$$.log /tmp/vmportal-boot.$$.rc /tmp/qemu-boot.$$.log /tmp/vmportal-jit.$$.log

QEMU_VER="$(qemu-system-i386 --version | head -1)"
BOCHS_VER="$( (dpkg-query -W -f='Bochs ${Version}' bochs 2>/dev/null) || echo 'Bochs not installed')"
CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
SECTION="$(cat <<EOT
## Boot

Seconds from power-on to the busybox shell prompt (\`$PROMPT\`) of the Debian i386 rescue guest, $MEM MiB RAM
(wall clock, and in parentheses the CPU seconds the emulator process used: the machine is shared, so wall time
depends on the load; load average at the start of this run: $LOAD),
measured by \`benchmarks/boot-time.sh\` on $(date -u +%Y-%m-%d) ($CPU_MODEL, $(nproc) cores shared with other work;
$QEMU_VER, TCG; $BOCHS_VER). Target for issue 4: under 60 s.

| guest $V_HEAD qemu-system-i386 -accel tcg | bochs |
|---|$V_SEP---|---|
$(printf '%s\n' "${ROWS[@]}")
$( [ -n "$JIT_STATS" ] && printf '\nJIT counters of the runs with the JIT on (`vmportal run --jit on` prints them):\n\n%s\n' "$JIT_STATS")

Command: \`vmportal run --memory $MEM --cdrom debian-i386-rescue.iso --until '$PROMPT' --timeout $TIMEOUT\`
(and \`--kernel/--initrd/--append '$APPEND'\`); QEMU: \`qemu-system-i386 -accel tcg -m $MEM -nographic -nic none -cdrom …\`,
timed until the prompt appears on its serial output; Bochs: its own BIOS (bochsbios) and VGA BIOS (vgabios), COM1 to
a file, \`display_library: rfb\` (no window), \`clock: sync=realtime\`.
EOT
)"
echo "$SECTION"
if [ "$WRITE_DOC" = 1 ]; then
  DOC=docs/performance.md
  [ -f "$DOC" ] || printf '# Performance\n' > "$DOC"
  # Replace the "## Boot" section in place (up to the next "## " heading), or append it.
  printf '%s\n\n' "$SECTION" > "$DOC.section"
  if grep -q '^## Boot$' "$DOC"; then
    awk -v f="$DOC.section" '
      /^## Boot$/ { while ((getline line < f) > 0) print line; skip = 1; next }
      /^## / { skip = 0 }
      !skip' "$DOC" > "$DOC.tmp"
  else
    { cat "$DOC"; printf '\n'; cat "$DOC.section"; } > "$DOC.tmp"
  fi
  mv "$DOC.tmp" "$DOC"
  rm -f "$DOC.section"
  echo "updated $DOC"
fi
