#!/bin/sh
# Quick start, step 2: build kvmkit three times (plain, with ASan + UBSan, and
# with ThreadSanitizer) and run the test suites in each, then print one
# summary line "N passed, N failed, N skipped". Tests needing /dev/kvm are
# skipped where it is absent and run for real inside the emulated x86 host
# (suite hosts-kvm, plain build always, ASan build only where /dev/kvm is
# absent). The TSan build runs the unit and kvm suites (its KVM tests run
# where /dev/kvm is usable, and skip elsewhere).
#   KVMKIT_TEST_QUICK=1   skip the sanitizer builds and the arm64 host
set -u
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh || exit 1

status=0
logs=""
timings=""

run_build() { # name, meson options...
	dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"/tmp/kvmkit-setup-$$.log" 2>&1 ||
			{ cat "/tmp/kvmkit-setup-$$.log"; echo "meson setup $dir failed"; return 1; }
	fi
	ninja -C "$dir" || { echo "build of $dir failed"; return 1; }
}

run_suites() { # dir, suites...
	dir=$1
	shift
	args=""
	for s in "$@"; do args="$args --suite $s"; done
	t0=$(date +%s)
	# shellcheck disable=SC2086
	meson test -C "$dir" --print-errorlogs $args || status=1
	logs="$logs $dir/meson-logs/testlog.json"
	timings="$timings
$dir ($*): $(($(date +%s) - t0)) s"
}

if run_build build; then
	run_suites build unit cli kvm hosts hosts-kvm
	# valgrind over the unit test binaries (memcheck, leaks are errors)
	meson test -C build --suite unit --wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q' \
		--logbase valgrind --print-errorlogs || status=1
	logs="$logs build/meson-logs/valgrind-valgrind.json"  # meson appends the wrapper name
else
	status=1
	echo '{"name": "build", "result": "FAIL"}' >/tmp/kvmkit-buildfail.json
	logs="$logs /tmp/kvmkit-buildfail.json"
fi

if [ -z "${KVMKIT_TEST_QUICK:-}" ]; then
	# With a usable /dev/kvm here the sanitizer build's KVM tests run on it
	# (the plain build covers real KVM's behaviour in the emulated host);
	# only without one do they go into the emulated host.
	asan_kvm=hosts-kvm
	[ -r /dev/kvm ] && [ -w /dev/kvm ] && asan_kvm=""
	if run_build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false; then
		# shellcheck disable=SC2086
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			run_suites build-asan unit cli kvm $asan_kvm
	else
		status=1
		echo '{"name": "build-asan", "result": "FAIL"}' >/tmp/kvmkit-asanfail.json
		logs="$logs /tmp/kvmkit-asanfail.json"
	fi
	# Data races between vCPU threads, the irqchip thread and the caller's
	# thread (stop, pause, kicks, statistics): the first report fails the
	# test (exit 66). False positives go in tests/tsan.supp, one per entry.
	# clang, not gcc: gcc 12 expands a fixed-size memcpy or struct copy
	# inline without instrumenting it, and so missed a racy stats copy.
	if CC=clang run_build build-tsan -Db_sanitize=thread -Db_lundef=false -Dbench=false; then
		TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp" \
			run_suites build-tsan unit kvm
	else
		status=1
		echo '{"name": "build-tsan", "result": "FAIL"}' >/tmp/kvmkit-tsanfail.json
		logs="$logs /tmp/kvmkit-tsanfail.json"
	fi
fi

# arm64: a static cross build whose guest tests and Linux boot run in the
# emulated arm64 host (GICv3, and a GICv2 host for the fallback).
if [ -z "${KVMKIT_TEST_QUICK:-}" ]; then
	fdt=${KVMKIT_ARM64_LIBFDT:-$HOME/.cache/kvmkit-arm64-libfdt}
	if sh scripts/arm64-libfdt.sh "$fdt" >/dev/null &&
		run_build build-arm64 --cross-file cross/aarch64-linux-gnu.ini -Dlibfdt_dir="$fdt"; then
		run_suites build-arm64 hosts-arm64
	else
		status=1
		echo '{"name": "build-arm64", "result": "FAIL"}' >/tmp/kvmkit-arm64fail.json
		logs="$logs /tmp/kvmkit-arm64fail.json"
	fi
fi

# libFuzzer smoke runs of the parsers and guest-facing models (clang)
if CC=clang run_build build-fuzz -Dfuzz=true -Dtests=false -Dbench=false; then
	run_suites build-fuzz fuzz
else
	status=1
fi

echo "time per test run:$timings"
# shellcheck disable=SC2086
python3 - $logs <<'PY'
import json, re, sys
p = f = s = 0
failed = []
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        f += 1
        print(f"missing test log {path}")
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        r = t.get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif r == "SKIP":
            s += 1
        else:
            f += 1
            failed.append((path, t))
# The failures again at the very end, where a reader of only the tail of a
# long CI log sees them: which test, how it ended, its last output lines.
for path, t in failed:
    print(f"=== FAILED: {t.get('name', '?')} ({t.get('result') or '?'}, "
          f"{t.get('duration', 0):.0f} s, {path})")
    out = ((t.get("stdout") or "") + (t.get("stderr") or "")).splitlines()
    # First the lines that say what failed, wherever they are (a suite of
    # many programs fails early and keeps printing), then the last lines.
    marks = re.compile(r"FAIL|not ok|error|refused:|watchdog|lockup|"
                       r"stopped responding|Assert|retry-wrapper", re.I)
    hits = [l for l in out[:-25] if marks.search(l) and
            not re.search(r"\b0 failed|Fail: +0", l)]
    if hits:
        print("  lines that say what failed (%d, first 30):" % len(hits))
        for l in hits[:30]:
            print("    " + l)
    print("  last lines:")
    for l in out[-25:]:
        print("    " + l)
print(f"{p} passed, {f} failed, {s} skipped")
sys.exit(1 if f else 0)
PY
rc=$?
[ $status -eq 0 ] && [ $rc -eq 0 ]
