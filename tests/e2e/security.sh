#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue "Security first": a hostile local user (nobody, uid 65534) must not get code run as root
# through a library ecapture-hp inspects, must not crash it with a corrupted libssl, must not make
# it read unbounded files, must not receive the secrets it writes, and a signal at any moment
# (filter compile, blocked output open, extcap, start-up) must end it quickly with no tc hook left.
TAG=sec
source "$(dirname "$0")/lib.sh"
setup_veth 131
chmod 0711 "$WORK"   # nobody traverses into the shared directories below, lists nothing
SYS_SSL=/usr/lib/x86_64-linux-gnu/libssl.so.3
PY=/usr/bin/python3  # not a per-user shim: nobody runs it too
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)  # "${NOBODY[@]}" CMD & : $! is CMD's pid
as_nobody() { "${NOBODY[@]}" "$@"; }

sec_cleanup() {  # SIGKILL first: a process stuck in open() on a FIFO ignores lib.sh's SIGTERM
  local p
  for p in "${BG_PIDS[@]:-}"; do
    [[ -n $p ]] || continue
    pkill -KILL -P "$p" 2>/dev/null
    kill -KILL "$p" 2>/dev/null
  done
  cleanup
}
trap sec_cleanup EXIT

now_ms() { date +%s%3N; }
alive() {  # running and not a zombie
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ ${st%% *} != Z ]]
}
exited_within() {  # exited_within SECS PID
  local deadline=$(($(now_ms) + $(awk -v s="$1" 'BEGIN{print int(s*1000)}')))
  while (($(now_ms) < deadline)); do alive "$2" || return 0; sleep 0.02; done
  ! alive "$2"
}
# reap PID: waits up to 5 s more, then SIGKILLs; sets RC (137 when it had to be killed)
reap() {
  exited_within 5 "$1" || { kill -KILL "$1" 2>/dev/null; }
  wait "$1"; RC=$?
}
no_tc_left() {
  [[ -z $(tc filter show dev "$HV" ingress) && -z $(tc filter show dev "$HV" egress) ]] &&
    ! tc qdisc show dev "$HV" | grep -q clsact
}
reset_tc() { tc qdisc del dev "$HV" clsact 2>/dev/null; true; }
nlines() { grep -c . "$1"; }

# run_ehp LIMIT_S LOG ARGS... : ecapture-hp in the background (under /usr/bin/time when present),
# SIGKILLed after LIMIT_S or above 1 GiB. Sets RC, MS (wall ms), READY_MS (ms to the "capturing"
# line, -1 if none), PEAK_KB (peak RSS), KILLED.
run_ehp() {
  local limit=$1 log=$2; shift 2
  local t0 pid epid="" hwm now timed=0
  rm -f "$WORK/time.out"
  READY_MS=-1 KILLED=0 PEAK_KB=0
  t0=$(now_ms)
  if [[ -x /usr/bin/time ]]; then
    timed=1; /usr/bin/time -f '%M' -o "$WORK/time.out" "$EHP" "$@" 2>"$log" &
  else
    "$EHP" "$@" 2>"$log" &
  fi
  pid=$!; BG_PIDS+=("$pid")
  ((timed)) || epid=$pid
  while alive "$pid"; do
    now=$(now_ms)
    if [[ -z $epid ]]; then epid=$(pgrep -P "$pid" -n) && BG_PIDS+=("$epid"); fi
    ((READY_MS < 0)) && grep -q capturing "$log" && READY_MS=$((now - t0))
    if [[ -n $epid ]]; then
      hwm=$(awk '/^VmHWM/{print $2}' "/proc/$epid/status" 2>/dev/null)
      ((${hwm:-0} > PEAK_KB)) && PEAK_KB=$hwm
      if ((now - t0 > limit * 1000 || ${hwm:-0} > 1048576)); then kill -KILL "$epid" 2>/dev/null; KILLED=1; fi
    fi
    sleep 0.02
  done
  wait "$pid"; RC=$?
  MS=$(($(now_ms) - t0))
  ((READY_MS < 0)) && grep -q capturing "$log" && READY_MS=$MS
  hwm=$(grep -E '^[0-9]+$' "$WORK/time.out" 2>/dev/null | tail -1)
  ((${hwm:-0} > PEAK_KB)) && PEAK_KB=$hwm
  ((KILLED)) && reset_tc
  return 0
}

# ---------------------------------------------------------------------------------------------
# 1. No code of a traced library runs inside ecapture-hp.
PUB=$WORK/pub; mkdir -p "$PUB/x" "$PUB/mark" "$PUB/ctr" "$PUB/big"
chmod 0755 "$PUB" "$PUB/x" "$PUB/ctr" "$PUB/big"; chmod 0777 "$PUB/mark"
MARK=$PUB/mark/hits
cat >"$WORK/evil.c" <<EOF
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
const char ehp_evil_version[] __attribute__((used)) = "OpenSSL 3.0.19 27 Jan 2025";
void *SSL_new(void *ctx) { (void)ctx; return 0; }
__attribute__((constructor)) static void ehp_evil(void) {
  char line[64];
  int n = snprintf(line, sizeof line, "%u %d\n", (unsigned)geteuid(), (int)getpid());
  int fd = open("$MARK", O_WRONLY | O_APPEND | O_CREAT, 0666);
  if (fd >= 0) { (void)!write(fd, line, (size_t)n); close(fd); }
}
EOF
gcc -shared -fPIC -O1 -o "$WORK/evil.so" "$WORK/evil.c" || { echo "FAIL: cannot build the evil library"; exit 1; }
install -m 0755 "$WORK/evil.so" "$PUB/x/libssl.so.3"
EVIL=$PUB/x/libssl.so.3
root_lines() { grep -c '^0 ' "$MARK" 2>/dev/null; }   # lines written with euid 0
maps_has() { grep -qF "$2" "/proc/$1/maps"; }

"${NOBODY[@]}" env LD_PRELOAD="$EVIL" sleep 60 &
SPID=$!; BG_PIDS+=("$SPID")
WAIT_S=5 wait_for maps_has "$SPID" "$EVIL"
check "setup: nobody's sleep maps the evil libssl and its constructor ran as 65534" \
  bash -c "grep -qF '$EVIL' /proc/$SPID/maps && grep -qx '65534 $SPID' '$MARK'"

run_ehp 20 "$WORK/1a.err" tls -m keylog --keylogfile "$WORK/k.log" -a duration:2
sed 's/^/  1a| /' "$WORK/1a.err" | head -8
check "keylog: the evil constructor never ran as root ($(root_lines) euid-0 lines)" test "$(root_lines)" = 0
check "keylog: stderr names $EVIL as refused / not traced" \
  bash -c "grep -F '$EVIL' '$WORK/1a.err' | grep -qiE 'refus|not trac|skip'"
check "keylog: exit 0, the system libssl is still traced (rc=$RC)" test "$RC" -eq 0

: >"$MARK"
run_ehp 20 "$WORK/1b.err" tls -m pcap -i "$HV" -w "$WORK/p.pcapng" -p "$SPID" -a duration:2
sed 's/^/  1b| /' "$WORK/1b.err" | head -8
check "pcap -p <nobody's pid>: the evil constructor never ran as root ($(root_lines) euid-0 lines)" test "$(root_lines)" = 0
check "pcap -p <nobody's pid>: no crash (rc=$RC < 128)" test "$RC" -lt 128
kill "$SPID" 2>/dev/null

# A container: the library exists only inside a private mount namespace.
: >"$MARK"
CTR=$PUB/ctr
unshare -m --propagation private sh -c "mount -t tmpfs none '$CTR' && cp '$WORK/evil.so' '$CTR/libssl.so.3' &&
  exec setpriv --reuid=65534 --regid=65534 --clear-groups env LD_PRELOAD='$CTR/libssl.so.3' sleep 60" &
CPID=$!; BG_PIDS+=("$CPID")
WAIT_S=5 wait_for maps_has "$CPID" "$CTR/libssl.so.3"
check "setup: the container's libssl is invisible in the root namespace, mapped in the container" \
  bash -c "test ! -e '$CTR/libssl.so.3' && grep -qF '$CTR/libssl.so.3' /proc/$CPID/maps"
run_ehp 20 "$WORK/1c.err" tls -m keylog --keylogfile "$WORK/k1c.log" -a duration:2
sed 's/^/  1c| /' "$WORK/1c.err" | head -8
check "container keylog: the evil constructor never ran as root ($(root_lines) euid-0 lines)" test "$(root_lines)" = 0
check "container keylog: stderr names the container's ...${CTR#"$WORK"}/libssl.so.3" grep -qF "$CTR/libssl.so.3" "$WORK/1c.err"
kill "$CPID" 2>/dev/null

# ---------------------------------------------------------------------------------------------
# 2. A corrupted libssl never crashes the engine; the capture goes on without TLS keys.
mkdir -p "$WORK/flipped"
FLIP=$WORK/flipped/libssl.so.3
GET_SESSION=$(nm -D --defined-only "$SYS_SSL" | awk '$3 ~ /^SSL_get_session(@|$)/ {print $1; exit}')
"$PY" - "$SYS_SSL" "$FLIP" "${GET_SESSION:-0}" <<'PY'
import random, struct, sys
src, dst, fn_addr = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
d = bytearray(open(src, "rb").read())
shoff, = struct.unpack_from("<Q", d, 0x28)
phoff, = struct.unpack_from("<Q", d, 0x20)
phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", d, 0x36)
sh = lambda i: struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize)
stroff = sh(shstrndx)[4]
text = None
for i in range(shnum):
    name, _, _, _, off, size = sh(i)[:6]
    if d[stroff + name:d.index(b"\0", stroff + name)] == b".text":
        text = (off, size)
rng = random.Random(20250127)
for _ in range(200):
    p = text[0] + rng.randrange(text[1])
    d[p] ^= 1 << rng.randrange(8)
fn_off = None  # SSL_get_session's file offset through the PT_LOAD that maps it
for i in range(phnum):
    typ, _, off, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", d, phoff + i * phentsize)[:6]
    if typ == 1 and vaddr <= fn_addr < vaddr + filesz:
        fn_off = fn_addr - vaddr + off
assert fn_addr and fn_off is not None, "SSL_get_session not found"
d[fn_off + rng.randrange(8)] ^= 1 << rng.randrange(8)
open(dst, "wb").write(d)
PY
check "setup: flipped copy of the system libssl differs from it" bash -c "test -s '$FLIP' && ! cmp -s '$SYS_SSL' '$FLIP'"
ping -q -i 0.2 -w 8 "$PEER_IP" >/dev/null 2>&1 &
PING_PID=$!; BG_PIDS+=("$PING_PID")
run_ehp 30 "$WORK/2.err" tls -m pcap -i "$HV" -w "$WORK/flip.pcapng" --libssl "$FLIP" -a duration:3
kill "$PING_PID" 2>/dev/null
sed 's/^/  2| /' "$WORK/2.err" | head -8
check "flipped libssl: exit 0, no signal (rc=$RC)" test "$RC" -eq 0
check "flipped libssl: exactly one stderr line names it ($(grep -cF "$FLIP" "$WORK/2.err"))" \
  test "$(grep -cF "$FLIP" "$WORK/2.err")" = 1
check "flipped libssl: the pcapng is valid (capinfos)" capinfos "$WORK/flip.pcapng"
nicmp=$(tshark -r "$WORK/flip.pcapng" -Y icmp 2>/dev/null | grep -c .)
check "flipped libssl: the capture went on, ICMP packets in the file ($nicmp)" test "${nicmp:-0}" -gt 0

# ---------------------------------------------------------------------------------------------
# 3. Bounded reads of hostile files.
BIG=$PUB/big/libssl.so.3
install -m 0644 "$WORK/evil.so" "$BIG"
truncate -s 512M "$BIG"
"${NOBODY[@]}" "$PY" -c 'import mmap,sys,time; f=open(sys.argv[1],"rb"); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); time.sleep(60)' "$BIG" &
MPID=$!; BG_PIDS+=("$MPID")
WAIT_S=5 wait_for maps_has "$MPID" "$BIG"
check "setup: nobody maps the 512 MiB sparse libssl" maps_has "$MPID" "$BIG"
run_ehp 20 "$WORK/3a.err" tls -m keylog --keylogfile "$WORK/k2.log" -a duration:1
sed 's/^/  3a| /' "$WORK/3a.err" | head -8
check "512 MiB libssl: peak RSS < 100 MB (${PEAK_KB} KiB)" test "$PEAK_KB" -gt 0 -a "$PEAK_KB" -lt 97656
check "512 MiB libssl: 'capturing' within 2 s of start (${READY_MS} ms)" test "$READY_MS" -ge 0 -a "$READY_MS" -lt 2000
kill "$MPID" 2>/dev/null

run_ehp 4 "$WORK/3b.err" tls -m keylog --keylogfile "$WORK/k3.log" --libssl /dev/zero
sed 's/^/  3b| /' "$WORK/3b.err" | head -4
check "--libssl /dev/zero: non-zero exit within 2 s (rc=$RC, ${MS} ms, killed=$KILLED)" \
  test "$KILLED" = 0 -a "$RC" -ne 0 -a "$MS" -lt 2000
check "--libssl /dev/zero: one stderr line, naming /dev/zero ($(nlines "$WORK/3b.err") lines)" \
  bash -c "test \$(grep -c . '$WORK/3b.err') = 1 && grep -qF /dev/zero '$WORK/3b.err'"
check "--libssl /dev/zero: peak RSS < 100 MB (${PEAK_KB} KiB)" test "$PEAK_KB" -gt 0 -a "$PEAK_KB" -lt 97656

# ---------------------------------------------------------------------------------------------
# 4. The output holds secrets: never written into a file another user owns or holds open.
D=$PUB/shared; mkdir -p "$D"; chmod 1777 "$D"
make_cert
start_s_server 8443 || echo "  (s_server did not start: keylog files will have no keys)"
# holder FILE NAME: nobody opens FILE now (before the capture) and, once $D/go.NAME exists, prints
# how many bytes it can read through that descriptor.
holder() {
  "${NOBODY[@]}" "$PY" -c '
import os, sys, time
f = open(sys.argv[1], "rb"); print("ready", flush=True)
end = time.time() + 60
while not os.path.exists(sys.argv[2]) and time.time() < end: time.sleep(0.05)
print(len(f.read()), flush=True)' "$1" "$D/go.$2" >"$WORK/hold.$2" 2>&1 &
  HOLD_PID=$!; BG_PIDS+=("$HOLD_PID")
  WAIT_S=5 wait_for grep -q ready "$WORK/hold.$2"
}
held_bytes() { touch "$D/go.$1"; wait "$HOLD_PID"; HB=$(sed -n 2p "$WORK/hold.$1"); }  # sets HB
nobody_reads() { as_nobody cat "$1" 2>/dev/null | wc -c; }
# secret_outcome FILE RC ERR INODE0: refused (rc != 0, one line naming FILE, nobody's empty file
# untouched) or replaced (rc 0, a root-owned 0600 file with another inode).
secret_outcome() {
  if (($2 != 0)); then
    [[ $(nlines "$3") == 1 ]] && grep -qF "$1" "$3" && [[ $(stat -c '%u %s %i' "$1") == "65534 0 $4" ]]
  else
    [[ $(stat -c '%u %a' "$1") == "0 600" && $(stat -c %i "$1") != "$4" ]]
  fi
}

as_nobody sh -c 'umask 0; : >"$1"' sh "$D/out.pcapng"
ino=$(stat -c %i "$D/out.pcapng")
holder "$D/out.pcapng" out
ping -q -i 0.1 -w 5 "$PEER_IP" >/dev/null 2>&1 &
PING_PID=$!; BG_PIDS+=("$PING_PID")
run_ehp 20 "$WORK/4a.err" tls -m pcap -i "$HV" -w "$D/out.pcapng" -a duration:1
kill "$PING_PID" 2>/dev/null
sed 's/^/  4a| /' "$WORK/4a.err" | head -4
now=$(stat -c '%U %a %s inode %i' "$D/out.pcapng" 2>&1)
check "nobody's out.pcapng: refused untouched, or replaced by root 0600 (rc=$RC; $now; was inode $ino)" \
  secret_outcome "$D/out.pcapng" "$RC" "$WORK/4a.err" "$ino"
check "nobody cannot read packet data from out.pcapng ($(nobody_reads "$D/out.pcapng") bytes)" \
  test "$(nobody_reads "$D/out.pcapng")" = 0
held_bytes out
check "nobody's descriptor opened before the capture reads no packet data (${HB:-?} bytes)" test "${HB:-x}" = 0

as_nobody sh -c 'umask 0; : >"$1"' sh "$D/keys.log"
ino=$(stat -c %i "$D/keys.log")
holder "$D/keys.log" keys
"$EHP" tls -m keylog --keylogfile "$D/keys.log" -a duration:2 2>"$WORK/4b.err" &
KPID=$!; BG_PIDS+=("$KPID")
WAIT_S=8 wait_for grep -q capturing "$WORK/4b.err"
for _ in 1 2 3; do curl -sk --max-time 3 -o /dev/null "https://$PEER_IP:8443/" ; done
reap "$KPID"
sed 's/^/  4b| /' "$WORK/4b.err" | head -4
now=$(stat -c '%U %a %s inode %i' "$D/keys.log" 2>&1)
check "nobody's keys.log: refused untouched, or replaced by root 0600 (rc=$RC; $now; was inode $ino)" \
  secret_outcome "$D/keys.log" "$RC" "$WORK/4b.err" "$ino"
check "nobody cannot read keys from keys.log ($(nobody_reads "$D/keys.log") bytes)" \
  test "$(nobody_reads "$D/keys.log")" = 0
held_bytes keys
check "nobody's descriptor opened before the capture reads no keys (${HB:-?} bytes)" test "${HB:-x}" = 0

as_nobody mkfifo "$D/nf"
run_ehp 4 "$WORK/4c.err" tls -m pcap -i "$HV" -w "$D/nf"
sed 's/^/  4c| /' "$WORK/4c.err" | head -4
check "nobody's FIFO as -w: refused, non-zero exit within 2 s (rc=$RC, ${MS} ms, killed=$KILLED)" \
  test "$KILLED" = 0 -a "$RC" -ne 0 -a "$MS" -lt 2000
check "nobody's FIFO as -w: one stderr line naming it ($(nlines "$WORK/4c.err") lines)" \
  bash -c "test \$(grep -c . '$WORK/4c.err') = 1 && grep -qF '$D/nf' '$WORK/4c.err'"

run_ehp 20 "$WORK/4d.err" tls -m pcap -i "$HV" -w "$WORK/fresh.pcapng" -a duration:1
check "fresh -w file: created 0600, owned by root ($(stat -c '%U %a' "$WORK/fresh.pcapng" 2>&1), rc=$RC)" \
  test "$(stat -c '%u %a' "$WORK/fresh.pcapng" 2>/dev/null)" = "0 600"

# ---------------------------------------------------------------------------------------------
# 5. Signals at every moment end it within 1 s, with no tc hook left.
reset_tc
FILTER=$(seq -f 'tcp port %g' 1 1500 | paste -sd'|' | sed 's/|/ or /g')
"$EHP" tls -m pcap -i "$HV" -w "$WORK/f.pcapng" "$FILTER" 2>"$WORK/5a.err" &
P=$!; BG_PIDS+=("$P")
sleep 0.5
kill -TERM "$P" 2>/dev/null
exited_within 1 "$P"; ok=$?
reap "$P"
check "1,500-term filter: SIGTERM 0.5 s in, exited within 1 s (rc=$RC)" test "$ok" = 0
check "1,500-term filter + SIGTERM: no tc filter / clsact left on $HV" no_tc_left
reset_tc

run_ehp 8 "$WORK/5b.err" tls -m pcap -i "$HV" -w "$WORK/f2.pcapng" "$FILTER"
sed 's/^/  5b| /' "$WORK/5b.err" | head -4
check "1,500-term filter: fails by itself, non-zero within 5 s (rc=$RC, ${MS} ms, killed=$KILLED)" \
  test "$KILLED" = 0 -a "$RC" -ne 0 -a "$MS" -lt 5000
check "1,500-term filter: one stderr line mentioning the filter ($(nlines "$WORK/5b.err") lines)" \
  bash -c "test \$(grep -c . '$WORK/5b.err') = 1 && grep -qi filter '$WORK/5b.err'"
reset_tc

mkfifo "$WORK/ff"
"$EHP" tls -m pcap -i "$HV" -w "$WORK/ff" 2>"$WORK/5c.err" &
P=$!; BG_PIDS+=("$P")
sleep 1
kill -TERM "$P" 2>/dev/null
exited_within 1 "$P"; ok=$?
reap "$P"
check "-w FIFO without a reader: SIGTERM after 1 s, exited within 1 s (rc=$RC)" test "$ok" = 0
check "-w FIFO without a reader + SIGTERM: no tc filter / clsact left on $HV" no_tc_left
reset_tc

mkfifo "$WORK/ff2"
"$EHP" --capture --extcap-interface "ecapture-hp_$HV" --fifo "$WORK/ff2" 2>"$WORK/5d.err" &
P=$!; BG_PIDS+=("$P")
sleep 1
kill -TERM "$P" 2>/dev/null
exited_within 1 "$P"; ok=$?
reap "$P"
check "extcap --fifo without a reader: SIGTERM after 1 s, exited within 1 s (rc=$RC)" test "$ok" = 0
check "extcap --fifo without a reader + SIGTERM: no tc filter / clsact left on $HV" no_tc_left
reset_tc

"$EHP" tls -m pcap -i "$HV" -w "$WORK/s.pcapng" 2>"$WORK/5e.err" &
P=$!; BG_PIDS+=("$P")
sleep 0.3
kill -INT "$P" 2>/dev/null
exited_within 1 "$P"; ok=$?
reap "$P"
check "SIGINT 0.3 s into start-up: exited within 1 s" test "$ok" = 0
check "SIGINT during start-up: status 0 or 130 (rc=$RC)" test "$RC" -eq 0 -o "$RC" -eq 130
check "SIGINT during start-up: no tc filter / clsact left on $HV" no_tc_left
reset_tc
# ---------------------------------------------------------------------------------------------
# 6. The same hostile files first run *after* the start (the exec tracepoint's late looks): read,
#    never run, refused by name, and the capture goes on and stops on time. Nobody runs: the
#    evil libssl (constructor), the 512 MiB sparse one, the flipped copy of the system libssl,
#    and an executable that exports ssl_log_secret (so it is inspected as OpenSSL linked in) with
#    a constructor of its own.
cat >"$WORK/evilexe.c" <<EOF
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int ssl_log_secret(void *s, const char *l, const unsigned char *k, unsigned long n) { (void)s; (void)l; (void)k; return (int)n; }
__attribute__((constructor)) static void ehp_evil(void) {
  char line[64];
  int n = snprintf(line, sizeof line, "%u %d\n", (unsigned)geteuid(), (int)getpid());
  int fd = open("$MARK", O_WRONLY | O_APPEND | O_CREAT, 0666);
  if (fd >= 0) { (void)!write(fd, line, (size_t)n); close(fd); }
}
int main(void) { sleep(3); return 0; }
EOF
gcc -O1 -rdynamic -o "$WORK/evilexe" "$WORK/evilexe.c" || { echo "FAIL: cannot build the evil executable"; exit 1; }
install -m 0755 "$WORK/evilexe" "$PUB/x/evilexe"
mkdir -p "$PUB/flip" && chmod 0755 "$PUB/flip" && install -m 0644 "$FLIP" "$PUB/flip/libssl.so.3"
: >"$MARK"
"$EHP" tls -m keylog --keylogfile "$WORK/k6.log" 2>"$WORK/6.err" &
P=$!; BG_PIDS+=("$P")
WAIT_S=10 wait_for grep -q capturing "$WORK/6.err"
nobody_maps() {  # nobody_maps FILE: a process of nobody's that maps FILE for 3 s
  "${NOBODY[@]}" "$PY" -c 'import mmap,sys,time; f=open(sys.argv[1],"rb"); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); time.sleep(3)' "$1" &
  BG_PIDS+=($!)
}
"${NOBODY[@]}" env LD_PRELOAD="$EVIL" sleep 3 &
BG_PIDS+=($!)
nobody_maps "$BIG"
nobody_maps "$PUB/flip/libssl.so.3"
"${NOBODY[@]}" "$PUB/x/evilexe" &
BG_PIDS+=($!)
sleep 2.5  # past the last look (1.5 s after each exec)
check "late: ecapture-hp is still running after the hostile programs started" alive "$P"
kill -INT "$P" 2>/dev/null
exited_within 1 "$P"; ok=$?
reap "$P"
sed 's/^/  6| /' "$WORK/6.err" | head -12
check "late: SIGINT exited within 1 s, status 0 (rc=$RC)" test "$ok" = 0 -a "$RC" -eq 0
check "late: no hostile constructor ever ran as root ($(root_lines) euid-0 lines, $(grep -c '^65534 ' "$MARK") as nobody)" \
  bash -c "test \$(grep -c '^0 ' '$MARK') = 0 && test \$(grep -c '^65534 ' '$MARK') -ge 2"
check "late: the evil libssl is named as not traced" bash -c "grep -F '$EVIL' '$WORK/6.err' | grep -qiE 'refus|not trac'"
check "late: the executable exporting ssl_log_secret is named as not traced" \
  bash -c "grep -F '$PUB/x/evilexe' '$WORK/6.err' | grep -qiE 'refus|not trac'"
check "late: the flipped libssl is named once ($(grep -cF "$PUB/flip/libssl.so.3" "$WORK/6.err"))" \
  test "$(grep -cF "$PUB/flip/libssl.so.3" "$WORK/6.err")" = 1
check "late: none of nobody's other files is traced (no 'tracing' line names $PUB/x or $PUB/big)" \
  bash -c "! grep -E 'tracing $PUB/(x|big)/' '$WORK/6.err'"
finish
