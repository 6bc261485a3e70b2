#!/usr/bin/env bash
# Installs what is missing, builds omikeyfs and mounts a key list on ./mnt
# (or on the directory given as $1): your real keys when you have signed in
# (omikeyfs --login saved the default session file) or OMI_API_KEY is set,
# otherwise the bundled demo list served on loopback by tests/fakeapi.py.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mnt=${1:-$root/mnt}

bash tests/deps.sh --no-emulator
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
	fusermount3 -u "$mnt"
fi

if [ -n "${XDG_CONFIG_HOME:-}" ] && [ "${XDG_CONFIG_HOME#/}" != "$XDG_CONFIG_HOME" ]; then
	session=$XDG_CONFIG_HOME/omikeyfs/session.json
else
	session=${HOME:-/nonexistent}/.config/omikeyfs/session.json
fi

if [ -z "${OMI_API_KEY:-}" ] && [ -e "$session" ]; then
	# No credential given: omikeyfs uses the saved session.
	build/omikeyfs "${OMIKEYFS_URL:-https://api.omi.me}" "$mnt"
	echo "mounted your keys (the session in $session) on $mnt"
elif [ -n "${OMI_API_KEY:-}" ]; then
	build/omikeyfs "${OMIKEYFS_URL:-https://api.omi.me}" "$mnt"
	echo "mounted your keys on $mnt"
else
	port_file=$(mktemp)
	rm -f "$port_file"
	/usr/bin/python3 tests/fakeapi.py --port 0 --port-file "$port_file" --token omi_dev_demo_token \
		--keys tests/data/demo-keys.json >/dev/null 2>&1 &
	api_pid=$!
	for _ in $(seq 100); do
		[ -s "$port_file" ] && break
		sleep 0.1
	done
	port=$(cat "$port_file")
	rm -f "$port_file"
	OMI_API_KEY=omi_dev_demo_token build/omikeyfs "http://127.0.0.1:$port" "$mnt"
	echo "mounted the demo key list (fake API pid $api_pid on port $port) on $mnt"
	echo "when done: fusermount3 -u $mnt; kill $api_pid"
	echo "your own keys: build/omikeyfs --login, then run this script again"
fi
echo
ls -l "$mnt" | head -n 8
echo
echo "try:  grep -lx memories:write $mnt/*/scopes"
echo "      find $mnt -name last_used_at -empty"
echo "      getfattr -d -m - $mnt"
