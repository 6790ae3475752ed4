#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 16, an interface that goes away (ip link del) during a capture: it is said at once on
# stderr and in the file (an ISB for that interface with a comment), the other interfaces are
# still captured, and when the last one is gone the capture stops (exit 1, valid file).
# (Attaching again when an interface of that name comes back is not implemented yet.)
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

# 2. The only interface deleted: the capture stops by itself.
ip link add "$X" type veth peer name "$Y" && ip link set "$X" up && ip link set "$Y" up
start_ehp "$WORK/one.log" tls -m pcap -i "$X" -w "$WORK/one.pcapng" || exit 1
ip link del "$X"
exited() { ! kill -0 "$EHP_PID" 2>/dev/null; }
WAIT_S=5 wait_for exited
if exited; then wait "$EHP_PID"; EHP_RC=$?; else echo "  still running: stopping it"; stop_ehp; EHP_RC=999; fi
sed 's/^/  /' "$WORK/one.log"
check "the last interface gone: the capture stops by itself, exit 1 (rc=$EHP_RC)" test "$EHP_RC" -eq 1
check "... saying why" grep -q "every captured interface is gone" "$WORK/one.log"
check "... and its file is valid" pcap_valid "$WORK/one.pcapng"
check "nothing left on $HV" no_tc_left "$HV"
finish
