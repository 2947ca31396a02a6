#!/usr/bin/env python3
"""Seeds for the `quic` fuzz target, from the UDP flows of capture files that carry QUIC.

    seed_quic.py OUT_DIR CAPTURE...

Every UDP flow whose datagrams include a QUIC long header (first byte >= 0x80 and a version of
v1, v2 or a draft) becomes one seed in the target's input format: its datagrams in capture
order (at most 24), each as a big-endian u16 header (bit 15 set for the direction that did not
send the first datagram, bits 0-14 the length) followed by the payload. Written to
OUT_DIR/quic/<sha1>. Two synthetic seeds (a bare v1 and v2 Initial header) are always written,
so the directory exists even without captures. Reuses extract_frames.py's capture reader.
"""

import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extract_frames import ip_payload, read_capture  # noqa: E402

VERSIONS = (0x00000001, 0x6B3343CF, 0x709A50C4)
MAX_DATAGRAMS = 24


def udp(ip):
    """(src, dst, payload) of a UDP packet in an IPv4/IPv6 packet (no extension headers)."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17 or len(ip) < ihl + 8:
            return None
        src, dst, l4 = ip[12:16], ip[16:20], ip[ihl:]
    elif v == 6 and len(ip) >= 48:
        if ip[6] != 17:
            return None
        src, dst, l4 = ip[8:24], ip[24:40], ip[40:]
    else:
        return None
    sport, dport, length = struct.unpack(">HHH", l4[:6])
    return (src, sport), (dst, dport), l4[8 : max(8, length)]


def is_quic(p):
    return len(p) >= 5 and p[0] & 0x80 and (
        struct.unpack(">I", p[1:5])[0] in VERSIONS or p[1:4] == b"\xff\x00\x00"
    )


def encode(datagrams):
    out = bytearray()
    for server, d in datagrams[:MAX_DATAGRAMS]:
        d = d[:0x7FFF]
        out += struct.pack(">H", (0x8000 if server else 0) | len(d)) + d
    return bytes(out)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out = os.path.join(sys.argv[1], "quic")
    os.makedirs(out, exist_ok=True)
    seeds = [
        encode([(False, bytes.fromhex("c300000001088394c8f03e5157080000449e") + bytes(1182))]),
        encode([(False, bytes.fromhex("d36b3343cf088394c8f03e5157080000449e") + bytes(1182))]),
    ]
    for path in sys.argv[2:]:
        flows = {}
        for link, frame in read_capture(path):
            u = udp(ip_payload(link, frame))
            if u is None:
                continue
            src, dst, payload = u
            key = tuple(sorted((src, dst)))
            f = flows.setdefault(key, {"first": src, "datagrams": [], "quic": False})
            f["datagrams"].append((src != f["first"], payload))
            f["quic"] |= bool(is_quic(payload))
        seeds += [encode(f["datagrams"]) for f in flows.values() if f["quic"]]
    for s in seeds:
        with open(os.path.join(out, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print(f"quic: {len(seeds)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
