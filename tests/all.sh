#!/usr/bin/env bash
# Installs what is missing, builds omikeyfs with -Dwerror=true, and runs
# every test: unit and integration tests, the same suite again under
# ASan+UBSan, and each fuzzer for a bounded time.
#   FUZZ_SECONDS=60   how long each fuzzer runs (0 skips them)
#   SKIP_SANITIZE=1   skip the sanitizer build
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash tests/deps.sh
# deps.sh installed the Firebase Auth Emulator: its tests must not skip.
export OMIKEYFS_NEED_EMULATOR=1

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
passed=0
failed=0

# Adds one meson test run to the totals: a unit test binary counts as one
# test, the integration suite as the tests pytest ran.
count() { # build dir
	local line
	line=$(/usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = 0
for raw in open(sys.argv[1]):
    t = json.loads(raw)
    if t["name"].endswith("integration"):
        out = t.get("stdout", "")
        m = re.findall(r"(\d+) (passed|failed|error)", out.splitlines()[-1] if out.strip() else "")
        for n, kind in m:
            if kind == "passed":
                passed += int(n)
            else:
                failed += int(n)
        if not m:
            failed += 1
        print(out.strip().splitlines()[-1] if out.strip() else "integration: no output", file=sys.stderr)
    elif t["result"] == "OK":
        passed += 1
    else:
        failed += 1
print(passed, failed)
PY
)
	passed=$((passed + ${line% *}))
	failed=$((failed + ${line#* }))
}

echo "== format (clang-format, .clang-format)"
# The C sources as .clang-format writes them: one style, checked, not argued.
if find src include tests/unit tests/fuzz -name '*.[ch]' -print0 |
	xargs -0 -r clang-format --dry-run --Werror; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	status=1
fi

echo "== build (werror)"
setup build -Dwerror=true
meson compile -C build
echo "== tests"
# OMIKEYFS_TEST_DIST=1: this pass also builds the .deb and boots it under
# systemd (tests/test_package.py, tests/test_systemd_boot.py). Both test the
# package built from the sources, not the binary under test, so the ASan
# pass below would only repeat them.
OMIKEYFS_TEST_DIST=1 meson test -C build --print-errorlogs || status=1
count build

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
	echo "== build with ASan+UBSan"
	setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	meson compile -C build-asan
	echo "== tests under ASan+UBSan"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C build-asan --print-errorlogs || status=1
	count build-asan
fi

fuzz_seconds=${FUZZ_SECONDS:-60}
# Runs one libFuzzer target for fuzz_seconds from a copy of its seed corpus.
fuzz() { # target, corpus dir under tests/fuzz
	local target=$1 corpus
	echo "== fuzzer $target (${fuzz_seconds} s)"
	meson compile -C build-fuzz "$target"
	corpus=$(mktemp -d)
	cp "$root/tests/fuzz/$2"/* "$corpus"/
	if "build-fuzz/tests/fuzz/$target" -max_total_time="$fuzz_seconds" -max_len=65536 \
		-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$corpus" \
		2>"build-fuzz/$target.log"; then
		passed=$((passed + 1))
	else
		tail -n 40 "build-fuzz/$target.log"
		failed=$((failed + 1))
		status=1
	fi
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "build-fuzz/$target.log" || true
	rm -rf "$corpus"
}
if [ "$fuzz_seconds" != 0 ]; then
	CC=clang setup build-fuzz -Dfuzz=true -Dbuildtype=debugoptimized -Dman-pages=disabled
	fuzz fuzz_keylist corpus
	fuzz fuzz_persist corpus_persist
	fuzz fuzz_session corpus_session
fi

echo "omikeyfs: $passed passed, $failed failed"
exit $status
