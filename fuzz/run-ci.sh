#!/bin/sh
# fuzz/run-ci.sh [SECONDS]  -- the fuzzing step of .ci/run.
#
# Builds every fuzz target once, then runs each for SECONDS (default 15) starting from the seed
# corpus (fuzz/corpus/<target>/, made by seed.sh if missing) plus the committed crash
# reproducers (fuzz/regressions/<target>/, replayed first: a reproducer that still crashes fails
# the run). New corpus entries go to a scratch directory, so a CI run leaves the tree as it was.
# Exits non-zero if any target crashed, hung (-timeout), ran out of memory or failed to build;
# crash inputs land in fuzz/artifacts/<target>/.
#
# Environment:
#   FUZZ_SANITIZER  none (default: fastest, works on stable) or address (AddressSanitizer;
#                   on a stable toolchain this sets RUSTC_BOOTSTRAP=1 for the -Z flags).
#   FUZZ_TARGETS    space-separated subset of targets (default: all, from `cargo fuzz list`).
#
# 17 targets x 15 s + the build take about 5-6 minutes on 2 cores (see fuzz/README.md).
set -eu

secs=${1:-15}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
sanitizer=${FUZZ_SANITIZER:-none}
if [ "$sanitizer" != none ] && ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

start=$(date +%s)
echo "fuzz: building all targets (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer"
echo "fuzz: build took $(($(date +%s) - start)) s"

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
for t in $targets; do
    if [ ! -d "corpus/$t" ] || [ -z "$(ls -A "corpus/$t" 2>/dev/null)" ]; then
        ./seed.sh
        break
    fi
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=
for t in $targets; do
    # A target without seeds starts from nothing (libFuzzer needs the directory to exist).
    mkdir -p "$scratch/$t" "artifacts/$t" "corpus/$t"
    dirs="$scratch/$t corpus/$t"
    [ -d "regressions/$t" ] && dirs="$dirs regressions/$t"
    echo "fuzz: $t for ${secs} s"
    # shellcheck disable=SC2086 # $dirs is a list of our own paths, without blanks
    if ! cargo fuzz run -s "$sanitizer" "$t" $dirs -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        failed="$failed $t"
        echo "fuzz: $t FAILED; last lines of its log:" >&2
        tail -n 40 "$scratch/$t.log" >&2
    else
        grep -E '^(#[0-9]+[[:space:]]+DONE|Done )' "$scratch/$t.log" || true
    fi
done

echo "fuzz: total $(($(date +%s) - start)) s"
if [ -n "$failed" ]; then
    echo "fuzz: crashes in:$failed (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzz: no crashes"
