#!/bin/sh
# Populates fuzz/corpus/<target>/ (git-ignored) with seeds:
#   capture_file       the capture files in fixtures/ and the small (<= 64 KiB) ones in
#                      ../shared/corpus (or $NETMON_CORPUS), copied whole;
#   packet_<linktype>  single frames of that link type split out of the same captures by
#                      extract_frames.py (plus IP packets re-wrapped for the rarer link types),
#                      at most SEEDS_PER_TARGET (default 300) per target;
#   quic               the QUIC flows of the same captures (seed_quic.py);
#   http, pipeline     their TCP/UDP flows as conversations, plus crafted ones (seed_flows.py).
# Seeds are named by content hash, so re-running adds only what is new; `seed.sh --clean`
# empties the corpus directories first (including whatever the fuzzer added).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
corpus_out="$here/corpus"
max=${SEEDS_PER_TARGET:-300}
max_file_bytes=65536

# The shared corpus: $NETMON_CORPUS, else the first `shared/corpus` found walking up from the repo.
shared=${NETMON_CORPUS:-}
if [ -z "$shared" ]; then
    d=$root
    while [ "$d" != / ]; do
        if [ -d "$d/shared/corpus" ]; then shared=$d/shared/corpus; break; fi
        d=$(dirname "$d")
    done
fi

if [ "${1:-}" = --clean ]; then
    find "$corpus_out" -mindepth 2 -maxdepth 2 -type f ! -name .gitkeep -delete 2>/dev/null || true
fi

captures=$(mktemp)
trap 'rm -f "$captures"' EXIT
for f in "$root"/fixtures/*; do
    case $f in *.pcap|*.pcapng|*.txt) echo "$f" >>"$captures" ;; esac
done
if [ -n "$shared" ] && [ -d "$shared" ]; then
    for f in "$shared"/*.pcap "$shared"/*.pcapng; do
        [ -f "$f" ] || continue
        [ "$(wc -c <"$f")" -le "$max_file_bytes" ] && echo "$f" >>"$captures"
    done
else
    echo "seed.sh: no shared/corpus found (set NETMON_CORPUS); seeding from fixtures/ only" >&2
fi

mkdir -p "$corpus_out/capture_file"
n=0
while IFS= read -r f; do
    # Content-named like libFuzzer's own corpus entries, so copies are idempotent.
    sum=$(sha1sum "$f" | cut -d' ' -f1)
    cp "$f" "$corpus_out/capture_file/$sum"
    n=$((n + 1))
done <"$captures"
echo "capture_file: $n seeds" >&2

# shellcheck disable=SC2046 # file names come from our own globs, without blanks
python3 "$here/extract_frames.py" --max "$max" "$corpus_out" $(cat "$captures")
# shellcheck disable=SC2046
python3 "$here/seed_quic.py" "$corpus_out" $(cat "$captures")
# shellcheck disable=SC2046
python3 "$here/seed_flows.py" --max "$max" "$corpus_out" $(cat "$captures")
