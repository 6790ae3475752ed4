#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 14 item 5: every key is checked against the packets. curl and openssl s_client (the
# system libssl, traced) talk to gnutls-serv (not traced: every key comes from the client) over
# TLS 1.2 and 1.3 with AES-GCM and ChaCha20-Poly1305. Run 1: the summary says every session's
# keys were verified on its captured records, none failed. Run 2: a test hook takes every TLS
# 1.3 handshake secret 8 bytes off (a wrong offset); the key check catches it, names the library
# loudly once, counts the TLS 1.3 sessions failed and still verifies the TLS 1.2 ones.
TAG=kc
source "$(dirname "$0")/lib.sh"
setup_veth 171
make_cert
start_gnutls_serv 4443 || { echo "gnutls-serv failed"; exit 1; }

clients() {  # the sessions of one run: 3 TLS 1.2 + 3 TLS 1.3 curls, one s_client (TLS 1.3)
  local c
  for c in "--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-GCM-SHA256" \
           "--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES256-GCM-SHA384" \
           "--tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-CHACHA20-POLY1305" \
           "--tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256" \
           "--tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384" \
           "--tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256"; do
    # shellcheck disable=SC2086
    curl -sk --max-time 10 -o /dev/null $c "https://$PEER_IP:4443/" || echo "curl $c failed"
  done
  printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -quiet -tls1_3 -connect "$PEER_IP:4443" \
    >"$WORK/s_client.out" 2>&1 || true
  sleep 0.5  # let the last packets pass TC before stopping
}

# key_counts LOG: "PATH VERIFIED FAILED UNVERIFIABLE" from the exit summary's key check lines.
key_counts() {
  sed -nE 's/^ecapture-hp: key check (.*): ([0-9]+) verified, ([0-9]+) failed, ([0-9]+) unverifiable(; .*)?$/\1 \2 \3 \4/p' "$1"
}

LIBSSL=$(readlink -f /usr/lib/x86_64-linux-gnu/libssl.so.3)

# ---- run 1: the real keys -------------------------------------------------------------------
start_ehp "$WORK/ok.log" tls -m pcap -i "$HV" -w "$WORK/ok.pcapng" tcp port 4443 || exit 1
clients
stop_ehp
check "run 1: ecapture-hp exits 0" test "$EHP_RC" -eq 0
key_counts "$WORK/ok.log" >"$WORK/ok.counts"
echo "  run 1 key check: $(cat "$WORK/ok.counts")"
ok_line() { read -r p v f u <"$WORK/ok.counts" && [[ $(readlink -f "$p") == "$LIBSSL" ]] && ((v == 7 && f == 0 && u == 0)); }
check "run 1: the libssl's 7 sessions are verified, 0 failed, 0 unverifiable" ok_line
check "run 1: no KEY CHECK FAILED line" bash -c "! grep -q 'KEY CHECK FAILED' '$WORK/ok.log'"
check "run 1: no TEST HOOK line" bash -c "! grep -q 'TEST HOOK' '$WORK/ok.log'"
reqs=$(tshark -r "$WORK/ok.pcapng" -Y http.request 2>/dev/null | wc -l)
check "run 1: the 7 requests decrypt from the file alone ($reqs)" test "$reqs" -eq 7

# ---- run 2: a deliberately wrong secret -----------------------------------------------------
EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET=8 start_ehp "$WORK/bad.log" tls -m pcap -i "$HV" -w "$WORK/bad.pcapng" \
  tcp port 4443 || exit 1
clients
stop_ehp
check "run 2: ecapture-hp exits 0" test "$EHP_RC" -eq 0
check "run 2: the test hook says it is on" grep -q "TEST HOOK: EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET=8" "$WORK/bad.log"
nfail=$(grep -c "KEY CHECK FAILED for " "$WORK/bad.log")
check "run 2: one loud KEY CHECK FAILED line ($nfail)" test "$nfail" -eq 1
check "run 2: it names the library" bash -c "grep 'KEY CHECK FAILED for ' '$WORK/bad.log' | grep -q 'libssl.so.3'"
key_counts "$WORK/bad.log" >"$WORK/bad.counts"
echo "  run 2 key check: $(cat "$WORK/bad.counts")"
bad_line() { read -r p v f u <"$WORK/bad.counts" && [[ $(readlink -f "$p") == "$LIBSSL" ]] && ((v == 3 && f == 4 && u == 0)); }
check "run 2: TLS 1.2 sessions verified (3), TLS 1.3 ones failed (4)" bad_line
grep -E "KEY CHECK|key check|TEST HOOK" "$WORK/bad.log"

EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET=8 "$EHP" tls -m pcap -q -a duration:1 -i "$HV" -w "$WORK/q.pcapng" 2>"$WORK/q.log"
check "the test hook is announced with -q too" grep -q "TEST HOOK" "$WORK/q.log"

# ---- a bad value of the hook is refused ----------------------------------------------------
EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET=x "$EHP" tls -m pcap -a duration:2 -i "$HV" -w "$WORK/x.pcapng" 2>"$WORK/x.log"
rc=$?
check "a bad hook value exits 2 with one line ($rc)" test "$rc" -eq 2 -a "$(wc -l <"$WORK/x.log")" -eq 1
finish
