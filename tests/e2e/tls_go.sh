#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Go crypto/tls (Debian's Go 1.19), traced through crypto/tls.(*Config).writeKeyLog. The test
# builds tests/e2e/go/tls_go.go four ways: non-PIE, PIE, and both stripped (-ldflags "-s -w":
# only the pclntab names the function; a stripped PIE has no .gopclntab section either). The
# server is gnutls-serv, whose library is not traced, so every key must come from the Go client.
# For each binary:
#  - found without flags: an idle process of it runs before the capture starts, the client is a
#    new process started after (the uprobe is on the file); all 3 requests (TLS 1.3, 1.2, 1.3)
#    decrypt from the pcapng alone;
#  - `gotls --elfpath BIN -m keylog` writes exactly the lines Go's own KeyLogWriter writes;
#  - `gotls --elfpath BIN -m text` shows the 3 requests as written and the 3 responses as read.
# Then: `gotls --elfpath` with no process of the binary running decrypts from the pcapng; a Go
# server (server-side secrets) with gnutls-cli clients, TLS 1.3 and 1.2, decrypts; a Go program
# without crypto/tls is refused by name with --elfpath and is silent when found; a binary whose
# function table is damaged is refused in one line; Debian 13's Go 1.24 and Ubuntu 22.04's Go 1.17
# (fetched from their archives) build the client again, non-PIE and stripped PIE: found,
# decrypted, keylog and text. Skips (exit 77) only when go is missing.
TAG=go
source "$(dirname "$0")/lib.sh"
command -v go >/dev/null || { echo "SKIP: go missing (apt-get install golang-go)"; exit 77; }
command -v gnutls-serv >/dev/null || { echo "SKIP: gnutls-serv missing (apt-get install gnutls-bin)"; exit 77; }
setup_veth 171
BUILD_DIR=$(cd "$(dirname "$EHP")" && pwd)
SRC="$(cd "$(dirname "$0")" && pwd)/go/tls_go.go"

# Offline, standard library only; the build cache under the build directory (CI reuses it).
export GOCACHE="$BUILD_DIR/go-cache" GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOPATH="$WORK/gopath"
mkdir -p "$WORK/src" "$WORK/plain"
cp "$SRC" "$WORK/src/main.go"
printf 'module ehptlsgo\n\ngo 1.19\n' >"$WORK/src/go.mod"
printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("no tls here") }\n' >"$WORK/plain/main.go"
printf 'module ehpplain\n\ngo 1.19\n' >"$WORK/plain/go.mod"
build() {  # build OUT DIR FLAGS...
  local out=$1 dir=$2; shift 2
  (cd "$dir" && go build -o "$out" "$@" .) 2>"$WORK/build.err" || { echo "FAIL: go build $*: $(cat "$WORK/build.err")"; exit 1; }
}
build "$WORK/go-exe" "$WORK/src"
build "$WORK/go-pie" "$WORK/src" -buildmode=pie
build "$WORK/go-strip" "$WORK/src" -ldflags "-s -w"
build "$WORK/go-strip-pie" "$WORK/src" -buildmode=pie -ldflags "-s -w"
build "$WORK/go-plain" "$WORK/plain"
echo "$(go version); $(file -b "$WORK/go-strip-pie" | cut -c1-60)"

make_cert
PORT=19471
start_gnutls_serv "$PORT"
URL="https://$PEER_IP:$PORT"

# go_client_checks LABEL BIN VERSION_RE: the checks every build of the client gets. Found without
# flags (an idle process of it runs before the capture starts, the client is a new process after):
# all 3 sessions decrypt; gotls -m keylog == Go's own KeyLogWriter; gotls -m text shows the 3
# requests as written and the 3 responses as read.
go_client_checks() {
  local B=$1 BIN=$2 ver=$3 IDLE TP trc gets oks
  "$BIN" idle &
  IDLE=$!
  BG_PIDS+=("$IDLE")
  sleep 0.3
  start_ehp "$WORK/p.log" tls -m pcap -i "$HV" -w "$WORK/$B.pcapng" tcp port "$PORT"
  "$BIN" "$URL" >/dev/null
  sleep 0.5
  stop_ehp
  kill "$IDLE" 2>/dev/null; wait "$IDLE" 2>/dev/null
  check "$B: traced without flags, through writeKeyLog" grep -q "tracing $BIN (Go crypto/tls, $ver.*writeKeyLog" "$WORK/p.log"
  check_three_sessions "$B" "$WORK/$B.pcapng"
  check "$B: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0

  rm -f "$WORK/ehp.keys" "$WORK/go.keys"
  start_ehp "$WORK/k.log" gotls -m keylog --keylogfile "$WORK/ehp.keys" --elfpath "$BIN" -q
  KEYLOG="$WORK/go.keys" "$BIN" "$URL" >/dev/null
  sleep 0.5
  stop_ehp
  check "$B: gotls -m keylog lines == Go's KeyLogWriter lines ($(wc -l <"$WORK/ehp.keys") vs $(wc -l <"$WORK/go.keys"))" \
    bash -c "[[ \$(wc -l <'$WORK/go.keys') -eq 9 ]] && diff <(sort '$WORK/ehp.keys') <(sort '$WORK/go.keys') >/dev/null"
  [[ $(wc -l <"$WORK/ehp.keys") -eq 9 ]] ||
    { echo "  ecapture-hp said:"; sed 's/^/  /' "$WORK/k.log"; }

  # -m text: what the client handed (*Conn).Write and what (*Conn).Read returned to it (uprobes
  # on Read's RET instructions, found by decoding the function).
  : >"$WORK/t.log"
  "$EHP" gotls -m text --elfpath "$BIN" -q >"$WORK/text.out" 2>"$WORK/t.log" &
  TP=$!
  BG_PIDS+=("$TP")
  wait_for grep -q capturing "$WORK/t.log"
  "$BIN" "$URL" >/dev/null
  sleep 0.5
  kill -INT "$TP"; wait "$TP"; trc=$?
  gets=$(grep -a -c "^GET /req[0-9] HTTP/1.1" "$WORK/text.out")
  oks=$(grep -a -c "^HTTP/1.[01] 200" "$WORK/text.out")
  check "$B: -m text: exit 0, traced with Read's RET instructions (rc=$trc)" \
    bash -c "(( $trc == 0 )) && grep -q 'tracing $BIN (Go crypto/tls.*(\*Conn).Read entry and its [0-9]* RET instructions' '$WORK/t.log'"
  # (comm: the kernel keeps the first 15 bytes of the name)
  check "$B: -m text: the 3 requests as the client wrote them ($gets) and the 3 responses it read ($oks)" \
    bash -c "(( $gets == 3 && $oks == 3 )) && grep -a -q '^\[SSL_write\] .*comm=${B:0:15}' '$WORK/text.out' && grep -a -q '^\[SSL_read\] .*comm=${B:0:15}' '$WORK/text.out'"
  ((gets == 3 && oks == 3)) || { sed 's/^/  t| /' "$WORK/t.log"; head -c 1500 "$WORK/text.out" | sed 's/^/  o| /'; }
}

for B in go-exe go-pie go-strip go-strip-pie; do
  echo "== $B"
  go_client_checks "$B" "$WORK/$B" 'go1\.19'
done

# gotls --elfpath, no process of the binary running when the capture starts.
BIN=$WORK/go-strip-pie
start_ehp "$WORK/e.log" gotls -m pcap -i "$HV" -w "$WORK/elfpath.pcapng" --elfpath "$BIN" tcp port "$PORT"
"$BIN" "$URL" >/dev/null
sleep 0.5
stop_ehp
check "gotls --elfpath: only that binary is traced" \
  bash -c "[[ \$(grep -c '^ecapture-hp: tracing ' '$WORK/e.log') -eq 1 ]] && grep -q 'tracing $BIN (Go crypto/tls' '$WORK/e.log'"
check_three_sessions "gotls --elfpath" "$WORK/elfpath.pcapng"
check "gotls --elfpath: the key check proves all 3 sessions' keys on the packets" \
  grep -q "key check $BIN: 3 verified, 0 failed" "$WORK/e.log"

# Server side: a Go HTTPS server, clients on GnuTLS (not traced), TLS 1.3 and TLS 1.2.
SPORT=19472
ip netns exec "$NS" "$WORK/go-pie" serve ":$SPORT" "$WORK/cert.pem" "$WORK/key.pem" 2>"$WORK/gosrv.log" &
BG_PIDS+=($!)
wait_for ns_listening "$SPORT"
start_ehp "$WORK/s.log" tls -m pcap -i "$HV" -w "$WORK/server.pcapng" tcp port "$SPORT"
for prio in NORMAL NORMAL:-VERS-TLS1.3; do
  printf 'GET /srv HTTP/1.0\r\n\r\n' | gnutls-cli --insecure --priority "$prio" -p "$SPORT" "$PEER_IP" >"$WORK/cli.out" 2>&1
done
sleep 0.5
stop_ehp
check "Go server: traced without flags" grep -q "tracing .*go-pie (Go crypto/tls" "$WORK/s.log"
reqs=$(tshark -r "$WORK/server.pcapng" -Y 'http.request.uri == "/srv"' 2>/dev/null | wc -l)
resp=$(tshark -r "$WORK/server.pcapng" -Y 'http.response.code == 200' 2>/dev/null | wc -l)
sh13=$(tshark -r "$WORK/server.pcapng" -Y 'tls.handshake.type == 2 && tls.handshake.extensions.supported_version == 0x0304' 2>/dev/null | wc -l)
check "Go server: both requests and responses decrypt from the file alone ($reqs, $resp; $sh13 TLS 1.3)" \
  test "$reqs" -eq 2 -a "$resp" -eq 2 -a "$sh13" -eq 1
check "Go server: the key check proves both sessions' keys" grep -q "key check .*go-pie: 2 verified, 0 failed" "$WORK/s.log"
# -m text on the server: the request as (*Conn).Read returned it, the response as written.
: >"$WORK/st.log"
"$EHP" tls -m text -q >"$WORK/stext.out" 2>"$WORK/st.log" &
TP=$!
BG_PIDS+=("$TP")
wait_for grep -q capturing "$WORK/st.log"
printf 'GET /srvtext HTTP/1.0\r\n\r\n' | gnutls-cli --insecure -p "$SPORT" "$PEER_IP" >"$WORK/cli.out" 2>&1
sleep 0.5
kill -INT "$TP"; wait "$TP"
check "Go server -m text: the request read and the response written" \
  bash -c "grep -a -B1 '^GET /srvtext HTTP/1.0' '$WORK/stext.out' | grep -q '^\[SSL_read\] .*comm=go-pie' &&
           grep -a -A1 '^\[SSL_write\] .*comm=go-pie' '$WORK/stext.out' | grep -q '^HTTP/1.0 200 OK'"

# A Go program without crypto/tls: refused by name when named, silent when found.
"$EHP" gotls -m keylog --keylogfile "$WORK/x.keys" --elfpath "$WORK/go-plain" -q 2>"$WORK/plain.log"
rc=$?
check "no crypto/tls: --elfpath refused in one line, exit $rc" \
  bash -c "[[ $rc -ne 0 ]] && grep -q 'go-plain (go1\.19.*): does not contain crypto/tls' '$WORK/plain.log'"
"$WORK/go-plain" >/dev/null; "$WORK/go-exe" idle & IDLE=$!; BG_PIDS+=("$IDLE")
sleep 0.3
start_ehp "$WORK/a.log" tls -m keylog --keylogfile "$WORK/a.keys" -q
stop_ehp
kill "$IDLE" 2>/dev/null; wait "$IDLE" 2>/dev/null
check "a Go program is a candidate only with crypto/tls" bash -c "! grep -q 'go-plain' '$WORK/a.log'"

# A damaged function table (the pclntab magic overwritten): one line, no crash.
cp "$WORK/go-strip-pie" "$WORK/go-bad"
python3 - "$WORK/go-bad" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
n = 0
for m in (b'\xf0\xff\xff\xff\x00\x00\x01\x08', b'\xf1\xff\xff\xff\x00\x00\x01\x08'):
    i = b.find(m)
    while i >= 0:
        b[i] = 0x00; n += 1
        i = b.find(m, i + 1)
open(p, 'wb').write(b)
print(f"pclntab headers damaged: {n}", file=sys.stderr)
PY
"$EHP" gotls -m keylog --keylogfile "$WORK/x.keys" --elfpath "$WORK/go-bad" -q 2>"$WORK/bad.log"
rc=$?
check "damaged pclntab: refused in one line, exit $rc ($(head -c 160 "$WORK/bad.log"))" \
  bash -c "[[ $rc -ne 0 && \$(wc -l <'$WORK/bad.log') -eq 1 ]] && grep -q 'go-bad (go1\.19.*): no Go 1.16+ function table' '$WORK/bad.log'"

# Other Go toolchains: Debian 13's (1.24; Go 1.20+ function tables have another header) and
# Ubuntu 22.04's 1.17 (the first with the register calling convention; its function table is the
# 1.16 form, with pointers, and its build info points to the version instead of holding it),
# fetched by tools/fetch-debian-go.sh and cached under the build directory. The same client,
# non-PIE and stripped PIE: found without flags and decrypted, -m keylog equals its KeyLogWriter,
# -m text shows what it wrote and read. Ubuntu's archive is another host: when it cannot be
# reached only the 1.17 part is skipped, with one line.
other_go() {  # other_go SUITE [1.NN]
  local goroot rc v flags ogo
  goroot=$(bash "$(dirname "$0")/../../tools/fetch-debian-go.sh" "$1" "$BUILD_DIR/deb-cache" ${2:-} 2>"$WORK/fetchgo.err")
  rc=$?
  if [[ $rc -eq 3 ]]; then
    echo "SKIP (Go of $1): $(cat "$WORK/fetchgo.err")"
    return
  elif [[ $rc -ne 0 ]]; then
    check "Go of $1: fetched ($(cat "$WORK/fetchgo.err"))" false
    return
  fi
  ogo=$("$goroot/bin/go" version | awk '{print $3}')
  rm -rf "$WORK/src-other"
  mkdir -p "$WORK/src-other"
  cp "$WORK/src/main.go" "$WORK/src-other/"
  printf 'module ehptlsgo\n\ngo 1.17\n' >"$WORK/src-other/go.mod"
  for v in exe strip-pie; do
    flags=(); [[ $v == strip-pie ]] && flags=(-buildmode=pie -ldflags "-s -w")
    (cd "$WORK/src-other" && GOROOT=$goroot GOCACHE="$BUILD_DIR/go-cache-$ogo" "$goroot/bin/go" build -o "$WORK/$ogo-$v" "${flags[@]}" .) \
      2>"$WORK/build.err" || { echo "FAIL: $ogo build: $(cat "$WORK/build.err")"; exit 1; }
    go_client_checks "$ogo-$v" "$WORK/$ogo-$v" "${ogo//./\\.}"
  done
  # A hostile function table of the older (1.16-1.17) form: every functab entry's funcoff made
  # huge (past the table, and past the end of the address space when added to it): one line.
  python3 - "$WORK/$ogo-strip-pie" "$WORK/$ogo-bad" <<'PY' || return 0  # the 1.18+ form: not this case
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.find(b'\xfa\xff\xff\xff\x00\x00\x01\x08')
if i < 0:
    sys.exit(1)
nfunc, pcln = struct.unpack_from('<Q', b, i + 8)[0], struct.unpack_from('<Q', b, i + 56)[0]
for k in range(nfunc):
    struct.pack_into('<Q', b, i + pcln + 16 * k + 8, 0xffffffffffff0000)
open(sys.argv[2], 'wb').write(b)
PY
  "$EHP" gotls -m keylog --keylogfile "$WORK/x.keys" --elfpath "$WORK/$ogo-bad" -q 2>"$WORK/bad.log"
  rc=$?
  check "$ogo: hostile funcoffs in the 1.16-form table: refused in one line, exit $rc ($(head -c 160 "$WORK/bad.log"))" \
    bash -c "[[ $rc -ne 0 && \$(wc -l <'$WORK/bad.log') -eq 1 ]] && grep -q '$ogo-bad ($ogo).*function table points outside itself' '$WORK/bad.log'"
}
# -m text attached while the client's goroutine is parked inside (*Conn).Read (the server answers
# its first request 3 s late): that Read returns through a probed RET with no entry kept, so its
# data cannot be shown; it must be counted and said at exit, not dropped silently. The two later
# requests are shown.
PORT_SLOW=19473
DELAY_PATH=/req0 DELAY_S=3 start_py_https "$PORT_SLOW"
"$WORK/go-exe" "https://$PEER_IP:$PORT_SLOW" >"$WORK/slow.out" 2>&1 &
SLOWC=$!; BG_PIDS+=("$SLOWC")
sleep 0.7
: >"$WORK/u.log"
"$EHP" gotls -m text --elfpath "$WORK/go-exe" -q >"$WORK/unseen.out" 2>"$WORK/u.log" &
TP=$!; BG_PIDS+=("$TP")
wait_for grep -q capturing "$WORK/u.log"
wait "$SLOWC"
sleep 0.3
kill -INT "$TP"; wait "$TP"
unseen=$(sed -n 's/.*-m text: also not shown: \([0-9]*\) reads or writes whose call began unseen.*/\1/p' "$WORK/u.log")
check "-m text attached mid-Read: the read it could not show is counted at exit (${unseen:-no line})" \
  test "${unseen:-0}" -ge 1
check "-m text attached mid-Read: the later requests are shown ($(grep -a -c '^GET /req[12] HTTP/1.1' "$WORK/unseen.out") of 2)" \
  test "$(grep -a -c '^GET /req[12] HTTP/1.1' "$WORK/unseen.out")" -eq 2

other_go trixie
other_go jammy 1.17
finish
