package vault

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealOpenRoundTripAndRotation(t *testing.T) {
	oldSpec := NewKeySpec("k1")
	v1, err := Parse(oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	ct, kid := v1.Seal([]byte("12345678901234"), []byte("claim-1"))
	if kid != "k1" || bytes.Contains(ct, []byte("12345678901234")) {
		t.Fatalf("kid=%q, ciphertext leaks plaintext: %x", kid, ct)
	}
	// Rotation: k2 active, k1 still opens old rows, blind index unchanged.
	v2, err := Parse(NewKeySpec("k2") + "," + oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	if v2.ActiveKeyID() != "k2" {
		t.Fatalf("active = %q", v2.ActiveKeyID())
	}
	pt, err := v2.Open(ct, kid, []byte("claim-1"))
	if err != nil || string(pt) != "12345678901234" {
		t.Fatalf("open after rotation: %q %v", pt, err)
	}
	if _, err := v2.Open(ct, kid, []byte("claim-2")); err == nil {
		t.Fatal("ciphertext moved to another row must not open")
	}
	if _, err := v2.Open(ct, "nope", nil); err == nil {
		t.Fatal("unknown key id must fail")
	}
}

func TestBlindIndexIsKeyedAndDeterministic(t *testing.T) {
	a, _ := Parse(NewKeySpec("k1"))
	b, _ := Parse(NewKeySpec("k1"))
	if !bytes.Equal(a.BlindIndex("111"), a.BlindIndex("111")) {
		t.Fatal("not deterministic")
	}
	if bytes.Equal(a.BlindIndex("111"), a.BlindIndex("112")) {
		t.Fatal("different values collide")
	}
	if bytes.Equal(a.BlindIndex("111"), b.BlindIndex("111")) {
		t.Fatal("index does not depend on the key")
	}
}

func TestParseRejectsBadSpecs(t *testing.T) {
	for _, spec := range []string{"", "nokey", "k1:short", "k1:!!!", ":AAAA", NewKeySpec("k") + "," + NewKeySpec("k")} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		} else if strings.Contains(err.Error(), spec) && len(spec) > 20 {
			t.Errorf("error echoes key material: %v", err)
		}
	}
}
