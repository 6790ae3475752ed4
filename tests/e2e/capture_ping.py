#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""ICMP echo without iputils (not installed here): capture_ping.py DST [COUNT] [PAYLOAD_BYTES].
Sends COUNT echo requests, waits up to 2 s for each reply; exit 1 if any reply is missing."""
import os
import socket
import struct
import sys
import time


def checksum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack(f'!{len(b) // 2}H', b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def main():
    dst = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 56
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xffff
    for seq in range(1, count + 1):
        payload = bytes((seq + i) & 0xff for i in range(size))
        hdr = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
        pkt = struct.pack('!BBHHH', 8, 0, checksum(hdr + payload), ident, seq) + payload
        s.sendto(pkt, (dst, 0))
        deadline = time.monotonic() + 2
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                print(f'no reply to seq {seq}', file=sys.stderr)
                return 1
            s.settimeout(left)
            try:
                data, addr = s.recvfrom(65535)
            except socket.timeout:
                continue
            ihl = (data[0] & 0xf) * 4
            t, _, _, rid, rseq = struct.unpack('!BBHHH', data[ihl:ihl + 8])
            if t == 0 and rid == ident and rseq == seq and addr[0] == dst:
                break
    return 0


if __name__ == '__main__':
    sys.exit(main())
