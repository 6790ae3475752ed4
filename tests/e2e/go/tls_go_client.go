// SPDX-License-Identifier: BSD-2-Clause
// Go crypto/tls client for tests/e2e/tls_go.sh: GET URL/req0..2 over three fresh connections,
// TLS 1.3, TLS 1.2 (MaxVersion), TLS 1.3. Standard library only (built offline).
// With KEYLOG set, Go's own key log (Config.KeyLogWriter) is written there, to compare with.
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
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
