package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// parseResponse looks for one complete HTTP/1.x response at the start of b,
// for the event loop (RunLoop), which reads whatever the socket holds and
// asks again after every read. It returns the response's length in bytes,
// or 0 when b does not hold all of it yet; eof reports that the connection
// has ended after b, which completes a body delimited by the end of the
// connection and makes any other incomplete response an error. resp gets
// the status, Retry-After, the first maxBody bytes of the (de-chunked) body,
// and Closed when the connection cannot carry another request.
func parseResponse(b []byte, eof, head bool, resp *RawResponse, maxBody int) (int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > rawMaxHeaderSize {
			return 0, errHeaderTooLarge
		}
		if eof {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, nil
	}
	lines := bytes.Split(b[:end], []byte("\r\n"))
	status := lines[0]
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || status[8] != ' ' || len(status) > 12 && status[12] != ' ' {
		return 0, malformed("status line", status)
	}
	code, err := strconv.Atoi(string(status[9:12]))
	if err != nil || code < 100 {
		return 0, malformed("status line", status)
	}
	resp.StatusCode, resp.RetryAfter, resp.Truncated = code, "", false
	resp.Body = resp.Body[:0]
	resp.Closed = status[7] == '0' // HTTP/1.0 closes unless it says keep-alive; we never ask it to
	length, chunked := int64(-1), false
	for _, line := range lines[1:] {
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, malformed("header line", line)
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || length >= 0 && n != length {
				return 0, malformed("Content-Length", value)
			}
			length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = bytes.HasSuffix(bytes.ToLower(value), []byte("chunked"))
			if !chunked {
				return 0, malformed("Transfer-Encoding", value)
			}
		case asciiEqualFold(name, "Connection"):
			for _, tok := range bytes.Split(value, []byte(",")) {
				if asciiEqualFold(bytes.TrimSpace(tok), "close") {
					resp.Closed = true
				}
			}
		case asciiEqualFold(name, "Retry-After"):
			resp.RetryAfter = string(value)
		}
	}
	start := end + 4
	keep := func(body []byte) {
		room := maxBody - len(resp.Body)
		if len(body) > room {
			body, resp.Truncated = body[:max(room, 0)], true
		}
		resp.Body = append(resp.Body, body...)
	}
	switch {
	case code == 101:
		return 0, malformed("status line (protocol switch)", status)
	case code < 200: // 100 Continue, 103 Early Hints: the answer follows
		n, err := parseResponse(b[start:], eof, head, resp, maxBody)
		if n == 0 || err != nil {
			return 0, err
		}
		return start + n, nil
	case head || code == 204 || code == 304:
		return start, nil
	case chunked:
		return parseChunked(b, start, eof, keep)
	case length >= 0:
		if int64(len(b)-start) < length {
			if eof {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, nil
		}
		keep(b[start : start+int(length)])
		return start + int(length), nil
	default: // delimited by the end of the connection
		if !eof {
			return 0, nil
		}
		keep(b[start:])
		resp.Closed = true
		return len(b), nil
	}
}

// parseChunked reads a chunked body starting at b[at:]; see parseResponse.
func parseChunked(b []byte, at int, eof bool, keep func([]byte)) (int, error) {
	incomplete := func() (int, error) {
		if eof {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, nil
	}
	for {
		nl := bytes.Index(b[at:], []byte("\r\n"))
		if nl < 0 {
			return incomplete()
		}
		line := b[at : at+nl]
		if semi := bytes.IndexByte(line, ';'); semi >= 0 {
			line = line[:semi]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 || size > 1<<40 {
			return 0, malformed("chunk size", line)
		}
		at += nl + 2
		if size == 0 { // trailer fields, then an empty line
			for {
				nl := bytes.Index(b[at:], []byte("\r\n"))
				if nl < 0 {
					return incomplete()
				}
				at += nl + 2
				if nl == 0 {
					return at, nil
				}
			}
		}
		if int64(len(b)-at) < size+2 {
			return incomplete()
		}
		keep(b[at : at+int(size)])
		at += int(size)
		if b[at] != '\r' || b[at+1] != '\n' {
			return 0, fmt.Errorf("%w: chunk not followed by CRLF", ErrMalformedResponse)
		}
		at += 2
	}
}
