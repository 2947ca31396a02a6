#!/usr/bin/env bash
# live_drop.sh - live capture under load: tcpreplay pushes a capture into one end of a veth
# pair as fast as it can; netmon (AF_PACKET ring) and tcpdump capture the other end at the same
# time, in the same run; then both are stopped with SIGINT and their counts compared.
#
# Usage: benches/live_drop.sh [FILE] [--mbps M | --pps P] [--loops N] [--tcpdump-buffer KIB]
#                             [--netmon-buffer MIB]
#   FILE defaults to target/bench/drop.pcap, made on first use with
#   ../shared/tools/gen_pcap.py -n 2000000 -f 100000 --seed 3 (issue 5's workload).
#   --mbps/--pps: replay at that rate instead of --topspeed (to find the highest rate both
#   capture with no drop). Buffers: each tool's default unless given (tcpdump 2 MiB, netmon
#   64 MiB). --pin CPU: run both capturing processes on that one core (they share it, as they
#   would share a busy machine; tcpreplay and the kernel's receive path stay unpinned).
#   --busy N: also run N busy loops on that core (a machine with other work to do).
#   --flows: netmon follows and classifies flows (`--flows --format jsonl`, records to
#   /dev/null) instead of writing the packets to /dev/null.
#
# Needs root (network namespaces), tcpreplay, tcpdump, and a release build of netmon
# (cargo build --release -p netmon-cli). Traffic only ever crosses the veth pair inside two
# namespaces made (and deleted) here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
file="$repo/target/bench/drop.pcap"
rate=(--topspeed)
loops=1
tcpdump_buf=""
netmon_buf=""
pin=()
pincpu=""
busy=""
nm_mode=(-w /dev/null)
while (($#)); do
    case $1 in
    --mbps) rate=(--mbps="$2") && shift ;;
    --pps) rate=(--pps="$2") && shift ;;
    --loops) loops=$2 && shift ;;
    --tcpdump-buffer) tcpdump_buf=$2 && shift ;;
    --netmon-buffer) netmon_buf=$2 && shift ;;
    --pin) pin=(taskset -c "$2") && pincpu=$2 && shift ;;
    --busy) busy=$2 && shift ;;
    --flows) nm_mode=(--flows --format jsonl) ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' && exit 0 ;;
    -*) echo "unknown option $1" >&2 && exit 2 ;;
    *) file=$1 ;;
    esac
    shift
done

netmon=${NETMON:-$repo/target/release/netmon}
[[ -x $netmon ]] || { echo "build netmon first: cargo build --release -p netmon-cli" >&2; exit 1; }
for t in tcpreplay tcpdump ip; do
    command -v $t >/dev/null || { echo "$t not found (Debian: apt install $t)" >&2; exit 1; }
done
if [[ ! -f $file ]]; then
    shared=${NETMON_SHARED:-$repo/../shared}
    mkdir -p "$(dirname "$file")"
    echo "generating $file ..." >&2
    python3 "$shared/tools/gen_pcap.py" -o "$file" -n 2000000 -f 100000 --seed 3 -q
fi

A=nm-drop-a-$$
B=nm-drop-b-$$
work=$(mktemp -d)
cleanup() {
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
    rm -rf "$work"
    [[ -n ${busy_pid:-} ]] && kill $busy_pid 2>/dev/null || true
}
trap cleanup EXIT
ip netns add $A
ip netns add $B
ip -n $A link add veth0 type veth peer name veth1 netns $B
# Room for the workload's largest frames (tagged, QinQ) whatever the MTU check.
ip -n $A link set veth0 mtu 9000
ip -n $B link set veth1 mtu 9000
ip -n $A link set veth0 up
ip -n $B link set veth1 up

rx0=$(ip -n $B -s link show veth1 | awk '/RX:/{getline; print $2}')

tb=()
[[ -n $tcpdump_buf ]] && tb=(-B "$tcpdump_buf")
nb=()
[[ -n $netmon_buf ]] && nb=(-B "$netmon_buf")
ip netns exec $B "${pin[@]}" tcpdump -i veth1 -n -w /dev/null "${tb[@]}" 2>"$work/tcpdump.err" &
tcpdump_pid=$!
ip netns exec $B "${pin[@]}" "$netmon" capture -i veth1 "${nm_mode[@]}" "${nb[@]}" \
    >/dev/null 2>"$work/netmon.err" &
netmon_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/tcpdump.err" && grep -q "capturing on" "$work/netmon.err" && break
    sleep 0.1
done
if [[ -n $busy ]]; then
    [[ -n $pincpu ]] || { echo "--busy needs --pin CPU" >&2; exit 2; }
    busy_pid=""
    for _ in $(seq "$busy"); do
        taskset -c "$pincpu" sh -c 'while :; do :; done' &
        busy_pid="$busy_pid $!"
    done
fi
# Let the link's own start-up packets (IPv6 MLD, router solicitations) pass first.
sleep 1

ip netns exec $A tcpreplay "${rate[@]}" --loop="$loops" -i veth0 "$file" >"$work/replay.out" 2>&1
sleep 1
kill -INT $tcpdump_pid $netmon_pid
wait $tcpdump_pid || true
wait $netmon_pid || true
rx1=$(ip -n $B -s link show veth1 | awk '/RX:/{getline; print $2}')

sent=$(awk '/Actual:/{print $2}' "$work/replay.out")
rated=$(grep -m1 'Rated:' "$work/replay.out" | sed 's/^ *//')
failed=$(awk "/Failed packets:/{print \$3}" "$work/replay.out")
secs=$(awk '/Actual:/{for(i=1;i<=NF;i++) if($i=="sent") print $(i+2)}' "$work/replay.out")
td_cap=$(awk '/packets captured/{print $1}' "$work/tcpdump.err")
td_recv=$(awk '/received by filter/{print $1}' "$work/tcpdump.err")
td_drop=$(awk '/dropped by kernel/{print $1}' "$work/tcpdump.err")
nm_line=$(grep 'packets captured' "$work/netmon.err")
nm_cap=$(sed -E 's/^netmon: ([0-9]+) packets captured.*/\1/' <<<"$nm_line")
nm_recv=$(sed -E 's/.*kernel: ([0-9]+) received.*/\1/' <<<"$nm_line")
nm_drop=$(sed -E 's/.*received, ([0-9]+) dropped.*/\1/' <<<"$nm_line")

echo "file: $file (netmon ${nm_mode[*]}; loops $loops, ${rate[*]}${pin:+, captures pinned: ${pin[*]}}${busy:+, $busy busy loops beside them})"
echo "tcpreplay: $sent packets sent in ${secs:-?} s (${failed:-0} failed to send); $rated"
echo "veth1 RX counter: $((rx1 - rx0)) packets (what reached the receiving side)"
printf '%-10s %12s %14s %14s\n' tool captured "kernel recv" "kernel drops"
printf '%-10s %12s %14s %14s\n' netmon "$nm_cap" "$nm_recv" "$nm_drop"
printf '%-10s %12s %14s %14s\n' tcpdump "$td_cap" "$td_recv" "$td_drop"
