# SPDX-License-Identifier: BSD-2-Clause
# Helpers for the fault tests (tests/e2e/faults_*.sh) and tools/soak.sh, on top of lib.sh.
# Source it with TAG set (<= 8 characters): names get the prefix p12-.
_FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$_FAULTS_DIR/lib.sh"
rmdir "$WORK" 2>/dev/null
WORK=$(mktemp -d /tmp/p12-$TAG.XXXXXX)
chmod 755 "$WORK"   # -Z tests write here as another user
NS=p12-$TAG
HV=p12-$TAG-h
NV=p12-$TAG-n

# udp_gen DST PORT SECONDS PPS PAYLOAD_BYTES: UDP load from the namespace (PPS 0 = flat out).
# Prints "sent=N" on stdout when done. Call it in the background or in a subshell: it execs.
udp_gen() {
  cat >"$WORK/udp_gen.py" <<'PY'
import socket, sys, time
dst, port, secs, pps, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((dst, port))
payload = b"u" * size
sent = 0
t0 = time.monotonic()
end = t0 + secs
tick = 0.01
while True:
    now = time.monotonic()
    if now >= end:
        break
    if pps:
        due = int((now - t0) * pps) - sent
        for _ in range(max(0, min(due, 5000))):
            try:
                s.send(payload); sent += 1
            except OSError:
                pass
        time.sleep(tick)
    else:
        for _ in range(256):
            try:
                s.send(payload); sent += 1
            except OSError:
                pass
print(f"sent={sent}", flush=True)
PY
  # exec: run in the background (udp_gen ... &), $! is the generator itself, so kill stops it
  # (a plain call would leave python flooding for its whole duration after the subshell died).
  exec ip netns exec "$NS" python3 "$WORK/udp_gen.py" "$@"
}

# rss_kb PID: VmRSS in KiB (empty once the process is gone)
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# pcap_valid FILE: both readers accept the whole file (tshark prints nothing on stderr, tcpdump
# reads to the end without "truncated"/"bad" complaints) and capinfos parses it.
pcap_valid() {
  local f=$1 terr derr
  terr=$(tshark -r "$f" -q 2>&1 >/dev/null | grep -v "Running as user")
  [[ -z $terr ]] || { echo "  tshark: $terr"; return 1; }
  derr=$(tcpdump -nr "$f" 2>&1 >/dev/null | grep -v '^reading from file')
  [[ -z $derr ]] || { echo "  tcpdump: $derr"; return 1; }
  capinfos -c "$f" >/dev/null 2>&1 || { echo "  capinfos failed"; return 1; }
}

# pkt_count FILE: packets tshark reads
pkt_count() { tshark -r "$1" -T fields -e frame.number 2>/dev/null | wc -l; }

# no_tc_left IF: neither our filters nor a clsact qdisc remain on IF
no_tc_left() {
  [[ -z $(tc filter show dev "$1" ingress 2>/dev/null) && -z $(tc filter show dev "$1" egress 2>/dev/null) ]] &&
    ! tc qdisc show dev "$1" | grep -q clsact
}

# summary_field LOG REGEX: the number captured by REGEX (sed -E group 1) on the last matching line
summary_field() { sed -nE "s#.*$2.*#\1#p" "$1" | tail -1; }

# pcapng_blocks FILE [--allow-cut-tail]: walks every block (any size; tshark's MIME reader refuses big files) and
# prints "SHB n IDB n EPB n DSB n ISB n" and one "isb if=I ifrecv=R ifdrop=D usrdeliv=U" per ISB.
# Fails on a block that does not fit the file or whose trailing length differs; with
# --allow-cut-tail a last block cut short (and only that) is reported as "cut_tail=BYTES".
pcapng_blocks() {
  python3 - "$@" <<'PY'
import struct, sys, collections
allow_cut = "--allow-cut-tail" in sys.argv
names = {0x0A0D0D0A: "SHB", 1: "IDB", 6: "EPB", 10: "DSB", 5: "ISB"}
f = open(sys.argv[1], "rb"); data = f.read(); off = 0; n = collections.Counter(); isbs = []
while off < len(data):
    if off + 12 > len(data) or off + struct.unpack_from("<I", data, off + 4)[0] > len(data):
        if allow_cut and len(data) - off < 1 << 20:
            print(f"cut_tail={len(data) - off}"); break
        sys.exit(f"truncated block at {off}")
    t, l = struct.unpack_from("<II", data, off)
    if l < 12 or l % 4: sys.exit(f"bad block length {l} at {off}")
    if struct.unpack_from("<I", data, off + l - 4)[0] != l: sys.exit(f"trailer mismatch at {off}")
    n[names.get(t, hex(t))] += 1
    if t == 5:
        ifid = struct.unpack_from("<I", data, off + 8)[0]; o = off + 20; opts = {}
        while o + 4 <= off + l - 4:
            code, ln = struct.unpack_from("<HH", data, o)
            if code == 0: break
            if ln == 8: opts[code] = struct.unpack_from("<Q", data, o + 4)[0]
            o += 4 + ((ln + 3) & ~3)
        isbs.append(f"isb if={ifid} ifrecv={opts.get(4,'-')} ifdrop={opts.get(5,'-')} usrdeliv={opts.get(8,'-')}")
    off += l
print(" ".join(f"{k} {n[k]}" for k in ["SHB", "IDB", "EPB", "DSB", "ISB"]))
print("\n".join(isbs))
PY
}
