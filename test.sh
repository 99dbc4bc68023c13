#!/usr/bin/env bash
# Runs every test of VmPortal on a fresh Debian 12 machine with the .NET 10 SDK.
# Installs what the tests need (apt packages, NuGet restore, npm packages, guest images), builds the
# solution, runs each test project, and prints the totals last as "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

bash scripts/install-deps.sh test || echo "warning: dependency installation reported a problem" >&2
if [ -x scripts/build-guest-images.sh ]; then
  bash scripts/build-guest-images.sh || echo "warning: guest image build failed; boot tests will report it" >&2
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
  dotnet test "$proj" -c Release --no-build -nologo --logger "console;verbosity=normal" 2>&1 | tee "$LOGDIR/$name.log"
  rc=${PIPESTATUS[0]}
  # dotnet test's summary line: "Passed!  - Failed:     0, Passed:    12, Skipped:     0, Total:    12, ..."
  line="$(grep -E '(Passed|Failed)! +- Failed: ' "$LOGDIR/$name.log" | tail -1)"
  if [ -n "$line" ]; then
    f=$(sed -E 's/.*Failed: +([0-9]+).*/\1/' <<<"$line")
    p=$(sed -E 's/.*Passed: +([0-9]+).*/\1/' <<<"$line")
    s=$(sed -E 's/.*Skipped: +([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  elif [ $rc -ne 0 ]; then
    failed=$((failed + 1))
  fi
  if [ $rc -ne 0 ]; then status=1; fi
done

echo "$passed passed, $failed failed, $skipped skipped"
exit $status
