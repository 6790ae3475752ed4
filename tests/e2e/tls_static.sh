#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# OpenSSL linked statically into a C program that exports nothing (issue 14 item 1: "symbols
# come from .dynsym or .symtab; a stripped binary gets a clear one-line refusal"). The test's
# client (tests/e2e/boringssl_client.c, built here against Debian's libssl.a/libcrypto.a) keeps
# ssl_log_secret only in .symtab. gnutls-serv is the server, whose library is not traced:
#  - found without flags (an idle process of it runs when the capture starts; the executable is
#    a candidate because its .symtab names ssl_log_secret), traced at its secret logger;
#  - all 3 requests (TLS 1.3, 1.2, 1.3) decrypt from the pcapng alone, keys proven by the key check;
#  - -m keylog writes exactly the lines the client's own key log callback wrote;
#  - a secret whose label is in a page the process never touched is still read (the probe faults
#    it in);
#  - a stripped copy named with --libssl is refused in one line that says it is stripped.
TAG=stat
source "$(dirname "$0")/lib.sh"
setup_veth 143
command -v gnutls-serv >/dev/null || { echo "SKIP: gnutls-serv missing (apt-get install gnutls-bin)"; exit 77; }
[[ -f /usr/lib/x86_64-linux-gnu/libssl.a ]] || { echo "SKIP: libssl.a missing (apt-get install libssl-dev)"; exit 77; }
CLIENT=$WORK/sclient
gcc -O1 "$(dirname "$0")/boringssl_client.c" -o "$CLIENT" -Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -lpthread -ldl ||
  { echo "FAIL: building the static client"; exit 1; }
check "setup: ssl_log_secret is in .symtab only, nothing SSL_ is exported" \
  bash -c "nm '$CLIENT' | grep -q ' ssl_log_secret$' && ! nm -D '$CLIENT' | grep -q ' SSL_'"

make_cert
PORT=19445
start_gnutls_serv "$PORT"

"$CLIENT" idle &
BG_PIDS+=($!)
sleep 0.3
start_ehp "$WORK/p.log" tls -m pcap -i "$HV" -w "$WORK/s.pcapng" tcp port "$PORT"
"$CLIENT" "$PEER_IP" "$PORT" "$WORK/own.keys"
crc=$?
sleep 0.5
stop_ehp
check "the client's 3 requests succeeded (rc=$crc)" test "$crc" -eq 0
check "traced without flags, OpenSSL linked in, at its secret logger" \
  grep -q "tracing $CLIENT (OpenSSL.*linked in; the library's own secret logger" "$WORK/p.log"
check_three_sessions "static OpenSSL" "$WORK/s.pcapng"
check "the key check proves the 3 sessions' keys" grep -q "key check $CLIENT: 3 verified, 0 failed" "$WORK/p.log"
check "exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
[[ $FAIL -eq 0 ]] || sed 's/^/  | /' "$WORK/p.log"

"$EHP" tls -m keylog --keylogfile "$WORK/ehp.keys" --libssl "$CLIENT" -q 2>"$WORK/k.log" &
KP=$!
BG_PIDS+=("$KP")
wait_for grep -q capturing "$WORK/k.log"
"$CLIENT" "$PEER_IP" "$PORT" "$WORK/own.keys"
sleep 0.5
kill -INT "$KP"; wait "$KP"
check "-m keylog lines == the client's own key log ($(wc -l <"$WORK/ehp.keys") vs $(wc -l <"$WORK/own.keys"))" \
  bash -c "[[ -s '$WORK/own.keys' ]] && diff <(sort '$WORK/ehp.keys') <(sort '$WORK/own.keys') >/dev/null"

# A secret whose label sits in a page the process never touched (tests/e2e/logger_fault.c): the
# probe must fault it in (a new process has not mapped most of its library's read-only data:
# upstream 3.4 builds lost 4 of 6 TLS 1.2 secrets of fresh s_client processes to this).
gcc -O1 -rdynamic "$(dirname "$0")/logger_fault.c" -o "$WORK/logger_fault" || { echo "FAIL: building logger_fault"; exit 1; }
printf 'CLIENT_RANDOM\0' >"$WORK/label.bin"
"$EHP" tls -m keylog --keylogfile "$WORK/lf.keys" --libssl "$WORK/logger_fault" 2>"$WORK/lf.log" &
KP=$!
BG_PIDS+=("$KP")
wait_for grep -q capturing "$WORK/lf.log"
"$WORK/logger_fault" "$WORK/label.bin" >"$WORK/lf.want"
sleep 0.5
kill -INT "$KP"; wait "$KP"
check "a label in a page never touched: the secret is read (the key log has its line)" \
  bash -c "[[ -s '$WORK/lf.want' ]] && diff '$WORK/lf.keys' '$WORK/lf.want' >/dev/null"
check "no read of the process's memory failed" bash -c "! grep -q 'reads of a traced process' '$WORK/lf.log'"

strip -o "$WORK/stripped" "$CLIENT"
"$EHP" tls -m keylog --keylogfile "$WORK/x.keys" --libssl "$WORK/stripped" -q 2>"$WORK/r.log"
rc=$?
sed 's/^/  | /' "$WORK/r.log"
check "stripped copy: refused, one line naming it and saying it is stripped (rc=$rc)" \
  bash -c "(( $rc != 0 )) && [[ \$(grep -c . '$WORK/r.log') == 1 ]] && grep -q '$WORK/stripped (OpenSSL.*linked in): stripped' '$WORK/r.log'"
finish
