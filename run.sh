#!/usr/bin/env bash
# Runs the VmPortal portal on http://127.0.0.1:5080 (pass --urls to change).
# Without ConnectionStrings__Portal, the portal starts a private PostgreSQL cluster under ./.data/postgres.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
bash scripts/install-deps.sh run || echo "warning: dependency installation reported a problem" >&2
if [ -x scripts/build-guest-images.sh ]; then bash scripts/build-guest-images.sh || echo "warning: guest image build failed" >&2; fi
dotnet build src/VmPortal.Web -c Release -nologo -v q
exec dotnet run --project src/VmPortal.Web -c Release --no-build --no-launch-profile -- "$@"
