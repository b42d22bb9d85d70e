package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/ecies"
)

// prim: one cryptographic primitive as geth's code calls it, to show what the figures above
// are made of (our side measures the same operation through the crates it uses):
//
//	keccak    Keccak-256 of 1 MiB (crypto.Keccak256: geth's crypto/keccak, amd64 assembly)
//	aes-ctr   AES-256-CTR over 1 MiB (crypto/aes + crypto/cipher, as rlpx.Conn)
//	ecdh      one shared secret (ecies.PrivateKey.GenerateShared, as the handshake)
//	keygen    one key pair (ecies.GenerateKey on crypto.S256(), as the handshake)
//	sign      one recoverable signature (crypto.Sign)
//	recover   one public-key recovery (crypto.Ecrecover)
//	verify    one ECDSA verification with a compressed key (crypto.DecompressPubkey, then
//	          crypto.VerifySignature: what verifying a record does)
func prim(name string, ms int) error {
	var digest [32]byte
	digest[0] = 7
	sig, err := crypto.Sign(digest[:], keyA)
	if err != nil {
		return err
	}
	compressed := crypto.CompressPubkey(&keyA.PublicKey)
	data := make([]byte, 1<<20)
	var run func(int) error
	switch name {
	case "keccak":
		run = func(int) error { crypto.Keccak256(data); return nil }
	case "aes-ctr":
		block, _ := aes.NewCipher(make([]byte, 32))
		stream := cipher.NewCTR(block, make([]byte, 16))
		run = func(int) error { stream.XORKeyStream(data, data); return nil }
	case "ecdh":
		prv, pub := ecies.ImportECDSA(keyA), ecies.ImportECDSAPublic(&keyB.PublicKey)
		run = func(int) error { _, err := prv.GenerateShared(pub, 16, 16); return err }
	case "keygen":
		run = func(int) error { _, err := ecies.GenerateKey(rand.Reader, crypto.S256(), nil); return err }
	case "sign":
		run = func(int) error { _, err := crypto.Sign(digest[:], keyA); return err }
	case "recover":
		run = func(int) error { _, err := crypto.Ecrecover(digest[:], sig); return err }
	case "verify":
		run = func(int) error {
			if _, err := crypto.DecompressPubkey(compressed); err != nil {
				return err
			}
			if !crypto.VerifySignature(compressed, digest[:], sig[:64]) {
				return fmt.Errorf("signature refused")
			}
			return nil
		}
	default:
		return fmt.Errorf("unknown primitive %q", name)
	}
	return measure(ms, run)
}
