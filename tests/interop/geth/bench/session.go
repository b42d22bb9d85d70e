package main

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// peerWait is how long a command waits for a session to come up or for its bytes.
const peerWait = 60 * time.Second

// node is one geth p2p.Server speaking the benchmark protocol ("bench" version 1, one
// message code), discovery off, on 127.0.0.1. Each peer's protocol handler reads every
// message, counts its payload bytes into the node's sink and discards it; the handler of
// the latest peer is kept for streaming to it.
type node struct {
	srv  *p2p.Server
	key  *ecdsa.PrivateKey
	sink sink

	mu    sync.Mutex
	peer  p2p.MsgReadWriter
	ready chan struct{} // closed once peer is set
}

// sink counts received payload bytes and says when a target is reached.
type sink struct {
	mu     sync.Mutex
	got    int64
	target int64
	done   chan struct{}
}

func (s *sink) add(n int64) {
	s.mu.Lock()
	s.got += n
	if s.done != nil && s.got >= s.target {
		close(s.done)
		s.done = nil
	}
	s.mu.Unlock()
}

// expect starts counting from zero towards target; the channel closes when it is reached.
func (s *sink) expect(target int64) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got, s.target = 0, target
	s.done = make(chan struct{})
	return s.done
}

func newNode(maxPeers int, noDial bool) (*node, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	n := &node{key: key, ready: make(chan struct{})}
	n.srv = &p2p.Server{Config: p2p.Config{
		PrivateKey:  key,
		MaxPeers:    maxPeers,
		NoDiscovery: true,
		NoDial:      noDial,
		ListenAddr:  "127.0.0.1:0",
		Protocols: []p2p.Protocol{{
			Name:    "bench",
			Version: 1,
			Length:  1,
			Run:     n.run,
		}},
		Logger: log.NewLogger(log.DiscardHandler()),
	}}
	if err := n.srv.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *node) run(_ *p2p.Peer, rw p2p.MsgReadWriter) error {
	n.mu.Lock()
	first := n.peer == nil
	n.peer = rw
	if first {
		close(n.ready)
	}
	n.mu.Unlock()
	for {
		msg, err := rw.ReadMsg()
		if err != nil {
			return err
		}
		size := int64(msg.Size)
		if err := msg.Discard(); err != nil {
			return err
		}
		n.sink.add(size)
	}
}

// waitPeer is the handler of a connected peer, once there is one.
func (n *node) waitPeer() (p2p.MsgReadWriter, error) {
	select {
	case <-n.ready:
	case <-time.After(peerWait):
		return nil, errors.New("no peer connected")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peer, nil
}

func (n *node) port() int {
	return n.srv.Self().TCP()
}

// url is the node's enode URL (no discovery port: discovery is off).
func (n *node) url() string {
	return fmt.Sprintf("enode://%x@127.0.0.1:%d", crypto.FromECDSAPub(&n.key.PublicKey)[1:], n.port())
}

func (n *node) enode() *enode.Node {
	return enode.NewV4(&n.key.PublicKey, net.IPv4(127, 0, 0, 1), n.port(), 0)
}

// payloads: up to 16 distinct random (incompressible) messages of size bytes, reused in turn,
// as on our side.
func payloads(size, count int, seed int64) [][]byte {
	rng := rand.New(rand.NewSource(seed))
	k := min(count, 16)
	ps := make([][]byte, k)
	for i := range ps {
		ps[i] = make([]byte, size)
		rng.Read(ps[i])
	}
	return ps
}

// send writes count messages through rw, the way a geth protocol handler does.
func send(rw p2p.MsgReadWriter, msgs [][]byte, count int) error {
	for i := 0; i < count; i++ {
		p := msgs[i%len(msgs)]
		if err := rw.WriteMsg(p2p.Msg{Code: 0, Size: uint32(len(p)), Payload: bytes.NewReader(p)}); err != nil {
			return err
		}
	}
	return nil
}

// pair: geth to geth over one session on 127.0.0.1. Two fresh servers in this process, B
// dials A; once both handlers run, B sends count messages of size bytes and the time runs
// until A's handler has every payload byte.
func pair(size, count int, seed int64) error {
	a, err := newNode(4, true)
	if err != nil {
		return err
	}
	defer a.srv.Stop()
	b, err := newNode(4, false)
	if err != nil {
		return err
	}
	defer b.srv.Stop()
	b.srv.AddPeer(a.enode())
	rw, err := b.waitPeer()
	if err != nil {
		return err
	}
	if _, err := a.waitPeer(); err != nil {
		return err
	}
	msgs := payloads(size, count, seed)
	done := a.sink.expect(int64(size) * int64(count))
	start, cpu0 := time.Now(), cpuTime()
	if err := send(rw, msgs, count); err != nil {
		return err
	}
	select {
	case <-done:
	case <-time.After(peerWait):
		return errors.New("the receiver did not get every byte")
	}
	answer(map[string]int64{"ns": time.Since(start).Nanoseconds(), "cpu_ns": (cpuTime() - cpu0).Nanoseconds()})
	return nil
}

// listener is the server our node connects to for geth-to-ours and ours-to-geth.
var listener *node

func closeListener() {
	if listener != nil {
		listener.srv.Stop()
		listener = nil
	}
}

// listen: a fresh server for our node to dial (the previous one stopped); answers its URL.
func listen() error {
	closeListener()
	n, err := newNode(4, false)
	if err != nil {
		return err
	}
	listener = n
	answer(map[string]string{"enode": n.url()})
	return nil
}

// dial: the listener dials the node at url (another process's listener, say) and answers
// once the session's handler runs.
func dial(url string) error {
	if listener == nil {
		return errors.New("not listening")
	}
	n, err := enode.ParseV4(url)
	if err != nil {
		return err
	}
	listener.srv.AddPeer(n)
	if _, err := listener.waitPeer(); err != nil {
		return err
	}
	answer(map[string]bool{"ok": true})
	return nil
}

// stream: the listener sends count messages of size bytes to the peer that dialled it, and
// answers once WriteMsg returned for the last (our side times the reception).
func stream(size, count int, seed int64) error {
	if listener == nil {
		return errors.New("not listening")
	}
	rw, err := listener.waitPeer()
	if err != nil {
		return err
	}
	msgs := payloads(size, count, seed)
	start := time.Now()
	if err := send(rw, msgs, count); err != nil {
		return err
	}
	answer(map[string]int64{"ns": time.Since(start).Nanoseconds()})
	return nil
}

// expect: answers `ready`, then waits until the listener's handler has total payload bytes
// and answers again (our side times from its first send to that answer).
func expect(total int64) error {
	if listener == nil {
		return errors.New("not listening")
	}
	if _, err := listener.waitPeer(); err != nil {
		return err
	}
	done := listener.sink.expect(total)
	start := time.Now()
	answer(map[string]bool{"ready": true})
	select {
	case <-done:
	case <-time.After(peerWait):
		return errors.New("not every byte arrived")
	}
	answer(map[string]int64{"ns": time.Since(start).Nanoseconds()})
	return nil
}
