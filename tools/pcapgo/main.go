// SPDX-License-Identifier: BSD-2-Clause

// pcapgo-writer: the writer of eCapture's pcap mode, measured on the same packets as
// `ecapture-hp replay`, so the two can be compared in one run (tools/bench.sh, docs/performance.md).
//
// eCapture writes its pcapng with gopacket's pcapgo.NgWriter over a 64 KiB bufio.Writer
// (NgWriter keeps a caller's *bufio.Writer of >= 4 KiB as is). This program loads every packet of
// IN (pcap or pcapng) into memory once, then writes them --repeat times through that writer and
// fsyncs (unless --no-fsync), timing only the writing (like replay, which fsyncs on close). Its last line has
// replay's shape:
//
//	pcapgo: P packets, B bytes in S s, X pkt/s, Y MB/s, F file bytes
//
// Build offline against Debian's golang-github-google-gopacket-dev (tools/pcapgo/build.sh).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

type packet struct {
	ci   gopacket.CaptureInfo
	data []byte
}

type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

func load(path string) ([]packet, layers.LinkType, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var src packetSource
	if len(raw) >= 4 && bytes.Equal(raw[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		src, err = pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
	} else {
		src, err = pcapgo.NewReader(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %v", path, err)
	}
	var pkts []packet
	for {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %v", path, err)
		}
		ci.InterfaceIndex = 0
		pkts = append(pkts, packet{ci: ci, data: data})
	}
	return pkts, src.LinkType(), nil
}

func main() {
	repeat := flag.Int("repeat", 1, "write the input this many times")
	out := flag.String("w", "", "output pcapng file")
	bufBytes := flag.Int("bufio", 64<<10, "bufio.Writer size in bytes (eCapture: 64 KiB)")
	noFsync := flag.Bool("no-fsync", false, "stop the clock after the last write(2), data still in the page cache")
	flag.Parse()
	if flag.NArg() != 1 || *out == "" || *repeat < 1 {
		fmt.Fprintln(os.Stderr, "usage: pcapgo-writer [--repeat N] [--bufio BYTES] -w OUT.pcapng IN.pcap|IN.pcapng")
		os.Exit(2)
	}
	pkts, lt, err := load(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcapgo-writer:", err)
		os.Exit(1)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcapgo-writer:", err)
		os.Exit(1)
	}
	t0 := time.Now()
	bw := bufio.NewWriterSize(f, *bufBytes)
	intf := pcapgo.DefaultNgInterface
	intf.LinkType = lt
	w, err := pcapgo.NewNgWriterInterface(bw, intf, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pcapgo-writer:", err)
		os.Exit(1)
	}
	var n, b uint64
	for r := 0; r < *repeat; r++ {
		for i := range pkts {
			if err := w.WritePacket(pkts[i].ci, pkts[i].data); err != nil {
				fmt.Fprintln(os.Stderr, "pcapgo-writer:", err)
				os.Exit(1)
			}
			n++
			b += uint64(len(pkts[i].data))
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "pcapgo-writer:", err)
		os.Exit(1)
	}
	if *noFsync {
		// nothing: eCapture itself never fsyncs; this is the page-cache-only figure
	} else if err := f.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, "pcapgo-writer: fsync:", err)
		os.Exit(1)
	}
	s := time.Since(t0).Seconds()
	st, _ := f.Stat()
	f.Close()
	fmt.Printf("pcapgo: %d packets, %d bytes in %.3f s, %.0f pkt/s, %.1f MB/s, %d file bytes\n",
		n, b, s, float64(n)/s, float64(b)/s/1e6, st.Size())
}
