#!/usr/bin/env bash
# Installs the system packages this project needs on Debian/Ubuntu (the Swift toolchain is assumed).
# Safe to run again: it installs only what is missing. Needs root or sudo when something is missing.
set -euo pipefail

packages=(libhiredis-dev pkg-config redis-server protobuf-compiler openssl ca-certificates haproxy python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
