package main

// Discovery v5 mode: geth's own p2p/discover.ListenV5 on a UDP socket, optionally sharing the
// socket with discover.ListenV4 the way p2p.Server does (v4 reads every datagram and hands
// what it cannot decode to v5 through a SharedUDPConn).
//
//	harness discv5 [--key HEX] [--listen 127.0.0.1:0] [--v4] [--bootnodes ENR,...]
//	               [--ping-interval 3s] [--refresh-interval 30m] [--resp-timeout 700ms]
//	               [--no-liveness-check] [--idle] [--lifetime 120] [--verbosity info]
//
// prints `listening` (the node, as nodeJSON, plus `v4`) once up (unless --idle), then answers
// the commands of handleV5Command, one JSON line each, and reports every TALKREQ a registered
// handler sees as `talk_request`. It exits when stdin closes and after --lifetime seconds.

import (
	"bufio"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/rlp"
)

// v5Options are what a listener is started with: the flags, or a `listen` command.
type v5Options struct {
	key             *ecdsa.PrivateKey
	listen          string
	v4              bool
	bootnodes       []*enode.Node
	pingInterval    time.Duration
	refreshInterval time.Duration
	respTimeout     time.Duration
	noLivenessCheck bool
}

// v5Node is one running listener.
type v5Node struct {
	conn *net.UDPConn
	ln   *enode.LocalNode
	db   *enode.DB
	v5   *discover.UDPv5
	v4   *discover.UDPv4
}

// v5Harness holds the running listener (none after `stop`) and the TALK handlers to install
// on every listener started.
type v5Harness struct {
	logger log.Logger
	mu     sync.Mutex
	node   *v5Node
	// protocol -> transform spec, re-registered on each new listener.
	talk map[string]map[string]any
}

func runDiscv5(args []string) {
	fs := flag.NewFlagSet("discv5", flag.ExitOnError)
	keyHex := fs.String("key", "", "secret key (hex); a fresh one by default")
	listen := fs.String("listen", "127.0.0.1:0", "UDP listen address")
	v4 := fs.Bool("v4", false, "also run discovery v4 on the same socket, as p2p.Server does")
	bootnodes := fs.String("bootnodes", "", "Config.Bootnodes: enr: records or enode URLs, comma-separated")
	pingInterval := fs.Duration("ping-interval", 0, "Config.PingInterval (0: geth's default)")
	refreshInterval := fs.Duration("refresh-interval", 0, "Config.RefreshInterval (0: geth's default)")
	respTimeout := fs.Duration("resp-timeout", 0, "Config.V5RespTimeout (0: geth's default, 700ms)")
	noLiveness := fs.Bool("no-liveness-check", false, "Config.NoFindnodeLivenessCheck")
	idle := fs.Bool("idle", false, "do not listen until a `listen` command")
	lifetime := fs.Int("lifetime", 120, "exit after this many seconds whatever happens")
	verbosity := fs.String("verbosity", "info", "geth log records reported as `log` events: trace, debug, info, warn, error, off")
	fs.Parse(args)

	time.AfterFunc(time.Duration(*lifetime)*time.Second, func() {
		emit(map[string]any{"event": "lifetime_exceeded", "seconds": *lifetime})
		os.Exit(2)
	})
	level, err := parseLevel(*verbosity)
	if err != nil {
		fail("--verbosity: %v", err)
	}
	h := &v5Harness{logger: log.NewLogger(&jsonHandler{level: level}), talk: map[string]map[string]any{}}
	log.SetDefault(h.logger)

	if !*idle {
		opts := v5Options{
			key:             parseKey(*keyHex),
			listen:          *listen,
			v4:              *v4,
			bootnodes:       parseEnodes(*bootnodes),
			pingInterval:    *pingInterval,
			refreshInterval: *refreshInterval,
			respTimeout:     *respTimeout,
			noLivenessCheck: *noLiveness,
		}
		ev, err := h.start(opts)
		if err != nil {
			fail("listening: %v", err)
		}
		emit(ev)
	}

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
		h.handle(cmd)
	}
	emit(map[string]any{"event": "stdin_closed"})
	h.stop()
}

// start opens the socket and starts the listener(s); returns the `listening` event.
func (h *v5Harness) start(o v5Options) (map[string]any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.node != nil {
		return nil, errors.New("already listening")
	}
	addr, err := net.ResolveUDPAddr("udp", o.listen)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, err
	}
	db, err := enode.OpenDB("") // in memory: a restart starts with a new record seq
	if err != nil {
		conn.Close()
		return nil, err
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	ln := enode.NewLocalNode(db, o.key)
	ln.SetStaticIP(local.IP)
	ln.SetFallbackUDP(local.Port)
	cfg := discover.Config{
		PrivateKey:              o.key,
		Bootnodes:               o.bootnodes,
		PingInterval:            o.pingInterval,
		RefreshInterval:         o.refreshInterval,
		V5RespTimeout:           o.respTimeout,
		NoFindnodeLivenessCheck: o.noLivenessCheck,
		Log:                     h.logger,
	}
	n := &v5Node{conn: conn, ln: ln, db: db}
	var v5conn discover.UDPConn = conn
	if o.v4 {
		unhandled := make(chan discover.ReadPacket, 100)
		v4cfg := cfg
		v4cfg.Unhandled = unhandled
		// v4 bootnodes are enode URLs; the v5 ones are records. Neither is needed for v4 here.
		v4cfg.Bootnodes = nil
		if n.v4, err = discover.ListenV4(conn, ln, v4cfg); err != nil {
			conn.Close()
			db.Close()
			return nil, err
		}
		v5conn = &discover.SharedUDPConn{UDPConn: conn, Unhandled: unhandled}
	}
	if n.v5, err = discover.ListenV5(v5conn, ln, cfg); err != nil {
		if n.v4 != nil {
			n.v4.Close()
		}
		conn.Close()
		db.Close()
		return nil, err
	}
	for proto, spec := range h.talk {
		n.v5.RegisterTalkHandler(proto, talkHandler(proto, spec))
	}
	h.node = n
	ev := nodeJSON(ln.Node())
	ev["event"] = "listening"
	ev["pubkey"] = pubkeyHex(&o.key.PublicKey)
	ev["v4"] = o.v4
	return ev, nil
}

// stop closes the listener(s) and the socket; false if none ran.
func (h *v5Harness) stop() bool {
	h.mu.Lock()
	n := h.node
	h.node = nil
	h.mu.Unlock()
	if n == nil {
		return false
	}
	n.v5.Close()
	if n.v4 != nil {
		n.v4.Close() // closes the socket
	} else {
		n.conn.Close()
	}
	n.db.Close()
	return true
}

func (h *v5Harness) current() *v5Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.node
}

// talkHandler answers a TALKREQ of proto by the transform spec: {"transform": "echo"},
// {"transform": "reverse"}, {"transform": "prefix", "hex": P} (P then the request), or
// {"transform": "fixed", "hex": R} (always R). Each request is reported as `talk_request`.
func talkHandler(proto string, spec map[string]any) discover.TalkRequestHandler {
	fixed, _ := hex.DecodeString(str(spec, "hex"))
	transform := str(spec, "transform")
	return func(n *enode.Node, from *net.UDPAddr, req []byte) []byte {
		emit(map[string]any{
			"event":    "talk_request",
			"peer":     n.ID().String(),
			"from":     from.String(),
			"protocol": proto,
			"hex":      hex.EncodeToString(req),
		})
		switch transform {
		case "echo":
			return req
		case "reverse":
			out := slices.Clone(req)
			slices.Reverse(out)
			return out
		case "prefix":
			return append(slices.Clone(fixed), req...)
		default:
			return fixed
		}
	}
}

func reply(cmd map[string]any, ev map[string]any) {
	if tag, ok := cmd["tag"]; ok {
		ev["tag"] = tag
	}
	emit(ev)
}

func replyErr(cmd map[string]any, format string, args ...any) {
	reply(cmd, map[string]any{"event": "error", "cmd": cmd["cmd"], "error": fmt.Sprintf(format, args...)})
}

// cmdNode reads the command's "enr" (an enr: record or an enode URL).
func cmdNode(cmd map[string]any) (*enode.Node, error) {
	return enode.Parse(enode.ValidSchemes, str(cmd, "enr"))
}

func nodesJSON(nodes []*enode.Node, from enode.ID) []map[string]any {
	list := []map[string]any{}
	for _, n := range nodes {
		j := nodeJSON(n)
		j["distance"] = enode.LogDist(from, n.ID())
		list = append(list, j)
	}
	return list
}

// handle runs one command. Those that wait on the network run on goroutines of their own
// and answer when done, carrying the command's tag.
func (h *v5Harness) handle(cmd map[string]any) {
	name := str(cmd, "cmd")
	switch name {
	case "listen": // {key?, listen?, v4?, bootnodes?: [enr...], ping_interval_ms?, ...}
		o := v5Options{key: parseKey(str(cmd, "key")), listen: str(cmd, "listen")}
		if o.listen == "" {
			o.listen = "127.0.0.1:0"
		}
		o.v4, _ = cmd["v4"].(bool)
		o.noLivenessCheck, _ = cmd["no_liveness_check"].(bool)
		if ms, ok := cmd["ping_interval_ms"].(float64); ok {
			o.pingInterval = time.Duration(ms) * time.Millisecond
		}
		if ms, ok := cmd["refresh_interval_ms"].(float64); ok {
			o.refreshInterval = time.Duration(ms) * time.Millisecond
		}
		if list, ok := cmd["bootnodes"].([]any); ok {
			for _, b := range list {
				s, _ := b.(string)
				n, err := enode.Parse(enode.ValidSchemes, s)
				if err != nil {
					replyErr(cmd, "listen: bootnode %q: %v", s, err)
					return
				}
				o.bootnodes = append(o.bootnodes, n)
			}
		}
		ev, err := h.start(o)
		if err != nil {
			replyErr(cmd, "listen: %v", err)
			return
		}
		reply(cmd, ev)
		return
	case "stop":
		reply(cmd, map[string]any{"event": "stopped", "was_running": h.stop()})
		return
	case "quit":
		emit(map[string]any{"event": "quitting"})
		h.stop()
		os.Exit(0)
	case "register_talk": // {protocol, transform, hex?}
		proto := str(cmd, "protocol")
		h.mu.Lock()
		h.talk[proto] = cmd
		n := h.node
		h.mu.Unlock()
		if n != nil {
			n.v5.RegisterTalkHandler(proto, talkHandler(proto, cmd))
		}
		reply(cmd, map[string]any{"event": "registered", "protocol": proto})
		return
	}

	n := h.current()
	if n == nil {
		replyErr(cmd, "%s: not listening", name)
		return
	}
	switch name {
	case "enr":
		ev := nodeJSON(n.ln.Node())
		ev["event"] = "enr"
		reply(cmd, ev)
	case "set_enr_field": // {key, value: one RLP item in hex}: LocalNode.Set, a new seq
		raw, err := hex.DecodeString(str(cmd, "value"))
		if err != nil || str(cmd, "key") == "" {
			replyErr(cmd, "set_enr_field: needs key and value (RLP hex): %v", err)
			return
		}
		n.ln.Set(enr.WithEntry(str(cmd, "key"), rlp.RawValue(raw)))
		ev := nodeJSON(n.ln.Node())
		ev["event"] = "enr"
		reply(cmd, ev)
	case "table":
		list := []map[string]any{}
		for _, b := range n.v5.Nodes() {
			for _, bn := range b {
				j := nodeJSON(bn.Node)
				j["checks"] = bn.Checks
				j["live"] = bn.Live
				list = append(list, j)
			}
		}
		reply(cmd, map[string]any{"event": "table", "nodes": list})
	case "add_node": // {enr}: UDPv5.AddKnownNode
		node, err := cmdNode(cmd)
		if err != nil {
			replyErr(cmd, "add_node: %v", err)
			return
		}
		reply(cmd, map[string]any{"event": "added", "peer": node.ID().String(), "added": n.v5.AddKnownNode(node)})
	case "ping": // {enr}: UDPv5.Ping
		node, err := cmdNode(cmd)
		if err != nil {
			replyErr(cmd, "ping: %v", err)
			return
		}
		go func() {
			started := time.Now()
			pong, err := n.v5.Ping(node)
			if err != nil {
				replyErr(cmd, "ping: %v", err)
				return
			}
			reply(cmd, map[string]any{
				"event":   "pong",
				"peer":    node.ID().String(),
				"enr_seq": pong.ENRSeq,
				"to_ip":   pong.ToIP.String(),
				"to_port": pong.ToPort,
				"ms":      time.Since(started).Milliseconds(),
			})
		}()
	case "requestenr": // {enr}: UDPv5.RequestENR (FINDNODE [0])
		node, err := cmdNode(cmd)
		if err != nil {
			replyErr(cmd, "requestenr: %v", err)
			return
		}
		go func() {
			rn, err := n.v5.RequestENR(node)
			if err != nil {
				replyErr(cmd, "requestenr: %v", err)
				return
			}
			ev := nodeJSON(rn)
			ev["event"] = "enr_response"
			ev["peer"] = node.ID().String()
			reply(cmd, ev)
		}()
	case "findnode": // {enr, distances: [d...]}: UDPv5.Findnode
		node, err := cmdNode(cmd)
		if err != nil {
			replyErr(cmd, "findnode: %v", err)
			return
		}
		var dists []uint
		list, _ := cmd["distances"].([]any)
		for _, d := range list {
			f, _ := d.(float64)
			dists = append(dists, uint(f))
		}
		go func() {
			started := time.Now()
			found, err := n.v5.Findnode(node, dists)
			if err != nil {
				replyErr(cmd, "findnode: %v", err)
				return
			}
			reply(cmd, map[string]any{
				"event": "nodes",
				"peer":  node.ID().String(),
				"nodes": nodesJSON(found, node.ID()),
				"ms":    time.Since(started).Milliseconds(),
			})
		}()
	case "talk": // {enr, protocol, hex}: UDPv5.TalkRequest
		node, err := cmdNode(cmd)
		req, err2 := hex.DecodeString(str(cmd, "hex"))
		if err != nil || err2 != nil {
			replyErr(cmd, "talk: %v %v", err, err2)
			return
		}
		go func() {
			resp, err := n.v5.TalkRequest(node, str(cmd, "protocol"), req)
			if err != nil {
				replyErr(cmd, "talk: %v", err)
				return
			}
			reply(cmd, map[string]any{"event": "talk_response", "peer": node.ID().String(), "hex": hex.EncodeToString(resp)})
		}()
	case "lookup": // {target?: node id hex; a random one when absent}: UDPv5.Lookup
		var target enode.ID
		if t := str(cmd, "target"); t != "" {
			id, err := enode.ParseID(t)
			if err != nil {
				replyErr(cmd, "lookup: target: %v", err)
				return
			}
			target = id
		} else {
			k := parseKey("")
			target = enode.PubkeyToIDV4(&k.PublicKey)
		}
		go func() {
			started := time.Now()
			found := n.v5.Lookup(target)
			reply(cmd, map[string]any{
				"event":  "lookup",
				"target": target.String(),
				"nodes":  nodesJSON(found, target),
				"ms":     time.Since(started).Milliseconds(),
			})
		}()
	case "v4_ping": // {enr}: UDPv4.Ping, with --v4
		node, err := cmdNode(cmd)
		if err != nil || n.v4 == nil {
			replyErr(cmd, "v4_ping: no v4 listener or bad node: %v", err)
			return
		}
		go func() {
			pong, err := n.v4.Ping(node)
			if err != nil {
				replyErr(cmd, "v4_ping: %v", err)
				return
			}
			reply(cmd, map[string]any{"event": "v4_pong", "peer": node.ID().String(), "enr_seq": pong.ENRSeq})
		}()
	default:
		replyErr(cmd, "unknown command %v", cmd["cmd"])
	}
}
