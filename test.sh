#!/usr/bin/env bash
# Runs every test of VmPortal on a fresh Debian 12 machine with the .NET 10 SDK.
# Installs what the tests need (apt packages, NuGet restore, npm packages, guest images), builds the
# solution, runs each test project, and prints the totals last as "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Guest boots share 2 cores with each other (xunit runs test classes in parallel) and with memtest86+'s long pass:
# give each boot step room (tests/VmPortal.Emulator.Tests/Boot/BootHarness.cs; 300 s when run alone).
export VMPORTAL_BOOT_TIMEOUT="${VMPORTAL_BOOT_TIMEOUT:-900}"
# The Debian 12 system disk (scripts/build-debian-image.sh: mmdebstrap under qemu-user, needs root, chroot and
# binfmt_misc) is left out for now: its build works from scratch (session 8: 1336 s at load 20), and its boot test,
# now on guest time tied to instructions, passed (4 min 42 s), but not yet in a CI run (see docs/platform.md).
# VMPORTAL_DEBIAN_IMAGE=1 builds it.
export VMPORTAL_DEBIAN_IMAGE="${VMPORTAL_DEBIAN_IMAGE:-0}"

bash scripts/install-deps.sh test || echo "warning: dependency installation reported a problem" >&2
if [ -x scripts/build-guest-images.sh ]; then
  bash scripts/build-guest-images.sh || echo "warning: guest image build failed; boot tests will report it" >&2
fi

if [ -x scripts/build-web-assets.sh ]; then
  bash scripts/build-web-assets.sh || echo "warning: console web assets could not be built" >&2
fi

if ! dotnet build VmPortal.sln -c Release -nologo -v q; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

LOGDIR="$ROOT/.data/test-logs"
mkdir -p "$LOGDIR"
passed=0; failed=0; skipped=0; status=0
for proj in tests/*/*.csproj; do
  name="$(basename "$proj" .csproj)"
  echo "=== $name"
  rm -f "$LOGDIR/$name.trx"
  dotnet test "$proj" -c Release --no-build -nologo --logger "console;verbosity=normal" \
    --logger "trx;LogFileName=$name.trx" --results-directory "$LOGDIR" 2>&1 | tee "$LOGDIR/$name.log"
  rc=${PIPESTATUS[0]}
  # Totals from the TRX report: <Counters total=".." passed=".." failed=".." notExecuted=".." ...>
  counters="$(grep -o '<Counters [^>]*>' "$LOGDIR/$name.trx" 2>/dev/null | head -1)"
  if [ -n "$counters" ]; then
    p=$(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$counters")
    f=$(sed -E 's/.* failed="([0-9]+)".*/\1/' <<<"$counters")
    t=$(sed -E 's/.* total="([0-9]+)".*/\1/' <<<"$counters")
    e=$(sed -E 's/.* executed="([0-9]+)".*/\1/' <<<"$counters")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + t - e))
    if [ $rc -ne 0 ] && [ "$f" = "0" ]; then failed=$((failed + 1)); fi
  elif grep -q "No test is available" "$LOGDIR/$name.log"; then
    :
  else
    failed=$((failed + 1))
    rc=1
  fi
  if [ $rc -ne 0 ]; then status=1; fi
done

# Name what failed (with the first lines of its message) just above the totals, where a log's tail shows it.
for trx in "$LOGDIR"/*.trx; do
  [ -f "$trx" ] || continue
  if ! command -v python3 >/dev/null; then
    grep -o '<UnitTestResult [^>]*outcome="Failed"[^>]*>' "$trx" | sed -E 's/.*testName="([^"]*)".*/FAILED \1/' || true
    continue
  fi
  python3 - "$trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") == "Failed":
        m = r.find(".//t:Message", ns)
        lines = [l for l in (m.text or "").strip().splitlines() if l.strip()] if m is not None and m.text else []
        print(f"FAILED {r.get('testName')}: {lines[0][:300] if lines else ''}")
        # the next lines of the message too (a CLI's second stderr line, a screen excerpt), a few only
        for l in lines[1:6]:
            print(f"  | {l.rstrip()[:200]}")
        st = r.find(".//t:StackTrace", ns)
        # where in the test's own code it failed (the first two frames in tests/), so the tail of a CI log says which step
        frames = [l.strip() for l in (st.text or "").splitlines() if "/tests/" in l] if st is not None else []
        for f in frames[:2]:
            print(f"    {f[:300]}")
PY
done
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
