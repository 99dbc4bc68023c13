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
# binfmt_misc) is built too: about 10 min on a quiet host. VMPORTAL_DEBIAN_IMAGE=0 leaves it out (its tests then
# fail in CI, skip elsewhere).
export VMPORTAL_DEBIAN_IMAGE="${VMPORTAL_DEBIAN_IMAGE:-1}"

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

# counters TRX -> "passed failed total executed" (from <Counters total=".." executed=".." passed=".." failed=".." ...>)
counters() {
  local c
  c="$(grep -o '<Counters [^>]*>' "$1" 2>/dev/null | head -1)"
  [ -n "$c" ] || return 1
  echo "$(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$c") $(sed -E 's/.* failed="([0-9]+)".*/\1/' <<<"$c")" \
       "$(sed -E 's/.* total="([0-9]+)".*/\1/' <<<"$c") $(sed -E 's/.* executed="([0-9]+)".*/\1/' <<<"$c")"
}

# failed_tests TRX: the failed tests' methods, one fully qualified name per line (a theory's arguments cut off)
failed_tests() {
  grep -o '<UnitTestResult [^>]*outcome="Failed"[^>]*>' "$1" | sed -E 's/.*testName="([^"(]*).*/\1/' | sort -u
}

for proj in tests/*/*.csproj; do
  name="$(basename "$proj" .csproj)"
  echo "=== $name"
  rm -f "$LOGDIR/$name.trx" "$LOGDIR/$name.rerun.trx"
  dotnet test "$proj" -c Release --no-build -nologo --logger "console;verbosity=normal" \
    --logger "trx;LogFileName=$name.trx" --results-directory "$LOGDIR" 2>&1 | tee "$LOGDIR/$name.log"
  rc=${PIPESTATUS[0]}
  if read -r p f t e < <(counters "$LOGDIR/$name.trx"); then
    # A few failures get one rerun, on their own: a test that passes then is counted as passed but named as FLAKY
    # above the totals, with its first failure's message, so it is seen and fixed. More than 5 failures, or a
    # failure again, count as failed.
    if [ "$f" -ge 1 ] && [ "$f" -le 5 ] && [ "$(failed_tests "$LOGDIR/$name.trx" | wc -l)" -le 5 ]; then
      filter="$(failed_tests "$LOGDIR/$name.trx" | sed 's/^/FullyQualifiedName=/' | paste -sd'|')"
      echo "=== $name: rerunning $f failed test(s) once: $filter"
      dotnet test "$proj" -c Release --no-build -nologo --logger "console;verbosity=normal" --filter "$filter" \
        --logger "trx;LogFileName=$name.rerun.trx" --results-directory "$LOGDIR" 2>&1 | tee "$LOGDIR/$name.rerun.log"
      rerun_rc=${PIPESTATUS[0]}
      if read -r rp rf rt re < <(counters "$LOGDIR/$name.rerun.trx") && [ "$rp" -ge 1 ] && [ "$rf" -lt "$f" ]; then
        p=$((p + f - rf)); f=$rf
        if [ "$rf" = "0" ] && [ $rerun_rc -eq 0 ]; then rc=0; fi
      fi
    fi
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

# Name what failed (with the first lines of its message) just above the totals, where a log's tail shows it; a test
# that failed and then passed on its rerun is named FLAKY, with its first failure.
for trx in "$LOGDIR"/*.trx; do
  [ -f "$trx" ] || continue
  case "$trx" in *.rerun.trx) continue ;; esac
  rerun="${trx%.trx}.rerun.trx"
  if ! command -v python3 >/dev/null; then
    grep -o '<UnitTestResult [^>]*outcome="Failed"[^>]*>' "$trx" | sed -E 's/.*testName="([^"]*)".*/FAILED \1/' || true
    continue
  fi
  python3 - "$trx" "$rerun" <<'PY' || true
import os, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
def failures(path):
    if not os.path.exists(path):
        return None
    return [r for r in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", ns) if r.get("outcome") == "Failed"]
first, again = failures(sys.argv[1]), failures(sys.argv[2])
again_names = None if again is None else {r.get("testName") for r in again}
for r in first:
    flaky = again_names is not None and r.get("testName") not in again_names
    label = "FLAKY" if flaky else "FAILED"
    m = r.find(".//t:Message", ns)
    lines = [l for l in (m.text or "").strip().splitlines() if l.strip()] if m is not None and m.text else []
    note = " (failed, then passed on its rerun)" if flaky else ""
    print(f"{label} {r.get('testName')}{note}: {lines[0][:300] if lines else ''}")
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
