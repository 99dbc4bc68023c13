#!/usr/bin/env bash
# Builds the browser console client: installs the npm packages of wwwroot-assets/ (npm ci from the committed
# package-lock.json; skipped when node_modules already matches it) and bundles them with esbuild into
# src/VmPortal.Web/wwwroot/console/console.js + console.css. Safe to run again; rebuilds only when a source changed.
#   scripts/build-web-assets.sh          build (if needed)
#   scripts/build-web-assets.sh --force  reinstall nothing, but rebundle
#   scripts/build-web-assets.sh --test   also run the client's unit tests (node --test)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
ASSETS="$ROOT/wwwroot-assets"
OUT="$ROOT/src/VmPortal.Web/wwwroot/console"
FORCE=0; TEST=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --test) TEST=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "build-web-assets: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

cd "$ASSETS"
# npm step: skip when node_modules was installed from this very lock file.
STAMP="node_modules/.vmportal-lock.sha256"
if [ -f package-lock.json ]; then
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ] || [ ! -x node_modules/.bin/esbuild ]; then
    echo "build-web-assets: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$STAMP"
  fi
else
  echo "build-web-assets: npm install (no package-lock.json yet)"
  npm install --no-audit --no-fund --loglevel=error
fi

# Bundle step: skip when the outputs are newer than every source.
newest_src="$(find console build.mjs package-lock.json -type f -newer "$OUT/console.js" 2>/dev/null | head -1 || true)"
if [ "$FORCE" = 1 ] || [ ! -f "$OUT/console.js" ] || [ ! -f "$OUT/console.css" ] || [ -n "$newest_src" ]; then
  mkdir -p "$OUT"
  node build.mjs "$OUT"
else
  echo "build-web-assets: $OUT is up to date"
fi

if [ "$TEST" = 1 ]; then
  node --test test/
fi
