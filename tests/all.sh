#!/usr/bin/env bash
# Installs what is missing, builds omikeyfs with -Dwerror=true, and runs
# every test: unit and integration tests, the same suite again under
# ASan+UBSan, and the fuzzer for a bounded time.
#   FUZZ_SECONDS=60   how long the fuzzer runs (0 skips it)
#   SKIP_SANITIZE=1   skip the sanitizer build
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash tests/deps.sh

# Debian's python3 sees Debian's pytest, whatever python3 comes first on PATH.
export PATH="/usr/bin:$PATH"

setup() { # dir, extra meson args...
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

status=0

echo "== build (werror)"
setup build -Dwerror=true
meson compile -C build
echo "== tests"
OMIKEYFS_TEST_DIST=1 meson test -C build --print-errorlogs || status=1

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
	echo "== build with ASan+UBSan"
	setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	meson compile -C build-asan
	echo "== tests under ASan+UBSan"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C build-asan --print-errorlogs || status=1
fi

fuzz_seconds=${FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" != 0 ]; then
	echo "== fuzzer (${fuzz_seconds} s)"
	CC=clang setup build-fuzz -Dfuzz=true -Dbuildtype=debugoptimized -Dman-pages=disabled
	meson compile -C build-fuzz fuzz_keylist
	corpus=$(mktemp -d)
	cp "$root"/tests/fuzz/corpus/* "$corpus"/
	if ! build-fuzz/tests/fuzz/fuzz_keylist -max_total_time="$fuzz_seconds" -max_len=65536 \
		-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$corpus" 2>build-fuzz/fuzz.log; then
		tail -n 40 build-fuzz/fuzz.log
		status=1
	fi
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' build-fuzz/fuzz.log || true
	rm -rf "$corpus"
fi

if [ $status -eq 0 ]; then
	echo "all tests passed"
else
	echo "some tests failed"
fi
exit $status
