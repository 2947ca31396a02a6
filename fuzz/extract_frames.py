#!/usr/bin/env python3
"""Split capture files into single-frame seeds for the packet_<linktype> fuzz targets.

    extract_frames.py [--max N] [--no-derive] OUT_DIR CAPTURE...

Reads classic pcap (both byte orders, µs and ns magic) and pcapng (both byte orders, any number
of sections and interfaces; EPB, SPB and the obsolete PB) with the Python 3 standard library and
writes every frame, under its interface's link type, to OUT_DIR/packet_<linktype>/<sha1>.
File names are content hashes (as libFuzzer names its corpus), so re-running adds nothing twice.

Unless --no-derive is given, the IP packet inside every frame (after Ethernet + VLAN tags, SLL,
SLL2, null/loop or raw) also becomes a seed for packet_raw, packet_ipv4 / packet_ipv6, and
re-wrapped in a null, loop, SLL and SLL2 header for those targets, so link types the corpus
barely has still start from real IP traffic. Native frames are chosen first.

At most --max seeds (default 300) are written per target, taken round-robin over the input
files so that every capture contributes. Malformed captures (the corpus has some on purpose)
are read up to the first bad record; nothing here raises on bad input.
"""

import argparse
import hashlib
import os
import struct
import sys

# Link type number -> fuzz target name (netmon_types::LinkType constants).
TARGETS = {
    0: "packet_null",
    1: "packet_ethernet",
    12: "packet_raw",  # LINKTYPE_RAW_BSD ("DLT_RAW" on some BSDs): raw IP, as 101
    101: "packet_raw",
    108: "packet_loop",
    113: "packet_linux_sll",
    228: "packet_ipv4",
    229: "packet_ipv6",
    276: "packet_linux_sll2",
}

VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)


def read_pcap(data):
    """Yields (link_type, frame) from a classic pcap file."""
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        return
    # The upper bits of the link-type field hold FCS information (pcap spec §"LinkType").
    link = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8 : off + 12])[0]
        off += 16
        if incl > len(data) - off:
            return  # truncated or corrupt record
        yield link, data[off : off + incl]
        off += incl


def read_pcapng(data):
    """Yields (link_type, frame) from a pcapng file."""
    off = 0
    end = "<"
    links = []
    while off + 12 <= len(data):
        btype_raw = data[off : off + 4]
        if btype_raw == b"\x0a\x0d\x0d\x0a":
            bom = data[off + 8 : off + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                end = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                end = ">"
            else:
                return
            links = []  # interface ids are per section
        btype, blen = struct.unpack(end + "II", data[off : off + 8])
        if blen < 12 or blen % 4 or blen > len(data) - off:
            return
        body = data[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 2:  # Interface Description Block
            links.append(struct.unpack(end + "H", body[0:2])[0])
        elif btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            iface, _, _, cap = struct.unpack(end + "IIII", body[0:16])
            if iface < len(links) and cap <= len(body) - 20:
                yield links[iface], body[20 : 20 + cap]
        elif btype == 2 and len(body) >= 20:  # obsolete Packet Block
            iface = struct.unpack(end + "H", body[0:2])[0]
            cap = struct.unpack(end + "I", body[12:16])[0]
            if iface < len(links) and cap <= len(body) - 20:
                yield links[iface], body[20 : 20 + cap]
        elif btype == 3 and len(body) >= 4 and links:  # Simple Packet Block, interface 0
            orig = struct.unpack(end + "I", body[0:4])[0]
            yield links[0], body[4 : 4 + min(orig, len(body) - 4)]
        off += blen


def read_capture(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"extract_frames: {path}: {e}", file=sys.stderr)
        return []
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return list(read_pcapng(data))
    return list(read_pcap(data))


def ip_payload(link, frame):
    """The IP packet inside a frame, or None."""
    if link == 1:
        if len(frame) < 14:
            return None
        off = 12
        etype = struct.unpack(">H", frame[off : off + 2])[0]
        while etype in VLAN_TPIDS and off + 6 <= len(frame):
            off += 4
            etype = struct.unpack(">H", frame[off : off + 2])[0]
        ip = frame[off + 2 :]
        return ip if etype in (0x0800, 0x86DD) else None
    if link == 113:
        if len(frame) < 16:
            return None
        etype = struct.unpack(">H", frame[14:16])[0]
        return frame[16:] if etype in (0x0800, 0x86DD) else None
    if link == 276:
        if len(frame) < 20:
            return None
        etype = struct.unpack(">H", frame[0:2])[0]
        return frame[20:] if etype in (0x0800, 0x86DD) else None
    if link in (0, 108):
        return frame[4:] if len(frame) > 4 else None
    if link in (12, 101, 228, 229):
        return frame
    return None


def wrappings(ip):
    """(target, frame) pairs that carry the IP packet `ip` under other link types."""
    if not ip:
        return []
    version = ip[0] >> 4
    if version == 4:
        etype, af_bsd, version_target = 0x0800, 2, "packet_ipv4"
    elif version == 6:
        etype, af_bsd, version_target = 0x86DD, 30, "packet_ipv6"  # AF_INET6 on macOS
    else:
        return []
    sll = struct.pack(">HHH8sH", 0, 1, 6, bytes.fromhex("020000000001") + b"\0\0", etype)
    sll2 = struct.pack(">HHIHBB8s", etype, 0, 2, 1, 0, 6, bytes.fromhex("020000000001") + b"\0\0")
    return [
        ("packet_raw", ip),
        (version_target, ip),
        ("packet_null", struct.pack("<I", af_bsd) + ip),  # DLT_NULL: host (here little) endian
        ("packet_loop", struct.pack(">I", af_bsd) + ip),  # DLT_LOOP: network order
        ("packet_linux_sll", sll + ip),
        ("packet_linux_sll2", sll2 + ip),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=300, help="seeds per target (default 300)")
    ap.add_argument("--no-derive", action="store_true", help="only frames in their own link type")
    ap.add_argument("out")
    ap.add_argument("captures", nargs="+")
    args = ap.parse_args()

    # target -> [native per-file lists], [derived per-file lists]
    native, derived = {}, {}
    for path in args.captures:
        nat, der = {}, {}
        for link, frame in read_capture(path):
            target = TARGETS.get(link)
            if target:
                nat.setdefault(target, []).append(frame)
            if not args.no_derive:
                for t, f in wrappings(ip_payload(link, frame)):
                    if t != target:
                        der.setdefault(t, []).append(f)
        for t, frames in nat.items():
            native.setdefault(t, []).append(frames)
        for t, frames in der.items():
            derived.setdefault(t, []).append(frames)

    for target in sorted(set(TARGETS.values())):
        chosen, seen = [], set()
        for per_file in (native.get(target, []), derived.get(target, [])):
            iters = [iter(frames) for frames in per_file]
            while iters and len(chosen) < args.max:
                for it in list(iters):
                    frame = next(it, None)
                    if frame is None:
                        iters.remove(it)
                        continue
                    h = hashlib.sha1(frame).hexdigest()
                    if h not in seen:
                        seen.add(h)
                        chosen.append((h, frame))
                        if len(chosen) >= args.max:
                            break
        d = os.path.join(args.out, target)
        os.makedirs(d, exist_ok=True)
        for h, frame in chosen:
            with open(os.path.join(d, h), "wb") as f:
                f.write(frame)
        print(f"{target}: {len(chosen)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
