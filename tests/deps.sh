#!/usr/bin/env bash
# Installs the Debian 12 packages omikeyfs needs to build, test and demo,
# asking apt only for what is missing.
set -euo pipefail

packages=(
	gcc meson ninja-build pkg-config
	libfuse3-dev fuse3 libcurl4-openssl-dev libjson-c-dev ca-certificates
	scdoc man-db
	python3 python3-pytest
	attr rsync curl
	clang libclang-rt-14-dev
	debhelper dpkg-dev lintian git systemd
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing: ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
