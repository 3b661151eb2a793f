#!/usr/bin/env bash
# Runs the web client's browser test: the release binary, Debian's
# Chromium and playwright-core (no browser download).
#
#   bash tests/browser/run.sh
#
# Installs what is missing first: chromium with apt-get (as root, on
# Debian) and the pinned node modules with `npm ci`. Honours
# CARGO_TARGET_DIR like tests/irctest/run.sh; ROOKERY_BIN skips the build.
# Screenshots land in target/browser-screenshots/. Exits non-zero when a
# check fails.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ ! -x /usr/bin/chromium ]]; then
    echo "browser: installing chromium"
    apt-get update -qq </dev/null
    apt-get install -y -qq chromium </dev/null
fi

if [[ ! -d "$here/node_modules/playwright-core" ]]; then
    echo "browser: installing node modules"
    (cd "$here" && npm ci --no-audit --no-fund)
fi

if [[ -z "${ROOKERY_BIN:-}" ]]; then
    echo "browser: building the release binary"
    (cd "$root" && cargo build --release --bin rookery)
    ROOKERY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/rookery"
    if [[ "$ROOKERY_BIN" != /* ]]; then
        ROOKERY_BIN="$root/$ROOKERY_BIN"
    fi
fi
[[ -x "$ROOKERY_BIN" ]] || { echo "browser: no binary at $ROOKERY_BIN" >&2; exit 2; }
export ROOKERY_BIN

echo "browser: running ($("$ROOKERY_BIN" --version), $(/usr/bin/chromium --version 2>/dev/null || echo chromium))"
cd "$root"
node "$here/web.test.mjs"
