#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Reads classic pcap and pcapng files (independently of libpcap) for the e2e checks.

  pcapcmp.py same OURS.pcapng THEIRS.pcap    same multiset of packet bytes?
  pcapcmp.py dump OURS.pcapng                one JSON line per EPB: ts, dir, comment, len
"""
import json, struct, sys
from collections import Counter


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic == 0x0A0D0D0A:
        return list(read_pcapng(data))
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = struct.unpack_from(endian + "I", data, 0)[0] == 0xA1B23C4D
    off, out = 24, []
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from(endian + "IIII", data, off)
        off += 16
        out.append({"ts_ns": sec * 10**9 + frac * (1 if nano else 1000), "data": data[off:off + incl],
                    "len": orig, "flags": None, "comment": None, "if": 0})
        off += incl
    return out


def read_pcapng(data):
    off = 0
    tsres = []
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if blen < 12 or off + blen > len(data):
            raise ValueError(f"truncated block at {off}")
        body = data[off + 8: off + blen - 4]
        if btype == 0x0A0D0D0A:
            tsres = []
        elif btype == 1:
            res = 6
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack_from("<HH", body, o)
                if code == 0:
                    break
                if code == 9:
                    res = body[o + 4]
                o += 4 + ((olen + 3) & ~3)
            tsres.append(res)
        elif btype == 6:
            ifid, hi, lo, cap, orig = struct.unpack_from("<IIIII", body, 0)
            pkt = body[20:20 + cap]
            o = 20 + ((cap + 3) & ~3)
            flags = comment = None
            pidtid = None
            while o + 4 <= len(body):
                code, olen = struct.unpack_from("<HH", body, o)
                if code == 0:
                    break
                val = body[o + 4:o + 4 + olen]
                if code == 2:
                    flags = struct.unpack("<I", val)[0]
                elif code == 1:
                    comment = val.decode(errors="replace")
                elif code == 8:
                    pidtid = struct.unpack("<II", val)
                o += 4 + ((olen + 3) & ~3)
            ts = (hi << 32) | lo
            res = tsres[ifid] if ifid < len(tsres) else 6
            ts_ns = ts * (10 ** (9 - res)) if res <= 9 else ts
            yield {"ts_ns": ts_ns, "data": pkt, "len": orig, "flags": flags, "comment": comment,
                   "pidtid": pidtid, "if": ifid}
        off += blen


def main():
    cmd = sys.argv[1]
    if cmd == "same":
        ours, theirs = read_pcap(sys.argv[2]), read_pcap(sys.argv[3])
        a = Counter((p["data"], p["len"]) for p in ours)
        b = Counter((p["data"], p["len"]) for p in theirs)
        only_a, only_b = a - b, b - a
        print(f"ours={len(ours)} theirs={len(theirs)} only_ours={sum(only_a.values())} only_theirs={sum(only_b.values())}")
        for d, l in list(only_a)[:3]:
            print("  only ours:", l, d[:40].hex())
        for d, l in list(only_b)[:3]:
            print("  only theirs:", l, d[:40].hex())
        sys.exit(0 if not only_a and not only_b and len(ours) == len(theirs) else 1)
    if cmd == "dump":
        for p in read_pcap(sys.argv[2]):
            p = dict(p)
            p["hex"] = p.pop("data").hex()
            print(json.dumps(p))


if __name__ == "__main__":
    main()
