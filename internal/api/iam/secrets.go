package iam

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeyFile is the name of the secret-encryption key in the data directory.
const KeyFile = "iam.key"

// sealer encrypts secret access keys at rest with AES-256-GCM. The key
// id is the additional data, so a sealed secret moved to another key's
// row does not open.
type sealer struct{ aead cipher.AEAD }

// loadOrCreateKey reads the 32-byte key (hex) at path, creating it with
// mode 0600 when it does not exist. A key file that group or others may
// read is refused: whoever reads it can decrypt every secret in the store.
func loadOrCreateKey(path string) (*sealer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, fmt.Errorf("create iam key file %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create iam key file: %w", err)
		}
		_, werr := f.WriteString(hex.EncodeToString(k[:]) + "\n")
		serr := f.Sync()
		if err := errors.Join(werr, serr, f.Close()); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("create iam key file %s: %w", path, err)
		}
		return newSealer(k[:])
	}
	if err != nil {
		return nil, fmt.Errorf("read iam key file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read iam key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("iam key file %s has mode %#o: other users can read the key that decrypts every secret access key; run chmod 600 %s", path, perm, path)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("read iam key file %s: want 64 hex digits (a 256-bit key)", path)
	}
	return newSealer(k)
}

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("iam key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("iam key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal returns nonce || ciphertext of secret, bound to keyID.
func (s *sealer) seal(keyID, secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return s.aead.Seal(nonce, nonce, []byte(secret), []byte(keyID))
}

func (s *sealer) open(keyID string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("sealed secret too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(keyID))
	if err != nil {
		return "", fmt.Errorf("decrypt secret of %s (was %s written with another key file?): %w", keyID, KeyFile, err)
	}
	return string(plain), nil
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// newID returns prefix followed by n random characters of AWS's id
// alphabet (upper-case letters and digits 2-7).
func newID(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return prefix + string(b)
}

const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// newSecret returns a 40-character secret access key like AWS's.
func newSecret() string {
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = secretAlphabet[int(b[i])%len(secretAlphabet)]
	}
	return string(b)
}
