// Package banksim is the sandbox bank behind `relief banksim`: an HTTP service
// with its own SQLite storage that answers holder inquiries (예금주 조회), executes
// transfers at most once per idempotency key, looks transfers up, exports a
// daily result file, and injects faults on demand, so that Relief's payouts can
// be proven exactly-once against a bank that misbehaves like real ones do.
// The client side is workflows/payout/bank.
//
// Accounts: any 10–14 digit account number at a supported bank code is open,
// unless it starts with "999" (closed: invalid_account). Its holder is the one
// registered with PUT /admin/accounts/{bank}/{account}, else DefaultHolder.
//
// API (JSON; errors are {"error": {"code", "message"}}):
//
//	POST /v1/holder-inquiry    {bank_code, account} → {bank_code, holder}; 422 invalid_account | unsupported_bank
//	POST /v1/transfers         bank.TransferRequest (key in the body or the Idempotency-Key header)
//	                           → 200 bank.TransferResult, succeeded or failed; the same key again returns
//	                           the first result (header Idempotent-Replayed: true); 409 idempotency_conflict
//	                           when the key names a transfer with different fields
//	GET  /v1/transfers/{key}   → bank.TransferResult; 404 not_found
//	GET  /v1/results.csv?date=YYYY-MM-DD (KST, default today) → the day's result file
//	GET  /v1/stats             → Stats
//	GET|PUT /admin/faults      → Faults (PUT replaces all and reseeds)
//	PUT  /admin/accounts/{bank}/{account} {holder} → 204
//	GET  /healthz
//
// The admin endpoints have no authentication: the sandbox listens on loopback.
package banksim

import (
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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/relief/relief/workflows/payout/bank"
)

// DefaultAddr is where `relief banksim` listens unless told otherwise.
const DefaultAddr = "127.0.0.1:7090"

// Config configures the sandbox.
type Config struct {
	Addr     string       // listen address for Run; empty = DefaultAddr
	DataPath string       // SQLite file, created if missing; required
	Faults   Faults       // faults from the start; PUT /admin/faults changes them later
	Logger   *slog.Logger // nil = slog.Default()
}

// Server is the sandbox bank: an http.Handler over its own storage.
type Server struct {
	db    *sql.DB
	chaos *chaos
	log   *slog.Logger
	mux   *http.ServeMux
	now   func() time.Time
}

// NewServer opens the storage at cfg.DataPath. Close it when done.
func NewServer(cfg Config) (*Server, error) {
	if cfg.DataPath == "" {
		return nil, errors.New("banksim: DataPath is required")
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, fmt.Errorf("banksim: faults: %w", err)
	}
	db, err := openDB(cfg.DataPath)
	if err != nil {
		return nil, err
	}
	s := &Server{db: db, chaos: newChaos(cfg.Faults), log: cfg.Logger, mux: http.NewServeMux(), now: time.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "banksim")
	s.routes()
	return s, nil
}

// Close closes the storage.
func (s *Server) Close() error { return s.db.Close() }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run serves the sandbox on cfg.Addr until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	s, err := NewServer(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("banksim: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then drains in-flight requests
// for up to ten seconds. It does not close the storage.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		done <- hs.Shutdown(shutdownCtx)
	}()
	s.log.Info("sandbox bank listening", "url", "http://"+ln.Addr().String())
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

// SetFaults replaces the injected faults and reseeds their random source.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.chaos.set(f)
	limits, mismatches := len(f.AccountDailyLimits), len(f.HolderMismatch)
	f.AccountDailyLimits, f.HolderMismatch = nil, nil // they hold account numbers: log counts only
	s.log.Info("faults set", "faults", f, "account_daily_limits", limits, "holder_mismatch", mismatches)
	return nil
}

// SetHolder registers the holder of an account.
func (s *Server) SetHolder(ctx context.Context, bankCode, account, holder string) error {
	account, _ = normalizeAccount(account)
	_, err := s.db.ExecContext(ctx, `INSERT INTO accounts (bank_code, account, holder) VALUES (?, ?, ?)
		ON CONFLICT (bank_code, account) DO UPDATE SET holder = excluded.holder`, bankCode, account, strings.TrimSpace(holder))
	return err
}

// Stats counts the books.
func (s *Server) Stats(ctx context.Context) (Stats, error) {
	st, err := readStats(ctx, s.db)
	st.InjectedFailures, st.InjectedLostReplies = s.chaos.injected()
	return st, err
}

func (s *Server) routes() {
	s.mux.HandleFunc("POST /v1/holder-inquiry", s.handleInquiry)
	s.mux.HandleFunc("POST /v1/transfers", s.handleTransfer)
	s.mux.HandleFunc("GET /v1/transfers/{key}", s.handleLookup)
	s.mux.HandleFunc("GET /v1/results.csv", s.handleResults)
	s.mux.HandleFunc("GET /v1/stats", s.handleStats)
	s.mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.chaos.get()) })
	s.mux.HandleFunc("PUT /admin/faults", s.handleSetFaults)
	s.mux.HandleFunc("PUT /admin/accounts/{bank}/{account}", s.handleSetAccount)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
}

// arrive applies the per-call faults: latency, then maybe a 503 before anything
// happens. It reports whether the call may proceed.
func (s *Server) arrive(w http.ResponseWriter, r *http.Request) bool {
	if d := s.chaos.latency(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done(): // the caller left; the bank still handles what it received
			t.Stop()
		}
	}
	if s.chaos.failBeforeCommit() {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "injected fault: bank temporarily unavailable")
		return false
	}
	return true
}

func (s *Server) handleInquiry(w http.ResponseWriter, r *http.Request) {
	var in struct {
		BankCode string `json:"bank_code"`
		Account  string `json:"account"`
	}
	if !decode(w, r, &in, false) || !s.arrive(w, r) {
		return
	}
	holder, code, err := s.holder(r.Context(), s.db, in.BankCode, in.Account)
	switch {
	case err != nil:
		s.internalError(w, "holder inquiry", err)
	case code != "":
		writeError(w, http.StatusUnprocessableEntity, code, failureMessages[code])
	default:
		writeJSON(w, http.StatusOK, map[string]string{"bank_code": in.BankCode, "holder": holder})
	}
}

// holder returns the account's holder as the bank knows it, or the failure code
// that stops any transfer to it.
func (s *Server) holder(ctx context.Context, q querier, bankCode, account string) (holder, failCode string, err error) {
	if _, ok := banks[bankCode]; !ok {
		return "", bank.CodeUnsupportedBank, nil
	}
	account, ok := normalizeAccount(account)
	if !ok {
		return "", bank.CodeInvalidAccount, nil
	}
	if s.chaos.forcedMismatch(bankCode, account) {
		return forcedMismatchHolder, "", nil
	}
	h, ok, err := registeredHolder(ctx, q, bankCode, account)
	if !ok {
		h = DefaultHolder(bankCode, account)
	}
	return h, "", err
}

var failureMessages = map[string]string{
	bank.CodeInvalidAccount:  "계좌번호가 유효하지 않습니다 (invalid or closed account)",
	bank.CodeHolderMismatch:  "예금주명이 일치하지 않습니다 (holder does not match)",
	bank.CodeDailyLimit:      "1일 입금한도를 초과했습니다 (daily limit exceeded)",
	bank.CodeUnsupportedBank: "지원하지 않는 은행입니다 (unsupported bank)",
}

// keyPattern keeps keys safe in URLs, logs and the CSV result file.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req bank.TransferRequest
	if !decode(w, r, &req, false) {
		return
	}
	if h := r.Header.Get("Idempotency-Key"); h != "" {
		if req.Key != "" && req.Key != h {
			writeError(w, http.StatusBadRequest, bank.CodeInvalidRequest, "Idempotency-Key header and body key differ")
			return
		}
		req.Key = h
	}
	if msg := validateTransfer(req); msg != "" {
		writeError(w, http.StatusBadRequest, bank.CodeInvalidRequest, msg)
		return
	}
	if !s.arrive(w, r) {
		return
	}
	// A bank finishes what it received even if the caller hangs up meanwhile.
	res, replayed, err := s.transfer(context.WithoutCancel(r.Context()), req)
	var conflict conflictError
	switch {
	case errors.As(err, &conflict):
		writeError(w, http.StatusConflict, bank.CodeKeyConflict, "key already used for a transfer with a different "+strings.Join(conflict, ", "))
		return
	case err != nil:
		s.internalError(w, "transfer", err)
		return
	}
	s.log.Debug("transfer", "key", req.Key, "bank_code", req.BankCode, "amount", req.Amount,
		"status", res.Status, "failure_code", res.FailureCode, "replayed", replayed)
	if lose, as502 := s.chaos.loseAfterCommit(); lose {
		s.log.Debug("injected fault: response lost after commit", "key", req.Key)
		if as502 {
			http.Error(w, "Bad Gateway", http.StatusBadGateway)
			return
		}
		panic(http.ErrAbortHandler) // net/http closes the connection without a response
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, res)
}

func validateTransfer(req bank.TransferRequest) string {
	switch {
	case !keyPattern.MatchString(req.Key):
		return "key: 1–128 of [A-Za-z0-9._:-], starting alphanumeric"
	case req.Amount <= 0 || req.Amount > 1e13:
		return "amount: a positive number of won"
	case req.BankCode == "" || req.Account == "":
		return "bank_code and account are required"
	case len(req.Holder) > 200 || len(req.Memo) > 200 || len(req.BankCode) > 10 || len(req.Account) > 40:
		return "field too long"
	}
	return ""
}

// conflictError names the fields in which a request differs from the transfer
// already stored under its key.
type conflictError []string

func (c conflictError) Error() string { return "idempotency conflict: " + strings.Join(c, ", ") }

// transfer executes req unless its key is already taken, in which case it
// returns the stored result (replayed) or a conflictError. The INSERT's
// ON CONFLICT on the unique key decides which request executes; the debit is
// written only by the request whose INSERT created the row, in the same
// transaction.
func (s *Server) transfer(ctx context.Context, req bank.TransferRequest) (res bank.TransferResult, replayed bool, err error) {
	req.Account, _ = normalizeAccount(req.Account)
	req.Holder, req.Memo = strings.TrimSpace(req.Holder), strings.TrimSpace(req.Memo)
	now := s.now().In(kst).Truncate(time.Microsecond)
	day, at := now.Format(time.DateOnly), now.Format(time.RFC3339Nano)

	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see openDB)
	if err != nil {
		return res, false, err
	}
	defer tx.Rollback()

	status, failCode, err := s.decide(ctx, tx, req, day)
	if err != nil {
		return res, false, err
	}
	ins, err := tx.ExecContext(ctx, `INSERT INTO transfers
		(key, bank_code, account, holder, amount, memo, status, failure_code, failure_message, day, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		req.Key, req.BankCode, req.Account, req.Holder, req.Amount, req.Memo,
		status, failCode, failureMessages[failCode], day, at)
	if err != nil {
		return res, false, err
	}
	if n, err := ins.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return res, false, err
		}
		prev, err := getTransfer(ctx, tx, req.Key)
		if err != nil {
			return res, false, err
		}
		if d := prev.differences(req); len(d) > 0 {
			return res, false, conflictError(d)
		}
		return prev.result(), true, nil
	}
	if status == bank.StatusSucceeded {
		if _, err := tx.ExecContext(ctx, `INSERT INTO debits (transfer_key, amount, at) VALUES (?, ?, ?)`,
			req.Key, req.Amount, at); err != nil {
			return res, false, err
		}
	}
	row, err := getTransfer(ctx, tx, req.Key)
	if err != nil {
		return res, false, err
	}
	return row.result(), false, tx.Commit()
}

// decide is the bank's verdict on a new transfer.
func (s *Server) decide(ctx context.Context, tx *sql.Tx, req bank.TransferRequest, day string) (bank.Status, string, error) {
	// Reads go through tx: another pooled connection could be queued behind
	// this transaction's write lock.
	holder, code, err := s.holder(ctx, tx, req.BankCode, req.Account)
	switch {
	case err != nil:
		return "", "", err
	case code != "":
		return bank.StatusFailed, code, nil
	case s.chaos.forcedMismatch(req.BankCode, req.Account) || (req.Holder != "" && !sameHolder(req.Holder, holder)):
		return bank.StatusFailed, bank.CodeHolderMismatch, nil
	}
	if limit := s.chaos.dailyLimit(req.BankCode, req.Account); limit > 0 {
		var credited int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM transfers
			WHERE bank_code = ? AND account = ? AND day = ? AND status = 'succeeded'`,
			req.BankCode, req.Account, day).Scan(&credited); err != nil {
			return "", "", err
		}
		if credited+req.Amount > limit {
			return bank.StatusFailed, bank.CodeDailyLimit, nil
		}
	}
	return bank.StatusSucceeded, "", nil
}

func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request) {
	if !s.arrive(w, r) {
		return
	}
	t, err := getTransfer(r.Context(), s.db, r.PathValue("key"))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		writeError(w, http.StatusNotFound, "not_found", "no transfer with this key")
	case err != nil:
		s.internalError(w, "lookup", err)
	default:
		writeJSON(w, http.StatusOK, t.result())
	}
}

// handleResults streams the day's result file, the way banks return one for a
// bulk transfer: every transfer processed that KST day, in order. Accounts are
// digits, keys are restricted and the other text is the bank's own, so no cell
// can carry a spreadsheet formula.
func (s *Server) handleResults(w http.ResponseWriter, r *http.Request) {
	day := r.URL.Query().Get("date")
	if day == "" {
		day = s.now().In(kst).Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, day); err != nil {
		writeError(w, http.StatusBadRequest, bank.CodeInvalidRequest, "date: want YYYY-MM-DD")
		return
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT `+transferColumns+` FROM transfers WHERE day = ? ORDER BY id`, day)
	if err != nil {
		s.internalError(w, "results", err)
		return
	}
	defer rows.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="banksim-results-`+day+`.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"key", "bank_code", "account", "amount", "status", "result_code", "message", "bank_ref", "processed_at"})
	for rows.Next() {
		t, err := scanTransfer(rows)
		if err != nil {
			s.log.Error("results: scan", "err", err)
			return // the truncated file fails the importer's control total
		}
		res := t.result()
		cw.Write([]string{t.req.Key, t.req.BankCode, t.req.Account, strconv.FormatInt(t.req.Amount, 10), t.status,
			resultCode(t.status, t.failCode), t.failMessage, res.BankRef, t.at})
	}
	if err := rows.Err(); err != nil {
		s.log.Error("results", "err", err)
	}
	cw.Flush()
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.Stats(r.Context())
	if err != nil {
		s.internalError(w, "stats", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decode(w, r, &f, true) {
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeError(w, http.StatusUnprocessableEntity, bank.CodeInvalidRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.chaos.get())
}

func (s *Server) handleSetAccount(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Holder string `json:"holder"`
	}
	if !decode(w, r, &in, true) {
		return
	}
	if strings.TrimSpace(in.Holder) == "" {
		writeError(w, http.StatusUnprocessableEntity, bank.CodeInvalidRequest, "holder is required")
		return
	}
	if err := s.SetHolder(r.Context(), r.PathValue("bank"), r.PathValue("account"), in.Holder); err != nil {
		s.internalError(w, "set account", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) internalError(w http.ResponseWriter, op string, err error) {
	s.log.Error(op, "err", err)
	writeError(w, http.StatusInternalServerError, "internal_error", "sandbox storage error")
}

// decode reads a JSON body of at most 64 KiB; strict rejects unknown fields,
// for admin calls where a typo would silently disable a fault.
func decode(w http.ResponseWriter, r *http.Request, v any, strict bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, bank.CodeInvalidRequest, "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
