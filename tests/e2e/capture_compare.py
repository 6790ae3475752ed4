#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Compares what ehp::capture delivered with what tcpdump recorded on the same interface.

Checks: same multiset of frames (count and bytes), direction flag of every frame matches its
source address (host address = egress, netns address = ingress), both directions present,
delivery order has non-decreasing timestamps, timestamps are wall clock (inside the test window
and close to tcpdump's for the same frame), and the traffic mix really happened.
"""
import argparse
import collections
import socket
import struct
import sys


def read_pcap(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic = struct.unpack('<I', data[:4])[0]
    if magic == 0xa1b23c4d:
        scale = 1
    elif magic == 0xa1b2c3d4:
        scale = 1000
    else:
        raise SystemExit(f'{path}: not a little-endian pcap (magic {magic:#x})')
    linktype = struct.unpack('<I', data[20:24])[0]
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, cap, wire = struct.unpack('<IIII', data[off:off + 16])
        off += 16
        frame = data[off:off + cap]
        off += cap
        out.append((sec * 1_000_000_000 + frac * scale, wire, frame))
    return linktype, out


def src_ip(frame):
    if len(frame) < 14:
        return None
    eth_type = struct.unpack('!H', frame[12:14])[0]
    if eth_type == 0x0800 and len(frame) >= 34:
        return socket.inet_ntoa(frame[26:30])
    if eth_type == 0x0806 and len(frame) >= 32:
        return socket.inet_ntoa(frame[28:32])
    return None


def l4(frame):
    if len(frame) < 34 or frame[12:14] != b'\x08\x00':
        return 'other'
    return {1: 'icmp', 6: 'tcp', 17: 'udp'}.get(frame[23], 'ip')


def main():
    if len(sys.argv) == 5 and sys.argv[1] == '--count' and sys.argv[3] == '--at-least':
        # Helper mode for the shell test: exit 0 once the pcap holds at least N frames.
        try:
            return 0 if len(read_pcap(sys.argv[2])[1]) >= int(sys.argv[4]) else 1
        except (OSError, struct.error, SystemExit):
            return 1
    ap = argparse.ArgumentParser()
    ap.add_argument('--tcpdump', required=True)
    ap.add_argument('--capture', required=True)
    ap.add_argument('--meta', required=True)
    ap.add_argument('--host-ip', required=True)
    ap.add_argument('--ns-ip', required=True)
    ap.add_argument('--start-ns', type=int, required=True)
    ap.add_argument('--end-ns', type=int, required=True)
    a = ap.parse_args()
    errors = []

    _, td = read_pcap(a.tcpdump)
    lt, cap = read_pcap(a.capture)
    meta = [line.rstrip('\n').split('\t') for line in open(a.meta)]
    if lt != 1:
        errors.append(f'capture linktype {lt}, expected 1 (Ethernet veth)')
    if len(meta) != len(cap):
        errors.append(f'meta rows {len(meta)} != capture records {len(cap)}')

    td_set = collections.Counter(f for _, _, f in td)
    cap_set = collections.Counter(f for _, _, f in cap)
    if td_set != cap_set:
        missing = td_set - cap_set
        extra = cap_set - td_set
        errors.append(f'packet sets differ: tcpdump {len(td)} frames, capture {len(cap)}; '
                      f'{sum(missing.values())} only in tcpdump, {sum(extra.values())} only in capture')
        for f in list(missing)[:5]:
            errors.append(f'  only tcpdump: len {len(f)} {l4(f)} src {src_ip(f)}')
        for f in list(extra)[:5]:
            errors.append(f'  only capture: len {len(f)} {l4(f)} src {src_ip(f)}')
    for (ts, wire, f) in cap:
        if wire != len(f):
            errors.append(f'wire_len {wire} != captured {len(f)} (snaplen is 262144)')
            break

    dirs = collections.Counter()
    prev = 0
    for i, ((ts, wire, f), m) in enumerate(zip(cap, meta)):
        ts_meta, direction = int(m[0]), int(m[1])
        if ts_meta != ts:
            errors.append(f'record {i}: meta ts {ts_meta} != pcap ts {ts}')
        if ts < prev:
            errors.append(f'record {i}: timestamp {ts} < previous {prev} (not in global order)')
        prev = max(prev, ts)
        if not (a.start_ns - 2_000_000_000 <= ts <= a.end_ns + 2_000_000_000):
            errors.append(f'record {i}: timestamp {ts} outside the test window '
                          f'[{a.start_ns}, {a.end_ns}] (+-2 s): not wall clock?')
        s = src_ip(f)
        want = {a.host_ip: 1, a.ns_ip: 0}.get(s)
        if want is None:
            errors.append(f'record {i}: unexpected source {s}')
        elif direction != want:
            errors.append(f'record {i}: direction {direction}, expected {want} for a frame from {s}')
        dirs[direction] += 1
    if dirs[0] == 0 or dirs[1] == 0:
        errors.append(f'both directions expected, got {dict(dirs)}')

    # Same frame, same moment: pair k-th occurrences of identical bytes.
    td_ts = collections.defaultdict(list)
    for ts, _, f in td:
        td_ts[f].append(ts)
    seen = collections.Counter()
    worst = 0
    for ts, _, f in cap:
        k = seen[f]
        seen[f] += 1
        if k < len(td_ts.get(f, [])):
            worst = max(worst, abs(ts - td_ts[f][k]))
    if worst > 1_000_000_000:
        errors.append(f'timestamps differ from tcpdump by up to {worst / 1e9:.3f} s')

    # Attribution made it into the records. A packet is named after the process that sent it
    # when that process is on this host, in any netns (bpf/attribution.h): curl for the TCP
    # frames leaving the host, the netns's python3 http.server for those coming back; the
    # host-side python3 UDP sender for host UDP.
    attr = collections.Counter()
    for i, ((ts, wire, f), m) in enumerate(zip(cap, meta)):
        kind = l4(f)
        attributed, comm = m[5] == '1', m[7] if len(m) > 7 else ''
        if kind == 'tcp':
            attr['tcp'] += 1
            want = 'curl' if m[1] == '1' else 'python3'
            if not attributed or comm != want:
                errors.append(f'record {i}: TCP frame (dir {m[1]}) attributed={attributed} comm={comm!r}, expected {want}')
        elif kind == 'udp' and src_ip(f) == a.host_ip:
            attr['udp'] += 1
            if not attributed or comm != 'python3':
                errors.append(f'record {i}: host UDP frame attributed={attributed} comm={comm!r}, expected python3')

    kinds = collections.Counter(l4(f) for _, _, f in cap)
    for k, n in (('icmp', 12), ('udp', 7), ('tcp', 20)):
        if kinds[k] < n:
            errors.append(f'only {kinds[k]} {k} frames captured, expected >= {n}')
    big = max((len(f) for _, _, f in cap), default=0)

    print(f'compare: tcpdump {len(td)} frames, capture {len(cap)} frames, directions {dict(dirs)}, '
          f'kinds {dict(kinds)}, attributed checks {dict(attr)}, largest frame {big} B, '
          f'max |ts - tcpdump ts| {worst / 1e6:.3f} ms')
    if errors:
        print('\n'.join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
