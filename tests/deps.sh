#!/usr/bin/env bash
# Installs the Debian 12 packages omikeyfs needs to build, test and demo
# (chromium and xdg-utils: the sign-in tests' browser, run headless),
# asking apt only for what is missing, then Google's Firebase Auth Emulator
# (tests/firebase: firebase-tools, exactly as locked) for the sign-in tests.
#   --no-emulator       skip the emulator (the demo does not need it)
#   OMIKEYFS_FIREBASE_DIR  where the emulator goes; default
#     ${XDG_CACHE_HOME:-$HOME/.cache}/omikeyfs-tests/firebase-HASH, HASH
#     naming the lock file, so tests/conftest.py finds it the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

emulator=1
[ "${1:-}" = --no-emulator ] && emulator=0

packages=(
	build-essential gcc meson ninja-build pkg-config
	libfuse3-dev fuse3 libcurl4-openssl-dev libjson-c-dev ca-certificates
	scdoc man-db
	python3 python3-pytest
	attr rsync curl gdb strace
	chromium xdg-utils
	clang libclang-rt-14-dev clang-format
	debhelper dpkg-dev lintian git systemd
	systemd-container debootstrap
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
# Commands, not packages: NodeSource's nodejs bundles npm and conflicts
# with Debian's npm package; Debian's own nodejs (18) needs it.
if [ $emulator = 1 ]; then
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
fi

if [ ${#missing[@]} -ne 0 ]; then
	sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	echo "installing: ${missing[*]}" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ $emulator = 1 ] || exit 0

lock=tests/firebase/package-lock.json
hash=$(sha256sum "$lock" | cut -c1-16)
dir=${OMIKEYFS_FIREBASE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/omikeyfs-tests/firebase-$hash}
[ -x "$dir/node_modules/.bin/firebase" ] && exit 0

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
	echo "deps.sh: node $(node --version) is too old for the Firebase Auth Emulator (needs 18+)" >&2
	exit 1
fi

echo "installing the Firebase Auth Emulator (firebase-tools, ~300 MB) in $dir" >&2
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp tests/firebase/package.json "$lock" "$tmp"/
# Exactly the locked tree; no install scripts (the only ones build an
# optional native regex module and check versions), no audit or update check.
if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier \
	--loglevel=error >npm.log 2>&1); then
	tail -n 20 "$tmp/npm.log" >&2
	echo "deps.sh: npm ci of tests/firebase failed" >&2
	exit 1
fi
rm -f "$tmp/npm.log"
# Whole or not at all: a half-installed tree never looks installed.
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
