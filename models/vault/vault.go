// Package vault encrypts personal data at rest (bank account numbers) with
// AES-256-GCM. Every ciphertext records the id of the key that sealed it, so keys
// can be rotated: new writes use the active key, old rows stay readable.
// A keyed blind index (HMAC-SHA256) lets the database find equal account numbers
// (the same account used by different businesses) without decrypting anything.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Vault holds the data keys. The first key is active.
type Vault struct {
	activeID   string
	ids        []string
	aeads      map[string]cipher.AEAD
	indexKey   []byte
	indexKeyID string
}

// Parse reads RELIEF_DATA_KEY: "id:base64(32 bytes)[,id:base64(32 bytes)...]".
// The first entry is the active key; the rest only decrypt. The last entry
// also derives the blind-index key: to rotate, put the new key first and keep
// the original one last ("new:…,old:…"), then run `relief rekey`.
func Parse(spec string) (*Vault, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("RELIEF_DATA_KEY is empty")
	}
	v := &Vault{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("RELIEF_DATA_KEY entry %d: want id:base64key", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("RELIEF_DATA_KEY entry %q: want 32 bytes in standard base64", id)
		}
		if _, dup := v.aeads[id]; dup {
			return nil, fmt.Errorf("RELIEF_DATA_KEY: key id %q twice", id)
		}
		block, _ := aes.NewCipher(key)
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		v.aeads[id] = aead
		v.ids = append(v.ids, id)
		if i == 0 {
			v.activeID = id
		}
		// The blind-index key is derived from the LAST entry: rotation puts the
		// new key first and keeps the original one listed at the end, so the
		// index key never changes and equal accounts keep matching across
		// rotations (`relief rekey` checks it against the recorded fingerprint).
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte("relief blind index v1"))
		v.indexKey = mac.Sum(nil)
		v.indexKeyID = id
	}
	return v, nil
}

// KeyIDs lists the configured key ids, the active one first.
func (v *Vault) KeyIDs() []string { return append([]string(nil), v.ids...) }

// IndexKeyID names the entry the blind-index key is derived from (the last one).
func (v *Vault) IndexKeyID() string { return v.indexKeyID }

// IndexFingerprint identifies the blind-index key without revealing it, so a
// database can record which key its blind indexes were computed with.
func (v *Vault) IndexFingerprint() []byte {
	h := sha256.New()
	h.Write([]byte("relief blind index fingerprint v1\x00"))
	h.Write(v.indexKey)
	return h.Sum(nil)
}

// NewKeySpec returns a fresh "id:base64key" for RELIEF_DATA_KEY.
func NewKeySpec(id string) string {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key)
}

// ActiveKeyID is the id new ciphertexts are sealed with.
func (v *Vault) ActiveKeyID() string { return v.activeID }

// Seal encrypts plaintext with the active key. The result is nonce||ciphertext;
// aad binds it to its row (e.g. the claim id) so it cannot be moved to another.
func (v *Vault) Seal(plaintext, aad []byte) (ciphertext []byte, keyID string) {
	aead := v.aeads[v.activeID]
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic(err)
	}
	return aead.Seal(out, out, plaintext, aad), v.activeID
}

// Open decrypts a Seal result with the key it names.
func (v *Vault) Open(ciphertext []byte, keyID string, aad []byte) ([]byte, error) {
	aead, ok := v.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("vault: unknown key id %q", keyID)
	}
	if len(ciphertext) < aead.NonceSize() {
		return nil, errors.New("vault: ciphertext too short")
	}
	n := aead.NonceSize()
	return aead.Open(nil, ciphertext[:n], ciphertext[n:], aad)
}

// BlindIndex is a keyed, deterministic digest of value for equality lookups.
func (v *Vault) BlindIndex(value string) []byte {
	mac := hmac.New(sha256.New, v.indexKey)
	mac.Write([]byte(value))
	return mac.Sum(nil)
}
