#!/usr/bin/env python3
"""Seeds for the flow-level fuzz targets `http` and `pipeline`, from the TCP/UDP flows of
capture files plus a few crafted conversations.

    seed_flows.py [--max N] OUT_DIR CAPTURE...

pipeline: each TCP or UDP flow (IPv4/IPv6 without extension headers) becomes one seed in the
    target's input format: a template byte (the template whose protocol and server port match
    the flow, else TCP 5000 / UDP 4433; bit 7 for IPv6), then the flow's packets in capture
    order (at most 32, payloads cut to 16383 bytes, no more once the seed passes 8 KiB), each as a control byte (bit 0 server ->
    client, bits 2-4 SYN/FIN/RST) and a big-endian u16 length before the payload. Per capture,
    the IP packets that are not plain TCP/UDP (ICMP, fragments, tunnels, extension headers)
    make one more seed as raw frames (control bit 1). At most --max seeds (default 300), taken
    round-robin over the templates so that every protocol contributes.
http: each TCP flow that carries HTTP/1.x becomes one seed: a flags byte (0), then its
    payload segments in capture order, each a big-endian u16 header (bit 15 server -> client,
    bits 0-13 length) before the bytes, cut at 8 KiB.

Both also get crafted conversations (keep-alive with Content-Length and chunked bodies, HEAD,
101 upgrade; SSH banners, STUN, SSDP, DNS), so the directories are useful without captures.
Written to OUT_DIR/<target>/<sha1>. Reuses extract_frames.py's capture reader.
"""

import argparse
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extract_frames import ip_payload, read_capture  # noqa: E402

# The pipeline target's TEMPLATES, in its order: (IP protocol, server port).
TEMPLATES = [
    (6, 443), (6, 80), (6, 22), (6, 53), (6, 8080), (6, 6379), (6, 25), (6, 5000),
    (17, 53), (17, 443), (17, 3478), (17, 5353), (17, 1900), (17, 5355), (17, 4433), (17, 123),
]
FALLBACK = {6: 7, 17: 14}
MAX_PACKETS = 32
MAX_LEN = 0x3FFF
# Seeds stop growing past this many bytes (libFuzzer's -max_len follows the largest seed).
MAX_SEED = 8192
METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")


def transport(ip):
    """(proto, src, sport, dst, dport, tcp_flags, payload) of a plain TCP/UDP packet, or None."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if struct.unpack(">H", ip[6:8])[0] & 0x3FFF:
            return None  # a fragment
        proto, src, dst, l4 = ip[9], ip[12:16], ip[16:20], ip[ihl:max(ihl, total)]
    elif v == 6 and len(ip) >= 40:
        plen = struct.unpack(">H", ip[4:6])[0]
        proto, src, dst, l4 = ip[6], ip[8:24], ip[24:40], ip[40 : 40 + plen]
    else:
        return None
    if proto == 6 and len(l4) >= 20:
        sport, dport = struct.unpack(">HH", l4[:4])
        off = (l4[12] >> 4) * 4
        return proto, src, sport, dst, dport, l4[13], l4[off:]
    if proto == 17 and len(l4) >= 8:
        sport, dport, length = struct.unpack(">HHH", l4[:6])
        return proto, src, sport, dst, dport, 0, l4[8 : max(8, length)]
    return None


def frame(ctl, data):
    data = data[:MAX_LEN]
    return bytes([ctl]) + struct.pack(">H", len(data)) + data


def segment(server, data):
    data = data[:MAX_LEN]
    return struct.pack(">H", (0x8000 if server else 0) | len(data)) + data


def template_of(proto, client_port, server_port):
    for port in (server_port, client_port):
        if (proto, port) in TEMPLATES:
            return TEMPLATES.index((proto, port))
    return FALLBACK[proto]


def flows_of(path):
    """(template, pipeline seed, http seed or None) per TCP/UDP flow; one raw-frame seed."""
    flows, raw = {}, []
    for link, fr in read_capture(path):
        ip = ip_payload(link, fr)
        t = transport(ip)
        if t is None:
            if ip and len(raw) < MAX_PACKETS and sum(map(len, raw)) < MAX_SEED:
                raw.append(frame(2, ip))
            continue
        proto, src, sport, dst, dport, flags, payload = t
        key = (proto,) + tuple(sorted(((src, sport), (dst, dport))))
        f = flows.setdefault(key, {"client": None, "packets": []})
        if f["client"] is None:
            # A SYN-ACK first: its receiver is the client.
            syn_ack = proto == 6 and flags & 0x12 == 0x12
            f["client"] = (dst, dport) if syn_ack else (src, sport)
        server = (src, sport) != f["client"]
        f["packets"].append((server, flags, payload, len(src) == 16))
    out = []
    for key, f in flows.items():
        proto = key[0]
        pkts = f["packets"][:MAX_PACKETS]
        client_port = f["client"][1]
        server_port = key[1][1] if key[1] != f["client"] else key[2][1]
        v6 = pkts[0][3]
        t = template_of(proto, client_port, server_port)
        body = bytearray([t | (0x80 if v6 else 0)])
        for server, flags, payload, _ in pkts:
            if len(body) >= MAX_SEED:
                break
            ctl = int(server) | (flags & 2) << 1 | (flags & 1) << 3 | (flags & 4) << 2
            body += frame(ctl, payload)
        http = None
        firsts = [p for s, _, p, _ in pkts if p]
        if proto == 6 and firsts and (firsts[0].startswith(METHODS) or firsts[0].startswith(b"HTTP/1.")):
            http = (b"\0" + b"".join(segment(s, p) for s, _, p, _ in pkts if p))[:MAX_SEED]
        out.append((t, bytes(body), http))
    if raw:
        out.append((None, bytes([0]) + b"".join(raw), None))
    return out


NAME = "076578616d706c65 03636f6d 00"  # example.com


def crafted():
    """(pipeline seeds, http seeds) that do not depend on captures."""
    req = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: fuzz/1.0\r\n\r\n"
    head = b"HEAD /x HTTP/1.1\r\nHost: example.com\r\n\r\n"
    post = b"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world!"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n"
    head_ok = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    upgrade = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00\x12\x04\x00"
    convs = [
        [(0, req), (1, ok[:30]), (1, ok[30:]), (0, post[:20]), (0, post[20:]), (1, chunked)],
        [(0, head), (1, head_ok), (0, req), (1, ok)],
        [(0, upgrade), (1, switching)],
    ]
    http = [b"\0" + b"".join(segment(s, d) for s, d in c) for c in convs]
    http.append(b"\1" + segment(0, head) + segment(1, head_ok))
    handshake = frame(4, b"") + frame(5, b"")
    pipeline = [bytes([1]) + handshake + b"".join(frame(s, d) for s, d in c) for c in convs]
    pipeline += [
        bytes([2]) + handshake + frame(0, b"SSH-2.0-OpenSSH_9.6\r\n") + frame(1, b"SSH-2.0-dropbear\r\n"),
        bytes([6]) + handshake + frame(1, b"220 mail.example.com ESMTP\r\n") + frame(0, b"EHLO x\r\n"),
        # STUN binding request with a SOFTWARE attribute, and its (empty) success response.
        bytes([10]) + frame(0, bytes.fromhex("000100082112a442") + bytes(12) + bytes.fromhex("80220004") + b"fuzz")
        + frame(1, bytes.fromhex("010100002112a442") + bytes(12)),
        bytes([12]) + frame(0, b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n"),
        # DNS: a query for example.com A and its answer.
        bytes([8]) + frame(0, bytes.fromhex("1234 0100 0001 0000 0000 0000" + NAME + "00010001"))
        + frame(1, bytes.fromhex("1234 8180 0001 0001 0000 0000" + NAME + "00010001"
                                 + "c00c 0001 0001 0000003c 0004 5db8d822")),
    ]
    return pipeline, http


def write(out_dir, target, seeds):
    d = os.path.join(out_dir, target)
    os.makedirs(d, exist_ok=True)
    for s in seeds:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print(f"{target}: {len(seeds)} seeds", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=300, help="seeds per target (default 300)")
    ap.add_argument("out")
    ap.add_argument("captures", nargs="*")
    args = ap.parse_args()

    pipeline, http = crafted()
    buckets = {}
    for path in args.captures:
        for t, seed, h in flows_of(path):
            buckets.setdefault(t, []).append(seed)
            if h is not None:
                http.append(h)
    # Round-robin over the templates (raw-frame seeds are one more bucket).
    queues = [list(reversed(b)) for _, b in sorted(buckets.items(), key=lambda kv: str(kv[0]))]
    seen = set(pipeline)
    while queues and len(pipeline) < args.max:
        for q in list(queues):
            if not q:
                queues.remove(q)
                continue
            s = q.pop()
            if s not in seen and len(pipeline) < args.max:
                seen.add(s)
                pipeline.append(s)
    write(args.out, "pipeline", pipeline)
    write(args.out, "http", list(dict.fromkeys(http))[: args.max])


if __name__ == "__main__":
    main()
