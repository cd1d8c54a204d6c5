#!/bin/sh
# Install Debian's headless-capable chromium when it is absent (used by the report rendering test).
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is not installed and this user cannot install it: run 'sudo apt-get install -y chromium'" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends chromium >/dev/null
}
command -v chromium >/dev/null 2>&1 || {
    echo "apt-get ran but no 'chromium' binary is on PATH" >&2
    exit 1
}
