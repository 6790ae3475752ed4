// SPDX-License-Identifier: BSD-2-Clause
// A Go crypto/tls HTTPS server for tools/bench-tls.sh (the go-handshake workload), standard
// library only, built offline by the script with Debian's Go:
//   gotls-server ADDR CERT KEY
// answers every request with a 3-byte body ("ok\n"); the client opens a new connection per
// request, so the server's work is one full TLS handshake each.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gotls-server ADDR CERT KEY")
		os.Exit(2)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	fmt.Fprintln(os.Stderr, "gotls-server:", http.ListenAndServeTLS(os.Args[1], os.Args[2], os.Args[3], nil))
	os.Exit(1)
}
