#!/usr/bin/env bash
# compare.sh - run netmon, tcpdump, tshark and ndpiReader on the same capture and print, for
# each, wall time, packets/s, peak RSS, and netmon's ratio to it.
#
# Usage: benches/compare.sh FILE [options]     (see --help; benches/README.md explains the method)
#
# Method: the file's packets are counted once; the file is read once (`cat FILE > /dev/null`) to
# warm the page cache; every command runs pinned to one core (`taskset -c CPU`) under
# `/usr/bin/time -f '%e %M'` (peak RSS in KiB of the whole process tree; wall seconds from bash's
# $EPOCHREALTIME around it, as %e only has 10 ms resolution) and
# `timeout MAX_SECONDS`; each figure is the median of N runs (N per tool). Standard output of
# every tool goes to /dev/null; ndpiReader runs in a scratch directory so nothing it might
# write lands in the repository.
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

usage() {
    cat <<EOF
usage: $prog FILE [options]

Runs on the same capture, one core each, warm page cache:
  netmon flows FILE --format jsonl > /dev/null     (the reference for the ratios)
  netmon read FILE --quiet --stats > /dev/null
  tcpdump -nn -r FILE > /dev/null
  tshark -q -n -r FILE -z conv,tcp -z conv,udp > /dev/null
  ndpiReader -i FILE -q > /dev/null                (in a scratch directory)
and prints seconds, packets/s, peak RSS and netmon-flows' ratio to each.

options:
  --runs N             runs of each netmon command (median; default 3)
  --slow-runs N        runs of each of tcpdump, tshark, ndpiReader (default 1: they take
                       minutes on multi-GB files)
  --runs-TOOL N        runs of one tool: TOOL is netmon, tcpdump, tshark or ndpi
  --max-seconds S      kill a run after S seconds (timeout; default 600); it is reported
                       as "timeout" and its figures are left out
  --cpu C              core to pin every run to (default 1)
  --tools LIST         comma-separated subset of netmon,tcpdump,tshark,ndpi (default all)
  --netmon PATH        use this netmon binary instead of building one (also \$NETMON)
  --no-warm            skip the warm-up read of FILE
  -h, --help           this text

netmon is built with 'cargo build --release -p netmon-cli' (a no-op when up to date) and
taken from the target directory that 'cargo metadata' reports (honours CARGO_TARGET_DIR).
EOF
}

die() {
    echo "$prog: $*" >&2
    exit 2
}

is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

file=""
runs_netmon=3
slow_runs=1
runs_tcpdump="" runs_tshark="" runs_ndpi=""
max_seconds=600
cpu=1
tools="netmon,tcpdump,tshark,ndpi"
netmon_bin=${NETMON:-}
warm=1

while (($#)); do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --runs | --runs-netmon) (($# >= 2)) || die "$1 needs a value"; runs_netmon=$2; shift 2 ;;
    --slow-runs) (($# >= 2)) || die "$1 needs a value"; slow_runs=$2; shift 2 ;;
    --runs-tcpdump) (($# >= 2)) || die "$1 needs a value"; runs_tcpdump=$2; shift 2 ;;
    --runs-tshark) (($# >= 2)) || die "$1 needs a value"; runs_tshark=$2; shift 2 ;;
    --runs-ndpi | --runs-ndpiReader) (($# >= 2)) || die "$1 needs a value"; runs_ndpi=$2; shift 2 ;;
    --max-seconds) (($# >= 2)) || die "$1 needs a value"; max_seconds=$2; shift 2 ;;
    --cpu) (($# >= 2)) || die "$1 needs a value"; cpu=$2; shift 2 ;;
    --tools) (($# >= 2)) || die "$1 needs a value"; tools=$2; shift 2 ;;
    --netmon) (($# >= 2)) || die "$1 needs a value"; netmon_bin=$2; shift 2 ;;
    --no-warm) warm=0; shift ;;
    --) shift; (($#)) && { file=$1; shift; } ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z $file ]] || die "one FILE only (got '$file' and '$1')"; file=$1; shift ;;
    esac
done

[[ -n $file ]] || { usage >&2; exit 2; }
[[ -e $file ]] || die "$file: no such file"
[[ -f $file ]] || die "$file: not a regular file"
[[ -r $file ]] || die "$file: not readable"
runs_tcpdump=${runs_tcpdump:-$slow_runs}
runs_tshark=${runs_tshark:-$slow_runs}
runs_ndpi=${runs_ndpi:-$slow_runs}
for n in "$runs_netmon" "$runs_tcpdump" "$runs_tshark" "$runs_ndpi" "$max_seconds"; do
    is_count "$n" || die "'$n' is not a positive integer"
done
[[ $cpu =~ ^[0-9]+$ ]] || die "--cpu: '$cpu' is not a core number"
for t in ${tools//,/ }; do
    case $t in netmon | tcpdump | tshark | ndpi | ndpiReader) ;; *) die "--tools: unknown tool '$t'" ;; esac
done
want() { [[ ",$tools," == *",$1,"* ]]; }
for t in /usr/bin/time timeout taskset; do
    [[ -x $t ]] || command -v "$t" >/dev/null || die "$t is required"
done
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash >= 5 (EPOCHREALTIME)"
taskset -c "$cpu" true 2>/dev/null || die "cannot pin to core $cpu (taskset -c $cpu failed)"

# --------------------------------------------------------------------------- netmon binary

if [[ -z $netmon_bin ]]; then
    command -v cargo >/dev/null || die "cargo not found: pass --netmon PATH"
    echo "building netmon: cargo build --release -p netmon-cli" >&2
    (cd "$repo" && cargo build --release -p netmon-cli --quiet) || die "cargo build failed"
    target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    netmon_bin=${target:-$repo/target}/release/netmon
    [[ -x $netmon_bin ]] || netmon_bin=$repo/target/release/netmon
fi
[[ -x $netmon_bin ]] || die "netmon binary not found or not executable: $netmon_bin"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/netmon-compare.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# --------------------------------------------------------------------------- packet count

echo "counting packets: netmon read FILE --quiet --stats" >&2
packets=$("$netmon_bin" read "$file" --quiet --stats 2>"$scratch/count.err" |
    sed -n 's/^ *packets: *\([0-9][0-9]*\).*/\1/p' | head -n 1) || true
if [[ -z $packets ]] && command -v capinfos >/dev/null; then
    echo "  netmon read gave no count ($(head -c 200 "$scratch/count.err")); trying capinfos -c -M" >&2
    packets=$(capinfos -c -M "$file" 2>/dev/null | sed -n 's/.*Number of packets: *\([0-9][0-9]*\).*/\1/p')  || true
fi
[[ -n $packets && $packets -gt 0 ]] || die "$file: cannot count its packets (not a capture file?)"

if ((warm)); then
    echo "warming the page cache: cat FILE > /dev/null" >&2
    cat "$file" >/dev/null
fi

# --------------------------------------------------------------------------- measuring

# Result rows: name|command|status|seconds|rss_kib
rows=()

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; m = int((NR + 1) / 2); if (NR % 2) print v[m]; else print (v[m] + v[m + 1]) / 2 }'; }

# measure NAME RUNS DISPLAY CWD CMD...: runs CMD (stdout to /dev/null) RUNS times and appends a row.
measure() {
    local name=$1 runs=$2 display=$3 cwd=$4
    shift 4
    if ! command -v "$1" >/dev/null; then
        rows+=("$name|$display|not installed||")
        echo "  $name: not installed" >&2
        return
    fi
    local i rc t0 t1 s m secs=() rsss=() status=ok tf="$scratch/time" ef="$scratch/stderr"
    for ((i = 1; i <= runs; i++)); do
        rc=0
        t0=$EPOCHREALTIME
        (cd "$cwd" && taskset -c "$cpu" /usr/bin/time -f '%e %M' -o "$tf" \
            timeout "$max_seconds" "$@" >/dev/null 2>"$ef") || rc=$?
        t1=$EPOCHREALTIME
        if ((rc == 124)); then
            status="timeout (>${max_seconds}s)"
            echo "  $name run $i: killed after ${max_seconds}s" >&2
            break
        elif ((rc != 0)); then
            status="failed (exit $rc)"
            echo "  $name run $i: exit status $rc; its stderr ends with:" >&2
            tail -n 5 "$ef" | sed 's/^/    /' >&2
            break
        fi
        # time(1) writes 'Command exited with ...' first when the status is non-zero: take the
        # last line. Its %e has 10 ms resolution: the wall time comes from bash's microsecond
        # clock instead (it includes starting taskset, time and timeout: ~2 ms).
        read -r _ m < <(tail -n 1 "$tf")
        s=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.3f", b - a }')
        secs+=("$s")
        rsss+=("$m")
        echo "  $name run $i/$runs: ${s} s, ${m} KiB" >&2
    done
    if [[ $status == ok ]]; then
        rows+=("$name|$display|ok|$(printf '%s\n' "${secs[@]}" | median)|$(printf '%s\n' "${rsss[@]}" | median)")
    else
        rows+=("$name|$display|$status||")
    fi
}

base=${file##*/}
echo "measuring (core $cpu, median of N runs, timeout ${max_seconds}s):" >&2
if want netmon; then
    measure "netmon flows" "$runs_netmon" "netmon flows $base --format jsonl" "$PWD" \
        "$netmon_bin" flows "$file" --format jsonl
    measure "netmon read" "$runs_netmon" "netmon read $base --quiet --stats" "$PWD" \
        "$netmon_bin" read "$file" --quiet --stats
fi
want tcpdump && measure tcpdump "$runs_tcpdump" "tcpdump -nn -r $base" "$PWD" \
    tcpdump -nn -r "$file"
want tshark && measure tshark "$runs_tshark" "tshark -q -n -r $base -z conv,tcp -z conv,udp" "$PWD" \
    tshark -q -n -r "$file" -z conv,tcp -z conv,udp
if want ndpi || want ndpiReader; then
    # -q: no per-flow dump; without -w/-C/-j/-k nDPI 4.2 writes no file. The scratch cwd
    # keeps any file it might still write out of the repository (and is checked below).
    mkdir -p "$scratch/ndpi"
    measure ndpiReader "$runs_ndpi" "ndpiReader -i $base -q" "$scratch/ndpi" \
        ndpiReader -i "$(realpath "$file")" -q
    if [[ -n $(ls -A "$scratch/ndpi") ]]; then
        echo "  note: ndpiReader wrote $(ls -A "$scratch/ndpi" | tr '\n' ' ')(deleted)" >&2
    fi
fi

# --------------------------------------------------------------------------- report

echo
echo "file: $file ($packets packets, $(du -h "$file" | cut -f1)); core $cpu; warm cache;" \
    "runs: netmon $runs_netmon, tcpdump $runs_tcpdump, tshark $runs_tshark, ndpiReader $runs_ndpi"
ref=""
for r in "${rows[@]}"; do
    IFS='|' read -r name _ status s m <<<"$r"
    [[ $name == "netmon flows" && $status == ok ]] && ref="$s $m"
done
printf '%s\n' "${rows[@]}" | awk -F'|' -v pk="$packets" -v ref="$ref" '
function rate(p) { return p >= 1e6 ? sprintf("%.2f M", p / 1e6) : sprintf("%.1f k", p / 1e3) }
{ row[NR] = $0; if (length($2) > w) w = length($2) }
END {
    split(ref, rf, " "); rs = rf[1]; rm = rf[2]
    if (w < 7) w = 7
    fmt = "%-13s %-" w "s %9s %11s %11s %10s %10s\n"
    printf fmt, "tool", "command", "seconds", "packets/s", "peak RSS MB", "pps ratio", "RSS ratio"
    for (i = 1; i <= NR; i++) {
        split(row[i], f, "|")
        if (f[3] != "ok") { printf "%-13s %-" w "s %s\n", f[1], f[2], f[3]; continue }
        s = f[4]; m = f[5]
        pps = s > 0 ? pk / s : 0
        mb = m * 1024 / 1e6
        pr = "-"; mr = "-"
        if (rs != "" && s > 0 && rs > 0) pr = sprintf("%.2f", s / rs)   # netmon pps / tool pps
        if (rm != "" && m > 0) mr = sprintf("%.3f", rm / m)              # netmon RSS / tool RSS
        printf fmt, f[1], f[2], sprintf("%.3f", s), (s > 0 ? rate(pps) : "-"), sprintf("%.1f", mb), pr, mr
    }
}'
echo "pps ratio = netmon-flows packets/s / tool packets/s (>1: netmon is faster);" \
    "RSS ratio = netmon-flows peak RSS / tool peak RSS (<1: netmon uses less)."
