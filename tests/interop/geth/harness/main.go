// Command harness is the go-ethereum side of devp2p-sansio's interop tests: geth's own
// p2p.Server (RLPx, Hello, snappy, multiplexed p2p.Protocols) and its discover package
// (discovery v4), driven over stdin and reporting over stdout, one JSON object per line.
// Nothing of go-ethereum is copied here; everything comes from its packages.
//
// Server mode (the default):
//
//	harness [--key HEX] [--listen 127.0.0.1:0] [--protocols aaa/2/7,bbb/1/3]
//	        [--max-peers 25] [--no-discovery] [--no-dial] [--bootnodes ENODE,...]
//	        [--lifetime 120] [--name NAME] [--verbosity debug]
//
// prints `listening` once the server is up, then one line per event (`peer_added`,
// `peer_removed`, `protocol_started`, `message`, `sent`, `log`, answers to commands), and
// takes commands as JSON lines on stdin (see handleCommand). It exits when stdin closes,
// and after --lifetime seconds whatever happens.
//
// Record mode, one record and exit:
//
//	harness enr --key HEX --seq N [--ip IP] [--tcp PORT] [--udp PORT] [--field KEY=RLPHEX]...
//	harness verify-enr RECORD   (enr:… or the record's RLP in hex)
//
// Discovery v5 mode, geth's discover.ListenV5 (optionally beside ListenV4 on one socket);
// see discv5.go:
//
//	harness discv5 [--key HEX] [--listen 127.0.0.1:0] [--v4] [--bootnodes ENR,...] ...
package main

import (
	"bufio"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/rlp"
)

// maxUint24 is the largest frame, and the largest decompressed message, geth's rlpx package
// takes (its errPlainMessageTooLarge above it).
const maxUint24 = 1<<24 - 1

// inlinePayload: payloads up to this size are printed in full (hex) in `message` events;
// larger ones only by size and Keccak-256.
const inlinePayload = 64

var (
	outMu sync.Mutex
	out   = bufio.NewWriterSize(os.Stdout, 1<<16)
)

// emit prints one event line.
func emit(ev map[string]any) {
	b, err := json.Marshal(ev)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"event": "error", "error": "encoding an event: " + err.Error()})
	}
	outMu.Lock()
	out.Write(b)
	out.WriteByte('\n')
	out.Flush()
	outMu.Unlock()
}

func fail(format string, args ...any) {
	emit(map[string]any{"event": "error", "error": fmt.Sprintf(format, args...)})
	os.Exit(1)
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "enr":
			makeRecord(os.Args[2:])
			return
		case "verify-enr":
			verifyRecord(os.Args[2:])
			return
		case "discv5":
			runDiscv5(os.Args[2:])
			return
		}
	}
	runServer(os.Args[1:])
}

// parseKey reads a hex secp256k1 secret key, or makes a fresh one when s is empty.
func parseKey(s string) *ecdsa.PrivateKey {
	if s == "" {
		k, err := crypto.GenerateKey()
		if err != nil {
			fail("generating a key: %v", err)
		}
		return k
	}
	k, err := crypto.HexToECDSA(strings.TrimPrefix(s, "0x"))
	if err != nil {
		fail("--key: %v", err)
	}
	return k
}

func pubkeyHex(k *ecdsa.PublicKey) string {
	return hex.EncodeToString(crypto.FromECDSAPub(k)[1:])
}

// nodeJSON describes a node: id, enode URL, seq, and its record when it has a signed one.
func nodeJSON(n *enode.Node) map[string]any {
	m := map[string]any{
		"id":    n.ID().String(),
		"enode": n.URLv4(),
		"seq":   n.Seq(),
		"ip":    n.IPAddr().String(),
		"tcp":   n.TCP(),
		"udp":   n.UDP(),
	}
	// Nodes known only by an enode URL (enode.NewV4) carry an unsigned stand-in record.
	if len(n.Record().Signature()) > 0 {
		if raw, err := rlp.EncodeToBytes(n.Record()); err == nil {
			m["enr"] = n.String()
			m["rlp"] = hex.EncodeToString(raw)
		}
	}
	return m
}

// ---- record mode ---------------------------------------------------------------------

type fieldList []string

func (f *fieldList) String() string     { return strings.Join(*f, ",") }
func (f *fieldList) Set(v string) error { *f = append(*f, v); return nil }

// makeRecord signs a record with geth's enr and enode packages (enr.Record, enode.SignV4)
// and prints it.
func makeRecord(args []string) {
	fs := flag.NewFlagSet("enr", flag.ExitOnError)
	keyHex := fs.String("key", "", "secret key (hex)")
	seq := fs.Uint64("seq", 1, "sequence number")
	ip := fs.String("ip", "", "ip or ip6 entry")
	tcp := fs.Int("tcp", 0, "tcp entry (0: none)")
	udp := fs.Int("udp", 0, "udp entry (0: none)")
	var fields fieldList
	fs.Var(&fields, "field", "KEY=RLPHEX: an entry holding this RLP item (repeatable)")
	fs.Parse(args)
	if *keyHex == "" {
		fail("enr: --key is required")
	}
	key := parseKey(*keyHex)
	var r enr.Record
	r.SetSeq(*seq)
	if *ip != "" {
		addr := net.ParseIP(*ip)
		if addr == nil {
			fail("enr: bad --ip %q", *ip)
		}
		if v4 := addr.To4(); v4 != nil {
			r.Set(enr.IPv4(v4))
		} else {
			r.Set(enr.IPv6(addr))
		}
	}
	if *tcp != 0 {
		r.Set(enr.TCP(*tcp))
	}
	if *udp != 0 {
		r.Set(enr.UDP(*udp))
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			fail("enr: --field %q is not KEY=RLPHEX", f)
		}
		raw, err := hex.DecodeString(v)
		if err != nil {
			fail("enr: --field %q: %v", f, err)
		}
		r.Set(enr.WithEntry(k, rlp.RawValue(raw)))
	}
	if err := enode.SignV4(&r, key); err != nil {
		fail("enr: signing: %v", err)
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		fail("enr: geth refuses its own record: %v", err)
	}
	ev := nodeJSON(n)
	ev["event"] = "enr"
	ev["size"] = r.Size()
	emit(ev)
}

// verifyRecord decodes and verifies a record (enr:… or RLP hex) with geth's packages and
// prints its contents, or an `error` event (exit status 1) naming what geth refused.
func verifyRecord(args []string) {
	if len(args) != 1 {
		fail("verify-enr: one record expected")
	}
	s := args[0]
	var raw []byte
	var err error
	if b64, ok := strings.CutPrefix(s, "enr:"); ok {
		raw, err = base64.RawURLEncoding.DecodeString(b64)
	} else {
		raw, err = hex.DecodeString(s)
	}
	if err != nil {
		fail("verify-enr: %v", err)
	}
	var r enr.Record
	if err := rlp.DecodeBytes(raw, &r); err != nil {
		fail("verify-enr: decoding: %v", err)
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		fail("verify-enr: %v", err)
	}
	pairs := map[string]string{}
	elems := r.AppendElements(nil)
	for i := 1; i+1 < len(elems); i += 2 {
		pairs[elems[i].(string)] = hex.EncodeToString(elems[i+1].(rlp.RawValue))
	}
	var pub enode.Secp256k1
	ev := nodeJSON(n)
	if n.Load(&pub) == nil {
		ev["pubkey"] = pubkeyHex((*ecdsa.PublicKey)(&pub))
	}
	ev["event"] = "enr_verified"
	ev["pairs"] = pairs
	ev["signature"] = hex.EncodeToString(r.Signature())
	emit(ev)
}

// ---- server mode ---------------------------------------------------------------------

// parseProtocols reads "name/version/length,…".
func parseProtocols(s string) ([]p2p.Cap, []uint64) {
	var caps []p2p.Cap
	var lengths []uint64
	if s == "" {
		return nil, nil
	}
	for _, p := range strings.Split(s, ",") {
		parts := strings.Split(p, "/")
		if len(parts) != 3 {
			fail("--protocols: %q is not name/version/length", p)
		}
		v, err1 := strconv.ParseUint(parts[1], 10, 32)
		l, err2 := strconv.ParseUint(parts[2], 10, 64)
		if err1 != nil || err2 != nil {
			fail("--protocols: %q is not name/version/length", p)
		}
		caps = append(caps, p2p.Cap{Name: parts[0], Version: uint(v)})
		lengths = append(lengths, l)
	}
	return caps, lengths
}

func parseEnodes(s string) []*enode.Node {
	var nodes []*enode.Node
	if s == "" {
		return nil
	}
	for _, u := range strings.Split(s, ",") {
		n, err := enode.Parse(enode.ValidSchemes, u)
		if err != nil {
			fail("bad node %q: %v", u, err)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func runServer(args []string) {
	fs := flag.NewFlagSet("harness", flag.ExitOnError)
	keyHex := fs.String("key", "", "secret key (hex); a fresh one by default")
	listen := fs.String("listen", "127.0.0.1:0", "TCP listen address (UDP uses the same port)")
	protocols := fs.String("protocols", "", "sub-protocols: name/version/length,…")
	maxPeers := fs.Int("max-peers", 25, "Config.MaxPeers")
	noDiscovery := fs.Bool("no-discovery", false, "Config.NoDiscovery")
	noDial := fs.Bool("no-dial", false, "Config.NoDial (no static dials either)")
	bootnodes := fs.String("bootnodes", "", "Config.BootstrapNodes: enode URLs, comma-separated")
	lifetime := fs.Int("lifetime", 120, "exit after this many seconds whatever happens")
	name := fs.String("name", "geth-interop-harness/v1.17.10", "the client id in our Hello")
	verbosity := fs.String("verbosity", "debug", "geth log records reported as `log` events: trace, debug, info, warn, error, off")
	fs.Parse(args)

	time.AfterFunc(time.Duration(*lifetime)*time.Second, func() {
		emit(map[string]any{"event": "lifetime_exceeded", "seconds": *lifetime})
		os.Exit(2)
	})

	level, err := parseLevel(*verbosity)
	if err != nil {
		fail("--verbosity: %v", err)
	}
	logger := log.NewLogger(&jsonHandler{level: level})
	log.SetDefault(logger)

	key := parseKey(*keyHex)
	h := &harness{
		key:       key,
		rws:       make(map[string]p2p.MsgReadWriter),
		senders:   make(map[enode.ID]chan sendReq),
		requested: make(map[enode.ID]int),
	}
	caps, lengths := parseProtocols(*protocols)
	var protos []p2p.Protocol
	for i, c := range caps {
		protos = append(protos, p2p.Protocol{
			Name:    c.Name,
			Version: c.Version,
			Length:  lengths[i],
			Run:     h.runProtocol(c.String()),
		})
	}
	h.srv = &p2p.Server{Config: p2p.Config{
		PrivateKey:     key,
		MaxPeers:       *maxPeers,
		Name:           *name,
		ListenAddr:     *listen,
		NoDiscovery:    *noDiscovery,
		DiscoveryV4:    !*noDiscovery,
		NoDial:         *noDial,
		BootstrapNodes: parseEnodes(*bootnodes),
		Protocols:      protos,
		Logger:         logger,
	}}
	events := make(chan *p2p.PeerEvent, 1024)
	sub := h.srv.SubscribeEvents(events)
	defer sub.Unsubscribe()
	if err := h.srv.Start(); err != nil {
		fail("starting the server: %v", err)
	}
	go h.peerEvents(events)

	self := h.srv.Self()
	ev := nodeJSON(self)
	ev["event"] = "listening"
	ev["pubkey"] = pubkeyHex(&key.PublicKey)
	ev["client"] = *name
	ev["listen"] = h.srv.Config.ListenAddr
	emit(ev)

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var cmd map[string]any
		if err := json.Unmarshal([]byte(line), &cmd); err != nil {
			emit(map[string]any{"event": "error", "error": "bad command " + line + ": " + err.Error()})
			continue
		}
		h.handleCommand(cmd)
	}
	emit(map[string]any{"event": "stdin_closed"})
	done := make(chan struct{})
	go func() { h.srv.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
}

// harness is the server and what the commands need to reach its peers.
type harness struct {
	key *ecdsa.PrivateKey
	srv *p2p.Server

	mu sync.Mutex
	// The MsgReadWriter of each running protocol, by peer id and "name/version".
	rws map[string]p2p.MsgReadWriter
	// One sending goroutine per peer, so that sends go out in the order given.
	senders map[enode.ID]chan sendReq
	// Peers we were told to disconnect, with the reason given.
	requested map[enode.ID]int
}

type sendReq struct {
	tag      any
	protocol string
	code     uint64
	payload  []byte
}

func rwKey(id enode.ID, proto string) string { return id.String() + "/" + proto }

func (h *harness) runProtocol(proto string) func(*p2p.Peer, p2p.MsgReadWriter) error {
	return func(p *p2p.Peer, rw p2p.MsgReadWriter) error {
		id := p.ID()
		h.mu.Lock()
		h.rws[rwKey(id, proto)] = rw
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			delete(h.rws, rwKey(id, proto))
			h.mu.Unlock()
		}()
		emit(map[string]any{"event": "protocol_started", "peer": id.String(), "protocol": proto})
		for {
			msg, err := rw.ReadMsg()
			if err != nil {
				return err
			}
			buf := make([]byte, msg.Size)
			if _, err := io.ReadFull(msg.Payload, buf); err != nil {
				return err
			}
			ev := map[string]any{
				"event":    "message",
				"peer":     id.String(),
				"protocol": proto,
				"code":     msg.Code,
				"size":     len(buf),
				"keccak":   hex.EncodeToString(crypto.Keccak256(buf)),
			}
			if len(buf) <= inlinePayload {
				ev["payload"] = hex.EncodeToString(buf)
			}
			emit(ev)
		}
	}
}

func (h *harness) findPeer(id string) *p2p.Peer {
	for _, p := range h.srv.Peers() {
		if p.ID().String() == id {
			return p
		}
	}
	return nil
}

func peerJSON(p *p2p.Peer) map[string]any {
	var caps []string
	for _, c := range p.Caps() {
		caps = append(caps, c.String())
	}
	var running []string
	for name := range p.Info().Protocols {
		running = append(running, name)
	}
	return map[string]any{
		"peer":     p.ID().String(),
		"pubkey":   pubkeyHex(p.Node().Pubkey()),
		"name":     p.Fullname(),
		"caps":     caps,
		"running":  running,
		"inbound":  p.Inbound(),
		"remote":   p.RemoteAddr().String(),
		"local":    p.LocalAddr().String(),
		"static":   p.StaticDialed(),
		"trusted":  p.Trusted(),
		"dynamic":  p.DynDialed(),
		"enode":    p.Node().URLv4(),
		"node_seq": p.Node().Seq(),
	}
}

// reasonOf finds the disconnect reason whose text geth gave as the peer's error.
func reasonOf(text string) any {
	for i := 0; i < 256; i++ {
		if p2p.DiscReason(i).Error() == text {
			return i
		}
	}
	return nil
}

func (h *harness) peerEvents(ch chan *p2p.PeerEvent) {
	for ev := range ch {
		switch ev.Type {
		case p2p.PeerEventTypeAdd:
			out := map[string]any{"peer": ev.Peer.String(), "remote": ev.RemoteAddress}
			if p := h.findPeer(ev.Peer.String()); p != nil {
				out = peerJSON(p)
			}
			out["event"] = "peer_added"
			emit(out)
		case p2p.PeerEventTypeDrop:
			h.mu.Lock()
			asked, wasAsked := h.requested[ev.Peer]
			delete(h.requested, ev.Peer)
			sender := h.senders[ev.Peer]
			delete(h.senders, ev.Peer)
			h.mu.Unlock()
			if sender != nil {
				close(sender)
			}
			out := map[string]any{
				"event":  "peer_removed",
				"peer":   ev.Peer.String(),
				"error":  ev.Error,
				"reason": reasonOf(ev.Error),
				"remote": ev.RemoteAddress,
			}
			if wasAsked {
				out["requested"] = asked
			}
			emit(out)
		}
	}
}

// payloadOf reads a command's payload: "hex", or "size" bytes that are either all "fill" or
// the xorshift stream of "seed" (the same generator as the Rust side's, so that large
// messages need not cross stdin).
func payloadOf(cmd map[string]any) ([]byte, error) {
	if s, ok := cmd["hex"].(string); ok {
		return hex.DecodeString(s)
	}
	size, ok := cmd["size"].(float64)
	if !ok {
		return nil, errors.New("a payload needs hex, or size with seed or fill")
	}
	if f, ok := cmd["fill"].(float64); ok {
		b := make([]byte, int(size))
		for i := range b {
			b[i] = byte(f)
		}
		return b, nil
	}
	seed, _ := cmd["seed"].(float64)
	return xorshift(int(size), uint64(seed)), nil
}

// xorshift is devp2p-sansio's test generator of incompressible bytes.
func xorshift(n int, seed uint64) []byte {
	x := uint64(0x9e3779b97f4a7c15) ^ seed
	b := make([]byte, n)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func str(cmd map[string]any, k string) string {
	s, _ := cmd[k].(string)
	return s
}

func (h *harness) reply(cmd map[string]any, ev map[string]any) {
	if tag, ok := cmd["tag"]; ok {
		ev["tag"] = tag
	}
	emit(ev)
}

func (h *harness) replyErr(cmd map[string]any, format string, args ...any) {
	h.reply(cmd, map[string]any{"event": "error", "cmd": cmd["cmd"], "error": fmt.Sprintf(format, args...)})
}

// handleCommand runs one stdin command. Those that wait on the network (lookups, ENR
// requests, sends) run on goroutines of their own and answer when done.
func (h *harness) handleCommand(cmd map[string]any) {
	switch str(cmd, "cmd") {
	case "dial": // {"enode"}: Server.AddPeer (a static peer, redialled after drops)
		n, err := enode.Parse(enode.ValidSchemes, str(cmd, "enode"))
		if err != nil {
			h.replyErr(cmd, "dial: %v", err)
			return
		}
		h.srv.AddPeer(n)
		h.reply(cmd, map[string]any{"event": "dialing", "peer": n.ID().String()})
	case "remove_peer": // {"enode"}: Server.RemovePeer
		n, err := enode.Parse(enode.ValidSchemes, str(cmd, "enode"))
		if err != nil {
			h.replyErr(cmd, "remove_peer: %v", err)
			return
		}
		go func() {
			h.srv.RemovePeer(n)
			h.reply(cmd, map[string]any{"event": "removed", "peer": n.ID().String()})
		}()
	case "send": // {"peer","protocol","code", payload}
		h.send(cmd)
	case "disconnect": // {"peer","reason"}: Peer.Disconnect(reason)
		id := str(cmd, "peer")
		reason, _ := cmd["reason"].(float64)
		p := h.findPeer(id)
		if p == nil {
			h.replyErr(cmd, "disconnect: no peer %s", id)
			return
		}
		h.mu.Lock()
		h.requested[p.ID()] = int(reason)
		h.mu.Unlock()
		p.Disconnect(p2p.DiscReason(reason))
		h.reply(cmd, map[string]any{"event": "disconnecting", "peer": id, "reason": int(reason)})
	case "peers":
		list := []map[string]any{}
		for _, p := range h.srv.Peers() {
			list = append(list, peerJSON(p))
		}
		h.reply(cmd, map[string]any{"event": "peers", "peers": list})
	case "table":
		disc := h.srv.DiscoveryV4()
		if disc == nil {
			h.replyErr(cmd, "table: discovery is off")
			return
		}
		list := []map[string]any{}
		for _, b := range disc.TableBuckets() {
			for _, bn := range b {
				n := nodeJSON(bn.Node)
				n["checks"] = bn.Checks
				n["live"] = bn.Live
				list = append(list, n)
			}
		}
		h.reply(cmd, map[string]any{"event": "table", "nodes": list})
	case "lookup": // {"target": 64-byte public key in hex; a random one when absent}
		disc := h.srv.DiscoveryV4()
		if disc == nil {
			h.replyErr(cmd, "lookup: discovery is off")
			return
		}
		var target *ecdsa.PublicKey
		if t := str(cmd, "target"); t != "" {
			b, err := hex.DecodeString(t)
			if err == nil {
				target, err = crypto.UnmarshalPubkey(append([]byte{4}, b...))
			}
			if err != nil {
				h.replyErr(cmd, "lookup: target: %v", err)
				return
			}
		} else {
			k, _ := crypto.GenerateKey()
			target = &k.PublicKey
		}
		go func() {
			started := time.Now()
			found := disc.LookupPubkey(target)
			list := []map[string]any{}
			for _, n := range found {
				list = append(list, nodeJSON(n))
			}
			h.reply(cmd, map[string]any{
				"event":  "lookup",
				"target": pubkeyHex(target),
				"nodes":  list,
				"ms":     time.Since(started).Milliseconds(),
			})
		}()
	case "requestenr": // {"enode"}: UDPv4.RequestENR
		disc := h.srv.DiscoveryV4()
		n, err := enode.Parse(enode.ValidSchemes, str(cmd, "enode"))
		if disc == nil || err != nil {
			h.replyErr(cmd, "requestenr: discovery off or bad enode: %v", err)
			return
		}
		go func() {
			rn, err := disc.RequestENR(n)
			if err != nil {
				h.replyErr(cmd, "requestenr: %v", err)
				return
			}
			ev := nodeJSON(rn)
			ev["event"] = "enr_response"
			h.reply(cmd, ev)
		}()
	case "disc_ping": // {"enode"}: UDPv4.Ping
		disc := h.srv.DiscoveryV4()
		n, err := enode.Parse(enode.ValidSchemes, str(cmd, "enode"))
		if disc == nil || err != nil {
			h.replyErr(cmd, "disc_ping: discovery off or bad enode: %v", err)
			return
		}
		go func() {
			pong, err := disc.Ping(n)
			if err != nil {
				h.replyErr(cmd, "disc_ping: %v", err)
				return
			}
			h.reply(cmd, map[string]any{"event": "pong", "peer": n.ID().String(), "enr_seq": pong.ENRSeq})
		}()
	case "enr":
		ev := nodeJSON(h.srv.LocalNode().Node())
		ev["event"] = "enr"
		h.reply(cmd, ev)
	case "set_enr_field": // {"key","value": one RLP item in hex}: LocalNode.Set, a new seq
		raw, err := hex.DecodeString(str(cmd, "value"))
		if err != nil || str(cmd, "key") == "" {
			h.replyErr(cmd, "set_enr_field: needs key and value (RLP hex): %v", err)
			return
		}
		ln := h.srv.LocalNode()
		ln.Set(enr.WithEntry(str(cmd, "key"), rlp.RawValue(raw)))
		ev := nodeJSON(ln.Node())
		ev["event"] = "enr"
		h.reply(cmd, ev)
	case "max_size": // the largest message geth can send, for each kind of payload
		seed, _ := cmd["seed"].(float64)
		h.reply(cmd, map[string]any{
			"event":          "max_size",
			"plain":          maxUint24,
			"incompressible": maxIncompressible(uint64(seed)),
		})
	case "quit":
		emit(map[string]any{"event": "quitting"})
		h.srv.Stop()
		os.Exit(0)
	default:
		h.replyErr(cmd, "unknown command %v", cmd["cmd"])
	}
}

// send queues a message on the peer's sending goroutine.
func (h *harness) send(cmd map[string]any) {
	id, err := enode.ParseID(str(cmd, "peer"))
	if err != nil {
		h.replyErr(cmd, "send: peer: %v", err)
		return
	}
	payload, err := payloadOf(cmd)
	if err != nil {
		h.replyErr(cmd, "send: %v", err)
		return
	}
	code, _ := cmd["code"].(float64)
	req := sendReq{tag: cmd["tag"], protocol: str(cmd, "protocol"), code: uint64(code), payload: payload}
	h.mu.Lock()
	ch, ok := h.senders[id]
	if !ok {
		ch = make(chan sendReq, 1024)
		h.senders[id] = ch
		go h.sender(id, ch)
	}
	// Under the lock: a peer's drop closes its channel.
	queued := true
	select {
	case ch <- req:
	default:
		queued = false
	}
	h.mu.Unlock()
	if !queued {
		h.replyErr(cmd, "send: too many sends queued for %s", id)
	}
}

func (h *harness) sender(id enode.ID, ch chan sendReq) {
	for req := range ch {
		h.mu.Lock()
		rw := h.rws[rwKey(id, req.protocol)]
		h.mu.Unlock()
		ev := map[string]any{
			"event":    "sent",
			"peer":     id.String(),
			"protocol": req.protocol,
			"code":     req.code,
			"size":     len(req.payload),
		}
		if req.tag != nil {
			ev["tag"] = req.tag
		}
		if rw == nil {
			ev["error"] = "protocol " + req.protocol + " is not running with this peer"
		} else {
			msg := p2p.Msg{Code: req.code, Size: uint32(len(req.payload)), Payload: bytesReader(req.payload)}
			if err := rw.WriteMsg(msg); err != nil {
				ev["error"] = err.Error()
			}
		}
		emit(ev)
	}
}
