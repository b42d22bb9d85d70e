// Command bench is the go-ethereum side of devp2p-sansio's side-by-side benchmark
// (tests/benches/versus_geth.rs): the same work as our side, done by go-ethereum's own
// packages (p2p, p2p/rlpx, p2p/discover/v4wire, p2p/discover/v5wire, p2p/enode, crypto).
// Nothing of go-ethereum is copied here.
//
// Two modes:
//
//	bench serve      one JSON command per line on stdin, one JSON answer per line on stdout
//	                 (see handle): timed pieces of work, each answering with what it measured
//	bench hub --max-peers N
//	                 a p2p.Server (one protocol, discovery off) that others dial; prints
//	                 `enode <url>`, then answers `stat` with `<VmRSS KiB> <peers>` and
//	                 `stat-gc` with the same after runtime.GC and debug.FreeOSMemory
//
// Every server listens on 127.0.0.1 only.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/ethereum/go-ethereum/log"
)

func main() {
	// geth's p2p logs through the default logger; the benchmark prints only its answers.
	log.SetDefault(log.NewLogger(log.DiscardHandler()))
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench serve | bench hub --max-peers N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve()
	case "hub":
		hub(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// request is one command of serve mode; which fields matter depends on Cmd.
type request struct {
	Cmd string `json:"cmd"`
	// load: the fixture file our side wrote (keys, handshake messages, discv4 packets).
	File string `json:"file,omitempty"`
	// frames, handshake, discv4: how long to work, in milliseconds.
	Ms int `json:"ms,omitempty"`
	// frames, pair, stream: message size in bytes.
	Size int `json:"size,omitempty"`
	// prim: which primitive (see prim); discv5: which packet (ping, pong, findnode, talkreq,
	// nodes, handshake, handshake-with-record).
	Name string `json:"name,omitempty"`
	// handshake: "initiator" or "recipient".
	Role string `json:"role,omitempty"`
	// pair, stream: how many messages.
	Count int `json:"count,omitempty"`
	// dial: the enode URL to dial.
	Enode string `json:"enode,omitempty"`
	// expect: how many payload bytes to wait for.
	Bytes int64 `json:"bytes,omitempty"`
	// pair, stream, expect: the seed of the payloads (random, incompressible).
	Seed int64 `json:"seed,omitempty"`
}

var out = bufio.NewWriter(os.Stdout)

func answer(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	out.Write(b)
	out.WriteByte('\n')
	out.Flush()
}

func serve() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			answer(map[string]string{"error": "bad request: " + err.Error()})
			continue
		}
		if err := handle(&req); err != nil {
			answer(map[string]string{"error": req.Cmd + ": " + err.Error()})
		}
	}
	closeListener()
}

// handle runs one command and answers it (a command may answer more than once: expect says
// `ready` before it waits).
func handle(req *request) error {
	switch req.Cmd {
	case "load":
		return load(req.File)
	case "frames":
		return frames(req.Size, req.Ms)
	case "handshake":
		return handshakes(req.Role, req.Ms)
	case "discv4":
		return discv4(req.Ms)
	case "prim":
		return prim(req.Name, req.Ms)
	case "discv5":
		switch req.Name {
		case "handshake":
			return discv5Handshake(false, req.Ms)
		case "handshake-with-record":
			return discv5Handshake(true, req.Ms)
		default:
			return discv5Ordinary(req.Name, req.Ms)
		}
	case "discv5-sizes":
		return v5sizes()
	case "pair":
		return pair(req.Size, req.Count, req.Seed)
	case "listen":
		return listen()
	case "dial":
		return dial(req.Enode)
	case "stream":
		return stream(req.Size, req.Count, req.Seed)
	case "expect":
		return expect(req.Bytes)
	case "close":
		closeListener()
		answer(map[string]bool{"ok": true})
		return nil
	default:
		return fmt.Errorf("unknown command")
	}
}
