package bank

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NewHTTPClient returns a Bank speaking the sandbox bank's JSON API at baseURL
// (e.g. "http://127.0.0.1:7090"). A nil httpClient gets a 10-second timeout.
func NewHTTPClient(baseURL string, httpClient *http.Client) Bank {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &httpBank{base: strings.TrimRight(baseURL, "/"), hc: httpClient}
}

type httpBank struct {
	base string
	hc   *http.Client
}

// apiError is the sandbox's error body, shaped like Relief's own API errors.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errNotFound is the bank's own "no such key" answer, as opposed to any 404.
var errNotFound = errors.New("not found")

func (b *httpBank) InquireHolder(ctx context.Context, bankCode, account string) (string, error) {
	var out struct {
		Holder string `json:"holder"`
	}
	in := map[string]string{"bank_code": bankCode, "account": account}
	if err := b.do(ctx, "holder-inquiry", "", http.MethodPost, "/v1/holder-inquiry", in, &out); err != nil {
		return "", err
	}
	return out.Holder, nil
}

// Transfer sends the key in the body only. With an Idempotency-Key header
// net/http would treat the POST as replayable and silently re-send it after a
// dropped connection; harmless to money, but it would hide from the caller the
// very ambiguity the caller must handle, and make faults non-reproducible.
func (b *httpBank) Transfer(ctx context.Context, req TransferRequest) (TransferResult, error) {
	var res TransferResult
	if err := b.do(ctx, "transfer", req.Key, http.MethodPost, "/v1/transfers", req, &res); err != nil {
		return TransferResult{}, err
	}
	if res.Key != req.Key || res.Status == "" || res.Status == StatusNotFound {
		return TransferResult{}, &AmbiguousError{Op: "transfer", Key: req.Key, Err: fmt.Errorf("unexpected result status %q", res.Status)}
	}
	return res, ResultError(res)
}

func (b *httpBank) Lookup(ctx context.Context, key string) (TransferResult, error) {
	var res TransferResult
	err := b.do(ctx, "lookup", key, http.MethodGet, "/v1/transfers/"+url.PathEscape(key), nil, &res)
	switch {
	case errors.Is(err, errNotFound):
		return TransferResult{Key: key, Status: StatusNotFound}, nil
	case err != nil:
		return TransferResult{}, err
	case res.Key != key || res.Status == "":
		return TransferResult{}, &AmbiguousError{Op: "lookup", Key: key, Err: errors.New("malformed result")}
	}
	return res, nil
}

// do sends one JSON request and classifies the outcome. Only the bank's own
// coded 4xx answer is taken as "definitely not done"; anything unrecognised
// (a proxy's error page, a truncated body) is ambiguous, because claiming
// "not done" wrongly is what leads to paying twice.
func (b *httpBank) do(ctx context.Context, op, key, method, path string, in, out any) error {
	ambiguous := func(err error) error { return &AmbiguousError{Op: op, Key: key, Err: err} }
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return ambiguous(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ambiguous(fmt.Errorf("reading response: %w", err))
	}

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err := json.Unmarshal(raw, out); err != nil {
			return ambiguous(fmt.Errorf("decoding response: %w", err))
		}
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		var ae apiError
		if json.Unmarshal(raw, &ae) == nil && ae.Error.Code != "" {
			if ae.Error.Code == "not_found" && resp.StatusCode == http.StatusNotFound {
				return errNotFound
			}
			return &PermanentError{Code: ae.Error.Code, Message: ae.Error.Message}
		}
	}
	return ambiguous(fmt.Errorf("HTTP %d", resp.StatusCode))
}
