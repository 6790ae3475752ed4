#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Shared libssl builds other than the system's (issue 14 item 1): Debian's own OpenSSL of other
# releases, fetched from the machine's Debian mirror by tools/fetch-debian-openssl.sh and run
# with that release's C library: 1.1.1w (bullseye), 3.5 (trixie), 3.6 (sid), and Ubuntu 25.04's
# 3.4.1 (plucky; from Ubuntu's archive, a version Debian never shipped). They are stripped
# like every distribution libssl; their secret logger is found by reading the file (libssl.h:
# locate_secret_logger). For each release:
#  - found without flags: that release's s_server runs in the namespace before the capture starts;
#  - client side: its s_client (TLS 1.3, 1.2, 1.3) against gnutls-serv, whose library is not
#    traced, so every key comes from the libssl under test; each request decrypts from the file;
#  - server side: gnutls-cli (TLS 1.3 and 1.2) against its s_server: each request decrypts;
#  - -m keylog writes exactly the lines s_client's own -keylogfile writes;
#  - -m text shows the request as s_client wrote it.
# Skips (exit 77) when the Debian mirror cannot be reached; CI reaches it. Ubuntu's archive is
# another host: plucky alone is skipped (said in one line) when it cannot be reached.
TAG=osh
source "$(dirname "$0")/lib.sh"
setup_veth 140
BUILD_DIR=$(cd "$(dirname "$EHP")" && pwd)
FETCH="$(dirname "$0")/../../tools/fetch-debian-openssl.sh"
for t in gnutls-serv gnutls-cli tshark; do
  command -v $t >/dev/null || { echo "SKIP: $t missing (apt-get install gnutls-bin tshark)"; exit 77; }
done

SUITES=()
for s in bullseye trixie sid plucky; do
  w=$(bash "$FETCH" "$s" "$BUILD_DIR/deb-cache" 2>"$WORK/fetch.err")
  rc=$?
  if [[ $rc -eq 3 && $s == plucky ]]; then echo "SKIP (plucky, OpenSSL 3.4): $(cat "$WORK/fetch.err")"; continue; fi
  if [[ $rc -eq 3 ]]; then echo "SKIP: $(cat "$WORK/fetch.err")"; exit 77; fi
  # unstable moves daily (a package mid-transition may be missing for a day): best effort there.
  if [[ $rc -ne 0 && $s == sid ]]; then echo "SKIP (sid): $(cat "$WORK/fetch.err")"; continue; fi
  [[ $rc -eq 0 ]] || { echo "FAIL: fetching $s's OpenSSL: $(cat "$WORK/fetch.err")"; exit 1; }
  SUITES+=("$s")
done

make_cert
PORT=19543    # gnutls-serv: the release's s_client is the traced end
PORT2=19544   # the release's s_server: gnutls-cli is the untraced end
DEC=(-d "tcp.port==$PORT,tls" -d "tcp.port==$PORT2,tls")
start_gnutls_serv "$PORT"
REQ=$'GET / HTTP/1.1\r\nHost: ehp-test\r\nConnection: close\r\n\r\n'

client() {  # client OPENSSL VERSION-FLAG [extra s_client args...]
  local o=$1 v=$2; shift 2
  printf '%s' "$REQ" | timeout 10 "$o" s_client -connect "$PEER_IP:$PORT" "$v" -quiet -ign_eof "$@" >/dev/null 2>&1
}

for s in "${SUITES[@]}"; do
  O=$BUILD_DIR/deb-cache/$s/openssl
  LIB=$(ls "$BUILD_DIR/deb-cache/$s/root/usr/lib/x86_64-linux-gnu/"libssl.so.* | head -n1)
  ver=$("$O" version | awk '{print $1" "$2}')
  echo "== $s: $ver, $LIB"

  # Found without flags: the release's s_server is running when the capture starts.
  ip netns exec "$NS" "$O" s_server -accept "$PORT2" -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www -quiet \
    >"$WORK/s_server.log" 2>&1 &
  SRV=$!
  BG_PIDS+=("$SRV")
  wait_for ns_listening "$PORT2"
  rm -f "$WORK/n.pcapng"
  start_ehp "$WORK/p.log" tls -m pcap -i "$HV" -w "$WORK/n.pcapng" tcp port "$PORT" or tcp port "$PORT2"
  for v in -tls1_3 -tls1_2 -tls1_3; do client "$O" "$v"; done
  for prio in NORMAL NORMAL:-VERS-TLS1.3; do
    printf 'GET /srv HTTP/1.0\r\n\r\n' | timeout 10 gnutls-cli --insecure --priority "$prio" -p "$PORT2" "$PEER_IP" \
      >"$WORK/cli.out" 2>&1
  done
  sleep 0.5
  stop_ehp
  kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
  check "$ver: traced without flags, at its secret logger found in the stripped file" \
    grep -q "tracing .*$LIB ($ver.*the library's own secret logger" "$WORK/p.log"
  check "$ver: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
  reqs=$(tshark "${DEC[@]}" -r "$WORK/n.pcapng" -Y "http.request && tcp.port == $PORT" 2>/dev/null | wc -l)
  sh13=$(tshark "${DEC[@]}" -r "$WORK/n.pcapng" -Y "tcp.port == $PORT && tls.handshake.type == 2 && tls.handshake.extensions.supported_version == 0x0304" 2>/dev/null | wc -l)
  sh=$(tshark "${DEC[@]}" -r "$WORK/n.pcapng" -Y "tcp.port == $PORT && tls.handshake.type == 2" 2>/dev/null | wc -l)
  check "$ver client: all 3 requests decrypt from the file alone ($reqs; $sh ServerHellos, $sh13 TLS 1.3)" \
    test "$reqs" -eq 3 -a "$sh" -eq 3 -a "$sh13" -eq 2
  sreqs=$(tshark "${DEC[@]}" -r "$WORK/n.pcapng" -Y "http.request.uri == \"/srv\" && tcp.port == $PORT2" 2>/dev/null | wc -l)
  check "$ver server: both gnutls-cli requests (TLS 1.3, 1.2) decrypt ($sreqs)" test "$sreqs" -eq 2
  check "$ver: the key check verified its sessions and failed none" \
    bash -c "grep -Eq '^ecapture-hp: key check .*$(basename "$LIB")[^:]*: [1-9][0-9]* verified, 0 failed' '$WORK/p.log' && ! grep -q 'KEY CHECK FAILED' '$WORK/p.log'"

  # -m keylog: the lines s_client's own key log callback writes.
  rm -f "$WORK/ehp.keys" "$WORK/own.keys"
  : >"$WORK/k.log"
  "$EHP" tls -m keylog --keylogfile "$WORK/ehp.keys" --libssl "$LIB" -q 2>"$WORK/k.log" &
  KP=$!
  BG_PIDS+=("$KP")
  wait_for grep -q capturing "$WORK/k.log"
  for v in -tls1_3 -tls1_2; do client "$O" "$v" -keylogfile "$WORK/own.keys"; done
  sleep 0.5
  kill -INT "$KP"; wait "$KP"
  check "$ver: -m keylog lines == s_client -keylogfile lines ($(wc -l <"$WORK/ehp.keys") vs $(grep -c . "$WORK/own.keys"))" \
    bash -c "[[ -s '$WORK/own.keys' ]] && diff <(sort '$WORK/ehp.keys') <(grep -v '^#' '$WORK/own.keys' | sort) >/dev/null"

  # -m text: the request as s_client wrote it.
  : >"$WORK/t.log"
  "$EHP" tls -m text --libssl "$LIB" -q >"$WORK/text.out" 2>"$WORK/t.log" &
  TP=$!
  BG_PIDS+=("$TP")
  wait_for grep -q capturing "$WORK/t.log"
  client "$O" -tls1_3
  sleep 0.5
  kill -INT "$TP"; wait "$TP"; trc=$?
  check "$ver: -m text: exit 0 and the request as written (rc=$trc)" \
    bash -c "(( $trc == 0 )) && grep -a -q '^\[SSL_write\]' '$WORK/text.out' && grep -a -q '^GET / HTTP/1.1' '$WORK/text.out'"
done
finish
