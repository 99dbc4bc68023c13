#!/usr/bin/env bash
# Runs the VmPortal portal on http://127.0.0.1:5080 (pass --urls to change, e.g. ./run.sh --urls http://0.0.0.0:5080).
# Without ConnectionStrings__Portal, the portal starts (or reuses) a private PostgreSQL cluster under ./.data/postgres,
# listening on 127.0.0.1 only; Ctrl-C stops both. The first start creates the account 'admin' with the password
# from VMPORTAL_ADMIN_PASSWORD, or prints a generated one once.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
bash scripts/install-deps.sh run || echo "warning: dependency installation reported a problem" >&2
if [ -x scripts/build-guest-images.sh ]; then bash scripts/build-guest-images.sh || echo "warning: guest image build failed" >&2; fi
if [ -x scripts/build-web-assets.sh ]; then bash scripts/build-web-assets.sh || echo "warning: console web assets build failed" >&2; fi
dotnet build src/VmPortal.Web -c Release -nologo -v q
# Run the built app from the repository root: ./.data is relative to here, and the build output serves
# MudBlazor's and Blazor's static web assets (the app calls UseStaticWebAssets in every environment).
exec dotnet src/VmPortal.Web/bin/Release/net10.0/VmPortal.Web.dll "$@"
