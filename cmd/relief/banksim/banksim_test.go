package banksim_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/workflows/payout/bank"
)

type sandbox struct {
	*banksim.Server
	url  string
	bank bank.Bank
	stop func()
}

// start runs a sandbox on loopback over a SQLite file in a fresh temp dir.
func start(t *testing.T, f banksim.Faults) *sandbox {
	t.Helper()
	return startAt(t, filepath.Join(t.TempDir(), "banksim.db"), f)
}

func startAt(t *testing.T, path string, f banksim.Faults) *sandbox {
	t.Helper()
	srv, err := banksim.NewServer(banksim.Config{DataPath: path, Faults: f, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	stop := sync.OnceFunc(func() { hs.Close(); srv.Close() }) // hs.Close waits for in-flight requests
	t.Cleanup(stop)
	return &sandbox{Server: srv, url: hs.URL, bank: bank.NewHTTPClient(hs.URL, hs.Client()), stop: stop}
}

func (s *sandbox) stats(t *testing.T) banksim.Stats {
	t.Helper()
	resp, err := http.Get(s.url + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st banksim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (s *sandbox) put(t *testing.T, path string, body any) {
	t.Helper()
	buf, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, s.url+path, bytes.NewReader(buf))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("PUT %s: %s", path, resp.Status)
	}
}

func (s *sandbox) wantBooks(t *testing.T, debits, amount int64) {
	t.Helper()
	st := s.stats(t)
	if st.Debits != debits || st.DebitedAmount != amount || st.DuplicateDebits != 0 {
		t.Fatalf("books: %+v, want %d debits of %d won in total and no duplicates", st, debits, amount)
	}
}

func transfer(key string, amount int64) bank.TransferRequest {
	return bank.TransferRequest{Key: key, BankCode: "004", Account: "123456789012",
		Holder: banksim.DefaultHolder("004", "123456789012"), Amount: amount, Memo: "피해지원금"}
}

var ctx = context.Background()

func TestSameKeyTwiceDebitsOnce(t *testing.T) {
	s := start(t, banksim.Faults{})
	first, err := s.bank.Transfer(ctx, transfer("p-1", 30000))
	if err != nil || first.Status != bank.StatusSucceeded || first.BankRef == "" {
		t.Fatalf("first: %+v, %v", first, err)
	}
	again, err := s.bank.Transfer(ctx, transfer("p-1", 30000))
	if err != nil || again != first {
		t.Fatalf("replay: %+v, %v; want %+v", again, err, first)
	}
	s.wantBooks(t, 1, 30000)
}

func TestConcurrentIdenticalRequestsDebitOnce(t *testing.T) {
	s := start(t, banksim.Faults{})
	results := make([]bank.TransferResult, 50)
	errs := make([]error, 50)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i], errs[i] = s.bank.Transfer(ctx, transfer("p-race", 50000)) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i] != results[0] {
			t.Fatalf("request %d: %+v, %v; want %+v", i, results[i], errs[i], results[0])
		}
	}
	s.wantBooks(t, 1, 50000)
}

func TestKeyReusedForADifferentTransferConflicts(t *testing.T) {
	s := start(t, banksim.Faults{})
	if _, err := s.bank.Transfer(ctx, transfer("p-1", 30000)); err != nil {
		t.Fatal(err)
	}
	_, err := s.bank.Transfer(ctx, transfer("p-1", 31000))
	if !errors.Is(err, bank.ErrKeyConflict) {
		t.Fatalf("want key conflict, got %v", err)
	}
	s.wantBooks(t, 1, 30000)
}

func TestResponseLostAfterCommit(t *testing.T) {
	for _, mode := range []string{"drop", "502"} {
		t.Run(mode, func(t *testing.T) {
			s := start(t, banksim.Faults{LoseAfterCommitEvery: 1, LoseAfterCommitMode: mode})
			_, err := s.bank.Transfer(ctx, transfer("p-lost", 70000))
			if !bank.IsAmbiguous(err) {
				t.Fatalf("want an ambiguous error, got %v", err)
			}
			found, err := s.bank.Lookup(ctx, "p-lost")
			if err != nil || found.Status != bank.StatusSucceeded {
				t.Fatalf("lookup: %+v, %v", found, err)
			}
			if err := s.SetFaults(banksim.Faults{}); err != nil {
				t.Fatal(err)
			}
			again, err := s.bank.Transfer(ctx, transfer("p-lost", 70000))
			if err != nil || again != found {
				t.Fatalf("re-send: %+v, %v; want %+v", again, err, found)
			}
			s.wantBooks(t, 1, 70000)
			if st := s.stats(t); st.InjectedLostReplies != 1 {
				t.Fatalf("injected lost replies = %d, want 1", st.InjectedLostReplies)
			}
		})
	}
}

func TestPermanentFailures(t *testing.T) {
	s := start(t, banksim.Faults{HolderMismatch: []string{"088/1100-2233-4455"}})
	s.put(t, "/admin/accounts/020/1002345678901", map[string]string{"holder": "(주)행복상회"})

	holder, err := s.bank.InquireHolder(ctx, "020", "1002-345-678901")
	if err != nil || holder != "(주)행복상회" {
		t.Fatalf("inquiry: %q, %v", holder, err)
	}
	holder, err = s.bank.InquireHolder(ctx, "088", "110022334455")
	if err != nil || holder != "다른예금주" {
		t.Fatalf("inquiry under forced mismatch: %q, %v", holder, err)
	}
	if _, err := s.bank.InquireHolder(ctx, "004", "9991234567"); !errors.Is(err, bank.ErrInvalidAccount) {
		t.Fatalf("inquiry of a closed account: %v", err)
	}

	for _, tc := range []struct {
		name string
		req  bank.TransferRequest
		want error
	}{
		{"closed account", bank.TransferRequest{BankCode: "004", Account: "9991234567"}, bank.ErrInvalidAccount},
		{"too short", bank.TransferRequest{BankCode: "004", Account: "12345"}, bank.ErrInvalidAccount},
		{"not digits", bank.TransferRequest{BankCode: "004", Account: "12345678901x"}, bank.ErrInvalidAccount},
		{"unknown bank", bank.TransferRequest{BankCode: "999", Account: "1234567890"}, bank.ErrUnsupportedBank},
		{"wrong holder", bank.TransferRequest{BankCode: "020", Account: "1002345678901", Holder: "김철수"}, bank.ErrHolderMismatch},
		{"forced mismatch", bank.TransferRequest{BankCode: "088", Account: "110022334455",
			Holder: banksim.DefaultHolder("088", "110022334455")}, bank.ErrHolderMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Key, tc.req.Amount = "p-"+tc.req.BankCode+"-"+tc.req.Account, 10000
			res, err := s.bank.Transfer(ctx, tc.req)
			if !errors.Is(err, tc.want) || bank.IsAmbiguous(err) || res.Status != bank.StatusFailed {
				t.Fatalf("got %+v, %v; want %v", res, err, tc.want)
			}
			// A failed key stays failed: the bank answers the same again.
			if again, err2 := s.bank.Transfer(ctx, tc.req); again != res || !errors.Is(err2, tc.want) {
				t.Fatalf("replay: %+v, %v", again, err2)
			}
		})
	}
	// Holder names compare without spaces and with ㈜ = (주).
	ok := bank.TransferRequest{Key: "p-ok", BankCode: "020", Account: "1002345678901", Holder: "㈜ 행복상회", Amount: 5000}
	if _, err := s.bank.Transfer(ctx, ok); err != nil {
		t.Fatal(err)
	}
	s.wantBooks(t, 1, 5000)
}

func TestDailyLimit(t *testing.T) {
	s := start(t, banksim.Faults{DailyLimit: 100000, AccountDailyLimits: map[string]int64{"004/5555-666-777": 1000000}})
	to := func(key, account string, amount int64) bank.TransferRequest {
		return bank.TransferRequest{Key: key, BankCode: "004", Account: account, Amount: amount}
	}
	if _, err := s.bank.Transfer(ctx, to("a-1", "1111222233", 60000)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.bank.Transfer(ctx, to("a-2", "1111222233", 50000)); !errors.Is(err, bank.ErrDailyLimit) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := s.bank.Transfer(ctx, to("a-3", "1111222233", 40000)); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	if _, err := s.bank.Transfer(ctx, to("b-1", "5555666777", 500000)); err != nil {
		t.Fatalf("account with its own limit: %v", err)
	}
	s.wantBooks(t, 3, 600000)
}

// TestChaos runs 2,000 payouts through 20% injected faults, latency, client
// deadlines that abandon requests the bank still executes, and a bank restart,
// with every payout retried the way the payout activity does: TransferOnce,
// i.e. look the key up and re-send only when the bank has no record of it.
// Every payout must end up debited exactly once.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run")
	}
	const payouts, workers = 2000, 16
	path := filepath.Join(t.TempDir(), "banksim.db")
	faults := banksim.Faults{Seed: 7, FailBeforeCommitRate: 0.1, LoseAfterCommitRate: 0.1, LatencyJitterMS: 8}
	s := startAt(t, path, faults)

	payout := func(i int) bank.TransferRequest {
		req := bank.TransferRequest{Key: fmt.Sprintf("batch-1:payout-%d", i), BankCode: "011",
			Account: fmt.Sprintf("30%010d", i), Amount: int64(10000 + i*10)}
		if i%100 == 0 {
			req.Account = "999" + req.Account[3:] // a closed account: permanent failure
		}
		return req
	}
	var wantDebits, wantAmount int64
	for i := range payouts {
		if req := payout(i); i%100 != 0 {
			wantDebits, wantAmount = wantDebits+1, wantAmount+req.Amount
		}
	}

	var attempts atomic.Int64
	pay := func(i int) {
		req := payout(i)
		for n := 1; ; n++ {
			// Short deadlines abandon requests in flight, as a killed worker does.
			actx, cancel := context.WithTimeout(ctx, time.Duration(5+2*n)*time.Millisecond)
			_, err := bank.TransferOnce(actx, s.bank, req)
			cancel()
			attempts.Add(1)
			switch {
			case bank.IsAmbiguous(err) && n < 1000:
				continue
			case err == nil && i%100 != 0, errors.Is(err, bank.ErrInvalidAccount) && i%100 == 0:
			default:
				t.Errorf("payout %d: %v", i, err)
			}
			return
		}
	}
	run := func(from, to int) {
		next := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range next {
					pay(i)
				}
			})
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
	}

	run(0, payouts*3/4)
	// Restart the bank on the same file, then run the whole batch again from
	// the start, as a worker that lost its progress would.
	s.stop()
	s = startAt(t, path, faults)
	run(0, payouts)

	st := s.stats(t)
	t.Logf("%d payouts, %d attempts, books %+v", payouts, attempts.Load(), st)
	s.wantBooks(t, wantDebits, wantAmount)
	if st.InjectedFailures == 0 || st.InjectedLostReplies == 0 {
		t.Fatalf("no faults were injected: %+v", st)
	}
}

// TestDuplicateDebitsAreCountedFromStorage plants a second debit for a key
// behind the sandbox's back: the statistic must see it, or a zero proves nothing.
func TestDuplicateDebitsAreCountedFromStorage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "banksim.db")
	s := startAt(t, path, banksim.Faults{})
	if _, err := s.bank.Transfer(ctx, transfer("p-1", 30000)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO debits (transfer_key, amount, at) VALUES ('p-1', 30000, 'now')`); err != nil {
		t.Fatal(err)
	}
	if st := s.stats(t); st.DuplicateDebits != 1 || st.Debits != 2 {
		t.Fatalf("stats %+v, want the planted duplicate counted", st)
	}
	// The unique key is what stops the sandbox itself from doing this.
	if _, err := db.Exec(`INSERT INTO transfers (key, bank_code, account, holder, amount, memo, status, day, at)
		SELECT key, bank_code, account, holder, amount, memo, status, day, at FROM transfers WHERE key = 'p-1'`); err == nil {
		t.Fatal("a second transfer row for the same key was accepted")
	}
}

func TestResultsSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "banksim.db")
	s := startAt(t, path, banksim.Faults{})
	first, err := s.bank.Transfer(ctx, transfer("p-1", 30000))
	if err != nil {
		t.Fatal(err)
	}
	s.stop()
	s = startAt(t, path, banksim.Faults{})
	if again, err := s.bank.Transfer(ctx, transfer("p-1", 30000)); err != nil || !again.At.Equal(first.At) || again.BankRef != first.BankRef {
		t.Fatalf("after restart: %+v, %v; want %+v", again, err, first)
	}
	s.wantBooks(t, 1, 30000)
}

func TestResultFile(t *testing.T) {
	s := start(t, banksim.Faults{})
	if _, err := s.bank.Transfer(ctx, transfer("p-1", 30000)); err != nil {
		t.Fatal(err)
	}
	bad := transfer("p-2", 20000)
	bad.Account = "9990001112"
	if _, err := s.bank.Transfer(ctx, bad); !errors.Is(err, bank.ErrInvalidAccount) {
		t.Fatal(err)
	}
	today := time.Now().In(time.FixedZone("KST", 9*3600)).Format(time.DateOnly)
	for _, q := range []string{"", "?date=" + today} {
		resp, err := http.Get(s.url + "/v1/results.csv" + q)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil || len(rows) != 3 {
			t.Fatalf("rows %v, %v", rows, err)
		}
		want := [][]string{
			{"key", "bank_code", "account", "amount", "status", "result_code", "message", "bank_ref", "processed_at"},
			{"p-1", "004", "123456789012", "30000", "succeeded", "0000", ""},
			{"p-2", "004", "9990001112", "20000", "failed", "invalid_account"},
		}
		for i, w := range want {
			for j := range w {
				if rows[i][j] != w[j] {
					t.Fatalf("row %d col %d = %q, want %q (%v)", i, j, rows[i][j], w[j], rows)
				}
			}
		}
	}
	resp, err := http.Get(s.url + "/v1/results.csv?date=2025-10-01")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rows, _ := csv.NewReader(bytes.NewReader(body)).ReadAll(); len(rows) != 1 {
		t.Fatalf("another day: %v", rows)
	}
}

// TestFaultsAreReproducible checks that a seed replays the same faults on the
// same sequence of requests.
func TestFaultsAreReproducible(t *testing.T) {
	s := start(t, banksim.Faults{})
	pattern := func() string {
		s.put(t, "/admin/faults", banksim.Faults{Seed: 42, FailBeforeCommitRate: 0.3, FailBeforeCommitEvery: 7})
		var b []byte
		for range 60 {
			mark := byte('.')
			if _, err := s.bank.InquireHolder(ctx, "004", "123456789012"); err != nil {
				mark = 'x'
			}
			b = append(b, mark)
		}
		return string(b)
	}
	first, second := pattern(), pattern()
	if first != second || !strings.Contains(first, "x") || !strings.Contains(first, ".") {
		t.Fatalf("patterns differ or are trivial:\n%s\n%s", first, second)
	}
	if st := s.stats(t); st.InjectedFailures == 0 {
		t.Fatal("no injected failures counted")
	}
}

func TestAdminRejectsBadFaults(t *testing.T) {
	s := start(t, banksim.Faults{})
	for _, body := range []string{`{"fail_before_commit_rate": 2}`, `{"fail_rate": 0.5}`, `{"lose_after_commit_mode": "maybe"}`} {
		req, _ := http.NewRequest(http.MethodPut, s.url+"/admin/faults", bytes.NewBufferString(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("%s: %s, want 4xx", body, resp.Status)
		}
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	srv, err := banksim.NewServer(banksim.Config{DataPath: filepath.Join(t.TempDir(), "b.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v, %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
