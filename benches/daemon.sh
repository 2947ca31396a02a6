#!/usr/bin/env bash
# daemon.sh - the engine's speed bar: netmond replaying a capture at full speed with
# classification, statistics and the SQLite store on, for 1 and 2 shards; prints wall seconds,
# packets/s, user+system CPU seconds and peak RSS per run, and (with --threads) each pipeline
# thread's share of the CPU from a perf profile.
#
# Usage: benches/daemon.sh [FILE] [options]     (see --help)
#
# Method: netmond is built with `cargo build --release -p netmond` (a no-op when up to date);
# FILE defaults to target/bench/big.pcap, generated when missing with
# `gen_pcap.py -n 5000000 -f 200000 --seed 1` (the issue's workload; 2.7 GB, under target/,
# never committed). The file is read once to warm the page cache; every run gets a fresh
# SQLite file under target/bench/, its config written next to it (replay.speed max, API off,
# log level warn). Each run is timed with `/usr/bin/time -f '%e %U %S %M'`: not pinned — the
# pipeline's threads are meant to use every core — unless --cores asks for the scaling with
# cores (each count K runs under `taskset -c 0-(K-1)`). --tmpfs copies FILE to /dev/shm first,
# so that no run waits for the disk when the page cache lets part of the file go (a busy shared
# machine does); the SQLite file stays under target/bench/.
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

usage() {
    cat <<EOF
usage: $prog [FILE] [options]

Runs netmond over FILE (default target/bench/big.pcap, generated when missing) with
classification, statistics and the SQLite store on, and prints per run: shards, store,
wall s, packets/s, CPU s (user+sys), peak RSS MiB.

options:
  --shards LIST     comma-separated shard counts (default 1,2)
  --runs N          runs of each configuration (default 2)
  --store on|off|both   the SQLite store (default on)
  --cores LIST      comma-separated core counts: each configuration runs pinned to the
                    first K CPUs (taskset -c 0-(K-1)), to show the scaling with cores
                    (default: not pinned)
  --tmpfs           read a copy of FILE in /dev/shm (removed at the end)
  --threads         one extra run per configuration under 'perf record', printing each
                    thread's share of the samples (netmon-shard-N, netmon-aggregate,
                    netmon-store, netmond = the reader; with 1 shard
                    the reader runs the shard inline, so netmond = reader + shard)
  --netmond PATH    use this binary instead of building one (also \$NETMOND)
  -h, --help        this text
EOF
}

die() {
    echo "$prog: $*" >&2
    exit 2
}

file=""
shards_list="1,2"
runs=2
store=on
threads=0
cores_list=""
tmpfs=0
netmond=${NETMOND:-}
while [[ $# -gt 0 ]]; do
    case $1 in
        --shards) shards_list=${2:?}; shift 2 ;;
        --runs) runs=${2:?}; shift 2 ;;
        --store) store=${2:?}; shift 2 ;;
        --threads) threads=1; shift ;;
        --cores) cores_list=${2:?}; shift 2 ;;
        --tmpfs) tmpfs=1; shift ;;
        --netmond) netmond=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z $file ]] || die "one FILE only"; file=$1; shift ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive count, not '$runs'"
case $store in on|off|both) ;; *) die "--store wants on, off or both, not '$store'" ;; esac
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
IFS=, read -r -a core_counts <<< "${cores_list:-0}"
for k in "${core_counts[@]}"; do
    [[ $k =~ ^[0-9]+$ ]] || die "--cores wants core counts, not '$k'"
    ((k <= $(nproc))) || die "--cores $k: this machine has $(nproc)"
done
[[ -z $cores_list ]] || command -v taskset > /dev/null || die "--cores needs taskset (util-linux)"

target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bench="$target/bench"
mkdir -p "$bench"
if [[ -z $file ]]; then
    file="$bench/big.pcap"
    if [[ ! -s $file ]]; then
        gen="$repo/../shared/tools/gen_pcap.py"
        [[ -f $gen ]] || die "no FILE given and $gen is missing to generate big.pcap"
        echo "generating $file (gen_pcap.py -n 5000000 -f 200000 --seed 1) ..." >&2
        python3 "$gen" -o "$file" -n 5000000 -f 200000 --seed 1 -q
    fi
fi
[[ -r $file ]] || die "cannot read $file"
file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
if [[ $tmpfs == 1 ]]; then
    copy="/dev/shm/netmon-bench-$$-$(basename "$file")"
    trap 'rm -f "$copy"' EXIT
    cp "$file" "$copy" || die "cannot copy $file to /dev/shm (--tmpfs)"
    file=$copy
fi

if [[ -z $netmond ]]; then
    (cd "$repo" && cargo build --release -p netmond -p netmon-cli --quiet) || die "build failed"
    netmond="$target/release/netmond"
fi
[[ -x $netmond ]] || die "$netmond is not executable"

packets=$("$target/release/netmon" read "$file" --quiet --stats 2>&1 | sed -n 's/^ *packets: *\([0-9]*\).*/\1/p' | head -1 || true)
if [[ -z $packets ]]; then
    packets=$(capinfos -c -M "$file" 2>/dev/null | awk '/Number of packets/ {print $NF}' || true)
fi
[[ -n $packets ]] || die "cannot count the packets of $file (build netmon-cli, or install capinfos)"
cat "$file" > /dev/null

stores=$store
[[ $store == both ]] && stores="off on"
printf '%s: %s, %s packets, %s cores\n' "$prog" "$file" "$packets" "$(nproc)"
printf '%-7s %-6s %-6s %9s %12s %9s %9s\n' shards store cores "wall s" "packets/s" "CPU s" "RSS MiB"
IFS=, read -r -a shard_counts <<< "$shards_list"
for n in "${shard_counts[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "--shards wants positive counts, not '$n'"
    for st in $stores; do
        cfg="$bench/daemon-$n-$st.yaml"
        db="$bench/daemon-$n-$st.db"
        enabled=false
        [[ $st == on ]] && enabled=true
        cat > "$cfg" <<EOF
capture:
  file: $file
replay:
  speed: max
engine:
  shards: $n
storage:
  enabled: $enabled
  path: $db
api:
  enabled: false
log:
  level: warn
EOF
        for ((r = 1; r <= runs; r++)); do
            for k in "${core_counts[@]}"; do
                pin=()
                label=all
                if ((k > 0)); then
                    pin=(taskset -c "0-$((k - 1))")
                    label=$k
                fi
                rm -f "$db" "$db-wal" "$db-shm"
                out=$( { "${pin[@]}" /usr/bin/time -f '%e %U %S %M' "$netmond" --config "$cfg" > /dev/null; } 2>&1 | tail -1)
                read -r wall user sys rss <<< "$out"
                [[ $rss =~ ^[0-9]+$ ]] || die "netmond failed: $out"
                awk -v n="$n" -v st="$st" -v c="$label" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v p="$packets" \
                    'BEGIN { printf "%-7s %-6s %-6s %9.2f %12.0f %9.2f %9.1f\n", n, st, c, w, p / w, u + s, m / 1024 }'
            done
        done
        if [[ $threads == 1 ]]; then
            command -v perf > /dev/null || die "--threads needs perf (apt-get install linux-perf)"
            rm -f "$db" "$db-wal" "$db-shm"
            perf record -q -F 499 -o "$bench/daemon.perf" "$netmond" --config "$cfg" > /dev/null 2>&1
            echo "  CPU by thread ($n shard(s), store $st; perf samples at 499 Hz / 499 = seconds):"
            perf report -i "$bench/daemon.perf" --sort comm --no-children -g none --stdio -n 2>/dev/null |
                awk '/^ +[0-9.]+%/ { printf "    %-18s %6.2f s  %s\n", $3, $2 / 499, $1 }'
        fi
        rm -f "$db" "$db-wal" "$db-shm"
    done
done
