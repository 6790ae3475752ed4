#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 4 modes: -m keylog writes exactly the lines the clients' own SSLKEYLOGFILE holds;
# -m text shows the request line with the right pid and comm.
TAG=key
source "$(dirname "$0")/lib.sh"
make_cert
PORT=18443
openssl s_server -accept $PORT -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www -quiet >/dev/null 2>&1 &
BG_PIDS+=($!)
listening() { ss -Hltn "sport = :$PORT" | grep -q LISTEN; }
wait_for listening || { echo "s_server did not start"; exit 1; }

KEYS=$WORK/ehp_keys.log
start_ehp "$WORK/ehp.log" tls -m keylog --keylogfile "$KEYS" || exit 1
export SSLKEYLOGFILE=$WORK/client_keys.log
curl -sk -o /dev/null --tlsv1.2 --tls-max 1.2 "https://127.0.0.1:$PORT/a"
curl -sk -o /dev/null --tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384 "https://127.0.0.1:$PORT/b"
curl -sk -o /dev/null --tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256 "https://127.0.0.1:$PORT/c"
python3 - $PORT <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
urllib.request.urlopen(f"https://127.0.0.1:{sys.argv[1]}/d", context=ctx, timeout=10).read()
PY
unset SSLKEYLOGFILE
# The keys of the last handshake reach the ring right after it completes; wait for the count.
expected=$(grep -v '^#' "$WORK/client_keys.log" | grep -c .)
have() { [[ $(grep -c . "$KEYS" 2>/dev/null || echo 0) -ge $expected ]]; }
wait_for have
stop_ehp
check "keylog mode exits 0" test "$EHP_RC" -eq 0
check "keylog file is mode 0600" test "$(stat -c %a "$KEYS")" = 600
grep -v '^#' "$WORK/client_keys.log" | grep . | sort -u >"$WORK/want"
grep . "$KEYS" | sort -u >"$WORK/got"
check "keylog lines equal the clients' SSLKEYLOGFILE lines ($(wc -l <"$WORK/want") lines)" cmp -s "$WORK/want" "$WORK/got"
diff "$WORK/want" "$WORK/got" | head -5

# text mode
"$EHP" tls -m text >"$WORK/text.out" 2>"$WORK/text.log" &
EHP_PID=$!; BG_PIDS+=($EHP_PID)
wait_for grep -q capturing "$WORK/text.log" || { cat "$WORK/text.log"; exit 1; }
curl -sk -o /dev/null --http1.1 "https://127.0.0.1:$PORT/text-probe" &
CPID=$!
wait $CPID
seen() { grep -q "GET /text-probe HTTP/1.1" "$WORK/text.out"; }
wait_for seen
stop_ehp
check "text mode shows the request line" grep -q "GET /text-probe HTTP/1.1" "$WORK/text.out"
check "text mode names pid $CPID and comm curl" grep -qE "SSL_write\] pid=$CPID .*comm=curl" "$WORK/text.out"
finish
