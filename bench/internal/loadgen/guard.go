package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// IsLoopbackHost reports whether host (as in url.URL.Hostname: no port, no
// brackets) names the local machine: the literal name "localhost", an IPv4
// address in 127.0.0.0/8, ::1, or an IPv4-mapped form of those. No DNS lookup
// is made; any other name is refused, including names that merely resolve to a
// loopback address today.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(host, ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// CheckLoopbackURL parses raw and accepts it only when it is an http or https
// URL whose host is a loopback host (see IsLoopbackHost). The returned URL is
// the base: scheme, host and path without a trailing slash, query or fragment.
func CheckLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bad URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("bad URL %q: no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("bad URL %q: user information is not allowed", raw)
	}
	if !IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("refusing %q: this tool only sends load to loopback (127.0.0.0/8, ::1, localhost), not %q", raw, u.Hostname())
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}, nil
}

// ErrNotLoopback is returned (wrapped) by the guarded dialer.
var ErrNotLoopback = errors.New("loadgen: refusing to connect to a non-loopback address")

// loopbackControl runs after name resolution, just before connect(2), and
// refuses any address that is not loopback. It backs up CheckLoopbackURL in
// case "localhost" resolves somewhere unexpected.
func loopbackControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%w: %s", ErrNotLoopback, address)
	}
	return nil
}

// NewClient returns an HTTP client for load generation against a loopback
// server: one shared transport that keeps up to maxConns idle keep-alive
// connections (so connections opened under load are reused, not re-dialled),
// no proxy (HTTP_PROXY must not divert the load), no compression, no
// redirects, and a dialer that only connects to loopback addresses.
func NewClient(maxConns int) *http.Client {
	if maxConns < 1 {
		maxConns = 1
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackControl}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          maxConns + 16,
		MaxIdleConnsPerHost:   maxConns + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
