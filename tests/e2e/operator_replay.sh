#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 16, replay: the input's TLS keys (its DSBs) come out as keys, so the output decrypts as
# the input did; timestamps at and after 2^31 s (2038) come out unchanged; an input whose last
# record is cut gives the packets before it, one warning with the byte offset, exit 0 (as
# tshark and editcap read it).
TAG=e16rep
source "$(dirname "$0")/faults_lib.sh"
setup_veth 162
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }

# 1. A live capture of 3 HTTPS requests (keys in its DSBs), then replayed.
IN=$WORK/live.pcapng
start_ehp "$WORK/live.log" tls -m pcap -i "$HV" -w "$IN" || exit 1
for i in 1 2 3; do curl -sk --max-time 5 -o /dev/null "https://$PEER_IP:8443/replay-$i" || echo "curl $i failed"; done
sleep 0.5
stop_ehp
in_reqs=$(tshark -r "$IN" -Y http.request 2>/dev/null | wc -l)
echo "  input: $in_reqs requests decrypt"
"$EHP" replay "$IN" -w "$WORK/live.out.pcapng" >"$WORK/replay1.log" 2>&1; rc=$?
cat "$WORK/replay1.log" | sed 's/^/  /'
check "replay of a capture with DSBs: exit 0 (rc=$rc)" test "$rc" -eq 0
out_reqs=$(tshark -r "$WORK/live.out.pcapng" -Y http.request 2>/dev/null | wc -l)
check "the replay decrypts exactly as its input ($out_reqs == $in_reqs == 3)" test "$out_reqs" -eq 3 -a "$in_reqs" -eq 3
check "the replay is a valid file" pcap_valid "$WORK/live.out.pcapng"
check "the replay keeps every packet ($(pkt_count "$WORK/live.out.pcapng") == $(pkt_count "$IN"))" \
  test "$(pkt_count "$WORK/live.out.pcapng")" -eq "$(pkt_count "$IN")"

# 2. Timestamps in 2038 and later, in pcap (unsigned 32-bit seconds) and pcapng.
cat >"$WORK/gen.py" <<'PY'
import struct, sys
kind, path, n, first_s, cut = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "cut"
def frame(i):
    payload = b"ehp-replay-%04d" % i
    udp = struct.pack("!HHHH", 40000, 9999, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, bytes([10, 9, 9, 1]), bytes([10, 9, 9, 2]))
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp
with open(path, "wb") as f:
    if kind == "pcap":
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
        for i in range(n):
            d = frame(i)
            f.write(struct.pack("<IIII", first_s + i, 250000, len(d), len(d)) + d)
        if cut:
            d = frame(n)
            f.write(struct.pack("<IIII", first_s + n, 0, len(d), len(d)) + d[:20])
    else:
        def block(t, body):
            body += b"\0" * (-len(body) % 4)
            return struct.pack("<II", t, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", 1, 0, 262144) + struct.pack("<HHB3x", 9, 1, 9) + b"\0\0\0\0"))
        for i in range(n):
            d = frame(i)
            ts = (first_s + i) * 10**9 + 250000000
            f.write(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff, len(d), len(d)) + d))
        if cut:
            d = frame(n)
            ts = (first_s + n) * 10**9
            f.write(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xffffffff, len(d), len(d)) + d)[:40])
PY
T0=$((1 << 31))   # 2038-01-19 03:14:08 UTC
for kind in pcap pcapng; do
  python3 "$WORK/gen.py" "$kind" "$WORK/y2038.$kind" 5 $((T0 - 2)) full
  "$EHP" replay "$WORK/y2038.$kind" -w "$WORK/y2038.$kind.out.pcapng" >/dev/null 2>"$WORK/y2038.$kind.err"; rc=$?
  want=$(tshark -r "$WORK/y2038.$kind" -T fields -e frame.time_epoch 2>/dev/null | tr '\n' ' ')
  got=$(tshark -r "$WORK/y2038.$kind.out.pcapng" -T fields -e frame.time_epoch 2>/dev/null | tr '\n' ' ')
  echo "  $kind in:  $want"
  echo "  $kind out: $got"
  check "$kind with times across 2^31 s: exit 0 (rc=$rc) and the same times out as tshark reads in" \
    test "$rc" -eq 0 -a -n "$want" -a "$want" = "$got"
  check "$kind: the last one is in 2038, not later ($(tshark -r "$WORK/y2038.$kind.out.pcapng" -T fields -e frame.time_epoch 2>/dev/null | tail -1))" \
    bash -c "tshark -r '$WORK/y2038.$kind.out.pcapng' -T fields -e frame.time_epoch 2>/dev/null | tail -1 | grep -q '^2147483650\.25'"
done

# 3. A cut last record: 10 packets, then one cut short.
for kind in pcap pcapng; do
  python3 "$WORK/gen.py" "$kind" "$WORK/cut.$kind" 10 1700000000 cut
  tshark_n=$(tshark -r "$WORK/cut.$kind" -T fields -e frame.number 2>/dev/null | wc -l)
  size=$(stat -c %s "$WORK/cut.$kind")
  "$EHP" replay "$WORK/cut.$kind" -w "$WORK/cut.$kind.out.pcapng" >/dev/null 2>"$WORK/cut.$kind.err"; rc=$?
  sed 's/^/  /' "$WORK/cut.$kind.err"
  n=$(pkt_count "$WORK/cut.$kind.out.pcapng")
  check "$kind cut after 10 packets: exit 0 (rc=$rc), the 10 packets tshark reads ($n, tshark $tshark_n)" \
    test "$rc" -eq 0 -a "$n" -eq 10 -a "$tshark_n" -eq 10
  # The cut record starts where the 10 good ones end: the file size minus the cut part.
  case $kind in pcap) off=$((size - 16 - 20));; pcapng) off=$((size - 40));; esac
  check "$kind: one warning, naming the byte offset $off" \
    bash -c "[[ \$(grep -c . '$WORK/cut.$kind.err') -eq 1 ]] && grep -q 'warning.*byte $off\\b' '$WORK/cut.$kind.err'"
  check "$kind: the output is valid" pcap_valid "$WORK/cut.$kind.out.pcapng"
done

# 4. Hostile input: a block whose length lies is refused with one line, no crash.
printf '\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x1c\x00\x00\x00\x06\x00\x00\x00\xf0\xff\xff\x7f' >"$WORK/bad.pcapng"
"$EHP" replay "$WORK/bad.pcapng" -w "$WORK/bad.out.pcapng" >/dev/null 2>"$WORK/bad.err"; rc=$?
check "a block with an impossible length: exit 1 with one line ($(cat "$WORK/bad.err"))" \
  bash -c "[[ $rc -eq 1 && \$(grep -c . '$WORK/bad.err') -eq 1 ]] && grep -q 'byte 28' '$WORK/bad.err'"
finish
