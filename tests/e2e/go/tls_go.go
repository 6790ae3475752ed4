// SPDX-License-Identifier: BSD-2-Clause
// Go crypto/tls program for tests/e2e/tls_go.sh, standard library only (built offline):
//   tls_go URL                 GET URL/req0..2 over three fresh connections: TLS 1.3, TLS 1.2
//                              (MaxVersion), TLS 1.3. With KEYLOG set, Go's own key log
//                              (Config.KeyLogWriter) is written there, to compare with.
//                              DELAY_MS=N: sleep N ms first.
//   tls_go idle                sleeps (a running process of the binary, for discovery)
//   tls_go serve ADDR CERT KEY an HTTPS server
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	switch os.Args[1] {
	case "idle":
		select {}
	case "serve":
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello %s\n", r.URL.Path) })
		fmt.Fprintln(os.Stderr, http.ListenAndServeTLS(os.Args[2], os.Args[3], os.Args[4], nil))
		os.Exit(1)
	}
	var keylog io.Writer
	if p := os.Getenv("KEYLOG"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		keylog = f
	}
	// DELAY_MS: wait before the first request (tls_late.sh: the probes of a binary found after the
	// start need tens of ms; this program's three requests take ~10 ms in all).
	if ms, err := strconv.Atoi(os.Getenv("DELAY_MS")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	for i, maxv := range []uint16{tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: maxv, KeyLogWriter: keylog}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		resp, err := c.Get(fmt.Sprintf("%s/req%d", os.Args[1], i))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %x\n", resp.Status, resp.TLS.Version)
	}
}
