package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// hub: one p2p.Server that our client nodes dial (inbound only: NoDial, so every slot of
// MaxPeers takes inbound peers), its peers' handlers reading and discarding. Prints its URL,
// then answers `stat` with `<VmRSS KiB> <peers>`, and `stat-gc` with the same after a forced
// collection that returns free memory to the OS (geth's memory at its most compact), until
// stdin closes.
func hub(args []string) {
	fs := flag.NewFlagSet("hub", flag.ExitOnError)
	maxPeers := fs.Int("max-peers", 1016, "MaxPeers")
	fs.Parse(args)
	n, err := newNode(*maxPeers, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "enode %s\n", n.url())
	w.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch strings.TrimSpace(in.Text()) {
		case "stat":
		case "stat-gc":
			runtime.GC()
			debug.FreeOSMemory()
		default:
			fmt.Fprintln(w, "error unknown command")
			w.Flush()
			continue
		}
		fmt.Fprintf(w, "%d %d\n", rssKiB(), n.srv.PeerCount())
		w.Flush()
	}
	n.srv.Stop()
}

// rssKiB is this process's VmRSS.
func rssKiB() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kib
			}
		}
	}
	return -1
}
