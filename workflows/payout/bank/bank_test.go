package bank_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relief/relief/workflows/payout/bank"
)

const (
	account = "110234567890"
	holder  = "홍길동"
)

var req = bank.TransferRequest{Key: "payout-1", BankCode: "088", Account: account, Holder: holder, Amount: 30000}

// stub answers every request with the given status and body.
func stub(t *testing.T, status int, body string) bank.Bank {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return bank.NewHTTPClient(srv.URL, nil)
}

func TestHTTPClientClassifiesOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		permanent error // sentinel, or nil for ambiguous
	}{
		{"503", http.StatusServiceUnavailable, `{"error":{"code":"unavailable"}}`, nil},
		{"500 html", http.StatusInternalServerError, `<html>oops</html>`, nil},
		{"502 bare", http.StatusBadGateway, ``, nil},
		{"429", http.StatusTooManyRequests, `{"error":{"code":"overloaded"}}`, nil},
		{"404 from a proxy", http.StatusNotFound, `not here`, nil},
		{"400 without our body", http.StatusBadRequest, `bad`, nil},
		{"200 garbage", http.StatusOK, `{"key":`, nil},
		{"200 wrong key", http.StatusOK, `{"key":"other","status":"succeeded"}`, nil},
		{"422 invalid account", http.StatusUnprocessableEntity, `{"error":{"code":"invalid_account","message":"x"}}`, bank.ErrInvalidAccount},
		{"409 conflict", http.StatusConflict, `{"error":{"code":"idempotency_conflict"}}`, bank.ErrKeyConflict},
		{"200 failed", http.StatusOK, `{"key":"payout-1","status":"failed","failure_code":"holder_mismatch"}`, bank.ErrHolderMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stub(t, tc.status, tc.body).Transfer(context.Background(), req)
			if tc.permanent == nil {
				if !bank.IsAmbiguous(err) || bank.IsPermanent(err) {
					t.Fatalf("want ambiguous, got %v", err)
				}
			} else if !errors.Is(err, tc.permanent) || !bank.IsPermanent(err) || bank.IsAmbiguous(err) {
				t.Fatalf("want %v, got %v", tc.permanent, err)
			}
			if strings.Contains(err.Error(), account) || strings.Contains(err.Error(), holder) {
				t.Fatalf("error leaks personal data: %v", err)
			}
		})
	}
}

func TestHTTPClientTransportFailuresAreAmbiguous(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
		defer srv.Close()
		defer close(block)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := bank.NewHTTPClient(srv.URL, nil).Transfer(ctx, req)
		if !bank.IsAmbiguous(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want ambiguous deadline error, got %v", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = bank.NewHTTPClient("http://"+addr, nil).Lookup(context.Background(), "k")
		if !bank.IsAmbiguous(err) {
			t.Fatalf("want ambiguous, got %v", err)
		}
	})
}

func TestHTTPClientLookupNotFound(t *testing.T) {
	res, err := stub(t, http.StatusNotFound, `{"error":{"code":"not_found"}}`).Lookup(context.Background(), "payout-9")
	if err != nil || res.Status != bank.StatusNotFound || res.Key != "payout-9" {
		t.Fatalf("got %+v, %v", res, err)
	}
}

// fake is a Bank whose Lookup answers from a fixed result and counts sends.
type fake struct {
	lookup    bank.TransferResult
	lookupErr error
	sent      int
}

func (f *fake) InquireHolder(context.Context, string, string) (string, error) { return holder, nil }
func (f *fake) Lookup(context.Context, string) (bank.TransferResult, error) {
	return f.lookup, f.lookupErr
}
func (f *fake) Transfer(_ context.Context, r bank.TransferRequest) (bank.TransferResult, error) {
	f.sent++
	return bank.TransferResult{Key: r.Key, Status: bank.StatusSucceeded}, nil
}

func TestTransferOnceSendsOnlyWhenTheBankHasNoRecord(t *testing.T) {
	ctx := context.Background()
	unknown := &bank.AmbiguousError{Op: "lookup", Err: errors.New("reset")}
	for _, tc := range []struct {
		name      string
		lookup    bank.TransferResult
		lookupErr error
		wantSent  int
		check     func(error) bool
	}{
		{"not found: send", bank.TransferResult{Status: bank.StatusNotFound}, nil, 1, func(err error) bool { return err == nil }},
		{"succeeded: done", bank.TransferResult{Status: bank.StatusSucceeded}, nil, 0, func(err error) bool { return err == nil }},
		{"failed: permanent", bank.TransferResult{Status: bank.StatusFailed, FailureCode: bank.CodeDailyLimit}, nil, 0,
			func(err error) bool { return errors.Is(err, bank.ErrDailyLimit) }},
		{"pending: ambiguous", bank.TransferResult{Status: bank.StatusPending}, nil, 0, bank.IsAmbiguous},
		{"lookup failed: ambiguous, no send", bank.TransferResult{}, unknown, 0, bank.IsAmbiguous},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{lookup: tc.lookup, lookupErr: tc.lookupErr}
			_, err := bank.TransferOnce(ctx, f, req)
			if f.sent != tc.wantSent || !tc.check(err) {
				t.Fatalf("sent %d (want %d), err %v", f.sent, tc.wantSent, err)
			}
		})
	}
}
