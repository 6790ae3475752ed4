#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 15: a busy gateway. A router namespace forwards between a client namespace and a server
# namespace; ecapture-hp captures on the router's two interfaces (-i a -i b) next to tcpdump.
#   - forwarded TLS whose keys can never come (gnutls-cli -> gnutls-serv: neither is traced) is
#     not held: every one of its frames is in time order in the file;
#   - each interface has exactly the packets tcpdump saw on it;
#   - a traced client on the router itself (curl, system libssl) is still held and decrypts;
#   - the summary counts the sessions not held, and no session got keys without being held.
TAG=gw
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
NC=ehp-gw-c NR=ehp-gw-r NSV=ehp-gw-s
SESSIONS=${GW_SESSIONS:-24}
gw_cleanup() {
  for p in "${BG_PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for n in $NC $NR $NSV; do ip netns del $n 2>/dev/null; done
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap gw_cleanup EXIT
for n in $NC $NR $NSV; do ip netns del $n 2>/dev/null; ip netns add $n; ip -n $n link set lo up; done
# client 10.231.1.2 <-> router gwa 10.231.1.1 | router gwb 10.231.2.1 <-> server 10.231.2.2
ip -n $NR link add gwa type veth peer name c0 netns $NC
ip -n $NR link add gwb type veth peer name s0 netns $NSV
for n in $NC $NR $NSV; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
ip -n $NR addr add 10.231.1.1/24 dev gwa; ip -n $NR addr add 10.231.2.1/24 dev gwb
ip -n $NR link set gwa up; ip -n $NR link set gwb up
ip netns exec $NR sysctl -qw net.ipv4.ip_forward=1
ip -n $NC addr add 10.231.1.2/24 dev c0; ip -n $NC link set c0 up; ip -n $NC route add default via 10.231.1.1
ip -n $NSV addr add 10.231.2.2/24 dev s0; ip -n $NSV link set s0 up; ip -n $NSV route add default via 10.231.2.1
ip netns exec $NC ping -c1 -W2 10.231.2.2 >/dev/null || { echo "FAIL: no route through the router"; exit 1; }

make_cert
ip netns exec $NSV gnutls-serv --http --x509certfile "$WORK/cert.pem" --x509keyfile "$WORK/key.pem" -p 443 \
  >"$WORK/gnutls-serv.log" 2>&1 &
BG_PIDS+=($!)
WAIT_S=20 wait_for sh -c "ip netns exec $NSV ss -Hltn 'sport = :443' | grep -q LISTEN" ||
  { echo "FAIL: gnutls-serv did not start"; cat "$WORK/gnutls-serv.log"; exit 1; }

OUT=$WORK/gw.pcapng
FILTER="tcp port 443"
for i in gwa gwb; do
  ip netns exec $NR tcpdump -i $i -w "$WORK/td-$i.pcap" -U -s 262144 $FILTER 2>"$WORK/td-$i.log" &
  BG_PIDS+=($!)
  eval "TD_$i=$!"
  wait_for grep -q "listening on" "$WORK/td-$i.log" || { cat "$WORK/td-$i.log"; exit 1; }
done
ip netns exec $NR "$EHP" tls -m pcap -i gwa -i gwb -w "$OUT" $FILTER 2>"$WORK/ehp.log" &
EHP_PID=$!; BG_PIDS+=($EHP_PID)
wait_for grep -q capturing "$WORK/ehp.log" || { echo "ecapture-hp did not start:"; cat "$WORK/ehp.log"; exit 1; }

# Forwarded, untraced: gnutls-cli in the client namespace. Interleaved with them, a traced
# client on the router (curl: the system libssl) whose sessions must still be held and decrypt.
ok=0
for i in $(seq 1 "$SESSIONS"); do
  printf 'GET /fwd%d HTTP/1.0\r\n\r\n' "$i" |
    timeout 10 ip netns exec $NC gnutls-cli --insecure -p 443 10.231.2.2 >"$WORK/cli.$i.log" 2>&1 && ok=$((ok+1))
  if ((i % 8 == 0)); then
    ip netns exec $NR curl -sk --max-time 10 -o /dev/null "https://10.231.2.2/router$i" || echo "curl $i failed"
  fi
done
check "all $SESSIONS forwarded gnutls sessions completed ($ok)" test "$ok" -eq "$SESSIONS"
CURLS=$((SESSIONS / 8))
sleep 1
stop_ehp
for i in gwa gwb; do eval "kill -INT \$TD_$i"; done
sleep 0.5
check "ecapture-hp exits 0 ($EHP_RC)" test "$EHP_RC" -eq 0
cat "$WORK/ehp.log" | grep -v "pkts.*keys.*held flows" | sed 's/^/  | /'

# 1. Each interface: the packets tcpdump saw there.
for i in gwa gwb; do
  id=$([[ $i == gwa ]] && echo 0 || echo 1)
  python3 - "$OUT" "$WORK/td-$i.pcap" "$id" "$HERE" >"$WORK/cmp-$i.txt" <<'PY'
import sys
sys.path.insert(0, sys.argv[4])
from collections import Counter
from pcapcmp import read_pcap
ours = [p["data"] for p in read_pcap(sys.argv[1]) if p["if"] == int(sys.argv[3])]
theirs = [p["data"] for p in read_pcap(sys.argv[2])]
print(len(ours), len(theirs), "same" if Counter(ours) == Counter(theirs) else "differ")
PY
  read -r n_ours n_td same <"$WORK/cmp-$i.txt"
  check "$i: the same $n_td packets as tcpdump ($n_ours ours, $same)" test "$same" = same -a "$n_ours" -gt 0
done

# 2. Time order: a frame older than one written before it must belong to the router's own
#    (traced, held) sessions; the forwarded ones are all in order.
python3 - "$OUT" "$HERE" >"$WORK/order.txt" <<'PY'
import sys, socket
sys.path.insert(0, sys.argv[2])
from pcapcmp import read_pcap
router = {socket.inet_aton("10.231.2.1"), socket.inet_aton("10.231.1.1")}
mx = 0
fwd_bad = held_bad = fwd = 0
for p in read_pcap(sys.argv[1]):
    d = p["data"]
    src, dst = d[14 + 12:14 + 16], d[14 + 16:14 + 20]
    local = src in router or dst in router
    fwd += not local
    if p["ts_ns"] < mx:
        if local: held_bad += 1
        else: fwd_bad += 1
    mx = max(mx, p["ts_ns"])
print(fwd, fwd_bad, held_bad)
PY
read -r n_fwd fwd_bad held_bad <"$WORK/order.txt"
check "forwarded frames all in time order ($n_fwd frames, $fwd_bad out of order; router's held: $held_bad)" \
  test "$fwd_bad" -eq 0 -a "$n_fwd" -gt 0

# 3. The router's traced sessions decrypt; the forwarded ones cannot (no key exists anywhere).
reqs=$(tshark -r "$OUT" -Y 'http.request && ip.src == 10.231.2.1' -T fields -e http.request.uri 2>/dev/null | sort -u | wc -l)
check "the router's $CURLS curl requests decrypt from the file ($reqs)" test "$reqs" -eq "$CURLS"

# 4. The summary says what was held and what was not.
line=$(grep "TLS sessions held for keys" "$WORK/ehp.log")
not_held=$(sed -n 's/.* \([0-9]*\) not held.*/\1/p' <<<"$line")
held=$(sed -n 's/.*: \([0-9]*\) TLS sessions held.*/\1/p' <<<"$line")
check "summary: the $SESSIONS forwarded sessions not held ($not_held), at most $CURLS held ($held)" \
  test "${not_held:-0}" -eq "$SESSIONS" -a "${held:-99}" -le "$CURLS"
check "no session got keys without being held" bash -c "! grep -q 'got keys but were not held' '$WORK/ehp.log'"
finish
