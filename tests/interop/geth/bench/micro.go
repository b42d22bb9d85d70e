package main

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/keccak"
	"github.com/ethereum/go-ethereum/p2p/discover/v4wire"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/rlpx"
)

// fixture is what our side generated with its own encoders, so that both sides work on the
// same bytes: two node keys, handshake messages between them (auth from A to B, ack from B to
// A) and discv4 packets signed by A.
type fixture struct {
	KeyA    string   `json:"key_a"`
	KeyB    string   `json:"key_b"`
	Auths   []string `json:"auths"`
	Acks    []string `json:"acks"`
	Packets []string `json:"packets"`
	// The records of the discv5 figure's NODES packet.
	V5Records []string `json:"v5_records"`
}

var (
	keyA, keyB *ecdsa.PrivateKey
	auths      [][]byte
	acks       [][]byte
	packets    [][]byte
)

func load(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	if keyA, err = crypto.HexToECDSA(f.KeyA); err != nil {
		return fmt.Errorf("key_a: %v", err)
	}
	if keyB, err = crypto.HexToECDSA(f.KeyB); err != nil {
		return fmt.Errorf("key_b: %v", err)
	}
	unhex := func(list []string) ([][]byte, error) {
		var bs [][]byte
		for _, s := range list {
			b, err := hex.DecodeString(s)
			if err != nil {
				return nil, err
			}
			bs = append(bs, b)
		}
		return bs, nil
	}
	if auths, err = unhex(f.Auths); err != nil {
		return err
	}
	if acks, err = unhex(f.Acks); err != nil {
		return err
	}
	if packets, err = unhex(f.Packets); err != nil {
		return err
	}
	if v5records, err = unhex(f.V5Records); err != nil {
		return err
	}
	if len(auths) == 0 || len(acks) == 0 || len(packets) == 0 {
		return errors.New("the fixture has no handshake messages or packets")
	}
	answer(map[string]bool{"ok": true})
	return nil
}

// measure calls fn (which does one unit of work and may fail) in batches until the process
// has spent ms milliseconds of CPU time on them, and answers with the units done, the CPU
// time and the wall time they took. CPU time, because the machines are shared: a slice of
// wall time depends on what else runs, the CPU time the work took much less so; and it counts
// the garbage collector's work on other threads as geth's cost. Batches double until one
// takes a fiftieth of the budget, so that reading the clock costs nothing measurable. Our
// side (versus_geth.rs) measures its own work the same way.
func measure(ms int, fn func(i int) error) error {
	budget := time.Duration(ms) * time.Millisecond
	ops, batch := 0, 1
	start, cpu0 := time.Now(), cpuTime()
	for {
		t := cpuTime()
		for j := 0; j < batch; j++ {
			if err := fn(ops + j); err != nil {
				return err
			}
		}
		ops += batch
		now := cpuTime()
		if now-cpu0 >= budget {
			answer(map[string]int64{"ops": int64(ops), "cpu_ns": (now - cpu0).Nanoseconds(), "ns": time.Since(start).Nanoseconds()})
			return nil
		}
		if now-t < budget/50 {
			batch *= 2
		}
	}
}

// cpuTime is the CPU time (user + system) this process has used, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memConn carries the frames of one direction between two rlpx.Conns in the same goroutine:
// Write keeps the slice it is given and Read hands it out. (It keeps the writer's buffer
// instead of copying it, which io.Writer forbids in general but is safe here: the writer
// does not touch that buffer again before the reader has read all of it, and it spares geth a
// copy that its code over a socket would not make either.)
type memConn struct {
	net.Conn // only Read and Write are called
	buf      []byte
}

func (m *memConn) Write(p []byte) (int, error) {
	if len(m.buf) != 0 {
		return 0, errors.New("memConn: previous frame not read")
	}
	m.buf = p
	return len(p), nil
}

func (m *memConn) Read(p []byte) (int, error) {
	if len(m.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.buf)
	m.buf = m.buf[n:]
	return n, nil
}

// SetReadDeadline and SetWriteDeadline are not called by rlpx.Conn's Read and Write; they
// are here so that nothing reaches the nil embedded Conn.
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// framePair is two rlpx.Conns with matching secrets: what one seals the other opens.
func framePair() (*rlpx.Conn, *rlpx.Conn) {
	rng := rand.New(rand.NewSource(0xbe7c))
	aes, mac := make([]byte, 32), make([]byte, 32)
	rng.Read(aes)
	rng.Read(mac)
	seeded := func(s string) hash.Hash {
		h := keccak.NewLegacyKeccak256()
		h.Write([]byte(s))
		return h
	}
	conn := new(memConn)
	a, b := rlpx.NewConn(conn, nil), rlpx.NewConn(conn, nil)
	a.InitWithSecrets(rlpx.Secrets{AES: aes, MAC: mac, EgressMAC: seeded("one direction"), IngressMAC: seeded("other direction")})
	b.InitWithSecrets(rlpx.Secrets{AES: aes, MAC: mac, EgressMAC: seeded("other direction"), IngressMAC: seeded("one direction")})
	return a, b
}

// frames: one frame of size payload bytes sealed by one rlpx.Conn and opened by its peer
// (snappy off, as in our core/benches/rlpx.rs), message code 0x10.
func frames(size, ms int) error {
	a, b := framePair()
	payload := make([]byte, size)
	rand.New(rand.NewSource(int64(size))).Read(payload)
	return measure(ms, func(int) error {
		if _, err := a.Write(0x10, payload); err != nil {
			return err
		}
		code, data, _, err := b.Read()
		if err != nil {
			return err
		}
		if code != 0x10 || len(data) != size {
			return fmt.Errorf("opened code %d, %d bytes", code, len(data))
		}
		return nil
	})
}

// replayConn plays one recorded handshake message to an rlpx.Conn and throws away what it
// writes.
type replayConn struct {
	net.Conn // only Read and Write are called
	r        bytes.Reader
}

func (c *replayConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error) { return len(p), nil }

// handshakes: one complete handshake in one role, from nothing to a session ready for frames
// (rlpx.Conn.Handshake: the messages built, sealed, opened and checked, the secrets derived,
// the frame ciphers and MACs set up). The recipient (key B) reads one of our recorded auths;
// the initiator (key A) dials B and reads one of our recorded acks: an ack is bound to the
// initiator's static key only, so a recorded one completes any handshake of A towards B.
func handshakes(role string, ms int) error {
	var run func(i int) error
	switch role {
	case "recipient":
		run = func(i int) error {
			conn := new(replayConn)
			conn.r.Reset(auths[i%len(auths)])
			_, err := rlpx.NewConn(conn, nil).Handshake(keyB)
			return err
		}
	case "initiator":
		run = func(i int) error {
			conn := new(replayConn)
			conn.r.Reset(acks[i%len(acks)])
			_, err := rlpx.NewConn(conn, &keyB.PublicKey).Handshake(keyA)
			return err
		}
	default:
		return fmt.Errorf("role %q", role)
	}
	return measure(ms, run)
}

// discv4: every packet of the fixture decoded and verified the way geth's UDPv4.handlePacket
// and RequestENR do it: v4wire.Decode (hash check, signature recovery, RLP), the sender's node
// id, and for an ENRResponse the record verified with enode.New and its id compared with the
// sender's. One unit is one packet.
func discv4(ms int) error {
	return measure(ms, func(i int) error {
		p := packets[i%len(packets)]
		pkt, from, _, err := v4wire.Decode(p)
		if err != nil {
			return err
		}
		id := from.ID()
		if r, ok := pkt.(*v4wire.ENRResponse); ok {
			n, err := enode.New(enode.ValidSchemes, &r.Record)
			if err != nil {
				return err
			}
			if n.ID() != id {
				return errors.New("ENRResponse record of another node")
			}
		}
		return nil
	})
}
