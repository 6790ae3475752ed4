#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 16, an interface that goes away (ip link del) during a capture: it is said at once on
# stderr and in the file (an ISB for that interface with a comment), the other interfaces are
# still captured; with --no-reattach the capture stops when the last one is gone (exit 1, valid
# file). By default an interface of that name that comes back is captured again (a new IDB, its
# packets on it, also in files rotated later), and while every interface is gone the capture waits.
TAG=e16gone
source "$(dirname "$0")/faults_lib.sh"
setup_veth 164
X=p12-e16gone-x Y=p12-e16gone-y
ip link del "$X" 2>/dev/null
ip link add "$X" type veth peer name "$Y" && ip link set "$X" up && ip link set "$Y" up
trap 'ip link del "$X" 2>/dev/null; cleanup' EXIT

# 1. Two interfaces, one deleted.
OUT=$WORK/two.pcapng
start_ehp "$WORK/two.log" tls -m pcap -i "$HV" -i "$X" -w "$OUT" || exit 1
ping -c 3 -i 0.2 "$PEER_IP" >/dev/null 2>&1
ip link del "$X"
gone_said() { grep -q "interface '$X' is gone" "$WORK/two.log"; }
t0=$SECONDS
WAIT_S=2 wait_for gone_said
check "deleting $X is said on stderr within 2 s ($(grep "is gone" "$WORK/two.log"))" gone_said
check "the capture goes on" kill -0 "$EHP_PID"
ping -c 4 -i 0.2 "$PEER_IP" >/dev/null 2>&1
stop_ehp
check "stopped by SIGINT afterwards: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "the file is valid" pcap_valid "$OUT"
icmp=$(tshark -r "$OUT" -Y "icmp.type == 8 && frame.interface_name == \"$HV\"" 2>/dev/null | wc -l)
check "$HV kept being captured after $X went: all 7 pings there ($icmp)" test "$icmp" -eq 7
tshark -X read_format:"MIME Files Format" -r "$OUT" -V 2>/dev/null >"$WORK/two.mime"
isb_comments=$(grep -c "Comment = interface $X was deleted at" "$WORK/two.mime")
check "the file says it: an ISB of $X with a comment, written at the deletion and at the close ($isb_comments)" \
  test "$isb_comments" -ge 1

# 2. --no-reattach, the only interface deleted: the capture stops by itself.
ip link add "$X" type veth peer name "$Y" && ip link set "$X" up && ip link set "$Y" up
start_ehp "$WORK/one.log" tls -m pcap -i "$X" --no-reattach -w "$WORK/one.pcapng" || exit 1
ip link del "$X"
exited() { ! kill -0 "$EHP_PID" 2>/dev/null; }
WAIT_S=5 wait_for exited
if exited; then wait "$EHP_PID"; EHP_RC=$?; else echo "  still running: stopping it"; stop_ehp; EHP_RC=999; fi
sed 's/^/  /' "$WORK/one.log"
check "the last interface gone: the capture stops by itself, exit 1 (rc=$EHP_RC)" test "$EHP_RC" -eq 1
check "... saying why" grep -q "every captured interface is gone" "$WORK/one.log"
check "... and its file is valid" pcap_valid "$WORK/one.pcapng"
check "nothing left on $HV" no_tc_left "$HV"

# 3. Attach again (the default): the only interface deleted, the capture waits; re-created with
# the same name (its peer in a namespace, as a container's veth), it is captured again as a new
# interface id, and its packets are on that id: as many as tcpdump counts on it.
NS3=ehp-e16back; X3=eh-e16back-x; Y3=eh-e16back-y
mk_x3() {
  ip link add "$X3" type veth peer name "$Y3" netns "$NS3" && ip addr add 10.213.196.1/24 dev "$X3" &&
    ip link set "$X3" up && ip -n "$NS3" addr add 10.213.196.2/24 dev "$Y3" && ip -n "$NS3" link set "$Y3" up
}
ip netns del "$NS3" 2>/dev/null; ip link del "$X3" 2>/dev/null
ip netns add "$NS3"
trap 'ip link del "$X" 2>/dev/null; ip link del "$X3" 2>/dev/null; ip netns del "$NS3" 2>/dev/null; cleanup' EXIT
mk_x3
OUT3=$WORK/back.pcapng
start_ehp "$WORK/back.log" tls -m pcap -i "$X3" -w "$OUT3" icmp || exit 1
ping -c 3 -i 0.2 -q 10.213.196.2 >/dev/null
ip link del "$X3"
waiting() { grep -q "waiting for '$X3' to come back" "$WORK/back.log"; }
WAIT_S=3 wait_for waiting
stats_says() { grep -q "writer=[0-9]*; every captured interface is gone: waiting for '$X3'" "$WORK/back.log"; }
WAIT_S=4 wait_for stats_says   # the stats line comes every 2 s
check "the only interface deleted: the capture waits for it (still running, said: $(grep -o 'every captured.*back' "$WORK/back.log" | head -1))" \
  bash -c "kill -0 $EHP_PID && grep -q \"waiting for '$X3' to come back\" '$WORK/back.log'"
check "... and the stats line says it" stats_says
mk_x3
back() { grep -q "interface '$X3' is back (ifindex [0-9]*): capturing it again as interface #1" "$WORK/back.log"; }
WAIT_S=3 wait_for back
check "re-created: captured again, said on stderr ($(grep "is back" "$WORK/back.log"))" back
tcpdump --immediate-mode -i "$X3" -w "$WORK/back-td.pcap" -U icmp 2>"$WORK/back-td.log" &
TDPID=$!; BG_PIDS+=("$TDPID")
wait_for grep -q "listening on" "$WORK/back-td.log" || cat "$WORK/back-td.log"
ping -c 5 -i 0.2 -q 10.213.196.2 >/dev/null
sleep 0.5
kill -INT "$TDPID"; wait "$TDPID" 2>/dev/null
stop_ehp
sed 's/^/  | /' "$WORK/back.log"
check "stopped by SIGINT: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "the file is valid" pcap_valid "$OUT3"
idb_names=$(capinfos -M "$OUT3" 2>/dev/null | sed -n 's/^ *Name = //p' | xargs)
check "two IDBs named $X3, the old one and the new one ($idb_names)" test "$idb_names" = "$X3 $X3"
old_n=$(tshark -r "$OUT3" -Y "icmp && frame.interface_id == 0" 2>/dev/null | wc -l)
new_n=$(tshark -r "$OUT3" -Y "icmp && frame.interface_id == 1 && frame.interface_name == \"$X3\"" 2>/dev/null | wc -l)
td_n=$(tcpdump -r "$WORK/back-td.pcap" 2>/dev/null | wc -l)
check "the packets before the deletion on the first IDB (6: $old_n)" test "$old_n" -eq 6
check "the packets after it on the second IDB, as many as tcpdump saw on the new $X3 ($new_n vs $td_n, 10)" \
  test "$new_n" -eq 10 -a "$td_n" -eq 10
tshark -X read_format:"MIME Files Format" -r "$OUT3" -V 2>/dev/null >"$WORK/back.mime"
check "the old id keeps its ISB with the deletion comment" grep -q "Comment = interface $X3 was deleted at" "$WORK/back.mime"
check "the filters on the new $X3 were removed at the stop" no_tc_left "$X3"

# 4. The same with rotation (-b duration:1): every file opened after the return holds both IDBs
# and the new packets are on the new one; every file is valid.
ROT=$WORK/rot/r.pcapng; mkdir -p "$WORK/rot"
start_ehp "$WORK/rot.log" tls -m pcap -i "$X3" -w "$ROT" -b duration:1 icmp || exit 1
ip link del "$X3"
WAIT_S=3 wait_for grep -q "waiting for '$X3'" "$WORK/rot.log"
mk_x3
WAIT_S=3 wait_for grep -q "interface '$X3' is back" "$WORK/rot.log"
sleep 1.5   # at least one rotation after the return
ping -c 5 -i 0.2 -q 10.213.196.2 >/dev/null
sleep 0.3
stop_ehp
check "rotating: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
nfiles=0; bad=0; rot_new=0
for f in "$WORK"/rot/r_*.pcapng; do
  nfiles=$((nfiles + 1))
  pcap_valid "$f" >/dev/null || { echo "  invalid: $f"; bad=$((bad + 1)); }
  rot_new=$((rot_new + $(tshark -r "$f" -Y "icmp && frame.interface_id == 1" 2>/dev/null | wc -l)))
done
last=$(ls "$WORK"/rot/r_*.pcapng | tail -1)
last_idbs=$(capinfos -M "$last" 2>/dev/null | sed -n 's/^ *Name = //p' | xargs)
check "$nfiles rotated files, all valid ($bad invalid)" test "$nfiles" -ge 3 -a "$bad" -eq 0
check "the last file (opened after the return) has both IDBs ($last_idbs)" test "$last_idbs" = "$X3 $X3"
check "the pings after the return are on the new id across the files ($rot_new)" test "$rot_new" -eq 10
finish
