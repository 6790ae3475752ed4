# SPDX-License-Identifier: BSD-2-Clause
# Shared by the operator_*.sh tests (issue 5). Source after setting TAG; wraps lib.sh and renames
# the namespace/veth after TAG, which starts with p11 (the prefix every name must carry).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NS=$TAG
HV=$TAG-h
NV=$TAG-n

# A keep-alive HTTPS client: one TLS connection, REQS requests with PAUSE_S pauses between them,
# then NEW extra one-shot connections. Prints each URI it got an answer for.
# usage: keepalive_client HOST PORT NAME REQS PAUSE_S
keepalive_client() {
  python3 - "$@" <<'PY'
import http.client, ssl, sys, time
host, port, name, reqs, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
for i in range(reqs):
    uri = f"/{name}-{i}"
    c.request("GET", uri); r = c.getresponse(); r.read()
    if r.status == 200: print(uri, flush=True)
    if i + 1 < reqs: time.sleep(pause)
c.close()
PY
}
