package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/p2p/discover/v5wire"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/rlp"
)

// v5pair is two v5wire codecs, A (key A) and B (key B), reached at fixed addresses. B's
// clock is simulated and never advances, so that the challenges it stores never time out
// while a figure prepares a batch of them.
type v5pair struct {
	a, b         *v5wire.Codec
	nodeA, nodeB *enode.Node
}

const (
	v5AddrA = "10.1.2.1:30303"
	v5AddrB = "10.1.2.2:30303"
)

var v5 *v5pair

func newV5Pair() (*v5pair, error) {
	dbA, err := enode.OpenDB("")
	if err != nil {
		return nil, err
	}
	dbB, err := enode.OpenDB("")
	if err != nil {
		return nil, err
	}
	lnA, lnB := enode.NewLocalNode(dbA, keyA), enode.NewLocalNode(dbB, keyB)
	for _, ln := range []*enode.LocalNode{lnA, lnB} {
		ln.Set(enr.UDP(30303))
		ln.Set(enr.TCP(30303))
	}
	lnA.SetStaticIP(net.IP{10, 1, 2, 1})
	lnB.SetStaticIP(net.IP{10, 1, 2, 2})
	return &v5pair{
		a:     v5wire.NewCodec(lnA, keyA, new(mclock.Simulated), nil),
		b:     v5wire.NewCodec(lnB, keyB, new(mclock.Simulated), nil),
		nodeA: lnA.Node(),
		nodeB: lnB.Node(),
	}, nil
}

// challenge has B challenge A at addrA the way UDPv5 does it: A sends a packet B cannot
// decrypt (a random packet, as A has no session), B answers with a WHOAREYOU (known: with
// A's record, whose seq then goes in it; else none), A decodes it. Returns the WHOAREYOU as
// A holds it, ready for A's handshake.
func (p *v5pair) challenge(addrA string, known bool) (*v5wire.Whoareyou, error) {
	enc, _, err := p.a.Encode(p.nodeB.ID(), v5AddrB, &v5wire.Ping{ReqID: []byte{1}}, nil)
	if err != nil {
		return nil, err
	}
	_, _, pkt, err := p.b.Decode(enc, addrA)
	if err != nil {
		return nil, err
	}
	unknown, ok := pkt.(*v5wire.Unknown)
	if !ok {
		return nil, fmt.Errorf("B decoded a %T, not an undecryptable packet", pkt)
	}
	w := &v5wire.Whoareyou{Nonce: unknown.Nonce}
	if known {
		w.Node = p.nodeA
		w.RecordSeq = p.nodeA.Seq()
	}
	enc, _, err = p.b.Encode(p.nodeA.ID(), addrA, w, nil)
	if err != nil {
		return nil, err
	}
	_, _, pkt, err = p.a.Decode(enc, v5AddrB)
	if err != nil {
		return nil, err
	}
	got, ok := pkt.(*v5wire.Whoareyou)
	if !ok {
		return nil, fmt.Errorf("A decoded a %T, not a WHOAREYOU", pkt)
	}
	got.Node = p.nodeB
	return got, nil
}

// handshakePacket is A's answer to a challenge of B's: a handshake packet carrying msg (with
// A's record when the challenge had none of it).
func (p *v5pair) handshakePacket(addrA string, known bool, msg v5wire.Packet) ([]byte, error) {
	w, err := p.challenge(addrA, known)
	if err != nil {
		return nil, err
	}
	enc, _, err := p.a.Encode(p.nodeB.ID(), v5AddrB, msg, w)
	return bytes.Clone(enc), err
}

// v5packets are the figure's ordinary packets, by name: geth's encoding (its codec, its
// session keys) of the same messages as ours, sent by A to B under a session established by a
// real handshake.
var v5packets map[string][]byte

func v5messages() (map[string]v5wire.Packet, error) {
	id := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	var records []*enr.Record
	for _, hexRec := range v5records {
		var r enr.Record
		if err := rlp.DecodeBytes(hexRec, &r); err != nil {
			return nil, fmt.Errorf("record: %v", err)
		}
		records = append(records, &r)
	}
	return map[string]v5wire.Packet{
		"ping":     &v5wire.Ping{ReqID: id, ENRSeq: 1_700_000_000_000},
		"pong":     &v5wire.Pong{ReqID: id, ENRSeq: 1_700_000_000_000, ToIP: net.IP{203, 0, 113, 9}, ToPort: 30303},
		"findnode": &v5wire.Findnode{ReqID: id, Distances: []uint{256, 255, 254}},
		"talkreq":  &v5wire.TalkRequest{ReqID: id, Protocol: "portal", Message: bytes.Repeat([]byte{0x5a}, 512)},
		"nodes":    &v5wire.Nodes{ReqID: id, RespCount: 1, Nodes: records},
	}, nil
}

// v5records are the NODES records (encoded by our side, in the fixture).
var v5records [][]byte

func v5setup() error {
	if v5 != nil {
		return nil
	}
	if keyA == nil {
		return errors.New("no fixture loaded")
	}
	pair, err := newV5Pair()
	if err != nil {
		return err
	}
	// The session: one real handshake, A to B.
	hs, err := pair.handshakePacket(v5AddrA, true, &v5wire.Ping{ReqID: []byte{2}, ENRSeq: 1})
	if err != nil {
		return err
	}
	if _, _, pkt, err := pair.b.Decode(hs, v5AddrA); err != nil {
		return fmt.Errorf("B refused A's handshake: %v", err)
	} else if _, ok := pkt.(*v5wire.Ping); !ok {
		return fmt.Errorf("A's handshake carried a %T", pkt)
	}
	msgs, err := v5messages()
	if err != nil {
		return err
	}
	v5packets = map[string][]byte{}
	for name, m := range msgs {
		enc, _, err := pair.a.Encode(pair.nodeB.ID(), v5AddrB, m, nil)
		if err != nil {
			return err
		}
		v5packets[name] = bytes.Clone(enc)
	}
	v5 = pair
	return nil
}

// v5sizes answers with the byte size of each packet the figure decodes.
func v5sizes() error {
	if err := v5setup(); err != nil {
		return err
	}
	sizes := map[string]int{}
	for name, p := range v5packets {
		sizes[name] = len(p)
	}
	for _, known := range []bool{true, false} {
		hs, err := v5.handshakePacket("10.9.9.9:1", known, &v5wire.Ping{ReqID: []byte{5, 0, 0, 0, 0, 0, 0, 0}, ENRSeq: 1})
		if err != nil {
			return err
		}
		name := "handshake-with-record"
		if known {
			name = "handshake"
		}
		sizes[name] = len(hs)
	}
	answer(sizes)
	return nil
}

// discv5Ordinary: B's Codec.Decode of one of A's ordinary packets under the session
// (unmasking, header checks, the session's read key looked up, AES-GCM, the message's RLP
// decoded), as in geth's BenchmarkV5_DecodePing; for NODES also what UDPv5 does next with
// every record (enode.New: its signature verified). One unit is one packet.
func discv5Ordinary(name string, ms int) error {
	if err := v5setup(); err != nil {
		return err
	}
	input, ok := v5packets[name]
	if !ok {
		return fmt.Errorf("no packet %q", name)
	}
	return measure(ms, func(int) error {
		_, _, pkt, err := v5.b.Decode(input, v5AddrA)
		if err != nil {
			return err
		}
		if nodes, ok := pkt.(*v5wire.Nodes); ok {
			for _, r := range nodes.Nodes {
				if _, err := enode.New(enode.ValidSchemes, r); err != nil {
					return err
				}
			}
		} else if pkt.Kind() == v5wire.UnknownPacket {
			return errors.New("B could not decrypt A's packet")
		}
		return nil
	})
}

// discv5Handshake: B's Codec.Decode of a handshake packet answering its own WHOAREYOU
// (record check, id-nonce signature, ECDH, HKDF, the PING inside decrypted and decoded, the
// session stored and the challenge deleted), as in geth's
// BenchmarkV5_DecodeHandshakePingSecp256k1. A challenge is used up by the decode that
// answers it, so every packet needs its own: batches of 32 challenges are prepared first,
// each from a different address of A's (B keeps one challenge per node and address), and
// only the decodes are timed. With a record, B's WHOAREYOU did not know A's, so A includes it
// and B verifies it; without, B knew it. The units and the CPU time are the decodes'.
func discv5Handshake(withRecord bool, ms int) error {
	if err := v5setup(); err != nil {
		return err
	}
	const batch = 32
	ping := &v5wire.Ping{ReqID: []byte{5, 0, 0, 0, 0, 0, 0, 0}, ENRSeq: 1}
	var (
		inputs [batch][]byte
		addrs  [batch]string
		spent  int64
		ops    int64
		round  int
	)
	for spent < int64(ms)*1e6 {
		for i := range batch {
			addrs[i] = fmt.Sprintf("10.%d.%d.%d:30303", 100+round%100, i, round/100%250)
			hs, err := v5.handshakePacket(addrs[i], !withRecord, ping)
			if err != nil {
				return err
			}
			inputs[i] = hs
		}
		round++
		t := cpuTime()
		for i := range batch {
			_, _, pkt, err := v5.b.Decode(inputs[i], addrs[i])
			if err != nil {
				return err
			}
			if _, ok := pkt.(*v5wire.Ping); !ok {
				return fmt.Errorf("the handshake carried a %T", pkt)
			}
		}
		spent += (cpuTime() - t).Nanoseconds()
		ops += batch
	}
	answer(map[string]int64{"ops": ops, "cpu_ns": spent})
	return nil
}
