package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a throwaway certificate and key for localhost.
func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestTLSTurnsOnSecureCookies(t *testing.T) {
	cert, key := writeSelfSigned(t)
	c, err := FromEnv(ModeDev, env("RELIEF_TLS_CERT", cert, "RELIEF_TLS_KEY", key))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSCert != cert || c.TLSKey != key || !c.SecureCookies {
		t.Fatalf("TLS config %+v: want cert, key and SecureCookies", c)
	}
	c, err = FromEnv(ModeDev, env())
	if err != nil || c.TLSCert != "" || c.SecureCookies {
		t.Fatalf("no TLS by default: %+v %v", c, err)
	}
}

func TestTLSValidation(t *testing.T) {
	cert, key := writeSelfSigned(t)
	for name, kv := range map[string][]string{
		"cert without key": {"RELIEF_TLS_CERT", cert},
		"key without cert": {"RELIEF_TLS_KEY", key},
		"missing files":    {"RELIEF_TLS_CERT", "/nonexistent/cert.pem", "RELIEF_TLS_KEY", "/nonexistent/key.pem"},
		"key as cert":      {"RELIEF_TLS_CERT", key, "RELIEF_TLS_KEY", key},
	} {
		_, err := FromEnv(ModeDev, env(kv...))
		if err == nil || !strings.Contains(err.Error(), "RELIEF_TLS_") {
			t.Errorf("%s: want an error naming RELIEF_TLS_*, got %v", name, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := FromEnv(ModeDev, env())
	if err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default must trust no proxy (X-Forwarded-For is forgeable): %v %v", c.TrustedProxies, err)
	}
	c, err = FromEnv(ModeDev, env("RELIEF_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.10"))
	if err != nil || !slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8", "192.168.1.10"}) {
		t.Fatalf("%v %v", c.TrustedProxies, err)
	}
	if _, err := FromEnv(ModeDev, env("RELIEF_TRUSTED_PROXIES", "lb.internal")); err == nil || !strings.Contains(err.Error(), "RELIEF_TRUSTED_PROXIES") {
		t.Fatalf("want an error naming RELIEF_TRUSTED_PROXIES, got %v", err)
	}
}
