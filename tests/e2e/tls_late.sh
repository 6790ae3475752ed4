#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Processes started after the capture (issue 14 item 4): ecapture-hp starts with no --libssl
# while no process of the test's binaries runs (each is a fresh copy in the work directory, an
# inode nobody has mapped), then the client is started. Its first session must decrypt: the
# exec is seen in the kernel, the new process's maps are read at once, and the probes must be in
# place before its first handshake. The server is gnutls-serv (not traced), so every key comes
# from the late client. Clients: a Go crypto/tls program (tests/e2e/go/tls_go.go), a Node.js
# with OpenSSL linked in (tools/fetch-node.sh, cached under the build dir) and `openssl s_client`
# loading a copy of the system libssl (mapped by the loader after the exec). The client's first
# request comes at once after the exec (see below). Prints how long after the exec the probes were in
# place. Skips (exit 77) when gnutls-serv is missing; each client skips alone when it is.
TAG=late
source "$(dirname "$0")/lib.sh"
command -v gnutls-serv >/dev/null || { echo "SKIP: gnutls-serv missing (apt-get install gnutls-bin)"; exit 77; }
setup_veth 181
BUILD_DIR=$(cd "$(dirname "$EHP")" && pwd)
make_cert
PORT=19481
start_gnutls_serv "$PORT"
URL="https://$PEER_IP:$PORT"
# No client waits: the Go client's first handshake starts ~3 ms after its exec, node's ~35-40 ms.
# Their probes are attached to the logged-secrets object loaded at the start, with the kernel's
# RCU grace periods expedited for the attach (engine/tlsprobe/expedite.h): 1-3 ms after the exec
# on this 2-core VM (also with one or both cores kept busy), where a normal grace period made it
# 7-18 ms and the Go client's first sessions were lost (0 of 3 decrypted). docs/usage.md says
# what is missed without it (--no-rcu-expedite, or a kernel whose rcu_normal is set).
DELAY_MS=0
KNOB=/sys/kernel/rcu_expedited
KNOB_BEFORE=$(cat "$KNOB" 2>/dev/null)

# late LABEL BIN ARGS...: capture, then start BIN; checks the tracing line and the decryption.
late() {
  local label=$1 bin=$2; shift 2
  start_ehp "$WORK/$label.log" tls -m pcap -i "$HV" -w "$WORK/$label.pcapng" tcp port "$PORT"
  check "$label: not traced at the start" bash -c "! grep -q 'tracing $bin' '$WORK/$label.log'"
  "$bin" "$@" >"$WORK/$label.out" 2>&1
  sleep 0.5
  stop_ehp
  local line
  line=$(grep "tracing $bin .*found after the start" "$WORK/$label.log")
  echo "  $line"
  check "$label: traced after the start, probes in place after its exec" \
    bash -c "[[ -n \"\$1\" && \"\$1\" =~ probes\ in\ place\ [0-9]+\ ms\ after\ its\ exec ]]" _ "$line"
  check_three_sessions "$label" "$WORK/$label.pcapng"
  check "$label: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
  if [[ $KNOB_BEFORE == 0 ]]; then
    check "$label: RCU expedited for the attach, then put back ($KNOB: $(cat "$KNOB"))" \
      bash -c "[[ \"\$1\" == *'RCU expedited for the attach'* && \$(cat $KNOB) == 0 ]]" _ "$line"
  else
    echo "  ($KNOB was '$KNOB_BEFORE' before the test: someone else's; not checked)"
  fi
  [[ $FAIL -eq 0 ]] || sed 's/^/  | /' "$WORK/$label.log"
}

# Go: built offline from the standard library (the cache under the build dir, as tls_go.sh).
if command -v go >/dev/null; then
  export GOCACHE="$BUILD_DIR/go-cache" GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GOPATH="$WORK/gopath"
  mkdir -p "$WORK/src"
  cp "$(dirname "$0")/go/tls_go.go" "$WORK/src/main.go"
  printf 'module ehptlsgo\n\ngo 1.19\n' >"$WORK/src/go.mod"
  (cd "$WORK/src" && go build -o "$WORK/go-late" .) 2>"$WORK/build.err" ||
    { echo "FAIL: go build: $(cat "$WORK/build.err")"; exit 1; }
  DELAY_MS=$DELAY_MS late go "$WORK/go-late" "$URL"
else
  echo "SKIP (Go part): go missing (apt-get install golang-go)"
fi

# Node.js, OpenSSL 3.5 linked into the executable; a copy, so that no process maps its inode.
cat >"$WORK/client.js" <<JS
const https = require('https');
function get(opts) {
  return new Promise(r => https.get(Object.assign({host: '$PEER_IP', port: $PORT, path: '/', agent: false,
                                                  rejectUnauthorized: false}, opts),
    res => { res.resume(); res.on('end', r); }).on('error', e => { console.error(e.message); r(); }));
}
setTimeout(async () => { await get({}); await get({maxVersion: 'TLSv1.2'}); await get({});
  setTimeout(() => process.exit(0), 300); }, 0);
JS
node=$(bash "$(dirname "$0")/../../tools/fetch-node.sh" 22 "$BUILD_DIR/node-cache" 2>"$WORK/fetch.err")
if [[ $? -eq 0 ]]; then
  cp "$node" "$WORK/node-late"
  late node "$WORK/node-late" "$WORK/client.js"
else
  echo "SKIP (Node part): $(cat "$WORK/fetch.err")"
fi

# A shared libssl the loader maps after the exec: a copy of the system one, by LD_LIBRARY_PATH.
mkdir -p "$WORK/lib"
cp /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libcrypto.so.3 "$WORK/lib/"
cat >"$WORK/sclient.sh" <<SH
#!/bin/bash
for v in -tls1_3 -tls1_2 -tls1_3; do
  printf 'GET / HTTP/1.0\r\n\r\n' | LD_LIBRARY_PATH=$WORK/lib openssl s_client -quiet -ign_eof \$v -connect $PEER_IP:$PORT
done
SH
chmod +x "$WORK/sclient.sh"
start_ehp "$WORK/lib.log" tls -m pcap -i "$HV" -w "$WORK/lib.pcapng" tcp port "$PORT"
"$WORK/sclient.sh" >"$WORK/lib.out" 2>&1
sleep 0.5
stop_ehp
line=$(grep "tracing $WORK/lib/libssl.so.3 .*found after the start" "$WORK/lib.log")
echo "  $line"
check "libssl copy: traced after the start" test -n "$line"
reqs=$(tshark -r "$WORK/lib.pcapng" -Y http.request 2>/dev/null | wc -l)
echo "  libssl copy: $reqs of 3 requests decrypt (the first process's handshake races the loader's mapping)"
check "libssl copy: the later processes' requests decrypt ($reqs >= 2)" test "$reqs" -ge 2
finish
