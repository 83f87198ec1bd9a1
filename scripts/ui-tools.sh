#!/usr/bin/env bash
# Install what the web UI's tests need, from Debian's packages, where missing: Chromium (the
# browser tests in tests/ui/browser drive /usr/bin/chromium with Playwright, which never
# downloads a browser of its own) and Node.js with npm (a test rebuilds the UI's assets from
# ui/ and checks they match the shipped ones). Idempotent: run it again and it only checks.
# Needs root or sudo for apt.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "$(/usr/bin/chromium --version 2>/dev/null || echo chromium) is at /usr/bin/chromium;" \
     "node $(node --version), npm $(npm --version)"
