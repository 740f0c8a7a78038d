package loadgen

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// Every response, fed to parseResponse one byte at a time as a socket might
// deliver it, is incomplete until its last byte and then parsed whole.
func TestParseResponseIncremental(t *testing.T) {
	cases := []struct {
		name, wire   string
		status       int
		body, retry  string
		closed, head bool
		untilEOF     bool
	}{
		{name: "content-length", wire: "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\n", status: 202, body: "{\"id\":\"x\"}\n"},
		{name: "429 retry-after", wire: "HTTP/1.1 429 Too Many Requests\r\nretry-after:  7 \r\nContent-Length: 2\r\n\r\n{}", status: 429, body: "{}", retry: "7"},
		{name: "chunked with extension and trailer", wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n", status: 200, body: "hello world"},
		{name: "after 100 Continue", wire: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}", status: 202, body: "{}"},
		{name: "no body", wire: "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n", status: 204},
		{name: "connection close", wire: "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nk", status: 200, body: "k", closed: true},
		{name: "HTTP/1.0", wire: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, closed: true},
		{name: "until EOF", wire: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, body: "all of it", closed: true, untilEOF: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var resp RawResponse
			for k := 1; k < len(tc.wire); k++ {
				n, err := parseResponse([]byte(tc.wire[:k]), false, tc.head, &resp, 1<<10)
				if err != nil || n != 0 {
					t.Fatalf("after %d of %d bytes: n=%d err=%v, want incomplete", k, len(tc.wire), n, err)
				}
			}
			n, err := parseResponse([]byte(tc.wire), tc.untilEOF, tc.head, &resp, 1<<10)
			if err != nil || n != len(tc.wire) {
				t.Fatalf("whole: n=%d err=%v, want %d", n, err, len(tc.wire))
			}
			if resp.StatusCode != tc.status || string(resp.Body) != tc.body || resp.RetryAfter != tc.retry || resp.Closed != tc.closed {
				t.Fatalf("got status %d body %q retry %q closed %v", resp.StatusCode, resp.Body, resp.RetryAfter, resp.Closed)
			}
		})
	}
}

func TestParseResponseTruncatesAndStopsAtOneResponse(t *testing.T) {
	var resp RawResponse
	wire := "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789HTTP/1.1 200 OK\r\n"
	n, err := parseResponse([]byte(wire), false, false, &resp, 4)
	if err != nil || n != len(wire)-len("HTTP/1.1 200 OK\r\n") {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if string(resp.Body) != "0123" || !resp.Truncated {
		t.Fatalf("body %q truncated %v, want the first 4 bytes and truncated", resp.Body, resp.Truncated)
	}
}

func TestParseResponseErrors(t *testing.T) {
	for name, wire := range map[string]string{
		"not HTTP":             "SSH-2.0-OpenSSH\r\n\r\n",
		"bad status":           "HTTP/1.1 2x2 OK\r\n\r\n",
		"bad content-length":   "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"two lengths":          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"header without colon": "HTTP/1.1 200 OK\r\nbroken\r\n\r\n",
		"bad chunk size":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk without CRLF":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
		"protocol switch":      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"gzip framing":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	} {
		var resp RawResponse
		if _, err := parseResponse([]byte(wire), false, false, &resp, 64); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("%s: err = %v, want ErrMalformedResponse", name, err)
		}
	}
	// The connection ended before the answer did.
	for _, wire := range []string{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "HTTP/1.1 200", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"} {
		var resp RawResponse
		if _, err := parseResponse([]byte(wire), true, false, &resp, 64); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q at EOF: err = %v, want ErrUnexpectedEOF", wire, err)
		}
	}
	var resp RawResponse
	if _, err := parseResponse([]byte("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", rawMaxHeaderSize)), false, false, &resp, 64); !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("endless header: err = %v", err)
	}
}
