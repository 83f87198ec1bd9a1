#!/usr/bin/env bash
# Install Debian's Chromium (if missing) for the web UI's browser tests (tests/ui/browser):
# Playwright drives /usr/bin/chromium and never downloads a browser of its own.
# Idempotent: run it again and it only checks. Needs root or sudo for apt.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/chromium ]; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi
echo "$(/usr/bin/chromium --version 2>/dev/null || echo chromium) is at /usr/bin/chromium"
