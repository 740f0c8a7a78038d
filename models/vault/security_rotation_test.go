package vault

import (
	"bytes"
	"testing"
)

// Rotation puts the new key first and keeps the original last: the active key
// changes, the blind index and its fingerprint do not.
func TestBlindIndexStableAcrossRotation(t *testing.T) {
	k1 := NewKeySpec("k1")
	v1, err := Parse(k1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Parse(NewKeySpec("k2") + "," + k1)
	if err != nil {
		t.Fatal(err)
	}
	v3, err := Parse(NewKeySpec("k3") + "," + NewKeySpec("k2") + "," + k1)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []*Vault{v2, v3} {
		if !bytes.Equal(v.BlindIndex("004:12345678901234"), v1.BlindIndex("004:12345678901234")) {
			t.Fatalf("blind index changed after rotation to %s", v.ActiveKeyID())
		}
		if !bytes.Equal(v.IndexFingerprint(), v1.IndexFingerprint()) || v.IndexKeyID() != "k1" {
			t.Fatalf("index key changed: %s", v.IndexKeyID())
		}
	}
	if v3.ActiveKeyID() != "k3" || len(v3.KeyIDs()) != 3 || v3.KeyIDs()[0] != "k3" {
		t.Fatalf("ids %v active %s", v3.KeyIDs(), v3.ActiveKeyID())
	}
	// A different original key gives a different fingerprint: the database can
	// tell that the index key was lost.
	other, _ := Parse(NewKeySpec("k1"))
	if bytes.Equal(other.IndexFingerprint(), v1.IndexFingerprint()) {
		t.Fatal("fingerprints of different keys collide")
	}
	if bytes.Equal(v1.IndexFingerprint(), v1.BlindIndex("relief blind index fingerprint v1")) {
		t.Fatal("fingerprint is an ordinary blind index value")
	}
}

// Every ciphertext is fresh (random nonce): equal account numbers do not give
// equal ciphertexts, only equal blind indexes.
func TestSealIsRandomised(t *testing.T) {
	v, _ := Parse(NewKeySpec("k1"))
	a, _ := v.Seal([]byte("12345678901234"), []byte("x"))
	b, _ := v.Seal([]byte("12345678901234"), []byte("x"))
	if bytes.Equal(a, b) {
		t.Fatal("same plaintext sealed to the same ciphertext")
	}
	if len(a) != 12+14+16 {
		t.Fatalf("ciphertext length %d, want nonce+plaintext+tag", len(a))
	}
}
