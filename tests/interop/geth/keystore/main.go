// Command keystore writes an Ethereum keystore file (the format geth's `devp2p dns sign`
// reads its signing key from) for a hex secret key, with geth's own accounts/keystore
// package, so that the DNS interop tests can have geth sign a tree with a known key.
//
// Usage: keystore <hex secret key> <password> <out file>
package main

import (
	"fmt"
	"os"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: keystore <hex secret key> <password> <out file>")
		os.Exit(2)
	}
	priv, err := crypto.HexToECDSA(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad key:", err)
		os.Exit(1)
	}
	id, err := uuid.NewRandom()
	if err != nil {
		fmt.Fprintln(os.Stderr, "uuid:", err)
		os.Exit(1)
	}
	key := &keystore.Key{Id: id, Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}
	blob, err := keystore.EncryptKey(key, os.Args[2], keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "encrypt:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[3], blob, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(1)
	}
}
