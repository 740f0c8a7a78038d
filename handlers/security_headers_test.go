package handlers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relief/relief/models"
)

var (
	secInlineScript  = regexp.MustCompile(`(?is)<script\b[^>]*>\s*\S`) // a script element with a body
	secScriptTag     = regexp.MustCompile(`(?is)<script\b([^>]*)>`)    // every script element
	secEventHandler  = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)  // onclick= and friends
	secJavascriptURL = regexp.MustCompile(`(?i)(href|src|action)\s*=\s*["']?\s*javascript:`)
	secStyleAttr     = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`) // blocked by style-src 'self'
)

func cspDirectives(csp string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			out[name] = value
		}
	}
	return out
}

// checkSecurityHeaders checks one answer's headers; tls says whether HSTS is due.
func checkSecurityHeaders(t *testing.T, what string, h http.Header, tls bool) {
	t.Helper()
	csp := cspDirectives(h.Get("Content-Security-Policy"))
	script := csp["script-src"]
	if script == "" {
		script = csp["default-src"]
	}
	switch {
	case len(csp) == 0:
		t.Errorf("%s: no Content-Security-Policy", what)
	case script == "" || strings.Contains(script, "'unsafe-inline'") || strings.Contains(script, "'unsafe-eval'") || strings.Contains(script, "*") || strings.Contains(script, "data:"):
		t.Errorf("%s: script-src %q allows inline or foreign scripts", what, script)
	case csp["frame-ancestors"] != "'none'":
		t.Errorf("%s: frame-ancestors %q, want 'none'", what, csp["frame-ancestors"])
	case csp["object-src"] != "" && csp["object-src"] != "'none'" || csp["default-src"] != "'self'":
		t.Errorf("%s: default-src %q object-src %q", what, csp["default-src"], csp["object-src"])
	case csp["base-uri"] == "" || csp["form-action"] == "":
		t.Errorf("%s: base-uri and form-action must be set: %v", what, csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", what, h.Get("X-Content-Type-Options"))
	}
	if xfo := h.Get("X-Frame-Options"); xfo != "" && xfo != "DENY" {
		t.Errorf("%s: X-Frame-Options %q", what, xfo)
	}
	if rp := h.Get("Referrer-Policy"); rp == "" || strings.Contains(rp, "unsafe-url") {
		t.Errorf("%s: Referrer-Policy %q (URLs may carry a BRN)", what, rp)
	}
	hsts := h.Get("Strict-Transport-Security")
	if tls && !strings.Contains(hsts, "max-age=") {
		t.Errorf("%s: served over TLS without HSTS", what)
	}
	if !tls && hsts != "" {
		t.Errorf("%s: HSTS %q over plain HTTP", what, hsts)
	}
}

// Every page and API answer — for every role, on every GET route, and for
// errors — carries the security headers; no rendered page has an inline
// script, an inline event handler, a javascript: URL or a style attribute
// (the CSP would block them).
func TestSecurityHeadersAndNoInlineScriptOnEveryPage(t *testing.T) {
	e := newSecEnv(t)
	pages := 0
	for _, r := range e.srv.Routes() {
		if r.Method != http.MethodGet {
			continue
		}
		rule := secMatrix[r.Method+" "+r.Path]
		for _, role := range secRoles {
			path, _, ok := e.params(r.Path, rule, role, true)
			if !ok {
				continue
			}
			req := secReq{method: http.MethodGet, path: path}
			if role != "" {
				req.token = e.session(e.users[role])
			}
			rec := e.do(req)
			what := "GET " + path + " as " + or(role, "anonymous")
			checkSecurityHeaders(t, what, rec.Header(), false)
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				continue
			}
			pages++
			body := rec.Body.String()
			for _, m := range secScriptTag.FindAllStringSubmatch(body, -1) {
				if !strings.Contains(m[1], "src=") {
					t.Errorf("%s: inline <script%s>", what, m[1])
				}
			}
			if m := secInlineScript.FindString(body); m != "" && !strings.Contains(m, "src=") {
				t.Errorf("%s: inline script %q", what, m)
			}
			if m := secEventHandler.FindString(body); m != "" {
				t.Errorf("%s: inline event handler %q", what, m)
			}
			if m := secJavascriptURL.FindString(body); m != "" {
				t.Errorf("%s: javascript: URL %q", what, m)
			}
			if m := secStyleAttr.FindString(body); m != "" {
				t.Errorf("%s: style attribute %q is blocked by style-src 'self'", what, m)
			}
			if rec.Code == http.StatusOK && role != "" && rec.Header().Get("Cache-Control") != "no-store" && !strings.HasPrefix(path, "/public/") {
				t.Errorf("%s: signed-in page without Cache-Control: no-store (%q)", what, rec.Header().Get("Cache-Control"))
			}
		}
	}
	if pages < 20 {
		t.Fatalf("only %d HTML pages checked", pages)
	}
	// Errors and refusals too.
	for _, path := range []string{"/no/such/page", "/api/v1/no/such/route", "/api/v1/claims/" + e.M.ID.String()} {
		rec := e.do(secReq{method: http.MethodGet, path: path, token: e.session(e.users[models.RoleMerchant])})
		checkSecurityHeaders(t, "GET "+path, rec.Header(), false)
	}
	rec := e.do(secReq{method: http.MethodPost, path: "/api/v1/claims", header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	checkSecurityHeaders(t, "refused cross-site POST", rec.Header(), false)
}

// Behind a TLS proxy (RELIEF_SECURE_COOKIES) HSTS is sent and cookies are Secure.
func TestSecureCookiesSendHSTS(t *testing.T) {
	e := newSecEnv(t, func(env map[string]string) { env["RELIEF_SECURE_COOKIES"] = "true" })
	rec := e.do(secReq{method: http.MethodGet, path: "/"})
	checkSecurityHeaders(t, "GET / with RELIEF_SECURE_COOKIES", rec.Header(), true)
	rec = e.do(secReq{method: http.MethodPost, path: "/api/v1/session", body: []byte(`{"email":"merchant@kpost.test","password":"correct horse battery"}`)})
	for _, ck := range rec.Result().Cookies() {
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v", ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite)
		}
	}
	if len(rec.Result().Cookies()) == 0 {
		t.Fatalf("login set no cookies: %d %s", rec.Code, rec.Body.String())
	}
}

// writeSelfSigned writes a throwaway certificate and key for 127.0.0.1.
func secSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "relief test"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// relief serve with RELIEF_TLS_CERT/RELIEF_TLS_KEY speaks HTTPS only (TLS
// 1.2+), sends HSTS, and sets Secure, HttpOnly, SameSite cookies.
func TestServeOverTLS(t *testing.T) {
	certFile, keyFile, pool := secSelfSigned(t)
	e := newSecEnv(t, func(env map[string]string) { env["RELIEF_TLS_CERT"], env["RELIEF_TLS_KEY"] = certFile, keyFile })
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- e.srv.ListenAndServe(ctx, "127.0.0.1:0", func(addr string) { ready <- addr }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Errorf("ListenAndServe: %v", err)
		}
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening")
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("not TLS 1.2+: %+v", resp.TLS)
	}
	checkSecurityHeaders(t, "GET / over TLS", resp.Header, true)
	resp, err = hc.Post("https://"+addr+"/api/v1/session", "application/json", strings.NewReader(`{"email":"reviewer@kpost.test","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("login over TLS: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s over TLS: Secure %v HttpOnly %v SameSite %v", ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite)
		}
	}
	// Plain HTTP to the TLS port gets nothing useful.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + addr + "/api/v1/programs"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the TLS listener answered plain HTTP")
		}
	}
	// An old TLS version is refused.
	old := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 accepted")
	}
}
